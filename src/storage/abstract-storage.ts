import { AbortError, ErrorCodes, KvError } from '../errors/index.js';
import {
  StorageIterator,
  type IteratorHost,
  type MaybePromise,
  type StorageIterable,
} from './storage-iterator.js';
import { WHOLE_RING } from './token-range.js';
import {
  checkBytes,
  checkHint,
  checkKey,
  checkName,
  checkRange,
  checkToken,
  describeKey,
  describeValue,
} from './validation.js';
import type {
  StorageAdapter,
  StorageCallOptions,
  StorageCapabilities,
  StorageStatus,
  StoredEntry,
  StoredHint,
  TokenRangeQuery,
} from './types.js';

/** Every operation of the storage seam, as named in error messages. */
export type StorageOperation =
  | 'open'
  | 'close'
  | 'get'
  | 'put'
  | 'delete'
  | 'scan'
  | 'putHint'
  | 'hints'
  | 'deleteHint'
  | 'getMeta'
  | 'setMeta';

type Transition = { readonly target: 'open' | 'closed'; readonly promise: Promise<void> };

const NO_OPTIONS: StorageCallOptions = Object.freeze({});
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Base class for {@link StorageAdapter}s, as `abstract-level` is for Level
 * stores: the public methods check state and arguments once, then call the
 * protected `_open`/`_close`/`_get`/`_put`/`_delete`/`_scan`/`_putHint`/
 * `_hints`/`_deleteHint`/`_getMeta`/`_setMeta` hooks, which get clean
 * input and implement only the storage itself.
 *
 * What the base guarantees, so hooks need not:
 * - Lifecycle: `status` goes `closed → opening → open → closing → closed`.
 *   `open()` and `close()` are idempotent and may be called concurrently:
 *   requests take effect in call order, consecutive equal requests share one
 *   transition. `_open` runs only from `'closed'`, `_close` only from
 *   `'open'`. A failed `_open` leaves the storage `'closed'`; a failed
 *   `_close` leaves it `'open'` so that `close()` can be retried (as
 *   abstract-level does).
 * - Checks, in this order: `options` (a signal that has already fired
 *   rejects with `KV_ABORTED`, name `AbortError`), status (anything but
 *   `'open'` rejects with `KV_NOT_STARTED`; nothing is queued), then
 *   arguments (`TypeError`/`RangeError`: keys non-empty `Uint8Array`s,
 *   tokens unsigned 32-bit integers, records and values `Uint8Array`s,
 *   hint ids, targets and meta names non-empty strings, hint shape).
 * - Errors: whatever a hook throws or rejects with that is not a `KvError`
 *   becomes a `KvError` with code `KV_STORAGE_FAILURE`, the original as
 *   `cause`, and a message naming the adapter, the operation and the key
 *   (UTF-8 when printable, else hex). A hook may throw a `KvError` itself
 *   (e.g. `KV_ENGINE_MISSING` from `_open`); it passes through unchanged.
 * - Closing: `close()` refuses new calls at once, waits for the hook calls
 *   in flight to settle (they complete normally), ends every open
 *   `scan`/`hints` iterator (a step in flight completes; the next step
 *   rejects with `KV_NOT_STARTED`) and then calls `_close`. A hook that
 *   never settles therefore keeps `close()` waiting.
 * - Iterators: `scan`/`hints` check state and arguments at their first step
 *   and the signal before every step; `break` in `for await` releases the
 *   hook's iterator (its `return()` is called).
 *
 * Hooks may return their result directly instead of a promise: a hook
 * that finishes synchronously (an in-memory adapter) costs no extra `await`
 * and no bookkeeping. A hook's iterable may be sync or async. `options`
 * is always an object (`{}` when the caller gave none) and hooks may honour
 * `options.signal` mid-flight.
 *
 * @example
 * ```ts
 * class MapStorage extends AbstractStorage {
 *   readonly capabilities = { durable: false, orderedScan: false };
 *   readonly #rows = new Map<string, StoredEntry>();
 *   protected _get(key: Uint8Array) { return this.#rows.get(hex(key))?.record; }
 *   protected _put(key: Uint8Array, token: number, record: Uint8Array) {
 *     this.#rows.set(hex(key), { key: key.slice(), token, record: record.slice() });
 *   }
 *   // … _delete, _scan, _putHint, _hints, _deleteHint, _getMeta, _setMeta
 * }
 * ```
 */
export abstract class AbstractStorage implements StorageAdapter {
  /** Optional features; read by the compliance suite. */
  abstract readonly capabilities: StorageCapabilities;

  #status: StorageStatus = 'closed';
  /** The last lifecycle request not yet settled; later requests queue behind it. */
  #transition: Transition | undefined;
  /** Hook calls that returned a promise and have not settled yet. */
  #inFlight = 0;
  #idle: (() => void) | undefined;
  readonly #iterators = new Set<StorageIterator<unknown>>();
  readonly #host: IteratorHost = {
    refusal: (operation, options) => this.#refusal(operation, options),
    track: (iterator) => {
      this.#iterators.add(iterator);
    },
    untrack: (iterator) => {
      this.#iterators.delete(iterator);
    },
    failure: (error, operation) => this.#failure(error, operation),
    ended: (operation) =>
      new KvError(
        ErrorCodes.NOT_STARTED,
        `${this.constructor.name}: the ${operation} iterator ended because the storage closed`,
      ),
  };

  /** `'opening' | 'open' | 'closing' | 'closed'`; starts `'closed'`. */
  get status(): StorageStatus {
    return this.#status;
  }

  /**
   * Opens the storage (idempotent). Rejects with the hook's `KvError` (e.g.
   * `KV_ENGINE_MISSING`) or `KV_STORAGE_FAILURE`, leaving it `'closed'`.
   */
  open(): Promise<void> {
    const last = this.#transition;
    if (last === undefined) return this.#status === 'open' ? RESOLVED : this.#request('open');
    return last.target === 'open' ? last.promise : this.#request('open', last.promise);
  }

  /**
   * Closes the storage (idempotent): refuses new calls, waits for the calls
   * in flight, ends open iterators, then closes the engine. Rejects with
   * `KV_STORAGE_FAILURE` if the engine fails to close (the status goes back
   * to `'open'`, so `close()` can be retried).
   */
  close(): Promise<void> {
    const last = this.#transition;
    if (last === undefined) return this.#status === 'closed' ? RESOLVED : this.#request('closed');
    return last.target === 'closed' ? last.promise : this.#request('closed', last.promise);
  }

  /** Same as {@link AbstractStorage.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The record stored under `key`, or undefined. */
  get(key: Uint8Array, options?: StorageCallOptions): Promise<Uint8Array | undefined> {
    try {
      const result = this.#get(key, options);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * {@link AbstractStorage.get} without the promise when the `_get` hook
   * answers synchronously: the same checks and errors, thrown instead of
   * rejected; a hook's promise is returned (settled like `get`'s). In a
   * subclass that overrides `get`, it calls that `get`.
   */
  getNow(key: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    // A subclass that overrides get() (to wrap, count or inject faults) is
    // called through it: the fast path never skips an override.
    if (this.get !== AbstractStorage.prototype.get) return this.get(key);
    return this.#get(key, undefined);
  }

  /** Stores (replaces) the record under `key`, with its ring token. */
  put(key: Uint8Array, token: number, record: Uint8Array, options?: StorageCallOptions): Promise<void> {
    try {
      const result = this.#put(key, token, record, options);
      return result instanceof Promise ? result : RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * {@link AbstractStorage.put} without the promise when the `_put` hook
   * finishes synchronously (see {@link AbstractStorage.getNow}).
   */
  putNow(key: Uint8Array, token: number, record: Uint8Array): void | Promise<void> {
    if (this.put !== AbstractStorage.prototype.put) return this.put(key, token, record);
    return this.#put(key, token, record, undefined);
  }

  /** get's checks and hook call: refusals and failures are thrown; a hook's promise is settled like every call's. */
  #get(key: Uint8Array, options: StorageCallOptions | undefined): MaybePromise<Uint8Array | undefined> {
    // The common case (open, no options, a good key) costs three comparisons.
    if (this.#status !== 'open' || options !== undefined || !(key instanceof Uint8Array) || key.length === 0) {
      const refused = this.#refusal('get', options) ?? checkKey(key, 'key');
      if (refused !== undefined) throw refused;
    }
    let result: MaybePromise<Uint8Array | undefined>;
    try {
      result = this._get(key, options ?? NO_OPTIONS);
    } catch (error) {
      throw this.#failure(error, 'get', key);
    }
    return result instanceof Promise ? this.#settle(result, 'get', key) : result;
  }

  /** put's checks and hook call, as {@link AbstractStorage.#get}. */
  #put(key: Uint8Array, token: number, record: Uint8Array, options: StorageCallOptions | undefined): MaybePromise<void> {
    if (
      this.#status !== 'open' ||
      options !== undefined ||
      !(key instanceof Uint8Array) ||
      key.length === 0 ||
      typeof token !== 'number' ||
      token >>> 0 !== token ||
      !(record instanceof Uint8Array)
    ) {
      const refused =
        this.#refusal('put', options) ??
        checkKey(key, 'key') ??
        checkToken(token, 'token') ??
        checkBytes(record, 'record');
      if (refused !== undefined) throw refused;
    }
    let result: MaybePromise<void>;
    try {
      result = this._put(key, token, record, options ?? NO_OPTIONS);
    } catch (error) {
      throw this.#failure(error, 'put', key);
    }
    return result instanceof Promise ? this.#settle(result, 'put', key) : undefined;
  }

  /** Removes `key` (a missing key is not an error). */
  delete(key: Uint8Array, options?: StorageCallOptions): Promise<void> {
    const refused = this.#refusal('delete', options) ?? checkKey(key, 'key');
    if (refused !== undefined) return Promise.reject(refused);
    let result: MaybePromise<void>;
    try {
      result = this._delete(key, options ?? NO_OPTIONS);
    } catch (error) {
      return Promise.reject(this.#failure(error, 'delete', key));
    }
    return result instanceof Promise ? this.#settle(result, 'delete', key) : RESOLVED;
  }

  /**
   * Entries whose token is in `range` (every entry without one). State and
   * arguments are checked at the first step, the signal before each step.
   */
  scan(range?: TokenRangeQuery, options?: StorageCallOptions): AsyncIterableIterator<StoredEntry> {
    const bad = checkRange(range);
    // Copied, so the hook sees the range that was checked.
    const clean = bad !== undefined || range === undefined ? WHOLE_RING : { start: range.start, end: range.end };
    const opts = options ?? NO_OPTIONS;
    return new StorageIterator<StoredEntry>(this.#host, 'scan', opts, bad, () => this._scan(clean, opts));
  }

  /** Stores a hint (replacing one with the same id). */
  putHint(hint: StoredHint, options?: StorageCallOptions): Promise<void> {
    const refused = this.#refusal('putHint', options) ?? checkHint(hint);
    if (refused !== undefined) return Promise.reject(refused);
    let result: MaybePromise<void>;
    try {
      result = this._putHint(hint, options ?? NO_OPTIONS);
    } catch (error) {
      return Promise.reject(this.#failure(error, 'putHint', hint.id));
    }
    return result instanceof Promise ? this.#settle(result, 'putHint', hint.id) : RESOLVED;
  }

  /** Hints (only those for `target` if given), oldest first. Checked like {@link AbstractStorage.scan}. */
  hints(target?: string, options?: StorageCallOptions): AsyncIterableIterator<StoredHint> {
    const bad = target === undefined ? undefined : checkName(target, 'target');
    const opts = options ?? NO_OPTIONS;
    return new StorageIterator<StoredHint>(this.#host, 'hints', opts, bad, () => this._hints(target, opts));
  }

  /** Removes the hint with this id (a missing id is not an error). */
  deleteHint(id: string, options?: StorageCallOptions): Promise<void> {
    const refused = this.#refusal('deleteHint', options) ?? checkName(id, 'id');
    if (refused !== undefined) return Promise.reject(refused);
    let result: MaybePromise<void>;
    try {
      result = this._deleteHint(id, options ?? NO_OPTIONS);
    } catch (error) {
      return Promise.reject(this.#failure(error, 'deleteHint', id));
    }
    return result instanceof Promise ? this.#settle(result, 'deleteHint', id) : RESOLVED;
  }

  /** The metadata value `name`, or undefined. */
  getMeta(name: string, options?: StorageCallOptions): Promise<Uint8Array | undefined> {
    const refused = this.#refusal('getMeta', options) ?? checkName(name, 'name');
    if (refused !== undefined) return Promise.reject(refused);
    let result: MaybePromise<Uint8Array | undefined>;
    try {
      result = this._getMeta(name, options ?? NO_OPTIONS);
    } catch (error) {
      return Promise.reject(this.#failure(error, 'getMeta', name));
    }
    return result instanceof Promise ? this.#settle(result, 'getMeta', name) : Promise.resolve(result);
  }

  /** Stores (replaces) the metadata value `name`. */
  setMeta(name: string, value: Uint8Array, options?: StorageCallOptions): Promise<void> {
    const refused = this.#refusal('setMeta', options) ?? checkName(name, 'name') ?? checkBytes(value, 'value');
    if (refused !== undefined) return Promise.reject(refused);
    let result: MaybePromise<void>;
    try {
      result = this._setMeta(name, value, options ?? NO_OPTIONS);
    } catch (error) {
      return Promise.reject(this.#failure(error, 'setMeta', name));
    }
    return result instanceof Promise ? this.#settle(result, 'setMeta', name) : RESOLVED;
  }

  // ---- hooks --------------------------------------------------------------

  /** Acquires the engine. Runs only from `'closed'`. Default: nothing to do. */
  protected _open(): MaybePromise<void> {
    return undefined;
  }

  /** Releases the engine; no hook call is in flight. Runs only from `'open'`. Default: nothing to do. */
  protected _close(): MaybePromise<void> {
    return undefined;
  }

  /** The record under `key` (non-empty), or undefined. The caller may keep and mutate what it gets. */
  protected abstract _get(key: Uint8Array, options: StorageCallOptions): MaybePromise<Uint8Array | undefined>;

  /** Stores the record; `key` (non-empty) and `record` are the caller's bytes: copy what you keep. */
  protected abstract _put(
    key: Uint8Array,
    token: number,
    record: Uint8Array,
    options: StorageCallOptions,
  ): MaybePromise<void>;

  /** Removes `key` (non-empty); a missing key is not an error. */
  protected abstract _delete(key: Uint8Array, options: StorageCallOptions): MaybePromise<void>;

  /**
   * Entries whose token is in `range` (`(start, end]`, wrapping when
   * `start >= end`; no range arrives as the whole ring `{ start: 0, end: 0 }`),
   * in ascending token order if `capabilities.orderedScan`. Called at the
   * iterator's first step; the iterable's `return()` is called when the
   * caller stops early or the storage closes.
   */
  protected abstract _scan(
    range: TokenRangeQuery,
    options: StorageCallOptions,
  ): MaybePromise<StorageIterable<StoredEntry>>;

  /** Stores the (well-formed) hint, replacing one with the same id. */
  protected abstract _putHint(hint: StoredHint, options: StorageCallOptions): MaybePromise<void>;

  /** Hints for `target` (every hint if undefined), oldest `createdAt` first, then insertion order. */
  protected abstract _hints(
    target: string | undefined,
    options: StorageCallOptions,
  ): MaybePromise<StorageIterable<StoredHint>>;

  /** Removes the hint `id` (non-empty); a missing id is not an error. */
  protected abstract _deleteHint(id: string, options: StorageCallOptions): MaybePromise<void>;

  /** The metadata value `name` (non-empty), or undefined. */
  protected abstract _getMeta(name: string, options: StorageCallOptions): MaybePromise<Uint8Array | undefined>;

  /** Stores the metadata value; `value` is the caller's bytes: copy what you keep. */
  protected abstract _setMeta(name: string, value: Uint8Array, options: StorageCallOptions): MaybePromise<void>;

  // ---- internals ----------------------------------------------------------

  /** The error a call must reject with before reaching its hook (options, then status), or undefined. */
  #refusal(operation: StorageOperation, options: StorageCallOptions | undefined): Error | undefined {
    if (options !== undefined) {
      if (typeof options !== 'object' || options === null) {
        return new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
      }
      const signal: unknown = options.signal;
      if (signal !== undefined) {
        // Duck-typed (no instanceof on the hot path): anything without a boolean `aborted` is refused.
        const aborted = typeof signal === 'object' && signal !== null ? (signal as AbortSignal).aborted : undefined;
        if (aborted === true) return new AbortError(`${operation} aborted`, { cause: (signal as AbortSignal).reason });
        if (aborted !== false) {
          return new TypeError(`Expected \`options.signal\` to be an AbortSignal, got ${describeValue(signal)}`);
        }
      }
    }
    if (this.#status !== 'open') {
      return new KvError(
        ErrorCodes.NOT_STARTED,
        `${this.constructor.name}: cannot ${operation}, the storage is not open (status: ${this.#status})`,
      );
    }
    return undefined;
  }

  /** A hook's error as a KvError: KvErrors pass, anything else becomes `KV_STORAGE_FAILURE`. */
  #failure(error: unknown, operation: StorageOperation, subject?: Uint8Array | string): KvError {
    if (error instanceof KvError) return error;
    const about =
      subject === undefined
        ? ''
        : typeof subject === 'string'
          ? ` of ${operation === 'getMeta' || operation === 'setMeta' ? 'meta' : 'hint'} ${JSON.stringify(subject)}`
          : ` of key ${describeKey(subject)}`;
    const reason = error instanceof Error ? error.message : describeValue(error);
    return new KvError(ErrorCodes.STORAGE_FAILURE, `${this.constructor.name}: ${operation}${about} failed: ${reason}`, {
      cause: error,
    });
  }

  /**
   * Follows an asynchronous hook, counting it as in flight, and wraps its
   * failure. One reaction on the hook's promise (not an `async` function,
   * which would add a promise and a turn to every call: this is the hot path
   * of every engine-backed get and put).
   */
  #settle<T>(pending: Promise<T>, operation: StorageOperation, subject: Uint8Array | string): Promise<T> {
    this.#inFlight++;
    return pending.then(
      (value) => {
        if (--this.#inFlight === 0 && this.#idle !== undefined) this.#idle();
        return value;
      },
      (error: unknown) => {
        if (--this.#inFlight === 0 && this.#idle !== undefined) this.#idle();
        throw this.#failure(error, operation, subject);
      },
    );
  }

  #request(target: 'open' | 'closed', after?: Promise<void>): Promise<void> {
    const run = target === 'open' ? this.#doOpen : this.#doClose;
    const promise = after === undefined ? run() : after.then(run, run);
    const transition: Transition = { target, promise };
    this.#transition = transition;
    const settled = (): void => {
      if (this.#transition === transition) this.#transition = undefined;
    };
    promise.then(settled, settled);
    return promise;
  }

  readonly #doOpen = async (): Promise<void> => {
    if (this.#status === 'open') return; // a failed close left it open
    this.#status = 'opening';
    try {
      await this._open();
    } catch (error) {
      this.#status = 'closed';
      throw this.#failure(error, 'open');
    }
    this.#status = 'open';
  };

  readonly #doClose = async (): Promise<void> => {
    if (this.#status === 'closed') return; // a failed open left it closed
    this.#status = 'closing';
    try {
      if (this.#iterators.size > 0) await Promise.all([...this.#iterators].map((iterator) => iterator.kill()));
      if (this.#inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.#idle = resolve;
        });
        this.#idle = undefined;
      }
      await this._close();
    } catch (error) {
      this.#status = 'open';
      throw this.#failure(error, 'close');
    }
    this.#status = 'closed';
  };
}

