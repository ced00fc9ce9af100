'use strict';
// Shared by the suites: the three backends, each test on a fresh store (memory; a new SQLite
// file in a temporary directory; a freshly bootstrapped PostgreSQL database).
//
// PostgreSQL runs against the server named by FACTSTR_TEST_POSTGRES_URL (e.g.
// postgres://postgres@127.0.0.1:5432/postgres). Without it those tests are skipped, except
// in CI (CI=true), where they fail loudly.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');

const factstr = require('..');

const { FactstrMemoryStore, FactstrSqliteStore, FactstrPostgresStore } = factstr;

const postgresUrl = process.env.FACTSTR_TEST_POSTGRES_URL || '';
const inCi = process.env.CI === 'true';

let tempRoot = null;
function tempDir() {
  if (tempRoot === null) tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'factstr-node-test-'));
  return fs.mkdtempSync(path.join(tempRoot, 'store-'));
}

let databaseCounter = 0;
function freshDatabaseName() {
  return `factstr_node_${process.pid}_${Date.now() % 100000}_${databaseCounter++}`;
}

function databaseUrl(serverUrl, databaseName) {
  const url = new URL(serverUrl);
  url.pathname = `/${databaseName}`;
  return url.toString();
}

// Every store a test opens is closed after the suite, so no thread outlives it.
const opened = [];
function track(store) {
  opened.push(store);
  return store;
}
after(() => {
  for (const store of opened) {
    try {
      store.close();
    } catch {
      // already closed
    }
  }
  if (tempRoot !== null) fs.rmSync(tempRoot, { recursive: true, force: true });
});

// A backend: open() gives a fresh, empty store; location() + reopen(location) give another
// store object over the same storage (persistent backends only).
const backends = [
  {
    name: 'memory',
    persistent: false,
    open: () => track(new FactstrMemoryStore()),
  },
  {
    name: 'sqlite',
    persistent: true,
    location: () => path.join(tempDir(), 'facts.sqlite'),
    reopen: (file) => track(new FactstrSqliteStore(file)),
  },
  {
    name: 'postgres',
    persistent: true,
    skip: postgresUrl === '' ? 'set FACTSTR_TEST_POSTGRES_URL to run the PostgreSQL tests' : false,
    location: () => {
      const name = freshDatabaseName();
      track(FactstrPostgresStore.bootstrap({ serverUrl: postgresUrl, databaseName: name }));
      return databaseUrl(postgresUrl, name);
    },
    reopen: (url) => track(new FactstrPostgresStore(url)),
  },
];
for (const backend of backends) {
  if (!backend.open) backend.open = () => backend.reopen(backend.location());
}

// Registers `body(backend)` once per backend, inside describe(backend.name).
function forEachBackend(body, { persistentOnly = false } = {}) {
  if (postgresUrl === '' && inCi) {
    test('PostgreSQL tests run in CI', () => {
      assert.fail('FACTSTR_TEST_POSTGRES_URL is not set, and in CI the PostgreSQL tests must run');
    });
  }
  for (const backend of backends) {
    if (persistentOnly && !backend.persistent) continue;
    describe(backend.name, { skip: backend.skip }, () => body(backend));
  }
}

function event(event_type, payload) {
  return { event_type, payload };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Waits until `condition()` holds (polling), failing after `timeoutMs`.
async function eventually(condition, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

// Records the batches a stream callback receives, as arrays of sequence numbers.
function recorder(result) {
  const batches = [];
  const handle = (events) => {
    batches.push(events.map((e) => e.sequence_number));
    return typeof result === 'function' ? result(events) : result;
  };
  return { batches, handle, flat: () => batches.flat() };
}

function seqs(records) {
  return records.map((r) => r.sequence_number);
}

module.exports = {
  ...factstr,
  backends,
  forEachBackend,
  event,
  sleep,
  eventually,
  recorder,
  seqs,
  tempDir,
  track,
  postgresUrl,
  freshDatabaseName,
  databaseUrl,
};
