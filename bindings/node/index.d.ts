// Types of @factstr/factstr-node 0.5.2, as implemented over factstr-cpp.

export interface NewEvent {
  event_type: string;
  payload: unknown;
}

export interface EventFilter {
  event_types?: string[] | null;
  payload_predicates?: unknown[] | null;
}

export interface EventQuery {
  filters?: EventFilter[] | null;
  min_sequence_number?: bigint | null;
}

export interface EventRecord {
  sequence_number: bigint;
  /** Recorded time of the append, RFC 3339 UTC with microseconds. */
  occurred_at: string;
  event_type: string;
  payload: unknown;
}

export interface QueryResult {
  event_records: EventRecord[];
  last_returned_sequence_number?: bigint | null;
  current_context_version?: bigint | null;
}

export interface AppendResult {
  first_sequence_number: bigint;
  last_sequence_number: bigint;
  committed_count: bigint;
}

export interface ConditionalAppendConflict {
  expected_context_version?: bigint | null;
  actual_context_version?: bigint | null;
}

export interface AppendIfResult {
  append_result?: AppendResult | null;
  conflict?: ConditionalAppendConflict | null;
}

export interface DurableStream {
  name: string;
}

export interface EventStreamSubscription {
  /** Stops future deliveries for this stream. */
  unsubscribe(): void;
}

/**
 * A stream callback. Returning nothing or `true` (or a Promise resolving to nothing or
 * `true`) is success; returning `false`, throwing, or a Promise that resolves `false` or
 * rejects is failure.
 */
type StreamCallback = (events: EventRecord[]) => void | boolean | Promise<void> | Promise<boolean>;

declare class FactstrStore {
  append(events: NewEvent[]): AppendResult;
  query(query: EventQuery): QueryResult;
  appendIf(events: NewEvent[], query: EventQuery, expectedContextVersion?: bigint | null): AppendIfResult;
  streamAll(handle: StreamCallback): EventStreamSubscription;
  streamTo(query: EventQuery, handle: StreamCallback): EventStreamSubscription;
  streamAllDurable(durableStream: DurableStream, handle: StreamCallback): Promise<EventStreamSubscription>;
  streamToDurable(
    durableStream: DurableStream,
    query: EventQuery,
    handle: StreamCallback,
  ): Promise<EventStreamSubscription>;
  /**
   * Stops every stream and releases the store's native resources. An addition of
   * factstr-cpp (not in @factstr/factstr-node 0.5.2); a collected store is closed too.
   */
  close(): void;
}

export declare class FactstrMemoryStore extends FactstrStore {
  constructor();
}

export declare class FactstrSqliteStore extends FactstrStore {
  constructor(path: string);
}

export declare class FactstrPostgresStore extends FactstrStore {
  constructor(databaseUrl: string);
  static bootstrap(options: { serverUrl: string; databaseName: string }): FactstrPostgresStore;
}
