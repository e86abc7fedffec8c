import { fnv1a } from '../internal/bytes.js';

/**
 * True if row `id` holds the key `key` (its key bytes are `key`'s): how a
 * {@link KeyIndex} tells keys that share a hash apart.
 */
export type RowMatcher = (id: number, key: Uint8Array) => boolean;

const MIN_CAPACITY = 16;
/** Tables of fewer slots than this are resized at once (a few ms at most)… */
const INCREMENTAL_FROM = 1 << 16;
/** …larger ones a few slots per write: this many of the old table's slots per `set` or `delete`. */
const MOVE_PER_WRITE = 16;

/** Resize settings (tests shrink them to exercise incremental resizes on small tables). */
export interface KeyIndexTuning {
  /** Tables with at least this many slots resize incrementally. @default 65536 */
  readonly incrementalFrom?: number;
  /** Old-table slots moved per write during an incremental resize. @default 16 */
  readonly movePerWrite?: number;
}
/** A zeroed array of `n` elements whose every 4 KiB page has been written (mapped by the OS now, not at a later write). */
export function touched(n: number): Int32Array<ArrayBuffer> {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i += 1024) a[i] = 0;
  return a;
}

/** An old-table slot whose entry moved to the new table or was deleted: probes go on past it. */
const GONE = -1;

/** FNV-1a over the bytes, never 0 (0 marks an empty slot). */
export function keyHash(key: Uint8Array): number {
  const h = fnv1a(key);
  return h === 0 ? 1 : h;
}

/**
 * An open-addressing hash index from key bytes to row ids (non-negative
 * integers), for `MemoryStorage`: linear probing, backward-shift deletion,
 * load at most one half (it doubles past that, and halves below one eighth).
 *
 * Why not a `Map<string, Row>`: a lookup then needs the key as a string
 * first (a conversion per call), and a `Map` lookup in a large table walks a
 * bucket chain through the entries and their key strings, one cache miss
 * each (measured in a five-node put profile: ~1.5 µs per missing key, the
 * largest single cost of a replica's write). Here a slot's hash and row id
 * sit in two dense `Int32Array`s, outside the JS heap: a missing key usually
 * costs one cache line, a present one its row's key bytes besides, no
 * string is made to look a key up, and the garbage collector has nothing to
 * trace however many keys there are.
 *
 * A lookup compares the key with the row's key bytes through the matcher
 * the owner gives (for `MemoryStorage`: next to its record in the record
 * arena).
 *
 * Resizing is incremental once the table is large (as Redis rehashes its
 * dictionaries): the new table is allocated, and every `set` and `delete`
 * moves the next 16 slots of the old one into it, so no
 * write pays for all the keys at once (moving 1M keys in one go stopped a
 * node for ~110 ms on the benchmark VM, most of it first touches of the new
 * table's 32 MB). Meanwhile a key lives in exactly one of the two tables:
 * lookups try the new table, then the old; a moved or deleted entry of the
 * old table is marked {@link GONE} in place (its slot stays occupied, so the
 * probe runs through it stay whole). The old table is let go once every
 * slot has moved: within an eighth of the writes that filled the new one
 * to its resize point (a grow starts at load 1/2 of the old table, and the
 * new one, twice as large, reaches load 1/2 only after as many inserts as
 * the old one held).
 */
export class KeyIndex {
  readonly #matches: RowMatcher;
  /** Per slot: the key's hash, 0 when the slot is empty. */
  #hashes = new Int32Array(MIN_CAPACITY);
  /** Per slot: the row id (meaningless when the slot is empty). */
  #ids = new Int32Array(MIN_CAPACITY);
  #mask = MIN_CAPACITY - 1;
  /** Keys in both tables. */
  #size = 0;
  /** While a resize is in progress: the previous table (ids {@link GONE} where the entry left)… */
  #oldHashes: Int32Array | undefined;
  #oldIds = new Int32Array(0);
  #oldMask = 0;
  /** …and the next of its slots to move. */
  #moveAt = 0;
  readonly #incrementalFrom: number;
  readonly #movePerWrite: number;

  constructor(matches: RowMatcher, tuning: KeyIndexTuning = {}) {
    this.#matches = matches;
    this.#incrementalFrom = tuning.incrementalFrom ?? INCREMENTAL_FROM;
    this.#movePerWrite = tuning.movePerWrite ?? MOVE_PER_WRITE;
  }

  /** Number of keys. */
  get size(): number {
    return this.#size;
  }

  /**
   * Sizes the table for `keys` keys at once (at most half full, as a grow
   * leaves it), and writes a slot of every page so that the operating system
   * maps them now rather than at the first writes: until the index holds that
   * many keys, no write pays for a resize or a first touch. A table already
   * that large is left as it is.
   */
  reserve(keys: number): void {
    let capacity = this.#hashes.length;
    while (capacity < keys * 2) capacity *= 2;
    if (capacity === this.#hashes.length) return;
    this.#resize(capacity, touched(capacity), touched(capacity));
    if (this.#oldHashes !== undefined) this.#move(Infinity);
  }

  /** Number of slots of the current table (between 2 and 8 per key once a resize is done, at least 16). */
  get capacity(): number {
    return this.#hashes.length;
  }

  /** True while a resize is moving the old table's entries (for tests). */
  get resizing(): boolean {
    return this.#oldHashes !== undefined;
  }

  /** The row id of `key` (with `hash`, its {@link keyHash}), or -1. */
  get(key: Uint8Array, hash: number): number {
    const hashes = this.#hashes;
    const mask = this.#mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const h = hashes[i]!;
      if (h === 0) break;
      if (h === hash) {
        const id = this.#ids[i]!;
        if (this.#matches(id, key)) return id;
      }
    }
    if (this.#oldHashes === undefined) return -1;
    const slot = this.#oldSlotOf(key, hash);
    return slot < 0 ? -1 : this.#oldIds[slot]!;
  }

  /**
   * Maps `key` (whose {@link keyHash} is `hash`) to row `id`, replacing the
   * row the key had. The matcher must still recognise that row for `key`
   * during the call (a replaced row is let go after, not before).
   */
  set(id: number, key: Uint8Array, hash: number): void {
    if (this.#oldHashes !== undefined) this.#move(this.#movePerWrite);
    const hashes = this.#hashes;
    const mask = this.#mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const h = hashes[i]!;
      if (h === 0) {
        hashes[i] = hash;
        this.#ids[i] = id;
        if (this.#oldHashes !== undefined) {
          // The key may still be in the old table: it leaves it (it is now here).
          const slot = this.#oldSlotOf(key, hash);
          if (slot >= 0) {
            this.#oldIds[slot] = GONE;
            return;
          }
        }
        if (++this.#size * 2 > hashes.length) this.#resize(hashes.length * 2);
        return;
      }
      if (h === hash && this.#matches(this.#ids[i]!, key)) {
        this.#ids[i] = id;
        return;
      }
    }
  }

  /** Removes `key` (with `hash`); returns the id of its row, or -1 if there was none. */
  delete(key: Uint8Array, hash: number): number {
    if (this.#oldHashes !== undefined) this.#move(this.#movePerWrite);
    let removed = this.#deleteHere(key, hash);
    if (removed < 0 && this.#oldHashes !== undefined) {
      const slot = this.#oldSlotOf(key, hash);
      if (slot < 0) return -1;
      removed = this.#oldIds[slot]!;
      this.#oldIds[slot] = GONE;
    } else if (removed < 0) {
      return -1;
    }
    this.#size--;
    // Give memory back once most keys are gone (load under 1/8: half the slots).
    const capacity = this.#hashes.length;
    if (capacity > MIN_CAPACITY && this.#size * 8 < capacity) this.#resize(capacity / 2);
    return removed;
  }

  /** Deletes `key` from the current table (backward shift); its row id, or -1. */
  #deleteHere(key: Uint8Array, hash: number): number {
    const hashes = this.#hashes;
    const ids = this.#ids;
    const mask = this.#mask;
    let i = hash & mask;
    for (; ; i = (i + 1) & mask) {
      const h = hashes[i]!;
      if (h === 0) return -1;
      if (h === hash && this.#matches(ids[i]!, key)) break;
    }
    const removed = ids[i]!;
    // Backward shift: move later entries of the probe run into the hole, so
    // that no lookup stops early at it (no tombstones needed).
    let hole = i;
    for (let j = (i + 1) & mask; hashes[j] !== 0; j = (j + 1) & mask) {
      const home = hashes[j]! & mask;
      // Entry j may move to the hole if its home slot is not in (hole, j] (cyclically).
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      hashes[hole] = hashes[j]!;
      ids[hole] = ids[j]!;
      hole = j;
    }
    hashes[hole] = 0;
    return removed;
  }

  /** The old table's slot holding `key` (not moved, not deleted), or -1. */
  #oldSlotOf(key: Uint8Array, hash: number): number {
    const hashes = this.#oldHashes!;
    const ids = this.#oldIds;
    const mask = this.#oldMask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const h = hashes[i]!;
      if (h === 0) return -1;
      if (h === hash) {
        const id = ids[i]!;
        if (id !== GONE && this.#matches(id, key)) return i;
      }
    }
  }

  /**
   * Starts a resize to `capacity` slots: at once for a small table,
   * incrementally for a large one (a resize still in progress is finished
   * first).
   */
  #resize(capacity: number, hashes = new Int32Array(capacity), ids = new Int32Array(capacity)): void {
    if (this.#oldHashes !== undefined) this.#move(Infinity);
    const oldHashes = this.#hashes;
    const oldIds = this.#ids;
    this.#hashes = hashes;
    this.#ids = ids;
    this.#mask = capacity - 1;
    this.#oldHashes = oldHashes;
    this.#oldIds = oldIds;
    this.#oldMask = oldHashes.length - 1;
    this.#moveAt = 0;
    if (oldHashes.length < this.#incrementalFrom) this.#move(Infinity);
  }

  /** Moves up to `slots` slots of the old table into the current one; lets the old table go after its last. */
  #move(slots: number): void {
    const oldHashes = this.#oldHashes!;
    const oldIds = this.#oldIds;
    const hashes = this.#hashes;
    const ids = this.#ids;
    const mask = this.#mask;
    const end = Math.min(oldHashes.length, this.#moveAt + slots);
    for (let s = this.#moveAt; s < end; s++) {
      const h = oldHashes[s]!;
      const id = oldIds[s]!;
      if (h === 0 || id === GONE) continue;
      // Not in the current table (a key lives in one table): the first free slot is its place.
      let i = h & mask;
      while (hashes[i] !== 0) i = (i + 1) & mask;
      hashes[i] = h;
      ids[i] = id;
      oldIds[s] = GONE;
    }
    this.#moveAt = end;
    if (end === oldHashes.length) {
      this.#oldHashes = undefined;
      this.#oldIds = new Int32Array(0);
    }
  }
}
