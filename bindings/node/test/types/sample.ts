// Type-checked (tsc --noEmit, never run here) against index.d.ts: every export, written as
// code for @factstr/factstr-node 0.5.2 is written. The pack test runs it against the
// installed package.
import {
  type AppendIfResult,
  type AppendResult,
  type ConditionalAppendConflict,
  type DurableStream,
  type EventFilter,
  type EventQuery,
  type EventRecord,
  type EventStreamSubscription,
  type NewEvent,
  type QueryResult,
  FactstrMemoryStore,
  FactstrPostgresStore,
  FactstrSqliteStore,
} from '@factstr/factstr-node';

async function updateProjection(events: EventRecord[]): Promise<void> {
  for (const record of events) {
    const n: bigint = record.sequence_number;
    const at: string = record.occurred_at;
    const type: string = record.event_type;
    const payload: unknown = record.payload;
    void [n, at, type, payload];
  }
}

export async function main(sqlitePath: string, serverUrl?: string): Promise<string[]> {
  const lines: string[] = [];
  const memory = new FactstrMemoryStore();
  const sqlite = new FactstrSqliteStore(sqlitePath);
  const stores: Array<FactstrMemoryStore | FactstrSqliteStore | FactstrPostgresStore> = [memory, sqlite];
  if (serverUrl) {
    stores.push(FactstrPostgresStore.bootstrap({ serverUrl, databaseName: `factstr_sample_${Date.now()}` }));
    const direct: FactstrPostgresStore = new FactstrPostgresStore(serverUrl);
    void direct;
  }

  for (const store of stores) {
    const event: NewEvent = { event_type: 'item-added', payload: { sku: 'ABC-123', quantity: 1 } };
    const appended: AppendResult = store.append([event]);
    const filter: EventFilter = { event_types: ['item-added'], payload_predicates: [{ sku: 'ABC-123' }] };
    const query: EventQuery = { filters: [filter], min_sequence_number: 0n };
    const result: QueryResult = store.query(query);
    const version: bigint | null | undefined = result.current_context_version;

    const outcome: AppendIfResult = store.appendIf([event], query, version);
    if (outcome.conflict) {
      const conflict: ConditionalAppendConflict = outcome.conflict;
      lines.push(`conflict ${conflict.expected_context_version} ${conflict.actual_context_version}`);
    } else if (outcome.append_result) {
      lines.push(`appendIf ${outcome.append_result.first_sequence_number}`);
    }
    const stale: AppendIfResult = store.appendIf([event], query, appended.first_sequence_number);
    lines.push(`stale ${stale.conflict?.actual_context_version}`);

    const live: EventStreamSubscription = store.streamAll((events) => {
      lines.push(`live ${events.length}`);
    });
    const filtered = store.streamTo(query, (events: EventRecord[]) => events.length > 0);
    const asyncLive = store.streamAll(async (events) => {
      await updateProjection(events);
    });
    const durableStream: DurableStream = { name: 'inventory-projector' };
    const durable: EventStreamSubscription = await store.streamAllDurable(durableStream, async (events) => {
      await updateProjection(events);
      return true;
    });
    const durableTo = await store.streamToDurable({ name: 'only-items' }, query, (events) => {
      lines.push(`durable ${events.length}`);
    });
    store.append([{ event_type: 'item-removed', payload: { sku: 'ABC-123' } }]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const subscription of [live, filtered, asyncLive, durable, durableTo]) subscription.unsubscribe();
    store.close();
  }
  return lines;
}
