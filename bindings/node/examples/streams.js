// Live streams: future batches only; a failing callback never undoes the append.
const { FactstrMemoryStore } = require('@factstr/factstr-node');

async function main() {
  const store = new FactstrMemoryStore();
  store.append([{ event_type: 'item-added', payload: { sku: 'OLD' } }]); // before: not streamed

  const all = store.streamAll((events) => {
    console.log('all:', events.map((e) => `${e.sequence_number} ${e.event_type}`).join(', '));
  });
  const onlyAdded = store.streamTo({ filters: [{ event_types: ['item-added'] }] }, async (events) => {
    console.log('item-added:', events.map((e) => e.payload.sku).join(', '));
    return false; // a failure: this stream just moves on
  });

  store.append([
    { event_type: 'item-added', payload: { sku: 'ABC-123' } },
    { event_type: 'item-removed', payload: { sku: 'OLD' } },
  ]);
  store.append([{ event_type: 'item-removed', payload: { sku: 'ABC-123' } }]);
  const last = store.append([{ event_type: 'item-added', payload: { sku: 'XYZ-9' } }]);
  console.log('appended up to', last.last_sequence_number);

  await new Promise((resolve) => setTimeout(resolve, 50));
  all.unsubscribe();
  onlyAdded.unsubscribe();
}

main();
