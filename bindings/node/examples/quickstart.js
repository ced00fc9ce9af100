// The seed README's quick start, on a SQLite file in a temporary directory.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FactstrSqliteStore } = require('@factstr/factstr-node');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factstr-quickstart-'));
const store = new FactstrSqliteStore(path.join(dir, 'factstr.sqlite'));

const appended = store.append([
  { event_type: 'item-added', payload: { sku: 'ABC-123', quantity: 1 } },
  { event_type: 'item-added', payload: { sku: 'XYZ-9', quantity: 2 } },
]);
console.log(appended);

const result = store.query({ filters: [{ event_types: ['item-added'], payload_predicates: [{ sku: 'ABC-123' }] }] });
console.log(result.event_records[0].occurred_at);
console.log(result.event_records[0].payload);
console.log(result.last_returned_sequence_number, result.current_context_version);

store.close();
fs.rmSync(dir, { recursive: true });
