import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import murmur from 'murmurhash3js-revisited';
import { Ring, hashKey, type NodeSpec } from '../../src/ring/index.js';
// Internal module, tested directly against the reference implementation.
import { murmurAscii, murmurBytes } from '../../src/ring/murmur.js';

// Small token counts keep every run fast; explicit tokens exercise collisions too.
const token = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const smallTokens = fc.uniqueArray(token, { minLength: 1, maxLength: 24 });
const nodeIds = (min: number, max: number) =>
  fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), { minLength: min, maxLength: max });
const specs = (min: number, max: number): fc.Arbitrary<NodeSpec[]> =>
  nodeIds(min, max).chain((ids) =>
    fc.tuple(...ids.map((id) => smallTokens.map((tokens): NodeSpec => ({ id, tokens })))),
  );
const keys = fc.array(fc.string({ minLength: 1, maxLength: 16, unit: 'grapheme' }), { minLength: 1, maxLength: 30 });
const ids = (list: readonly { id: string }[]): string[] => list.map((n) => n.id);
const RUNS = { numRuns: 100 };

describe('Ring properties', () => {
  it('preferenceList returns min(n, size) distinct nodes', () => {
    fc.assert(
      fc.property(specs(1, 8), fc.integer({ min: 1, max: 10 }), keys, (nodes, n, ks) => {
        const ring = Ring.from(nodes);
        for (const k of ks) {
          const list = ring.preferenceList(k, n);
          expect(list.length).toBe(Math.min(n, ring.size));
          expect(new Set(ids(list)).size).toBe(list.length);
        }
      }),
      RUNS,
    );
  });

  it('builds the same ring whatever the insertion order', () => {
    fc.assert(
      fc.property(
        specs(1, 8).chain((nodes) => fc.tuple(fc.constant(nodes), fc.shuffledSubarray(nodes, { minLength: nodes.length }))),
        token,
        ([nodes, shuffled], t) => {
          const a = Ring.from(nodes);
          // Built incrementally, in another order.
          const b = shuffled.reduce((ring, node) => ring.withNode(node), Ring.empty());
          expect(b.toJSON()).toEqual(a.toJSON());
          expect(b.ranges()).toEqual(a.ranges());
          expect(ids(b.preferenceListForToken(t, 3))).toEqual(ids(a.preferenceListForToken(t, 3)));
          for (const r of a.ranges()) {
            expect(ids(b.preferenceListForToken(r.end, 2))).toEqual(ids(a.preferenceListForToken(r.end, 2)));
          }
        },
      ),
      RUNS,
    );
  });

  it('adding a node only moves ranges to that node', () => {
    fc.assert(
      fc.property(specs(2, 8), fc.array(token, { minLength: 20, maxLength: 60 }), ([added, ...rest], probes) => {
        const before = Ring.from(rest);
        const after = before.withNode(added!);
        const probeAll = [...probes, ...after.ranges().map((r) => r.end), ...before.ranges().map((r) => r.end)];
        for (const t of probeAll) {
          const p0 = before.preferenceListForToken(t, 1)[0]!.id;
          const p1 = after.preferenceListForToken(t, 1)[0]!.id;
          if (p0 !== p1) expect(p1).toBe(added!.id);
        }
        for (const change of Ring.diff(before, after, 3)) {
          expect(change.after).toContain(added!.id);
          expect(change.before).not.toContain(added!.id);
        }
      }),
      RUNS,
    );
  });

  it('removing a node only moves that node\'s ranges', () => {
    fc.assert(
      fc.property(specs(2, 8), fc.array(token, { minLength: 20, maxLength: 60 }), (nodes, probes) => {
        const before = Ring.from(nodes);
        const gone = nodes[0]!.id;
        const after = before.withoutNode(gone);
        for (const t of [...probes, ...before.ranges().map((r) => r.end)]) {
          const p0 = before.preferenceListForToken(t, 1)[0]!.id;
          const p1 = after.preferenceListForToken(t, 1)[0]!.id;
          if (p0 !== p1) expect(p0).toBe(gone);
        }
        for (const change of Ring.diff(before, after, 3)) {
          expect(change.before).toContain(gone);
          expect(change.after).not.toContain(gone);
        }
      }),
      RUNS,
    );
  });

  it('ownership is roughly proportional to weight', () => {
    fc.assert(
      fc.property(nodeIds(4, 6), (names) => {
        // Default tokens (256 per weight unit); the first node has weight 2.
        const ring = Ring.from(names.map((id, i) => ({ id, weight: i === 0 ? 2 : 1 })));
        const own = ring.ownership();
        const heavy = own.get(names[0]!)!;
        const light = names.slice(1).map((id) => own.get(id)!);
        const meanLight = light.reduce((a, b) => a + b, 0) / light.length;
        expect(heavy / meanLight).toBeGreaterThan(1.6);
        expect(heavy / meanLight).toBeLessThan(2.5);
        expect([...own.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      }),
      { numRuns: 10 },
    );
  });

  it('with zones and n <= zone count, replicas cover n distinct zones', () => {
    const zoned = nodeIds(2, 10).chain((names) =>
      fc.tuple(
        ...names.map((id) =>
          fc.record({ id: fc.constant(id), zone: fc.constantFrom('z1', 'z2', 'z3', 'z4'), tokens: smallTokens }),
        ),
      ),
    );
    fc.assert(
      fc.property(zoned, fc.array(token, { minLength: 10, maxLength: 30 }), fc.integer({ min: 1, max: 4 }), (nodes, probes, n) => {
        const ring = Ring.from(nodes);
        const zoneCount = new Set(nodes.map((x) => x.zone)).size;
        const m = Math.min(n, zoneCount);
        for (const t of probes) {
          const list = ring.preferenceListForToken(t, m);
          expect(new Set(list.map((x) => x.zone)).size).toBe(m);
          // the primary is still the clockwise owner
          expect(list[0]!.id).toBe(ring.successors(t)[0]!.id);
        }
      }),
      RUNS,
    );
  });

  it('toJSON / fromJSON round trips', () => {
    fc.assert(
      fc.property(specs(0, 6), token, (nodes, t) => {
        const ring = Ring.from(nodes);
        const back = Ring.fromJSON(JSON.parse(JSON.stringify(ring)));
        expect(back.toJSON()).toEqual(ring.toJSON());
        expect(ids(back.preferenceListForToken(t, 2))).toEqual(ids(ring.preferenceListForToken(t, 2)));
      }),
      RUNS,
    );
  });
});

describe('hashing properties', () => {
  it('hashKey equals murmurhash3js-revisited x86.hash32(utf8, 0) for any key', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }), (s) => {
        const bytes = new TextEncoder().encode(s);
        const expected = murmur.x86.hash32(bytes, 0);
        expect(hashKey(s)).toBe(expected);
        expect(hashKey(bytes)).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('ASCII fast path agrees with the byte path', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64, unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)) }), (s) => {
        expect(murmurAscii(s)).toBe(murmurBytes(new TextEncoder().encode(s)));
        expect(murmurAscii(s)).toBe(murmur.x86.hash32(new TextEncoder().encode(s), 0));
      }),
      { numRuns: 300 },
    );
  });

  it('murmurBytes equals the reference on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), (bytes) => {
        expect(murmurBytes(bytes)).toBe(murmur.x86.hash32(bytes, 0));
      }),
      { numRuns: 300 },
    );
  });
});
