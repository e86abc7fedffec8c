/**
 * Serialises async work per key: `run(key, fn)` starts `fn` once every earlier
 * call for the same key has settled (at once, synchronously, when none is
 * queued), in call order. Keys with no queued work hold no memory.
 *
 * The uncontended path (the common one) costs one map entry and one
 * reaction on `fn`'s promise: no promise of its own.
 */
export class KeyLock {
  /** Per held key: the waiters, in order (null while held with nobody waiting). */
  readonly #queues = new Map<string, (() => void)[] | null>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const queue = this.#queues.get(key);
    if (queue === undefined) {
      this.#queues.set(key, null);
      return this.#start(key, fn);
    }
    return new Promise<T>((resolve, reject) => {
      const waiter = (): void => {
        this.#start(key, fn).then(resolve, reject);
      };
      if (queue === null) this.#queues.set(key, [waiter]);
      else queue.push(waiter);
    });
  }

  /**
   * {@link KeyLock.run} for work that may finish synchronously: when the key
   * is free, `fn` runs at once and, if it returns a value (or throws)
   * rather than a promise, the key is free again before `runNow` returns,
   * with no promise made; when the key is held, `fn` waits its turn and a
   * promise is returned, as with `run`.
   */
  runNow<T>(key: string, fn: () => T | Promise<T>): T | Promise<T> {
    if (this.#queues.has(key)) return this.run(key, () => Promise.resolve(fn()));
    this.#queues.set(key, null);
    let result: T | Promise<T>;
    try {
      result = fn();
    } catch (err) {
      this.#release(key);
      throw err;
    }
    if (result instanceof Promise) {
      const release = (): void => this.#release(key);
      result.then(release, release);
      return result;
    }
    this.#release(key);
    return result;
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
