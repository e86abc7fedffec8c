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
/** Preallocated slabs are carved out of buffers of this many slabs (16 MiB). */
const SLABS_PER_BLOCK = 64;
/** Touching one byte in every this many bytes faults in every page (4 KiB pages, or larger). */
const TOUCH_STRIDE = 4096;
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
 *
 * Slabs can be allocated and their pages touched ahead of need
 * ({@link RecordArena.preallocate}), so that storing new data does not pay
 * the operating system's first-touch page faults as it goes.
 */
export class RecordArena {
  #slab: Uint8Array = EMPTY;
  #used = 0;
  /** Bytes of live records in shared slabs. */
  #live = 0;
  /** Bytes of freed records in shared slabs. */
  #garbage = 0;
  /** Slabs allocated and touched ahead of need ({@link preallocate}), used before new ones. */
  #spare: Uint8Array[] = [];

  /** Bytes of live records in shared slabs (for tests). */
  get liveBytes(): number {
    return this.#live;
  }

  /** Bytes freed and not yet reclaimed (for tests). */
  get garbageBytes(): number {
    return this.#garbage;
  }

  /**
   * Copies `first` then `second` (a key, then its record) into the arena,
   * next to each other, and points `target` (whose `length` is their total)
   * at them: a row places its own bytes, no object is made per record.
   */
  place(target: Placed, first: Uint8Array, second: Uint8Array = EMPTY): void {
    const length = target.length;
    const split = first.byteLength;
    if (length !== split + second.byteLength) {
      throw new RangeError(`Expected ${length} bytes to place, got ${split + second.byteLength}`);
    }
    if (length === 0) {
      target.slab = EMPTY;
      target.offset = 0;
      return;
    }
    if (length > MAX_SHARED) {
      target.slab = new Uint8Array(length);
      target.offset = 0;
    } else {
      this.#reserve(target);
      this.#live += length;
    }
    copyInto(target.slab, target.offset, first, 0, split);
    copyInto(target.slab, target.offset + split, second, 0, length - split);
  }

  /** The record is no longer stored (its bytes stay readable until nothing points into its slab). */
  free(placed: Placed): void {
    if (placed.length === 0 || placed.length > MAX_SHARED) return;
    this.#live -= placed.length;
    this.#garbage += placed.length;
  }

  /** Bytes of preallocated slabs not used yet. */
  get spareBytes(): number {
    return this.#spare.length * SLAB_BYTES;
  }

  /**
   * Allocates slabs for `bytes` more bytes of records (rounded up to whole
   * 256 KiB slabs) and writes to every page of them, so the operating
   * system maps them now instead of at the first write of a record there:
   * a first touch is a page fault, ~0.5–2 µs a 4 KiB page on Linux and
   * 10–13 µs on a VM that backs guest memory lazily (measured on the tcp
   * bench's machine), i.e. 0.1–3 ns per byte stored, paid once per page.
   * Records fill these slabs before any new one is allocated. Synchronous:
   * it takes as long as the faults do.
   *
   * @throws RangeError when the memory cannot be allocated (nothing of this
   *   call is kept; earlier reservations stay).
   */
  preallocate(bytes: number): void {
    const fresh: Uint8Array[] = [];
    for (let left = Math.ceil(bytes / SLAB_BYTES); left > 0; left -= SLABS_PER_BLOCK) {
      const count = Math.min(left, SLABS_PER_BLOCK);
      const block = new Uint8Array(count * SLAB_BYTES);
      for (let i = 0; i < block.length; i += TOUCH_STRIDE) block[i] = 0;
      for (let j = 0; j < count; j++) fresh.push(block.subarray(j * SLAB_BYTES, (j + 1) * SLAB_BYTES));
    }
    // Taken with pop(): slabs of an earlier reservation first, then these in address order.
    this.#spare = [...fresh.reverse(), ...this.#spare];
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
      const from = placed.slab;
      const start = placed.offset;
      this.#reserve(placed);
      copyInto(placed.slab, placed.offset, from, start, placed.length);
    }
    this.#garbage = 0;
  }

  /** Points `placed` at `placed.length` free bytes at the end of the current slab (a new one when it is full). */
  #reserve(placed: Placed): void {
    if (this.#used + placed.length > this.#slab.byteLength) {
      this.#slab = this.#spare.pop() ?? new Uint8Array(SLAB_BYTES);
      this.#used = 0;
    }
    placed.slab = this.#slab;
    placed.offset = this.#used;
    this.#used += placed.length;
  }
}

/** Copies `from[start, start + length)` to `to[at…]`: a loop for a few bytes, memcpy for more. */
function copyInto(to: Uint8Array, at: number, from: Uint8Array, start: number, length: number): void {
  if (length <= 64) {
    for (let i = 0; i < length; i++) to[at + i] = from[start + i]!;
  } else {
    to.set(start === 0 && length === from.byteLength ? from : from.subarray(start, start + length), at);
  }
}

/** A fresh copy, in `alloc(end - start)`, of `slab[start, end)`. */
export function readRange(slab: Uint8Array, start: number, end: number, alloc: (n: number) => Uint8Array): Uint8Array {
  const out = alloc(end - start);
  copyInto(out, 0, slab, start, end - start);
  return out;
}

/** A fresh copy, in `alloc(end - start)`, of the placed bytes `[start, end)` (e.g. a key, or the record after it). */
export function readPlaced(placed: Placed, alloc: (n: number) => Uint8Array, start = 0, end = placed.length): Uint8Array {
  return readRange(placed.slab, placed.offset + start, placed.offset + end, alloc);
}
