/**
 * Types of the data path (types only: no runtime code lives here).
 *
 * @module
 */
import type { MemberStatus } from '../ring/index.js';
import type { VectorClock } from '../versioning/index.js';

/**
 * A key as one call carries it through the data path: its bytes and its
 * ring token, computed once (by the Store, with `keyRef`) instead of by
 * every step that needs them. Make one with `keyRef(key, maxKeyBytes)`,
 * which validates the key; a hand-made `KeyRef` whose token is not
 * `hashKey(bytes)` routes the key to the wrong replicas and files it under
 * the wrong token range.
 *
 * Replicas never take a token from the wire: `kv.apply` and `kv.coordinate`
 * carry the key's bytes only, and the receiving node hashes them itself
 * (see `ReplicaServer.handle`).
 */
export interface KeyRef {
  /** The key's bytes (for a string key, its UTF-8 encoding): non-empty, within the key limit. */
  readonly bytes: Uint8Array;
  /** `hashKey(bytes)`: the key's token on the ring (an unsigned 32-bit integer). */
  readonly token: number;
}

/**
 * A write of one key: what the Store asks its coordinator for, what a
 * coordinator asks its replica for (`ReplicaServer.coordinateWrite`, which
 * ignores `w`), and what `kv.coordinate` carries to a replica.
 */
export interface WriteRequest {
  /** The encoded value; `undefined` exactly when `tombstone` is true. */
  readonly value: Uint8Array | undefined;
  /** True for a delete (the version is a tombstone). */
  readonly tombstone: boolean;
  /** What the client had read (`VectorClock.EMPTY` for a blind write). */
  readonly context: VectorClock;
  /** Also supersede everything the coordinating replica holds (last-write-wins mode). */
  readonly overwrite: boolean;
  /** W: distinct replicas, the coordinating one included, that must store the write. */
  readonly w: number;
  /**
   * Wall-clock ms of the new version, for last-writer-wins resolution.
   * @default the coordinating replica's clock when it creates the version
   */
  readonly timestamp?: number | undefined;
}

/**
 * Health of a node as the failure detector sees it.
 * @deprecated Use `MemberStatus` (the same type).
 */
export type NodeStatus = MemberStatus;

/**
 * A write to coordinate.
 * @deprecated Use {@link WriteRequest} (the same type).
 */
export type CoordinatedWrite = WriteRequest;

/**
 * A write to coordinate on one replica.
 * @deprecated Use {@link WriteRequest}; a replica ignores its `w`.
 */
export type LocalWrite = Omit<WriteRequest, 'w'>;

/**
 * Where a replica keeps the high-water mark of the dot counters it leased,
 * so that a restart over the same storage never reissues a counter. The
 * composition root decides where it lives (the node keeps it in its
 * storage's metadata slot, `MetaNames.counter`; see `metadataCounterLease`).
 */
export interface CounterLease {
  /** The leased mark, 0 when none was ever leased. */
  load(): Promise<number>;
  /** Durably raises the mark to `to` (resolves once a restart would see it). */
  extend(to: number): Promise<void>;
}
