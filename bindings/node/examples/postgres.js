// PostgreSQL: bootstrap creates the database when missing; the constructor opens an
// existing one. Server URL from FACTSTR_TEST_POSTGRES_URL.
const { FactstrPostgresStore } = require('@factstr/factstr-node');

const serverUrl = process.env.FACTSTR_TEST_POSTGRES_URL;
const databaseName = `factstr_demo_${process.pid}`;

const store = FactstrPostgresStore.bootstrap({ serverUrl, databaseName });
console.log(store.append([{ event_type: 'item-added', payload: { sku: 'ABC-123', quantity: 1 } }]));
store.close();

const url = new URL(serverUrl);
url.pathname = `/${databaseName}`;
const reopened = new FactstrPostgresStore(url.toString());
console.log(reopened.query({}).event_records.map((r) => [r.sequence_number, r.event_type, r.payload]));
reopened.close();
