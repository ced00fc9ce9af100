'use strict';
// append: ranges, batches, all-or-nothing, and input that writes nothing (DESIGN.md §1 "Facts").
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { forEachBackend, event, seqs } = require('./helpers');

forEachBackend((backend) => {
  test('appends receive consecutive global ranges starting at one, as bigints', () => {
    const store = backend.open();
    assert.deepEqual(store.append([event('a', { n: 1 })]), {
      first_sequence_number: 1n,
      last_sequence_number: 1n,
      committed_count: 1n,
    });
    assert.deepEqual(store.append([event('a', { n: 2 }), event('b', { n: 3 }), event('c', { n: 4 })]), {
      first_sequence_number: 2n,
      last_sequence_number: 4n,
      committed_count: 3n,
    });
    assert.deepEqual(seqs(store.query({}).event_records), [1n, 2n, 3n, 4n]);
  });

  test('an empty append is an error and writes nothing', () => {
    const store = backend.open();
    assert.throws(() => store.append([]), (error) => error instanceof Error && error.code === 'empty_append');
    assert.equal(store.query({}).event_records.length, 0);
    assert.equal(store.append([event('a', {})]).first_sequence_number, 1n);
  });

  test('a payload that is not JSON-serializable is a TypeError naming the event, and the batch writes nothing', () => {
    const store = backend.open();
    const circular = {};
    circular.self = circular;
    for (const payload of [undefined, () => 1, 10n, circular, Symbol('s')]) {
      assert.throws(() => store.append([event('ok', { fine: true }), event('bad', payload)]), (error) => {
        assert.ok(error instanceof TypeError, `${String(payload)}: ${error}`);
        assert.match(error.message, /events\[1\]\.payload/);
        return true;
      });
    }
    assert.equal(store.query({}).event_records.length, 0);
    assert.equal(store.append([event('a', {})]).first_sequence_number, 1n);
  });

  test('a batch stores what JSON.stringify makes of each payload, toJSON included, and event types as given', () => {
    const store = backend.open();
    const when = new Date(Date.UTC(2026, 10, 24, 5, 0, 0));
    const custom = { toJSON: () => ({ replaced: true }) };
    const types = ['with "quotes"', 'grüße 🚀', 'back\\slash', 'tab\tand\nnewline'];
    store.append([event(types[0], when), event(types[1], custom), event(types[2], { n: 1 }), event(types[3], [when])]);
    const records = store.query({}).event_records;
    assert.deepEqual(records.map((r) => r.event_type), types);
    assert.deepEqual(records.map((r) => r.payload), [when.toJSON(), { replaced: true }, { n: 1 }, [when.toJSON()]]);
    // A toJSON that gives nothing is not JSON: the event is named, nothing is written.
    assert.throws(() => store.append([event('ok', {}), event('bad', { toJSON: () => undefined })]), (error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /events\[1\]\.payload is not JSON-serializable/);
      return true;
    });
    assert.equal(store.query({}).event_records.length, 4);
  });

  test('malformed events are TypeErrors and write nothing', () => {
    const store = backend.open();
    const cases = [
      [undefined, /events must be an array/],
      [{ event_type: 'a', payload: {} }, /events must be an array/],
      [[null], /events\[0\] must be a NewEvent/],
      [['a'], /events\[0\] must be a NewEvent/],
      [[{ payload: {} }], /events\[0\]\.event_type must be a string/],
      [[{ event_type: 7, payload: {} }], /events\[0\]\.event_type must be a string, got number 7/],
      [[event('a', {}), { event_type: 'b' }], /events\[1\]\.payload is missing/],
    ];
    for (const [events, message] of cases) {
      assert.throws(() => store.append(events), (error) => error instanceof TypeError && message.test(error.message));
    }
    assert.equal(store.query({}).event_records.length, 0);
  });

  test('an empty event type is invalid input and writes nothing', () => {
    const store = backend.open();
    assert.throws(() => store.append([event('a', {}), event('', {})]), (error) => error instanceof Error && typeof error.code === 'string');
    assert.equal(store.query({}).event_records.length, 0);
  });

  test('payloads read back as written: objects, arrays, scalars, unicode and escapes', () => {
    const store = backend.open();
    const payloads = [
      { sku: 'ABC-123', quantity: 1, nested: { list: [1, 'two', null, true, { deep: -3.5 }] } },
      [1, 2, 3],
      'a string with "quotes", \\ backslashes \\" and \n newlines',
      42,
      null,
      false,
      { unicode: 'grüße 🚀 日本', empty: {}, emptyList: [] },
      { big: 12345678901234567890, small: 1e-7 },
    ];
    store.append(payloads.map((payload, i) => event(`type-${i}`, payload)));
    const records = store.query({}).event_records;
    assert.deepEqual(
      records.map((r) => r.payload),
      payloads,
    );
    assert.deepEqual(
      records.map((r) => r.event_type),
      payloads.map((_, i) => `type-${i}`),
    );
  });

  test('one event at a time: any type and payload text crosses intact (short, long, non-ASCII)', () => {
    // A single event takes its own way into C++ (the type through a stack buffer, the payload
    // in one UTF-8 pass sized from its UTF-16 length, measured first when long).
    const store = backend.open();
    const edge = 'x'.repeat(249);
    const types = ['deposited', 'ü', `${edge}é`, `${edge}€`, `${edge}🚀`, `${'é'.repeat(200)}`, '日本'.repeat(100), '\ud800 lone'];
    const payloads = [
      { accountId: 'a00017', amount: 42 },
      { text: '🚀'.repeat(30000) },
      { text: 'y'.repeat(21000) + '€€' }, // just under the measured way's 65,536-byte bound
      { text: 'z'.repeat(70000) },
      { escaped: '"\\\n\u0001' },
      '€',
      7,
      [1, 'two'],
    ];
    let expected = 1n;
    for (let i = 0; i < types.length; i++) {
      const result = store.append([event(types[i], payloads[i])]);
      assert.deepEqual(result, { first_sequence_number: expected, last_sequence_number: expected, committed_count: 1n });
      expected++;
    }
    const records = store.query({}).event_records;
    assert.deepEqual(
      records.map((r) => r.event_type),
      types.map((type) => type.replace('\ud800', '\ufffd')),
    );
    assert.deepEqual(
      records.map((r) => r.payload),
      payloads,
    );
    // JSON.stringify writes a lone surrogate as a \u escape; such text is not valid UTF-8
    // JSON to the store (nor to serde_json under @factstr/factstr-node): refused, nothing written.
    assert.throws(() => store.append([event('lone', { lone: '\udc00' })]), (error) => error.code === 'invalid_json');
    assert.equal(store.query({}).event_records.length, types.length);
    // Found by its payload key like any other fact.
    assert.deepEqual(seqs(store.query({ filters: [{ payload_predicates: [{ accountId: 'a00017' }] }] }).event_records), [1n]);
  });

  test('a batch of more than a thousand events reports its whole range', () => {
    const store = backend.open();
    store.append([event('a', {})]);
    const many = Array.from({ length: 1500 }, (_, i) => event('many', { i }));
    assert.deepEqual(store.append(many), { first_sequence_number: 2n, last_sequence_number: 1501n, committed_count: 1500n });
    assert.deepEqual(store.append(many.slice(0, 2)), { first_sequence_number: 1502n, last_sequence_number: 1503n, committed_count: 2n });
  });

  test('nested undefined values and functions are dropped as JSON.stringify drops them', () => {
    const store = backend.open();
    store.append([event('a', { keep: 1, gone: undefined, fn() {} })]);
    assert.deepEqual(store.query({}).event_records[0].payload, { keep: 1 });
  });

  test('occurred_at is the recorded UTC time of the append as an RFC 3339 string', () => {
    const store = backend.open();
    const before = Date.now();
    store.append([event('a', {})]);
    const after = Date.now();
    const [record] = store.query({}).event_records;
    assert.equal(typeof record.occurred_at, 'string');
    assert.match(record.occurred_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
    const at = Date.parse(record.occurred_at);
    assert.ok(at >= before - 1000 && at <= after + 1000, `${record.occurred_at} not within the append`);
  });

  test('records have exactly sequence_number, occurred_at, event_type and payload', () => {
    const store = backend.open();
    store.append([event('a', { x: 1 })]);
    const [record] = store.query({}).event_records;
    assert.deepEqual(Object.keys(record).sort(), ['event_type', 'occurred_at', 'payload', 'sequence_number']);
    assert.equal(typeof record.sequence_number, 'bigint');
  });
});
