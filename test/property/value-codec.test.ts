import { Buffer } from 'node:buffer';
import { Decoder, encode as msgpackEncode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvError } from '../../src/errors/index.js';
import { decodeValue, encodeValue } from '../../src/store/value-codec.js';

/**
 * @msgpack/msgpack without its shared cache of map keys, which answers by a
 * key's bytes alone: damaged bytes can cut a key's last UTF-8 sequence short
 * (completed by the bytes after it), and the cache would then give the key
 * as it read it the first time.
 */
const uncached = new Decoder({ keyDecoder: null });

/**
 * Strict structural equality: same prototype at every level (a Map is not an
 * object, a Float32Array not a Uint8Array, a null-prototype object not a
 * plain one), numbers by `Object.is` (-0, NaN), Map and Set entries in
 * iteration order, own enumerable keys in order, binary data byte for byte.
 * Returns where the two differ, or undefined.
 */
function difference(a: unknown, b: unknown, path = 'value'): string | undefined {
  if (typeof a !== typeof b) return `${path}: ${typeof a} vs ${typeof b}`;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
    return Object.is(a, b) ? undefined : `${path}: ${String(a)} vs ${String(b)}`;
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${path}: prototypes differ`;
  if (a instanceof Date) return Object.is(a.getTime(), (b as Date).getTime()) ? undefined : `${path}: dates differ`;
  if (a instanceof ArrayBuffer || ArrayBuffer.isView(a)) {
    const bytes = (x: ArrayBuffer | ArrayBufferView): Buffer =>
      x instanceof ArrayBuffer ? Buffer.from(x) : Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    return bytes(a).equals(bytes(b as ArrayBuffer)) ? undefined : `${path}: bytes differ`;
  }
  if (a instanceof Map) {
    const ea = [...a];
    const eb = [...(b as Map<unknown, unknown>)];
    if (ea.length !== eb.length) return `${path}: Map sizes differ`;
    for (let i = 0; i < ea.length; i++) {
      const d = difference(ea[i]![0], eb[i]![0], `${path}.keys()[${i}]`) ?? difference(ea[i]![1], eb[i]![1], `${path}.values()[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (a instanceof Set) {
    const ia = [...a];
    const ib = [...(b as Set<unknown>)];
    if (ia.length !== ib.length) return `${path}: Set sizes differ`;
    for (let i = 0; i < ia.length; i++) {
      const d = difference(ia[i], ib[i], `${path}.values()[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.join('\u0000') !== kb.join('\u0000')) return `${path}: keys ${JSON.stringify(ka)} vs ${JSON.stringify(kb)}`;
  if (Array.isArray(a) && a.length !== (b as unknown[]).length) return `${path}: lengths differ`;
  for (const k of ka) {
    const d = difference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}[${JSON.stringify(k)}]`);
    if (d) return d;
  }
  return undefined;
}

describe('the strict comparison used below', () => {
  it('tells apart what a lax deep-equal would not', () => {
    expect(difference(new Map([['a', 1]]), { a: 1 })).toBeDefined();
    expect(difference(new Float32Array([1]), new Uint8Array([1]))).toBeDefined();
    expect(difference(-0, 0)).toBeDefined();
    expect(difference({ a: undefined }, {})).toBeDefined();
    expect(difference(Object.create(null), {})).toBeDefined();
    expect(difference(new Map([[1, 1], [2, 2]]), new Map([[2, 2], [1, 1]]))).toBeDefined();
    expect(difference(new Set([1, 2]), new Set([2, 1]))).toBeDefined();
    expect(difference([1, [new Date(1)]], [1, [new Date(2)]])).toBeDefined();
    expect(difference(Number.NaN, Number.NaN)).toBeUndefined();
  });
});

const key = fc.oneof(fc.string(), fc.string({ unit: 'binary' })).filter((k) => k !== '__proto__');

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, -(2 ** 31) - 1),
  fc.bigInt(),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'binary', minLength: 30, maxLength: 300 }),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array(),
  fc.int8Array(),
  fc.uint8ClampedArray(),
  fc.int16Array(),
  fc.uint16Array(),
  fc.int32Array(),
  fc.uint32Array(),
  fc.float32Array(),
  fc.float64Array(),
  fc.bigInt64Array(),
  fc.bigUint64Array(),
  fc.float64Array({ minLength: 1 }).map((a) => a.subarray(1)),
  fc.uint8Array().map((a) => a.slice().buffer),
  fc.uint8Array().map((a) => new DataView(a.buffer)),
);

const { value } = fc.letrec<{ value: unknown; array: unknown[]; object: Record<string, unknown>; map: Map<unknown, unknown>; set: Set<unknown> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object'), tie('map'), tie('set')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  // fc.dictionary also makes null-prototype objects.
  object: fc.dictionary(key, tie('value'), { maxKeys: 5 }),
  map: fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 4 }).map((entries) => new Map(entries)),
  set: fc.array(tie('value'), { maxLength: 4 }).map((items) => new Set(items)),
}));

describe('value codec laws', () => {
  it('decode(encode(v)) equals v, type for type', () => {
    fc.assert(
      fc.property(value, (v) => {
        fc.pre(v !== undefined);
        const back = decodeValue(encodeValue(v, Infinity));
        const d = difference(v, back);
        if (d) throw new Error(`round-trip changed ${d}`);
      }),
      { numRuns: 500 },
    );
  });

  it('maxValueBytes is exact: the encoded size fits, one byte less is KV_VALUE_TOO_LARGE', () => {
    fc.assert(
      fc.property(value, (v) => {
        fc.pre(v !== undefined);
        const size = encodeValue(v, Infinity).length;
        expect(encodeValue(v, size).length).toBe(size);
        try {
          encodeValue(v, size - 1);
        } catch (err) {
          expect(err).toBeInstanceOf(KvError);
          expect((err as KvError).code).toBe('KV_VALUE_TOO_LARGE');
          return;
        }
        throw new Error('not refused');
      }),
      { numRuns: 300 },
    );
  });

  it('JSON-like values encode byte for byte as @msgpack/msgpack does, and its encodings still decode', () => {
    const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v), (_k, x: unknown) => (Object.is(x, -0) ? 0 : x)) as unknown);
    fc.assert(
      fc.property(json, (v) => {
        fc.pre(!JSON.stringify(v).includes('"__proto__"')); // refused, see the unit tests
        const plain = msgpackEncode(v);
        expect(Buffer.from(encodeValue(v, Infinity)).equals(Buffer.from(plain))).toBe(true);
        expect(difference(v, decodeValue(plain))).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('strings of 0-400 characters (ASCII, or with a non-ASCII or astral character anywhere) encode byte for byte as @msgpack/msgpack does', () => {
    const ascii = fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 400 });
    const mixed = fc
      .tuple(ascii, fc.nat(), fc.constantFrom('é', '€', '\u0080', '\u07ff', '😀', '\uffff'))
      .map(([a, at, odd]) => a.slice(0, at % (a.length + 1)) + odd + a.slice(at % (a.length + 1)));
    fc.assert(
      fc.property(fc.oneof(ascii, mixed), (str) => {
        for (const v of [str, { pad: str, n: 1 }]) {
          const bytes = encodeValue(v, Infinity);
          expect(Buffer.from(bytes).equals(Buffer.from(msgpackEncode(v)))).toBe(true);
          expect(decodeValue(bytes)).toStrictEqual(v);
        }
      }),
      { numRuns: 1000 },
    );
    // Around the header boundaries (fixstr to str8 at 32, str8 to str16 at 256, str16 to
    // str32 at 65,536) and where the native write takes over (40), ASCII or with one
    // non-ASCII character at the end.
    for (const n of [0, 31, 32, 33, 39, 40, 41, 254, 255, 256, 257, 0xffff, 0x10000, 0x10001]) {
      for (const str of ['x'.repeat(n), 'x'.repeat(Math.max(0, n - 1)) + 'é']) {
        const bytes = encodeValue(str, Infinity);
        expect(Buffer.from(bytes).equals(Buffer.from(msgpackEncode(str)))).toBe(true);
        expect(decodeValue(bytes)).toBe(str);
      }
    }
  });

  it('a lone surrogate is refused in a string of any length', () => {
    for (const n of [0, 10, 40, 200, 300]) {
      expect(() => encodeValue('a'.repeat(n) + '\ud800' + 'b', Infinity)).toThrow(TypeError);
      expect(() => encodeValue({ k: '\udc00' + 'a'.repeat(n) }, Infinity)).toThrow(TypeError);
      // Over maxValueBytes too: still refused for the surrogate, as before the size.
      expect(() => encodeValue('a'.repeat(n) + '\ud800', 8)).toThrow(TypeError);
    }
  });

  it('decodes JSON-like MessagePack (all number widths, long strings, deep nesting) and damaged bytes as the Decoder does', () => {
    const number = fc.oneof(
      fc.integer(),
      fc.maxSafeInteger(),
      fc.double(),
      fc.float().map((f) => ({ f32: f })),
      fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32, 2 ** 53 + 2, -32, -33, -128, -129, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 60)),
    );
    const leaf = fc.oneof(number, fc.string({ unit: 'grapheme', maxLength: 80 }), fc.string({ minLength: 30, maxLength: 300 }), fc.boolean(), fc.constant(null));
    const tree = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 20 }), fc.dictionary(fc.string({ maxLength: 20 }), tie('node'), { noNullPrototype: true })),
    })).node;
    // float32 leaves are written as float32 by the Encoder's forceFloat32 on that leaf alone: encode them by hand.
    const encode = (v: unknown, forceFloat32: boolean): Uint8Array => {
      const f32 = (x: unknown): unknown =>
        x !== null && typeof x === 'object' && 'f32' in x ? Math.fround((x as { f32: number }).f32) : Array.isArray(x) ? x.map(f32) : x !== null && typeof x === 'object' ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, f32(y)])) : x;
      return msgpackEncode(f32(v), { forceFloat32 });
    };
    const outcome = (f: () => unknown): unknown => {
      try {
        return { ok: f() };
      } catch {
        return 'throws';
      }
    };
    fc.assert(
      fc.property(tree, fc.boolean(), fc.nat(), fc.nat(255), fc.integer({ min: 0, max: 3 }), (v, forceFloat32, at, byte, damage) => {
        fc.pre(!JSON.stringify(v).includes('"__proto__"'));
        let bytes = encode(v, forceFloat32);
        if (damage === 1) bytes = bytes.subarray(0, at % bytes.length); // truncated
        if (damage === 2) bytes = Uint8Array.of(...bytes, byte); // trailing byte
        if (damage === 3) bytes = Uint8Array.from(bytes, (b, i) => (i === at % bytes.length ? byte : b)); // one byte changed
        const theirs = outcome(() => uncached.decode(bytes));
        if (theirs === 'throws') {
          // (the Decoder with our extension codec may read an ext the plain one refuses)
          const ours = outcome(() => decodeValue(bytes));
          if (ours === 'throws') expect(() => decodeValue(bytes)).toThrow(KvError);
          return;
        }
        // Damage can make an extension, which the plain decoder reads as ExtData (or a Date): not comparable.
        const jsonLike = (x: unknown): boolean =>
          x === null || typeof x !== 'object' || (Array.isArray(x) ? x.every(jsonLike) : Object.getPrototypeOf(x) === Object.prototype && Object.values(x).every(jsonLike));
        if (!jsonLike((theirs as { ok: unknown }).ok)) return;
        expect(difference((theirs as { ok: unknown }).ok, decodeValue(bytes))).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
  });
});

/** One step down into a container, with valid siblings around it. */
type Step =
  | { kind: 'object'; key: string; before: Record<string, unknown>; after: Record<string, unknown> }
  | { kind: 'array'; before: unknown[]; after: unknown[] }
  | { kind: 'map'; key: string | number; before: Array<[string, unknown]> }
  | { kind: 'set'; before: unknown[] };

const identifier = fc.stringMatching(/^[a-z][a-z0-9_]{0,5}$/);
const sibling = fc.dictionary(identifier, value, { maxKeys: 2, noNullPrototype: true });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('object' as const), key: identifier, before: sibling, after: sibling }),
  fc.record({ kind: fc.constant('array' as const), before: fc.array(value, { maxLength: 3 }), after: fc.array(value, { maxLength: 3 }) }),
  fc.record({
    kind: fc.constant('map' as const),
    key: fc.oneof(identifier, fc.integer({ min: -5, max: 5 })),
    before: fc.array(fc.tuple(fc.stringMatching(/^[A-Z]{1,3}$/), value), { maxLength: 2 }),
  }),
  fc.record({ kind: fc.constant('set' as const), before: fc.array(value, { maxLength: 3 }) }),
);

const refused = fc.constantFrom<[unknown, string]>(
  [() => 1, 'got a function'],
  [Symbol('s'), 'got a symbol'],
  [new Date(Number.NaN), 'got an invalid Date (NaN)'],
  [new (class Widget {})(), 'got an instance of Widget'],
  [/re/, 'got a RegExp'],
  ['\ud800', 'lone surrogate'],
);

describe('refusals name the path', () => {
  it('a refused part anywhere is reported at its path', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 6 }), refused, (steps, [bad, what]) => {
        let v: unknown = bad;
        let path = '';
        for (const s of [...steps].reverse()) {
          switch (s.kind) {
            case 'object': {
              const o: Record<string, unknown> = {};
              for (const [k, x] of Object.entries(s.before)) if (k !== s.key) o[k] = x;
              o[s.key] = v;
              for (const [k, x] of Object.entries(s.after)) if (!(k in o)) o[k] = x;
              v = o;
              path = `.${s.key}${path}`;
              break;
            }
            case 'array':
              path = `[${s.before.length}]${path}`;
              v = [...s.before, v, ...s.after];
              break;
            case 'map':
              v = new Map<unknown, unknown>([...s.before, [s.key, v]]);
              path = `.get(${JSON.stringify(s.key)})${path}`;
              break;
            case 'set':
              path = `.values()[${new Set(s.before).size}]${path}`;
              v = new Set([...s.before, v]);
              break;
          }
        }
        expect(() => encodeValue(v, Infinity)).toThrow(TypeError);
        try {
          encodeValue(v, Infinity);
        } catch (err) {
          const message = (err as Error).message;
          expect(message.startsWith(`Expected a value msgpack can round-trip at \`value${path}\`: `)).toBe(true);
          expect(message).toContain(what);
        }
      }),
      { numRuns: 300 },
    );
  });
});
