/**
 * Ring: an immutable consistent-hash ring with virtual nodes (pure, no I/O).
 *
 * @module
 */
import { ReplicaSet } from './replica-set.js';
import { DEFAULT_MAX_KEY_BYTES, defaultTokens, hashKey } from './hash.js';
import type { NodeInfo, NodeSpec, RangeChange, RingJSON, RingOptions, TokenRange, ZoneReplication } from './types.js';
import { formatZoneReplication, normalizeZoneReplication, zoneReplicationTotal } from './zones.js';

const TWO_32 = 2 ** 32;
const MAX_TOKEN = TWO_32 - 1;
/** Node indexes are packed below the token in one float64 sort key. */
const MAX_NODES = 2 ** 20;
const EMPTY: readonly NodeInfo[] = Object.freeze([]);

type Table = (readonly NodeInfo[] | undefined)[];

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  return `${typeof value} ${String(value)}`;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkN(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`Expected \`n\` to be a positive integer, got ${String(n)}`);
  }
}

function checkToken(token: number): void {
  if (!Number.isInteger(token) || token < 0 || token > MAX_TOKEN) {
    throw new RangeError(`Expected \`token\` to be an unsigned 32-bit integer, got ${String(token)}`);
  }
}

function checkMaxKeyBytes(options: RingOptions | undefined): number {
  if (options === undefined) return DEFAULT_MAX_KEY_BYTES;
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
  }
  const max = options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new RangeError(`Expected \`maxKeyBytes\` to be a positive integer, got ${String(max)}`);
  }
  return max;
}

function checkZones(options: RingOptions | undefined): ZoneReplication | undefined {
  const zones = options?.zones;
  return zones === undefined ? undefined : normalizeZoneReplication(zones);
}

/** Validates a spec (or an existing NodeInfo) and returns a frozen NodeInfo. */
function normalize(spec: NodeSpec | NodeInfo): NodeInfo {
  if (typeof spec !== 'object' || spec === null) {
    throw new TypeError(`Expected a node to be an object, got ${describe(spec)}`);
  }
  const { id } = spec;
  if (typeof id !== 'string' || id.length === 0) {
    throw new TypeError(`Expected node \`id\` to be a non-empty string, got ${describe(id)}`);
  }
  const address = spec.address ?? id;
  if (typeof address !== 'string' || address.length === 0) {
    throw new TypeError(`Expected \`address\` of node ${JSON.stringify(id)} to be a non-empty string, got ${describe(address)}`);
  }
  const zone = spec.zone;
  if (zone !== undefined && (typeof zone !== 'string' || zone.length === 0)) {
    throw new TypeError(`Expected \`zone\` of node ${JSON.stringify(id)} to be a non-empty string, got ${describe(zone)}`);
  }
  const weight = spec.weight ?? 1;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new RangeError(`Expected \`weight\` of node ${JSON.stringify(id)} to be a finite number > 0, got ${describe(weight)}`);
  }
  let tokens: number[];
  if (spec.tokens === undefined) {
    tokens = defaultTokens(id, weight);
  } else {
    if (!Array.isArray(spec.tokens)) {
      throw new TypeError(`Expected \`tokens\` of node ${JSON.stringify(id)} to be an array, got ${describe(spec.tokens)}`);
    }
    if (spec.tokens.length === 0) {
      throw new RangeError(`Expected \`tokens\` of node ${JSON.stringify(id)} to hold at least one token`);
    }
    const sorted = new Float64Array(spec.tokens.length);
    spec.tokens.forEach((t: unknown, i: number) => {
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > MAX_TOKEN) {
        throw new RangeError(
          `Expected \`tokens[${i}]\` of node ${JSON.stringify(id)} to be an unsigned 32-bit integer, got ${describe(t)}`,
        );
      }
      sorted[i] = t;
    });
    sorted.sort();
    tokens = [];
    for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) tokens.push(sorted[i]!);
  }
  return Object.freeze({
    id,
    address,
    ...(zone === undefined ? {} : { zone }),
    weight,
    tokens: Object.freeze(tokens),
  });
}

/**
 * An immutable consistent-hash ring of physical nodes, each owning many virtual-node
 * tokens on the 2^32 MurmurHash3 ring. A key belongs to the first vnode clockwise from
 * its token (the first token >= the key's token, wrapping). Changes return a new Ring.
 *
 * The ring is a pure function of its node set: every process that knows the same nodes
 * builds the same ring whatever the order they were added (vnodes sort by token, then
 * node id, so token collisions are broken by id).
 *
 * Lookups are a hash, a bucketed binary search and an array read: preference lists
 * are cached per (vnode, n) on first use and returned frozen.
 *
 * @example
 * ```ts
 * import { Ring } from 'quorumkv';
 *
 * let ring = Ring.from([{ id: 'a', zone: 'dc1' }, { id: 'b', zone: 'dc2' }, { id: 'c', zone: 'dc1', weight: 2 }]);
 * ring.preferenceList('user:1', 2);   // e.g. [b, c]: 2 distinct nodes in 2 zones
 * const next = ring.withNode({ id: 'd', zone: 'dc2' });
 * Ring.diff(ring, next, 3);           // the ranges whose replica set changes
 * ring = Ring.fromJSON(JSON.parse(JSON.stringify(next)));
 * ```
 */
export class Ring {
  /** The nodes, sorted by id, frozen. */
  readonly nodes: readonly NodeInfo[];
  /**
   * Largest accepted key in UTF-8 bytes.
   * @default 1024
   */
  readonly maxKeyBytes: number;
  /**
   * The zone map replicas are placed by (frozen, zones sorted by name), or
   * `undefined` without one. See {@link RingOptions.zones}.
   * @default undefined
   */
  readonly zones: ZoneReplication | undefined;

  readonly #index: ReadonlyMap<string, number>;
  /** vnode tokens, ascending (ties: by node id). */
  readonly #tokens: Uint32Array;
  /** vnode -> index into `nodes`. */
  readonly #owners: Uint32Array;
  /** `#buckets[b]` = first vnode with token >= b << #shift: narrows the binary search to ~1 vnode. */
  readonly #buckets: Uint32Array;
  readonly #shift: number;
  readonly #zoned: boolean;
  /** Preference lists by clamped n, then by vnode index (lazy). */
  readonly #pref: (Table | undefined)[] = [];
  /** All distinct nodes clockwise from a vnode (lazy). */
  readonly #succ: Table;
  /** With a zone map: its sum (the N it gives). */
  readonly #zoneTotal: number;
  /** With a zone map: [zone, replicas it holds = min(count, its nodes)] per zone of the map. */
  readonly #zoneSlots: readonly (readonly [string, number])[];
  /** With a zone map: replicas of every key (the sum of the slots). */
  readonly #zoneReplicas: number;
  /** With a zone map: preference lists by vnode index (lazy). */
  readonly #zonePref: Table;
  #ranges: readonly TokenRange[] | undefined;
  #ownership: ReadonlyMap<string, number> | undefined;

  private constructor(nodes: NodeInfo[], maxKeyBytes: number, zones: ZoneReplication | undefined) {
    nodes.sort((a, b) => compareIds(a.id, b.id));
    if (nodes.length > MAX_NODES) throw new RangeError(`A ring holds at most ${MAX_NODES} nodes, got ${nodes.length}`);
    const index = new Map<string, number>();
    let vnodes = 0;
    let zoned = false;
    nodes.forEach((node, i) => {
      if (index.has(node.id)) throw new RangeError(`Duplicate node id ${JSON.stringify(node.id)}`);
      index.set(node.id, i);
      vnodes += node.tokens.length;
      if (node.zone !== undefined) zoned = true;
    });
    // Sort key token * 2^20 + nodeIndex (< 2^52, exact in a float64): by token, then id.
    const keys = new Float64Array(vnodes);
    let k = 0;
    nodes.forEach((node, i) => {
      for (const t of node.tokens) keys[k++] = t * MAX_NODES + i;
    });
    keys.sort();
    const tokens = new Uint32Array(vnodes);
    const owners = new Uint32Array(vnodes);
    for (let v = 0; v < vnodes; v++) {
      const key = keys[v]!;
      const owner = key % MAX_NODES;
      owners[v] = owner;
      tokens[v] = (key - owner) / MAX_NODES;
    }
    this.nodes = Object.freeze(nodes);
    this.maxKeyBytes = maxKeyBytes;
    this.#index = index;
    this.#tokens = tokens;
    this.#owners = owners;
    // 2^bits buckets, ~2 per vnode (at most 2^16: 256 KiB).
    const bits = Math.min(16, Math.max(1, Math.ceil(Math.log2(vnodes + 1)) + 1));
    const shift = 32 - bits;
    const buckets = new Uint32Array((1 << bits) + 1);
    for (let b = 0, v = 0; b < buckets.length; b++) {
      const lower = b * 2 ** shift;
      while (v < vnodes && tokens[v]! < lower) v++;
      buckets[b] = v;
    }
    this.#buckets = buckets;
    this.#shift = shift;
    this.#zoned = zoned;
    this.#succ = new Array<readonly NodeInfo[] | undefined>(vnodes);
    this.zones = zones;
    const slots: [string, number][] = [];
    let replicas = 0;
    if (zones !== undefined) {
      const perZone = new Map<string, number>();
      for (const node of nodes) if (node.zone !== undefined) perZone.set(node.zone, (perZone.get(node.zone) ?? 0) + 1);
      for (const [zone, count] of Object.entries(zones)) {
        const slot = Math.min(count, perZone.get(zone) ?? 0);
        if (slot > 0) slots.push([zone, slot]);
        replicas += slot;
      }
    }
    this.#zoneTotal = zones === undefined ? 0 : zoneReplicationTotal(zones);
    this.#zoneSlots = slots;
    this.#zoneReplicas = replicas;
    this.#zonePref = zones === undefined ? [] : new Array<readonly NodeInfo[] | undefined>(vnodes);
    Object.freeze(this);
  }

  /**
   * Builds a ring from node specs (or NodeInfos of another ring). Specs are normalized:
   * weight 1, `address` = `id`, tokens = `defaultTokens(id, weight)` when missing.
   *
   * @throws TypeError on a malformed node; RangeError on a duplicate id, a bad weight,
   * bad tokens or a bad `maxKeyBytes`.
   */
  static from(nodes: readonly (NodeSpec | NodeInfo)[], options?: RingOptions): Ring {
    if (!Array.isArray(nodes)) throw new TypeError(`Expected \`nodes\` to be an array, got ${describe(nodes)}`);
    return new Ring(nodes.map(normalize), checkMaxKeyBytes(options), checkZones(options));
  }

  /** A ring without nodes (every lookup returns `[]`). */
  static empty(options?: RingOptions): Ring {
    return new Ring([], checkMaxKeyBytes(options), checkZones(options));
  }

  /**
   * Rebuilds a ring from {@link Ring.toJSON} output.
   * @throws TypeError on anything that is not a valid {@link RingJSON}.
   */
  static fromJSON(json: unknown): Ring {
    const fail = (why: string, cause?: unknown): never => {
      throw new TypeError(`Invalid ring JSON: ${why}`, cause === undefined ? undefined : { cause });
    };
    if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(`expected an object, got ${describe(json)}`);
    const obj = json as Record<string, unknown>;
    if (obj.version !== 1) fail(`expected \`version\` 1, got ${describe(obj.version)}`);
    if (!Array.isArray(obj.nodes)) fail(`expected \`nodes\` to be an array, got ${describe(obj.nodes)}`);
    const nodes = (obj.nodes as unknown[]).map((n, i): NodeSpec => {
      if (typeof n !== 'object' || n === null || Array.isArray(n)) fail(`expected \`nodes[${i}]\` to be an object, got ${describe(n)}`);
      const node = n as Record<string, unknown>;
      if (typeof node.id !== 'string') fail(`expected \`nodes[${i}].id\` to be a string, got ${describe(node.id)}`);
      if (typeof node.address !== 'string') fail(`expected \`nodes[${i}].address\` to be a string, got ${describe(node.address)}`);
      if (node.zone !== undefined && typeof node.zone !== 'string') fail(`expected \`nodes[${i}].zone\` to be a string, got ${describe(node.zone)}`);
      if (typeof node.weight !== 'number') fail(`expected \`nodes[${i}].weight\` to be a number, got ${describe(node.weight)}`);
      if (!Array.isArray(node.tokens)) fail(`expected \`nodes[${i}].tokens\` to be an array, got ${describe(node.tokens)}`);
      return {
        id: node.id as string,
        address: node.address as string,
        ...(node.zone === undefined ? {} : { zone: node.zone as string }),
        weight: node.weight as number,
        tokens: node.tokens as number[],
      };
    });
    if (typeof obj.maxKeyBytes !== 'number') fail(`expected \`maxKeyBytes\` to be a number, got ${describe(obj.maxKeyBytes)}`);
    try {
      return Ring.from(nodes, {
        maxKeyBytes: obj.maxKeyBytes as number,
        ...(obj.zones === undefined ? {} : { zones: obj.zones as ZoneReplication }),
      });
    } catch (err) {
      return fail((err as Error).message, err);
    }
  }

  /** The JSON form: nodes sorted by id with explicit tokens (so no one has to re-derive them). */
  toJSON(): RingJSON {
    return {
      version: 1,
      nodes: this.nodes.map((n) => ({
        id: n.id,
        address: n.address,
        ...(n.zone === undefined ? {} : { zone: n.zone }),
        weight: n.weight,
        tokens: [...n.tokens],
      })),
      maxKeyBytes: this.maxKeyBytes,
      ...(this.zones === undefined ? {} : { zones: { ...this.zones } }),
    };
  }

  /** A new ring with `node` added, or replacing the node with the same id. */
  withNode(node: NodeSpec | NodeInfo): Ring {
    const info = normalize(node);
    return new Ring([...this.nodes.filter((n) => n.id !== info.id), info], this.maxKeyBytes, this.zones);
  }

  /** A new ring without the node `id` (the same ring if it is absent). */
  withoutNode(id: string): Ring {
    if (!this.#index.has(id)) return this;
    return new Ring(this.nodes.filter((n) => n.id !== id), this.maxKeyBytes, this.zones);
  }

  /**
   * The same nodes placed by another zone map (`undefined`: none).
   *
   * @throws TypeError / RangeError on a malformed map (see {@link RingOptions.zones}).
   *
   * @example
   * ```ts
   * const zoned = ring.withZones({ dc1: 2, dc2: 1 });
   * zoned.preferenceList('user:1', 3); // 2 nodes of dc1 and 1 of dc2, clockwise
   * ```
   */
  withZones(zones: ZoneReplication | undefined): Ring {
    return new Ring([...this.nodes], this.maxKeyBytes, zones === undefined ? undefined : normalizeZoneReplication(zones));
  }

  /** Number of physical nodes. */
  get size(): number {
    return this.nodes.length;
  }

  /** The node with this id, or `undefined`. */
  node(id: string): NodeInfo | undefined {
    const i = this.#index.get(id);
    return i === undefined ? undefined : this.nodes[i];
  }

  /** True if a node with this id is on the ring. */
  has(id: string): boolean {
    return this.#index.has(id);
  }

  /**
   * The key's token (MurmurHash3 x86_32 of its UTF-8 bytes).
   * @throws KvError `KV_INVALID_KEY` (see `hashKey`).
   */
  token(key: string | Uint8Array): number {
    return hashKey(key, this.maxKeyBytes);
  }

  /**
   * The first `n` distinct physical nodes clockwise from the key's token. With zones,
   * nodes of zones not used yet come first (in clockwise order), then the remaining
   * nodes clockwise. Returns every node when `n > size`, `[]` on an empty ring.
   *
   * With a zone map ({@link Ring.zones}), `n` must be the map's sum, and the list is
   * the map's placement: per zone of the map, the first `count` distinct nodes of
   * that zone clockwise (all of them when it has fewer), in clockwise order overall.
   *
   * The array is cached and frozen: do not try to mutate it.
   *
   * @throws RangeError if `n` is not a positive integer, or not the zone map's sum;
   *   KvError `KV_INVALID_KEY`.
   */
  preferenceList(key: string | Uint8Array, n: number): readonly NodeInfo[] {
    const token = hashKey(key, this.maxKeyBytes);
    this.#checkN(n);
    return this.#prefAt(this.#find(token), n);
  }

  /**
   * {@link Ring.preferenceList} for a token.
   * @throws RangeError if `n` is not a positive integer (or not the zone map's sum)
   *   or `token` not an unsigned 32-bit integer.
   */
  preferenceListForToken(token: number, n: number): readonly NodeInfo[] {
    checkToken(token);
    this.#checkN(n);
    return this.#prefAt(this.#find(token), n);
  }

  /**
   * Every distinct physical node in clockwise order from the token (no zone
   * preference): the walk a sloppy quorum takes past the preference list.
   * @throws RangeError if `token` is not an unsigned 32-bit integer.
   */
  successors(token: number): readonly NodeInfo[] {
    checkToken(token);
    return this.#tokens.length === 0 ? EMPTY : this.#succAt(this.#find(token));
  }

  /**
   * The key's {@link ReplicaSet}: its primaries (the preference list) and fallbacks.
   * @throws RangeError if `n` is not a positive integer (or not the zone map's sum);
   *   KvError `KV_INVALID_KEY`.
   */
  replicaSet(key: string | Uint8Array, n: number): ReplicaSet {
    return ReplicaSet.forToken(this, hashKey(key, this.maxKeyBytes), n);
  }

  /**
   * All token ranges in token order, one per distinct token: `(previous token, token]`
   * owned (as primary) by the token's vnode. The first range wraps past 2^32 - 1.
   */
  ranges(): readonly TokenRange[] {
    if (this.#ranges !== undefined) return this.#ranges;
    const tokens = this.#tokens;
    const owners = this.#owners;
    const out: TokenRange[] = [];
    let prev = tokens.length > 0 ? tokens[tokens.length - 1]! : 0;
    for (let v = 0; v < tokens.length; v++) {
      const t = tokens[v]!;
      if (v > 0 && t === tokens[v - 1]) continue; // a colliding token owns nothing: the lower id wins
      out.push(Object.freeze({ start: prev, end: t, node: this.nodes[owners[v]!]!.id }));
      prev = t;
    }
    this.#ranges = Object.freeze(out);
    return this.#ranges;
  }

  /** The ranges whose primary is `nodeId`, in token order. */
  rangesOf(nodeId: string): readonly TokenRange[] {
    return Object.freeze(this.ranges().filter((r) => r.node === nodeId));
  }

  /** Fraction of the 2^32 token space each node owns as primary (sums to 1; 0 for none). */
  ownership(): ReadonlyMap<string, number> {
    if (this.#ownership !== undefined) return this.#ownership;
    const owned = new Map<string, number>(this.nodes.map((n) => [n.id, 0]));
    for (const r of this.ranges()) {
      const width = r.start === r.end ? TWO_32 : (r.end - r.start + TWO_32) % TWO_32;
      owned.set(r.node, owned.get(r.node)! + width / TWO_32);
    }
    this.#ownership = owned;
    return owned;
  }

  /**
   * The token ranges whose replica set at replication factor `n` differs between two
   * rings: exactly what a join / leave / re-weight has to stream. Boundaries are the
   * union of both rings' tokens; a range is reported when the set of replica ids
   * differs (order is ignored); adjacent ranges with the same before/after lists merge.
   * Each ring places by its own zone map, if it has one.
   *
   * @throws RangeError if `n` is not a positive integer, or not the sum of either ring's zone map.
   */
  static diff(before: Ring, after: Ring, n: number): RangeChange[] {
    before.#checkN(n);
    after.#checkN(n);
    const a = before.#tokens;
    const b = after.#tokens;
    const bounds: number[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      const t = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i]! : b[j]!;
      if (bounds.length === 0 || bounds[bounds.length - 1] !== t) bounds.push(t);
      while (i < a.length && a[i] === t) i++;
      while (j < b.length && b[j] === t) j++;
    }
    const ids = (ring: Ring, t: number): string[] =>
      ring.#tokens.length === 0 ? [] : ring.#prefAt(ring.#find(t), n).map((x) => x.id);
    const sameSet = (x: readonly string[], y: readonly string[]): boolean =>
      x.length === y.length && x.every((id) => y.includes(id));
    const sameList = (x: readonly string[], y: readonly string[]): boolean =>
      x.length === y.length && x.every((id, k) => id === y[k]);

    const out: { start: number; end: number; before: string[]; after: string[] }[] = [];
    let lastIndex = -2;
    for (let k = 0; k < bounds.length; k++) {
      const end = bounds[k]!;
      const start = bounds[(k - 1 + bounds.length) % bounds.length]!;
      const x = ids(before, end);
      const y = ids(after, end);
      if (sameSet(x, y)) continue;
      const last = out[out.length - 1];
      if (last !== undefined && lastIndex === k - 1 && sameList(last.before, x) && sameList(last.after, y)) {
        last.end = end;
      } else {
        out.push({ start, end, before: x, after: y });
      }
      lastIndex = k;
    }
    // Merge across the wrap point.
    const first = out[0];
    const last = out[out.length - 1];
    if (out.length > 1 && first !== undefined && last !== undefined && last.end === first.start &&
      sameList(first.before, last.before) && sameList(first.after, last.after)) {
      first.start = last.start;
      out.pop();
    }
    return out.map((r) => Object.freeze({ start: r.start, end: r.end, before: Object.freeze(r.before), after: Object.freeze(r.after) }));
  }

  /** Index of the first vnode with token >= `token`, wrapping to 0. */
  #find(token: number): number {
    const tokens = this.#tokens;
    const buckets = this.#buckets;
    const b = token >>> this.#shift;
    let lo = buckets[b]!;
    let hi = buckets[b + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (tokens[mid]! < token) lo = mid + 1;
      else hi = mid;
    }
    return lo === tokens.length ? 0 : lo;
  }

  /** `n` is a positive integer and, with a zone map, its sum. */
  #checkN(n: number): void {
    checkN(n);
    if (this.zones !== undefined && n !== this.#zoneTotal) {
      throw new RangeError(
        `Expected \`n\` to be ${this.#zoneTotal}, the sum of the ring's zone map ${formatZoneReplication(this.zones)}, got ${n}`,
      );
    }
  }

  #prefAt(vnode: number, n: number): readonly NodeInfo[] {
    const size = this.nodes.length;
    if (size === 0) return EMPTY;
    if (this.zones !== undefined) return this.#zonePref[vnode] ?? (this.#zonePref[vnode] = this.#computeZonePref(vnode));
    const m = n > size ? size : n;
    let table = this.#pref[m];
    if (table === undefined) table = this.#pref[m] = new Array<readonly NodeInfo[] | undefined>(this.#tokens.length);
    return table[vnode] ?? (table[vnode] = this.#computePref(vnode, m));
  }

  #computePref(vnode: number, m: number): readonly NodeInfo[] {
    const nodes = this.nodes;
    const out: NodeInfo[] = [];
    if (!this.#zoned) {
      const owners = this.#owners;
      const len = owners.length;
      const seen = new Uint8Array(nodes.length);
      for (let k = 0, v = vnode; k < len && out.length < m; k++, v = v + 1 === len ? 0 : v + 1) {
        const o = owners[v]!;
        if (seen[o] === 0) {
          seen[o] = 1;
          out.push(nodes[o]!);
        }
      }
      return Object.freeze(out);
    }
    // Zone-aware: first one node per unused zone, clockwise; then fill clockwise.
    const order = this.#succAt(vnode);
    const usedZones = new Set<string | undefined>();
    const picked = new Set<string>();
    for (const node of order) {
      if (out.length === m) break;
      if (!usedZones.has(node.zone)) {
        usedZones.add(node.zone);
        picked.add(node.id);
        out.push(node);
      }
    }
    for (const node of order) {
      if (out.length === m) break;
      if (!picked.has(node.id)) out.push(node);
    }
    return Object.freeze(out);
  }

  /** Zone-map placement: per zone, its first `min(count, nodes of the zone)` distinct nodes clockwise. */
  #computeZonePref(vnode: number): readonly NodeInfo[] {
    const nodes = this.nodes;
    const out: NodeInfo[] = [];
    const wanted = this.#zoneReplicas;
    if (wanted === 0) return EMPTY;
    const left = new Map<string, number>(this.#zoneSlots);
    const owners = this.#owners;
    const len = owners.length;
    const seen = new Uint8Array(nodes.length);
    for (let k = 0, v = vnode; k < len && out.length < wanted; k++, v = v + 1 === len ? 0 : v + 1) {
      const o = owners[v]!;
      if (seen[o] !== 0) continue;
      seen[o] = 1;
      const node = nodes[o]!;
      if (node.zone === undefined) continue;
      const slots = left.get(node.zone);
      if (slots === undefined || slots === 0) continue;
      left.set(node.zone, slots - 1);
      out.push(node);
    }
    return Object.freeze(out);
  }

  #succAt(vnode: number): readonly NodeInfo[] {
    const cached = this.#succ[vnode];
    if (cached !== undefined) return cached;
    const nodes = this.nodes;
    const owners = this.#owners;
    const len = owners.length;
    const seen = new Uint8Array(nodes.length);
    const out: NodeInfo[] = [];
    for (let k = 0, v = vnode; k < len && out.length < nodes.length; k++, v = v + 1 === len ? 0 : v + 1) {
      const o = owners[v]!;
      if (seen[o] === 0) {
        seen[o] = 1;
        out.push(nodes[o]!);
      }
    }
    return (this.#succ[vnode] = Object.freeze(out));
  }
}
