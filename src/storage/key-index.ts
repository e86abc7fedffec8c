import { fnv1a } from '../internal/bytes.js';

/** What a {@link KeyIndex} holds: a row whose key's bytes are `slab[offset, offset + keyLength)`. */
export interface IndexedRow {
  readonly slab: Uint8Array;
  readonly offset: number;
  readonly keyLength: number;
}

/** True if `row`'s key bytes are `key`'s. */
function holds(row: IndexedRow, key: Uint8Array): boolean {
  const n = key.length;
  if (row.keyLength !== n) return false;
  const slab = row.slab;
  const at = row.offset;
  for (let i = 0; i < n; i++) if (slab[at + i] !== key[i]) return false;
  return true;
}

const MIN_CAPACITY = 16;

/** FNV-1a over the bytes, never 0 (0 marks an empty slot). */
export function keyHash(key: Uint8Array): number {
  const h = fnv1a(key);
  return h === 0 ? 1 : h;
}

/**
 * An open-addressing hash index from key bytes to rows, for
 * `MemoryStorage`: linear probing, backward-shift deletion, load at most one
 * half (it doubles past that, and halves below one eighth).
 *
 * Why not a `Map<string, Row>`: a lookup then needs the key as a string
 * first (a conversion per call), and a `Map` lookup in a large table walks a
 * bucket chain through the entries and their key strings, one cache miss
 * each (measured in a five-node put profile: ~1.5 µs per missing key, the
 * largest single cost of a replica's write). Here a slot's hash sits in a
 * dense `Int32Array`, so a missing key usually costs one cache line, a
 * present one the row and its key bytes besides, and no string is made to
 * look a key up.
 *
 * A lookup compares the key with the row's key bytes (where the row keeps
 * them: for `MemoryStorage`, next to its record in the record arena).
 */
export class KeyIndex<R extends IndexedRow> {
  /** Per slot: the key's hash, 0 when the slot is empty. */
  #hashes = new Int32Array(MIN_CAPACITY);
  /** Per slot: the row (undefined when empty). */
  #rows: (R | undefined)[] = new Array<R | undefined>(MIN_CAPACITY).fill(undefined);
  #mask = MIN_CAPACITY - 1;
  #size = 0;

  /** Number of keys. */
  get size(): number {
    return this.#size;
  }

  /** Number of slots (between 2 and 8 per key, at least 16). */
  get capacity(): number {
    return this.#hashes.length;
  }

  /** The row of `key` (with `hash`, its {@link keyHash}), or undefined. */
  get(key: Uint8Array, hash: number): R | undefined {
    const hashes = this.#hashes;
    const mask = this.#mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const h = hashes[i]!;
      if (h === 0) return undefined;
      if (h === hash) {
        const row = this.#rows[i]!;
        if (holds(row, key)) return row;
      }
    }
  }

  /** Stores `row` under `key` (the row's key bytes, whose {@link keyHash} is `hash`), replacing the row of the same key. */
  set(row: R, key: Uint8Array, hash: number): void {
    const hashes = this.#hashes;
    const mask = this.#mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const h = hashes[i]!;
      if (h === 0) {
        hashes[i] = hash;
        this.#rows[i] = row;
        if (++this.#size * 2 > hashes.length) this.#grow();
        return;
      }
      if (h === hash && holds(this.#rows[i]!, key)) {
        this.#rows[i] = row;
        return;
      }
    }
  }

  /** Removes the row of `key` (with `hash`); returns it, or undefined if there was none. */
  delete(key: Uint8Array, hash: number): R | undefined {
    const hashes = this.#hashes;
    const rows = this.#rows;
    const mask = this.#mask;
    let i = hash & mask;
    for (; ; i = (i + 1) & mask) {
      const h = hashes[i]!;
      if (h === 0) return undefined;
      if (h === hash && holds(rows[i]!, key)) break;
    }
    const removed = rows[i];
    // Backward shift: move later entries of the probe run into the hole, so
    // that no lookup stops early at it (no tombstones needed).
    let hole = i;
    for (let j = (i + 1) & mask; hashes[j] !== 0; j = (j + 1) & mask) {
      const home = hashes[j]! & mask;
      // Entry j may move to the hole if its home slot is not in (hole, j] (cyclically).
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      hashes[hole] = hashes[j]!;
      rows[hole] = rows[j];
      hole = j;
    }
    hashes[hole] = 0;
    rows[hole] = undefined;
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
    const oldRows = this.#rows;
    const hashes = new Int32Array(capacity);
    const rows = new Array<R | undefined>(capacity).fill(undefined);
    const mask = capacity - 1;
    for (let s = 0; s < oldHashes.length; s++) {
      const h = oldHashes[s]!;
      if (h === 0) continue;
      let i = h & mask;
      while (hashes[i] !== 0) i = (i + 1) & mask;
      hashes[i] = h;
      rows[i] = oldRows[s];
    }
    this.#hashes = hashes;
    this.#rows = rows;
    this.#mask = mask;
  }
}
