import { describe, expect, it } from 'vitest';
import { decode as msgpackDecode, encode as msgpackEncode } from '@msgpack/msgpack';
import { KvError } from '../../../src/errors/index.js';
import {
  SiblingSet,
  VectorClock,
  decodeSiblingSet,
  encodeSiblingSet,
  siblingSetFromWire,
  siblingSetToWire,
  SIBLING_SET_FORMAT,
} from '../../../src/versioning/index.js';

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
