import { AbortError, ErrorCodes, KvError, TimeoutError } from '../errors/index.js';
import { systemClock, type Clock, type TimerHandle } from '../internal/clock.js';
import { IdTable } from '../internal/id-table.js';
import { MinHeap } from '../internal/min-heap.js';
import { onAbort } from '../internal/signals.js';
import type { AnswerReceiver } from './types.js';

/**
 * Default bound on the requests one table (one transport, or one
 * connection) keeps in flight at once.
 */
export const DEFAULT_MAX_PENDING = 10_000;

/**
 * Longest timer the system clock can set (about 24.8 days): Node fires a
 * longer `setTimeout` after 1 ms, so longer timeouts are clamped to this.
 */
const MAX_TIMER_MS = 2_147_483_647;

/** Largest request id; after it, ids start again at 1 (skipping ids still pending). */
const MAX_ID = Number.MAX_SAFE_INTEGER;

/** Options of {@link PendingRequests}. */
export interface PendingRequestsOptions {
  /**
   * Source of time for the per-request timeouts.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Most requests in flight at once; past it {@link PendingRequests.open}
   * throws `KV_OVERLOADED` and nothing is sent. `Infinity` for no bound.
   * @default 10000
   */
  maxPending?: number;
}

/** Options of one {@link PendingRequests.open} call. */
export interface OpenRequestOptions {
  /**
   * Milliseconds until the request rejects with `KV_TIMEOUT`. `0` means its
   * deadline has already passed: `open` throws `KV_TIMEOUT` and nothing is
   * sent. `Infinity` sets no timer. Timeouts over 2^31-1 ms (about 24.8
   * days) are clamped to that. Negative or NaN: `RangeError` (a bug in the
   * caller).
   */
  timeout: number;
  /** Rejects the request with `KV_ABORTED` (name `AbortError`) when aborted. */
  signal?: AbortSignal | undefined;
  /**
   * The request id, e.g. one chosen by the peer's protocol. Must be a
   * non-negative safe integer not pending in this table.
   * @default the next free id (1, 2, 3, …)
   */
  id?: number;
  /**
   * Names the request in error messages, e.g. `'kv.read to n2'`.
   * @default `'request <id>'`
   */
  label?: string;
  /**
   * Runs once, synchronously, when the request settles by any route
   * (answer, error, timeout, abort, `rejectAll`), after its timer and abort
   * listener are released and its promise is settled (whose handlers run
   * later, as always): release what the transport attached to it (a
   * delivery timer, a buffer).
   */
  onSettled?: () => void;
}

/** A request opened by {@link PendingRequests.open}. */
export interface OpenedRequest<T> {
  /** Its id in the table, sent with the request so the answer can name it. */
  readonly id: number;
  /** Settles exactly once: with the answer, or with a `KvError`. */
  readonly promise: Promise<T>;
}

const noop = (): void => {};

/** One request in flight: settled through its promise's functions, or through a receiver. */
class Entry<T> {
  offAbort: (() => void) | undefined = undefined;
  resolve: (value: T) => void = noop;
  reject: (error: Error) => void = noop;
  /** With a receiver, the request settles by calling it (no promise). */
  receiver: AnswerReceiver<T> | undefined = undefined;
  tag = 0;
  constructor(
    readonly id: number,
    readonly label: string,
    public onSettled: (() => void) | undefined,
    /** The timeout asked for (ms), for the error message; Infinity for none. */
    readonly timeout: number,
    /** `clock.now()` at which it times out (Infinity for never). */
    readonly deadline: number,
    /** Opening order: equal deadlines time out in the order the requests were opened. */
    readonly seq: number,
  ) {}
}

/**
 * Lets a settled entry go of what it settles: the heap keeps settled entries
 * until a compaction drops them (up to about as many as are in flight), and
 * an entry still holding its receiver or promise functions kept the whole
 * call alive that long (a batch's every operation, its records and
 * versions): most of what each young-generation collection had to copy.
 */
function release<T>(entry: Entry<T>): void {
  entry.receiver = undefined;
  entry.resolve = noop;
  entry.reject = noop;
  entry.onSettled = undefined;
}

/** Earlier deadline first, then earlier opened. */
function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === null) return 'null';
  return typeof v;
}

/**
 * Checks a `maxPending` option: a positive integer or `Infinity`.
 *
 * @throws RangeError otherwise.
 */
export function checkMaxPending(value: unknown): asserts value is number {
  if (typeof value !== 'number' || !(value >= 1) || (value !== Infinity && !Number.isInteger(value))) {
    throw new RangeError(`Expected \`maxPending\` to be a positive integer or Infinity, got ${describe(value)}`);
  }
}

/**
 * The table of requests in flight that every transport shares: a request is
 * opened with its timeout (through the injectable {@link Clock}) and its
 * AbortSignal, and settles exactly once — answered ({@link resolve}),
 * failed ({@link reject}), timed out (`KV_TIMEOUT`), aborted (`KV_ABORTED`,
 * name `AbortError`) or cut off with everything else ({@link rejectAll}, on
 * stop or connection loss). Settling releases its timer and its abort
 * listener; one signal shared by any number of requests carries a single
 * listener. Answers for ids that already settled (late, duplicated or
 * forged) are ignored: {@link resolve} and {@link reject} return `false`.
 *
 * A transport multiplexing requests over one connection keeps one table per
 * connection, sends each request with its `id` and routes answers back by id.
 *
 * @example
 * ```ts
 * const pending = new PendingRequests<WireMessage>({ maxPending: 1000 });
 * const { id, promise } = pending.open({ timeout: 5000, signal, label: `${msg.type} to ${to}` });
 * socket.write(encodeFrame({ kind: 'req', id, from, body: msg }));
 * // on a 'res' frame:   pending.resolve(frame.id, frame.body);
 * // on an 'err' frame:  pending.reject(frame.id, new KvError(frame.code, frame.message));
 * // on close:           pending.rejectAll(new KvError('KV_CONNECTION_CLOSED', 'connection closed'));
 * return promise;
 * ```
 */
export class PendingRequests<T> {
  /** The bound on requests in flight (see {@link PendingRequestsOptions.maxPending}). */
  readonly maxPending: number;
  readonly #clock: Clock;
  /** Requests in flight by id (not a `Map`: see IdTable, a measured GC cost). */
  readonly #entries = new IdTable<Entry<T>>();
  #nextId = 1;
  #seq = 0;
  /**
   * Requests with a timeout, as a binary min-heap on (deadline, seq). One
   * clock timer serves the whole table (a timer per request was a measured
   * cost): it is armed for the earliest deadline. Settled requests leave
   * the heap lazily (when they reach the top, or at a compaction once they
   * are most of it); the heap is emptied when the table is.
   */
  readonly #heap = new MinHeap<Entry<T>>(before);
  #timer: TimerHandle | undefined = undefined;
  /** The deadline the timer is armed for. */
  #timerAt = Infinity;

  constructor(options: PendingRequestsOptions = {}) {
    const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    checkMaxPending(maxPending);
    this.maxPending = maxPending;
    this.#clock = options.clock ?? systemClock;
  }

  /** Requests in flight. */
  get size(): number {
    return this.#entries.size;
  }

  /** True while request `id` is in flight. */
  has(id: number): boolean {
    return this.#entries.has(id);
  }

  /**
   * Opens a request: registers it under a fresh (or the given) id and arms
   * its timeout and abort signal. Send it only after `open` returned.
   *
   * @throws AbortError `KV_ABORTED` if `signal` has already aborted,
   *   `TimeoutError` `KV_TIMEOUT` if `timeout` is 0, `KvError`
   *   `KV_OVERLOADED` if `maxPending` requests are in flight — in all three
   *   cases nothing is registered, so the request must not be sent.
   * @throws RangeError on a negative or NaN `timeout`, or an `id` that is
   *   not a non-negative safe integer or is already pending.
   */
  open(options: OpenRequestOptions): OpenedRequest<T> {
    const entry = this.#register(options);
    const promise = new Promise<T>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this.#arm(entry, options.signal);
    return { id: entry.id, promise };
  }

  /**
   * {@link PendingRequests.open} without a promise: the request settles by
   * calling `receiver.answered(tag, answer)` or `receiver.failed(tag,
   * error)`, exactly once, synchronously from the call that settles it
   * ({@link resolve}, {@link reject}, the timeout, the abort), after its
   * timer, abort listener and `onSettled` are done with. One receiver
   * may serve many requests, told apart by `tag`: a caller that sends many
   * requests allocates no promise or closure for each (measured: ~180 ns a
   * request less than a promise and its reaction).
   *
   * @returns the request's id.
   * @throws as {@link PendingRequests.open} (nothing is registered then).
   */
  openFor(options: OpenRequestOptions, receiver: AnswerReceiver<T>, tag: number): number {
    const entry = this.#register(options);
    entry.receiver = receiver;
    entry.tag = tag;
    this.#arm(entry, options.signal);
    return entry.id;
  }

  /** Checks a request's options and registers it (its timeout in the heap); the caller sets how it settles, then arms its signal. */
  #register(options: OpenRequestOptions): Entry<T> {
    const { timeout, signal } = options;
    if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
      throw new RangeError(`Expected \`timeout\` to be a number of milliseconds >= 0 (or Infinity), got ${describe(timeout)}`);
    }
    let id = options.id;
    if (id !== undefined) {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
        throw new RangeError(`Expected \`id\` to be a non-negative safe integer, got ${describe(id)}`);
      }
      if (this.#entries.has(id)) throw new RangeError(`Expected \`id\` to be free, got ${id}, which is still pending`);
    }
    const label = options.label;
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    if (timeout === 0) {
      throw new TimeoutError(`${label ?? 'request'} timed out: its deadline had already passed`);
    }
    if (this.#entries.size >= this.maxPending) {
      throw new KvError(
        ErrorCodes.OVERLOADED,
        `${label ?? 'request'} refused: ${this.#entries.size} requests already in flight (maxPending ${this.maxPending})`,
      );
    }
    const requestId = id ?? this.#freeId();
    const deadline = timeout === Infinity ? Infinity : this.#clock.now() + Math.min(timeout, MAX_TIMER_MS);
    const entry = new Entry<T>(requestId, label ?? `request ${requestId}`, options.onSettled, timeout, deadline, this.#seq++);
    this.#entries.set(requestId, entry);
    if (timeout !== Infinity) {
      // Settled requests are most of the heap: drop them (amortised O(1) per request).
      if (this.#heap.size >= 64 && this.#heap.size > 2 * this.#entries.size) this.#heap.retain((e) => this.#entries.get(e.id) === e);
      this.#heap.push(entry);
      if (deadline < this.#timerAt) this.#armTimer(deadline);
    }
    return entry;
  }

  /** Listens for the request's signal (once it can settle). */
  #arm(entry: Entry<T>, signal: AbortSignal | undefined): void {
    if (signal) {
      entry.offAbort = onAbort(signal, () => {
        entry.offAbort = undefined;
        this.#settle(entry.id, new AbortError(undefined, { cause: signal.reason }));
      });
    }
  }

  /** Settles request `id` with its answer. Returns false if it is not pending (already settled, or unknown). */
  resolve(id: number, value: T): boolean {
    const entry = this.#take(id);
    if (!entry) return false;
    const { receiver, resolve, onSettled } = entry;
    release(entry);
    if (receiver === undefined) {
      resolve(value);
      onSettled?.();
    } else {
      // The transport lets go of the request first, as it has before a promise's handlers run.
      onSettled?.();
      receiver.answered(entry.tag, value);
    }
    return true;
  }

  /** Rejects request `id` with `error`. Returns false if it is not pending (already settled, or unknown). */
  reject(id: number, error: Error): boolean {
    return this.#settle(id, error);
  }

  /**
   * Rejects every request in flight (on stop or connection loss), with
   * `error`, or with `error(id)` for each. Requests opened meanwhile (by an
   * `onSettled` callback) are not affected. Returns how many it rejected.
   */
  rejectAll(error: Error | ((id: number) => Error)): number {
    let count = 0;
    // In the order they were opened.
    const entries = this.#entries.values().sort((a, b) => a.seq - b.seq);
    for (const { id } of entries) {
      if (this.#settle(id, typeof error === 'function' ? error(id) : error)) count++;
    }
    return count;
  }

  #settle(id: number, error: Error): boolean {
    const entry = this.#take(id);
    if (!entry) return false;
    const { receiver, reject, onSettled } = entry;
    release(entry);
    if (receiver === undefined) {
      reject(error);
      onSettled?.();
    } else {
      onSettled?.();
      receiver.failed(entry.tag, error);
    }
    return true;
  }

  /** Removes a pending entry and releases its timer and abort listener. */
  #take(id: number): Entry<T> | undefined {
    const entry = this.#entries.delete(id);
    if (!entry) return undefined;
    if (this.#entries.size === 0) {
      // Nothing left to time out: no timer outlives the requests, and no stale heap.
      this.#heap.clear();
      this.#disarm();
    }
    if (entry.offAbort) {
      entry.offAbort();
      entry.offAbort = undefined;
    }
    return entry;
  }

  /** Arms the table's single timer for `deadline` (replacing an armed one). */
  #armTimer(deadline: number): void {
    this.#disarm();
    this.#timerAt = deadline;
    const ms = Math.min(Math.max(0, deadline - this.#clock.now()), MAX_TIMER_MS);
    this.#timer = this.#clock.setTimeout(() => this.#fire(deadline), ms);
  }

  #disarm(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#timerAt = Infinity;
  }

  /** The timer armed for `armedAt` fired: times out every request due by then, and re-arms for the next. */
  #fire(armedAt: number): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // The timer is trusted to have waited (a wall clock set back must not stall timeouts).
    const due = Math.max(armedAt, this.#clock.now());
    for (;;) {
      const top = this.#top();
      if (top === undefined || top.deadline > due) break;
      this.#heap.pop();
      // Settling runs callbacks that may open or settle requests (the heap is re-read each round).
      this.#settle(top.id, new TimeoutError(`${top.label} timed out after ${top.timeout} ms`));
    }
    const next = this.#top();
    if (next !== undefined && next.deadline < this.#timerAt) this.#armTimer(next.deadline);
  }

  /** The live request with the earliest deadline (settled ones above it are dropped). */
  #top(): Entry<T> | undefined {
    for (;;) {
      const top = this.#heap.peek();
      if (top === undefined || this.#entries.get(top.id) === top) return top;
      this.#heap.pop();
    }
  }

  #freeId(): number {
    // Ids only wrap after 2^53 requests; skip any still pending then.
    let id = this.#nextId;
    while (this.#entries.has(id)) id = id >= MAX_ID ? 1 : id + 1;
    this.#nextId = id >= MAX_ID ? 1 : id + 1;
    return id;
  }
}
