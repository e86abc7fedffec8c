import { fnv1a } from '../internal/bytes.js';

/**
 * True if row `id` holds the key `key` (its key bytes are `key`'s): how a
 * {@link KeyIndex} tells keys that share a hash apart.
 */
export type RowMatcher = (id: number, key: Uint8Array) => boolean;

const MIN_CAPACITY = 16;

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
 */
export class KeyIndex {
  readonly #matches: RowMatcher;
  /** Per slot: the key's hash, 0 when the slot is empty. */
  #hashes = new Int32Array(MIN_CAPACITY);
  /** Per slot: the row id (meaningless when the slot is empty). */
  #ids = new Int32Array(MIN_CAPACITY);
  #mask = MIN_CAPACITY - 1;
  #size = 0;

  constructor(matches: RowMatcher) {
    this.#matches = matches;
  }

  /** Number of keys. */
  get size(): number {
    return this.#size;
  }

  /** Number of slots (between 2 and 8 per key, at least 16). */
  get capacity(): number {
    return this.#hashes.length;
  }

  /** The row id of `key` (with `hash`, its {@link keyHash}), or -1. */
  get(key: Uint8Array, hash: number): number {
    const hashes = this.#hashes;
    const mask = this.#mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const h = hashes[i]!;
      if (h === 0) return -1;
      if (h === hash) {
        const id = this.#ids[i]!;
        if (this.#matches(id, key)) return id;
      }
    }
  }

  /**
   * Maps `key` (whose {@link keyHash} is `hash`) to row `id`, replacing the
   * row the key had. The matcher must still recognise that row for `key`
   * during the call (a replaced row is let go after, not before).
   */
  set(id: number, key: Uint8Array, hash: number): void {
    const hashes = this.#hashes;
    const mask = this.#mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const h = hashes[i]!;
      if (h === 0) {
        hashes[i] = hash;
        this.#ids[i] = id;
        if (++this.#size * 2 > hashes.length) this.#grow();
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
    this.#size--;
    // Give memory back once most keys are gone (load under 1/8: half the slots).
    if (hashes.length > MIN_CAPACITY && this.#size * 8 < hashes.length) this.#resize(hashes.length / 2);
    return removed;
  }

  #grow(): void {
    this.#resize(this.#hashes.length * 2);
  }

  #resize(capacity: number): void {
    const oldHashes = this.#hashes;
    const oldIds = this.#ids;
    const hashes = new Int32Array(capacity);
    const ids = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let s = 0; s < oldHashes.length; s++) {
      const h = oldHashes[s]!;
      if (h === 0) continue;
      let i = h & mask;
      while (hashes[i] !== 0) i = (i + 1) & mask;
      hashes[i] = h;
      ids[i] = oldIds[s]!;
    }
    this.#hashes = hashes;
    this.#ids = ids;
    this.#mask = mask;
  }
}
