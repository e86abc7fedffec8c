/**
 * Contracts of the anti-entropy sessions (types only): the node's local
 * replica as a session sees it, the options of a round and what a round
 * reports.
 *
 * @module
 */
import type { StoredEntry, TokenRangeQuery } from '../storage/index.js';

/**
 * This node's replica as anti-entropy uses it. The node component adapts
 * its `ReplicaServer` and storage to it, so records received from a peer go
 * through the replica's ordinary merge path (read, merge, write under the
 * key's lock: never an overwrite, concurrent siblings survive).
 */
export interface AntiEntropyReplica {
  /** This node's stored entries whose token lies in `range` (a storage scan, tombstones included). */
  scan(range: TokenRangeQuery, signal?: AbortSignal): AsyncIterable<StoredEntry>;
  /** The encoded record (sibling set) of `key`, undefined when absent. */
  read(key: Uint8Array): Promise<Uint8Array | undefined>;
  /**
   * Merges a peer's encoded record of `key` into the local one (the
   * replica's merge path: `ReplicaServer.apply`). The record has been
   * validated by decoding; the key lies in a range this node replicates.
   */
  merge(key: Uint8Array, record: Uint8Array): Promise<void>;
  /**
   * Removes `key` physically if, under the key's lock, its stored record
   * still satisfies `matches` and holds only tombstones. Resolves true if
   * it removed it.
   */
  purgeTombstone(key: Uint8Array, matches: (record: Uint8Array) => boolean): Promise<boolean>;
}

/** Options of one anti-entropy round ({@link RepairResult} says what it did). */
export interface RepairOptions {
  /** Cancels the round: it rejects with `KV_ABORTED` (records merged so far stay merged). */
  signal?: AbortSignal;
  /**
   * Deadline of the whole round, ms; past it the round rejects with `KV_TIMEOUT`.
   * @default Infinity (each request still has the anti-entropy `timeout`)
   */
  timeout?: number;
}

/**
 * What one anti-entropy round did (`store.repair()`, or a background round
 * reported in the `antientropy:completed` log line).
 */
export interface RepairResult {
  /** (range, peer) pairs whose Merkle trees were compared to the end. */
  readonly rangesCompared: number;
  /** Records sent or received (each counted once, in either direction). */
  readonly keysExchanged: number;
  /** Encoded bytes of the anti-entropy requests this node sent (frames as the wire codec writes them). */
  readonly bytesSent: number;
  /** Encoded bytes of the answers this node received to them. */
  readonly bytesReceived: number;
  /** Hints this node handed to their owners before the round (0 without hinted handoff). */
  readonly hintsDelivered: number;
  /** (range, peer) pairs skipped: the peer was unknown, down, or failed (unreachable, timed out, refused). */
  readonly peersSkipped: number;
  /** Tombstones removed on all replicas of their key (older than the grace, held by every replica). */
  readonly tombstonesPurged: number;
}
