'use strict';
// streamAllDurable / streamToDurable: replay after the stored cursor, then live; the cursor
// advances only on callback success (DESIGN.md §1 "Durable streams").
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { forEachBackend, event, eventually, recorder, sleep } = require('./helpers');

// Three batches: [1,2], [3], [4,5].
function seedBatches(store) {
  store.append([event('a', { n: 1 }), event('b', { n: 2 })]);
  store.append([event('a', { n: 3 })]);
  store.append([event('b', { n: 4 }), event('a', { n: 5 })]);
}

const successes = {
  'returns nothing': () => undefined,
  'returns true': () => true,
  'resolves nothing': async () => {
    await sleep(1);
  },
  'resolves true': async () => true,
};

const failures = {
  'throws synchronously': () => {
    throw new Error('boom');
  },
  'returns false': () => false,
  'rejects': async () => {
    await sleep(1);
    throw new Error('rejected on purpose');
  },
  'resolves false': async () => false,
};

// Fails (by `fail`) on the batch containing `at`, succeeds otherwise.
function failingAt(at, fail) {
  return (events) => (events.some((e) => e.sequence_number === at) ? fail(events) : undefined);
}

forEachBackend((backend) => {
  test('durable registration returns a Promise that resolves after the replay was handled', async () => {
    const store = backend.open();
    seedBatches(store);
    const rec = recorder(async () => {
      await sleep(5);
    });
    const pending = store.streamAllDurable({ name: 'projector' }, rec.handle);
    assert.ok(pending instanceof Promise);
    const subscription = await pending;
    assert.deepEqual(rec.batches, [[1n, 2n], [3n], [4n, 5n]], 'every replayed batch was handled before resolution');
    assert.equal(typeof subscription.unsubscribe, 'function');
    store.append([event('live', {})]);
    await eventually(() => rec.batches.length === 4, 'the live batch');
    assert.deepEqual(rec.batches[3], [6n]);
    subscription.unsubscribe();
  });

  test('a long replay reaches the callback one committed batch per call, in order, each awaited', async () => {
    const store = backend.open();
    // 60 batches of 1 to 7 events: the replay hands many of them over at once.
    const expected = [];
    let next = 1n;
    for (let b = 0; b < 60; b++) {
      const size = 1 + ((b * 5) % 7);
      store.append(Array.from({ length: size }, (_, i) => event('t', { b, i })));
      expected.push(Array.from({ length: size }, (_, i) => next + BigInt(i)));
      next += BigInt(size);
    }
    let running = 0;
    let overlapped = false;
    const rec = recorder(async (events) => {
      if (++running > 1) overlapped = true;
      if (events[0].payload.b % 3 === 0) await sleep(1);
      running--;
    });
    const subscription = await store.streamAllDurable({ name: 'long' }, rec.handle);
    assert.deepEqual(rec.batches, expected);
    assert.equal(overlapped, false, 'a callback started before the previous one finished');
    subscription.unsubscribe();
    // Fails at the 41st batch: the cursor keeps the 40 before it, the next registration
    // replays from the failed one.
    const failAt = expected[40][0];
    const failing = recorder((events) => events[0].sequence_number !== failAt);
    await assert.rejects(store.streamAllDurable({ name: 'cut' }, failing.handle), (e) => e.code === 'handler_failed');
    assert.deepEqual(failing.batches, expected.slice(0, 41));
    const again = recorder();
    const resumed = await store.streamAllDurable({ name: 'cut' }, again.handle);
    assert.deepEqual(again.batches, expected.slice(40));
    resumed.unsubscribe();
  });

  test('an empty log replays nothing and the stream continues live', async () => {
    const store = backend.open();
    const rec = recorder();
    const subscription = await store.streamAllDurable({ name: 'empty' }, rec.handle);
    assert.deepEqual(rec.batches, []);
    store.append([event('a', {})]);
    await eventually(() => rec.batches.length === 1, 'the live batch');
    subscription.unsubscribe();
  });

  test('the hand-over from replay to live has no gap and no duplicate while others append', async () => {
    const store = backend.open();
    for (let i = 0; i < 50; i++) store.append([event('a', { i })]);
    const rec = recorder(async () => {
      await sleep(0);
    });
    const registering = store.streamAllDurable({ name: 'handover' }, rec.handle);
    // Appends while the replay runs (the JavaScript thread is free during registration).
    let appended = 50;
    const appender = setInterval(() => {
      if (appended < 120) {
        store.append([event('b', { appended })]);
        appended++;
      }
    }, 0);
    const subscription = await registering;
    while (appended < 120) await sleep(2);
    clearInterval(appender);
    await eventually(() => rec.flat().length === 120, 'every fact once');
    await sleep(20);
    assert.deepEqual(rec.flat(), Array.from({ length: 120 }, (_, i) => BigInt(i + 1)));
    subscription.unsubscribe();
  });

  for (const [name, succeed] of Object.entries(successes)) {
    test(`a callback that ${name} advances the cursor: registering again replays nothing old`, async () => {
      const store = backend.open();
      seedBatches(store);
      const first = recorder(succeed);
      const subscription = await store.streamAllDurable({ name: 'ok' }, first.handle);
      assert.deepEqual(first.batches, [[1n, 2n], [3n], [4n, 5n]]);
      subscription.unsubscribe();
      store.append([event('c', {})]);
      const second = recorder();
      const again = await store.streamAllDurable({ name: 'ok' }, second.handle);
      assert.deepEqual(second.batches, [[6n]]);
      again.unsubscribe();
    });
  }

  for (const [name, fail] of Object.entries(failures)) {
    test(`a replay callback that ${name} rejects the registration with an Error and keeps the cursor`, async () => {
      const store = backend.open();
      seedBatches(store);
      const first = recorder(failingAt(3n, fail));
      await assert.rejects(store.streamAllDurable({ name: 'fails' }, first.handle), (error) => {
        assert.ok(error instanceof Error);
        assert.equal(error.code, 'handler_failed');
        assert.match(error.message, /fails/);
        return true;
      });
      assert.deepEqual(first.batches, [[1n, 2n], [3n]], 'the replay stopped at the failing batch');
      store.append([event('later', {})]);
      await sleep(20);
      assert.deepEqual(first.batches, [[1n, 2n], [3n]], 'a failed durable stream receives nothing more');
      // Registering the name again replays from the failed batch.
      const second = recorder();
      const subscription = await store.streamAllDurable({ name: 'fails' }, second.handle);
      assert.deepEqual(second.batches, [[3n], [4n, 5n], [6n]]);
      subscription.unsubscribe();
    });

    test(`a live durable callback that ${name} stops that stream and keeps its cursor; the append stays`, async () => {
      const store = backend.open();
      const first = recorder(failingAt(2n, fail));
      await store.streamAllDurable({ name: 'live-fails' }, first.handle);
      store.append([event('a', {})]);
      store.append([event('b', {})]);
      assert.equal(store.append([event('c', {})]).first_sequence_number, 3n);
      await eventually(() => first.batches.length === 2, 'the failing batch');
      await sleep(30);
      assert.deepEqual(first.batches, [[1n], [2n]]);
      assert.equal(store.query({}).event_records.length, 3);
      const second = recorder();
      const subscription = await store.streamAllDurable({ name: 'live-fails' }, second.handle);
      assert.deepEqual(second.batches, [[2n], [3n]]);
      subscription.unsubscribe();
    });
  }

  test('a failure on the first replayed batch leaves a new durable stream at the beginning', async () => {
    const store = backend.open();
    seedBatches(store);
    await assert.rejects(store.streamAllDurable({ name: 'new' }, () => false), /handler_failed|failed/);
    const rec = recorder();
    const subscription = await store.streamAllDurable({ name: 'new' }, rec.handle);
    assert.deepEqual(rec.batches, [[1n, 2n], [3n], [4n, 5n]]);
    subscription.unsubscribe();
  });

  test('a thrown error is the cause of the rejection', async () => {
    const store = backend.open();
    seedBatches(store);
    const thrown = new Error('the projection is broken');
    await assert.rejects(store.streamAllDurable({ name: 'cause' }, () => {
      throw thrown;
    }), (error) => error.cause === thrown && /the projection is broken/.test(error.message));
  });

  test('the same durable name reuses its cursor; another name starts from the beginning', async () => {
    const store = backend.open();
    seedBatches(store);
    const one = await store.streamAllDurable({ name: 'one' }, () => {});
    one.unsubscribe();
    const again = recorder();
    const sameName = await store.streamAllDurable({ name: 'one' }, again.handle);
    assert.deepEqual(again.batches, []);
    const other = recorder();
    const otherName = await store.streamAllDurable({ name: 'two' }, other.handle);
    assert.deepEqual(other.batches, [[1n, 2n], [3n], [4n, 5n]]);
    sameName.unsubscribe();
    otherName.unsubscribe();
  });

  test('unsubscribe keeps the durable cursor of what was handled live', async () => {
    const store = backend.open();
    const first = recorder();
    const subscription = await store.streamAllDurable({ name: 'keep' }, first.handle);
    store.append([event('a', {})]);
    store.append([event('b', {})]);
    await eventually(() => first.batches.length === 2, 'two live batches');
    subscription.unsubscribe();
    store.append([event('c', {})]);
    await sleep(20);
    assert.deepEqual(first.batches, [[1n], [2n]]);
    const second = recorder();
    const resumed = await store.streamAllDurable({ name: 'keep' }, second.handle);
    assert.deepEqual(second.batches, [[3n]]);
    resumed.unsubscribe();
  });

  test('streamToDurable replays and delivers only the matching facts of each batch', async () => {
    const store = backend.open();
    seedBatches(store);
    const rec = recorder();
    const query = { filters: [{ event_types: ['b'] }] };
    const subscription = await store.streamToDurable({ name: 'only-b' }, query, rec.handle);
    assert.deepEqual(rec.batches, [[2n], [4n]]);
    store.append([event('a', {})]);
    store.append([event('b', {}), event('b', {})]);
    await eventually(() => rec.batches.length === 3, 'the live matching batch');
    await sleep(20);
    assert.deepEqual(rec.batches, [[2n], [4n], [7n, 8n]]);
    subscription.unsubscribe();
  });

  test('registering an active durable name again rejects with stream_busy', async () => {
    const store = backend.open();
    const subscription = await store.streamAllDurable({ name: 'busy' }, () => {});
    await assert.rejects(store.streamAllDurable({ name: 'busy' }, () => {}), (error) => error.code === 'stream_busy');
    subscription.unsubscribe();
    const again = await store.streamAllDurable({ name: 'busy' }, () => {});
    again.unsubscribe();
  });

  test('bad durable input rejects with a TypeError and keeps the name free', async () => {
    const store = backend.open();
    await assert.rejects(store.streamAllDurable('name', () => {}), TypeError);
    await assert.rejects(store.streamAllDurable({}, () => {}), TypeError);
    await assert.rejects(store.streamAllDurable({ name: 'n' }, null), TypeError);
    await assert.rejects(store.streamToDurable({ name: 'n' }, { filters: 3 }, () => {}), TypeError);
    await assert.rejects(store.streamToDurable({ name: 'n' }, { min_sequence_number: 0 }, () => {}), TypeError);
    await assert.rejects(store.streamAllDurable({ name: '' }, () => {}), (error) => error.code === 'invalid_argument');
    const subscription = await store.streamToDurable({ name: 'n' }, {}, () => {});
    subscription.unsubscribe();
  });

  test('a durable callback whose Promise never settles stays in flight: later batches wait', async () => {
    const store = backend.open();
    const rec = recorder(() => new Promise(() => {}));
    const subscription = await store.streamAllDurable({ name: 'stuck' }, rec.handle);
    store.append([event('a', {})]);
    store.append([event('b', {})]);
    await eventually(() => rec.batches.length === 1, 'the first batch');
    await sleep(30);
    assert.deepEqual(rec.batches, [[1n]]);
    subscription.unsubscribe();
    subscription.unsubscribe();
  });
});
