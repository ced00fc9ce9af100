'use strict';
// query: filters, payload predicates, cursors and versions (DESIGN.md §1 "Queries").
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { forEachBackend, event, seqs } = require('./helpers');

// 1 a {acc:a1}, 2 b {acc:a1}, 3 a {acc:a2}, 4 c {acc:a1,amount:5}, 5 b {acc:a2}
function seed(store) {
  store.append([event('a', { acc: 'a1' }), event('b', { acc: 'a1' })]);
  store.append([event('a', { acc: 'a2' })]);
  store.append([event('c', { acc: 'a1', amount: 5 }), event('b', { acc: 'a2' })]);
}

function matching(store, query) {
  return seqs(store.query(query).event_records);
}

// Every record a new durable stream's replay of the whole log delivers, in order.
async function replayed(store, name) {
  const delivered = [];
  const subscription = await store.streamAllDurable({ name }, (events) => {
    delivered.push(...events);
  });
  subscription.unsubscribe();
  return delivered;
}

forEachBackend((backend) => {
  test('query results come in ascending sequence order with both versions', () => {
    const store = backend.open();
    seed(store);
    const result = store.query({ filters: [{ event_types: ['b', 'a'] }] });
    assert.deepEqual(seqs(result.event_records), [1n, 2n, 3n, 5n]);
    assert.equal(result.last_returned_sequence_number, 5n);
    assert.equal(result.current_context_version, 5n);
  });

  test('missing, null or empty filters mean every fact', () => {
    const store = backend.open();
    seed(store);
    for (const query of [{}, { filters: null }, { filters: [] }, { filters: undefined }]) {
      assert.deepEqual(matching(store, query), [1n, 2n, 3n, 4n, 5n]);
    }
  });

  test('min_sequence_number is an exclusive cursor that narrows the rows only', () => {
    const store = backend.open();
    seed(store);
    const result = store.query({ filters: [{ event_types: ['a'] }], min_sequence_number: 1n });
    assert.deepEqual(seqs(result.event_records), [3n]);
    assert.equal(result.last_returned_sequence_number, 3n);
    assert.equal(result.current_context_version, 3n);
    const past = store.query({ filters: [{ event_types: ['a'] }], min_sequence_number: 3n });
    assert.deepEqual(past.event_records, []);
    assert.equal(past.last_returned_sequence_number, undefined);
    assert.equal(past.current_context_version, 3n, 'the context version ignores min_sequence_number');
  });

  test('a query that matches nothing reports no last returned fact and no version', () => {
    const store = backend.open();
    const empty = store.query({});
    assert.deepEqual(empty.event_records, []);
    assert.equal(empty.last_returned_sequence_number, undefined);
    assert.equal(empty.current_context_version, undefined);
    seed(store);
    const none = store.query({ filters: [{ event_types: ['zzz'] }] });
    assert.deepEqual(none, { event_records: [] });
  });

  test('filters are ORed and a fact matching several filters is returned once', () => {
    const store = backend.open();
    seed(store);
    assert.deepEqual(
      matching(store, { filters: [{ event_types: ['a'] }, { payload_predicates: [{ acc: 'a1' }] }] }),
      [1n, 2n, 3n, 4n],
    );
  });

  test('payload predicates inside one filter are ORed; type and payload parts are ANDed', () => {
    const store = backend.open();
    seed(store);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ acc: 'a2' }, { amount: 5 }] }] }), [3n, 4n, 5n]);
    assert.deepEqual(matching(store, { filters: [{ event_types: ['b'], payload_predicates: [{ acc: 'a1' }] }] }), [2n]);
  });

  test('explicitly empty event_types or payload_predicates match nothing', () => {
    const store = backend.open();
    seed(store);
    const a = store.query({ filters: [{ event_types: [] }] });
    assert.deepEqual(a, { event_records: [] });
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [] }] }), []);
    assert.deepEqual(matching(store, { filters: [{ event_types: [] }, { event_types: ['c'] }] }), [4n]);
  });

  test('payload predicates are recursive subsets: nested objects, arrays order-free, extra keys allowed', () => {
    const store = backend.open();
    store.append([
      event('x', { order: { id: 7, lines: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 2 }] }, tags: ['red', 'big'] }),
      event('x', { order: { id: 8, lines: [{ sku: 'C', qty: 1 }] }, tags: ['blue'] }),
    ]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ order: { id: 7 } }] }] }), [1n]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ order: { lines: [{ sku: 'B' }] } }] }] }), [1n]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ tags: ['big', 'red'] }] }] }), [1n]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ tags: ['red', 'blue'] }] }] }), []);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ missing: 1 }] }] }), []);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{}] }] }), [1n, 2n]);
  });

  test('scalars: a string never equals a number; null and booleans match only themselves', () => {
    const store = backend.open();
    store.append([event('s', { v: '1' }), event('n', { v: 1 }), event('z', { v: null }), event('t', { v: true }), event('f', { v: false })]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ v: 1 }] }] }), [2n]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ v: '1' }] }] }), [1n]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ v: null }] }] }), [3n]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ v: true }] }] }), [4n]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ v: false }] }] }), [5n]);
    assert.deepEqual(matching(store, { filters: [{ payload_predicates: [{ v: 1.5 }] }] }), []);
  });

  test('queries over hundreds of facts return exactly the matching facts at every cursor', () => {
    const store = backend.open();
    const facts = [];
    for (let i = 0; i < 300; i++) facts.push(event(i % 3 === 0 ? 'even' : 'odd', { k: i % 7, i }));
    for (let i = 0; i < facts.length; i += 50) store.append(facts.slice(i, i + 50));
    const expected = (min) =>
      facts
        .map((f, i) => [BigInt(i + 1), f])
        .filter(([n, f]) => n > min && (f.event_type === 'even' || f.payload.k === 3))
        .map(([n]) => n);
    for (const min of [0n, 1n, 99n, 150n, 299n, 300n]) {
      const query = { filters: [{ event_types: ['even'] }, { payload_predicates: [{ k: 3 }] }], min_sequence_number: min };
      assert.deepEqual(matching(store, query), expected(min), `min ${min}`);
    }
  });

  // Records reach JavaScript as tables (src/records.hpp): one string per distinct time and
  // type, labels per record. Every record must still get its own fact's time, type and payload,
  // through a query, a filtered query that skips facts between, and a durable stream's replay.
  test('each record carries its own fact\'s time, type and payload, across batches, types and non-ASCII text', async () => {
    const store = backend.open();
    const spin = (ms) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        // distinct append times
      }
    };
    const appended = [
      [event('x', { n: 1 }), event('y', { n: 2, s: 'ünïcødé ✓ 😀' }), event('x', { n: 3 })],
      [event('événement', { n: 4, s: '日本語' })],
      [event('y', { n: 5 }), event('z', { n: 6 }), event('x', { n: 7, s: '\u0001 "quoted" \\ back' })],
      [event('x', { n: 8 })],
    ];
    for (const batch of appended) {
      store.append(batch);
      spin(3);
    }
    const flat = appended.flat();
    const batchOf = [0, 0, 0, 1, 2, 2, 2, 3];
    const check = (records, positions, where) => {
      assert.deepEqual(seqs(records), positions.map((i) => BigInt(i + 1)), where);
      records.forEach((record, k) => {
        const i = positions[k];
        assert.equal(record.event_type, flat[i].event_type, `${where}: type of #${i + 1}`);
        assert.deepEqual(record.payload, flat[i].payload, `${where}: payload of #${i + 1}`);
        assert.deepEqual(Object.keys(record), ['sequence_number', 'occurred_at', 'event_type', 'payload']);
      });
      // Facts of one append share their time; facts of different appends do not.
      for (let a = 0; a < records.length; a++) {
        for (let b = a + 1; b < records.length; b++) {
          const same = batchOf[positions[a]] === batchOf[positions[b]];
          assert.equal(records[a].occurred_at === records[b].occurred_at, same, `${where}: times of #${positions[a] + 1} and #${positions[b] + 1}`);
        }
      }
    };
    const all = store.query({});
    check(all.event_records, [0, 1, 2, 3, 4, 5, 6, 7], 'all');
    const times = all.event_records.map((r) => r.occurred_at);
    check(store.query({ filters: [{ event_types: ['y', 'événement'] }] }).event_records, [1, 3, 4], 'by type');
    check(store.query({ filters: [{ payload_predicates: [{ n: 7 }] }, { event_types: ['z'] }] }).event_records, [5, 6], 'by payload');
    check(store.query({ min_sequence_number: 6n }).event_records, [6, 7], 'after a cursor');
    const delivered = await replayed(store, 'tables');
    check(delivered, [0, 1, 2, 3, 4, 5, 6, 7], 'durable replay');
    assert.deepEqual(delivered.map((r) => r.occurred_at), times, 'the replay gives the query\'s times');
  });

  // The type table is JSON text written by the binding: every character JSON must escape, and
  // text that is not ASCII (the one-byte fast path must not take it), comes back unchanged.
  test('event types that need JSON escapes or are not ASCII come back exactly, in queries and a durable replay', async () => {
    const store = backend.open();
    const types = ['"', '\\', 'a"b\\c', '\u0001', '\n\t\r\b\f', '\u001f', '\u007f', '\u2028\u2029', '</script>', 'é', '日本', '😀', 'plain'];
    for (const type of types) store.append([event(type, { t: type })]);
    store.append(types.map((type) => event(type, { t: type, together: true })));
    const expected = [...types.map((t) => ({ t })), ...types.map((t) => ({ t, together: true }))];
    const check = (records, where) => {
      assert.equal(records.length, expected.length, where);
      records.forEach((record, i) => {
        assert.equal(record.sequence_number, BigInt(i + 1), where);
        assert.equal(record.event_type, expected[i].t, `${where}: type of #${i + 1}`);
        assert.deepEqual(record.payload, expected[i], `${where}: payload of #${i + 1}`);
      });
    };
    const all = store.query({}).event_records;
    check(all, 'all');
    types.forEach((type, i) => {
      const only = store.query({ filters: [{ event_types: [type] }] }).event_records;
      assert.deepEqual(seqs(only), [BigInt(i + 1), BigInt(types.length + i + 1)], `by type ${JSON.stringify(type)}`);
      assert.deepEqual(only.map((r) => r.event_type), [type, type]);
    });
    const delivered = await replayed(store, 'escapes');
    check(delivered, 'durable replay');
    assert.deepEqual(delivered, all, 'the replay gives the query\'s records');
  });

  // Types are labelled through a table: many distinct types, repeated out of order inside one
  // append (so one shared time), each record keeps its own.
  test('many distinct event types, repeated out of order, each record keeps its own type and payload', async () => {
    const store = backend.open();
    const distinct = 600;
    const batch = [];
    for (let k = 0; k < 2 * distinct; k++) {
      const t = (k * 7) % distinct;
      batch.push(event(`type-${t}`, { k, t }));
    }
    store.append(batch.slice(0, distinct));
    store.append(batch.slice(distinct));
    const check = (records, where) => {
      assert.equal(records.length, batch.length, where);
      records.forEach((record, k) => {
        assert.equal(record.sequence_number, BigInt(k + 1), where);
        assert.equal(record.event_type, batch[k].event_type, `${where}: type of #${k + 1}`);
        assert.deepEqual(record.payload, batch[k].payload, `${where}: payload of #${k + 1}`);
        assert.equal(record.occurred_at, records[k < distinct ? 0 : distinct].occurred_at, `${where}: time of #${k + 1}`);
      });
    };
    const all = store.query({}).event_records;
    check(all, 'all');
    const some = store.query({ filters: [{ event_types: ['type-599', 'type-0', 'type-300'] }] }).event_records;
    assert.deepEqual(
      some.map((r) => [r.event_type, r.payload.k]),
      batch.map((e, k) => [e.event_type, k]).filter(([type]) => ['type-599', 'type-0', 'type-300'].includes(type)),
    );
    const delivered = await replayed(store, 'many-types');
    check(delivered, 'durable replay');
  });

  // The binding hands pure-ASCII results to V8 as one-byte text and anything else as UTF-8:
  // a non-ASCII character at every offset of the text (in its 8-byte words and in its tail)
  // must send it down the UTF-8 path.
  test('a non-ASCII character anywhere in a result is decoded as UTF-8', () => {
    const store = backend.open();
    const texts = [];
    for (let pad = 0; pad < 16; pad++) {
      for (const tail of ['é', '😀', 'ÿ', '\u0080']) texts.push('x'.repeat(pad) + tail);
    }
    for (const text of texts) store.append([event('p', { s: text })]);
    for (const text of texts) store.append([event(text, {})]);
    texts.forEach((text, i) => {
      const byPayload = store.query({ filters: [{ payload_predicates: [{ s: text }] }] }).event_records;
      assert.deepEqual(byPayload.map((r) => r.payload.s), [text], `payload of #${i + 1}`);
      const byType = store.query({ filters: [{ event_types: [text] }] }).event_records;
      assert.deepEqual(byType.map((r) => r.event_type), [text], `type ${JSON.stringify(text)}`);
    });
  });

  test('malformed queries are TypeErrors naming the field', () => {
    const store = backend.open();
    const cases = [
      [undefined, /query must be an EventQuery object/],
      [[], /query must be an EventQuery object/],
      [{ filters: {} }, /query\.filters must be an array/],
      [{ filters: [null] }, /query\.filters\[0\] must be an EventFilter/],
      [{ filters: [{ event_types: 'a' }] }, /filters\[0\]\.event_types must be an array of strings/],
      [{ filters: [{ event_types: ['a', 1] }] }, /filters\[0\]\.event_types\[1\] must be a string/],
      [{ filters: [{ payload_predicates: {} }] }, /filters\[0\]\.payload_predicates must be an array/],
      [{ filters: [{ payload_predicates: [1n] }] }, /filters\[0\]\.payload_predicates\[0\] is not JSON-serializable/],
      [{ min_sequence_number: 3 }, /min_sequence_number must be a bigint, got number 3/],
      [{ min_sequence_number: '3' }, /min_sequence_number must be a bigint/],
    ];
    for (const [query, message] of cases) {
      assert.throws(() => store.query(query), (error) => error instanceof TypeError && message.test(error.message), String(message));
    }
    assert.throws(() => store.query({ min_sequence_number: -1n }), RangeError);
    assert.throws(() => store.query({ min_sequence_number: 1n << 64n }), RangeError);
  });
});
