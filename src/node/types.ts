import type { Clock } from '../internal/clock.js';
import type { MembershipEvents, PhiAccrualFailureDetectorOptions } from '../membership/index.js';
import type { Logger, Metrics } from '../observability/index.js';
import type { ZoneReplication } from '../ring/index.js';
import type { StorageAdapter } from '../storage/index.js';
import type { Transport } from '../transport/index.js';
import type { AntiEntropyConfig } from './anti-entropy.js';

/** What the composition root needs to build a node (validated, defaults applied). */
export interface NodeConfig {
  readonly id: string;
  readonly cluster: string;
  readonly transport: Transport;
  readonly storage: StorageAdapter;
  readonly seeds: readonly string[];
  /** Cluster-wide replication factor. */
  readonly n: number;
  /** Cluster-wide per-zone replication (N is its sum); see `ReplicationOptions.zones`. */
  readonly zones: ZoneReplication | undefined;
  readonly zone: string | undefined;
  readonly weight: number;
  /** Explicit tokens; else stored ones, else derived from the id. */
  readonly tokens: readonly number[] | undefined;
  readonly maxKeyBytes: number;
  readonly maxClockEntries: number;
  /** Most versions a write may leave on one key (`KV_TOO_MANY_SIBLINGS` past it). */
  readonly maxSiblings: number;
  /** Versions of one key above which `siblings:exceeded` is emitted. */
  readonly siblingWarning: number;
  /** Writes may count stand-ins (hinted fallbacks) toward W; see `StoreOptions.sloppyQuorum`. */
  readonly sloppyQuorum: boolean;
  /** Per-hop timeout of the data path, ms; see `StoreOptions.hopTimeout`. */
  readonly hopTimeout: number;
  /** Hinted handoff settings; see `HintOptions`. */
  readonly hints: { readonly ttl: number; readonly maxInFlight: number; readonly interval: number };
  readonly gossip: {
    readonly interval: number;
    readonly suspectAfterRounds: number;
    readonly downAfterRounds: number;
    readonly timeout: number;
    readonly shutdownTimeout: number;
    /** Which failure detector membership uses (the round counts serve `'timeout'`, `phi` serves `'phi'`). */
    readonly detector: 'phi' | 'timeout';
    readonly phi: Required<PhiAccrualFailureDetectorOptions>;
  };
  /** Anti-entropy: background interval, tombstone grace, request timeout. */
  readonly antiEntropy: AntiEntropyConfig;
  readonly clock: Clock;
  /** Randomness for gossip peer choice and new incarnations; undefined: Math.random and node:crypto. */
  readonly random: (() => number) | undefined;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** Every event a node emits (the Store re-emits them); one object payload each. */
export interface NodeEvents extends MembershipEvents {
  /**
   * Read repair sent the merged record to stale replicas. `key` is a string
   * when the key's bytes are valid UTF-8 (every string key), else its bytes.
   */
  'repair:completed': (event: { key: string | Uint8Array; nodes: readonly string[] }) => void;
  /**
   * A write coordinated by this node left `key` with more than
   * `siblingWarning` versions (tombstones included) where it had at most
   * that many: resolve its siblings (read, merge, write with the context)
   * before it reaches `maxSiblings`, where blind writes are refused. Emitted
   * once per crossing. `key` as in `repair:completed`.
   */
  'siblings:exceeded': (event: { key: string | Uint8Array; siblings: number; threshold: number }) => void;
  /**
   * This node, standing in for `target` in a sloppy quorum, stored a hint:
   * `key`'s record, kept until `target` acknowledges it (or the hint TTL
   * passes). `key` as in `repair:completed`.
   */
  'hint:stored': (event: { target: string; key: string | Uint8Array }) => void;
  /** `target` acknowledged a hint this node kept for it; the hint is deleted. `key` as in `repair:completed`. */
  'hint:delivered': (event: { target: string; key: string | Uint8Array }) => void;
}
