import type { Clock, TimerHandle } from '../internal/clock.js';

/** Something waiting for its per-hop timeout in a {@link HopQueue}. */
export interface HopWaiter {
  /**
   * Called once, `hop` ms after it was queued, unless {@link HopWaiter.hopSettled}
   * is true by then (it is then dropped without a call).
   */
  hopDue(): void;
  /** True once nothing is left to wait for (every call it cares about settled). */
  readonly hopSettled: boolean;
}

/** Entries dropped from the head before the array is compacted. */
const COMPACT_AT = 1024;

/**
 * The per-hop timeouts of every request of one coordinator, with one clock
 * timer for all of them (not one per request): every entry waits the same
 * `hop` ms, so the queue is in deadline order by construction (FIFO), and
 * the timer is armed for the earliest entry still waiting. An entry that
 * settles before its hop is not removed (that would cost a search per
 * request); it is dropped when the timer reaches it.
 *
 * In the steady state (every replica answers within the hop) a request costs
 * one array push, and its {@link HopQueue.release} once it settles clears its
 * slot, so the queue keeps no settled request alive (and the garbage
 * collector's young generation can take it); the timer fires about once per
 * `hop` ms, dropping the cleared slots it reaches.
 */
export class HopQueue {
  readonly #clock: Clock;
  readonly #hop: number;
  #waiters: (HopWaiter | undefined)[] = [];
  #due: number[] = [];
  #head = 0;
  /** Slot number of `#waiters[0]` (slots are counted from the first push, across compactions). */
  #base = 0;
  #timer: TimerHandle | undefined;
  #stopped = false;
  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#run();
  };

  /**
   * @param clock where time comes from
   * @param hop ms each entry waits (a finite number >= 0)
   */
  constructor(clock: Clock, hop: number) {
    if (typeof hop !== 'number' || !Number.isFinite(hop) || hop < 0) {
      throw new RangeError(`Expected \`hop\` to be a finite number of milliseconds >= 0, got ${String(hop)}`);
    }
    this.#clock = clock;
    this.#hop = hop;
  }

  /** The per-hop timeout, ms. */
  get hop(): number {
    return this.#hop;
  }

  /** Entries queued and not yet dropped (settled ones included until the timer reaches them). */
  get size(): number {
    return this.#waiters.length - this.#head;
  }

  /**
   * Queues `waiter` for `hop` ms from now and returns its slot (for
   * {@link HopQueue.release}); -1 once stopped (nothing is queued).
   *
   * @param now - the clock's reading, if the caller has just taken it
   */
  push(waiter: HopWaiter, now: number = this.#clock.now()): number {
    if (this.#stopped) return -1;
    const slot = this.#base + this.#waiters.length;
    this.#waiters.push(waiter);
    // A reading a moment older than the entry ahead's only makes this entry wait for that one.
    this.#due.push(now + this.#hop);
    if (this.#timer === undefined) this.#timer = this.#clock.setTimeout(this.#fire, this.#hop);
    return slot;
  }

  /** Forgets the waiter in `slot` (it settled): it is not called and no longer referenced. */
  release(slot: number): void {
    const i = slot - this.#base;
    if (i >= this.#head && i < this.#waiters.length) this.#waiters[i] = undefined;
  }

  /** Clears the timer and forgets every entry (none is called); later pushes are ignored. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#base += this.#waiters.length;
    this.#waiters = [];
    this.#due = [];
    this.#head = 0;
  }

  #run(): void {
    const now = this.#clock.now();
    const waiters = this.#waiters;
    const due = this.#due;
    // Entries pushed by a hopDue() below land behind the ones being run: they wait a full hop.
    while (this.#head < waiters.length) {
      const i = this.#head;
      const waiter = waiters[i];
      const live = waiter !== undefined && !waiter.hopSettled;
      if (live && due[i]! > now) break;
      this.#head++;
      waiters[i] = undefined;
      if (live) waiter.hopDue();
      if (this.#stopped) return;
    }
    if (this.#head >= COMPACT_AT && this.#head * 2 >= waiters.length) {
      this.#waiters = waiters.slice(this.#head);
      this.#due = due.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    } else if (this.#head === waiters.length) {
      waiters.length = 0;
      due.length = 0;
      this.#base += this.#head;
      this.#head = 0;
    }
    if (this.#stopped || this.#head >= this.#waiters.length) return;
    this.#timer = this.#clock.setTimeout(this.#fire, Math.max(0, this.#due[this.#head]! - now));
  }
}
