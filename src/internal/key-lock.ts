import { bytesKey, isLatin1Of } from './bytes.js';

/** Calls `fn` (runNow through runNowWith). */
function callIt<T>(fn: () => T | Promise<T>): T | Promise<T> {
  return fn();
}

/**
 * Serialises async work per key: `run(key, fn)` starts `fn` once every earlier
 * call for the same key has settled (at once, synchronously, when none is
 * queued), in call order. Keys with no queued work hold no memory.
 *
 * The uncontended path (the common one) costs one map entry and one
 * reaction on `fn`'s promise: no promise of its own; with `runNow`, work
 * that stays synchronous costs neither.
 */
export class KeyLock {
  /** Per held key: the waiters, in order (null while held with nobody waiting). */
  readonly #queues = new Map<string, (() => void)[] | null>();
  /** Keys whose runNow work is running synchronously right now (held without a map entry; nested calls stack). */
  readonly #syncKeys: (string | Uint8Array)[] = [];

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const queue = this.#queues.get(key);
    if (queue === undefined && !this.#heldNow(key)) {
      this.#queues.set(key, null);
      return this.#start(key, fn);
    }
    return new Promise<T>((resolve, reject) => {
      const waiter = (): void => {
        this.#start(key, fn).then(resolve, reject);
      };
      if (queue === null || queue === undefined) this.#queues.set(key, [waiter]);
      else queue.push(waiter);
    });
  }

  /**
   * {@link KeyLock.run} for work that may finish synchronously: when the key
   * is free, `fn` runs at once and, if it returns a value (or throws)
   * rather than a promise, the key is free again before `runNow` returns,
   * with no promise made; when the key is held, `fn` waits its turn and a
   * promise is returned, as with `run`.
   *
   * `key` may be given as bytes (a latin1 string of them is the same key):
   * while no key is held, which is the common case, no string is made. The
   * bytes must not change until `runNow` returns (its string is taken then
   * if `fn` went asynchronous).
   */
  runNow<T>(key: string | Uint8Array, fn: () => T | Promise<T>): T | Promise<T> {
    return this.runNowWith(key, callIt<T>, fn, undefined, undefined, undefined);
  }

  /**
   * {@link KeyLock.runNow} for `fn(a, b, c, inTurn)`: a function made once
   * (a caller's field) with what differs per call as arguments, instead of
   * a closure and its captured scope allocated per call. `inTurn` is for
   * what holds only in the caller's turn (a reading of the clock): `fn`
   * gets it when it runs within this call, and undefined when it waits its
   * turn and runs later.
   */
  runNowWith<A, B, C, D, T>(
    key: string | Uint8Array,
    fn: (a: A, b: B, c: C, inTurn: D | undefined) => T | Promise<T>,
    a: A,
    b: B,
    c: C,
    inTurn: D | undefined,
  ): T | Promise<T> {
    if (this.#queues.size > 0 || this.#syncKeys.length > 0) {
      const id = typeof key === 'string' ? key : bytesKey(key);
      if (this.#queues.has(id) || this.#heldNow(id)) return this.#later(id, fn, a, b, c);
      key = id;
    }
    // While `fn` runs synchronously nothing else can run, so the key needs no
    // entry (a map entry per call was a set, a delete and rehashing garbage):
    // only a re-entrant call for the same key (#syncKeys) queues, and the key
    // is entered once `fn` has returned a promise.
    this.#syncKeys.push(key);
    let result: T | Promise<T>;
    try {
      result = fn(a, b, c, inTurn);
    } catch (err) {
      this.#syncKeys.pop();
      this.#releaseIfQueued(key);
      throw err;
    }
    this.#syncKeys.pop();
    if (result instanceof Promise) {
      // Waiters queued re-entrantly are behind `fn`, as with run().
      const id = typeof key === 'string' ? key : bytesKey(key);
      if (!this.#queues.has(id)) this.#queues.set(id, null);
      this.#releaseAfter(id, result);
      return result;
    }
    this.#releaseIfQueued(key);
    return result;
  }

  // Closures only in methods of their own: one in runNowWith() would allocate its scope on every call.

  /** {@link KeyLock.runNowWith} for a key that is held: `fn` waits its turn (and gets no `inTurn`). */
  #later<A, B, C, D, T>(id: string, fn: (a: A, b: B, c: C, inTurn: D | undefined) => T | Promise<T>, a: A, b: B, c: C): Promise<T> {
    return this.run(id, () => Promise.resolve(fn(a, b, c, undefined)));
  }

  /** Lets the key go once `done` settles. */
  #releaseAfter(id: string, done: Promise<unknown>): void {
    const release = (): void => this.#release(id);
    done.then(release, release);
  }

  /** After synchronous work: lets waiters that queued re-entrantly behind it go. */
  #releaseIfQueued(key: string | Uint8Array): void {
    if (this.#queues.size === 0) return;
    const id = typeof key === 'string' ? key : bytesKey(key);
    if (this.#queues.has(id)) this.#release(id);
  }

  #heldNow(id: string): boolean {
    const keys = this.#syncKeys;
    for (let i = 0; i < keys.length; i++) {
      const held = keys[i]!;
      if (typeof held === 'string' ? held === id : isLatin1Of(id, held)) return true;
    }
    return false;
  }

  /** Number of keys with work queued or running. */
  get size(): number {
    return this.#queues.size;
  }

  #start<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let done: Promise<T>;
    try {
      done = fn();
    } catch (err) {
      done = Promise.reject(err);
    }
    const release = (): void => this.#release(key);
    done.then(release, release);
    return done;
  }

  #release(key: string): void {
    const queue = this.#queues.get(key);
    if (queue === null || queue === undefined || queue.length === 0) {
      this.#queues.delete(key);
      return;
    }
    const next = queue.shift()!;
    if (queue.length === 0) this.#queues.set(key, null);
    next();
  }
}
