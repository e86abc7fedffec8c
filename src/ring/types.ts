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
   * Failure domain (data center, rack). Replicas are spread over distinct zones first.
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

/** Options of {@link Ring.from} / `Ring.empty`. */
export interface RingOptions {
  /**
   * Largest accepted key, in UTF-8 bytes.
   * @default 1024
   */
  maxKeyBytes?: number;
}

/** The JSON form of a ring (`Ring#toJSON`, `Ring.fromJSON`). */
export interface RingJSON {
  /** Format version. */
  version: 1;
  /** Nodes sorted by id, with their explicit tokens. */
  nodes: { id: string; address: string; zone?: string; weight: number; tokens: number[] }[];
  /** See {@link RingOptions.maxKeyBytes}. */
  maxKeyBytes: number;
}
