import { totalmem } from 'node:os';
import { allocBytes } from '../internal/bytes.js';
import { KeyIndex, keyHash, touched } from './key-index.js';
import { AbstractStorage } from './abstract-storage.js';
import { RecordArena, readPlaced, readRange, type Placed } from './record-arena.js';
import type { StorageIterable } from './storage-iterator.js';
import { tokenInRange } from './token-range.js';
import { describeValue } from './validation.js';
import type { StorageCapabilities, StoredEntry, StoredHint, TokenRangeQuery } from './types.js';

/**
 * A key and its record, one after the other in the storage's
 * {@link RecordArena}, outside the JS heap: `slab[offset, offset +
 * keyLength)` is the key, the rest up to `offset + length` the record (a
 * compaction may move them, never change them).
 */
interface KeyAndRecord extends Placed {
  readonly keyLength: number;
}

/** A stored hint: its key and record lie in the arena, as a row's do. */
interface HintRow extends KeyAndRecord {
  readonly id: string;
  readonly target: string;
  readonly token: number;
  readonly createdAt: number;
  /** Insertion order (kept by a replacement). */
  readonly seq: number;
}

/** Pending (or dead) rows are merged into the index once there are this many… */
const MERGE_AT = 1024;
/** …and they are at least 1/MERGE_SHARE of the index. */
const MERGE_SHARE = 16;

const CAPABILITIES: StorageCapabilities = Object.freeze({ durable: false, orderedScan: true });
const EMPTY = new Uint8Array(0);

// A real copy (Buffer#slice would alias), by memcpy.
const copy = (b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(b.byteLength);
  out.set(b);
  return out;
};

/** Where a row sits: nowhere (its id is free), in the pending list, in the sorted index, or dead there. */
const FREE = 0;
const PENDING = 1;
const SORTED = 2;
/** Deleted or re-put under another token while in the sorted index; its id is let go at the next merge. */
const DEAD = 3;

/** A growable list of row ids, outside the JS heap. */
class IdList {
  items: Int32Array;
  length = 0;

  constructor(capacity = 16) {
    this.items = new Int32Array(Math.max(16, capacity));
  }

  push(id: number): void {
    if (this.length === this.items.length) this.items = grown(this.items, new Int32Array(this.items.length * 2));
    this.items[this.length++] = id;
  }

  /** Room for `n` ids without growing. */
  reserve(n: number): void {
    if (this.items.length < n) this.items = grown(this.items, new Int32Array(n));
  }
}

/** A column chunk holds this many rows (2^14): a column grows a chunk at a time, nothing copied. */
const CHUNK_BITS = 14;
const CHUNK_ROWS = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK_ROWS - 1;
/** Rows of a column's first chunk, which doubles (copied) up to {@link CHUNK_ROWS}: an empty storage stays small. */
const FIRST_CHUNK_ROWS = 16;

/**
 * A column of 32-bit integers by row id, in chunks of {@link CHUNK_ROWS}
 * (the first one smaller until it fills): growing never copies more than
 * one chunk, so the millionth key costs what the thousandth does (doubling
 * flat arrays stopped a node for ~140 ms at 1M rows on the benchmark VM,
 * most of it first touches of the new arrays).
 */
class IntColumn {
  readonly chunks: Int32Array[] = [new Int32Array(FIRST_CHUNK_ROWS)];

  get(id: number): number {
    return this.chunks[id >>> CHUNK_BITS]![id & CHUNK_MASK]!;
  }

  set(id: number, value: number): void {
    this.chunks[id >>> CHUNK_BITS]![id & CHUNK_MASK] = value;
  }

  /**
   * Room for `rows` rows (the next size up: the first chunk doubled, or one
   * more chunk), in arrays made by `make` (`touched` ones when reserving).
   */
  grow(rows: number, make: (n: number) => Int32Array): void {
    const chunks = this.chunks;
    if (chunks.length === 1 && chunks[0]!.length < CHUNK_ROWS) chunks[0] = grown(chunks[0]!, make(rows));
    else chunks.push(make(CHUNK_ROWS));
  }
}

const zeroed = (n: number): Int32Array => new Int32Array(n);

/**
 * The slab of each row (EMPTY where no row is), as a slab number in an
 * {@link IntColumn} (outside the JS heap) and a table of the slabs in use.
 * A column of pointers was the largest thing on a big memory node's JS
 * heap (8 bytes a row: 20 MB at 2.5M keys, two thirds of the tcp bench's
 * coordinating process), traced at every full collection and written
 * under the collector's barrier at every put; its final marking pauses
 * reached 5–7 ms. The table counts the rows in each slab and forgets a
 * slab once none is left (a scan's snapshot or a reader's view still
 * holds it as long as they need it).
 */
class SlabColumn {
  readonly #numbers = new IntColumn();
  /** Slab by number; number 0 is EMPTY (no row). */
  readonly #slabs: Uint8Array[] = [EMPTY];
  /** Rows pointing into each slab (by number; number 0's is not kept). */
  readonly #rowCounts: number[] = [0];
  /** Number by slab, for the slabs in the table. */
  readonly #byslab = new Map<Uint8Array, number>();
  /** Numbers let go, reused first. */
  readonly #freeNumbers: number[] = [];
  /** The last slab looked up and its number: rows are placed one slab after another. */
  #last: Uint8Array = EMPTY;
  #lastNumber = 0;

  get(id: number): Uint8Array {
    return this.#slabs[this.#numbers.get(id)]!;
  }

  set(id: number, slab: Uint8Array): void {
    const before = this.#numbers.get(id);
    const after = this.#numberOf(slab);
    if (after === before) return;
    if (after !== 0) this.#rowCounts[after]!++;
    this.#numbers.set(id, after);
    if (before !== 0 && --this.#rowCounts[before]! === 0) this.#forget(before);
  }

  /** Room for `rows` rows (see {@link IntColumn.grow}). */
  grow(rows: number, make: (n: number) => Int32Array): void {
    this.#numbers.grow(rows, make);
  }

  /** Slabs with rows in them (for tests). */
  get slabs(): number {
    return this.#byslab.size;
  }

  #numberOf(slab: Uint8Array): number {
    if (slab === this.#last) return this.#lastNumber;
    if (slab === EMPTY) return 0;
    let n = this.#byslab.get(slab);
    if (n === undefined) {
      n = this.#freeNumbers.pop() ?? this.#slabs.length;
      this.#slabs[n] = slab;
      this.#rowCounts[n] = 0;
      this.#byslab.set(slab, n);
    }
    this.#last = slab;
    this.#lastNumber = n;
    return n;
  }

  #forget(n: number): void {
    const slab = this.#slabs[n]!;
    this.#byslab.delete(slab);
    this.#slabs[n] = EMPTY;
    this.#freeNumbers.push(n);
    if (this.#last === slab) {
      this.#last = EMPTY;
      this.#lastNumber = 0;
    }
  }
}

/**
 * The stored rows, as columns indexed by row id: what would be one heap
 * object per key is a slot in a few typed arrays (outside the heap), its
 * slab named by number ({@link SlabColumn}). A million keys were a million objects the
 * garbage collector promoted and marked again at every full collection
 * (measured on the five-node put driver: against storage that keeps
 * nothing, ~1.5 µs of collector pauses and ~4 µs of its background threads
 * per quorum put); here it has nothing per key to trace.
 *
 * A row's token and key never change while it is stored; an overwrite under
 * the same token moves its bytes (`slab`, `offset`, `length`) and keeps its
 * id. Ids of deleted rows are reused (a dead row's once the next merge has
 * dropped it from the sorted index). The columns grow a chunk at a time
 * ({@link IntColumn}), or all at once to `expectedKeys` rows, and do not shrink.
 */
class Rows {
  /** The token, as an int32 (read it with {@link Rows.tokenOf}). */
  readonly token = new IntColumn();
  readonly offset = new IntColumn();
  readonly keyLength = new IntColumn();
  /** Key and record bytes together. */
  readonly length = new IntColumn();
  /** Index in the pending list or the sorted index. */
  readonly slot = new IntColumn();
  readonly state = new IntColumn();
  /** The slab holding the row's bytes (EMPTY for a free id). */
  readonly slab = new SlabColumn();
  /** Ids let go, reused first. */
  readonly #free: number[] = [];
  /** Ids handed out so far (free ones included). */
  used = 0;
  /** Rows the columns have room for. */
  #capacity = FIRST_CHUNK_ROWS;

  /** A fresh (or reused) id for a row in `state`, its columns to be filled by the caller. */
  take(state: number): number {
    let id = this.#free.pop();
    if (id === undefined) {
      if (this.used === this.#capacity) this.#grow();
      id = this.used++;
    }
    this.state.set(id, state);
    return id;
  }

  /** Lets `id` go (its bytes already freed in the arena). */
  release(id: number): void {
    this.state.set(id, FREE);
    this.slab.set(id, EMPTY);
    this.#free.push(id);
  }

  /** Row `id`'s token (unsigned). */
  tokenOf(id: number): number {
    return this.token.get(id) >>> 0;
  }

  /** True if row `id` holds `key` (compares the key bytes in its slab). */
  holds(id: number, key: Uint8Array): boolean {
    const n = key.length;
    if (this.keyLength.get(id) !== n) return false;
    const slab = this.slab.get(id);
    const at = this.offset.get(id);
    for (let i = 0; i < n; i++) if (slab[at + i] !== key[i]) return false;
    return true;
  }

  /** Token, then key bytes (a shorter key before the longer one it starts). */
  compare(a: number, b: number): number {
    const ta = this.tokenOf(a);
    const tb = this.tokenOf(b);
    if (ta !== tb) return ta - tb;
    const la = this.keyLength.get(a);
    const lb = this.keyLength.get(b);
    const n = Math.min(la, lb);
    const x = this.slab.get(a);
    const y = this.slab.get(b);
    const xo = this.offset.get(a);
    const yo = this.offset.get(b);
    for (let i = 0; i < n; i++) {
      const d = x[xo + i]! - y[yo + i]!;
      if (d !== 0) return d;
    }
    return la - lb;
  }

  #grow(make: (n: number) => Int32Array = zeroed): void {
    const rows = this.#capacity < CHUNK_ROWS ? this.#capacity * 2 : this.#capacity + CHUNK_ROWS;
    for (const column of [this.token, this.offset, this.keyLength, this.length, this.slot, this.state, this.slab]) column.grow(rows, make);
    this.#capacity = rows;
  }

  /** Rows the columns have room for. */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * Room for `rows` rows without growing, every page of the new chunks
   * written (see `expectedKeys`): ~28 bytes a row, outside the JS heap.
   */
  reserve(rows: number): void {
    while (this.#capacity < rows) this.#grow(touched);
  }
}

/** `to`, holding `from`'s items first. */
function grown<A extends Uint8Array | Int32Array | Uint32Array>(from: A, to: A): A {
  to.set(from);
  return to;
}

/**
 * What a scan iterates: its rows' tokens and byte ranges, copied when the
 * scan takes its first step. Slabs are never written over, so the ranges
 * read what was stored then, whatever is written, deleted or compacted
 * meanwhile.
 */
interface ScanSnapshot {
  readonly count: number;
  readonly token: Uint32Array;
  readonly slab: Uint8Array[];
  readonly offset: Int32Array;
  readonly keyLength: Int32Array;
  readonly length: Int32Array;
}

function snapshotOf(rows: Rows, ids: Int32Array, count: number): ScanSnapshot {
  const token = new Uint32Array(count);
  const slab = new Array<Uint8Array>(count);
  const offset = new Int32Array(count);
  const keyLength = new Int32Array(count);
  const length = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const id = ids[i]!;
    token[i] = rows.tokenOf(id);
    slab[i] = rows.slab.get(id);
    offset[i] = rows.offset.get(id);
    keyLength[i] = rows.keyLength.get(id);
    length[i] = rows.length.get(id);
  }
  return { count, token, slab, offset, keyLength, length };
}

function* entries(s: ScanSnapshot): Generator<StoredEntry, void, undefined> {
  for (let i = 0; i < s.count; i++) {
    const at = s.offset[i]!;
    const split = at + s.keyLength[i]!;
    yield {
      key: readRange(s.slab[i]!, at, split, allocBytes),
      token: s.token[i]!,
      record: readRange(s.slab[i]!, split, at + s.length[i]!, allocBytes),
    };
  }
}

/** The first index in `ids[0, count)` (sorted) whose token is greater than `token`. */
function firstAbove(rows: Rows, ids: Int32Array, count: number, token: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rows.tokenOf(ids[mid]!) <= token) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Merges two (token, key)-sorted id lists into a new one; with `dropDead`,
 * dead rows of `a` are left out and their ids let go.
 */
function mergeIds(rows: Rows, a: Int32Array, aLength: number, b: Int32Array, bLength: number, dropDead: boolean): IdList {
  const out = new IdList(aLength + bLength);
  const state = rows.state;
  let i = 0;
  let j = 0;
  while (i < aLength || j < bLength) {
    if (i < aLength && dropDead && state.get(a[i]!) === DEAD) {
      rows.release(a[i]!);
      i++;
      continue;
    }
    if (j >= bLength || (i < aLength && rows.compare(a[i]!, b[j]!) <= 0)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

/** Fewer ids than this are sorted by comparison; more by a radix sort of their tokens first. */
const RADIX_FROM = 512;
/** Token bits a radix pass sorts by (two passes for 32-bit tokens). */
const RADIX_BITS = 16;

/**
 * Sorts `ids` in place by token, then key bytes (as {@link Rows.compare}):
 * a stable two-pass radix sort of their 32-bit tokens, then a comparison
 * sort within each run of equal tokens (keys that share a token: few). A
 * comparison sort of 1M rows written since the last scan took ~200 ms, all
 * of it within the first scan's first step (what anti-entropy's rounds
 * ask), stopping the node; the radix sort is linear.
 */
function sortIds(rows: Rows, ids: Int32Array): void {
  const n = ids.length;
  if (n < RADIX_FROM) {
    ids.sort((a, b) => rows.compare(a, b));
    return;
  }
  const tokens = new Uint32Array(n);
  for (let i = 0; i < n; i++) tokens[i] = rows.tokenOf(ids[i]!);
  const otherTokens = new Uint32Array(n);
  const otherIds = new Int32Array(n);
  const count = new Int32Array(1 << RADIX_BITS);
  radixPass(tokens, ids, otherTokens, otherIds, 0, count);
  radixPass(otherTokens, otherIds, tokens, ids, RADIX_BITS, count);
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && tokens[j] === tokens[i]) j++;
    if (j - i > 1) ids.subarray(i, j).sort((a, b) => rows.compare(a, b));
    i = j;
  }
}

/** One stable counting-sort pass of (token, id) pairs by the token's bits at `shift`. */
function radixPass(fromTokens: Uint32Array, fromIds: Int32Array, toTokens: Uint32Array, toIds: Int32Array, shift: number, count: Int32Array): void {
  const mask = (1 << RADIX_BITS) - 1;
  const n = fromTokens.length;
  count.fill(0);
  for (let i = 0; i < n; i++) count[(fromTokens[i]! >>> shift) & mask]!++;
  let sum = 0;
  for (let b = 0; b < count.length; b++) {
    const c = count[b]!;
    count[b] = sum;
    sum += c;
  }
  for (let i = 0; i < n; i++) {
    const token = fromTokens[i]!;
    const at = count[(token >>> shift) & mask]!++;
    toTokens[at] = token;
    toIds[at] = fromIds[i]!;
  }
}

function* hintCopies(rows: readonly HintRow[]): Generator<StoredHint, void, undefined> {
  for (const row of rows) {
    yield {
      id: row.id,
      target: row.target,
      key: readPlaced(row, allocBytes, 0, row.keyLength),
      token: row.token,
      record: readPlaced(row, allocBytes, row.keyLength),
      createdAt: row.createdAt,
    };
  }
}

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions {
  /**
   * Bytes of record memory to allocate, and to write to page by page, when
   * the storage first opens (rounded up to 256 KiB), so that storing the
   * first that many bytes of keys and records costs no page faults: the
   * operating system maps a page at its first write, ~0.5–2 µs a 4 KiB page
   * on Linux and 10–14 µs on a VM that backs its memory lazily (measured:
   * ~10–13 µs of the 19–26 µs of CPU a quorum put of a fresh 1 KB key costs
   * over three nodes there). The same trade as the JVM's
   * `-XX:+AlwaysPreTouch` (Cassandra's default) or memcached's `-L`:
   * `open()` takes longer (as long as the faults: ~0.4 s a GiB on Linux,
   * ~3 s on that VM) and the memory is held from then on, used or not.
   * Writes past it allocate memory as they need it. At most the machine's
   * memory (`os.totalmem()`); more than it has free gets the process killed
   * by the OS's out-of-memory killer, as any allocation would. A failed
   * allocation fails `open()` with `KV_STORAGE_FAILURE` (nothing kept; a
   * later `open()` tries again).
   * @default 0
   */
  readonly preallocate?: number;
  /**
   * Keys to make room for when the storage first opens: the key index is
   * sized to hold that many without growing (16 to 32 bytes a key: it is
   * kept at most half full, in a power of two of slots) and written page by
   * page, the list of new keys gets its room (4 bytes a key), so that
   * the first that many keys cost no resize of the index and no first
   * touch of its memory. Without it the index doubles at every power of two
   * keys: incrementally, but the new table's allocation and first touches
   * stopped single writes for 8–15 ms at 1M keys on the development VM,
   * and every replica of a cluster reaches the same count at the same
   * moment. The row columns (7 typed arrays, 28 bytes a key) get their room
   * too, written page by page, instead of growing a chunk of 16,384 rows at
   * a time. Beyond it the storage grows as it would have. At most 2^28,
   * and 64 bytes a key at most the machine's memory.
   * @default 0
   */
  readonly expectedKeys?: number;
}

/** Largest `expectedKeys` (the key index's table is an Int32Array of at least twice as many slots). */
const MAX_EXPECTED_KEYS = 2 ** 28;
/** Bytes `expectedKeys` reserves per key at most (index 32, new-key list 4, row columns 28), for the memory check. */
const BYTES_PER_EXPECTED_KEY = 64;

/**
 * The in-memory {@link StorageAdapter}: the reference implementation that
 * runs the storage compliance suite.
 *
 * Data lives as long as the object: `close()` then `open()` on the same
 * object finds everything again (a restart of a node over the same storage
 * object is a real restart); nothing survives the process. Keys, records,
 * hints and meta values are copied on the way in and out. `scan()` and
 * `hints()` iterate a snapshot taken at their first step, so writes during
 * iteration neither break nor show up in the iteration.
 *
 * `scan()` keeps a token-sorted index up to date lazily: a write of a new
 * key appends it to a pending list, an overwrite under the same token
 * replaces the row where it sits, a delete marks it dead. A scan binary-
 * searches the index and adds the pending rows in its range: O(log n + m +
 * k) for m entries in range and k pending rows. Pending and dead rows are
 * merged into the index (O(n)) once they reach 1/16 of it, the pending ones
 * sorted by a radix sort of their tokens (1M new keys: 67 ms at the first
 * scan after them, where a comparison sort took 227 ms).
 *
 * @example
 * ```ts
 * const storage = new MemoryStorage();
 * await storage.open();
 * await storage.put(key, token, record);
 *
 * // A node expected to hold ~2 GiB, its memory mapped up front:
 * new Store({ storage: new MemoryStorage({ preallocate: 2 * 1024 ** 3 }) });
 * ```
 */
export class MemoryStorage extends AbstractStorage {
  /** `{ durable: false, orderedScan: true }` */
  readonly capabilities: StorageCapabilities = CAPABILITIES;
  /** The stored rows, as columns by row id. */
  readonly #rows = new Rows();
  /** Key bytes → row id (no string is made to look a key up). */
  readonly #index = new KeyIndex((id, key) => this.#rows.holds(id, key));
  /** The records' bytes. */
  readonly #arena = new RecordArena();
  /** Row ids in (token, key) order, some possibly dead. */
  #sorted = new IdList();
  /** Rows written under a new key (or a new token) since the last merge, unordered. */
  #pending = new IdList();
  #deadInSorted = 0;
  /** Where the arena places (and compaction moves) one row's bytes: no object per row. */
  readonly #cursor: { slab: Uint8Array; offset: number; length: number } = { slab: EMPTY, offset: 0, length: 0 };
  readonly #hints = new Map<string, HintRow>();
  readonly #meta = new Map<string, Uint8Array>();
  #hintSeq = 0;
  /** Bytes still to preallocate at the next open (0 once done). */
  #preallocate: number;
  /** Keys still to make room for at the next open (0 once done). */
  #expectedKeys: number;

  /**
   * @throws TypeError when `options` is not an object, or `preallocate` is not a number
   * @throws RangeError when `preallocate` is negative, fractional, or more than the machine's memory
   */
  constructor(options: MemoryStorageOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`MemoryStorage: Expected \`options\` to be an object { preallocate?, expectedKeys? }, got ${describeValue(options)}`);
    }
    const { preallocate = 0, expectedKeys = 0 } = options;
    if (typeof preallocate !== 'number') {
      throw new TypeError(`MemoryStorage: Expected \`options.preallocate\` to be a number of bytes, got ${describeValue(preallocate)}`);
    }
    if (!Number.isSafeInteger(preallocate) || preallocate < 0) {
      throw new RangeError(`MemoryStorage: Expected \`options.preallocate\` to be a whole number of bytes >= 0, got ${describeValue(preallocate)}`);
    }
    if (preallocate > totalmem()) {
      throw new RangeError(
        `MemoryStorage: Expected \`options.preallocate\` to be at most the machine's memory (${totalmem()} bytes), got ${preallocate}`,
      );
    }
    this.#preallocate = preallocate;
    if (typeof expectedKeys !== 'number') {
      throw new TypeError(`MemoryStorage: Expected \`options.expectedKeys\` to be a number of keys, got ${describeValue(expectedKeys)}`);
    }
    if (!Number.isSafeInteger(expectedKeys) || expectedKeys < 0 || expectedKeys > MAX_EXPECTED_KEYS) {
      throw new RangeError(
        `MemoryStorage: Expected \`options.expectedKeys\` to be a whole number of keys from 0 to ${MAX_EXPECTED_KEYS}, got ${describeValue(expectedKeys)}`,
      );
    }
    if (expectedKeys * BYTES_PER_EXPECTED_KEY > totalmem()) {
      throw new RangeError(
        `MemoryStorage: Expected \`options.expectedKeys\` to need at most the machine's memory (${totalmem()} bytes at ${BYTES_PER_EXPECTED_KEY} a key), got ${expectedKeys} keys`,
      );
    }
    this.#expectedKeys = expectedKeys;
  }

  /**
   * Keys the storage holds before its key index grows (at least
   * {@link MemoryStorageOptions.expectedKeys} once open).
   */
  get keyCapacity(): number {
    return this.#index.capacity / 2;
  }

  /**
   * Slabs (or buffers of large records) that stored rows point into: a
   * diagnostic for tests, which check that a slab is let go once no row
   * is left in it.
   * @internal
   */
  get rowSlabs(): number {
    return this.#rows.slab.slabs;
  }

  /**
   * Rows the row columns hold before they grow (at least `expectedKeys`
   * once open): a diagnostic for tests.
   * @internal
   */
  get rowCapacity(): number {
    return this.#rows.capacity;
  }

  /** Bytes preallocated ({@link MemoryStorageOptions.preallocate}) that no record uses yet. */
  get preallocatedBytesLeft(): number {
    return this.#arena.spareBytes;
  }

  protected override _open(): void {
    if (this.#expectedKeys > 0) {
      // Each step is kept if a later one fails (an allocation): the next open() does the rest.
      // The row columns too, now that all of them are typed arrays (the slab column was a
      // JS array of pointers once, and reserving it made every full collection trace
      // millions of empty slots: 15–20 ms stalls in every put window of the tcp bench).
      this.#index.reserve(this.#expectedKeys);
      this.#pending.reserve(this.#expectedKeys);
      this.#rows.reserve(this.#expectedKeys);
      this.#expectedKeys = 0;
    }
    if (this.#preallocate === 0) return;
    this.#arena.preallocate(this.#preallocate);
    this.#preallocate = 0;
  }

  protected _get(key: Uint8Array): Uint8Array | undefined {
    const id = this.#index.get(key, keyHash(key));
    if (id < 0) return undefined;
    // The caller's copy comes from a shared slab (no off-heap allocation per read).
    const rows = this.#rows;
    const at = rows.offset.get(id);
    return readRange(rows.slab.get(id), at + rows.keyLength.get(id), at + rows.length.get(id), allocBytes);
  }

  /**
   * {@link StorageAdapter.getSharedNow}: the record's bytes where the
   * arena keeps them, read-only (the arena never writes over bytes it has
   * placed: an overwrite or a compaction places the record anew and leaves
   * the old bytes to whoever still holds them). A closed storage, a bad key
   * or a subclass that overrides `getNow`, `get` or `_get` (to wrap, count
   * or inject faults) is served by `getNow`, with its checks and errors.
   */
  getSharedNow(key: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    if (
      this.status !== 'open' ||
      !(key instanceof Uint8Array) ||
      key.length === 0 ||
      this.getNow !== AbstractStorage.prototype.getNow ||
      this.get !== AbstractStorage.prototype.get ||
      this._get !== MemoryStorage.prototype._get
    ) {
      return this.getNow(key);
    }
    const id = this.#index.get(key, keyHash(key));
    if (id < 0) return undefined;
    const rows = this.#rows;
    const at = rows.offset.get(id);
    return rows.slab.get(id).subarray(at + rows.keyLength.get(id), at + rows.length.get(id));
  }

  protected _put(key: Uint8Array, token: number, record: Uint8Array): void {
    const rows = this.#rows;
    const hash = keyHash(key);
    const old = this.#index.get(key, hash);
    if (old >= 0 && rows.tokenOf(old) === token) {
      // Same key and token: the row keeps its id and its place in the scan index; its bytes move.
      this.#arena.free(this.#load(old));
      this.#place(old, key, record);
      this.#compactIfDue();
      return;
    }
    const id = rows.take(PENDING);
    rows.token.set(id, token);
    rows.keyLength.set(id, key.byteLength);
    this.#place(id, key, record);
    rows.slot.set(id, this.#pending.length);
    this.#pending.push(id);
    // The old row still holds the key while the index moves the key to the new one.
    this.#index.set(id, key, hash);
    if (old >= 0) {
      this.#arena.free(this.#load(old));
      this.#unindex(old);
    }
    this.#compactIfDue();
  }

  protected _delete(key: Uint8Array): void {
    const old = this.#index.delete(key, keyHash(key));
    if (old < 0) return;
    this.#arena.free(this.#load(old));
    this.#unindex(old);
    this.#compactIfDue();
  }

  /** Copies key and record into the arena as row `id`'s bytes. */
  #place(id: number, key: Uint8Array, record: Uint8Array): void {
    const rows = this.#rows;
    const cursor = this.#cursor;
    cursor.length = key.byteLength + record.byteLength;
    this.#arena.place(cursor, key, record);
    rows.slab.set(id, cursor.slab);
    rows.offset.set(id, cursor.offset);
    rows.length.set(id, cursor.length);
  }

  /** The cursor, pointing at row `id`'s bytes (for the arena's accounting). */
  #load(id: number): Placed {
    const rows = this.#rows;
    const cursor = this.#cursor;
    cursor.slab = rows.slab.get(id);
    cursor.offset = rows.offset.get(id);
    cursor.length = rows.length.get(id);
    return cursor;
  }

  /** Compacts the arena once that pays (its garbage outweighs the live bytes). */
  #compactIfDue(): void {
    if (this.#arena.shouldCompact) this.#arena.compact(this.#liveRecords());
  }

  /**
   * Everything placed in the arena and still stored (rows and hints), once
   * each. A row is handed out as the cursor, and takes where the arena moved
   * it when the next one is asked for.
   */
  *#liveRecords(): Generator<Placed, void, undefined> {
    const rows = this.#rows;
    const state = rows.state;
    const cursor = this.#cursor;
    for (let id = 0; id < rows.used; id++) {
      const at = state.get(id);
      if (at !== PENDING && at !== SORTED) continue;
      yield this.#load(id);
      rows.slab.set(id, cursor.slab);
      rows.offset.set(id, cursor.offset);
    }
    yield* this.#hints.values();
  }

  /** Entries in `range`, in ascending token order, then key bytes; a snapshot of the range. */
  protected _scan(range: TokenRangeQuery): StorageIterable<StoredEntry> {
    // Merge pending rows into the index only once they are a sizeable share
    // of it (amortised O(1) per new key); until then each scan picks out the
    // few pending rows in its range, so a new key between scans costs O(k), not O(n).
    const rows = this.#rows;
    if (this.#pending.length >= MERGE_AT && this.#pending.length * MERGE_SHARE >= this.#sorted.length) this.#merge();
    const sorted = this.#sorted.items;
    const count = this.#sorted.length;
    const { start, end } = range;
    // The index's ids in range, without the dead ones.
    const picked = new IdList();
    const pick = (from: number, to: number): void => {
      for (let i = from; i < to; i++) if (rows.state.get(sorted[i]!) === SORTED) picked.push(sorted[i]!);
    };
    if (start === end) pick(0, count);
    else {
      const from = firstAbove(rows, sorted, count, start);
      const to = firstAbove(rows, sorted, count, end);
      // Wrapping (start > end): [0, end] then (start, max], still in ascending token order.
      if (start < end) pick(from, to);
      else {
        pick(0, to);
        pick(from, count);
      }
    }
    let ids = picked;
    const pending = this.#pending;
    if (pending.length > 0) {
      const extra = new IdList();
      for (let i = 0; i < pending.length; i++) {
        const id = pending.items[i]!;
        if (tokenInRange(rows.tokenOf(id), range)) extra.push(id);
      }
      if (extra.length > 0) {
        const inRange = extra.items.subarray(0, extra.length);
        sortIds(rows, inRange);
        ids = mergeIds(rows, picked.items, picked.length, inRange, inRange.length, false);
      }
    }
    return entries(snapshotOf(rows, ids.items, ids.length));
  }

  protected _putHint(hint: StoredHint): void {
    const old = this.#hints.get(hint.id);
    const keyLength = hint.key.byteLength;
    const row: HintRow = {
      id: hint.id,
      target: hint.target,
      token: hint.token,
      createdAt: hint.createdAt,
      // Replacing keeps the hint's place in insertion order.
      seq: old?.seq ?? this.#hintSeq++,
      slab: hint.record,
      offset: 0,
      keyLength,
      length: keyLength + hint.record.byteLength,
    };
    this.#arena.place(row, hint.key, hint.record);
    this.#hints.set(hint.id, row);
    if (old !== undefined) {
      this.#arena.free(old);
      this.#compactIfDue();
    }
  }

  /** Hints (only those for `target` if given), oldest `createdAt` first, then insertion order; a snapshot. */
  protected _hints(target: string | undefined): StorageIterable<StoredHint> {
    const rows = [...this.#hints.values()].filter((r) => target === undefined || r.target === target);
    rows.sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq);
    return hintCopies(rows);
  }

  protected _deleteHint(id: string): void {
    const old = this.#hints.get(id);
    if (old === undefined) return;
    this.#hints.delete(id);
    this.#arena.free(old);
    this.#compactIfDue();
  }

  protected _getMeta(name: string): Uint8Array | undefined {
    const value = this.#meta.get(name);
    return value === undefined ? undefined : copy(value);
  }

  protected _setMeta(name: string, value: Uint8Array): void {
    this.#meta.set(name, copy(value));
  }

  /** Takes a row that is leaving (deleted, or re-put under another token; its bytes already freed) out of the scan index. */
  #unindex(id: number): void {
    const rows = this.#rows;
    if (rows.state.get(id) === SORTED) {
      rows.state.set(id, DEAD);
      rows.slab.set(id, EMPTY);
      this.#deadInSorted++;
      // Bound the memory dead rows hold when no scan comes to merge them away.
      if (this.#deadInSorted > MERGE_AT && this.#deadInSorted * 2 > this.#sorted.length) this.#merge();
      return;
    }
    const pending = this.#pending;
    const slot = rows.slot.get(id);
    const last = pending.items[--pending.length]!;
    if (last !== id) {
      pending.items[slot] = last;
      rows.slot.set(last, slot);
    }
    rows.release(id);
  }

  /** Merges the pending rows into the sorted index and drops its dead rows (their ids are let go). */
  #merge(): void {
    const rows = this.#rows;
    const pending = this.#pending.items.subarray(0, this.#pending.length);
    sortIds(rows, pending);
    const merged = mergeIds(rows, this.#sorted.items, this.#sorted.length, pending, pending.length, true);
    for (let i = 0; i < merged.length; i++) {
      const id = merged.items[i]!;
      rows.state.set(id, SORTED);
      rows.slot.set(id, i);
    }
    this.#sorted = merged;
    this.#pending = new IdList();
    this.#deadInSorted = 0;
  }
}
