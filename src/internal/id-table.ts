/**
 * A map from ids (non-negative safe integers) to values, for the tables
 * every request passes through (requests in flight): open addressing over
 * a `Float64Array` of ids and a plain array of values, instead of a `Map`.
 *
 * Why not a `Map`: under churn V8 rehashes a `Map` into a new backing table
 * every few hundred insertions and links the old table to the new one (for
 * iterators that may still walk it), without clearing the old table's
 * entries. Once one table of that chain has reached the old generation,
 * every minor GC keeps the whole chain of later tables alive — and every
 * value any of them held when it was replaced — until the next full GC.
 * The values (settled requests, their promises and answers) are then
 * copied and promoted by every scavenge: measured on the five-node bench
 * (64 calls in flight), 1.8 MB promoted per scavenge and about a quarter
 * of the CPU of a quorum get spent in the garbage collector. Here a removed
 * value's slot is overwritten at once and a resize clears the arrays it
 * leaves, so nothing outlives its removal.
 *
 * Linear probing with backward-shift deletion (no tombstones); the table
 * starts at 16 slots, doubles past load 1/2 and halves below 1/8, never
 * below 256 slots once it has grown that far.
 */
export class IdTable<V> {
  /** Id in each slot, -1 when empty. */
  #ids: Float64Array;
  #values: (V | undefined)[];
  #bits: number;
  #size = 0;
  readonly #hash: (id: number) => number;

  /**
   * @param hash an id's 32-bit hash, whose top bits pick its home slot (tests
   *   pass one that collides on purpose); the default spreads sequential ids
   */
  constructor(hash: (id: number) => number = fibonacci) {
    this.#hash = hash;
    this.#bits = MIN_BITS;
    this.#ids = new Float64Array(1 << MIN_BITS).fill(-1);
    this.#values = new Array<V | undefined>(1 << MIN_BITS).fill(undefined);
  }

  /** Number of ids in the table. */
  get size(): number {
    return this.#size;
  }

  /** Slots (for tests: between 2 and 8 per id, at least 16). */
  get capacity(): number {
    return this.#ids.length;
  }

  /** The value of `id`, or undefined. */
  get(id: number): V | undefined {
    const i = this.#find(id);
    return i < 0 ? undefined : this.#values[i];
  }

  /** True if `id` is in the table. */
  has(id: number): boolean {
    return this.#find(id) >= 0;
  }

  /**
   * Stores `value` under `id` (replacing the value it had).
   * @throws RangeError if `id` is not a non-negative safe integer.
   */
  set(id: number, value: V): void {
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`Expected \`id\` to be a non-negative safe integer, got ${String(id)}`);
    const ids = this.#ids;
    const mask = ids.length - 1;
    for (let i = this.#slotOf(id, this.#bits); ; i = (i + 1) & mask) {
      const at = ids[i]!;
      if (at === id) {
        this.#values[i] = value;
        return;
      }
      if (at === -1) {
        ids[i] = id;
        this.#values[i] = value;
        if (++this.#size * 2 > ids.length) this.#resize(this.#bits + 1);
        return;
      }
    }
  }

  /** Removes `id`; returns its value (undefined when it was not there). */
  delete(id: number): V | undefined {
    let i = this.#find(id);
    if (i < 0) return undefined;
    const ids = this.#ids;
    const values = this.#values;
    const value = values[i];
    const mask = ids.length - 1;
    // Backward shift: pull later entries of the run into the hole when the hole
    // lies between their home slot and where they are now (cyclically).
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const at = ids[j]!;
      if (at === -1) break;
      const home = this.#slotOf(at, this.#bits);
      if (((j - home) & mask) >= ((j - i) & mask)) {
        ids[i] = at;
        values[i] = values[j];
        i = j;
      }
    }
    ids[i] = -1;
    values[i] = undefined;
    if (--this.#size * 8 < ids.length && this.#bits > KEEP_BITS) this.#resize(this.#bits - 1);
    return value;
  }

  /** Every value, in no particular order (a snapshot: the table may change while the caller walks it). */
  values(): V[] {
    const out: V[] = [];
    const ids = this.#ids;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== -1) out.push(this.#values[i] as V);
    return out;
  }

  /** Home slot of `id` in a table of 2^bits slots. */
  #slotOf(id: number, bits: number): number {
    return this.#hash(id) >>> (32 - bits);
  }

  #find(id: number): number {
    const ids = this.#ids;
    const mask = ids.length - 1;
    for (let i = this.#slotOf(id, this.#bits); ; i = (i + 1) & mask) {
      const at = ids[i]!;
      if (at === id) return i;
      if (at === -1) return -1;
    }
  }

  #resize(bits: number): void {
    const oldIds = this.#ids;
    const oldValues = this.#values;
    const size = 1 << bits;
    const mask = size - 1;
    const ids = new Float64Array(size).fill(-1);
    const values = new Array<V | undefined>(size).fill(undefined);
    for (let k = 0; k < oldIds.length; k++) {
      const id = oldIds[k]!;
      if (id === -1) continue;
      let i = this.#slotOf(id, bits);
      while (ids[i] !== -1) i = (i + 1) & mask;
      ids[i] = id;
      values[i] = oldValues[k];
    }
    // The old array may be in the old generation: cleared, it keeps no value alive.
    oldValues.fill(undefined);
    this.#ids = ids;
    this.#values = values;
    this.#bits = bits;
  }
}

const MIN_BITS = 4;
/**
 * Never shrinks below 2^8 slots (4 KiB): a table whose size swings to 0 and
 * back (a transport between bursts) would otherwise resize on every swing
 * (measured: 2 µs of resizing per quorum put).
 */
const KEEP_BITS = 8;

/** Fibonacci hashing of the id's two 32-bit halves: consecutive ids land far apart. */
function fibonacci(id: number): number {
  const lo = id >>> 0;
  const hi = (id / 4294967296) >>> 0;
  return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
}
