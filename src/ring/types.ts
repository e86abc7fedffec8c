/**
 * Types of the consistent-hash ring. Types only: no runtime code lives here.
 *
 * @module
 */

/**
 * A physical node as the ring knows it: normalized, validated and frozen.
 * Built by {@link Ring.from} (or `Ring#withNode`) from a {@link NodeSpec}.
 */
export interface NodeInfo {
  /** Unique node id (the ring's sort key and tie breaker). */
  readonly id: string;
  /**
   * Where the node is reached (a transport address).
   * @default the node's `id`
   */
  readonly address: string;
  /**
   * Failure domain (data center, rack). Replicas are spread over distinct zones first,
   * or placed per zone when the ring has a zone map ({@link RingOptions.zones}).
   * @default undefined (no zone)
   */
  readonly zone?: string | undefined;
  /**
   * Relative capacity, > 0. A node's default token count is `round(weight * 256)`.
   * @default 1
   */
  readonly weight: number;
  /** The node's virtual-node tokens: unsigned 32-bit integers, ascending, unique within the node. */
  readonly tokens: readonly number[];
}

/**
 * What a node currently believes about another node's health (its failure
 * detector's view). Lives with the ring so that every layer that places or
 * routes data (membership, replication, sloppy quorums) shares one type.
 */
export type MemberStatus = 'alive' | 'suspect' | 'down';

/** What a caller gives to build a {@link NodeInfo}; everything but `id` is optional. */
export interface NodeSpec {
  /** Unique, non-empty node id. */
  id: string;
  /** @default the node's `id` */
  address?: string;
  /** @default undefined (no zone) */
  zone?: string;
  /** @default 1 */
  weight?: number;
  /**
   * Explicit tokens (unsigned 32-bit integers; sorted and de-duplicated on normalization).
   * @default defaultTokens(id, weight)
   */
  tokens?: readonly number[];
}

/**
 * A token range `(start, end]` on the 2^32 ring and its primary owner.
 * The range wraps past 2^32 - 1 when `start >= end`; `start === end` is the whole ring.
 */
export interface TokenRange {
  /** Exclusive lower bound. */
  readonly start: number;
  /** Inclusive upper bound (the owning vnode's token). */
  readonly end: number;
  /** Id of the primary owner. */
  readonly node: string;
}

/**
 * A token range `(start, end]` whose replica set differs between two rings,
 * as reported by `Ring.diff`: the data in it has to move from `before` to `after`.
 */
export interface RangeChange {
  /** Exclusive lower bound. */
  readonly start: number;
  /** Inclusive upper bound. */
  readonly end: number;
  /** Replica set (node ids, preference order) in the old ring. */
  readonly before: readonly string[];
  /** Replica set (node ids, preference order) in the new ring. */
  readonly after: readonly string[];
}

/**
 * Per-zone replication (Cassandra's NetworkTopologyStrategy): how many
 * replicas of every key each zone holds, e.g. `{ dc1: 2, dc2: 1 }`. The
 * replication factor N is the sum of the counts. In each zone, a key's
 * replicas are the first `count` distinct nodes of that zone clockwise from
 * its token (a zone with fewer nodes holds it on all of them); nodes of
 * other zones, or without a zone, hold no replicas (they still coordinate
 * and stand in for sloppy quorums). See docs/zones.md.
 */
export type ZoneReplication = Readonly<Record<string, number>>;

/**
 * Consistency levels counted per zone, over the key's primaries only (no
 * sloppy stand-ins); they need a {@link ZoneReplication} map:
 * - `'local_quorum'`: a quorum (floor(k / 2) + 1) of the k replicas in the
 *   coordinator's own zone;
 * - `'each_quorum'`: such a quorum in every zone of the map.
 */
export type ZoneConsistencyLevel = 'local_quorum' | 'each_quorum';

/** Options of {@link Ring.from} / `Ring.empty`. */
export interface RingOptions {
  /**
   * Largest accepted key, in UTF-8 bytes.
   * @default 1024
   */
  maxKeyBytes?: number;
  /**
   * Per-zone replication: with it, a key's preference list follows the map
   * (see {@link ZoneReplication}) and `n` must be the sum of its counts.
   * Without it, the first N distinct nodes clockwise are the replicas
   * (spread over zones first when nodes have zones).
   * @default undefined (no zone map)
   */
  zones?: ZoneReplication | undefined;
}

/** The JSON form of a ring (`Ring#toJSON`, `Ring.fromJSON`). */
export interface RingJSON {
  /** Format version. */
  version: 1;
  /** Nodes sorted by id, with their explicit tokens. */
  nodes: { id: string; address: string; zone?: string; weight: number; tokens: number[] }[];
  /** See {@link RingOptions.maxKeyBytes}. */
  maxKeyBytes: number;
  /** See {@link RingOptions.zones}; absent without a zone map. */
  zones?: Record<string, number>;
}
