'use strict';
// factstr-cpp's Node binding against the event stores a Node user would otherwise pick,
// in the same run, on the same machine: @event-driven-io/emmett (memory, SQLite,
// PostgreSQL) and @rotorsoft/act (memory, PostgreSQL).
//
//   node --expose-gc run.js [--quick] [--json-file PATH] [--backend memory|sqlite|postgres]...
//               [--pg-url postgres://...]   (default: $FACTSTR_TEST_POSTGRES_URL; without
//                                            one the PostgreSQL rows say "skipped")
//
// Workloads (payload {"accountId":"a00017","amount":42,"currency":"EUR","note":"…"}, ~120 B):
//   W1  single appends, one at a time, each awaited
//   W2  batches of 100 events per append
//   W3  the command pattern on a log of LOG events over ACCOUNTS accounts: read the
//       account's narrow context, then a conditional append on the version read
//       (ours: query + appendIf; emmett: readStream + appendToStream with
//       expectedStreamVersion; act: store().query({stream}) + store().commit with
//       expectedVersion)
//   P   count/sum projection: catch up over a log of PROJ events, folding count and sum of
//       `amount` per accountId into a Map (ours: streamAllDurable; emmett SQLite/PostgreSQL:
//       eventStore.consumer() with a reactor from the beginning, stopWhen noMessagesLeft;
//       emmett memory: no global consumer on the in-memory store, readStream per account
//       stream; act: store().query over all events)
// Every store starts empty; the warm-up (operations of the same kind, see SIZES) is
// excluded from the timing.
// @rotorsoft/act's InMemoryStore sleeps SLEEP_MS (default 100 ms; 0 when NODE_ENV=test) in
// every operation to imitate I/O; measured here with it off.
if (process.env.SLEEP_MS === undefined) process.env.SLEEP_MS = '0';
// act logs each schema it seeds on stdout (its default level is "trace" outside
// NODE_ENV=test/production); only its errors are wanted here.
if (process.env.LOG_LEVEL === undefined) process.env.LOG_LEVEL = 'error';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const argValue = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const backendsWanted = [];
for (let i = 0; i < args.length; i++) if (args[i] === '--backend') backendsWanted.push(args[i + 1]);
const jsonFile = argValue('--json-file');
const pgUrl = argValue('--pg-url') || process.env.FACTSTR_TEST_POSTGRES_URL || '';

// A library's stray asynchronous error (emmett-sqlite sometimes throws one from a consumer's
// connection) fails the run it happened in, recorded in that row, instead of ending the whole
// comparison; act installs handlers that exit the process, which are replaced after each
// require of it.
let failRun = null;
function onStray(error) {
  if (failRun) failRun(error);
  else console.error(`a stray error outside any run: ${(error && error.message) || error}`);
}
function guardProcess() {
  for (const event of ['uncaughtException', 'unhandledRejection']) {
    process.removeAllListeners(event);
    process.on(event, onStray);
  }
}
guardProcess();

const factstr = require(process.env.FACTSTR_NODE_PACKAGE || path.join(__dirname, '..', '..', 'bindings', 'node'));

// Sizes per backend: [W1 appends, W2 batches of 100, W3 log, W3 accounts, W3 commands, P log].
// W1, W2 and W3 stop at that many operations or after LIMIT seconds, whichever comes first;
// the rate is what was done over the time it took. The W1 and W2 counts are only a guard on
// memory, above what any library here does in LIMIT seconds: every library appends for the
// same time, after the same untimed warm-up of WARM_LIMIT seconds, so a fast store is not
// measured in its first fraction of a second (its JIT and heap still warming up) while a slow
// one is measured over seconds. W3 warms up with WARM commands (at most WARM_LIMIT seconds):
// its warm-up appends to the log it reads, which should stay the same size for everyone.
const SIZES = quick
  ? { memory: [300, 10, 1000, 100, 200, 2000], sqlite: [100, 5, 1000, 100, 100, 2000], postgres: [100, 5, 1000, 100, 100, 2000] }
  : { memory: [3000000, 30000, 100000, 1000, 50000, 100000], sqlite: [50000, 10000, 20000, 1000, 20000, 50000], postgres: [30000, 5000, 20000, 1000, 10000, 50000] };
const WARM = quick ? 10 : 1000;
const LIMIT = quick ? 0.5 : 3;
const WARM_LIMIT = quick ? 0.1 : 0.5;

const NOTE = 'payment for invoice 2026-11 / ref 0123456789';
const account = (i) => `a${String(i).padStart(5, '0')}`;
const payload = (i, accounts) => ({ accountId: account(i % accounts), amount: 42 + (i % 7), currency: 'EUR', note: NOTE });

// ---- adapters -------------------------------------------------------------------------------
// Each adapter: append1(type, payload), appendBatch([{type,payload}]), command(accountId,
// payload) -> true (appended) / false (conflict), project(n) -> {count,sum} after catch-up,
// close().

function oursAdapter(store) {
  const contextQuery = (accountId) => ({ filters: [{ event_types: ['deposited', 'withdrawn'], payload_predicates: [{ accountId }] }] });
  return {
    name: 'factstr',
    async append1(type, p) { store.append([{ event_type: type, payload: p }]); },
    async appendBatch(events) { store.append(events.map((e) => ({ event_type: e.type, payload: e.payload }))); },
    async command(accountId, p) {
      const q = contextQuery(accountId);
      const context = store.query(q);
      const outcome = store.appendIf([{ event_type: 'withdrawn', payload: p }], q, context.current_context_version);
      return !!outcome.append_result;
    },
    async project(n) {
      const byAccount = new Map();
      let count = 0;
      let done;
      const finished = new Promise((resolve) => { done = resolve; });
      const sub = await store.streamAllDurable({ name: `proj-${Date.now()}` }, (events) => {
        for (const e of events) {
          const a = e.payload.accountId;
          const s = byAccount.get(a);
          if (s) { s.count++; s.sum += e.payload.amount; } else byAccount.set(a, { count: 1, sum: e.payload.amount });
          if (++count === n) done();
        }
      });
      await finished;
      sub.unsubscribe();
      return byAccount;
    },
    async close() { store.close(); },
  };
}

function emmettAdapter(eventStore, kind, closeFn) {
  const { STREAM_DOES_NOT_EXIST } = require('@event-driven-io/emmett');
  const streamOf = (accountId) => `account-${accountId}`;
  const streams = new Set();
  return {
    name: 'emmett',
    async append1(type, p) {
      streams.add(p.accountId);
      await eventStore.appendToStream(streamOf(p.accountId), [{ type, data: p }]);
    },
    async appendBatch(events) {
      // One append is one stream in emmett: a batch goes to one account's stream.
      streams.add(events[0].payload.accountId);
      await eventStore.appendToStream(streamOf(events[0].payload.accountId), events.map((e) => ({ type: e.type, data: e.payload })));
    },
    async command(accountId, p) {
      const name = streamOf(accountId);
      const { currentStreamVersion, streamExists } = await eventStore.readStream(name);
      try {
        await eventStore.appendToStream(name, [{ type: 'withdrawn', data: p }], {
          expectedStreamVersion: streamExists ? currentStreamVersion : STREAM_DOES_NOT_EXIST,
        });
        return true;
      } catch (e) {
        if (e && e.name === 'ExpectedVersionConflictError') return false;
        throw e;
      }
    },
    async project(n) {
      const byAccount = new Map();
      let count = 0;
      const fold = (data) => {
        const s = byAccount.get(data.accountId);
        if (s) { s.count++; s.sum += data.amount; } else byAccount.set(data.accountId, { count: 1, sum: data.amount });
        count++;
      };
      if (kind === 'memory') {
        for (const a of streams) {
          const { events } = await eventStore.readStream(streamOf(a));
          for (const e of events) fold(e.data);
        }
      } else {
        // SQLite: consumer().processor(); PostgreSQL: consumer().reactor() (emmett 0.42 names).
        const pulling = { batchSize: 1000 };
        const consumer = eventStore.consumer(kind === 'postgres' ? { stopWhen: { noMessagesLeft: true }, pulling } : { pulling });
        const options = {
          processorId: `proj-${Date.now()}`,
          startFrom: 'BEGINNING',
          stopAfter: () => count === n,
          eachMessage: async (m) => { fold(m.data); },
        };
        if (kind === 'postgres') consumer.reactor(options); else consumer.processor(options);
        await consumer.start();
        await consumer.close();
      }
      if (count !== n) throw new Error(`emmett projection saw ${count} events, expected ${n}`);
      return byAccount;
    },
    close: closeFn,
  };
}

function actAdapter(store) {
  const meta = { correlation: 'bench', causation: {} };
  const streamOf = (accountId) => `account-${accountId}`;
  return {
    name: 'act',
    async append1(type, p) { await store.commit(streamOf(p.accountId), [{ name: type, data: p }], meta); },
    async appendBatch(events) {
      await store.commit(streamOf(events[0].payload.accountId), events.map((e) => ({ name: e.type, data: e.payload })), meta);
    },
    async command(accountId, p) {
      const stream = streamOf(accountId);
      let version = -1;
      await store.query((e) => { version = e.version; }, { stream, stream_exact: true });
      try {
        await store.commit(stream, [{ name: 'withdrawn', data: p }], meta, version);
        return true;
      } catch (e) {
        if (e && e.name === 'ConcurrencyError') return false;
        throw e;
      }
    },
    async project(n) {
      const byAccount = new Map();
      let count = 0;
      await store.query((e) => {
        const s = byAccount.get(e.data.accountId);
        if (s) { s.count++; s.sum += e.data.amount; } else byAccount.set(e.data.accountId, { count: 1, sum: e.data.amount });
        count++;
      }, { limit: n + 1 });
      if (count !== n) throw new Error(`act projection saw ${count} events, expected ${n}`);
      return byAccount;
    },
    async close() { await store.dispose(); },
  };
}

// ---- opening stores per backend ------------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factstr-peers-'));
let seq = 0;
const pgDatabases = [];

function pgParts(url) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 5432), user: decodeURIComponent(u.username || 'postgres'), password: decodeURIComponent(u.password || ''), database: u.pathname.slice(1) || 'postgres' };
}
function pgUrlFor(db) {
  const u = new URL(pgUrl);
  u.pathname = `/${db}`;
  return u.toString();
}
async function pgAdmin(sql) {
  const { Client } = require('pg');
  const c = new Client({ connectionString: pgUrl });
  await c.connect();
  try { await c.query(sql); } finally { await c.end(); }
}
async function pgFreshDatabase(prefix) {
  const db = `peers_${prefix}_${process.pid}_${++seq}`;
  await pgAdmin(`CREATE DATABASE ${db}`);
  pgDatabases.push(db);
  return db;
}

const opener = {
  factstr: {
    async memory() { return oursAdapter(new factstr.FactstrMemoryStore()); },
    async sqlite() { return oursAdapter(new factstr.FactstrSqliteStore(path.join(tmp, `ours-${++seq}.sqlite`))); },
    async postgres() {
      const db = await pgFreshDatabase('ours');
      return oursAdapter(new factstr.FactstrPostgresStore(pgUrlFor(db)));
    },
  },
  emmett: {
    async memory() {
      const { getInMemoryEventStore } = require('@event-driven-io/emmett');
      return emmettAdapter(getInMemoryEventStore(), 'memory', async () => {});
    },
    async sqlite() {
      const { getSQLiteEventStore } = require('@event-driven-io/emmett-sqlite');
      const store = getSQLiteEventStore({ fileName: path.join(tmp, `emmett-${++seq}.sqlite`), schema: { autoMigration: 'CreateOrUpdate' } });
      await store.schema.migrate(); // before the first append (else WAL switch races it)
      return emmettAdapter(store, 'sqlite', async () => { if (store.close) await store.close(); });
    },
    async postgres() {
      const { getPostgreSQLEventStore } = require('@event-driven-io/emmett-postgresql');
      const db = await pgFreshDatabase('emmett');
      const store = getPostgreSQLEventStore(pgUrlFor(db));
      return emmettAdapter(store, 'postgres', () => store.close());
    },
  },
  act: {
    async memory() {
      const { InMemoryStore } = require('@rotorsoft/act');
      guardProcess();
      const s = new InMemoryStore();
      await s.seed();
      return actAdapter(s);
    },
    sqlite: null, // @rotorsoft/act ships no SQLite adapter
    async postgres() {
      const { PostgresStore } = require('@rotorsoft/act-pg');
      guardProcess();
      const db = await pgFreshDatabase('act');
      const s = new PostgresStore({ ...pgParts(pgUrlFor(db)), schema: 'public', table: 'events' });
      await s.seed();
      return actAdapter(s);
    },
  },
};
const UNSUPPORTED = { act: { sqlite: '@rotorsoft/act has no SQLite store (adapters: in-memory, @rotorsoft/act-pg)' } };

// ---- workloads ------------------------------------------------------------------------------

const now = () => process.hrtime.bigint();
const secondsSince = (t) => Number(now() - t) / 1e9;

// Runs op(i) for i = 0, 1, … until n operations or `limit` seconds; returns how many ran.
async function bounded(n, limit, op) {
  const t = now();
  let i = 0;
  while (i < n && ((i & 15) !== 0 || secondsSince(t) < limit)) await op(i++);
  return i;
}

async function w1(adapter, n) {
  await bounded(n, WARM_LIMIT, (i) => adapter.append1('deposited', payload(i, 1000)));
  const t = now();
  const done = await bounded(n, LIMIT, (i) => adapter.append1('deposited', payload(i, 1000)));
  return { ops: done, events: done, seconds: secondsSince(t) };
}

async function w2(adapter, batches) {
  const batch = (b) => Array.from({ length: 100 }, (_, j) => ({ type: 'deposited', payload: payload(b, 1000) }));
  await bounded(batches, WARM_LIMIT, (b) => adapter.appendBatch(batch(b)));
  const t = now();
  const done = await bounded(batches, LIMIT, (b) => adapter.appendBatch(batch(b)));
  return { ops: done, events: done * 100, seconds: secondsSince(t) };
}

async function preload(adapter, n, accounts) {
  // Not timed: per account, batches of its events (emmett and act append to one stream).
  const per = Math.ceil(n / accounts);
  for (let a = 0; a < accounts; a++) {
    const events = Array.from({ length: per }, (_, j) => ({ type: 'deposited', payload: payload(a, accounts) }));
    await adapter.appendBatch(events);
  }
  return per * accounts;
}

async function w3(adapter, log, accounts, commands) {
  await preload(adapter, log, accounts);
  await bounded(WARM, WARM_LIMIT, (i) => adapter.command(account(i % accounts), payload(i, accounts)));
  let ok = 0;
  const t = now();
  const done = await bounded(commands, LIMIT, async (i) => {
    const k = (i * 7919) % accounts;
    if (await adapter.command(account(k), payload(k, accounts))) ok++;
  });
  const seconds = secondsSince(t);
  if (ok !== done) throw new Error(`W3: ${done - ok} unexpected conflicts`);
  return { ops: done, events: done, seconds };
}

async function projection(adapter, log) {
  const accounts = 1000;
  const n = await preload(adapter, log, accounts);
  const t = now();
  const byAccount = await adapter.project(n);
  const seconds = secondsSince(t);
  let count = 0;
  for (const s of byAccount.values()) count += s.count;
  if (count !== n || byAccount.size !== accounts) throw new Error(`projection: ${count} events in ${byAccount.size} accounts`);
  return { ops: n, events: n, seconds };
}

const WORKLOADS = [
  ['W1', 'single appends, awaited', (a, s) => w1(a, s[0])],
  ['W2', 'batches of 100', (a, s) => w2(a, s[1])],
  ['W3', 'read context + conditional append', (a, s) => w3(a, s[2], s[3], s[4])],
  ['P', 'count/sum projection catch-up', (a, s) => projection(a, s[5])],
];

function describe(id, s) {
  const upTo = `≤${LIMIT} s`;
  switch (id) {
    case 'W1': return `W1 single appends (≤${s[0]}, ${upTo})`;
    case 'W2': return `W2 batches of 100 (≤${s[1]}, ${upTo})`;
    case 'W3': return `W3 commands, log ${s[2]}/${s[3]} accts (${upTo})`;
    default: return `P  projection over ${s[5]}`;
  }
}

async function main() {
  const backends = backendsWanted.length ? backendsWanted : ['memory', 'sqlite', 'postgres'];
  const results = [];
  const notes = [];
  for (const backend of backends) {
    if (backend === 'postgres' && !pgUrl) {
      notes.push('postgres: skipped (no --pg-url and no FACTSTR_TEST_POSTGRES_URL)');
      continue;
    }
    const s = SIZES[backend];
    for (const [id, , run] of WORKLOADS) {
      const row = { workload: id, backend, what: describe(id, s), rates: {}, ops: {}, errors: {} };
      for (const lib of ['factstr', 'emmett', 'act']) {
        const open = opener[lib][backend];
        if (!open) { row.errors[lib] = (UNSUPPORTED[lib] || {})[backend] || 'not supported'; continue; }
        let adapter;
        try {
          // Each library starts on a collected heap: the garbage of the run before (another
          // library's store) is not collected on this one's time. Needs node --expose-gc
          // (scripts/bench passes it); without it the runs simply follow each other.
          if (typeof global.gc === 'function') global.gc();
          adapter = await open();
          const strayError = new Promise((_, reject) => { failRun = reject; });
          const r = await Promise.race([run(adapter, s), strayError]);
          row.rates[lib] = r.events / r.seconds;
          row.ops[lib] = r.ops;
        } catch (e) {
          row.errors[lib] = String((e && e.message) || e).split('\n')[0];
          if (process.env.PEERS_DEBUG) console.error(e);
        } finally {
          failRun = null;
          if (adapter) {
            const closing = adapter.close().catch(() => { /* already reported */ });
            await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
          }
        }
      }
      results.push(row);
      printRow(row);
    }
  }
  for (const db of pgDatabases) { try { await pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`); } catch (_) { /* server gone */ } }
  fs.rmSync(tmp, { recursive: true, force: true });
  const errors = new Map();
  for (const r of results) for (const [lib, e] of Object.entries(r.errors)) errors.set(`${lib} ${r.backend}: ${e}`, true);
  if (errors.size) { console.log('\nnot measured:'); for (const e of errors.keys()) console.log(`  ${e}`); }
  for (const n of notes) console.log(n);
  if (jsonFile) {
    fs.writeFileSync(jsonFile, JSON.stringify({
      date: new Date().toISOString(), node: process.version, quick, cpu: os.cpus()[0].model, cores: os.cpus().length,
      versions: versions(), results: results.map((r) => ({ ...r, multiples: multiples(r) })), notes,
    }, null, 2));
  }
}

function versions() {
  const v = {};
  for (const p of ['@event-driven-io/emmett', '@event-driven-io/emmett-sqlite', '@event-driven-io/emmett-postgresql', '@rotorsoft/act', '@rotorsoft/act-pg', 'sqlite3', 'pg']) {
    // Read from node_modules: packages with an "exports" map do not export package.json.
    try { v[p] = JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules', p, 'package.json'), 'utf8')).version; } catch (_) { v[p] = null; }
  }
  return v;
}

function multiples(r) {
  const m = {};
  for (const lib of ['emmett', 'act']) if (r.rates.factstr && r.rates[lib]) m[lib] = r.rates.factstr / r.rates[lib];
  return m;
}

let headerPrinted = false;
function printRow(r) {
  if (!headerPrinted) {
    console.log(`${'workload'.padEnd(42)} ${'backend'.padEnd(8)} ${'factstr/s'.padStart(10)} ${'emmett/s'.padStart(10)} ${'×emmett'.padStart(8)} ${'act/s'.padStart(10)} ${'×act'.padStart(8)}`);
    headerPrinted = true;
  }
  const rate = (lib) => (r.rates[lib] ? String(Math.round(r.rates[lib])) : r.errors[lib] ? (r.errors[lib].includes('no SQLite') ? 'n/a' : 'error') : '-');
  const m = multiples(r);
  const mult = (lib) => (m[lib] ? `${m[lib] >= 100 ? Math.round(m[lib]) : m[lib].toFixed(1)}×` : '');
  console.log(`${r.what.padEnd(42)} ${r.backend.padEnd(8)} ${rate('factstr').padStart(10)} ${rate('emmett').padStart(10)} ${mult('emmett').padStart(8)} ${rate('act').padStart(10)} ${mult('act').padStart(8)}`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
