import { afterEach, describe, expect, it, vi } from 'vitest';
import { SiblingSet, VectorClock, decodeSiblingSet, encodeSiblingSet } from '../../../src/versioning/index.js';

/**
 * The per-write cost must not be quadratic in the number of siblings. Not
 * timed: it counts the calls SiblingSet makes into VectorClock (every
 * "does y obsolete x" test is one or more of them) and checks that 8x the
 * siblings costs about 8x the calls (the old all-pairs merge cost ~64x).
 */
const METHODS = ['covers', 'get', 'merge', 'entries', 'sortedEntriesView', 'descends', 'compare', 'equals'] as const;

function countCalls<T>(fn: () => T): number {
  const spies = METHODS.map((m) => vi.spyOn(VectorClock.prototype, m));
  try {
    fn();
    return spies.reduce((sum, s) => sum + s.mock.calls.length, 0);
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

const value = new Uint8Array(16).fill(1);

/** `n` concurrent siblings as blind writes through `actors` coordinators, after one common ancestor. */
function siblings(n: number, actors: number): SiblingSet<Uint8Array> {
  let set = SiblingSet.empty<Uint8Array>().write('origin~1', VectorClock.EMPTY, { value, timestamp: 1 }).set;
  const ancestor = set.clock();
  for (let i = 0; i < n; i++) {
    // Half of the writers read the ancestor (so it is superseded), half write blind.
    set = set.write(`node-${i % actors}~1`, i % 2 === 0 ? ancestor : VectorClock.EMPTY, { value, timestamp: i + 2 }).set;
  }
  return set;
}

/** What a replica does per coordinated write: decode the stored record, write, encode. */
function putEquivalent(stored: Uint8Array): Uint8Array {
  const set = decodeSiblingSet(stored);
  return encodeSiblingSet(set.write('node-0~1', VectorClock.EMPTY, { value, timestamp: 1e9 }).set);
}

describe('SiblingSet cost is linear in the number of siblings', () => {
  for (const actors of [1, 3]) {
    it(`a put (decode + write + encode) with ${actors} writing actor(s)`, () => {
      const small = encodeSiblingSet(siblings(50, actors));
      const large = encodeSiblingSet(siblings(400, actors));
      expect(decodeSiblingSet(large).size).toBe(400); // the ancestor is superseded
      const ratio = countCalls(() => putEquivalent(large)) / countCalls(() => putEquivalent(small));
      expect(ratio).toBeGreaterThan(4); // the count does measure per-sibling work...
      expect(ratio).toBeLessThan(10); // ...and it grows linearly (quadratic would be ~64)
    });

    it(`merge, descends and of() with ${actors} writing actor(s)`, () => {
      const ops = (set: SiblingSet<Uint8Array>) => {
        const half = SiblingSet.of(set.versions.filter((_, i) => i % 2 === 0));
        const rest = SiblingSet.of(set.versions.filter((_, i) => i % 2 === 1));
        const merged = half.merge(rest);
        expect(merged.size).toBe(set.size);
        expect(merged.descends(set) && set.descends(half)).toBe(true);
      };
      const [small, large] = [siblings(50, actors), siblings(400, actors)];
      const ratio = countCalls(() => ops(large)) / countCalls(() => ops(small));
      expect(ratio).toBeGreaterThan(4);
      expect(ratio).toBeLessThan(10);
    });
  }
});
