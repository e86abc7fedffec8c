export { Store } from './store.js';
export type {
  CallOptions,
  ConflictPolicy,
  ConsistencyLevel,
  DeleteOptions,
  GetOptions,
  GetResult,
  GossipOptions,
  Key,
  LocalRecord,
  LocalSibling,
  PutOptions,
  ReplicationOptions,
  StoreEvents,
  StoreOptions,
} from './types.js';
