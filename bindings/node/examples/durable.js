// Durable streams: replay after the stored cursor, then live; a failed callback keeps the
// cursor, and registering the name again replays from there.
const { FactstrMemoryStore } = require('@factstr/factstr-node');

async function main() {
  const store = new FactstrMemoryStore();
  store.append([{ event_type: 'item-added', payload: { sku: 'A' } }]);
  store.append([{ event_type: 'item-added', payload: { sku: 'B' } }]);
  store.append([{ event_type: 'item-added', payload: { sku: 'C' } }]);

  const stream = { name: 'inventory-projector' };
  try {
    await store.streamAllDurable(stream, async (events) => {
      const sku = events[0].payload.sku;
      if (sku === 'B') throw new Error(`cannot project ${sku}`);
      console.log('projected', sku);
    });
  } catch (error) {
    console.log(`registration failed: ${error.code}: ${error.message}`);
  }

  const subscription = await store.streamAllDurable(stream, (events) => {
    console.log('projected again from the cursor:', events[0].payload.sku);
  });
  console.log('registered after the replay');
  store.append([{ event_type: 'item-added', payload: { sku: 'D' } }]);
  await new Promise((resolve) => setTimeout(resolve, 50));
  subscription.unsubscribe();
}

main();
