import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KeyIndex, keyHash, type KeyIndexTuning } from '../../../src/storage/key-index.js';

interface TestRow {
  readonly slab: Uint8Array;
  readonly offset: number;
  readonly keyLength: number;
  readonly n: number;
}

const latin1 = (key: Uint8Array): string => String.fromCharCode(...key);

/** A row holding a copy of `key` at an offset inside a larger array (as a storage's arena would). */
function rowOf(key: Uint8Array, n: number): TestRow {
  const slab = new Uint8Array(key.length + 7).fill(0xee);
  slab.set(key, 3);
  return { slab, offset: 3, keyLength: key.length, n };
}

/**
 * A KeyIndex over a table of rows (a row's id is its place in the table,
 * as a storage's row columns would have it): `add` gives a row its id, `row`
 * reads one back by id (undefined for -1, "no row").
 */
function table(tuning?: KeyIndexTuning): { index: KeyIndex; add: (row: TestRow) => number; row: (id: number) => TestRow | undefined } {
  const rows: TestRow[] = [];
  const index = new KeyIndex((id, key) => {
    const r = rows[id]!;
    if (r.keyLength !== key.length) return false;
    for (let i = 0; i < key.length; i++) if (r.slab[r.offset + i] !== key[i]) return false;
    return true;
  }, tuning);
  return {
    index,
    add: (row) => rows.push(row) - 1,
    row: (id) => (id < 0 ? undefined : rows[id]),
  };
}

type Op = { kind: 'set' | 'get' | 'delete'; key: Uint8Array; n: number };

const keyArb = fc.uint8Array({ minLength: 1, maxLength: 6, max: 7 }); // few distinct bytes: keys repeat
const opArb: fc.Arbitrary<Op> = fc.record({ kind: fc.constantFrom('set', 'set', 'get', 'delete'), key: keyArb, n: fc.nat() });

/** Runs `ops` on a KeyIndex and on a Map model, comparing every answer and, at the end, every key. */
function runAgainstModel(ops: Op[], hashOf: (key: Uint8Array) => number, tuning?: KeyIndexTuning): { resizingSeen: boolean } {
  const { index, add, row: rowAt } = table(tuning);
  let resizingSeen = false;
  const model = new Map<string, TestRow>();
  for (const op of ops) {
    const id = latin1(op.key);
    const hash = hashOf(op.key);
    if (op.kind === 'set') {
      const row = rowOf(op.key, op.n);
      index.set(add(row), op.key, hash);
      model.set(id, row);
    } else if (op.kind === 'get') {
      expect(rowAt(index.get(op.key, hash))).toBe(model.get(id));
    } else {
      expect(rowAt(index.delete(op.key, hash))).toBe(model.get(id));
      model.delete(id);
    }
    expect(index.size).toBe(model.size);
    resizingSeen ||= index.resizing;
  }
  for (const [id, row] of model) {
    const key = Uint8Array.from(id, (c) => c.charCodeAt(0));
    expect(rowAt(index.get(key, hashOf(key)))).toBe(row);
  }
  return { resizingSeen };
}

describe('KeyIndex (the memory storage key table)', () => {
  it('agrees with a Map under random sets, gets and deletes (real hash)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        runAgainstModel(ops, keyHash);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with a Map when most keys share a hash (long probe runs, backward-shift deletes across the wrap)', () => {
    // Five hash values for every key: long runs, deletes in the middle of runs,
    // and runs that wrap past the last slot (-1 and -2 land in the last two slots
    // at every capacity).
    const colliding = (key: Uint8Array): number => [-1, -2, 15, 30, 7][key[0]! % 5]!;
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        runAgainstModel(ops, colliding);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with a Map while resizes move entries a few per write (every resize incremental; real and colliding hashes)', () => {
    // Small key alphabet: sets, overwrites and deletes of keys still in the
    // old table, in the new one, and moved; grows started before the last
    // finished (one slot per write cannot keep up: the next resize finishes it).
    const manyKeys = fc.uint8Array({ minLength: 1, maxLength: 3, max: 15 });
    const op: fc.Arbitrary<Op> = fc.record({ kind: fc.constantFrom('set', 'set', 'get', 'delete'), key: manyKeys, n: fc.nat() });
    const colliding = (key: Uint8Array): number => [-1, -2, 15, 30, 7, 31, 63][key[0]! % 7]!;
    let sawResizing = 0;
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 100, maxLength: 600 }),
        fc.constantFrom(1, 2, 3, 16),
        fc.boolean(),
        (ops, movePerWrite, collide) => {
          const { resizingSeen } = runAgainstModel(ops, collide ? colliding : keyHash, { incrementalFrom: 16, movePerWrite });
          if (resizingSeen) sawResizing++;
        },
      ),
      { numRuns: 400 },
    );
    expect(sawResizing).toBeGreaterThan(100); // not vacuous
  });

  it('an incremental grow ends within the writes that follow, and every key stays found throughout', () => {
    const { index, add, row } = table({ incrementalFrom: 1024, movePerWrite: 16 });
    const keys = Array.from({ length: 3000 }, (_, i) => new TextEncoder().encode(`key:${i}`));
    const resizes: { from: number; writes: number }[] = [];
    keys.forEach((key, n) => {
      const before = index.resizing;
      index.set(add(rowOf(key, n)), key, keyHash(key));
      if (index.resizing && !before) resizes.push({ from: n, writes: 0 });
      else if (before) resizes.at(-1)!.writes++;
      // Every key so far, at every step (old table, new table, or moved).
      if (index.resizing && n % 37 === 0) for (let k = 0; k <= n; k++) expect(row(index.get(keys[k]!, keyHash(keys[k]!)))?.n).toBe(k);
    });
    // Grows start past load 1/2 (1024 slots at the 513th key, 2048 at the 1025th, 4096 at the 2049th)
    // and end after old slots / 16 writes; smaller tables grew at once.
    expect(resizes).toEqual([
      { from: 512, writes: 1024 / 16 },
      { from: 1024, writes: 2048 / 16 },
      { from: 2048, writes: 4096 / 16 },
    ]);
    expect(index.resizing).toBe(false);
    expect(index.capacity).toBe(8192);
    keys.forEach((key, n) => expect(row(index.get(key, keyHash(key)))?.n).toBe(n));
  });

  it('a delete keeps an entry that wrapped past the last slot where its lookup finds it', () => {
    // Slots of the first capacity (16): a (home 14) at 14, b (home 15) at 15, c (home 15) wrapped to 0.
    const { index, add, row } = table();
    const [a, b, c] = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)];
    index.set(add(rowOf(a, 1)), a, -2);
    index.set(add(rowOf(b, 2)), b, -1);
    index.set(add(rowOf(c, 3)), c, -1);
    expect(row(index.delete(a, -2))?.n).toBe(1);
    // c must not move into a's slot (14): its probe starts at 15.
    expect(row(index.get(c, -1))?.n).toBe(3);
    expect(row(index.get(b, -1))?.n).toBe(2);
    expect(row(index.delete(b, -1))?.n).toBe(2);
    // Now c may move back to its home slot.
    expect(row(index.get(c, -1))?.n).toBe(3);
    expect(index.size).toBe(1);
  });

  it('grows past its first capacity and keeps every key', () => {
    const { index, add, row } = table();
    const keys = Array.from({ length: 5000 }, (_, i) => new TextEncoder().encode(`key:${i}`));
    keys.forEach((key, n) => index.set(add(rowOf(key, n)), key, keyHash(key)));
    expect(index.size).toBe(5000);
    keys.forEach((key, n) => expect(row(index.get(key, keyHash(key)))?.n).toBe(n));
    for (let i = 0; i < 5000; i += 2) expect(row(index.delete(keys[i]!, keyHash(keys[i]!)))?.n).toBe(i);
    keys.forEach((key, n) => expect(row(index.get(key, keyHash(key)))?.n).toBe(n % 2 === 0 ? undefined : n));
    expect(index.size).toBe(2500);
    expect(index.capacity).toBe(16384); // 5000 keys passed half of 8192; 2500 are more than an eighth
    // Most keys gone: the slots shrink with them, and the rest are still found.
    for (let i = 1; i < 4990; i += 2) index.delete(keys[i]!, keyHash(keys[i]!));
    expect(index.size).toBe(5);
    expect(index.capacity).toBeLessThanOrEqual(64);
    for (let i = 4991; i < 5000; i += 2) expect(row(index.get(keys[i]!, keyHash(keys[i]!)))?.n).toBe(i);
    expect(index.get(keys[1]!, keyHash(keys[1]!))).toBe(-1);
  });

  it('keyHash is never 0 (0 marks an empty slot) and differs for keys that differ in one byte', () => {
    expect(keyHash(new Uint8Array(0))).not.toBe(0);
    expect(keyHash(Uint8Array.of(1))).not.toBe(keyHash(Uint8Array.of(2)));
    expect(keyHash(Uint8Array.of(1, 2))).not.toBe(keyHash(Uint8Array.of(2, 1)));
  });
});
