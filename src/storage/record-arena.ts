/** Where a record's bytes lie: `slab[offset, offset + length)`. */
export interface Placed {
  slab: Uint8Array;
  offset: number;
  readonly length: number;
}

/** Bytes per shared slab. */
const SLAB_BYTES = 256 * 1024;
/** Records larger than this get a buffer of their own (never moved, collected with their row). */
const MAX_SHARED = SLAB_BYTES / 8;
/** Compaction waits for at least this much garbage. */
const MIN_GARBAGE = 1024 * 1024;
const EMPTY = new Uint8Array(0);

/**
 * The bytes of the records a {@link MemoryStorage} holds, outside the JS
 * heap: records are copied one after another into 256 KiB slabs, so a
 * million stored records are a few thousand typed arrays, not a million
 * strings or buffers the garbage collector must copy, promote and mark
 * (measured on the five-node bench: a stored record as a string made the
 * scavenger copy and promote ~1 KB per quorum put).
 *
 * A slab is append-only: bytes are never written over, so a row that
 * still points into a slab (a scan's snapshot of a row since replaced)
 * reads what it always read. Space freed by overwrites and deletes is
 * reclaimed by compaction, which copies every live record into fresh slabs
 * once the garbage outweighs the live bytes (amortised O(1) per byte
 * written) and leaves the old slabs to whoever still points into them.
 */
export class RecordArena {
  #slab: Uint8Array = EMPTY;
  #used = 0;
  /** Bytes of live records in shared slabs. */
  #live = 0;
  /** Bytes of freed records in shared slabs. */
  #garbage = 0;

  /** Bytes of live records in shared slabs (for tests). */
  get liveBytes(): number {
    return this.#live;
  }

  /** Bytes freed and not yet reclaimed (for tests). */
  get garbageBytes(): number {
    return this.#garbage;
  }

  /**
   * Copies `bytes` into the arena and points `target` (whose `length` is
   * `bytes.byteLength`) at them: a row places its own record, no object is
   * made per record.
   */
  place(target: Placed, bytes: Uint8Array): void {
    const length = target.length;
    if (length !== bytes.byteLength) throw new RangeError(`Expected ${length} bytes to place, got ${bytes.byteLength}`);
    if (length === 0) {
      target.slab = EMPTY;
      target.offset = 0;
    } else if (length > MAX_SHARED) {
      const own = new Uint8Array(length);
      own.set(bytes);
      target.slab = own;
      target.offset = 0;
    } else {
      this.#append(target, bytes, 0);
      this.#live += length;
    }
  }

  /** The record is no longer stored (its bytes stay readable until nothing points into its slab). */
  free(placed: Placed): void {
    if (placed.length === 0 || placed.length > MAX_SHARED) return;
    this.#live -= placed.length;
    this.#garbage += placed.length;
  }

  /** True once compaction would pay for itself (the garbage outweighs the live bytes). */
  get shouldCompact(): boolean {
    return this.#garbage > MIN_GARBAGE && this.#garbage > this.#live;
  }

  /**
   * Copies every record of `live` (all the records stored, each once) into
   * fresh slabs and points them there.
   */
  compact(live: Iterable<Placed>): void {
    this.#slab = EMPTY;
    this.#used = 0;
    for (const placed of live) {
      if (placed.length === 0 || placed.length > MAX_SHARED) continue;
      this.#append(placed, placed.slab, placed.offset);
    }
    this.#garbage = 0;
  }

  /** Copies `from[start, start + placed.length)` to the end of the current slab (a new one when full) and points `placed` there. */
  #append(placed: Placed, from: Uint8Array, start: number): void {
    const length = placed.length;
    if (this.#used + length > this.#slab.byteLength) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#used = 0;
    }
    const slab = this.#slab;
    const at = this.#used;
    if (length <= 64) {
      for (let i = 0; i < length; i++) slab[at + i] = from[start + i]!;
    } else {
      slab.set(start === 0 && length === from.byteLength ? from : from.subarray(start, start + length), at);
    }
    this.#used = at + length;
    placed.slab = slab;
    placed.offset = at;
  }
}

/** A fresh copy of the placed bytes, in `alloc(length)`. */
export function readPlaced(placed: Placed, alloc: (n: number) => Uint8Array): Uint8Array {
  const { slab, offset, length } = placed;
  const out = alloc(length);
  if (length <= 64) {
    for (let i = 0; i < length; i++) out[i] = slab[offset + i]!;
  } else out.set(slab.subarray(offset, offset + length));
  return out;
}
