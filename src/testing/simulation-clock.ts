import { setImmediate as realSetImmediate } from 'node:timers';
import { TimeoutError } from '../errors/index.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import { seededRandom } from '../internal/random.js';

/**
 * Virtual epoch a {@link SimulatedClock} starts at unless told otherwise:
 * 2024-01-01T00:00:00Z, so timestamps look like real ones.
 */
export const SIMULATION_EPOCH = 1_704_067_200_000;

/** Options of {@link SimulatedClock}. */
export interface SimulatedClockOptions {
  /**
   * Seed of the PRNG that orders timers due at the same virtual instant.
   * @default 0
   */
  seed?: number;
  /**
   * Virtual time at the start, ms since the epoch.
   * @default SIMULATION_EPOCH (2024-01-01T00:00:00Z)
   */
  start?: number;
}

/** Options of {@link SimulatedClock.run}. */
export interface SimulatedRunOptions {
  /**
   * Most virtual time the run may take, ms; past it the run rejects with
   * `KV_TIMEOUT` (the work it waited for keeps its timers).
   * @default Infinity
   */
  timeout?: number;
  /**
   * Most timer callbacks the run may execute before it rejects with
   * `KV_TIMEOUT` (a guard against livelock: work that keeps scheduling
   * timers at the same instant).
   * @default Infinity
   */
  maxSteps?: number;
}

interface Timer {
  readonly id: number;
  readonly at: number;
  fn: (() => void) | undefined;
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.id < b.id);
}

/** Lets every promise continuation that is ready run: one turn of the real event loop. */
function settleMicrotasks(): Promise<void> {
  return new Promise<void>((resolve) => realSetImmediate(resolve));
}

function checkMs(value: unknown, what: string): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`Expected \`${what}\` to be a number of milliseconds >= 0, got ${String(value)}`);
  }
  return value;
}

/**
 * A {@link Clock} in virtual time with a seeded scheduler, for deterministic
 * simulation in the style of FoundationDB's: give it to every Store
 * (`clock`), every MemoryNetwork (`clock`, `deliverOnClock: true`) and every
 * other part that waits, then drive it with {@link SimulatedClock.run}.
 *
 * The driver runs one timer callback at a time ("macro task"), then lets
 * every promise continuation that became ready run to completion, as a real
 * event loop does between two callbacks. Timers due at the same virtual
 * instant run in an order drawn from the seed (so message interleavings
 * vary with the seed); when none is due, virtual time jumps to the next
 * timer. Hours of gossip, failure detection and deadlines run in seconds of
 * real time, and the same seed with the same code replays the same run bit
 * for bit, provided nothing in it reads real time, real timers, real I/O or
 * `Math.random`.
 *
 * Timers never fire on their own: only `run`, `advance` and `runNext` fire
 * them. Timers of `Infinity` ms never fire.
 *
 * @example
 * ```ts
 * const clock = new SimulatedClock({ seed: 7 });
 * const slept = clock.run(async () => {
 *   await clock.sleep(3_600_000); // one simulated hour
 *   return clock.now();
 * });
 * await slept; // resolves in milliseconds of real time
 * ```
 */
export class SimulatedClock implements Clock {
  /** The seed that orders simultaneous timers. */
  readonly seed: number;
  #now: number;
  #nextId = 1;
  /** Timers due now, in no particular order: the next is drawn from the seed. */
  #ready: Timer[] = [];
  /** Future timers, a binary min-heap on (at, id). */
  #heap: Timer[] = [];
  /** Timers that will fire but have not yet (ready or in the heap, not cleared). */
  #live = 0;
  /** Cleared timers still in the heap (dropped when popped, or on compaction). */
  #cancelled = 0;
  #steps = 0;
  readonly #random: () => number;

  constructor(options: SimulatedClockOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`Expected \`options\` to be an object, got ${options === null ? 'null' : typeof options}`);
    }
    const seed = options.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isInteger(seed)) {
      throw new TypeError(`Expected \`seed\` to be an integer, got ${String(seed)}`);
    }
    const start = options.start ?? SIMULATION_EPOCH;
    if (typeof start !== 'number' || !Number.isFinite(start)) {
      throw new TypeError(`Expected \`start\` to be a finite number of ms since the epoch, got ${String(start)}`);
    }
    this.seed = seed >>> 0;
    this.#random = seededRandom(this.seed ^ 0x5bd1e995);
    this.#now = start;
  }

  /** Virtual milliseconds since the epoch. */
  now(): number {
    return this.#now;
  }

  /** Schedules `fn` `ms` virtual milliseconds from now (0 or less: due now). */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    if (typeof fn !== 'function') throw new TypeError(`Expected \`fn\` to be a function, got ${typeof fn}`);
    const delay = typeof ms === 'number' && ms > 0 ? ms : 0;
    const timer: Timer = { id: this.#nextId++, at: this.#now + delay, fn };
    if (timer.at === Infinity) return timer as unknown as TimerHandle; // never fires: nothing to keep
    this.#live++;
    if (delay === 0) this.#ready.push(timer);
    else this.#push(timer);
    return timer as unknown as TimerHandle;
  }

  /** Cancels a timer; a no-op for one that fired or was cleared. */
  clearTimeout(handle: TimerHandle): void {
    const timer = handle as unknown as Timer | undefined;
    if (!timer || typeof timer !== 'object' || timer.fn === undefined) return;
    timer.fn = undefined;
    if (timer.at === Infinity) return;
    this.#live--;
    const i = this.#ready.indexOf(timer);
    if (i >= 0) {
      this.#ready[i] = this.#ready[this.#ready.length - 1]!;
      this.#ready.pop();
      return;
    }
    this.#cancelled++;
    if (this.#cancelled > 1024 && this.#cancelled > this.#heap.length / 2) this.#compact();
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pending(): number {
    return this.#live;
  }

  /** Timer callbacks run so far. */
  get steps(): number {
    return this.#steps;
  }

  /** Virtual time of the next timer to fire (now if one is due), or undefined when none is scheduled. */
  nextDue(): number | undefined {
    if (this.#ready.length > 0) return this.#now;
    this.#prune();
    return this.#heap[0]?.at;
  }

  /**
   * Runs one timer callback synchronously: one of those due now, drawn from
   * the seed, or else the earliest, moving virtual time to it. Promise
   * continuations it starts have not run yet when this returns (the
   * asynchronous drivers let them run). Returns false when nothing is
   * scheduled. Exceptions from the callback propagate.
   */
  runNext(): boolean {
    if (this.#ready.length === 0) {
      this.#prune();
      const first = this.#heap[0];
      if (!first) return false;
      this.#now = Math.max(this.#now, first.at);
      while (this.#heap.length > 0) {
        const top = this.#heap[0]!;
        if (top.at > this.#now) break;
        this.#pop();
        if (top.fn === undefined) this.#cancelled--;
        else this.#ready.push(top);
      }
    }
    const n = this.#ready.length;
    if (n === 0) return this.runNext();
    const i = n === 1 ? 0 : Math.floor(this.#random() * n);
    const timer = this.#ready[i]!;
    this.#ready[i] = this.#ready[n - 1]!;
    this.#ready.pop();
    const fn = timer.fn!;
    timer.fn = undefined;
    this.#live--;
    this.#steps++;
    fn();
    return true;
  }

  /**
   * Drives virtual time until `work` settles, and settles like it. `work` is
   * a promise, or a function started once the driver runs (its synchronous
   * throw is a rejection). Between two timer callbacks every ready promise
   * continuation runs.
   *
   * Rejects with `KV_TIMEOUT` when `options.timeout` virtual ms or
   * `options.maxSteps` callbacks pass first, or when nothing is left
   * scheduled and `work` has not settled (it waits for something that
   * never comes: a deadlock, or real time, real I/O or a timer of another clock).
   */
  async run<T>(work: Promise<T> | (() => Promise<T>), options: SimulatedRunOptions = {}): Promise<T> {
    const timeout = checkMs(options.timeout ?? Infinity, 'timeout');
    const maxSteps = checkMs(options.maxSteps ?? Infinity, 'maxSteps');
    let promise: Promise<T>;
    if (typeof work === 'function') {
      try {
        promise = work();
      } catch (err) {
        return Promise.reject(err);
      }
    } else promise = work;
    if (!(promise instanceof Promise)) {
      throw new TypeError(`Expected \`work\` to be a promise or a function returning one, got ${typeof promise}`);
    }
    let done = false;
    const watched = promise.then(
      (value) => {
        done = true;
        return value;
      },
      (err: unknown) => {
        done = true;
        throw err;
      },
    );
    watched.catch(() => {}); // observed below; no unhandled rejection meanwhile
    const deadline = this.#now + timeout;
    const firstStep = this.#steps;
    await settleMicrotasks();
    while (!done) {
      const next = this.nextDue();
      if (next === undefined) {
        throw new TimeoutError(
          `simulation stalled at virtual time ${this.#now}: nothing is scheduled and the work did not settle (a deadlock, or it waits for real time, real I/O or another clock)`,
        );
      }
      if (next > deadline) {
        this.#now = Math.max(this.#now, deadline);
        throw new TimeoutError(`simulated work did not settle within ${timeout} virtual ms`);
      }
      if (this.#steps - firstStep >= maxSteps) {
        throw new TimeoutError(`simulated work did not settle within ${maxSteps} steps (virtual time ${this.#now})`);
      }
      this.runNext();
      await settleMicrotasks();
    }
    return watched;
  }

  /**
   * Runs every timer due within the next `ms` virtual milliseconds (letting
   * promise continuations run between them), then sets the time to now + `ms`.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + checkMs(ms, 'ms');
    await settleMicrotasks();
    for (;;) {
      const next = this.nextDue();
      if (next === undefined || next > target) break;
      this.runNext();
      await settleMicrotasks();
    }
    this.#now = Math.max(this.#now, target);
  }

  /** A promise resolved after `ms` virtual milliseconds (only while something drives the clock). */
  sleep(ms: number): Promise<void> {
    checkMs(ms, 'ms');
    return new Promise<void>((resolve) => {
      this.setTimeout(resolve, ms);
    });
  }

  #push(timer: Timer): void {
    const heap = this.#heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): Timer | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }

  /** Drops cleared timers from the top of the heap. */
  #prune(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.fn === undefined) {
      this.#pop();
      this.#cancelled--;
    }
  }

  /** Rebuilds the heap without cleared timers. */
  #compact(): void {
    const keep = this.#heap.filter((t) => t.fn !== undefined);
    this.#heap = [];
    this.#cancelled = 0;
    for (const t of keep) this.#push(t);
  }
}
