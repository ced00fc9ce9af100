// Conditional append: decide on a context, append only if nobody changed it meanwhile.
const { FactstrMemoryStore } = require('@factstr/factstr-node');

const store = new FactstrMemoryStore();
store.append([{ event_type: 'account-opened', payload: { accountId: 'a1', owner: 'Ada' } }]);

const account = { filters: [{ payload_predicates: [{ accountId: 'a1' }] }] };
const context = store.query(account);

// Someone else deposits between our read and our write.
store.append([{ event_type: 'money-deposited', payload: { accountId: 'a1', amount: 100 } }]);

const stale = store.appendIf(
  [{ event_type: 'money-withdrawn', payload: { accountId: 'a1', amount: 30 } }],
  account,
  context.current_context_version,
);
console.log(stale);

// Read again and retry: the context did not change since.
const fresh = store.query(account);
const retried = store.appendIf(
  [{ event_type: 'money-withdrawn', payload: { accountId: 'a1', amount: 30 } }],
  account,
  fresh.current_context_version,
);
console.log(retried);
