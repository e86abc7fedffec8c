import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../../src/internal/min-heap.js';

describe('MinHeap', () => {
  it('property: pops in `before` order whatever the pushes, and retain keeps exactly the accepted entries in order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1000, max: 1000 }), { maxLength: 300 }), fc.integer({ min: 2, max: 5 }), (xs, k) => {
        const heap = new MinHeap<number>((a, b) => a < b);
        for (const x of xs) heap.push(x);
        expect(heap.size).toBe(xs.length);
        heap.retain((x) => x % k !== 0);
        const kept = xs.filter((x) => x % k !== 0).sort((a, b) => a - b);
        expect(heap.peek()).toBe(kept[0]);
        const out: number[] = [];
        for (let x = heap.pop(); x !== undefined; x = heap.pop()) out.push(x);
        expect(out).toEqual(kept);
        expect(heap.size).toBe(0);
      }),
    );
  });

  it('breaks ties by the comparator only (stable order needs a sequence number in `before`)', () => {
    const heap = new MinHeap<{ at: number; seq: number }>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));
    [3, 1, 3, 1, 2].forEach((at, seq) => heap.push({ at, seq }));
    const order: number[] = [];
    for (let e = heap.pop(); e !== undefined; e = heap.pop()) order.push(e.seq);
    expect(order).toEqual([1, 3, 4, 0, 2]);
    heap.push({ at: 1, seq: 9 });
    heap.clear();
    expect(heap.pop()).toBeUndefined();
    expect(heap.items()).toEqual([]);
  });
});
