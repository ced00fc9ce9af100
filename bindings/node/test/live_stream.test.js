'use strict';
// streamAll / streamTo: live, future-only delivery and the callback result rules.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { forEachBackend, event, eventually, recorder, sleep } = require('./helpers');

forEachBackend((backend) => {
  test('registration is synchronous and a live stream sees only batches committed after it', async () => {
    const store = backend.open();
    store.append([event('before', {})]);
    const rec = recorder();
    const subscription = store.streamAll(rec.handle);
    assert.equal(typeof subscription.unsubscribe, 'function');
    assert.ok(!(subscription instanceof Promise));
    store.append([event('after', {})]);
    await eventually(() => rec.batches.length === 1, 'one batch');
    await sleep(20);
    assert.deepEqual(rec.batches, [[2n]]);
    subscription.unsubscribe();
  });

  test('each committed append arrives as one batch of EventRecord values, in commit order', async () => {
    const store = backend.open();
    const received = [];
    const subscription = store.streamAll((events) => {
      received.push(events);
    });
    store.append([event('a', { n: 1 }), event('b', { n: 2 })]);
    store.append([event('c', { n: 3 })]);
    store.append([event('d', { n: 4 }), event('e', { n: 5 }), event('f', { n: 6 })]);
    await eventually(() => received.length === 3, 'three batches');
    assert.deepEqual(
      received.map((batch) => batch.map((r) => r.sequence_number)),
      [[1n, 2n], [3n], [4n, 5n, 6n]],
    );
    const [first] = received[0];
    assert.equal(first.event_type, 'a');
    assert.deepEqual(first.payload, { n: 1 });
    assert.equal(typeof first.occurred_at, 'string');
    subscription.unsubscribe();
  });

  test('streamTo delivers only the matching facts of a batch, and nothing when none match', async () => {
    const store = backend.open();
    const rec = recorder();
    const all = recorder();
    const subscription = store.streamTo({ filters: [{ event_types: ['hit'] }, { payload_predicates: [{ k: 1 }] }] }, rec.handle);
    const everything = store.streamAll(all.handle);
    store.append([event('hit', {}), event('miss', {}), event('miss', { k: 1 })]);
    store.append([event('miss', {})]);
    store.append([event('miss', { k: 2 }), event('hit', { k: 2 })]);
    await eventually(() => all.batches.length === 3, 'all batches');
    await sleep(30);
    assert.deepEqual(rec.batches, [[1n, 3n], [6n]]);
    subscription.unsubscribe();
    everything.unsubscribe();
  });

  test('several streams see the same batches; unsubscribe stops one and the others continue', async () => {
    const store = backend.open();
    const one = recorder();
    const two = recorder();
    const s1 = store.streamAll(one.handle);
    const s2 = store.streamAll(two.handle);
    store.append([event('a', {})]);
    await eventually(() => one.batches.length === 1 && two.batches.length === 1, 'both streams');
    s1.unsubscribe();
    s1.unsubscribe(); // idempotent
    store.append([event('b', {})]);
    await eventually(() => two.batches.length === 2, 'second stream continues');
    await sleep(30);
    assert.deepEqual(one.batches, [[1n]]);
    assert.deepEqual(two.batches, [[1n], [2n]]);
    s2.unsubscribe();
  });

  const failures = {
    'throws synchronously': () => {
      throw new Error('boom');
    },
    'returns false': () => false,
    'returns a rejected Promise': () => Promise.reject(new Error('rejected')),
    'resolves false': async () => false,
  };
  for (const [name, fail] of Object.entries(failures)) {
    test(`a live callback that ${name} keeps the append committed and later batches still arrive`, async () => {
      const store = backend.open();
      const rec = recorder(fail);
      const subscription = store.streamAll(rec.handle);
      const result = store.append([event('a', {})]);
      assert.equal(result.first_sequence_number, 1n);
      store.append([event('b', {})]);
      store.append([event('c', {})]);
      await eventually(() => rec.batches.length === 3, 'all three batches despite failures');
      assert.deepEqual(rec.batches, [[1n], [2n], [3n]]);
      assert.equal(store.query({}).event_records.length, 3);
      subscription.unsubscribe();
    });
  }

  test('a conflicting appendIf delivers nothing', async () => {
    const store = backend.open();
    store.append([event('a', {})]);
    const rec = recorder();
    const subscription = store.streamAll(rec.handle);
    assert.ok(store.appendIf([event('a', {})], { filters: [{ event_types: ['a'] }] }, 0n).conflict);
    store.append([event('b', {})]);
    await eventually(() => rec.batches.length === 1, 'the next append');
    assert.deepEqual(rec.batches, [[2n]]);
    subscription.unsubscribe();
  });

  test('an asynchronous callback holds back the next batch until its Promise settles', async () => {
    const store = backend.open();
    let running = 0;
    let overlapped = false;
    const order = [];
    const subscription = store.streamAll(async (events) => {
      running++;
      if (running > 1) overlapped = true;
      order.push(`start ${events[0].sequence_number}`);
      await sleep(15);
      order.push(`end ${events[0].sequence_number}`);
      running--;
    });
    for (let i = 0; i < 4; i++) store.append([event('a', { i })]);
    await eventually(() => order.length === 8, 'four batches');
    assert.equal(overlapped, false);
    assert.deepEqual(order, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3', 'start 4', 'end 4']);
    subscription.unsubscribe();
  });

  // Batches committed while a callback's Promise is pending reach JavaScript together, as one
  // run (one text, one table of times and types for all of them): each batch must still get
  // its own records, times, types and payloads.
  test('batches held back by a pending callback each keep their own time, type and payload', async () => {
    const store = backend.open();
    let release;
    const gate = new Promise((resolve) => {
      release = resolve;
    });
    const received = [];
    const subscription = store.streamAll((events) => {
      received.push(events);
      if (received.length === 1) return gate;
      return undefined;
    });
    store.append([event('first', {})]);
    await eventually(() => received.length === 1, 'the first batch');
    const batches = [
      [event('a', { n: 1 }), event('b', { n: 2, s: 'é' })],
      [event('b', { n: 3 })],
      [event('c "q"', { n: 4 }), event('a', { n: 5 }), event('日本', { n: 6 })],
      [event('a', { n: 7 })],
      [event('d', { n: 8 }), event('b', { n: 9 })],
    ];
    for (const batch of batches) {
      store.append(batch);
      const until = Date.now() + 2;
      while (Date.now() < until) {
        // distinct append times
      }
    }
    await sleep(30);
    release();
    await eventually(() => received.length === 1 + batches.length, 'the held back batches');
    const all = store.query({}).event_records;
    let next = 1;
    batches.forEach((batch, b) => {
      const got = received[b + 1];
      assert.deepEqual(got.map((r) => r.event_type), batch.map((e) => e.event_type), `types of batch ${b + 1}`);
      assert.deepEqual(got.map((r) => r.payload), batch.map((e) => e.payload), `payloads of batch ${b + 1}`);
      assert.ok(got.every((r) => r.occurred_at === got[0].occurred_at), `one time in batch ${b + 1}`);
      assert.notEqual(got[0].occurred_at, received[b][0].occurred_at, `batch ${b + 1} has its own time`);
      assert.deepEqual(got, all.slice(next, next + batch.length), `batch ${b + 1} as a query gives it`);
      next += batch.length;
    });
    subscription.unsubscribe();
  });

  test('batches arrive in commit order across many appends', async () => {
    const store = backend.open();
    const rec = recorder();
    const subscription = store.streamAll(rec.handle);
    const count = 200;
    for (let i = 0; i < count; i++) store.append([event('a', { i })]);
    await eventually(() => rec.flat().length === count, 'every fact');
    assert.deepEqual(rec.flat(), Array.from({ length: count }, (_, i) => BigInt(i + 1)));
    subscription.unsubscribe();
  });

  test('streamTo with a malformed query or a non-function callback is a TypeError and registers nothing', async () => {
    const store = backend.open();
    let called = false;
    assert.throws(() => store.streamTo({ filters: 'x' }, () => {
      called = true;
    }), TypeError);
    assert.throws(() => store.streamTo({ min_sequence_number: 1 }, () => {}), TypeError);
    assert.throws(() => store.streamAll('not a function'), TypeError);
    assert.throws(() => store.streamTo({}, undefined), TypeError);
    store.append([event('a', {})]);
    await sleep(30);
    assert.equal(called, false);
  });
});
