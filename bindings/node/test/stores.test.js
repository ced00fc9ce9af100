'use strict';
// The package surface and store life cycle: exports, constructors, bootstrap, close, garbage
// collection, process exit with live streams, and instances as ordinary objects.
const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const helpers = require('./helpers');
const { FactstrMemoryStore, FactstrSqliteStore, FactstrPostgresStore, event, eventually, recorder, sleep, tempDir, track } = helpers;

const packageDir = path.resolve(__dirname, '..');

test('the package exports exactly the three store classes', () => {
  const exported = require('..');
  assert.deepEqual(Object.keys(exported).sort(), ['FactstrMemoryStore', 'FactstrPostgresStore', 'FactstrSqliteStore']);
  for (const name of Object.keys(exported)) assert.equal(typeof exported[name], 'function');
  assert.equal(typeof FactstrPostgresStore.bootstrap, 'function');
  const store = track(new FactstrMemoryStore());
  for (const method of ['append', 'query', 'appendIf', 'streamAll', 'streamTo', 'streamAllDurable', 'streamToDurable']) {
    assert.equal(typeof store[method], 'function', method);
  }
});

test('a method replaced on an instance is used, and the original still works when bound', () => {
  const store = track(new FactstrMemoryStore());
  const originalAppendIf = store.appendIf.bind(store);
  store.appendIf = (events, query, expected) => {
    store.append([event('concurrent', { slot: 1 })]);
    return originalAppendIf(events, query, expected);
  };
  const outcome = store.appendIf([event('mine', { slot: 1 })], { filters: [{ payload_predicates: [{ slot: 1 }] }] });
  assert.deepEqual(outcome, { conflict: { actual_context_version: 1n } });
  assert.equal(new FactstrMemoryStore().appendIf.name, 'appendIf', 'other instances keep the class method');
});

test('constructors check their arguments', () => {
  assert.throws(() => new FactstrSqliteStore(), TypeError);
  assert.throws(() => new FactstrSqliteStore(5), /path must be a string/);
  assert.throws(() => new FactstrPostgresStore(), /databaseUrl must be a string/);
  assert.throws(() => FactstrPostgresStore.bootstrap('postgres://x'), TypeError);
  assert.throws(() => FactstrPostgresStore.bootstrap({ serverUrl: 'postgres://x' }), TypeError);
});

test('a file that is not a factstr SQLite database is refused and left unchanged', () => {
  const file = path.join(tempDir(), 'not-ours.sqlite');
  fs.writeFileSync(file, 'just some text, not a database at all'.repeat(200));
  const before = fs.readFileSync(file);
  assert.throws(() => new FactstrSqliteStore(file), (error) => error.code === 'schema_mismatch');
  assert.deepEqual(fs.readFileSync(file), before);
});

test('an unreachable PostgreSQL server is a connection_failure', () => {
  assert.throws(
    () => new FactstrPostgresStore('postgres://nobody@127.0.0.1:1/none?connect_timeout=2'),
    (error) => error instanceof Error && error.code === 'connection_failure',
  );
});

describe('postgres bootstrap', { skip: helpers.postgresUrl === '' ? 'set FACTSTR_TEST_POSTGRES_URL' : false }, () => {
  test('bootstrap creates the database when missing, and opens it when it exists', () => {
    const name = helpers.freshDatabaseName();
    const created = track(FactstrPostgresStore.bootstrap({ serverUrl: helpers.postgresUrl, databaseName: name }));
    assert.ok(created instanceof FactstrPostgresStore);
    created.append([event('a', {})]);
    const again = track(FactstrPostgresStore.bootstrap({ serverUrl: helpers.postgresUrl, databaseName: name }));
    assert.equal(again.query({}).event_records.length, 1);
    const direct = track(new FactstrPostgresStore(helpers.databaseUrl(helpers.postgresUrl, name)));
    assert.equal(direct.append([event('b', {})]).first_sequence_number, 2n);
  });

  test('bootstrap refuses a database name outside [A-Za-z_][A-Za-z0-9_]*', () => {
    for (const databaseName of ['1abc', 'has-dash', 'x; DROP DATABASE postgres', '']) {
      assert.throws(
        () => FactstrPostgresStore.bootstrap({ serverUrl: helpers.postgresUrl, databaseName }),
        (error) => error.code === 'invalid_argument',
        databaseName,
      );
    }
  });
});

test('close stops the streams and later calls throw an Error with code closed', async () => {
  const store = new FactstrMemoryStore();
  const rec = recorder();
  store.streamAll(rec.handle);
  const durable = recorder();
  await store.streamAllDurable({ name: 'd' }, durable.handle);
  store.append([event('a', {})]);
  await eventually(() => rec.batches.length === 1 && durable.batches.length === 1, 'deliveries');
  store.close();
  store.close(); // idempotent
  for (const call of [() => store.append([event('a', {})]), () => store.query({}), () => store.streamAll(() => {})]) {
    assert.throws(call, (error) => error.code === 'closed');
  }
  await assert.rejects(store.streamAllDurable({ name: 'x' }, () => {}), (error) => error.code === 'closed');
  await sleep(20);
  assert.equal(rec.batches.length, 1);
});

test('a durable registration still replaying when the store closes rejects', async () => {
  const store = new FactstrMemoryStore();
  for (let i = 0; i < 20; i++) store.append([event('a', {})]);
  let calls = 0;
  const registering = store.streamAllDurable({ name: 'slow' }, async () => {
    calls++;
    await sleep(5);
  });
  await eventually(() => calls >= 2, 'replay started');
  store.close();
  await assert.rejects(registering, (error) => error.code === 'closed');
});

function openDescriptorsOf(file) {
  let count = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(file)) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

// global.gc without --expose-gc on the command line.
function collectGarbage() {
  if (typeof global.gc === 'function') return global.gc();
  require('node:v8').setFlagsFromString('--expose-gc');
  return require('node:vm').runInNewContext('gc')();
}

test('a garbage-collected SQLite store closes its file', async () => {
  const file = path.join(tempDir(), 'gc.sqlite');
  (() => {
    for (let i = 0; i < 5; i++) new FactstrSqliteStore(file).append([event('a', { i })]);
  })();
  assert.ok(openDescriptorsOf(file) > 0, 'the stores hold the file open');
  for (let i = 0; i < 50 && openDescriptorsOf(file) > 0; i++) {
    collectGarbage();
    await sleep(10);
  }
  assert.equal(openDescriptorsOf(file), 0);
});

test('a closed SQLite store closes its file at once', () => {
  const file = path.join(tempDir(), 'closed.sqlite');
  const store = new FactstrSqliteStore(file);
  store.append([event('a', {})]);
  assert.ok(openDescriptorsOf(file) > 0);
  store.close();
  assert.equal(openDescriptorsOf(file), 0);
});

// A child process that registers streams, appends, and falls off the end of its script.
function runChild(source, timeoutMs = 20000) {
  const result = spawnSync(process.execPath, ['-e', source], {
    cwd: packageDir,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, FACTSTR_CHILD_DIR: tempDir() },
  });
  assert.equal(result.error, undefined, `child did not exit: ${result.error}`);
  return result;
}

test('the process exits with live and durable subscriptions still registered, after delivering what was committed', () => {
  const result = runChild(`
    const { FactstrMemoryStore, FactstrSqliteStore } = require('.');
    for (const store of [new FactstrMemoryStore(), new FactstrSqliteStore(process.env.FACTSTR_CHILD_DIR + '/f.sqlite')]) {
      const kind = store.constructor.name;
      store.streamAll((events) => console.log(kind, 'live', events.map((e) => e.event_type).join(',')));
      store.streamTo({ filters: [{ event_types: ['none'] }] }, () => console.log('never'));
      store.streamAllDurable({ name: 'p' }, async (events) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        console.log(kind, 'durable', events.length);
      }).then(() => store.append([{ event_type: 'after-registration', payload: {} }]));
      store.append([{ event_type: 'first', payload: {} }]);
    }
  `);
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.trim().split('\n').sort();
  assert.deepEqual(lines, [
    'FactstrMemoryStore durable 1',
    'FactstrMemoryStore durable 1',
    'FactstrMemoryStore live after-registration',
    'FactstrMemoryStore live first',
    'FactstrSqliteStore durable 1',
    'FactstrSqliteStore durable 1',
    'FactstrSqliteStore live after-registration',
    'FactstrSqliteStore live first',
  ]);
});

test('the process exits while a durable callback Promise never settles', () => {
  const result = runChild(`
    const { FactstrMemoryStore } = require('.');
    const store = new FactstrMemoryStore();
    store.streamAllDurable({ name: 'stuck' }, () => new Promise(() => {})).then(() => {
      store.append([{ event_type: 'a', payload: {} }]);
      store.append([{ event_type: 'b', payload: {} }]);
      console.log('registered');
    });
  `);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), 'registered');
});

test('process.exit() with streams delivering does not hang or crash', () => {
  const result = runChild(`
    const { FactstrMemoryStore } = require('.');
    const store = new FactstrMemoryStore();
    let n = 0;
    store.streamAll(() => { if (++n === 50) process.exit(0); });
    for (let i = 0; i < 1000; i++) store.append([{ event_type: 'a', payload: { i } }]);
  `);
  assert.equal(result.status, 0, result.stderr);
});

test('terminating worker threads whose stores are appending and streaming neither crashes nor hangs', () => {
  const result = runChild(`
    const { Worker } = require('node:worker_threads');
    (async () => {
      for (let round = 0; round < 10; round++) {
        const worker = new Worker(\`
          const { FactstrMemoryStore, FactstrSqliteStore } = require(\${JSON.stringify(process.cwd())});
          const stores = [new FactstrMemoryStore(), new FactstrSqliteStore(process.env.FACTSTR_CHILD_DIR + '/w\${round}.sqlite')];
          for (const store of stores) {
            store.streamAll(() => {});
            store.streamAllDurable({ name: 'd' }, async () => {});
          }
          const tick = () => {
            for (const store of stores) for (let i = 0; i < 20; i++) store.append([{ event_type: 'a', payload: { i } }]);
            setImmediate(tick);
          };
          tick();
        \`, { eval: true });
        await new Promise((resolve) => setTimeout(resolve, 40));
        await worker.terminate();
      }
      console.log('terminated');
    })();
  `, 60000);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), 'terminated');
});
