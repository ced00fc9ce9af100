'use strict';
// Appends/s and appendIf/s from JavaScript on memory and SQLite (and PostgreSQL when
// FACTSTR_TEST_POSTGRES_URL is set), one JSON line per measurement.
//   node bench/bench.js [appends=100000] [appendIfs=20000]
// SQLite runs on a file in a temporary directory with the default durability (sync=full,
// an fsync per commit), like FactstrSqliteStore(path) in an application.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FactstrMemoryStore, FactstrSqliteStore, FactstrPostgresStore } = require('..');

const appends = Number(process.argv[2] || 100000);
const appendIfs = Number(process.argv[3] || 20000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factstr-node-bench-'));

function measure(backend, operation, count, body) {
  const started = process.hrtime.bigint();
  body();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ backend, operation, count, seconds: +seconds.toFixed(3), per_second: Math.round(count / seconds) }));
}

function run(backend, open, scale) {
  const appendCount = Math.max(1, Math.round(appends * scale));
  const appendIfCount = Math.max(1, Math.round(appendIfs * scale));
  let store = open();
  measure(backend, 'append (1 event)', appendCount, () => {
    for (let i = 0; i < appendCount; i++) {
      store.append([{ event_type: 'item-added', payload: { sku: `sku-${i % 1000}`, quantity: i % 7, cart: `cart-${i}` } }]);
    }
  });
  store.close();
  store = open();
  // Each command reads its context (one cart) and appends conditionally on it: no conflicts.
  measure(backend, 'query + appendIf (1 event)', appendIfCount, () => {
    for (let i = 0; i < appendIfCount; i++) {
      const query = { filters: [{ event_types: ['item-added'], payload_predicates: [{ cart: `c-${i}` }] }] };
      const context = store.query(query);
      const outcome = store.appendIf(
        [{ event_type: 'item-added', payload: { sku: 'ABC-123', quantity: 1, cart: `c-${i}` } }],
        query,
        context.current_context_version,
      );
      if (!outcome.append_result) throw new Error('unexpected conflict');
    }
  });
  measure(backend, 'appendIf (1 event, expected version known)', appendIfCount, () => {
    const query = { filters: [{ event_types: ['counter-moved'], payload_predicates: [{ counter: 'k' }] }] };
    let version = null;
    for (let i = 0; i < appendIfCount; i++) {
      const outcome = store.appendIf([{ event_type: 'counter-moved', payload: { counter: 'k', by: 1 } }], query, version);
      if (!outcome.append_result) throw new Error('unexpected conflict');
      version = outcome.append_result.last_sequence_number;
    }
  });
  store.close();
}

run('memory', () => new FactstrMemoryStore(), 1);
let sqliteRun = 0;
run('sqlite', () => new FactstrSqliteStore(path.join(dir, `bench-${sqliteRun++}.sqlite`)), 1);
if (process.env.FACTSTR_TEST_POSTGRES_URL) {
  let pgRun = 0;
  const name = `factstr_node_bench_${process.pid}`;
  run('postgres', () => FactstrPostgresStore.bootstrap({ serverUrl: process.env.FACTSTR_TEST_POSTGRES_URL, databaseName: `${name}_${pgRun++}` }), 0.1);
}
fs.rmSync(dir, { recursive: true, force: true });
