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
  /** Cancels the call: a signal that has already fired rejects it with `KV_ABORTED`; a scan stops at its next step. */
  signal?: AbortSignal;
}

/**
 * Where an adapter is in its lifecycle: `'closed'` until `open()`,
 * `'opening'` while it opens, `'open'`, then `'closing'` while it closes.
 * Only an `'open'` adapter serves calls.
 */
export type StorageStatus = 'opening' | 'open' | 'closing' | 'closed';

/**
 * Where a node keeps its records, hints and metadata. Keys and records are
 * bytes; quorumkv validates them before they reach the adapter and does the
 * read-merge-write of sibling sets itself, serialising writes to one key.
 *
 * Lifecycle: `open()` and `close()` are idempotent and may be called
 * concurrently (they take effect in call order). Calls made while the
 * adapter is not `'open'` reject with `KV_NOT_STARTED`; nothing is queued.
 * `close()` lets the operations already started finish, ends open scan and
 * hint iterators (their next step rejects with `KV_NOT_STARTED`), then
 * closes. The adapter can be opened again and then holds the data it held
 * before (for `MemoryStorage`, as long as the object lives).
 *
 * Malformed arguments reject with `TypeError`/`RangeError`; a pre-aborted
 * signal rejects with `KV_ABORTED`; a failure of the underlying engine
 * rejects with `KV_STORAGE_FAILURE` (its `cause` is the engine's error).
 * Extend `AbstractStorage` to get all of this and implement only the
 * `_get`/`_put`/… hooks; run `storageCompliance` from `quorumkv/testing`.
 */
export interface StorageAdapter {
  /** Optional features (read by the compliance suite). */
  readonly capabilities: StorageCapabilities;
  /** Lifecycle state; calls are served only when `'open'`. */
  readonly status: StorageStatus;
  /** Opens (idempotent). */
  open(): Promise<void>;
  /** Closes (idempotent); calls made afterwards reject with `KV_NOT_STARTED`. */
  close(): Promise<void>;

  /** The record stored under `key`, or undefined. */
  get(key: Uint8Array, options?: StorageCallOptions): Promise<Uint8Array | undefined>;
  /**
   * Stores (replaces) the record under `key`, remembering its token. `key`
   * and `record` are the caller's and may be views into a larger buffer (a
   * record received over TCP is a view of the bytes its socket read): copy
   * what you keep, never keep the views themselves.
   */
  put(key: Uint8Array, token: number, record: Uint8Array, options?: StorageCallOptions): Promise<void>;
  /**
   * Optional fast path of {@link StorageAdapter.get} for the data path: the
   * same checks, result and errors, but an adapter that has the answer at
   * hand gives it (or throws) synchronously, where `get` would wrap it in a
   * promise; otherwise it returns the promise. `AbstractStorage` provides
   * it (synchronously whenever the `_get` hook answers synchronously, as
   * `MemoryStorage`'s does). A replica uses it for its read-merge-write.
   */
  getNow?(key: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /**
   * Optional: {@link StorageAdapter.getNow}, except that the bytes may be
   * the adapter's own instead of a copy. The caller only reads them and
   * never changes them; the adapter never changes bytes it has handed out
   * (a later write of the key puts its record elsewhere), so they stay
   * valid for as long as the caller keeps them. `MemoryStorage` has it (it
   * saves a copy per replica read: ~0.13 µs of ~0.38 µs). The replica
   * server reads records with it when present; whatever keeps a record's
   * bytes beyond the read copies them (the wire encoder, the merge, the
   * value decoder: a `Uint8Array` a user gets is always the user's own).
   * A wrapper around another adapter that changes or watches what `get`
   * answers must not pass the inner adapter's `getSharedNow` through
   * unchanged (the replica server would read around the wrapper).
   */
  getSharedNow?(key: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Optional fast path of {@link StorageAdapter.put}, as {@link StorageAdapter.getNow} is of `get`. */
  putNow?(key: Uint8Array, token: number, record: Uint8Array): void | Promise<void>;
  /** Removes `key` physically (not a tombstone). */
  delete(key: Uint8Array, options?: StorageCallOptions): Promise<void>;
  /**
   * Every entry whose token is in `range` (all entries without one). The
   * iterator holds resources until it is exhausted, returned (`break` out
   * of `for await`) or the adapter closes; after `close()` its next step
   * rejects with `KV_NOT_STARTED`.
   */
  scan(range?: TokenRangeQuery, options?: StorageCallOptions): AsyncIterable<StoredEntry>;

  /** Stores a hint durably (replacing one with the same id). */
  putHint(hint: StoredHint, options?: StorageCallOptions): Promise<void>;
  /** Hints, optionally only those for `target`, oldest first. */
  hints(target?: string, options?: StorageCallOptions): AsyncIterable<StoredHint>;
  /** Removes the hint with this id (a missing id is not an error). */
  deleteHint(id: string, options?: StorageCallOptions): Promise<void>;

  /** A small metadata slot (node incarnation, tokens, ...). */
  getMeta(name: string, options?: StorageCallOptions): Promise<Uint8Array | undefined>;
  /** Stores (replaces) the metadata value `name`. */
  setMeta(name: string, value: Uint8Array, options?: StorageCallOptions): Promise<void>;
}
