import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MerkleTree,
  exchangeLocally,
  type ExchangeSide,
  type MerkleEntry,
  type MerkleTreeOptions,
} from '../../src/antientropy/index.js';
import { tokenInRange } from '../../src/storage/index.js';

const TWO_32 = 2 ** 32;
const RUNS = { numRuns: 150 };

interface Range {
  start: number;
  end: number;
}
/** A replica's records: key (latin1 string of its bytes) -> record bytes (a tombstone is a record too). */
type Replica = Map<string, Uint8Array>;

const token = fc.integer({ min: 0, max: TWO_32 - 1 });
// Narrow, wide, wrapping and whole-ring ranges.
const range: fc.Arbitrary<Range> = fc.oneof(
  fc.tuple(token, fc.integer({ min: 1, max: 64 })).map(([start, w]) => ({ start, end: (start + w) % TWO_32 })),
  fc.tuple(token, token).map(([start, end]) => ({ start, end })),
  fc.constant({ start: 0xfffffff0, end: 0x10 }),
  token.map((t) => ({ start: t, end: t })),
);
const shape: fc.Arbitrary<MerkleTreeOptions> = fc.record({
  fanout: fc.constantFrom(2, 4, 16),
  depth: fc.integer({ min: 1, max: 3 }),
});

function width({ start, end }: Range): number {
  return (end - start + TWO_32) % TWO_32 || TWO_32;
}
/** A token inside the range, from a fraction. */
function tokenAt(r: Range, f: number): number {
  return (r.start + 1 + Math.floor(f * width(r))) % TWO_32;
}
const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const record = (tag: string, tombstone: boolean): Uint8Array => bytes(`${tombstone ? 'T' : 'V'}:${tag}`);

/** Two replicas of one range: a shared key set, each key present/absent/different on either side. */
const scenario = fc
  .tuple(range, shape)
  .chain(([r, opts]) =>
    fc.tuple(
      fc.constant(r),
      fc.constant(opts),
      fc.uniqueArray(
        fc.record({
          key: fc.string({ minLength: 1, maxLength: 6, unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }),
          at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          a: fc.option(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.boolean()), { nil: undefined }),
          b: fc.option(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.boolean()), { nil: undefined }),
        }),
        { selector: (e) => e.key, maxLength: 60 },
      ),
    ),
  )
  .map(([r, opts, rows]) => {
    const tokens = new Map<string, number>();
    const a: Replica = new Map();
    const b: Replica = new Map();
    for (const row of rows) {
      tokens.set(row.key, tokenAt(r, row.at));
      if (row.a) a.set(row.key, record(String(row.a[0]), row.a[1]));
      if (row.b) b.set(row.key, record(String(row.b[0]), row.b[1]));
    }
    return { range: r, options: opts, tokens, a, b };
  });

function entriesOf(replica: Replica, tokens: Map<string, number>): MerkleEntry[] {
  return [...replica].map(([k, digest]) => ({ key: bytes(k), token: tokens.get(k)!, digest }));
}

function side(tree: MerkleTree, replica: Replica, tokens: Map<string, number>): ExchangeSide {
  const all = entriesOf(replica, tokens);
  // What a storage scan of the segment's token range returns.
  return {
    tree,
    entries: (segment) => {
      const r = tree.segmentRange(segment);
      return r === undefined ? [] : all.filter((e) => tokenInRange(e.token, r));
    },
  };
}

/** Keys of `from` whose (key, record) pair `to` lacks. */
function expectedSends(from: Replica, to: Replica): string[] {
  const out: string[] = [];
  for (const [k, rec] of from) {
    const other = to.get(k);
    if (other === undefined || Buffer.compare(other, rec) !== 0) out.push(k);
  }
  return out.sort();
}
const latin1 = (keys: readonly Uint8Array[]): string[] => keys.map((k) => String.fromCharCode(...k)).sort();

describe('Merkle properties', () => {
  it('the exchange sends exactly the symmetric difference of (key, record) pairs, each key once', () => {
    fc.assert(
      fc.property(scenario, ({ range: r, options, tokens, a, b }) => {
        const ta = MerkleTree.fromEntries(r, entriesOf(a, tokens), options);
        const tb = new MerkleTree(r, options);
        for (const e of entriesOf(b, tokens)) tb.insert(e.key, e.token, e.digest);
        const out = exchangeLocally(side(ta, a, tokens), side(tb, b, tokens));
        expect(latin1(out.initiatorSends)).toEqual(expectedSends(a, b));
        expect(latin1(out.responderSends)).toEqual(expectedSends(b, a));
        const same = expectedSends(a, b).length === 0 && expectedSends(b, a).length === 0;
        expect(ta.root === tb.root).toBe(same);
        expect(out.messages.at(-1)!.type).toBe(same ? 'ae.done' : 'ae.request');
      }),
      RUNS,
    );
  });

  it('identical replicas: equal trees, two messages, nothing exchanged', () => {
    fc.assert(
      fc.property(scenario, ({ range: r, options, tokens, a }) => {
        const ta = MerkleTree.fromEntries(r, entriesOf(a, tokens), options);
        const tb = MerkleTree.fromEntries(r, entriesOf(a, tokens).reverse(), options);
        expect(ta.equals(tb)).toBe(true);
        const out = exchangeLocally(side(ta, a, tokens), side(tb, a, tokens));
        expect(out.messages.map((m) => m.type)).toEqual(['ae.start', 'ae.done']);
        expect(out.initiatorSends).toHaveLength(0);
        expect(out.responderSends).toHaveLength(0);
      }),
      RUNS,
    );
  });

  it('is symmetric: swapping initiator and responder swaps what each sends', () => {
    fc.assert(
      fc.property(scenario, ({ range: r, options, tokens, a, b }) => {
        const ta = MerkleTree.fromEntries(r, entriesOf(a, tokens), options);
        const tb = MerkleTree.fromEntries(r, entriesOf(b, tokens), options);
        const ab = exchangeLocally(side(ta, a, tokens), side(tb, b, tokens));
        const ba = exchangeLocally(side(tb, b, tokens), side(ta, a, tokens));
        expect(latin1(ba.initiatorSends)).toEqual(latin1(ab.responderSends));
        expect(latin1(ba.responderSends)).toEqual(latin1(ab.initiatorSends));
        expect(ba.differingSegments).toEqual(ab.differingSegments);
      }),
      RUNS,
    );
  });

  it('incremental insert/update/remove equals a rebuild from the final records', () => {
    const op = fc.record({
      key: fc.integer({ min: 0, max: 15 }),
      value: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
      tombstone: fc.boolean(),
    });
    fc.assert(
      fc.property(range, shape, fc.array(op, { maxLength: 80 }), fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 16, maxLength: 16 }), (r, options, ops, at) => {
        const tokens = new Map<string, number>();
        for (let k = 0; k < 16; k++) tokens.set(`k${k}`, tokenAt(r, at[k]!));
        const model: Replica = new Map();
        const tree = new MerkleTree(r, options);
        for (const { key, value, tombstone } of ops) {
          const k = `k${key}`;
          const before = model.get(k);
          const t = tokens.get(k)!;
          if (value === undefined) {
            if (before) tree.remove(bytes(k), t, before);
            model.delete(k);
          } else {
            const rec = record(String(value), tombstone);
            if (before) tree.update(bytes(k), t, before, rec);
            else tree.insert(bytes(k), t, rec);
            model.set(k, rec);
          }
        }
        const rebuilt = MerkleTree.fromEntries(r, entriesOf(model, tokens), options);
        expect(tree.equals(rebuilt)).toBe(true);
        expect(tree.size).toBe(model.size);
      }),
      RUNS,
    );
  });

  it('segments tile the range in order: a token lies in segmentRange(s) exactly when segmentOf(token) is s', () => {
    fc.assert(
      fc.property(range, shape, fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 20 }), (r, options, fs) => {
        const tree = new MerkleTree(r, options);
        const ts = fs.map((f) => tokenAt(r, f));
        for (const t of ts) {
          const s = tree.segmentOf(t);
          expect(tokenInRange(t, tree.segmentRange(s)!)).toBe(true);
          for (const other of [s - 1, s + 1]) {
            if (other < 0 || other >= tree.segments) continue;
            const or = tree.segmentRange(other);
            if (or) expect(tokenInRange(t, or)).toBe(false);
          }
        }
        // Ordered along the range: a later offset never has an earlier segment.
        const sorted = [...fs].sort((x, y) => x - y).map((f) => tree.segmentOf(tokenAt(r, f)));
        for (let i = 1; i < sorted.length; i++) expect(sorted[i]!).toBeGreaterThanOrEqual(sorted[i - 1]!);
      }),
      RUNS,
    );
  });
});
