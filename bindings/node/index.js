'use strict';
// @factstr/factstr-node over factstr-cpp: the API of @factstr/factstr-node 0.5.2 (see
// README.md). Thin JavaScript classes over a native handle: they validate input, turn
// payloads and queries into JSON text, build the result objects, and apply the stream
// callback rules. Everything else happens in the C++ library.

const path = require('node:path');

const binding = loadBinding();

function loadBinding() {
  const file = process.env.FACTSTR_NODE_ADDON || path.join(__dirname, 'build', 'Release', 'factstr.node');
  try {
    return require(file);
  } catch (error) {
    const hint = new Error(
      `@factstr/factstr-node: cannot load the native addon ${file} (${error.message}). ` +
        'Build it with `npm run build` in bindings/node of a factstr-cpp checkout.',
    );
    hint.cause = error;
    throw hint;
  }
}

const U64_MAX = (1n << 64n) - 1n;

// ---- input ---------------------------------------------------------------------------------

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'bigint') return `bigint ${value}n`;
  if (typeof value === 'number') return `number ${value}`;
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  return typeof value;
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function jsonText(value, where) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`${where} is not JSON-serializable: ${error.message}`);
  }
  if (text === undefined) throw new TypeError(`${where} is not JSON-serializable (got ${describe(value)})`);
  return text;
}

function checkSequenceNumber(value, where) {
  if (typeof value !== 'bigint') throw new TypeError(`${where} must be a bigint, got ${describe(value)}`);
  if (value < 0n || value > U64_MAX) throw new RangeError(`${where} must be between 0n and 2n ** 64n - 1n, got ${value}n`);
}

function checkEvent(event, where) {
  if (!isPlainObject(event)) throw new TypeError(`${where} must be a NewEvent object, got ${describe(event)}`);
  if (typeof event.event_type !== 'string') {
    throw new TypeError(`${where}.event_type must be a string, got ${describe(event.event_type)}`);
  }
  if (event.payload === undefined) throw new TypeError(`${where}.payload is missing`);
}

// A payload whose own JSON.stringify gives undefined (a function, a symbol, a toJSON that
// returns nothing) would turn into `null` inside an array: such batches, and batches whose
// stringify throws, take the per-event path, which names the event.
function needsOwnStringify(payload) {
  const kind = typeof payload;
  return kind === 'function' || kind === 'symbol' || (kind === 'object' && payload !== null && typeof payload.toJSON === 'function');
}

// One event as (type, payloadJson); several as [[typesJson, payloadsJson], undefined]: two
// JSON arrays, which cross into C++ as two strings (not two per event) and are split there.
// The third element is how many events were encoded.
function encodeEvents(events, method) {
  if (!Array.isArray(events)) throw new TypeError(`${method}: events must be an array of NewEvent, got ${describe(events)}`);
  if (events.length === 1) {
    const event = events[0];
    checkEvent(event, `${method}: events[0]`);
    return [event.event_type, jsonText(event.payload, `${method}: events[0].payload`), 1];
  }
  const types = new Array(events.length);
  const payloads = new Array(events.length);
  let whole = true;
  for (let i = 0; i < events.length; i++) {
    const event = events[i];
    checkEvent(event, `${method}: events[${i}]`);
    types[i] = event.event_type;
    payloads[i] = event.payload;
    if (whole && needsOwnStringify(event.payload)) whole = false;
  }
  let payloadsJson;
  if (whole) {
    try {
      payloadsJson = JSON.stringify(payloads);
    } catch {
      whole = false;
    }
  }
  if (!whole) {
    const texts = new Array(events.length);
    for (let i = 0; i < events.length; i++) texts[i] = jsonText(payloads[i], `${method}: events[${i}].payload`);
    payloadsJson = `[${texts.join(',')}]`;
  }
  return [[JSON.stringify(types), payloadsJson], undefined, types.length];
}

function encodeFilter(filter, where) {
  if (!isPlainObject(filter)) throw new TypeError(`${where} must be an EventFilter object, got ${describe(filter)}`);
  const parts = [];
  const types = filter.event_types;
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types)) throw new TypeError(`${where}.event_types must be an array of strings, got ${describe(types)}`);
    for (let i = 0; i < types.length; i++) {
      if (typeof types[i] !== 'string') {
        throw new TypeError(`${where}.event_types[${i}] must be a string, got ${describe(types[i])}`);
      }
    }
    parts.push(`"event_types":${JSON.stringify(types)}`);
  }
  const predicates = filter.payload_predicates;
  if (predicates !== undefined && predicates !== null) {
    if (!Array.isArray(predicates)) {
      throw new TypeError(`${where}.payload_predicates must be an array, got ${describe(predicates)}`);
    }
    const texts = predicates.map((predicate, i) => jsonText(predicate, `${where}.payload_predicates[${i}]`));
    parts.push(`"payload_predicates":[${texts.join(',')}]`);
  }
  return `{${parts.join(',')}}`;
}

// The JSON form of a query that the library parses (factstr::parse_event_query).
function encodeQuery(query, where) {
  if (!isPlainObject(query)) throw new TypeError(`${where} must be an EventQuery object, got ${describe(query)}`);
  const parts = [];
  const filters = query.filters;
  if (filters !== undefined && filters !== null) {
    if (!Array.isArray(filters)) throw new TypeError(`${where}.filters must be an array, got ${describe(filters)}`);
    parts.push(`"filters":[${filters.map((filter, i) => encodeFilter(filter, `${where}.filters[${i}]`)).join(',')}]`);
  }
  const min = query.min_sequence_number;
  if (min !== undefined && min !== null) {
    checkSequenceNumber(min, `${where}.min_sequence_number`);
    parts.push(`"min_sequence_number":${min}`);
  }
  return `{${parts.join(',')}}`;
}

function checkHandler(handle, method) {
  if (typeof handle !== 'function') throw new TypeError(`${method}: the callback must be a function, got ${describe(handle)}`);
}

function checkDurableStream(stream, method) {
  if (!isPlainObject(stream) || typeof stream.name !== 'string') {
    throw new TypeError(`${method}: the durable stream must be an object { name: string }, got ${describe(stream)}`);
  }
}

// ---- output --------------------------------------------------------------------------------

// The records of a query or a stream delivery (see src/records.hpp): the sequence numbers,
// two labels per record (the index of its occurred_at and of its event_type in the tables),
// and [[payload...], [occurred_at...], [event_type...]] as JSON.
function decodeRecords(sequenceNumbers, labels, json) {
  const [payloads, times, types] = JSON.parse(json);
  const records = new Array(payloads.length);
  for (let i = 0, j = 0; i < payloads.length; i++, j += 2) {
    records[i] = {
      sequence_number: sequenceNumbers[i],
      occurred_at: times[labels[j]],
      event_type: types[labels[j + 1]],
      payload: payloads[i],
    };
  }
  return records;
}

// Reading a BigUint64Array slot makes a new BigInt: a one-event batch starts where it ends
// and counts one, so a single append reads one slot.
function appendResult(slots, count) {
  const last = slots[1];
  if (count === 1) return { first_sequence_number: last, last_sequence_number: last, committed_count: 1n };
  return { first_sequence_number: slots[0], last_sequence_number: last, committed_count: slots[2] };
}

// ---- streams -------------------------------------------------------------------------------

function reasonOf(error) {
  if (error instanceof Error) return error.message;
  try {
    return String(error);
  } catch {
    return 'a value that cannot be printed';
  }
}

// One registered stream: turns each delivered run of batches into EventRecord values, calls
// the callback once per batch, in order (awaiting a returned Promise before the next), and
// reports how far it got by the callback result rules.
class StreamState {
  constructor(store, handle, durable) {
    this.store = store;
    this.handle = handle;
    this.durable = durable;
    this.native = null;
    this.stopped = false;
    this.awaiting = false; // the callback returned a Promise that has not settled yet
    this.lastError = undefined;
    this.dispatch = (sequenceNumbers, labels, json, sizes, token) => this.deliver(sequenceNumbers, labels, json, sizes, token);
  }

  deliver(sequenceNumbers, labels, json, sizes, token) {
    if (this.stopped) {
      binding.complete(token, 0); // nothing of the run was handled
      return;
    }
    this.runFrom(decodeRecords(sequenceNumbers, labels, json), sizes, token, 0, 0);
  }

  // Calls the callback for the run's batches from `index` (its records from `offset`) on.
  runFrom(records, sizes, token, index, offset) {
    while (index < sizes.length) {
      if (this.stopped) {
        this.finishRun(token, index);
        return;
      }
      const batch = sizes.length === 1 ? records : records.slice(offset, offset + sizes[index]);
      let result;
      try {
        result = this.handle(batch);
      } catch (error) {
        if (this.failed(token, index, `callback threw: ${reasonOf(error)}`, error)) return;
        offset += sizes[index++];
        continue;
      }
      if (result === false) {
        if (this.failed(token, index, 'callback returned false')) return;
      } else if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof result.then === 'function') {
        this.awaiting = true;
        const next = offset + sizes[index];
        const at = index;
        Promise.resolve(result).then(
          (value) => {
            this.awaiting = false;
            if (value === false && this.failed(token, at, 'callback resolved false')) return;
            this.runFrom(records, sizes, token, at + 1, next);
          },
          (error) => {
            this.awaiting = false;
            if (this.failed(token, at, `callback rejected: ${reasonOf(error)}`, error)) return;
            this.runFrom(records, sizes, token, at + 1, next);
          },
        );
        return;
      }
      offset += sizes[index++];
    }
    this.finishRun(token, index);
  }

  finishRun(token, handled) {
    binding.complete(token, handled);
    this.store.checkDrain();
  }

  // The callback failed for batch `index` of the run. A durable stream stops there (its
  // cursor stays after the batches before it): true, the run is over. A live stream goes on
  // with the next batch: false.
  failed(token, index, reason, error) {
    this.lastError = error !== undefined ? error : new Error(reason);
    if (!this.durable) return false;
    binding.complete(token, index, reason);
    // A failure stops a durable stream (its cursor stays): nothing more is delivered.
    this.stopped = true;
    this.store.subscriptions.delete(this);
    if (this.native) this.native.release();
    this.store.checkDrain();
    return true;
  }

  unsubscribe() {
    if (this.stopped) return;
    this.stopped = true;
    this.store.subscriptions.delete(this);
    if (this.native) this.native.unsubscribe();
    this.store.checkDrain();
  }

  // True while a committed batch may still be on its way to this stream's callback.
  behind(target) {
    return !this.stopped && !this.awaiting && this.native.active() && this.native.position() < target;
  }
}

class EventStreamSubscription {
  #state;

  constructor(state) {
    this.#state = state;
  }

  /** Stops future deliveries for this stream. */
  unsubscribe() {
    this.#state.unsubscribe();
  }
}

// ---- stores --------------------------------------------------------------------------------

// Stores still open, closed when the process exits so that no stream thread outlives the
// JavaScript environment. Weak: an unreachable store is collected (and closed) as usual.
const openStores = new Set();
const forgetStore = new FinalizationRegistry((ref) => openStores.delete(ref));
let exitHookInstalled = false;

function trackStore(core) {
  const ref = new WeakRef(core);
  openStores.add(ref);
  forgetStore.register(core, ref, core);
  core.ref = ref;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const open of openStores) open.deref()?.close();
    });
  }
}

// The state behind one store object.
class StoreCore {
  constructor(kind, first, second) {
    this.slots = new BigUint64Array(4);
    this.native = new binding.NativeStore(kind, first, second, this.slots);
    this.subscriptions = new Set();
    this.drainTarget = 0n;
    this.drainTimer = null;
    this.closed = false;
    trackStore(this);
  }

  // Keeps the process alive while batches committed through this store have not reached
  // the callbacks of its streams yet (the native delivery channels are unreferenced, so
  // that an idle stream never holds the process open).
  noteCommit(last) {
    if (this.subscriptions.size === 0) return;
    if (last > this.drainTarget) this.drainTarget = last;
    this.checkDrain();
  }

  checkDrain() {
    let behind = false;
    if (this.drainTarget > 0n) {
      for (const state of this.subscriptions) {
        if (state.behind(this.drainTarget)) {
          behind = true;
          break;
        }
      }
    }
    if (behind && this.drainTimer === null) {
      this.drainTimer = setInterval(() => this.checkDrain(), 1);
    } else if (!behind && this.drainTimer !== null) {
      clearInterval(this.drainTimer);
      this.drainTimer = null;
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    for (const state of this.subscriptions) state.stopped = true;
    this.subscriptions.clear();
    if (this.drainTimer !== null) clearInterval(this.drainTimer);
    this.drainTimer = null;
    openStores.delete(this.ref);
    forgetStore.unregister(this);
    this.native.close();
  }
}

class FactstrStore {
  #core;

  constructor(kind, first, second) {
    this.#core = new StoreCore(kind, first, second);
  }

  /** Appends the events as one batch (all or nothing) and returns its range. */
  append(events) {
    const [first, second, count] = encodeEvents(events, 'append');
    const core = this.#core;
    core.native.append(first, second);
    const result = appendResult(core.slots, count);
    if (core.subscriptions.size !== 0) core.noteCommit(result.last_sequence_number);
    return result;
  }

  /** The facts matching the query, with last_returned_sequence_number and current_context_version. */
  query(query) {
    const [sequenceNumbers, labels, json, lastReturned, contextVersion] = this.#core.native.query(encodeQuery(query, 'query: query'));
    const result = { event_records: decodeRecords(sequenceNumbers, labels, json) };
    if (lastReturned !== undefined) result.last_returned_sequence_number = lastReturned;
    if (contextVersion !== undefined) result.current_context_version = contextVersion;
    return result;
  }

  /** Appends only when the query's context version still equals expectedContextVersion. */
  appendIf(events, query, expectedContextVersion) {
    const [first, second, count] = encodeEvents(events, 'appendIf');
    const queryJson = encodeQuery(query, 'appendIf: query');
    let expected;
    if (expectedContextVersion !== undefined && expectedContextVersion !== null) {
      checkSequenceNumber(expectedContextVersion, 'appendIf: expectedContextVersion');
      expected = expectedContextVersion;
    }
    const core = this.#core;
    const slots = core.slots;
    if (core.native.appendIf(first, second, queryJson, expected)) {
      const result = appendResult(slots, count);
      if (core.subscriptions.size !== 0) core.noteCommit(result.last_sequence_number);
      return { append_result: result };
    }
    const conflict = {};
    if (slots[0] !== 0n) conflict.expected_context_version = slots[1];
    if (slots[2] !== 0n) conflict.actual_context_version = slots[3];
    return { conflict };
  }

  /** A live stream of every batch committed from now on. */
  streamAll(handle) {
    checkHandler(handle, 'streamAll');
    return this.#live(null, handle);
  }

  /** A live stream of the matching facts of every batch committed from now on. */
  streamTo(query, handle) {
    const queryJson = encodeQuery(query, 'streamTo: query');
    checkHandler(handle, 'streamTo');
    return this.#live(queryJson, handle);
  }

  /** A durable stream: replays after the stored cursor, then continues live. */
  async streamAllDurable(durableStream, handle) {
    checkDurableStream(durableStream, 'streamAllDurable');
    checkHandler(handle, 'streamAllDurable');
    return this.#durable(durableStream.name, null, handle);
  }

  /** A durable stream of the facts matching the query. */
  async streamToDurable(durableStream, query, handle) {
    checkDurableStream(durableStream, 'streamToDurable');
    const queryJson = encodeQuery(query, 'streamToDurable: query');
    checkHandler(handle, 'streamToDurable');
    return this.#durable(durableStream.name, queryJson, handle);
  }

  /**
   * Stops every stream of this store and releases its native resources (files,
   * connections, threads). Not in @factstr/factstr-node 0.5.2; a store that is garbage
   * collected is closed the same way. Further calls throw an Error with code "closed".
   */
  close() {
    this.#core.close();
  }

  #live(queryJson, handle) {
    const core = this.#core;
    const state = new StreamState(core, handle, false);
    state.native = core.native.streamLive(queryJson, state.dispatch);
    core.subscriptions.add(state);
    return new EventStreamSubscription(state);
  }

  async #durable(name, queryJson, handle) {
    const core = this.#core;
    const state = new StreamState(core, handle, true);
    let native;
    try {
      native = await core.native.streamDurable(name, queryJson, state.dispatch);
    } catch (error) {
      state.stopped = true;
      if (error && error.code === 'handler_failed' && state.lastError !== undefined) error.cause = state.lastError;
      throw error;
    }
    state.native = native;
    if (core.closed || !native.active()) {
      // Stopped right after its replay (closed, or a live batch already failed).
      state.stopped = true;
      native.release();
    } else {
      core.subscriptions.add(state);
    }
    return new EventStreamSubscription(state);
  }
}

/** A memory-backed store; durable cursors live as long as the store. */
class FactstrMemoryStore extends FactstrStore {
  constructor() {
    super('memory');
  }
}

/** A SQLite-backed store in the file at `path` (created when missing). */
class FactstrSqliteStore extends FactstrStore {
  constructor(path) {
    if (typeof path !== 'string') throw new TypeError(`FactstrSqliteStore: path must be a string, got ${describe(path)}`);
    super('sqlite', path);
  }
}

const kBootstrap = Symbol('bootstrap');

/** A PostgreSQL-backed store in an existing database. */
class FactstrPostgresStore extends FactstrStore {
  constructor(databaseUrl, ...rest) {
    if (databaseUrl === kBootstrap) {
      super('bootstrap', rest[0], rest[1]);
      return;
    }
    if (typeof databaseUrl !== 'string') {
      throw new TypeError(`FactstrPostgresStore: databaseUrl must be a string, got ${describe(databaseUrl)}`);
    }
    super('postgres', databaseUrl);
  }

  /** Creates the database on the server when missing, then opens it. */
  static bootstrap(options) {
    if (!isPlainObject(options) || typeof options.serverUrl !== 'string' || typeof options.databaseName !== 'string') {
      throw new TypeError(
        `FactstrPostgresStore.bootstrap: expected { serverUrl: string, databaseName: string }, got ${describe(options)}`,
      );
    }
    return new FactstrPostgresStore(kBootstrap, options.serverUrl, options.databaseName);
  }
}

module.exports = { FactstrMemoryStore, FactstrSqliteStore, FactstrPostgresStore };
