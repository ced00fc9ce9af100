'use strict';
// SQLite and PostgreSQL: facts, batch boundaries and durable cursors survive reopening, and
// two store objects over the same storage share one log.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { forEachBackend, event, recorder, seqs } = require('./helpers');

forEachBackend(
  (backend) => {
    test('facts and batch boundaries survive reopening the store', async () => {
      const location = backend.location();
      const store = backend.reopen(location);
      store.append([event('a', { n: 1 }), event('b', { n: 2 })]);
      store.append([event('c', { n: 3 })]);
      store.close();
      const reopened = backend.reopen(location);
      const records = reopened.query({}).event_records;
      assert.deepEqual(seqs(records), [1n, 2n, 3n]);
      assert.deepEqual(records.map((r) => r.payload), [{ n: 1 }, { n: 2 }, { n: 3 }]);
      const rec = recorder();
      const subscription = await reopened.streamAllDurable({ name: 'boundaries' }, rec.handle);
      assert.deepEqual(rec.batches, [[1n, 2n], [3n]]);
      subscription.unsubscribe();
      assert.equal(reopened.append([event('d', {})]).first_sequence_number, 4n);
    });

    test('durable cursors survive reopening and replay resumes after them', async () => {
      const location = backend.location();
      const store = backend.reopen(location);
      store.append([event('a', {})]);
      store.append([event('b', {})]);
      const first = recorder();
      const subscription = await store.streamAllDurable({ name: 'projector' }, first.handle);
      assert.deepEqual(first.batches, [[1n], [2n]]);
      subscription.unsubscribe();
      store.append([event('c', {})]);
      store.close();

      const reopened = backend.reopen(location);
      const second = recorder();
      const resumed = await reopened.streamAllDurable({ name: 'projector' }, second.handle);
      assert.deepEqual(second.batches, [[3n]]);
      resumed.unsubscribe();
    });

    test('a failed replay keeps the persisted cursor across reopening', async () => {
      const location = backend.location();
      const store = backend.reopen(location);
      store.append([event('a', {})]);
      store.append([event('b', {})]);
      await assert.rejects(
        store.streamAllDurable({ name: 'p' }, (events) => events[0].sequence_number !== 2n),
        /handler failed/,
      );
      store.close();
      const reopened = backend.reopen(location);
      const rec = recorder();
      const subscription = await reopened.streamAllDurable({ name: 'p' }, rec.handle);
      assert.deepEqual(rec.batches, [[2n]]);
      subscription.unsubscribe();
    });

    test('two store objects over the same storage share one log and one conditional check', () => {
      const location = backend.location();
      const one = backend.reopen(location);
      const two = backend.reopen(location);
      one.append([event('a', { acc: 'x' })]);
      assert.deepEqual(seqs(two.query({}).event_records), [1n]);
      const context = { filters: [{ payload_predicates: [{ acc: 'x' }] }] };
      assert.ok(two.appendIf([event('b', { acc: 'x' })], context, 1n).append_result);
      assert.deepEqual(one.appendIf([event('c', { acc: 'x' })], context, 1n), {
        conflict: { expected_context_version: 1n, actual_context_version: 2n },
      });
      assert.equal(one.append([event('d', {})]).first_sequence_number, 3n);
    });
  },
  { persistentOnly: true },
);
