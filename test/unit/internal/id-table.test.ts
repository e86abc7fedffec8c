import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { IdTable } from '../../../src/internal/id-table.js';

type Op = { kind: 'set' | 'get' | 'delete'; id: number; n: number };

// A few small ids (they repeat), and some near 2^53 (both 32-bit halves matter).
const idArb = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: Number.MAX_SAFE_INTEGER - 40, max: Number.MAX_SAFE_INTEGER }));
const opArb: fc.Arbitrary<Op> = fc.record({ kind: fc.constantFrom('set', 'set', 'set', 'get', 'delete'), id: idArb, n: fc.nat() });

/** Runs `ops` on an IdTable and on a Map model, comparing every answer and, at the end, every id. */
function runAgainstModel(ops: Op[], hash?: (id: number) => number): void {
  const table = new IdTable<{ n: number }>(hash);
  const model = new Map<number, { n: number }>();
  for (const op of ops) {
    if (op.kind === 'set') {
      const value = { n: op.n };
      table.set(op.id, value);
      model.set(op.id, value);
    } else if (op.kind === 'get') {
      expect(table.get(op.id)).toBe(model.get(op.id));
      expect(table.has(op.id)).toBe(model.has(op.id));
    } else {
      expect(table.delete(op.id)).toBe(model.get(op.id));
      model.delete(op.id);
    }
    expect(table.size).toBe(model.size);
  }
  for (const [id, value] of model) expect(table.get(id)).toBe(value);
  expect(new Set(table.values())).toEqual(new Set(model.values()));
}

describe('IdTable (requests in flight by id)', () => {
  it('agrees with a Map under random sets, gets and deletes', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => runAgainstModel(ops)),
      { numRuns: 300 },
    );
  });

  it('agrees with a Map when most ids share a home slot (long runs, backward-shift deletes across the wrap)', () => {
    // Four hashes for every id: the last slot, the one before, the first and the middle,
    // at every capacity (the top bits pick the slot).
    const colliding = (id: number): number => [0xffffffff, 0xfffffffe, 0, 0x80000000][id % 4]!;
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => runAgainstModel(ops, colliding)),
      { numRuns: 300 },
    );
  });

  it('a delete keeps an id that wrapped past the last slot where its lookup finds it', () => {
    // 16 slots: a (home 14) at 14, b (home 15) at 15, c (home 15) wrapped to 0.
    const homes = new Map([[1, 14], [2, 15], [3, 15]]);
    const table = new IdTable<string>((id) => (homes.get(id)! << 28) >>> 0);
    table.set(1, 'a');
    table.set(2, 'b');
    table.set(3, 'c');
    expect(table.delete(1)).toBe('a');
    // c must not move into a's slot (14): its probe starts at 15.
    expect(table.get(3)).toBe('c');
    expect(table.get(2)).toBe('b');
    expect(table.delete(2)).toBe('b');
    expect(table.get(3)).toBe('c');
    expect(table.size).toBe(1);
  });

  it('grows past its first capacity, shrinks back when emptied, and keeps every id throughout', () => {
    const table = new IdTable<number>();
    expect(table.capacity).toBe(16);
    for (let id = 1; id <= 5000; id++) table.set(id, id * 2);
    expect(table.size).toBe(5000);
    expect(table.capacity).toBeGreaterThanOrEqual(10_000);
    expect(table.capacity).toBeLessThanOrEqual(40_000);
    for (let id = 1; id <= 5000; id++) expect(table.get(id)).toBe(id * 2);
    for (let id = 1; id <= 4990; id++) expect(table.delete(id)).toBe(id * 2);
    expect(table.size).toBe(10);
    expect(table.capacity).toBe(256);
    for (let id = 4991; id <= 5000; id++) expect(table.get(id)).toBe(id * 2);
    expect(table.get(1)).toBeUndefined();
    expect(table.delete(1)).toBeUndefined();
  });

  it('keeps its capacity while its size swings between 0 and 100 (no resize per swing)', () => {
    const table = new IdTable<number>();
    let id = 0;
    for (let k = 0; k < 100; k++) table.set(id++, k);
    for (let k = 0; k < 100; k++) table.delete(id - 100 + k);
    const capacity = table.capacity;
    expect(capacity).toBe(256);
    for (let swing = 0; swing < 50; swing++) {
      const first = id;
      for (let k = 0; k < 100; k++) table.set(id++, k);
      expect(table.capacity).toBe(capacity);
      for (let k = first; k < id; k++) table.delete(k);
      expect(table.size).toBe(0);
      expect(table.capacity).toBe(capacity);
    }
  });

  it('a set of a present id replaces its value without adding one', () => {
    const table = new IdTable<string>();
    table.set(7, 'x');
    table.set(7, 'y');
    expect(table.size).toBe(1);
    expect(table.get(7)).toBe('y');
    expect(table.values()).toEqual(['y']);
  });

  it('refuses ids that are not non-negative safe integers', () => {
    const table = new IdTable<string>();
    for (const bad of [-1, 1.5, Number.NaN, Infinity, Number.MAX_SAFE_INTEGER + 1]) {
      expect(() => table.set(bad, 'x')).toThrow(RangeError);
    }
    expect(table.size).toBe(0);
  });
});
