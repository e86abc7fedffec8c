import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode as msgpackDecode, encode as msgpackEncode } from '@msgpack/msgpack';
import { KvError } from '../../../src/errors/index.js';
import {
  SiblingSet,
  VectorClock,
  decodeClock,
  decodeSiblingSet,
  encodeClock,
  encodeSiblingSet,
  siblingSetFromWire,
  siblingSetToWire,
  SIBLING_SET_FORMAT,
} from '../../../src/versioning/index.js';
import { checkSiblingSet } from '../../../src/versioning/codec.js';

const bytes = (s: string) => new TextEncoder().encode(s);

function sample(): SiblingSet<Uint8Array> {
  let s = SiblingSet.empty<Uint8Array>();
  s = s.write('a~1', VectorClock.EMPTY, { value: bytes('one'), timestamp: 1_700_000_000_000 }).set;
  const ctx = s.clock();
  s = s.write('__proto__~2', ctx, { value: new Uint8Array(0), timestamp: 2 }).set;
  s = s.write('valueOf~3', ctx, { tombstone: true, timestamp: 3 }).set;
  return s;
}

function expectInvalid(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    expect((err as KvError).code).toBe('KV_INVALID_MESSAGE');
    return;
  }
  throw new Error('expected a throw');
}

const frame = (x: unknown) => {
  const body = msgpackEncode(x);
  const out = new Uint8Array(body.length + 1);
  out[0] = SIBLING_SET_FORMAT;
  out.set(body, 1);
  return out;
};

describe('sibling set codec', () => {
  it('round trips values, tombstones, pasts, timestamps and dots', () => {
    const s = sample();
    expect(s.size).toBe(2);
    const back = decodeSiblingSet(encodeSiblingSet(s));
    expect(back.equals(s)).toBe(true);
    expect(back.versions.map((v) => [v.dot, v.tombstone, v.timestamp, v.past.entries(), v.value])).toEqual(
      s.versions.map((v) => [v.dot, v.tombstone, v.timestamp, v.past.entries(), v.value]),
    );
    expect(back.clock().equals(s.clock())).toBe(true);
  });

  it('round trips the empty set', () => {
    const e = encodeSiblingSet(SiblingSet.empty());
    expect(e[0]).toBe(SIBLING_SET_FORMAT);
    expect(decodeSiblingSet(e).isEmpty).toBe(true);
  });

  it('embeds in a larger msgpack message via the wire form', () => {
    const s = sample();
    const msg = msgpackDecode(msgpackEncode({ type: 'put', set: siblingSetToWire(s) })) as { set: unknown };
    expect(siblingSetFromWire(msg.set).equals(s)).toBe(true);
  });

  it('copies values out of the input buffer', () => {
    const enc = encodeSiblingSet(SiblingSet.empty<Uint8Array>().write('a', VectorClock.EMPTY, { value: bytes('zz'), timestamp: 1 }).set);
    const back = decodeSiblingSet(enc);
    enc.fill(0);
    expect(new TextDecoder().decode(back.values()[0])).toBe('zz');
  });

  it('normalizes obsoleted versions on decode', () => {
    const wire = [
      ['a', 1, 1, [], bytes('old')],
      ['b', 1, 2, [['a', 1, 1]], bytes('new')],
    ];
    expect(siblingSetFromWire(wire).values().map((v) => new TextDecoder().decode(v))).toEqual(['new']);
  });

  it.each([
    ['not an array', { a: 1 }],
    ['null', null],
    ['version not an array', [5]],
    ['version of wrong arity', [['a', 1, 1, []]]],
    ['empty actor', [['', 1, 1, [], null]]],
    ['non-string actor', [[1, 1, 1, [], null]]],
    ['zero counter', [['a', 0, 1, [], null]]],
    ['fractional counter', [['a', 1.5, 1, [], null]]],
    ['string timestamp', [['a', 1, '1', [], null]]],
    ['bad value type', [['a', 1, 1, [], 'str']]],
    ['bad past', [['a', 1, 1, [['b', 0, 0]], null]]],
    ['past not an array', [['a', 1, 1, 'x', null]]],
    ['duplicate dots', [['a', 1, 1, [], null], ['a', 1, 2, [], null]]],
    ['too many versions', Array.from({ length: 10_001 }, (_, i) => ['a', i + 1, 0, [], null])],
  ])('fromWire rejects %s', (_name, x) => {
    expectInvalid(() => siblingSetFromWire(x));
    expectInvalid(() => decodeSiblingSet(frame(x)));
  });

  it('decode rejects framing problems', () => {
    expectInvalid(() => decodeSiblingSet(new Uint8Array(0)));
    expectInvalid(() => decodeSiblingSet(new Uint8Array([2, 0x90])));
    expectInvalid(() => decodeSiblingSet(new Uint8Array([SIBLING_SET_FORMAT])));
    expectInvalid(() => decodeSiblingSet(new Uint8Array([SIBLING_SET_FORMAT, 0xc1])));
    expectInvalid(() => decodeSiblingSet(new Uint8Array([SIBLING_SET_FORMAT, 0xdd, 0xff, 0xff, 0xff, 0xff])));
    expectInvalid(() => decodeSiblingSet(new Uint8Array([SIBLING_SET_FORMAT, 0x90, 0x90])));
    expectInvalid(() => decodeSiblingSet('nope' as never));
    const good = encodeSiblingSet(sample());
    expectInvalid(() => decodeSiblingSet(good.subarray(0, good.length - 3)));
  });

  it('random bytes and bit flips either decode to a valid set or fail with KV_INVALID_MESSAGE', () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const good = encodeSiblingSet(sample());
    for (let i = 0; i < 1000; i++) {
      let input: Uint8Array;
      if (i % 2 === 0) {
        input = new Uint8Array(Array.from({ length: rand() % 64 }, () => rand() & 0xff));
        if (i % 4 === 0 && input.length > 0) input[0] = SIBLING_SET_FORMAT;
      } else {
        input = good.slice();
        const at = rand() % input.length;
        input[at] = input[at]! ^ (1 << (rand() % 8));
      }
      try {
        const s = decodeSiblingSet(input);
        expect(decodeSiblingSet(encodeSiblingSet(s)).equals(s)).toBe(true);
      } catch (err) {
        expect(err).toBeInstanceOf(KvError);
        expect((err as KvError).code).toBe('KV_INVALID_MESSAGE');
      }
    }
  });
});

describe('checkSiblingSet (what a replica asks of a record it stores as it came)', () => {
  const outcome = (f: () => unknown): string => {
    try {
      f();
      return 'ok';
    } catch (err) {
      return err instanceof KvError ? `${err.code}: ${err.message}` : `not a KvError: ${String(err)}`;
    }
  };

  it('property: accepts exactly what decodeSiblingSet accepts, refusing with the same error', () => {
    // Records of 1-4 versions (dots out of order and repeated sometimes), then cut,
    // bit-flipped or overwritten; and plain random bytes behind the format byte.
    const actorArb = fc.constantFrom('a~1', 'b~2', 'c~3');
    const versionArb = fc.tuple(
      actorArb,
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 5 }),
      fc.uniqueArray(fc.tuple(actorArb, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 5 })), { selector: (e) => e[0], maxLength: 2 }),
      fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null }),
    );
    const recordArb = fc.array(versionArb, { maxLength: 4 }).map((versions) => {
      const body = msgpackEncode(versions);
      const out = new Uint8Array(1 + body.length);
      out[0] = SIBLING_SET_FORMAT;
      out.set(body, 1);
      return out;
    });
    const mutatedArb = fc.oneof(
      recordArb,
      fc.tuple(recordArb, fc.nat(), fc.nat(7)).map(([r, at, bit]) => {
        const m = r.slice();
        if (m.length > 1) m[1 + (at % (m.length - 1))]! ^= 1 << bit;
        return m;
      }),
      fc.tuple(recordArb, fc.nat()).map(([r, cut]) => r.slice(0, cut % (r.length + 1))),
      fc.uint8Array({ maxLength: 40 }).map((b) => Uint8Array.of(SIBLING_SET_FORMAT, ...b)),
    );
    fc.assert(
      fc.property(mutatedArb, (record) => {
        expect(outcome(() => checkSiblingSet(record))).toBe(outcome(() => decodeSiblingSet(record)));
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses duplicate dots and accepts out-of-order ones, as decoding does', () => {
    const record = (versions: unknown[]): Uint8Array => Uint8Array.of(SIBLING_SET_FORMAT, ...msgpackEncode(versions));
    const v = (actor: string, counter: number) => [actor, counter, 1, [], null];
    expect(outcome(() => checkSiblingSet(record([v('b~1', 1), v('a~1', 1)])))).toBe('ok');
    expect(outcome(() => checkSiblingSet(record([v('a~1', 2), v('a~1', 2)])))).toMatch(/KV_INVALID_MESSAGE: .*duplicate dot a~1:2/);
    expect(outcome(() => checkSiblingSet(encodeSiblingSet(sample())))).toBe('ok');
  });
});

describe('hand-written record codec', () => {
  const actor = fc.oneof(
    fc.string({ minLength: 1, maxLength: 8 }),
    fc.string({ minLength: 1, maxLength: 80, unit: 'binary' }), // lone surrogates, astral planes, over 50 units
    fc.constantFrom('n1~abc', '__proto__~1', 'ü~1', 'x'.repeat(300)),
  );
  const counter = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 2 ** 32 + 5 }), fc.constant(Number.MAX_SAFE_INTEGER));
  const time = fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e15, noNaN: true }), fc.constant(2 ** 40));
  const clock = fc
    .uniqueArray(fc.tuple(actor, counter, time), { selector: (e) => e[0], maxLength: 4 })
    .map((entries) => VectorClock.from(entries));
  const value = fc.oneof(
    fc.constant(undefined),
    fc.uint8Array({ maxLength: 40 }),
    fc.constantFrom(300, 70_000).map((n) => new Uint8Array(n).fill(7)),
  );
  const version = fc.record({
    actor,
    counter,
    timestamp: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
    past: clock,
    value,
  });
  const set = fc
    .uniqueArray(version, { selector: (v) => `${v.actor}\u0000${v.counter}`, maxLength: 5 })
    .map((vs) =>
      SiblingSet.of(
        vs.map((v) => ({
          dot: { actor: v.actor, counter: v.counter },
          past: v.past,
          value: v.value,
          tombstone: v.value === undefined,
          timestamp: v.timestamp,
        })),
      ),
    );

  // Byte comparisons through Buffer: vitest's deep equality walks typed arrays element by element.
  const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
    a === undefined || b === undefined ? a === b : Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

  it('property: writes exactly the bytes @msgpack/msgpack writes for the wire form, and reads them back', () => {
    fc.assert(
      fc.property(set, (s) => {
        const bytes = encodeSiblingSet(s);
        expect(same(bytes, frame(siblingSetToWire(s)))).toBe(true);
        const back = decodeSiblingSet(bytes);
        expect(back.equals(s)).toBe(true);
        expect(back.versions.map((v) => [v.dot, v.timestamp, v.past.entries(), v.tombstone])).toEqual(
          s.versions.map((v) => [v.dot, Object.is(v.timestamp, -0) ? 0 : v.timestamp, v.past.entries(), v.tombstone]),
        );
        back.versions.forEach((v, i) => expect(same(v.value, s.versions[i]!.value)).toBe(true));
        // And it reads what the generic decoder path reads.
        expect(decodeSiblingSet(frame(siblingSetToWire(s))).equals(siblingSetFromWire(siblingSetToWire(s)))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts any msgpack encoding of the wire form (wider integers than needed)', () => {
    // [[ "a", uint32 1, float64 2, [], bin "v" ]]
    const wide = Uint8Array.from([
      SIBLING_SET_FORMAT, 0x91, 0x95, 0xd9, 0x01, 0x61, 0xce, 0, 0, 0, 1, 0xcb, 0x40, 0, 0, 0, 0, 0, 0, 0, 0xdc, 0, 0, 0xc5, 0, 1, 0x76,
    ]);
    const s = decodeSiblingSet(wide);
    expect(s.versions.map((v) => [v.dot.actor, v.dot.counter, v.timestamp, new TextDecoder().decode(v.value)])).toEqual([['a', 1, 2, 'v']]);
  });

  it('property: clocks travel in the same form as a version past, and back', () => {
    fc.assert(
      fc.property(clock, (c) => {
        const bytes = encodeClock(c);
        expect(bytes).toEqual(msgpackEncode(c.toWire()));
        const back = decodeClock(bytes);
        expect(back.equals(c)).toBe(true);
        expect(back.entries()).toEqual(c.entries());
      }),
      { numRuns: 200 },
    );
  });

  it('decodeClock refuses anything but a clock with KV_INVALID_MESSAGE', () => {
    for (const bad of [
      new Uint8Array(0),
      Uint8Array.from([0xc1]),
      msgpackEncode({ a: 1 }),
      msgpackEncode([['a', 0, 0]]),
      msgpackEncode([['a', 1]]),
      msgpackEncode([['a', 1, 1], ['a', 2, 2]]),
      Uint8Array.from([...msgpackEncode([]), 0]),
      Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]),
      'nope' as never,
    ]) {
      expectInvalid(() => decodeClock(bad));
    }
  });

  it('decoded values are fresh bytes, even from a reused input buffer', () => {
    const s = SiblingSet.empty<Uint8Array>().write('a', VectorClock.EMPTY, { value: new Uint8Array(300).fill(9), timestamp: 1 }).set;
    const bytes = encodeSiblingSet(s);
    const back = decodeSiblingSet(bytes);
    bytes.fill(0);
    expect(back.values()[0]).toEqual(new Uint8Array(300).fill(9));
  });
});

describe('decodeSiblingSet: values copied or viewed', () => {
  const record = (): Uint8Array => {
    let set = SiblingSet.empty<Uint8Array>();
    for (const [actor, v] of [['b~1', 'beta'], ['a~1', 'alpha'], ['b~1', 'beta2'], ['c~2', 'gamma']] as const) {
      set = set.write(actor, VectorClock.EMPTY, { value: new TextEncoder().encode(v), timestamp: 1 }).set;
    }
    return encodeSiblingSet(set);
  };

  it('copies values by default: changing the input changes nothing decoded', () => {
    const bytes = record();
    const set = decodeSiblingSet(bytes);
    bytes.fill(0);
    expect(set.values().map((v) => new TextDecoder().decode(v)).sort()).toEqual(['alpha', 'beta', 'beta2', 'gamma']);
  });

  it('with copyValues: false, values are views into the input (same buffer), equal to the copies', () => {
    const bytes = record();
    const views = decodeSiblingSet(bytes, { copyValues: false });
    const copies = decodeSiblingSet(bytes);
    expect(views.versions.map((v) => [v.dot.actor, v.dot.counter, new TextDecoder().decode(v.value)])).toEqual(
      copies.versions.map((v) => [v.dot.actor, v.dot.counter, new TextDecoder().decode(v.value)]),
    );
    for (const v of views.versions) {
      expect(v.value!.buffer).toBe(bytes.buffer);
      expect(v.value!.byteOffset).toBeGreaterThanOrEqual(bytes.byteOffset);
      expect(v.value!.byteOffset + v.value!.byteLength).toBeLessThanOrEqual(bytes.byteOffset + bytes.byteLength);
    }
    expect(encodeSiblingSet(views)).toEqual(bytes);
  });

  it('writes every actor exactly, through more actors than the encoder keeps and back (its cache of encoded actors)', () => {
    // 700 actors, past the encoder's bound of 256: records written before, across and after it is emptied.
    const actors = Array.from({ length: 700 }, (_, i) => (i % 3 === 0 ? `n${i}~${'q'.repeat(i % 40)}` : i % 3 === 1 ? `ü${i}~1` : `${'x'.repeat(i % 70)}${i}~z`));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < actors.length; i++) {
        const a = actors[i]!;
        const b = actors[(i * 7 + round) % actors.length]!;
        // One actor in a dot, another in the past of the next version.
        let set = SiblingSet.empty<Uint8Array>().write(a, VectorClock.EMPTY, { value: new Uint8Array([i & 0xff]), timestamp: 1 }).set;
        set = set.write(b, VectorClock.from([[a, 9, 2]]), { value: new Uint8Array([round]), timestamp: 3 }).set;
        const bytes = encodeSiblingSet(set);
        expect(Buffer.from(bytes).equals(frame(siblingSetToWire(set)))).toBe(true);
        expect(decodeSiblingSet(bytes).equals(set)).toBe(true);
      }
    }
    // Equal strings built differently (concatenated, sliced, flat) encode alike.
    const flat = 'node-with-a-long-name~abcdefghijk';
    const built = ['node-with-a-long-name', 'abcdefghijk'].join('~');
    const sliced = `!${flat}`.slice(1);
    const encodings = [flat, built, sliced].map((a) =>
      Buffer.from(encodeSiblingSet(SiblingSet.empty<Uint8Array>().write(a, VectorClock.EMPTY, { value: new Uint8Array(1), timestamp: 1 }).set)),
    );
    expect(encodings[1]!.equals(encodings[0]!) && encodings[2]!.equals(encodings[0]!)).toBe(true);
  });

  it("names the right actor when records alternate between actors (the decoder's table of actors, slots shared included)", () => {
    // n1~abcdefg and n2~abcdefg share a slot (same length, same bytes at 0, n/4, n/2 and n-1): only their bytes tell them apart.
    const actorArb = fc.constantFrom('x~1', 'yy~1', 'zzz~3', 'x~2', 'n1~abcdefg', 'n2~abcdefg', 'n1~abcdefh', 'ü~1', 'v~1');
    fc.assert(
      fc.property(fc.array(actorArb, { minLength: 1, maxLength: 30 }), (actors) => {
        let set = SiblingSet.empty<Uint8Array>();
        for (const a of actors) set = set.write(a, VectorClock.EMPTY, { value: new TextEncoder().encode(a), timestamp: 1 }).set;
        const decoded = decodeSiblingSet(encodeSiblingSet(set));
        expect(decoded.versions.map((v) => [v.dot.actor, v.dot.counter])).toEqual(set.versions.map((v) => [v.dot.actor, v.dot.counter]));
        for (const v of decoded.versions) expect(new TextDecoder().decode(v.value)).toBe(v.dot.actor);
      }),
    );
  });
});
