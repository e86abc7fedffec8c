export { MemoryStorage, tokenInRange } from './memory-storage.js';
export type {
  StorageAdapter,
  StorageCapabilities,
  StorageCallOptions,
  StoredEntry,
  StoredHint,
  TokenRangeQuery,
} from './types.js';
