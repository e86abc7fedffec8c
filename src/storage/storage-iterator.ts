import { AbortError, type KvError } from '../errors/index.js';
import { describeValue } from './validation.js';
import type { StorageCallOptions } from './types.js';

/** A value, or a promise of it. A hook that finishes synchronously returns the value itself. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What `_scan`/`_hints` hooks return: an async iterable (an engine's
 * cursor), or a plain iterable when the data is in memory.
 */
export type StorageIterable<T> = AsyncIterable<T> | Iterable<T>;

/** The iterating operations of the storage seam. */
export type IteratingOperation = 'scan' | 'hints';

/** What a {@link StorageIterator} needs from the storage that made it. */
export interface IteratorHost {
  /** The error a call would get now (not open, aborted), or undefined. */
  refusal(operation: IteratingOperation, options: StorageCallOptions): Error | undefined;
  /** The iterator holds engine resources until {@link IteratorHost.untrack}. */
  track(iterator: StorageIterator<unknown>): void;
  /** The iterator no longer holds engine resources (exhausted, returned, failed or killed). */
  untrack(iterator: StorageIterator<unknown>): void;
  /** Wraps a hook's error (`KV_STORAGE_FAILURE` unless already a KvError). */
  failure(error: unknown, operation: IteratingOperation): KvError;
  /** The error of a step after the storage closed under the iterator (`KV_NOT_STARTED`). */
  ended(operation: IteratingOperation): KvError;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
const noop = (): void => {};

function iteratorOf<T>(iterable: StorageIterable<T>, operation: IteratingOperation): AsyncIterator<T> | Iterator<T> {
  if (typeof iterable === 'object' && iterable !== null) {
    if (Symbol.asyncIterator in iterable && typeof iterable[Symbol.asyncIterator] === 'function') {
      return iterable[Symbol.asyncIterator]();
    }
    if (Symbol.iterator in iterable && typeof iterable[Symbol.iterator] === 'function') {
      return iterable[Symbol.iterator]();
    }
  }
  throw new TypeError(`Expected the _${operation} hook to return an iterable, got ${describeValue(iterable)}`);
}

/**
 * The iterator `AbstractStorage#scan()` and `#hints()` return. Checks state
 * and arguments at its first step (like an async generator), then pulls
 * from the adapter's iterable; the signal is checked before every step.
 * Steps run one at a time (calls to `next()` queue). Once exhausted,
 * returned or failed it releases the adapter's iterator; when the storage
 * closes under it, it is released and every later step rejects with
 * `KV_NOT_STARTED`.
 */
export class StorageIterator<T> implements AsyncIterableIterator<T> {
  readonly #host: IteratorHost;
  readonly #operation: IteratingOperation;
  readonly #options: StorageCallOptions;
  #argumentError: Error | undefined;
  #open: (() => MaybePromise<StorageIterable<T>>) | undefined;
  #inner: AsyncIterator<T> | Iterator<T> | undefined;
  #ended = false;
  #killed = false;
  /** The last step asked for, and how many steps are queued or running. */
  #step: Promise<IteratorResult<T>> | undefined;
  #running = 0;

  /**
   * @param argumentError - a malformed argument, reported at the first step
   * @param open - calls the adapter's hook (at the first step)
   */
  constructor(
    host: IteratorHost,
    operation: IteratingOperation,
    options: StorageCallOptions,
    argumentError: Error | undefined,
    open: () => MaybePromise<StorageIterable<T>>,
  ) {
    this.#host = host;
    this.#operation = operation;
    this.#options = options;
    this.#argumentError = argumentError;
    this.#open = open;
  }

  /** The next entry; see the class description for errors. */
  next(): Promise<IteratorResult<T>> {
    // A step asked for before the storage began closing still runs (close() waits for it).
    return this.#enqueue(this.#killed ? this.#rejectEnded : this.#advance);
  }

  /** Ends the iteration and releases the adapter's iterator (what `break` in `for await` calls). */
  return(): Promise<IteratorResult<T>> {
    return this.#enqueue(this.#finishEarly);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Called by the storage as it closes: waits for a step in flight, then
   * releases the adapter's iterator. Never rejects: the engine is closing
   * anyway, so a failing release has nothing left to protect.
   */
  async kill(): Promise<void> {
    if (this.#killed) return;
    this.#killed = true;
    if (this.#step !== undefined) await this.#step.then(noop, noop);
    await this.#release().catch(noop);
  }

  /** Runs `fn` now if no step is running, else after the running ones. */
  #enqueue(fn: () => Promise<IteratorResult<T>>): Promise<IteratorResult<T>> {
    const step = this.#running === 0 ? fn() : (this.#step as Promise<IteratorResult<T>>).then(fn, fn);
    this.#running++;
    this.#step = step;
    step.then(this.#stepped, this.#stepped);
    return step;
  }

  readonly #stepped = (): void => {
    this.#running--;
  };

  readonly #rejectEnded = (): Promise<IteratorResult<T>> => Promise.reject(this.#host.ended(this.#operation));

  readonly #advance = async (): Promise<IteratorResult<T>> => {
    if (this.#ended) return DONE;
    const open = this.#open;
    if (open !== undefined) {
      this.#open = undefined;
      const refused = this.#host.refusal(this.#operation, this.#options) ?? this.#argumentError;
      this.#argumentError = undefined;
      if (refused !== undefined) {
        this.#ended = true;
        throw refused;
      }
      this.#host.track(this);
      try {
        this.#inner = iteratorOf(await open(), this.#operation);
      } catch (error) {
        this.#ended = true;
        this.#host.untrack(this);
        throw this.#host.failure(error, this.#operation);
      }
    } else {
      const signal = this.#options.signal;
      if (signal?.aborted === true) {
        this.#ended = true;
        await this.#release().catch(noop);
        throw new AbortError(`${this.#operation} aborted`, { cause: signal.reason });
      }
    }
    let result: IteratorResult<T>;
    try {
      result = await (this.#inner as AsyncIterator<T> | Iterator<T>).next();
    } catch (error) {
      this.#ended = true;
      await this.#release().catch(noop);
      throw this.#host.failure(error, this.#operation);
    }
    if (result.done === true) {
      this.#ended = true;
      this.#inner = undefined;
      this.#host.untrack(this);
      return DONE;
    }
    return result;
  };

  readonly #finishEarly = async (): Promise<IteratorResult<T>> => {
    this.#open = undefined;
    if (this.#ended || this.#killed) return DONE;
    this.#ended = true;
    try {
      await this.#release();
    } catch (error) {
      throw this.#host.failure(error, this.#operation);
    }
    return DONE;
  };

  async #release(): Promise<void> {
    const inner = this.#inner;
    this.#inner = undefined;
    this.#host.untrack(this);
    if (inner?.return !== undefined) await inner.return();
  }
}
