import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encode as msgpackEncode } from '@msgpack/msgpack';
import { KvError } from '../../../src/errors/index.js';
import { SiblingSet, VectorClock } from '../../../src/versioning/index.js';
import { clockFromWireTriples, encodeDotContext } from '../../../src/versioning/vector-clock.js';

const vc = (...entries: [string, number, number?][]) => VectorClock.from(entries);

function b64(value: unknown): string {
  return Buffer.from(msgpackEncode(value)).toString('base64url');
}

function expectCode(fn: () => unknown, code: string): KvError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    expect((err as KvError).code).toBe(code);
    return err as KvError;
  }
  throw new Error('expected a throw');
}

describe('VectorClock.from / get / size / entries', () => {
  it('EMPTY has no entries', () => {
    expect(VectorClock.EMPTY.size).toBe(0);
    expect(VectorClock.EMPTY.get('a')).toBe(0);
    expect(VectorClock.EMPTY.entries()).toEqual([]);
  });

  it('builds from triples, time defaults to 0, entries sorted by actor', () => {
    const c = vc(['b', 2, 7], ['a', 1]);
    expect(c.size).toBe(2);
    expect(c.get('a')).toBe(1);
    expect(c.get('b')).toBe(2);
    expect(c.get('zzz')).toBe(0);
    expect(c.timeOf('b')).toBe(7);
    expect(c.entries()).toEqual([
      ['a', 1, 0],
      ['b', 2, 7],
    ]);
  });

  it('entries() returns a fresh copy', () => {
    const c = vc(['a', 1]);
    const e = c.entries();
    e[0]![1] = 99;
    e.push(['x', 1, 0]);
    expect(c.get('a')).toBe(1);
    expect(c.size).toBe(1);
  });

  it('handles actors named like Object.prototype members', () => {
    const names = ['__proto__', 'valueOf', 'constructor', 'toString', 'hasOwnProperty'];
    let c = VectorClock.EMPTY;
    for (const n of names) c = c.increment(n).increment(n);
    for (const n of names) expect(c.get(n)).toBe(2);
    expect(c.size).toBe(names.length);
    expect(VectorClock.EMPTY.get('__proto__')).toBe(0);
    expect(VectorClock.EMPTY.get('valueOf')).toBe(0);
    expect(VectorClock.EMPTY.get('constructor')).toBe(0);
    const back = VectorClock.decode(c.encode());
    expect(back.equals(c)).toBe(true);
    expect(back.get('__proto__')).toBe(2);
    expect(VectorClock.fromWire(c.toWire()).get('valueOf')).toBe(2);
    expect(c.compare(VectorClock.EMPTY.increment('__proto__'))).toBe('after');
  });

  it.each([
    [[['', 1]]],
    [[[1, 1]]],
    [[['a', 0]]],
    [[['a', -1]]],
    [[['a', 1.5]]],
    [[['a', Number.NaN]]],
    [[['a', 2 ** 53]]],
    [[['a', '1']]],
    [[['a', 1, -1]]],
    [[['a', 1, Number.POSITIVE_INFINITY]]],
    [[['a', 1], ['a', 2]]],
    [['a']],
  ])('from(%j) throws TypeError', (entries) => {
    expect(() => VectorClock.from(entries as never)).toThrow(TypeError);
  });

  it('from(non-iterable) throws TypeError', () => {
    expect(() => VectorClock.from(null as never)).toThrow(TypeError);
    expect(() => VectorClock.from(42 as never)).toThrow(TypeError);
  });
});

describe('increment / merge', () => {
  it('increment is immutable and records the time', () => {
    const a = VectorClock.EMPTY.increment('n', 100);
    const b = a.increment('n', 200);
    expect(a.get('n')).toBe(1);
    expect(b.get('n')).toBe(2);
    expect(b.timeOf('n')).toBe(200);
    expect(VectorClock.EMPTY.size).toBe(0);
  });

  it('increment rejects bad actors and times', () => {
    expect(() => VectorClock.EMPTY.increment('')).toThrow(TypeError);
    expect(() => VectorClock.EMPTY.increment('a', -5)).toThrow(TypeError);
    expect(() => VectorClock.EMPTY.increment(7 as never)).toThrow(TypeError);
  });

  it('merge takes the pointwise max with the time of the max', () => {
    const a = vc(['x', 3, 30], ['y', 1, 10]);
    const b = vc(['y', 4, 40], ['z', 2, 20]);
    const m = a.merge(b);
    expect(m.entries()).toEqual([
      ['x', 3, 30],
      ['y', 4, 40],
      ['z', 2, 20],
    ]);
    expect(b.merge(a).entries()).toEqual(m.entries());
  });

  it('merge on equal counters keeps the later time (commutative)', () => {
    const a = vc(['x', 3, 5]);
    const b = vc(['x', 3, 9]);
    expect(a.merge(b).timeOf('x')).toBe(9);
    expect(b.merge(a).timeOf('x')).toBe(9);
  });

  it('merge with EMPTY or itself returns an equal clock', () => {
    const a = vc(['x', 1]);
    expect(a.merge(VectorClock.EMPTY)).toBe(a);
    expect(VectorClock.EMPTY.merge(a)).toBe(a);
    expect(a.merge(a)).toBe(a);
  });
});

describe('compare / descends / covers / equals', () => {
  const a = vc(['x', 1]);
  const b = vc(['x', 2]);
  const c = vc(['x', 1], ['y', 1]);
  const d = vc(['y', 1]);

  it('compare', () => {
    expect(a.compare(b)).toBe('before');
    expect(b.compare(a)).toBe('after');
    expect(a.compare(vc(['x', 1, 999]))).toBe('equal');
    expect(a.compare(d)).toBe('concurrent');
    expect(b.compare(c)).toBe('concurrent');
    expect(VectorClock.EMPTY.compare(VectorClock.EMPTY)).toBe('equal');
    expect(VectorClock.EMPTY.compare(a)).toBe('before');
    expect(a.compare(VectorClock.EMPTY)).toBe('after');
  });

  it('descends', () => {
    expect(b.descends(a)).toBe(true);
    expect(a.descends(b)).toBe(false);
    expect(c.descends(a)).toBe(true);
    expect(c.descends(d)).toBe(true);
    expect(a.descends(a)).toBe(true);
    expect(a.descends(VectorClock.EMPTY)).toBe(true);
    expect(VectorClock.EMPTY.descends(a)).toBe(false);
    expect(d.descends(b)).toBe(false);
  });

  it('covers', () => {
    expect(b.covers({ actor: 'x', counter: 1 })).toBe(true);
    expect(b.covers({ actor: 'x', counter: 2 })).toBe(true);
    expect(b.covers({ actor: 'x', counter: 3 })).toBe(false);
    expect(b.covers({ actor: 'y', counter: 1 })).toBe(false);
    expect(VectorClock.EMPTY.covers({ actor: '__proto__', counter: 1 })).toBe(false);
  });

  it('equals ignores times', () => {
    expect(vc(['x', 1, 1]).equals(vc(['x', 1, 2]))).toBe(true);
    expect(a.equals(b)).toBe(false);
    expect(a.equals(c)).toBe(false);
    expect(c.equals(vc(['y', 1], ['x', 1]))).toBe(true);
  });
});

describe('prune', () => {
  it('drops the oldest times first', () => {
    const c = vc(['a', 5, 10], ['b', 1, 30], ['c', 2, 20], ['d', 9, 40]);
    const p = c.prune(2);
    expect(p.entries().map((e) => e[0])).toEqual(['b', 'd']);
    expect(c.descends(p)).toBe(true);
    expect(c.size).toBe(4);
  });

  it('breaks time ties by smaller counter, then smaller actor', () => {
    const c = vc(['a', 2, 0], ['b', 1, 0], ['c', 1, 0]);
    expect(c.prune(2).entries().map((e) => e[0])).toEqual(['a', 'c']);
    expect(c.prune(1).entries().map((e) => e[0])).toEqual(['a']);
  });

  it('returns the same clock when under the bound and EMPTY for 0', () => {
    const c = vc(['a', 1], ['b', 1]);
    expect(c.prune(2)).toBe(c);
    expect(c.prune(10)).toBe(c);
    expect(c.prune(0).size).toBe(0);
  });

  it('rejects bad bounds', () => {
    expect(() => vc(['a', 1]).prune(-1)).toThrow(RangeError);
    expect(() => vc(['a', 1]).prune(1.5)).toThrow(RangeError);
    expect(() => vc(['a', 1]).prune(Number.NaN)).toThrow(RangeError);
  });
});

describe('encode / decode', () => {
  it('round trips, including times and the empty clock', () => {
    const c = vc(['node-1~abc', 12, 1_700_000_000_000], ['é/ünïcødé 🙂', 3, 5]);
    const s = c.encode();
    expect(s).toMatch(/^[A-Za-z0-9_-]+$/);
    const back = VectorClock.decode(s);
    expect(back.equals(c)).toBe(true);
    expect(back.entries()).toEqual(c.entries());
    const e = VectorClock.EMPTY.encode();
    expect(e.length).toBeGreaterThan(0);
    expect(VectorClock.decode(e).size).toBe(0);
  });

  it('survives JSON and URL encoding unchanged', () => {
    const s = vc(['a', 1], ['b', 2]).encode();
    expect(JSON.parse(JSON.stringify({ s })).s).toBe(s);
    expect(encodeURIComponent(s)).toBe(s);
  });

  it('is deterministic regardless of insertion order', () => {
    expect(vc(['a', 1], ['b', 2]).encode()).toBe(vc(['b', 2], ['a', 1]).encode());
  });

  it.each([
    ['not a string', 42],
    ['null', null],
    ['empty', ''],
    ['bad base64 chars', 'ab+/'],
    ['spaces', 'kgGQ '],
    ['impossible base64 length', 'kgGQa'],
    ['not msgpack (truncated)', b64([1, [['a', 1, 0]]]).slice(0, 6)],
    ['wrong top-level shape', b64({ a: 1 })],
    ['a bare entries array', b64([['a', 1, 0]])],
    ['unknown format', b64([2, []])],
    ['entries not an array', b64([1, 'x'])],
    ['entry of wrong arity', b64([1, [['a', 1]]])],
    ['non-integer counter', b64([1, [['a', 1.5, 0]]])],
    ['zero counter', b64([1, [['a', 0, 0]]])],
    ['string counter', b64([1, [['a', '1', 0]]])],
    ['empty actor', b64([1, [['', 1, 0]]])],
    ['non-string actor', b64([1, [[7, 1, 0]]])],
    ['negative time', b64([1, [['a', 1, -3]]])],
    ['duplicate actors', b64([1, [['a', 1, 0], ['a', 2, 0]]])],
    ['too many entries', b64([1, Array.from({ length: 10_001 }, (_, i) => [`a${i}`, 1, 0])])],
    ['trailing garbage', b64([1, []]) + 'AAAA'],
  ])('rejects %s with KV_INVALID_CONTEXT', (_name, input) => {
    const err = expectCode(() => VectorClock.decode(input as string), 'KV_INVALID_CONTEXT');
    expect(err.message).toMatch(/^Invalid context: /);
  });

  it('rejects a hostile array header claiming 2^32-1 entries quickly', () => {
    const bytes = Buffer.from([0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff]);
    expectCode(() => VectorClock.decode(bytes.toString('base64url')), 'KV_INVALID_CONTEXT');
  });

  it('rejects random strings and random bytes with KV_INVALID_CONTEXT (or decodes them validly)', () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.from(Array.from({ length: 1 + (rand() % 40) }, () => rand() & 0xff));
      const inputs = [bytes.toString('base64url'), bytes.toString('latin1'), bytes.toString('base64')];
      for (const input of inputs) {
        try {
          const c = VectorClock.decode(input);
          expect(VectorClock.decode(c.encode()).equals(c)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(KvError);
          expect((err as KvError).code).toBe('KV_INVALID_CONTEXT');
        }
      }
    }
  });
});

describe('toWire / fromWire', () => {
  it('round trips', () => {
    const c = vc(['b', 2, 3], ['a', 1, 4]);
    expect(c.toWire()).toEqual([
      ['a', 1, 4],
      ['b', 2, 3],
    ]);
    expect(VectorClock.fromWire(c.toWire()).entries()).toEqual(c.entries());
    expect(VectorClock.fromWire([]).size).toBe(0);
  });

  it.each([null, undefined, 'x', 5, {}, [['a']], [['a', 0, 0]], [['a', 1, 0], ['a', 1, 0]], [[null, 1, 0]]])(
    'rejects %j with KV_INVALID_MESSAGE',
    (x) => {
      expectCode(() => VectorClock.fromWire(x), 'KV_INVALID_MESSAGE');
    },
  );

  it('toString is readable', () => {
    expect(vc(['b', 2], ['a', 1]).toString()).toBe('VectorClock{a:1, b:2}');
  });
});

describe("encodeDotContext (a one-version set's context without building its clock)", () => {
  it('property: equals the clock().encode() of a set holding that one version', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.oneof(fc.integer({ min: -5, max: 5 }), fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.double({ min: -1e3, max: 1e15, noNaN: true })),
        (actor, counter, timestamp) => {
          const set = SiblingSet.of([{ dot: { actor, counter }, past: VectorClock.EMPTY, value: new Uint8Array(1), tombstone: false, timestamp }]);
          const context = encodeDotContext(actor, counter, timestamp);
          expect(context).toBe(set.clock().encode());
          expect(VectorClock.decode(context).entries()).toEqual([[actor, counter, Math.max(0, timestamp)]]);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('the same text for an actor seen before, and after 2,000 other actors (its cached head starts over)', () => {
    const first = encodeDotContext('n1~lx2k9f0q', 7, 1_700_000_000_123);
    expect(encodeDotContext('n1~lx2k9f0q', 7, 1_700_000_000_123)).toBe(first);
    for (let i = 0; i < 2_000; i++) {
      const actor = `actor-${i}-${'é'.repeat(i % 4)}`;
      expect(VectorClock.decode(encodeDotContext(actor, i + 1, i)).entries()).toEqual([[actor, i + 1, i]]);
    }
    expect(encodeDotContext('n1~lx2k9f0q', 7, 1_700_000_000_123)).toBe(first);
    expect(VectorClock.decode(first).entries()).toEqual([['n1~lx2k9f0q', 7, 1_700_000_000_123]]);
  });

  it('refuses what a clock refuses', () => {
    expect(() => encodeDotContext('', 1, 0)).toThrow(TypeError);
    expect(() => encodeDotContext('a', 0, 0)).toThrow(TypeError);
    expect(() => encodeDotContext('a', 1, Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});

describe('clocks read from a record (sorted triples, no map until needed)', () => {
  it('property: answer every question as the same clock built with VectorClock.from', () => {
    const entryArb = fc.tuple(fc.constantFrom('a', 'b', 'c~1', 'd~2', '__proto__'), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 9 }));
    const clockArb = fc.uniqueArray(entryArb, { selector: (e) => e[0], maxLength: 5 });
    fc.assert(
      fc.property(clockArb, clockArb, fc.boolean(), (xs, ys, sortFirst) => {
        // The record codec hands over triples sorted by actor; unsorted ones take the map path.
        const triples = (sortFirst ? [...xs].sort((p, q) => (p[0] < q[0] ? -1 : 1)) : xs).map((e) => [...e] as [string, number, number]);
        const lazy = clockFromWireTriples(triples);
        const eager = VectorClock.from(xs);
        const other = VectorClock.from(ys);
        expect(lazy.size).toBe(eager.size);
        for (const actor of ['a', 'b', 'c~1', 'd~2', '__proto__', 'zz']) {
          expect(lazy.get(actor)).toBe(eager.get(actor));
          expect(lazy.covers({ actor, counter: 3 })).toBe(eager.covers({ actor, counter: 3 }));
        }
        expect(lazy.entries()).toEqual(eager.entries());
        expect(lazy.equals(eager)).toBe(true);
        expect(lazy.compare(other)).toBe(eager.compare(other));
        expect(other.compare(lazy)).toBe(other.compare(eager));
        expect(lazy.merge(other).entries()).toEqual(eager.merge(other).entries());
        expect(other.merge(lazy).entries()).toEqual(other.merge(eager).entries());
        expect(lazy.encode()).toBe(eager.encode());
        expect(lazy.prune(2).entries()).toEqual(eager.prune(2).entries());
      }),
      { numRuns: 500 },
    );
  });

  it('bad triples are refused as before, naming the problem', () => {
    expect(() => clockFromWireTriples([['b', 1, 0], ['a', 1, 0]] as never)).not.toThrow();
    expect(() => clockFromWireTriples([['a', 1, 0], ['a', 2, 0]] as never)).toThrow(/duplicate actor "a"/);
    expect(() => clockFromWireTriples([['a', 0, 0]] as never)).toThrow(KvError);
    expect(() => clockFromWireTriples([[null, 1, 0]] as never)).toThrow(KvError);
  });
});
