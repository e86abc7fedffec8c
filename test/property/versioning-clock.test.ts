import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encode as msgpackEncode } from '@msgpack/msgpack';
import { VectorClock } from '../../src/versioning/index.js';

const ACTORS = ['a', 'b', 'c', 'd', 'e', '__proto__', 'valueOf', 'constructor', 'n~1', 'ü'];

const clockArb: fc.Arbitrary<VectorClock> = fc
  .uniqueArray(
    fc.tuple(fc.constantFrom(...ACTORS), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 50 })),
    { selector: (e) => e[0], maxLength: ACTORS.length },
  )
  .map((entries) => VectorClock.from(entries));

const opts = { numRuns: 300 };

describe('VectorClock laws', () => {
  it('merge is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        expect(a.merge(b).equals(b.merge(a))).toBe(true);
        expect(a.merge(b).entries()).toEqual(b.merge(a).entries()); // times too
        expect(a.merge(b).merge(c).equals(a.merge(b.merge(c)))).toBe(true);
        expect(a.merge(a).equals(a)).toBe(true);
      }),
      opts,
    );
  });

  it('merge is the least upper bound', () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const m = a.merge(b);
        expect(m.descends(a) && m.descends(b)).toBe(true);
        for (const [actor, counter] of m.entries()) expect(counter).toBe(Math.max(a.get(actor), b.get(actor)));
      }),
      opts,
    );
  });

  it('compare is consistent with merge and descends', () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const order = a.compare(b);
        expect(a.merge(b).equals(b)).toBe(order === 'before' || order === 'equal');
        expect(a.merge(b).equals(a)).toBe(order === 'after' || order === 'equal');
        expect(b.descends(a)).toBe(order === 'before' || order === 'equal');
        expect(order === 'equal').toBe(a.equals(b));
      }),
      opts,
    );
  });

  it('compare is antisymmetric', () => {
    const flip = { before: 'after', after: 'before', equal: 'equal', concurrent: 'concurrent' } as const;
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        expect(b.compare(a)).toBe(flip[a.compare(b)]);
      }),
      opts,
    );
  });

  it('descends is reflexive and transitive', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        expect(a.descends(a)).toBe(true);
        // Build a chain so the premise holds often.
        const ab = a.merge(b);
        const abc = ab.merge(c);
        expect(abc.descends(ab) && ab.descends(a) && abc.descends(a)).toBe(true);
        if (a.descends(b) && b.descends(c)) expect(a.descends(c)).toBe(true);
      }),
      opts,
    );
  });

  it('covers agrees with get', () => {
    fc.assert(
      fc.property(clockArb, fc.constantFrom(...ACTORS), fc.integer({ min: 1, max: 8 }), (a, actor, counter) => {
        expect(a.covers({ actor, counter })).toBe(a.get(actor) >= counter);
      }),
      opts,
    );
  });

  it('encode/decode and toWire/fromWire round trip exactly', () => {
    fc.assert(
      fc.property(clockArb, (a) => {
        const s = a.encode();
        expect(s).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(VectorClock.decode(s).entries()).toEqual(a.entries());
        expect(VectorClock.fromWire(a.toWire()).entries()).toEqual(a.entries());
      }),
      opts,
    );
  });

  it('encode is byte-identical to the msgpack Encoder of [1, entries], and decode reads what it made', () => {
    // Wide actors, counters and times: every msgpack int width, float64 times, long and non-ASCII actors.
    const wideArb = fc
      .uniqueArray(
        fc.tuple(
          fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }), fc.constantFrom(...ACTORS)),
          fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 2 ** 32 + 5 }), fc.constant(Number.MAX_SAFE_INTEGER)),
          fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constant(Date.now()), fc.double({ min: 0, max: 1e15, noNaN: true }), fc.constant(-0)),
        ),
        { selector: (e) => e[0], maxLength: 20 },
      )
      .map((entries) => VectorClock.from(entries));
    fc.assert(
      fc.property(wideArb, (a) => {
        const reference = Buffer.from(msgpackEncode([1, a.entries()])).toString('base64url');
        expect(a.encode()).toBe(reference);
        expect(a.encode()).toBe(reference); // cached
        const back = VectorClock.decode(reference); // (a time of -0 comes back as 0, as it always did)
        expect(back.equals(a)).toBe(true);
        expect(back.encode()).toBe(reference);
      }),
      opts,
    );
  });

  it('prune keeps at most the bound, is descended by the original, and keeps the newest', () => {
    fc.assert(
      fc.property(clockArb, fc.integer({ min: 0, max: 12 }), (a, max) => {
        const p = a.prune(max);
        expect(p.size).toBe(Math.min(a.size, max));
        expect(a.descends(p)).toBe(true);
        for (const [actor, counter, time] of p.entries()) {
          expect(counter).toBe(a.get(actor));
          expect(time).toBe(a.timeOf(actor));
        }
        const keptMinTime = Math.min(...p.entries().map((e) => e[2]));
        for (const [actor, , time] of a.entries()) {
          if (p.get(actor) === 0) expect(time).toBeLessThanOrEqual(keptMinTime);
        }
      }),
      opts,
    );
  });
});
