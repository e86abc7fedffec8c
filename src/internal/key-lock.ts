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
