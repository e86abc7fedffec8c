const noop = (): void => {};

/**
 * Serialises async work per key: `run(key, fn)` starts `fn` once every earlier
 * call for the same key has settled (at once when none is queued). Keys with
 * no queued work hold no memory.
 */
export class KeyLock {
  readonly #tails = new Map<string, Promise<void>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    const current = previous ? previous.then(fn) : fn();
    const tail = current.then(noop, noop);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return current;
  }

  /** Number of keys with work queued or running. */
  get size(): number {
    return this.#tails.size;
  }
}
