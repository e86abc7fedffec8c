import { Buffer } from 'node:buffer';
import vm from 'node:vm';
import fc from 'fast-check';
import { decode as msgpackDecode, encode as msgpackEncode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import {
  MAX_VALUE_DEPTH,
  TypedArrayTag,
  ValueExtension,
  decodeValue,
  encodeValue,
} from '../../../src/store/value-codec.js';

const roundTrip = (value: unknown): unknown => decodeValue(encodeValue(value, Infinity));

/** Round-trips and checks equality, prototype included, with `toStrictEqual` (it tells Map from object). */
function expectRoundTrip(value: unknown): unknown {
  const back = roundTrip(value);
  expect(back).toStrictEqual(value);
  if (value !== null && typeof value === 'object') {
    expect(Object.getPrototypeOf(back)).toBe(Object.getPrototypeOf(value));
  }
  return back;
}

function refusal(value: unknown): TypeError {
  try {
    encodeValue(value, Infinity);
  } catch (err) {
    if (err instanceof TypeError) return err;
    throw err;
  }
  throw new Error('expected a TypeError');
}

function tooLarge(value: unknown, max: number): KvError {
  try {
    encodeValue(value, max);
  } catch (err) {
    if (err instanceof KvError) return err;
    throw err;
  }
  throw new Error('expected a KvError');
}

function malformed(bytes: Uint8Array | number[]): KvError {
  try {
    decodeValue(Uint8Array.from(bytes));
  } catch (err) {
    if (err instanceof KvError) return err;
    throw err;
  }
  throw new Error('expected a KvError');
}

const prefix = 'Expected a value msgpack can round-trip at ';

/** An ext 8 / ext 16 frame. */
function ext(type: number, payload: readonly number[]): number[] {
  if (payload.length < 0x100) return [0xc7, payload.length, type, ...payload];
  return [0xc8, payload.length >> 8, payload.length & 0xff, type, ...payload];
}

describe('encodeValue / decodeValue: what round-trips', () => {
  it('the reported defects: Map, Set, nested Set, Float32Array', () => {
    const m = expectRoundTrip(new Map([['apple', 3]]));
    expect(m).toBeInstanceOf(Map);
    expect((m as Map<string, number>).get('apple')).toBe(3);
    expectRoundTrip(new Set(['a', 'b']));
    expectRoundTrip({ tags: new Set([1, 2, 3]), inner: [new Set([new Set(['deep'])])] });
    const f = expectRoundTrip(new Float32Array([1.5, -2.25, 3]));
    expect(f).toBeInstanceOf(Float32Array);
  });

  it('null, booleans and every number encoding (ints of each width, floats, -0, NaN, ±Infinity)', () => {
    const numbers = [
      0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
      -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53 - 1),
      2 ** 53, 2 ** 60, -(2 ** 60), 1.5, -0.1, Number.MIN_VALUE, Number.MAX_VALUE,
      Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY,
    ];
    for (const n of numbers) expect(Object.is(roundTrip(n), n)).toBe(true);
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(Object.is((roundTrip({ z: -0 }) as { z: number }).z, -0)).toBe(true);
    expect(Object.is((roundTrip([0]) as number[])[0], 0)).toBe(true);
    for (const v of [null, true, false]) expect(roundTrip(v)).toBe(v);
  });

  it('bigint of any size and sign (not only 64-bit)', () => {
    for (const n of [0n, 1n, -1n, 255n, 256n, -(2n ** 63n), 2n ** 64n, -(2n ** 200n) + 7n]) {
      expect(roundTrip(n)).toBe(n);
    }
    expect(roundTrip({ n: [12345678901234567890n] })).toStrictEqual({ n: [12345678901234567890n] });
  });

  it('strings: ASCII, non-ASCII, astral (surrogate pairs), across every header width', () => {
    const strings = [
      '', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(70_000),
      'ü', 'ü'.repeat(11), 'ü'.repeat(15), 'ü'.repeat(16), 'ü'.repeat(100), 'ü'.repeat(40_000),
      'Grüße — 日本語 — 😀👩‍👩‍👧', '😀'.repeat(300), '\u0000\u007f\u0080\u07ff\u0800\uffff',
    ];
    for (const s of strings) expect(roundTrip(s)).toBe(s);
  });

  it('undefined inside objects, arrays, Maps and Sets stays undefined (and the key stays)', () => {
    const back = expectRoundTrip({ a: undefined, b: [undefined, null], m: new Map([[undefined, undefined]]), s: new Set([undefined]) });
    expect(Object.keys(back as object)).toEqual(['a', 'b', 'm', 's']);
    expect('a' in (back as object)).toBe(true);
  });

  it('Dates: to the millisecond, across the timestamp 32/64/96 encodings and the whole Date range', () => {
    const times = [
      0, 1, -1, 999, -999, 1_700_000_000_123, (2 ** 32 - 1) * 1000, 2 ** 32 * 1000, 2 ** 32 * 1000 + 1,
      (2 ** 34 - 1) * 1000 + 999, 2 ** 34 * 1000, 8.64e15, -8.64e15, -8.64e15 + 1,
    ];
    for (const t of times) {
      const back = roundTrip(new Date(t));
      expect(back).toBeInstanceOf(Date);
      expect((back as Date).getTime()).toBe(t);
    }
  });

  it('Uint8Array as MessagePack bin; a Buffer comes back as a plain Uint8Array with the same bytes', () => {
    expectRoundTrip(new Uint8Array([]));
    expectRoundTrip(Uint8Array.from({ length: 300 }, (_, i) => i & 0xff));
    expectRoundTrip(new Uint8Array(70_000).fill(7));
    const back = roundTrip(Buffer.from('héllo'));
    expect(Object.getPrototypeOf(back)).toBe(Uint8Array.prototype);
    expect(Buffer.from(back as Uint8Array).toString()).toBe('héllo');
  });

  it('every other typed array keeps its type and elements (NaN and -0 bits too)', () => {
    const arrays: ArrayBufferView[] = [
      Int8Array.of(-128, 0, 127),
      Uint8ClampedArray.of(0, 255),
      Int16Array.of(-32_768, 1, 32_767),
      Uint16Array.of(0, 65_535),
      Int32Array.of(-(2 ** 31), 2 ** 31 - 1),
      Uint32Array.of(0, 2 ** 32 - 1),
      Float32Array.of(Number.NaN, -0, 1e-45, Number.POSITIVE_INFINITY),
      Float64Array.of(Number.NaN, -0, Number.MAX_VALUE, Number.NEGATIVE_INFINITY),
      BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n),
      BigUint64Array.of(0n, 2n ** 64n - 1n),
      new Float64Array(0),
    ];
    const f16 = (globalThis as { Float16Array?: { of(...n: number[]): ArrayBufferView } }).Float16Array;
    if (f16) arrays.push(f16.of(1.5, -0));
    for (const a of arrays) {
      const back = roundTrip(a) as ArrayBufferView;
      expect(back.constructor).toBe(a.constructor);
      expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength)).toEqual(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
    }
  });

  it('a view into a larger buffer stores only what it views; it comes back over an exact, aligned buffer', () => {
    const big = new Float64Array([1, 2, 3, 4]);
    const view = new Float64Array(big.buffer, 8, 2);
    const back = expectRoundTrip(view) as Float64Array;
    expect([...back]).toEqual([2, 3]);
    expect(back.byteOffset).toBe(0);
    expect(back.buffer.byteLength).toBe(16);
    const dv = roundTrip(new DataView(Uint8Array.of(1, 2, 3, 4).buffer, 1, 2)) as DataView;
    expect(dv).toBeInstanceOf(DataView);
    expect([dv.byteLength, dv.getUint8(0), dv.getUint8(1)]).toEqual([2, 2, 3]);
  });

  it('ArrayBuffer and DataView', () => {
    const ab = roundTrip(Uint8Array.of(9, 8, 7).buffer) as ArrayBuffer;
    expect(ab).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(ab)]).toEqual([9, 8, 7]);
    expectRoundTrip({ ab: new ArrayBuffer(0), dv: new DataView(new ArrayBuffer(5)) });
  });

  it('decoded binary data does not share memory with the encoded bytes (except plain Uint8Array views)', () => {
    const bytes = encodeValue({ f: Float32Array.of(1, 2), ab: Uint8Array.of(5).buffer }, Infinity);
    const back = decodeValue(bytes) as { f: Float32Array; ab: ArrayBuffer };
    bytes.fill(0);
    expect([...back.f]).toEqual([1, 2]);
    expect([...new Uint8Array(back.ab)]).toEqual([5]);
  });

  it('plain objects, their key order (integer-like keys first, as JavaScript orders them) and awkward key names', () => {
    const o = { b: 1, a: { c: [1, 'x', { d: null }] }, 10: 'ten', 2: 'two', constructor: 1, toString: 'x', hasOwnProperty: [], '': 0, 'a b': 1, ü: 2 };
    const back = expectRoundTrip(o);
    expect(Object.keys(back as object)).toEqual(Object.keys(o));
  });

  it('object keys decoded through the key cache: thousands of keys sharing its slots, equal lengths, the 16/17-byte edge, non-ASCII', () => {
    // The decoder keeps the string of each short key it read, in 256 slots chosen by a hash of the bytes: 3,000 keys
    // of one length must share slots, so a lookup that trusted the slot or the length alone would return a wrong key.
    const keys: string[] = [];
    for (let i = 0; i < 3_000; i++) keys.push(`k${String(i).padStart(5, '0')}`);
    keys.push('x'.repeat(16), 'x'.repeat(17), 'y'.repeat(16), `${'x'.repeat(15)}y`, 'ü', 'üü', 'éa', 'aé', '日本', '', '0', '__proto__x');
    for (let round = 0; round < 2; round++) {
      // One object per key, read twice (the second read finds every key cached), and the keys in big objects.
      for (const key of keys) expect(Object.keys(roundTrip({ [key]: 1, z: key }) as object)).toEqual([key, 'z']);
      const big = Object.fromEntries(keys.map((k, i) => [k, i]));
      expect(roundTrip(big)).toStrictEqual(big);
    }
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ maxLength: 20, unit: 'binary' }), fc.integer()), { maxLength: 8 }), (entries) => {
        const o = Object.fromEntries(entries.filter(([k]) => k !== '__proto__'));
        expect(roundTrip(o)).toStrictEqual(o);
      }),
      { numRuns: 1_000 },
    );
  });

  it('null-prototype objects keep their null prototype (nested too)', () => {
    const o = Object.assign(Object.create(null) as Record<string, unknown>, { x: 1, inner: Object.assign(Object.create(null) as object, { y: [2] }) });
    const back = roundTrip(o) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(null);
    expect(Object.getPrototypeOf(back.inner)).toBe(null);
    expect({ ...back, inner: { ...(back.inner as object) } }).toEqual({ x: 1, inner: { y: [2] } });
  });

  it('arrays of every header width', () => {
    for (const n of [0, 15, 16, 65_535, 65_536]) {
      const a = Array.from({ length: n }, (_, i) => i % 3);
      expect(roundTrip(a)).toEqual(a);
    }
  });

  it('Maps keep insertion order and keys of any supported type (objects, Maps, NaN, undefined, "__proto__")', () => {
    const m = new Map<unknown, unknown>([
      ['z', 1],
      ['a', 2],
      [1, 'one'],
      [{ k: 1 }, 'object key'],
      [new Map([[1, 2]]), new Set([1])],
      [Number.NaN, 'nan'],
      [undefined, 'undef'],
      [null, 'null'],
      [10n, 'big'],
      ['__proto__', 'a string key, harmless in a Map'],
      [[1, 2], new Date(5)],
    ]);
    const back = expectRoundTrip(m) as Map<unknown, unknown>;
    expect([...back.values()]).toEqual([...m.values()]);
    expect(back.get(Number.NaN)).toBe('nan');
    expect(back.get('__proto__')).toBe('a string key, harmless in a Map');
  });

  it('Maps and Sets nested in objects, arrays, Maps and Sets, and sized past each header width', () => {
    expectRoundTrip({ a: [new Map([['m', new Map([['n', new Set([new Map(), new Set()])]])]])] });
    const big = new Map(Array.from({ length: 40_000 }, (_, i) => [`k${i}`, i] as const));
    expectRoundTrip(big);
    expectRoundTrip(new Set(Array.from({ length: 300 }, (_, i) => i)));
  });

  it('identity is not kept: a shared or key object comes back as equal, distinct objects', () => {
    const shared = { s: 1 };
    const back = roundTrip({ a: shared, b: shared }) as { a: object; b: object };
    expect(back.a).toEqual(back.b);
    expect(back.a).not.toBe(back.b);
    const set = roundTrip(new Set([{ x: 1 }, { x: 1 }])) as Set<unknown>;
    expect(set.size).toBe(2);
  });

  it(`nesting down to ${MAX_VALUE_DEPTH} levels, Maps included`, () => {
    let arrays: unknown = 1;
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) arrays = [arrays];
    expectRoundTrip(arrays);
    let maps: unknown = 'leaf';
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) maps = new Map([[i, maps]]);
    expectRoundTrip(maps);
  });

  it('plain objects and arrays from another realm come back as ordinary ones', () => {
    const foreign: unknown = vm.runInNewContext('({ a: [1, { b: "x" }], n: null })');
    expect(roundTrip(foreign)).toStrictEqual({ a: [1, { b: 'x' }], n: null });
  });

  it('getters are read: their value at put time comes back as a plain property', () => {
    let reads = 0;
    const o = {
      get now() {
        reads++;
        return 42;
      },
    };
    expect(roundTrip(o)).toStrictEqual({ now: 42 });
    expect(reads).toBe(1);
  });

  it('symbol-keyed and non-enumerable properties are not stored (as in JSON and structuredClone)', () => {
    const o = { a: 1, [Symbol('hidden')]: 2 };
    Object.defineProperty(o, 'secret', { value: 3, enumerable: false });
    expect(roundTrip(o)).toStrictEqual({ a: 1 });
  });

  it('a getter that itself encodes (a put inside a getter) does not disturb the outer encoding', () => {
    const o = {
      a: 'outer',
      get inner() {
        return decodeValue(encodeValue({ nested: new Map([[1, 'x'.repeat(3000)]]) }, Infinity));
      },
      z: [1, 2, 3],
    };
    expect(roundTrip(o)).toStrictEqual({ a: 'outer', inner: { nested: new Map([[1, 'x'.repeat(3000)]]) }, z: [1, 2, 3] });
  });
});

describe('decodeValue: plain MessagePack', () => {
  it('property: reads what @msgpack/msgpack writes as @msgpack/msgpack reads it (bins, nested, as views)', () => {
    const leaf = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double({ noNaN: true }),
      fc.boolean(),
      fc.constant(null),
      fc.uint8Array({ maxLength: 300 }),
    );
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('v'), { maxKeys: 4 })),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        const bytes = msgpackEncode(v);
        expect(decodeValue(bytes)).toStrictEqual(msgpackDecode(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('a truncated bin is refused with KV_INVALID_MESSAGE', () => {
    const bytes = msgpackEncode(new Uint8Array(40)).subarray(0, 20);
    expect(() => decodeValue(bytes)).toThrow(expect.objectContaining({ code: 'KV_INVALID_MESSAGE' }));
  });
});

describe('encodeValue: the wire format', () => {
  it('plain values are byte-for-byte what @msgpack/msgpack writes (older nodes read them)', () => {
    const values = [
      { id: 'user:1', name: 'Ada', tags: ['a', 'b'], n: 1.5, big: 70_000, neg: -200, ok: true, none: null },
      'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(40), 'x'.repeat(255), 'x'.repeat(256), `${'x'.repeat(200)}ü`, 'ü'.repeat(100), -1, 255, 2 ** 33, -(2 ** 33), 2 ** 60, [new Date(1_700_000_000_123)], new Uint8Array(300),
    ];
    for (const v of values) expect(Buffer.from(encodeValue(v, Infinity))).toEqual(Buffer.from(msgpackEncode(v)));
  });

  it('uses the documented extension numbers', () => {
    expect([...encodeValue(new Map(), Infinity)]).toEqual([0xc7, 1, ValueExtension.MAP, 0x90]);
    expect([...encodeValue(new Set([1]), Infinity)]).toEqual([0xc7, 2, ValueExtension.SET, 0x91, 1]);
    expect([...encodeValue([undefined], Infinity)]).toEqual([0x91, 0xc7, 0, ValueExtension.UNDEFINED]);
    expect([...encodeValue(Int16Array.of(1), Infinity)]).toEqual([0xc7, 3, ValueExtension.TYPED_ARRAY, TypedArrayTag.INT16, 1, 0]);
    expect([...encodeValue(new ArrayBuffer(1), Infinity)]).toEqual([0xc7, 1, ValueExtension.ARRAY_BUFFER, 0]);
    expect([...encodeValue(new DataView(new ArrayBuffer(1)), Infinity)]).toEqual([0xc7, 1, ValueExtension.DATA_VIEW, 0]);
    expect([...encodeValue(-256n, Infinity)]).toEqual([0xc7, 3, ValueExtension.BIGINT, 1, 1, 0]);
    expect([...encodeValue(Object.create(null), Infinity)]).toEqual([0xc7, 1, ValueExtension.NULL_PROTOTYPE_OBJECT, 0x80]);
    expect([...encodeValue(-0, Infinity)]).toEqual([0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('returns fresh bytes each call (not a view of the shared encoding buffer)', () => {
    const a = encodeValue('a', Infinity);
    const b = encodeValue('b', Infinity);
    const big = encodeValue('x'.repeat(5000), Infinity);
    expect([...a]).toEqual([0xa1, 0x61]);
    expect([...b]).toEqual([0xa1, 0x62]);
    // Small encodings may share a slab (as Node's small Buffers do), never bytes.
    if (a.buffer === b.buffer) {
      const [first, second] = a.byteOffset < b.byteOffset ? [a, b] : [b, a];
      expect(first.byteOffset + first.byteLength).toBeLessThanOrEqual(second.byteOffset);
    }
    b.fill(0);
    expect([...a]).toEqual([0xa1, 0x61]);
    // Past the slab limit an encoding has a buffer of its own.
    expect(big.buffer.byteLength).toBe(big.byteLength);
    expect(encodeValue('c', Infinity)[1]).toBe(0x63);
    expect([...a]).toEqual([0xa1, 0x61]);
  });
});

describe('encodeValue: what is refused, with the path', () => {
  it('the message names the path, as in the issue', () => {
    const value = { items: [{}, {}, { when: new Date(Number.NaN) }] };
    expect(refusal(value).message).toBe(`${prefix}\`value.items[2].when\`: got an invalid Date (NaN)`);
  });

  it('undefined as the whole value (delete() removes a key)', () => {
    expect(() => encodeValue(undefined, Infinity)).toThrow(new TypeError('Expected a value; to remove a key use delete()'));
  });

  const cases: Array<[string, unknown, string, string]> = [
    ['a function', { f: function named() {} }, 'value.f', 'got a function (named)'],
    ['an arrow function', [() => 1], 'value[0]', 'got a function'],
    ['a symbol', { s: Symbol('x') }, 'value.s', 'got a symbol (Symbol(x))'],
    ['a class instance', { p: new (class Point {})() }, 'value.p', 'got an instance of Point'],
    ['an object with another prototype', { o: Object.create({ inherited: 1 }) as object }, 'value.o', 'custom prototype'],
    ['a RegExp', { r: /x/g }, 'value.r', 'got a RegExp'],
    ['an Error', { e: new Error('boom') }, 'value.e', 'got an Error'],
    ['a TypeError', { e: new TypeError('boom') }, 'value.e', 'got an Error (TypeError)'],
    ['a Promise', { p: Promise.resolve(1) }, 'value.p', 'got a Promise'],
    ['a WeakMap', { w: new WeakMap() }, 'value.w', 'got a WeakMap'],
    ['a WeakSet', { w: new WeakSet() }, 'value.w', 'got a WeakSet'],
    ['a WeakRef', { w: new WeakRef({}) }, 'value.w', 'got a WeakRef'],
    ['a boxed number', { n: Object(1) as object }, 'value.n', 'got a Number object'],
    ['a boxed string', { n: Object('s') as object }, 'value.n', 'got a String object'],
    ['a SharedArrayBuffer', { b: new SharedArrayBuffer(1) }, 'value.b', 'got a SharedArrayBuffer'],
    ['a Map subclass', { m: new (class Registry extends Map {})() }, 'value.m', 'got an instance of Registry'],
    ['a Date subclass', { d: new (class Day extends Date {})() }, 'value.d', 'got an instance of Day'],
    ['a typed array subclass', { t: new (class Pixels extends Uint8Array {})(1) }, 'value.t', 'got an instance of Pixels'],
    ['an array subclass', { a: new (class List extends Array {})() }, 'value.a', 'got an instance of List'],
    ['a Map from another realm', { m: vm.runInNewContext('new Map()') as unknown }, 'value.m', 'got a Map from another realm'],
    ['an invalid Date', [new Date('nope')], 'value[0]', 'got an invalid Date (NaN)'],
    ['a lone high surrogate (short string)', { s: 'ab\ud800' }, 'value.s', 'lone surrogate (U+D800 at index 2)'],
    ['a lone low surrogate (long string)', { s: `${'x'.repeat(100)}\udc00😀` }, 'value.s', 'lone surrogate (U+DC00 at index 100)'],
    ['a reversed surrogate pair', ['\udc00\ud800'], 'value[0]', 'lone surrogate (U+DC00 at index 0)'],
    ['a key with a lone surrogate', { o: { '\ud83d': 1 } }, 'value.o["\\ud83d"]', 'got a property key with a lone surrogate (U+D83D at index 0)'],
    ['a hole in a sparse array', { list: [1, , 3] }, 'value.list[1]', 'got a hole in a sparse array'],
    ['an array made with new Array(n)', { list: new Array(2) }, 'value.list[0]', 'got a hole in a sparse array'],
    ['an own __proto__ key', { a: JSON.parse('{"ok": 1, "__proto__": {"admin": true}}') as unknown }, 'value.a["__proto__"]', 'got an own "__proto__" property'],
    ['a bad Map key', { m: new Map<unknown, unknown>([[1, 1], [Symbol('k'), 2]]) }, 'value.m.keys()[1]', 'got a symbol'],
    ['a bad Map value under a string key', { m: new Map([['apple', () => 3]]) }, 'value.m.get("apple")', 'got a function'],
    ['a bad Map value under a number key', new Map([[7, { x: /r/ }]]), 'value.get(7).x', 'got a RegExp'],
    ['a bad Map value under an object key', new Map([[{}, Symbol.iterator]]), 'value.values()[0]', 'got a symbol'],
    ['a bad Set item', { s: new Set([1, 2, new Date(Number.NaN)]) }, 'value.s.values()[2]', 'got an invalid Date'],
    ['a bad property of a null-prototype object', { n: Object.assign(Object.create(null) as object, { 'x-y': Symbol('z') }) }, 'value.n["x-y"]', 'got a symbol'],
  ];
  for (const [name, value, path, what] of cases) {
    it(`${name}, at \`${path}\``, () => {
      const err = refusal(value);
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message.startsWith(`${prefix}\`${path}\`: `)).toBe(true);
      expect(err.message).toContain(what);
    });
  }

  it('the value itself when it is the problem', () => {
    expect(refusal(Symbol('top')).message).toBe(`${prefix}\`value\`: got a symbol (Symbol(top))`);
    expect(refusal(new Date(Number.NaN)).message).toBe(`${prefix}\`value\`: got an invalid Date (NaN)`);
  });

  it('cycles are a TypeError naming where the cycle closes, not a stack overflow', () => {
    const self: Record<string, unknown> = { a: 1 };
    self.self = self;
    expect(refusal(self).message).toBe(`${prefix}\`value.self\`: got a circular reference (back to \`value\`)`);

    const inner: unknown[] = [];
    const outer = { data: { list: inner } };
    inner.push(1, outer.data);
    expect(refusal(outer).message).toBe(`${prefix}\`value.data.list[1]\`: got a circular reference (back to \`value.data\`)`);

    const m = new Map<string, unknown>();
    m.set('me', { s: new Set([m]) });
    expect(refusal({ m }).message).toBe(`${prefix}\`value.m.get("me").s.values()[0]\`: got a circular reference (back to \`value.m\`)`);
  });

  it(`nesting deeper than ${MAX_VALUE_DEPTH} levels, with a shortened path`, () => {
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_VALUE_DEPTH; i++) deep = { next: deep };
    const message = refusal(deep).message;
    expect(message).toMatch(/^Expected a value msgpack can round-trip at `value(\.next){10}…\(80 more\)…(\.next){10}`: got nesting deeper than 100 levels$/);
    let maps: unknown = 1;
    for (let i = 0; i <= MAX_VALUE_DEPTH; i++) maps = new Map([[i, maps]]);
    expect(refusal(maps).message).toContain('got nesting deeper than 100 levels');
  });

  it('a Map, Set or array that changes size while it is encoded (from a getter)', () => {
    const m = new Map<number, unknown>();
    m.set(1, {
      get grow() {
        m.set(2, 'late');
        return 0;
      },
    });
    expect(refusal(m).message).toContain('got a Map that changed size while it was being encoded');
    const a: unknown[] = [];
    a.push({
      get grow() {
        a.push('late');
        return 0;
      },
    });
    expect(refusal(a).message).toContain('got an array that changed length');
  });

  it('errors thrown by a getter propagate unchanged', () => {
    const boom = new Error('getter failed');
    const o = {
      get x(): never {
        throw boom;
      },
    };
    expect(() => encodeValue({ o }, Infinity)).toThrow(boom);
  });

  it('a refused value leaves the shared encoder usable', () => {
    expect(() => encodeValue({ a: new Map([[1, () => 1]]) }, Infinity)).toThrow(TypeError);
    expect(roundTrip(new Map([[1, 'ok']]))).toStrictEqual(new Map([[1, 'ok']]));
  });
});

describe('encodeValue: maxValueBytes', () => {
  it('accepts exactly maxValueBytes and refuses one byte less, Maps and Sets included', () => {
    const values = [
      'y'.repeat(10_237),
      'q'.repeat(100),
      `${'é'.repeat(60)}${'q'.repeat(60)}`,
      { m: new Map([['k', 'v'.repeat(300)]]), s: new Set([1, 2]) },
      new Map([[1, new Map([[2, new Set(['x'.repeat(70_000)])]])]]),
      new Float32Array(100),
    ];
    for (const v of values) {
      const size = encodeValue(v, Infinity).length;
      expect(encodeValue(v, size).length).toBe(size);
      const err = tooLarge(v, size - 1);
      expect(err.code).toBe('KV_VALUE_TOO_LARGE');
      expect(err.message).toContain(`over maxValueBytes=${size - 1}`);
    }
  });

  it('stops early: a huge string, buffer or shared-reference blow-up is refused without encoding it all', () => {
    expect(tooLarge('z'.repeat(50_000_000), 10_240).code).toBe('KV_VALUE_TOO_LARGE');
    expect(tooLarge(new Uint8Array(50_000_000), 10_240).code).toBe('KV_VALUE_TOO_LARGE');
    // 2^60 leaves if encoded in full.
    let dag: unknown = 1;
    for (let i = 0; i < 60; i++) dag = { a: dag, b: dag };
    const err = tooLarge(dag, 10_240);
    expect(err.code).toBe('KV_VALUE_TOO_LARGE');
    expect(err.message).toMatch(/^value is at least \d+ bytes encoded, over maxValueBytes=10240$/);
  });

  it('bytes at the top level (their own path): MessagePack bin of every header size, exact limits, a copy the caller owns', () => {
    const sizes = [0, 1, 255, 256, 4_093, 4_094, 65_535, 65_536, 70_000];
    for (const n of sizes) {
      for (const v of [Uint8Array.from({ length: n }, (_, i) => (i * 31) & 0xff), Buffer.alloc(n, 7)]) {
        const bytes = encodeValue(v, Infinity);
        // What the general writer gives the same bytes inside a container, and what @msgpack/msgpack gives.
        expect(Buffer.from(bytes).equals(Buffer.from(msgpackEncode(new Uint8Array(v))))).toBe(true);
        const inArray = encodeValue([v], Infinity);
        expect(Buffer.from(inArray.subarray(1)).equals(Buffer.from(bytes))).toBe(true);
        expect(decodeValue(bytes)).toEqual(new Uint8Array(v));
        expect(encodeValue(v, bytes.length)).toHaveLength(bytes.length);
        const err = tooLarge(v, bytes.length - 1);
        expect(err.message).toBe(`value is at least ${bytes.length} bytes encoded, over maxValueBytes=${bytes.length - 1}`);
      }
    }
    const source = new Uint8Array([1, 2, 3]);
    const encoded = encodeValue(source, 100);
    source[0] = 9;
    expect(decodeValue(encoded)).toEqual(new Uint8Array([1, 2, 3]));
    // A subclass of Uint8Array is not plain bytes: refused like any class instance, not written as bin.
    class Tagged extends Uint8Array {}
    expect(() => encodeValue(new Tagged(2), 100)).toThrow();
  });

  it('validates maxValueBytes', () => {
    expect(() => encodeValue(1, Number.NaN)).toThrow(RangeError);
    expect(() => encodeValue(1, -1)).toThrow('Expected `maxValueBytes` to be a non-negative number, got -1');
  });
});

describe('decodeValue', () => {
  it('reads values stored as plain MessagePack before the extension types existed', () => {
    const old = { name: 'Ada', when: new Date(1_700_000_000_000), bytes: Uint8Array.of(1, 2), list: [1, 'two', null, 2.5] };
    expect(decodeValue(msgpackEncode(old))).toStrictEqual(old);
    // Old encodings of what now round-trips differently still read as they always did.
    expect(decodeValue(msgpackEncode({ a: undefined, m: new Map([['k', 1]]) }))).toStrictEqual({ a: null, m: {} });
  });

  it('refuses malformed bytes with KV_INVALID_MESSAGE', () => {
    const cases: number[][] = [
      [],
      [0xc1],
      [0x92, 0x01],
      [0x01, 0x02],
      ext(42, []),
      ext(ValueExtension.UNDEFINED, [0]),
      ext(ValueExtension.MAP, [0x91, 0x01]),
      ext(ValueExtension.MAP, [0x01]),
      ext(ValueExtension.SET, [0xc0]),
      ext(ValueExtension.TYPED_ARRAY, []),
      ext(ValueExtension.TYPED_ARRAY, [99, 0]),
      ext(ValueExtension.TYPED_ARRAY, [TypedArrayTag.FLOAT32, 0, 0, 0]),
      ext(ValueExtension.BIGINT, [0]),
      ext(ValueExtension.BIGINT, [2, 1]),
      ext(ValueExtension.NULL_PROTOTYPE_OBJECT, [0x90]),
      [0x81, 0xa9, ...Buffer.from('__proto__'), 0x01],
    ];
    for (const bytes of cases) {
      const err = malformed(bytes);
      expect(err.code).toBe('KV_INVALID_MESSAGE');
      expect(err.message).toMatch(/^malformed value: /);
    }
  });

  it('refuses hostile nesting of extension types with KV_INVALID_MESSAGE, not a stack overflow', () => {
    let bytes = [0x01];
    for (let i = 0; i < MAX_VALUE_DEPTH + 5; i++) bytes = ext(ValueExtension.SET, [0x91, ...bytes]);
    expect(malformed(bytes).message).toContain('nested deeper than 100 levels');
    // and the decoder is fine afterwards
    expect(roundTrip(new Set([new Set([1])]))).toStrictEqual(new Set([new Set([1])]));
  });
});
