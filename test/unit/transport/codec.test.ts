import fc from 'fast-check';
import { decode, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import { decodeFrame, encodeFrame, passFrame, validateWireMessage, type Frame } from '../../../src/transport/codec.js';
import type { WireMessage } from '../../../src/transport/types.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    return (err as KvError).code;
  }
}
const messageOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('did not throw');
};

const wireValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double().filter((d) => !Object.is(d, -0)),
    fc.maxSafeInteger(),
    fc.string({ unit: 'grapheme' }),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string().filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 5 }),
  ),
})).value;

const body: fc.Arbitrary<WireMessage> = fc
  .tuple(fc.string(), fc.dictionary(fc.string().filter((k) => k !== '__proto__' && k !== 'type'), wireValue, { maxKeys: 5 }))
  .map(([type, rest]) => ({ ...rest, type }) as WireMessage);

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ kind: fc.constant('req' as const), id: fc.nat(), from: fc.string({ minLength: 1 }), body }),
  fc.record({ kind: fc.constant('res' as const), id: fc.maxSafeNat(), body }),
  fc.record({
    kind: fc.constant('err' as const),
    id: fc.nat(),
    code: fc.constantFrom('KV_TIMEOUT' as const, 'KV_OVERLOADED' as const, 'KV_STORAGE_FAILURE' as const),
    message: fc.string(),
  }),
);

describe('codec: round trips', () => {
  it('round-trips each frame kind', () => {
    const frames: Frame[] = [
      { kind: 'req', id: 1, from: 'node-a', body: { type: 'get', key: new Uint8Array([1, 2, 3]), n: 3 } },
      { kind: 'res', id: 2 ** 40, body: { type: 'ok', values: [{ v: 'x' }, null, true, 1.25] } },
      { kind: 'err', id: 0, code: 'KV_OVERLOADED', message: 'busy' },
    ];
    for (const f of frames) expect(decodeFrame(encodeFrame(f))).toEqual(f);
  });

  it('property: decode(encode(frame)) equals frame', () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        expect(decodeFrame(encodeFrame(f))).toEqual(f);
      }),
      { numRuns: 300 },
    );
  });

  it('leaves out undefined members', () => {
    const f = decodeFrame(encodeFrame({ kind: 'res', id: 1, body: { type: 't', a: undefined, b: 1 } }));
    expect(f.kind === 'res' && Object.keys(f.body)).toEqual(['type', 'b']);
  });

  it('decodes binaries as copies that do not alias the input', () => {
    const bytes = encodeFrame({ kind: 'res', id: 1, body: { type: 't', bin: new Uint8Array([5, 6, 7]) } });
    const f = decodeFrame(bytes);
    bytes.fill(0);
    expect(f.kind === 'res' && f.body.bin).toEqual(new Uint8Array([5, 6, 7]));
  });

  it('maps an unknown remote error code to KV_INVALID_MESSAGE and names it', () => {
    const f = decodeFrame(encode([2, 9, 'KV_FROM_THE_FUTURE', 'oops']));
    expect(f).toEqual({
      kind: 'err',
      id: 9,
      code: 'KV_INVALID_MESSAGE',
      message: expect.stringContaining('KV_FROM_THE_FUTURE') as unknown as string,
    });
  });
});

describe('codec: encode refuses what cannot travel', () => {
  const bad: [string, unknown][] = [
    ['Date', new Date()],
    ['Map', new Map()],
    ['function', () => 1],
    ['symbol', Symbol('s')],
    ['bigint', 1n],
    ['class instance', new (class Foo {})()],
    ['Int16Array', new Int16Array(2)],
    ['undefined in array', [undefined]],
  ];
  for (const [what, value] of bad) {
    it(`rejects a body holding a ${what} with KV_INVALID_MESSAGE`, () => {
      expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body: { type: 't', value } as never }))).toBe('KV_INVALID_MESSAGE');
    });
  }

  it('names the offending path', () => {
    expect(messageOf(() => encodeFrame({ kind: 'res', id: 1, body: { type: 't', a: [{ d: new Date() }] } as never }))).toContain(
      'response body.a[0].d',
    );
  });

  it('rejects cycles and over-deep nesting without overflowing the stack', () => {
    const cyclic: Record<string, unknown> = { type: 't' };
    cyclic.self = cyclic;
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body: cyclic as never }))).toBe('KV_INVALID_MESSAGE');
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body: { type: 't', deep } as never }))).toBe('KV_INVALID_MESSAGE');
  });

  it('rejects bodies that are not objects with a string type, bad ids and empty from', () => {
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body: [] as never }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body: { type: 1 } as never }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => encodeFrame({ kind: 'res', id: -1, body: { type: 't' } }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => encodeFrame({ kind: 'req', id: 1, from: '', body: { type: 't' } }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => encodeFrame({ kind: 'err', id: 1, code: 'KV_NOPE' as never, message: '' }))).toBe('KV_INVALID_MESSAGE');
  });

  it('enforces maxFrameBytes when encoding', () => {
    const f: Frame = { kind: 'res', id: 1, body: { type: 't', b: new Uint8Array(2000) } };
    expect(codeOf(() => encodeFrame(f, { maxFrameBytes: 1000 }))).toBe('KV_INVALID_MESSAGE');
  });
});

describe('codec: hostile frames', () => {
  const hostile: [string, Uint8Array][] = [
    ['empty input', new Uint8Array(0)],
    ['not an array', encode({ kind: 'req' })],
    ['unknown kind', encode([7, 1, { type: 't' }])],
    ['string kind', encode(['req', 1, 'a', { type: 't' }])],
    ['too few fields', encode([0, 1, 'a'])],
    ['too many fields', encode([1, 1, { type: 't' }, 'extra'])],
    ['negative id', encode([1, -1, { type: 't' }])],
    ['fractional id', encode([1, 1.5, { type: 't' }])],
    ['string id', encode([1, '1', { type: 't' }])],
    ['from not a string', encode([0, 1, 5, { type: 't' }])],
    ['empty from', encode([0, 1, '', { type: 't' }])],
    ['body not an object', encode([1, 1, 'body'])],
    ['body an array', encode([1, 1, ['type']])],
    ['body type not a string', encode([1, 1, { type: 5 }])],
    ['body without type', encode([1, 1, { x: 1 }])],
    ['err code not a string', encode([2, 1, 5, 'm'])],
    ['err message not a string', encode([2, 1, 'KV_TIMEOUT', null])],
    ['timestamp extension (Date)', encode([1, 1, { type: 't', d: new Date() }])],
    ['non-string map key', Uint8Array.from([0x93, 0x01, 0x01, 0x82, 0xa4, ...Buffer.from('type'), 0xa1, 0x74, 0x05, 0x06])],
    ['trailing bytes', Uint8Array.from([...encode([1, 1, { type: 't' }]), 0xc0])],
    ['truncated', encode([1, 1, { type: 't', s: 'hello' }]).slice(0, -2)],
    ['reserved byte 0xc1', Uint8Array.from([0x93, 0x01, 0x01, 0xc1])],
    ['array length bomb', Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff])],
    ['map length bomb', Uint8Array.from([0x93, 0x01, 0x01, 0xdf, 0x7f, 0xff, 0xff, 0xff])],
    ['string length bomb', Uint8Array.from([0x93, 0x01, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x41])],
    ['binary length bomb', Uint8Array.from([0x93, 0x01, 0x01, 0xc6, 0x7f, 0xff, 0xff, 0xff])],
    ['nesting bomb', new Uint8Array(200_000).fill(0x91)],
    ['__proto__ key', Uint8Array.from([0x93, 0x01, 0x01, 0x82, 0xa4, ...Buffer.from('type'), 0xa1, 0x74, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa1, 0x78, 0x01])],
  ];
  for (const [what, bytes] of hostile) {
    it(`rejects ${what} with KV_INVALID_MESSAGE`, () => {
      expect(codeOf(() => decodeFrame(bytes))).toBe('KV_INVALID_MESSAGE');
    });
  }

  it('rejects input that is not a Uint8Array', () => {
    expect(codeOf(() => decodeFrame('frame' as never))).toBe('KV_INVALID_MESSAGE');
  });

  it('enforces maxFrameBytes, maxCollectionLength and maxDepth', () => {
    const bytes = encodeFrame({ kind: 'res', id: 1, body: { type: 't', a: [1, 2, 3, 4, 5], n: { m: { o: {} } } } });
    expect(codeOf(() => decodeFrame(bytes, { maxFrameBytes: 10 }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(bytes, { maxCollectionLength: 4 }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(bytes, { maxDepth: 3 }))).toBe('KV_INVALID_MESSAGE');
    expect(decodeFrame(bytes, { maxDepth: 4, maxCollectionLength: 5 }).kind).toBe('res');
  });

  it('never lets __proto__ or constructor keys touch prototypes', () => {
    const f = decodeFrame(encode([1, 1, { type: 't', constructor: { prototype: { polluted: 1 } }, nested: { toString: 'x' } }]));
    expect(f.kind).toBe('res');
    if (f.kind !== 'res') return;
    expect(Object.getPrototypeOf(f.body)).toBe(Object.prototype);
    expect(Object.hasOwn(f.body, 'constructor')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('property: random bytes never throw anything but KV_INVALID_MESSAGE', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        try {
          decodeFrame(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(KvError);
          expect((err as KvError).code).toBe('KV_INVALID_MESSAGE');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('property: corrupted valid frames decode or throw KV_INVALID_MESSAGE only', () => {
    fc.assert(
      fc.property(frameArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (f, flips, cut) => {
        const bytes = encodeFrame(f);
        for (const [i, v] of flips) bytes[i % bytes.length] = v;
        for (const input of [bytes, bytes.slice(0, cut % (bytes.length + 1))]) {
          try {
            decodeFrame(input);
          } catch (err) {
            expect(err).toBeInstanceOf(KvError);
            expect((err as KvError).code).toBe('KV_INVALID_MESSAGE');
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('codec: compatibility and the in-process pass', () => {
  const tuple = (f: Frame): unknown[] =>
    f.kind === 'req' ? [0, f.id, f.from, f.body] : f.kind === 'res' ? [1, f.id, f.body] : [2, f.id, f.code, f.message];

  it('property: frames written by @msgpack/msgpack decode, and ours decode with @msgpack/msgpack', () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        expect(decodeFrame(encode(tuple(f), { ignoreUndefined: true }))).toEqual(f);
        expect(decode(encodeFrame(f))).toEqual(tuple(f));
      }),
      { numRuns: 300 },
    );
  });

  it('property: passFrame gives what decodeFrame(encodeFrame(frame)) gives, and the encoded size', () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        const passed = passFrame(f);
        const bytes = encodeFrame(f);
        expect(passed.frame).toEqual(decodeFrame(bytes));
        expect(passed.bytes).toBe(bytes.byteLength);
      }),
      { numRuns: 200 },
    );
  });

  it('passFrame refuses what encodeFrame refuses', () => {
    expect(codeOf(() => passFrame({ kind: 'res', id: 1, body: { type: 't', d: new Date() } as never }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => passFrame({ kind: 'res', id: 1, body: { type: 't', b: new Uint8Array(2000) } }, { maxFrameBytes: 1000 }))).toBe(
      'KV_INVALID_MESSAGE',
    );
  });

  it('each encoding is fresh bytes: a later one never overwrites an earlier one', () => {
    const first = encodeFrame({ kind: 'res', id: 1, body: { type: 'a', bin: new Uint8Array(100).fill(1) } });
    const copy = Uint8Array.from(first);
    for (let i = 0; i < 2000; i++) encodeFrame({ kind: 'res', id: i, body: { type: 'b', bin: new Uint8Array(100).fill(2) } });
    expect(Buffer.compare(first, copy)).toBe(0);
    const decoded = decodeFrame(first);
    for (let i = 0; i < 2000; i++) decodeFrame(encodeFrame({ kind: 'res', id: i, body: { type: 'c', bin: new Uint8Array(100).fill(3) } }));
    expect(decoded.kind === 'res' && Buffer.compare(decoded.body.bin as Uint8Array, new Uint8Array(100).fill(1))).toBe(0);
  });

  it('a body whose getter sends another message mid-encoding still encodes both correctly', () => {
    let inner: Uint8Array | undefined;
    const body = {
      type: 'outer',
      get x() {
        inner = encodeFrame({ kind: 'res', id: 2, body: { type: 'inner', s: 'deep' } });
        return 'after';
      },
    };
    const outer = encodeFrame({ kind: 'res', id: 1, body: body as never });
    expect(decodeFrame(outer)).toEqual({ kind: 'res', id: 1, body: { type: 'outer', x: 'after' } });
    expect(decodeFrame(inner!)).toEqual({ kind: 'res', id: 2, body: { type: 'inner', s: 'deep' } });
  });

  it('validateWireMessage names the path of what cannot travel', () => {
    expect(messageOf(() => validateWireMessage({ type: 't', a: { b: [1, new Map()] } }, undefined, 'request body'))).toBe(
      'request body.a.b[1] cannot be sent over the wire: it is an instance of Map',
    );
    expect(messageOf(() => validateWireMessage({ type: 't', a: [1, undefined] }))).toBe(
      'body.a[1] is undefined (arrays cannot hold undefined on the wire)',
    );
    expect(() => validateWireMessage({ type: 't', a: [1, { b: new Uint8Array(1) }], c: undefined })).not.toThrow();
  });

  it('reads every msgpack number form', () => {
    const numbers = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1, 0.5, -1e300];
    const f = decodeFrame(encode([1, 1, { type: 't', numbers }]));
    expect(f.kind === 'res' && f.body.numbers).toEqual(numbers);
    const f32 = decodeFrame(encode([1, 1, { type: 't', x: 1.5 }], { forceFloat32: true }));
    expect(f32.kind === 'res' && f32.body.x).toBe(1.5);
  });

  it('decodes repeated short strings to equal strings and long ones intact', () => {
    const long = 'é'.repeat(300);
    for (let i = 0; i < 3; i++) {
      const f = decodeFrame(encodeFrame({ kind: 'req', id: i, from: 'node-a', body: { type: 'kv.read', cluster: 'c', long, u: '\u{1F600}' } }));
      expect(f).toEqual({ kind: 'req', id: i, from: 'node-a', body: { type: 'kv.read', cluster: 'c', long, u: '\u{1F600}' } });
    }
  });
});
