/**
 * A binary min-heap ordered by `before` (a strict "comes first" test), for
 * the timer tables that keep one clock timer for many deadlines
 * (`PendingRequests`, `DeadlineQueue`). Entries that no longer count are
 * left in place by their owners and dropped with {@link MinHeap.retain}
 * (or as they reach the top): removing one from the middle would cost a
 * search per entry.
 */
export class MinHeap<T> {
  #items: T[] = [];
  readonly #before: (a: T, b: T) => boolean;

  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  /** Entries held. */
  get size(): number {
    return this.#items.length;
  }

  /** The first entry, or undefined when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const items = this.#items;
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as T;
      if (!this.#before(item, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }

  /** Removes and returns the first entry (undefined when empty). */
  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0) this.#siftDown(last as T, 0);
    return top;
  }

  /** Keeps only the entries `keep` accepts, in heap order again (O(n)). */
  retain(keep: (item: T) => boolean): void {
    const old = this.#items;
    const items = old.filter(keep);
    // A dropped array left as it was would keep what it held alive in minor GCs if it is in the old generation.
    old.fill(undefined as T);
    this.#items = items;
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.#siftDown(items[i] as T, i);
  }

  /** Drops every entry. */
  clear(): void {
    this.#items.fill(undefined as T);
    this.#items = [];
  }

  /** Every entry, in no particular order (for owners that must visit them all). */
  items(): readonly T[] {
    return this.#items;
  }

  #siftDown(item: T, from: number): void {
    const items = this.#items;
    const n = items.length;
    let i = from;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && this.#before(items[right] as T, items[child] as T)) child = right;
      const c = items[child] as T;
      if (!this.#before(c, item)) break;
      items[i] = c;
      i = child;
    }
    items[i] = item;
  }
}
