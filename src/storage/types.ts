/**
 * One stored key: its bytes, its ring token and the encoded record (the
 * key's sibling set, encoded by quorumkv; adapters treat it as opaque bytes).
 */
export interface StoredEntry {
  readonly key: Uint8Array;
  /** The key's ring token (unsigned 32-bit). */
  readonly token: number;
  readonly record: Uint8Array;
}

/**
 * A half-open token range `(start, end]` on the unsigned 32-bit ring.
 * When `start >= end` the range wraps through 0; `start === end` is the
 * whole ring.
 */
export interface TokenRangeQuery {
  readonly start: number;
  readonly end: number;
}

/** A hint: data a stand-in keeps for an owner that was unreachable. */
export interface StoredHint {
  /** Unique id (assigned by the caller). */
  readonly id: string;
  /** Node id of the intended owner. */
  readonly target: string;
  readonly key: Uint8Array;
  readonly token: number;
  readonly record: Uint8Array;
  /** Milliseconds since the epoch when the hint was stored. */
  readonly createdAt: number;
}

/** Optional features, read by the compliance suite. */
export interface StorageCapabilities {
  /** Data survives a process crash (not just close/open of the same object). */
  readonly durable: boolean;
  /** `scan` yields entries in ascending token order. */
  readonly orderedScan: boolean;
}

/** Options for reads and writes. */
export interface StorageCallOptions {
  signal?: AbortSignal;
}

/**
 * Where a node keeps its records, hints and metadata. Keys and records are
 * bytes; quorumkv validates them before they reach the adapter and does the
 * read-merge-write of sibling sets itself, serialising writes to one key.
 *
 * Lifecycle: `open()` and `close()` are idempotent; after `close()`, calls
 * reject with `KV_NOT_STARTED`; the adapter can be opened again and then
 * holds the data it held before (for `MemoryStorage`, as long as the object
 * lives).
 */
export interface StorageAdapter {
  readonly capabilities: StorageCapabilities;
  readonly status: 'opening' | 'open' | 'closing' | 'closed';
  open(): Promise<void>;
  close(): Promise<void>;

  /** The record stored under `key`, or undefined. */
  get(key: Uint8Array, options?: StorageCallOptions): Promise<Uint8Array | undefined>;
  /** Stores (replaces) the record under `key`, remembering its token. */
  put(key: Uint8Array, token: number, record: Uint8Array, options?: StorageCallOptions): Promise<void>;
  /** Removes `key` physically (not a tombstone). */
  delete(key: Uint8Array, options?: StorageCallOptions): Promise<void>;
  /** Every entry whose token is in `range` (all entries without one). */
  scan(range?: TokenRangeQuery, options?: StorageCallOptions): AsyncIterable<StoredEntry>;

  /** Stores a hint durably (replacing one with the same id). */
  putHint(hint: StoredHint, options?: StorageCallOptions): Promise<void>;
  /** Hints, optionally only those for `target`, oldest first. */
  hints(target?: string, options?: StorageCallOptions): AsyncIterable<StoredHint>;
  deleteHint(id: string, options?: StorageCallOptions): Promise<void>;

  /** A small metadata slot (node incarnation, tokens, ...). */
  getMeta(name: string, options?: StorageCallOptions): Promise<Uint8Array | undefined>;
  setMeta(name: string, value: Uint8Array, options?: StorageCallOptions): Promise<void>;
}
