'use strict';
// appendIf: query-defined optimistic concurrency (DESIGN.md §1 "Conditional append").
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { forEachBackend, event, seqs } = require('./helpers');

const accountA1 = { filters: [{ payload_predicates: [{ acc: 'a1' }] }] };

forEachBackend((backend) => {
  test('appendIf commits when the expected version is absent (undefined or null) and the context is empty', () => {
    const store = backend.open();
    store.append([event('other', { acc: 'zz' })]);
    const first = store.appendIf([event('opened', { acc: 'a1' })], accountA1);
    assert.deepEqual(first, {
      append_result: { first_sequence_number: 2n, last_sequence_number: 2n, committed_count: 1n },
    });
    assert.equal(first.conflict, undefined);
    const store2 = backend.open();
    assert.ok(store2.appendIf([event('opened', { acc: 'a1' })], accountA1, null).append_result);
  });

  test("appendIf commits when the expected version equals the context's current version", () => {
    const store = backend.open();
    store.append([event('opened', { acc: 'a1' }), event('other', { acc: 'a2' })]);
    const context = store.query(accountA1);
    assert.equal(context.current_context_version, 1n);
    const outcome = store.appendIf(
      [event('deposited', { acc: 'a1', amount: 5 }), event('deposited', { acc: 'a1', amount: 6 })],
      accountA1,
      context.current_context_version,
    );
    assert.deepEqual(outcome.append_result, { first_sequence_number: 3n, last_sequence_number: 4n, committed_count: 2n });
    assert.equal(store.query(accountA1).current_context_version, 4n);
  });

  test('a stale expected version is a conflict carrying the expected and the actual version', () => {
    const store = backend.open();
    store.append([event('opened', { acc: 'a1' })]);
    store.append([event('deposited', { acc: 'a1' })]);
    const outcome = store.appendIf([event('withdrawn', { acc: 'a1' })], accountA1, 1n);
    assert.deepEqual(outcome, { conflict: { expected_context_version: 1n, actual_context_version: 2n } });
    assert.equal(outcome.append_result, undefined);
    const none = store.appendIf([event('withdrawn', { acc: 'a1' })], accountA1);
    assert.deepEqual(none, { conflict: { actual_context_version: 2n } }, 'no expected version: expected is absent');
    const fresh = backend.open();
    assert.deepEqual(fresh.appendIf([event('x', {})], accountA1, 5n), { conflict: { expected_context_version: 5n } });
  });

  test('a failed conditional append writes nothing and consumes no sequence number', () => {
    const store = backend.open();
    store.append([event('opened', { acc: 'a1' })]);
    store.append([event('deposited', { acc: 'a1' })]);
    assert.ok(store.appendIf([event('lost', { acc: 'a1' }), event('lost', { acc: 'a1' })], accountA1, 1n).conflict);
    assert.deepEqual(seqs(store.query({}).event_records), [1n, 2n]);
    assert.equal(store.query({ filters: [{ event_types: ['lost'] }] }).event_records.length, 0);
    assert.equal(store.append([event('next', {})]).first_sequence_number, 3n);
  });

  test("on a payload-filtered context, a change to another key's facts does not conflict", () => {
    const store = backend.open();
    store.append([event('opened', { acc: 'a1' })]);
    const version = store.query(accountA1).current_context_version;
    store.append([event('opened', { acc: 'a2' })]);
    assert.ok(store.appendIf([event('deposited', { acc: 'a1' })], accountA1, version).append_result);
  });

  test("the context version follows the query's filters, types and ORs", () => {
    const store = backend.open();
    store.append([event('a', { k: 1 }), event('b', { k: 2 }), event('c', { k: 3 })]);
    const query = { filters: [{ event_types: ['a'] }, { payload_predicates: [{ k: 2 }] }] };
    assert.ok(store.appendIf([event('d', {})], query, 1n).conflict);
    assert.ok(store.appendIf([event('d', {})], query, 2n).append_result);
  });

  test('min_sequence_number of the context query is ignored for the version', () => {
    const store = backend.open();
    store.append([event('a', {}), event('a', {})]);
    const query = { filters: [{ event_types: ['a'] }], min_sequence_number: 5n };
    assert.deepEqual(store.appendIf([event('a', {})], query), { conflict: { actual_context_version: 2n } });
    assert.ok(store.appendIf([event('a', {})], query, 2n).append_result);
  });

  test('bad appendIf input is a TypeError and writes nothing', () => {
    const store = backend.open();
    store.append([event('a', {})]);
    assert.throws(() => store.appendIf([event('a', {})], accountA1, 1), /expectedContextVersion must be a bigint, got number 1/);
    assert.throws(() => store.appendIf([event('a', {})], accountA1, '1'), TypeError);
    assert.throws(() => store.appendIf([event('a', 1n)], accountA1), TypeError);
    assert.throws(() => store.appendIf([event('a', {})], undefined), /query must be an EventQuery/);
    assert.throws(() => store.appendIf([event('a', {})], { filters: 'x' }), TypeError);
    assert.throws(() => store.appendIf([], {}), (error) => error.code === 'empty_append');
    assert.deepEqual(seqs(store.query({}).event_records), [1n]);
  });

  test('appendIf results have exactly one of append_result and conflict', () => {
    const store = backend.open();
    const committed = store.appendIf([event('a', {})], { filters: [{ event_types: ['a'] }] });
    const conflict = store.appendIf([event('a', {})], { filters: [{ event_types: ['a'] }] });
    assert.deepEqual(Object.keys(committed), ['append_result']);
    assert.deepEqual(Object.keys(conflict), ['conflict']);
  });
});
