import type { Clock } from '../internal/clock.js';
import type { NodeEvents } from '../node/index.js';
import type { PhiAccrualFailureDetectorOptions } from '../membership/index.js';
import type { ZoneConsistencyLevel, ZoneReplication } from '../ring/index.js';
import type { Logger, Metrics } from '../observability/index.js';
import type { StorageAdapter } from '../storage/index.js';
import type { Transport } from '../transport/index.js';

/** A key: a string (UTF-8 encoded) or raw bytes. `'a'` and `Uint8Array [0x61]` are the same key. */
export type Key = string | Uint8Array;

/**
 * Named consistency levels: `'one'`, `'quorum'` (floor(N / 2) + 1) and
 * `'all'` are resolved against N; `'local_quorum'` and `'each_quorum'` are
 * counted per zone over the key's own replicas (no sloppy stand-ins) and
 * need `replication.zones` (see {@link ZoneConsistencyLevel} and docs/zones.md).
 */
export type ConsistencyLevel = 'one' | 'quorum' | 'all' | ZoneConsistencyLevel;

/** Replication settings. N is cluster-wide; R and W are per store and per call. */
export interface ReplicationOptions {
  /**
   * Replicas per key. Nodes with another N are refused at join. With
   * `zones`, N is their sum; giving another `n` is a TypeError.
   * @default 3 (with `zones`, the sum of their counts)
   */
  n?: number;
  /** Read quorum. @default 2 (with `zones`, floor(N / 2) + 1) */
  r?: number;
  /** Write quorum. @default 2 (with `zones`, floor(N / 2) + 1) */
  w?: number;
  /**
   * Per-zone replication, as Cassandra's NetworkTopologyStrategy: replicas
   * of every key per zone, e.g. `{ dc1: 2, dc2: 1 }` (zone names as the
   * nodes' `zone`, counts positive integers summing to at most 64). In each
   * zone a key lives on the first `count` nodes of that zone clockwise from
   * its token; nodes of other zones or without one hold no replicas. Enables
   * the `local_quorum` and `each_quorum` levels. Cluster-wide: a node with
   * another map (or none) is refused at join with `KV_REPLICATION_MISMATCH`.
   * See docs/zones.md.
   * @default undefined (N replicas clockwise, spread over zones first)
   */
  zones?: ZoneReplication;
}

/**
 * How `get` presents concurrent versions:
 * - `'siblings'`: every concurrent value (the caller reconciles and writes back with the context);
 * - `'lww'`: the version with the latest coordinator timestamp (node id breaks ties); a
 *   put without a context then overwrites what the coordinating replica holds;
 * - a function: called with the concurrent values, its result is returned (never written back).
 * @default 'siblings'
 */
export type ConflictPolicy<V> = 'siblings' | 'lww' | ((values: V[]) => V);

/** Gossip and failure-detection settings. */
export interface GossipOptions {
  /**
   * Milliseconds between gossip rounds (at least 10). Each round a node
   * exchanges member records with one live peer (plus, now and then, a down
   * one or a seed), so news of every member reaches every node about every
   * 1.2–1.6 intervals. @default 250
   */
  interval?: number;
  /**
   * The failure detector that decides when a silent member is `suspect` and
   * `down`:
   * - `'phi'`: phi-accrual (as Cassandra and Akka), adaptive to how
   *   regularly each member's news arrives; tuned with `phi`. With the
   *   defaults a crashed member is `down` everywhere about 2 s after the
   *   crash, and event-loop stalls of up to about a second raise no suspicion.
   * - `'timeout'`: fixed timeouts of `suspectAfterRounds` and
   *   `downAfterRounds` gossip rounds.
   *
   * Giving `suspectAfterRounds` or `downAfterRounds` alone selects
   * `'timeout'`; mixing the round counts with `phi` (or with `detector:
   * 'phi'`) is a TypeError.
   * @default 'phi'
   */
  detector?: 'phi' | 'timeout';
  /**
   * Settings of the phi detector (`threshold` 8, `suspectThreshold` 4,
   * `maxSampleSize` 200, `minStdDeviation` 200 ms, `acceptableHeartbeatPause`
   * 500 ms, `firstHeartbeatEstimate` twice `interval`). Raise
   * `acceptableHeartbeatPause` where event-loop stalls or network hiccups
   * are longer than about a second; each +100 ms delays detection by 100 ms.
   * @default {}
   */
  phi?: PhiAccrualFailureDetectorOptions;
  /** Timeout detector: rounds without a heartbeat before a member is suspected. @default 5 */
  suspectAfterRounds?: number;
  /** Timeout detector: rounds without a heartbeat before a member is declared down. @default 10 */
  downAfterRounds?: number;
  /** Timeout of one gossip exchange, ms. @default 1000 */
  timeout?: number;
  /** Bound on the shutdown announcement `stop()` sends to the peers, ms. @default 500 */
  shutdownTimeout?: number;
}

/** Anti-entropy settings of a Store (see docs/anti-entropy.md). */
export interface AntiEntropyOptions {
  /**
   * Time between background rounds, ms (on the store's `clock`); each
   * round compares every range this node holds with its other replicas.
   * `false`: no background rounds (`repair()` still works). At least 1000.
   * @default 600000 (10 minutes)
   */
  interval?: number | false;
  /**
   * Share of `interval` by which each wait is moved at random, either way,
   * so the nodes' rounds do not line up (0 to 1).
   * @default 0.1
   */
  jitter?: number;
  /**
   * Grace before a tombstone may be purged, ms (Cassandra's `gc_grace`):
   * a tombstone is removed only when older than this and held by every
   * replica of its key. A node down for longer than this must be wiped
   * before it rejoins (it could bring deleted values back). Keep hint
   * TTLs below it. `Infinity` never purges. At least 1.
   * @default 864000000 (10 days)
   */
  tombstoneGrace?: number;
  /**
   * Timeout of each request of a round, ms (a peer that does not answer
   * in time is skipped for that range).
   * @default 10000
   */
  timeout?: number;
}

/** Hinted handoff settings (see docs/hinted-handoff.md). */
export interface HintOptions {
  /**
   * How long a stand-in keeps a hint for an owner that has not taken it, ms;
   * older hints are deleted undelivered (read repair and anti-entropy then
   * repair what they carried), like Cassandra's `max_hint_window`. At most
   * the tombstone grace (`antiEntropy.tombstoneGrace`, 10 days by default):
   * a hint older than that could bring a purged delete back.
   * @default 10800000 (3 hours)
   */
  ttl?: number;
  /** Most hint deliveries in flight at once, per node (the throttle). @default 16 */
  maxInFlight?: number;
  /**
   * Period of the background sweep that delivers hints to owners that are
   * alive, ms (an owner that comes back after being declared down is also
   * served at once, on `member:up`).
   * @default 10000
   */
  interval?: number;
}

/** Options of `store.repair()` (see `RepairOptions` in the anti-entropy module). */
export type { RepairOptions, RepairResult } from '../antientropy/index.js';

/** Options of `new Store(...)`. */
export interface StoreOptions<V = unknown> {
  /** Unique node id. */
  id: string;
  /** Cluster name; nodes of other clusters are refused. @default 'quorumkv' */
  cluster?: string;
  /** How this node talks to the others. */
  transport: Transport;
  /** Where this node keeps its data. @default new MemoryStorage() */
  storage?: StorageAdapter;
  /** Addresses of nodes to join through (retried in the background). @default [] */
  seeds?: readonly string[];
  /** @default { n: 3, r: 2, w: 2 } */
  replication?: ReplicationOptions;
  /** @default 'siblings' */
  conflict?: ConflictPolicy<V>;
  /** Zone (data center / rack) for zone-aware placement. */
  zone?: string;
  /** Relative capacity: share of virtual nodes. @default 1 */
  weight?: number;
  /** Explicit ring tokens (unsigned 32-bit). @default derived from the id and weight, then kept in storage */
  tokens?: readonly number[];
  /** Whole-call deadline of each operation, ms. @default 5000 */
  timeout?: number;
  /**
   * Sloppy quorum for writes (Dynamo): a replica that is down, fails or
   * stays silent for `hopTimeout` gets a stand-in, the next healthy node of
   * the key's extended preference list, which keeps the write under a hint
   * for it (hinted handoff) and counts toward W. Writes with `w` = N
   * (`consistency: 'all'`) always count the key's own replicas only; so do
   * all writes when this is `false`. Reads always ask the key's own replicas
   * (see docs/hinted-handoff.md).
   * @default true
   */
  sloppyQuorum?: boolean;
  /**
   * Per-hop timeout, ms: how long a write waits for one replica before a
   * sloppy quorum asks a stand-in, and how long a forwarded write waits for
   * the replica creating its version before it asks the next one (a write
   * through a silent replica ends within about two hops).
   * @default 250
   */
  hopTimeout?: number;
  /** Hinted handoff settings. @default { ttl: 10800000, maxInFlight: 16, interval: 10000 } */
  hints?: HintOptions;
  /** @default 1024 */
  maxKeyBytes?: number;
  /** Largest msgpack-encoded value. @default 10240 */
  maxValueBytes?: number;
  /**
   * Most versions (concurrent siblings and tombstones) a write may leave on
   * one key, as Riak's `max_siblings`: a write past it is refused with
   * `KV_TOO_MANY_SIBLINGS` and stores nothing; a write that supersedes at
   * least one version the key still holds (as one with the context of a
   * fresh read does) is always accepted, so the key can be repaired; one whose
   * context others have already superseded counts as a new sibling.
   * `maxValueBytes × maxSiblings × N`
   * must fit the transport's frame limit (checked at construction).
   * @default 100
   */
  maxSiblings?: number;
  /** Versions of one key above which `siblings:exceeded` is emitted. @default 25 (at most `maxSiblings`) */
  siblingWarning?: number;
  /** Vector clock entries kept per version. @default 10 */
  maxClockEntries?: number;
  gossip?: GossipOptions;
  /**
   * Anti-entropy (Merkle-tree repair between replicas, tombstone GC).
   * `false` turns off the background rounds only: `store.repair()` still
   * runs a round on demand, with the other settings at their defaults.
   * @default { interval: 600000, jitter: 0.1, tombstoneGrace: 864000000, timeout: 10000 }
   */
  antiEntropy?: AntiEntropyOptions | false;
  /** Time source (inject a fake one in tests). @default the system clock */
  clock?: Clock;
  /**
   * Source of randomness in [0, 1): gossip peer choice and the incarnation
   * drawn on empty storage. Inject a seeded one (`seededRandom(seed)` from
   * `quorumkv/testing`) for runs that replay exactly.
   * @default Math.random (incarnations from node:crypto)
   */
  random?: () => number;
  /**
   * Where the node reports numbers (member gauges, refusals, sibling
   * warnings). Synchronous and must never throw. @default noopMetrics
   */
  metrics?: Metrics;
  /**
   * Where the node logs membership changes, refusals, sibling warnings and
   * failed metadata writes. Synchronous and must never throw. @default noopLogger
   */
  logger?: Logger;
}

/** Options every operation takes. */
export interface CallOptions {
  /** Aborts the call (`KV_ABORTED`). */
  signal?: AbortSignal;
  /** Whole-call deadline, ms. @default the store's `timeout` */
  timeout?: number;
}

/** Options of `get`. */
export interface GetOptions extends CallOptions {
  /** Read quorum for this call (1..N). @default the store's R */
  r?: number;
  /**
   * Alternative to `r`. `'local_quorum'` / `'each_quorum'` reject at once
   * with `KV_UNAVAILABLE_CONSISTENCY` when the configuration cannot meet them.
   */
  consistency?: ConsistencyLevel;
}

/** Options of `put` and `delete`. */
export interface PutOptions extends CallOptions {
  /** The context of the read this write replaces; omit for a blind write. */
  context?: string;
  /** Write quorum for this call (1..N). @default the store's W */
  w?: number;
  /**
   * Alternative to `w`. `'local_quorum'` / `'each_quorum'` count the key's own
   * replicas only (no sloppy stand-ins) and reject at once with
   * `KV_UNAVAILABLE_CONSISTENCY` when the configuration cannot meet them.
   */
  consistency?: ConsistencyLevel;
}

/** Options of `delete` (a delete without a context first reads with R). */
export interface DeleteOptions extends PutOptions {
  /** Read quorum of the read a context-less delete makes. @default the store's R */
  r?: number;
}

/** What `get` returns. */
export interface GetResult<V> {
  /** One value, or several concurrent siblings (never a tombstone). */
  values: V[];
  /** Opaque causal context to pass to the next put/delete of this key. */
  context: string;
}

/** One version as `localGet` shows it. */
export interface LocalSibling<V> {
  value: V | undefined;
  tombstone: boolean;
  /** The version's own clock (its past plus its dot), encoded. */
  clock: string;
  /** Coordinator wall-clock time of the write. */
  timestamp: number;
}

/** What `localGet` returns: this node's own record of a key. */
export interface LocalRecord<V> extends GetResult<V> {
  siblings: LocalSibling<V>[];
}

/** Every event a Store emits; one object payload each. */
export interface StoreEvents extends NodeEvents {}
