/**
 * ReplicaSet: the N replicas of one token and the fallbacks a sloppy quorum uses.
 *
 * @module
 */
import type { NodeInfo, ZoneConsistencyLevel, ZoneReplication } from './types.js';
import type { Ring } from './ring.js';
import { zoneQuorum } from './zones.js';

/** One pick of {@link ReplicaSet.select}. */
export interface ReplicaSelection {
  /** The node to contact. */
  readonly node: NodeInfo;
  /**
   * Set when `node` is a fallback: the id of the unavailable primary it stands in
   * for (the hinted-handoff target). Absent for primaries.
   */
  readonly standInFor?: string;
}

/** Data a {@link ReplicaSet} is built from (see {@link ReplicaSet.forToken}). */
export interface ReplicaSetInit {
  /** The key's token. */
  readonly token: number;
  /** Requested replication factor N (may exceed the ring's size). */
  readonly n: number;
  /** The preference list: the first N distinct nodes (zone-aware). */
  readonly primaries: readonly NodeInfo[];
  /** Every distinct node of the ring, clockwise from the token. */
  readonly successors: readonly NodeInfo[];
  /**
   * The ring's zone map, when the primaries follow one.
   * @default undefined (no zone map)
   */
  readonly zoneReplication?: ZoneReplication | undefined;
}

/** What {@link ReplicaSet.forToken}'s shared init holds between calls. */
const EMPTY_NODES: readonly NodeInfo[] = Object.freeze([]);

/**
 * The replicas of one key: its N primaries (the preference list) and, behind them,
 * every other node in clockwise order as fallbacks for a sloppy quorum.
 * Immutable and pure.
 *
 * @example
 * ```ts
 * const rs = ring.replicaSet('user:1', 3);
 * const targets = rs.select((node) => membership.isAlive(node.id));
 * // [{ node: a }, { node: d, standInFor: 'b' }, { node: c }]
 * ```
 */
export class ReplicaSet {
  /** The key's token. */
  readonly token: number;
  /** Requested replication factor N. */
  readonly n: number;
  /**
   * The preference list: min(N, ring size) distinct nodes; with a zone map,
   * min(count, nodes of the zone) per zone of the map.
   */
  readonly primaries: readonly NodeInfo[];
  /**
   * The zone map the primaries follow, `undefined` without one.
   * @default undefined
   */
  readonly zoneReplication: ZoneReplication | undefined;
  // One is built for every write, so what only a sloppy quorum or zone logic
  // needs (fallbacks, zones) is computed on first use (private fields are not
  // affected by `Object.freeze`).
  readonly #successors: readonly NodeInfo[];
  #fallbacks: readonly NodeInfo[] | undefined;
  #zones: readonly string[] | undefined;
  #zoneOf: ReadonlyMap<string, string | undefined> | undefined;

  /** Set by {@link ReplicaSet.forToken} for the one construction that follows: its lists come frozen from the ring. */
  static #fromRing = false;

  /** Prefer {@link ReplicaSet.forToken} or `ring.replicaSet(key, n)`. */
  constructor(init: ReplicaSetInit) {
    // One is built per read and write: `Object.isFrozen` on the ring's cached
    // (frozen) lists measured ~0.6 µs a write.
    const fromRing = ReplicaSet.#fromRing;
    ReplicaSet.#fromRing = false;
    this.token = init.token;
    this.n = init.n;
    this.primaries = fromRing || Object.isFrozen(init.primaries) ? init.primaries : Object.freeze([...init.primaries]);
    this.#successors = fromRing || Object.isFrozen(init.successors) ? init.successors : Object.freeze([...init.successors]);
    this.zoneReplication = init.zoneReplication;
    Object.freeze(this);
  }

  /** All remaining distinct nodes, in clockwise order from the token. */
  get fallbacks(): readonly NodeInfo[] {
    return (this.#fallbacks ??= Object.freeze(this.#successors.filter((s) => !this.isPrimary(s.id))));
  }

  /** Distinct zones covered by the primaries, in preference order (nodes without zone add none). */
  get zones(): readonly string[] {
    if (this.#zones === undefined) {
      const zones: string[] = [];
      for (const p of this.primaries) if (p.zone !== undefined && !zones.includes(p.zone)) zones.push(p.zone);
      this.#zones = Object.freeze(zones);
    }
    return this.#zones;
  }

  /**
   * The replica set of `token` in `ring` at replication factor `n`.
   * @throws RangeError if `n` is not a positive integer or `token` not an unsigned 32-bit integer.
   */
  static forToken(ring: Ring, token: number, n: number): ReplicaSet {
    // One init object for every call (the constructor copies what it needs
    // and keeps none of it): a coordinator builds a replica set per write.
    const init = ReplicaSet.#init;
    init.primaries = ring.preferenceListForToken(token, n);
    init.successors = ring.successors(token);
    init.token = token;
    init.n = n;
    init.zoneReplication = ring.zones;
    ReplicaSet.#fromRing = true;
    try {
      return new ReplicaSet(init);
    } finally {
      init.primaries = init.successors = EMPTY_NODES;
      init.zoneReplication = undefined;
    }
  }

  /** {@link ReplicaSet.forToken}'s init, filled anew for each call. */
  static readonly #init: { -readonly [K in keyof ReplicaSetInit]: ReplicaSetInit[K] } = {
    token: 0,
    n: 1,
    primaries: [],
    successors: [],
    zoneReplication: undefined,
  };

  /**
   * Acknowledgements a zone consistency level needs per zone, from this key's
   * primaries only: `local_quorum` needs floor(k / 2) + 1 of the k primaries
   * in `localZone`; `each_quorum` that in every zone of the map.
   *
   * @param level - `'local_quorum'` or `'each_quorum'`.
   * @param localZone - The coordinator's zone (`undefined` when it has none).
   * @returns Zone → acknowledgements needed from that zone's primaries.
   * @throws KvError `KV_UNAVAILABLE_CONSISTENCY` when the configuration cannot
   *   meet the level (no zone map; for `local_quorum`, no zone or a zone
   *   without replicas in the map; for `each_quorum`, a zone of the map
   *   without nodes).
   *
   * @example
   * ```ts
   * ring.withZones({ dc1: 3, dc2: 2 }).replicaSet('k', 5).zoneQuorum('each_quorum', 'dc1');
   * // Map { 'dc1' => 2, 'dc2' => 2 }
   * ```
   */
  zoneQuorum(level: ZoneConsistencyLevel, localZone: string | undefined): ReadonlyMap<string, number> {
    return zoneQuorum(this.primaries, this.zoneReplication, level, localZone);
  }

  /** Zone of a node of this ring (`undefined` if it has none or is unknown). */
  zoneOf(id: string): string | undefined {
    if (this.#zoneOf === undefined) {
      const zoneOf = new Map<string, string | undefined>();
      for (const node of this.primaries) zoneOf.set(node.id, node.zone);
      for (const node of this.#successors) zoneOf.set(node.id, node.zone);
      this.#zoneOf = zoneOf;
    }
    return this.#zoneOf.get(id);
  }

  /** True if `id` is one of the primaries. */
  isPrimary(id: string): boolean {
    // An index loop: `primaries` is frozen, and iterating a frozen array is slower on Node 20.
    const primaries = this.primaries;
    for (let i = 0; i < primaries.length; i++) if (primaries[i]!.id === id) return true;
    return false;
  }

  /**
   * The nodes a sloppy quorum contacts: the first `primaries.length` available nodes
   * of primaries-then-fallbacks. The k-th fallback used stands in for the k-th
   * unavailable primary (its hint target). Returns fewer when not enough nodes are
   * available. `isAvailable` is called at most once per node, in list order.
   */
  select(isAvailable: (node: NodeInfo) => boolean): ReplicaSelection[] {
    const out: ReplicaSelection[] = [];
    const missing: string[] = [];
    for (const node of this.primaries) {
      if (isAvailable(node)) out.push({ node });
      else missing.push(node.id);
    }
    let k = 0;
    if (missing.length === 0) return out;
    for (const node of this.fallbacks) {
      if (k === missing.length) break;
      if (isAvailable(node)) out.push({ node, standInFor: missing[k++]! });
    }
    return out;
  }
}
