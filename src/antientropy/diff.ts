/**
 * The comparison steps of a Merkle exchange, as pure functions over trees
 * and wire-sized values (no I/O): the network session sends what they
 * return and feeds them what it receives. `./exchange.ts` strings them
 * together in the order an exchange runs.
 *
 * Wire forms are compact on purpose: a list of node hashes is one byte
 * string (8 bytes a hash, in the order of the node list both sides already
 * know), a set of differing positions is a bitmap over that list, and a
 * leaf's entries go over as their sorted 8-byte entry hashes only (no key
 * hash next to a record hash: an entry hash the other side lacks is a key
 * it lacks or holds in another version, and the side that owns the entry
 * knows the key).
 *
 * @module
 */
import { writeEntryHash, type MerkleEntry, type MerkleTree } from './merkle-tree.js';

/** Bytes of one hash on the wire. */
export const HASH_BYTES = 8;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an instance of ${(value as object).constructor?.name ?? 'Object'}`;
  return typeof value === 'number' ? String(value) : typeof value;
}

function checkHashList(bytes: unknown, name: string): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`Expected \`${name}\` to be a Uint8Array, got ${describe(bytes)}`);
  if (bytes.length % HASH_BYTES !== 0) {
    throw new RangeError(`Expected \`${name}\` to hold whole 8-byte hashes, got ${bytes.length} bytes`);
  }
}

function checkNodes(tree: MerkleTree, level: number, nodes: readonly number[]): void {
  const count = tree.nodesAt(level);
  if (!Array.isArray(nodes)) throw new TypeError(`Expected \`nodes\` to be an array, got ${describe(nodes)}`);
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    if (!(typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < count)) {
      throw new RangeError(`Expected \`nodes[${i}]\` to be a node index from 0 to ${count - 1} at level ${level}, got ${describe(n)}`);
    }
  }
}

/**
 * The hashes of `nodes` (indexes at `level`), 8 bytes each, in the order given.
 *
 * @throws RangeError if `level` or a node index is out of bounds.
 *
 * @example
 * ```ts
 * levelHashes(tree, 0, [0]); // the root, 8 bytes
 * ```
 */
export function levelHashes(tree: MerkleTree, level: number, nodes: readonly number[]): Uint8Array {
  checkNodes(tree, level, nodes);
  const out = new Uint8Array(nodes.length * HASH_BYTES);
  for (let i = 0; i < nodes.length; i++) tree.writeNodeHash(level, nodes[i]!, out, i * HASH_BYTES);
  return out;
}

/**
 * Positions (ascending) at which two hash lists of the same nodes differ.
 *
 * @throws TypeError if either is not a Uint8Array; RangeError if they differ
 * in length or do not hold whole 8-byte hashes.
 */
export function differingChildren(mine: Uint8Array, theirs: Uint8Array): number[] {
  checkHashList(mine, 'mine');
  checkHashList(theirs, 'theirs');
  if (mine.length !== theirs.length) {
    throw new RangeError(`Expected hash lists of equal length, got ${mine.length} and ${theirs.length} bytes`);
  }
  const out: number[] = [];
  for (let p = 0; p < mine.length; p += HASH_BYTES) {
    for (let j = 0; j < HASH_BYTES; j++) {
      if (mine[p + j] !== theirs[p + j]) {
        out.push(p / HASH_BYTES);
        break;
      }
    }
  }
  return out;
}

/**
 * The children (indexes at `level + 1`, ascending when `nodes` is) of the
 * nodes at `positions` of `nodes` (at `level`): the next list to compare.
 *
 * @throws RangeError if `level` is the leaf level or out of bounds, a node
 * index is out of bounds, or a position is not an index into `nodes`.
 */
export function childNodes(tree: MerkleTree, level: number, nodes: readonly number[], positions: readonly number[]): number[] {
  checkNodes(tree, level, nodes);
  if (level >= tree.depth) throw new RangeError(`Expected \`level\` to be above the leaves (< ${tree.depth}), got ${level}`);
  const out: number[] = [];
  for (const p of positions) {
    if (!(Number.isInteger(p) && p >= 0 && p < nodes.length)) {
      throw new RangeError(`Expected a position from 0 to ${nodes.length - 1}, got ${describe(p)}`);
    }
    const first = nodes[p]! * tree.fanout;
    for (let c = 0; c < tree.fanout; c++) out.push(first + c);
  }
  return out;
}

/**
 * `positions` (each in `0 .. length - 1`) as a bitmap of `ceil(length / 8)`
 * bytes: bit `i & 7` of byte `i >> 3` is set for position `i`.
 *
 * @throws RangeError on a position out of bounds.
 */
export function toBitmap(positions: readonly number[], length: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(length / 8));
  for (const p of positions) {
    if (!(Number.isInteger(p) && p >= 0 && p < length)) {
      throw new RangeError(`Expected a position from 0 to ${length - 1}, got ${describe(p)}`);
    }
    out[p >> 3]! |= 1 << (p & 7);
  }
  return out;
}

/**
 * The positions set in a bitmap over `length` positions (see {@link toBitmap}), ascending.
 *
 * @throws TypeError if `bitmap` is not a Uint8Array; RangeError if it is not
 * `ceil(length / 8)` bytes or has a bit set at or past `length`.
 */
export function fromBitmap(bitmap: Uint8Array, length: number): number[] {
  if (!(bitmap instanceof Uint8Array)) throw new TypeError(`Expected \`bitmap\` to be a Uint8Array, got ${describe(bitmap)}`);
  const bytes = Math.ceil(length / 8);
  if (bitmap.length !== bytes) {
    throw new RangeError(`Expected a bitmap of ${bytes} bytes for ${length} positions, got ${bitmap.length}`);
  }
  const out: number[] = [];
  for (let b = 0; b < bytes; b++) {
    const byte = bitmap[b]!;
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((byte & (1 << bit)) === 0) continue;
      const p = b * 8 + bit;
      if (p >= length) throw new RangeError(`Expected no bit set at or past position ${length}, got bit ${p}`);
      out.push(p);
    }
  }
  return out;
}

/** One leaf's entries on this side: what is sent, and the keys behind it. */
export interface LeafEntries {
  /** The leaf segment. */
  readonly segment: number;
  /** Entry hashes, 8 bytes each, strictly ascending (as unsigned big-endian numbers): the wire form. */
  readonly hashes: Uint8Array;
  /** `keys[i]` is the key of the entry whose hash is at `hashes[8i .. 8i + 8)`. */
  readonly keys: readonly Uint8Array[];
}

/**
 * The entries of leaf `segment`, from the records a scan of
 * `tree.segmentRange(segment)` returned (keys, tokens and the same digests
 * the tree was given), sorted by entry hash. Their XOR is the leaf's hash
 * when the tree is current.
 *
 * @throws TypeError on an entry whose key or digest is not a Uint8Array;
 * RangeError if `segment` is out of bounds, an entry's token is not in the
 * segment, or an entry appears twice.
 */
export function leafEntries(tree: MerkleTree, segment: number, entries: Iterable<MerkleEntry>): LeafEntries {
  tree.segmentRange(segment); // checks the segment
  const list = Array.isArray(entries) ? (entries as readonly MerkleEntry[]) : [...entries];
  const n = list.length;
  const words = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const { key, token, digest } = list[i]!;
    if (!(key instanceof Uint8Array)) throw new TypeError(`Expected \`key\` to be a Uint8Array, got ${describe(key)}`);
    if (!(digest instanceof Uint8Array)) throw new TypeError(`Expected \`digest\` to be a Uint8Array, got ${describe(digest)}`);
    const s = tree.segmentOf(token);
    if (s !== segment) throw new RangeError(`Expected entries of segment ${segment}, got token ${token} of segment ${s}`);
    writeEntryHash(key, digest, words, 2 * i);
  }
  const order = sortedOrder(words, n);
  const hashes = new Uint8Array(n * HASH_BYTES);
  const keys = new Array<Uint8Array>(n);
  let prevHi = -1;
  let prevLo = -1;
  for (let i = 0; i < n; i++) {
    const k = order[i]!;
    const hi = words[2 * k]!;
    const lo = words[2 * k + 1]!;
    if (hi === prevHi && lo === prevLo) throw new RangeError(`Expected each entry once in segment ${segment}, got a duplicate`);
    prevHi = hi;
    prevLo = lo;
    const at = i * HASH_BYTES;
    hashes[at] = hi >>> 24;
    hashes[at + 1] = hi >>> 16;
    hashes[at + 2] = hi >>> 8;
    hashes[at + 3] = hi;
    hashes[at + 4] = lo >>> 24;
    hashes[at + 5] = lo >>> 16;
    hashes[at + 6] = lo >>> 8;
    hashes[at + 7] = lo;
    keys[i] = list[k]!.key;
  }
  return { segment, hashes, keys };
}

/** Indexes of the `n` (high, low) pairs in `words`, in ascending hash order. */
function sortedOrder(words: Uint32Array, n: number): Int32Array | number[] {
  if (n > 48) {
    const order = Array.from({ length: n }, (_, i) => i);
    return order.sort((x, y) => words[2 * x]! - words[2 * y]! || words[2 * x + 1]! - words[2 * y + 1]!);
  }
  // A leaf holds a few dozen entries: insertion sort, no comparator calls.
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const hi = words[2 * i]!;
    const lo = words[2 * i + 1]!;
    let j = i - 1;
    for (; j >= 0; j--) {
      const o = order[j]!;
      const ohi = words[2 * o]!;
      if (ohi < hi || (ohi === hi && words[2 * o + 1]! <= lo)) break;
      order[j + 1] = o;
    }
    order[j + 1] = i;
  }
  return order;
}

/** What one side does about one differing leaf. */
export interface KeyExchange {
  /** Keys whose records this side sends: entries the other side lacks (key missing, or another record). */
  readonly send: Uint8Array[];
  /** Positions in the other side's hash list of entries this side lacks: the records it asks for. */
  readonly request: number[];
}

/**
 * Compares this side's entries of a leaf with the other side's hash list
 * for the same leaf (one merge pass over two sorted lists). A key held in
 * different versions is in both `send` and `request`: each side merges the
 * other's record.
 *
 * @throws TypeError if `theirs` is not a Uint8Array; RangeError if it does
 * not hold whole 8-byte hashes in strictly ascending order.
 */
export function keysToExchange(mine: LeafEntries, theirs: Uint8Array): KeyExchange {
  checkHashList(theirs, 'theirs');
  for (let p = HASH_BYTES; p < theirs.length; p += HASH_BYTES) {
    if (compareHash(theirs, p - HASH_BYTES, theirs, p) >= 0) {
      throw new RangeError(
        `Expected \`theirs\` in strictly ascending order, got hash ${p / HASH_BYTES} not above hash ${p / HASH_BYTES - 1}`,
      );
    }
  }
  const a = mine.hashes;
  const send: Uint8Array[] = [];
  const request: number[] = [];
  const na = a.length / HASH_BYTES;
  const nb = theirs.length / HASH_BYTES;
  let i = 0;
  let j = 0;
  while (i < na || j < nb) {
    let c: number;
    if (i === na) c = 1;
    else if (j === nb) c = -1;
    else c = compareHash(a, i * HASH_BYTES, theirs, j * HASH_BYTES);
    if (c < 0) send.push(mine.keys[i++]!);
    else if (c > 0) request.push(j++);
    else {
      i++;
      j++;
    }
  }
  return { send, request };
}

function compareHash(a: Uint8Array, i: number, b: Uint8Array, j: number): number {
  for (let k = 0; k < HASH_BYTES; k++) {
    const d = a[i + k]! - b[j + k]!;
    if (d !== 0) return d;
  }
  return 0;
}
