export { AbstractStorage, type StorageOperation } from './abstract-storage.js';
export { MemoryStorage, type MemoryStorageOptions } from './memory-storage.js';
export {
  LevelStorage,
  type LevelStorageOptions,
  type LevelEngineModule,
  type LevelEngineDatabase,
  type LevelEngineIterator,
} from './level-storage.js';
export {
  LmdbStorage,
  type LmdbStorageOptions,
  type LmdbEngineModule,
  type LmdbEngineDatabase,
  type LmdbEngineOpenOptions,
} from './lmdb-storage.js';
export type { Durability, DurableStorageOptions, BatchOp } from './engine-common.js';
export type { MaybePromise, StorageIterable } from './storage-iterator.js';
export { tokenInRange, WHOLE_RING } from './token-range.js';
export type {
  StorageAdapter,
  StorageCapabilities,
  StorageCallOptions,
  StorageStatus,
  StoredEntry,
  StoredHint,
  TokenRangeQuery,
} from './types.js';
