import fc from 'fast-check';
import { Decoder, decode, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import { decodeFrame, decodeFrameIn, encodeFrame, encodeFrameWith, ownBody, passFrame, type Frame } from '../../../src/transport/codec.js';
import type { WireMessage } from '../../../src/transport/types.js';

// The dedicated encoders of the replica protocol's messages (codec.ts, "hot
// messages") must write exactly what the generic walk writes. A body with a
// null prototype never takes a dedicated encoder (it is not the shape they
// accept), so encoding the same members under a null prototype is the
// generic walk's output.

/** The same members, in the same order, under a null prototype: always the generic walk. */
function generic(body: WireMessage): WireMessage {
  return Object.assign(Object.create(null) as object, body) as WireMessage;
}

const bytesOf = (f: Frame): Uint8Array => Uint8Array.from(encodeFrame(f));
const tuple = (f: Frame): unknown[] => (f.kind === 'req' ? [0, f.id, f.from, f.body] : f.kind === 'res' ? [1, f.id, f.body] : []);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    return (err as KvError).code;
  }
}

const bin = fc.uint8Array({ maxLength: 300 });
const binOrNull = fc.option(bin, { nil: null });
const str = fc.string({ unit: 'grapheme', maxLength: 40 });
const num = fc.oneof(fc.integer(), fc.double({ noNaN: false }).filter((d) => !Object.is(d, -0)), fc.maxSafeInteger(), fc.constant(2 ** 53 + 2));

/** Bodies of every hot message type, with members of their kinds, in their senders' order. */
const hotBody: fc.Arbitrary<WireMessage> = fc.oneof(
  fc.record({ cluster: str, key: bin }).map(({ cluster, key }) => ({ type: 'kv.read', cluster, key })),
  fc.record({ cluster: str, key: bin, record: bin }).map(({ cluster, key, record }) => ({ type: 'kv.apply', cluster, key, record })),
  fc
    .record({ cluster: str, key: bin, record: bin, target: str })
    .map(({ cluster, key, record, target }) => ({ type: 'kv.hint', cluster, key, record, target })),
  fc
    .record({
      cluster: str,
      key: bin,
      value: binOrNull,
      tombstone: fc.boolean(),
      overwrite: fc.boolean(),
      context: binOrNull,
      timestamp: fc.option(num, { nil: null }),
      expires: num,
    })
    .map((m) => ({
      type: 'kv.version',
      cluster: m.cluster,
      key: m.key,
      value: m.value,
      tombstone: m.tombstone,
      overwrite: m.overwrite,
      context: m.context,
      timestamp: m.timestamp,
      expires: m.expires,
    })),
  fc.constant({ type: 'kv.applied' }),
  fc.constant({ type: 'kv.hinted' }),
  binOrNull.map((record) => ({ type: 'kv.record', record })),
  bin.map((record) => ({ type: 'kv.versioned', record })),
  fc
    .record({ cluster: str, keys: fc.array(bin, { maxLength: 10 }), records: fc.array(bin, { maxLength: 10 }) })
    .map(({ cluster, keys, records }) => ({ type: 'kv.apply-batch', cluster, keys, records })),
  fc.constant({ type: 'kv.applied-batch', failures: [] }),
  fc.record({ cluster: str, keys: fc.array(bin, { maxLength: 10 }) }).map(({ cluster, keys }) => ({ type: 'kv.read-batch', cluster, keys })),
  fc.array(binOrNull, { maxLength: 10 }).map((records) => ({ type: 'kv.records', records, failures: [] })),
);

const hotFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ kind: fc.constant('req' as const), id: fc.maxSafeNat(), from: fc.string({ minLength: 1, maxLength: 30 }), body: hotBody }),
  fc.record({ kind: fc.constant('res' as const), id: fc.maxSafeNat(), body: hotBody }),
);

const withBody = (f: Frame, body: WireMessage): Frame => (f.kind === 'err' ? f : { ...f, body });

describe('codec: dedicated encoders of the hot messages', () => {
  it('property: write byte for byte what the generic walk and @msgpack/msgpack write, and round-trip', () => {
    fc.assert(
      fc.property(hotFrame, (f) => {
        const bytes = bytesOf(f);
        expect(Buffer.compare(bytes, bytesOf(withBody(f, generic((f as { body: WireMessage }).body))))).toBe(0);
        expect(Buffer.compare(bytes, encode(tuple(f)))).toBe(0);
        expect(decodeFrame(bytes)).toEqual(f);
        expect(decode(bytes)).toEqual(tuple(f));
        const passed = passFrame(f);
        expect(passed.frame).toEqual(f);
        expect(passed.bytes).toBe(bytes.byteLength);
        expect(encodeFrameWith(f, undefined, (view) => Buffer.compare(view, bytes))).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  /** Bodies of a hot type that are not its exact shape: each takes the generic walk. */
  const nearMisses: [string, () => unknown][] = [
    ['an extra member', () => ({ type: 'kv.apply', cluster: 'c', key: new Uint8Array([1]), record: new Uint8Array([2]), extra: 1 })],
    ['a missing member', () => ({ type: 'kv.apply', cluster: 'c', key: new Uint8Array([1]) })],
    ['members in another order', () => ({ type: 'kv.apply', key: new Uint8Array([1]), cluster: 'c', record: new Uint8Array([2]) })],
    ['type not first', () => ({ cluster: 'c', type: 'kv.read', key: new Uint8Array([1]) })],
    ['an undefined member', () => ({ type: 'kv.apply', cluster: 'c', key: new Uint8Array([1]), record: undefined })],
    ['a member of another kind', () => ({ type: 'kv.read', cluster: 'c', key: 'a string key' })],
    ['null where a binary is required', () => ({ type: 'kv.versioned', record: null })],
    ['a number as a string', () => ({ type: 'kv.version', cluster: 'c', key: new Uint8Array([1]), value: null, tombstone: false, overwrite: false, context: null, timestamp: null, expires: '5' })],
    ['a nested object where a binary is required', () => ({ type: 'kv.record', record: { nested: [1, 2] } })],
    ['a list holding a string', () => ({ type: 'kv.read-batch', cluster: 'c', keys: [new Uint8Array([1]), 'k'] })],
    ['a list holding null where only binaries go', () => ({ type: 'kv.apply-batch', cluster: 'c', keys: [new Uint8Array([1])], records: [null] })],
    ['a sparse list', () => ({ type: 'kv.read-batch', cluster: 'c', keys: [new Uint8Array([1]), , new Uint8Array([2])] })],
    ['a binary where a list is required', () => ({ type: 'kv.read-batch', cluster: 'c', keys: new Uint8Array([1]) })],
    ['failures that are not empty', () => ({ type: 'kv.applied-batch', failures: [[0, 'KV_INTERNAL', 'x']] })],
    ['answers with failures', () => ({ type: 'kv.records', records: [null], failures: [[0, 'KV_TIMEOUT', 'late']] })],
  ];
  for (const [what, make] of nearMisses) {
    it(`a hot type with ${what} is written as the generic walk writes it`, () => {
      const f: Frame = { kind: 'res', id: 7, body: make() as WireMessage };
      const viaGeneric = (): Uint8Array => bytesOf({ kind: 'res', id: 7, body: generic(make() as WireMessage) });
      const code = codeOf(() => encodeFrame(f));
      if (code !== undefined) {
        // Refused: the generic walk refuses it too, with the same message.
        expect(codeOf(viaGeneric)).toBe(code);
        return;
      }
      expect(Buffer.compare(bytesOf(f), viaGeneric())).toBe(0);
    });
  }

  it('a class instance of a hot type is refused, as every non-plain body is', () => {
    const body = Object.assign(new (class Msg {})(), { type: 'kv.applied' });
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body: body as never }))).toBe('KV_INVALID_MESSAGE');
  });

  it('symbol keys on a hot message are refused, as the generic walk refuses them', () => {
    const body = { type: 'kv.read', cluster: 'c', key: new Uint8Array([1]), [Symbol('s')]: 1 };
    expect(codeOf(() => encodeFrame({ kind: 'req', id: 1, from: 'a', body: body as never }))).toBe('KV_INVALID_MESSAGE');
  });

  it('a frozen answer without members is written as the walk writes it, the first time and every time after', () => {
    const applied = Object.freeze({ type: 'kv.applied' });
    const viaGeneric = bytesOf({ kind: 'res', id: 5, body: generic({ type: 'kv.applied' }) });
    for (let i = 0; i < 3; i++) expect(Buffer.compare(bytesOf({ kind: 'res', id: 5, body: applied }), viaGeneric)).toBe(0);
    // Limits apply to it as to any body.
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 5, body: applied }, { maxCollectionLength: 0 }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 5, body: applied }, { maxDepth: 0 }))).toBe('KV_INVALID_MESSAGE');
  });

  it('an answer that is not frozen is checked every time: a symbol key added later is refused', () => {
    const applied: Record<string | symbol, unknown> = { type: 'kv.hinted' };
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body: applied as unknown as WireMessage }))).toBeUndefined();
    applied[Symbol('late')] = 1;
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body: applied as unknown as WireMessage }))).toBe('KV_INVALID_MESSAGE');
  });

  it('a frozen answer whose type is a getter is read every time it is written', () => {
    let reads = 0;
    const body = Object.freeze({
      get type() {
        reads++;
        return reads > 3 ? 'kv.hinted' : 'kv.applied';
      },
    });
    for (let i = 0; i < 3; i++) encodeFrame({ kind: 'res', id: 1, body: body as WireMessage });
    const later = decodeFrame(encodeFrame({ kind: 'res', id: 1, body: body as WireMessage }));
    expect((later as { body: WireMessage }).body.type).toBe('kv.hinted');
  });

  it('property: a body marked as built by the protocol (ownBody) is written as the walk writes it', () => {
    fc.assert(
      fc.property(hotFrame, (f) => {
        const body = (f as { body: WireMessage }).body;
        const marked = bytesOf(withBody(f, ownBody({ ...body })));
        expect(Buffer.compare(marked, bytesOf(withBody(f, generic(body))))).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('ownBody skips the look for symbol keys (and, for types with their own writer, the member list), for the next body written only', () => {
    type Loose = Record<string | symbol, unknown>;
    const read = (): Loose => ({ type: 'kv.read', cluster: 'c', key: new Uint8Array([1]) });
    const mark = (body: Loose): Loose => ownBody(body as unknown as WireMessage) as unknown as Loose;
    const req = (body: object): Frame => ({ kind: 'req', id: 1, from: 'a', body: body as WireMessage });
    // The documented trade: a symbol key added after the mark is not looked for.
    const marked = mark(read());
    marked[Symbol('s')] = 1;
    expect(decodeFrame(encodeFrame(req(marked)))).toEqual(req(read()));
    // Once written, the mark is gone: the same body is checked again, and refused.
    expect(codeOf(() => encodeFrame(req(marked)))).toBe('KV_INVALID_MESSAGE');
    // A mark holds for the next body written only.
    const first = mark(read());
    encodeFrame(req(read()));
    first[Symbol('s')] = 1;
    expect(codeOf(() => encodeFrame(req(first)))).toBe('KV_INVALID_MESSAGE');
    // The other documented trade, for the types with a writer of their own: their members' names are not listed,
    // so a member the protocol did not put there is not sent (unmarked, the same body takes the walk).
    const extra = (): Loose => ({ ...read(), extra: 1 });
    expect(decodeFrame(encodeFrame(req(mark(extra()))))).toEqual(req(read()));
    expect(Buffer.compare(bytesOf(req(extra())), bytesOf(req(generic(extra() as unknown as WireMessage))))).toBe(0);
    // A marked body of a type without its own writer is still checked member by member: an extra one takes the walk.
    const hint = (): Loose => ({ type: 'kv.hint', cluster: 'c', key: new Uint8Array([1]), record: new Uint8Array([2]), target: 'n2', extra: 1 });
    expect(Buffer.compare(bytesOf(req(mark(hint()))), bytesOf(req(generic(hint() as unknown as WireMessage))))).toBe(0);
    // Still checked on a marked body: its prototype (a class instance is refused) and each member's kind.
    const instance = ownBody(Object.assign(new (class Msg {})(), read()) as unknown as WireMessage);
    expect(codeOf(() => encodeFrame(req(instance)))).toBe('KV_INVALID_MESSAGE');
    const badKey = mark({ ...read(), key: 'not bytes' });
    expect(Buffer.compare(bytesOf(req(badKey)), bytesOf(req(generic({ ...read(), key: 'not bytes' } as unknown as WireMessage))))).toBe(0);
  });

  it('limits apply to a list member as the generic walk applies them: its length, and one level more of depth', () => {
    const keys = [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])];
    const body: WireMessage = { type: 'kv.read-batch', cluster: 'c', keys };
    const f: Frame = { kind: 'req', id: 1, from: 'a', body };
    const viaGeneric = (limits: object): string | undefined => codeOf(() => encodeFrame({ ...f, body: generic(body) }, limits));
    for (const limits of [{ maxCollectionLength: 2 }, { maxDepth: 1 }, { maxCollectionLength: 3 }, { maxDepth: 2 }]) {
      expect(codeOf(() => encodeFrame(f, limits))).toBe(viaGeneric(limits));
      const bytes = encodeFrame(f);
      expect(codeOf(() => decodeFrame(bytes, limits))).toBe(codeOf(() => decodeFrame(encodeFrame({ ...f, body: generic(body) }), limits)));
    }
    expect(codeOf(() => encodeFrame(f, { maxCollectionLength: 2 }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(encodeFrame(f), { maxDepth: 1 }))).toBe('KV_INVALID_MESSAGE');
  });

  it('a list whose element changes while it is written is refused, not written wrong', () => {
    let reads = 0;
    const keys = [new Uint8Array([1])];
    Object.defineProperty(keys, 0, { get: () => (++reads > 1 ? 'changed' : new Uint8Array([1])) });
    expect(codeOf(() => encodeFrame({ kind: 'req', id: 1, from: 'a', body: { type: 'kv.read-batch', cluster: 'c', keys } }))).toBe('KV_INVALID_MESSAGE');
  });

  it('limits still apply: maxFrameBytes, and a maxCollectionLength below the member count', () => {
    const body: WireMessage = { type: 'kv.apply', cluster: 'c', key: new Uint8Array([1]), record: new Uint8Array(2000) };
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body }, { maxFrameBytes: 1000 }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body }, { maxCollectionLength: 3 }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => encodeFrame({ kind: 'res', id: 1, body }, { maxCollectionLength: 4 }))).toBeUndefined();
  });

  it('a getter of a hot message that encodes another hot message mid-encoding: both are right', () => {
    let inner: Uint8Array | undefined;
    const record = new Uint8Array([9, 9, 9]);
    const body = {
      type: 'kv.apply',
      cluster: 'outer',
      get key() {
        inner = encodeFrame({ kind: 'req', id: 2, from: 'x', body: { type: 'kv.apply', cluster: 'inner', key: new Uint8Array([5]), record: new Uint8Array([6]) } });
        return new Uint8Array([1]);
      },
      record,
    };
    const outer = encodeFrame({ kind: 'res', id: 1, body: body as never });
    expect(decodeFrame(outer)).toEqual({ kind: 'res', id: 1, body: { type: 'kv.apply', cluster: 'outer', key: new Uint8Array([1]), record } });
    expect(decodeFrame(inner!)).toEqual({
      kind: 'req',
      id: 2,
      from: 'x',
      body: { type: 'kv.apply', cluster: 'inner', key: new Uint8Array([5]), record: new Uint8Array([6]) },
    });
  });

  it('encodeFrameWith does not call back for a frame it refuses', () => {
    let called = false;
    expect(
      codeOf(() =>
        encodeFrameWith({ kind: 'res', id: 1, body: { type: 'kv.read', cluster: 'c', key: new Date() } as never }, undefined, () => {
          called = true;
        }),
      ),
    ).toBe('KV_INVALID_MESSAGE');
    expect(called).toBe(false);
  });
});

/**
 * @msgpack/msgpack without its cache of map keys: `decode()` shares one that
 * answers by a key's bytes alone, so a key whose last UTF-8 sequence is cut
 * short (completed by the bytes after it) comes back as it read the first
 * time, whatever follows it now. Ours reads it as it is each time.
 */
const uncached = new Decoder({ keyDecoder: null });

/** The frame @msgpack/msgpack reads from `bytes`, as decodeFrame gives it (the reference for the dedicated decoders). */
function referenceFrame(bytes: Uint8Array): Frame {
  const t = uncached.decode(bytes) as unknown[];
  return t[0] === 0
    ? ({ kind: 'req', id: t[1], from: t[2], body: t[3] } as Frame)
    : ({ kind: 'res', id: t[1], body: t[2] } as Frame);
}

/** Member names at every level, in order: toEqual does not compare the order of keys. */
function keyOrder(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return null;
  if (Array.isArray(v)) return v.map(keyOrder);
  return Object.entries(v).map(([k, x]) => [k, keyOrder(x)]);
}

function expectSameFrame(got: Frame, want: Frame): void {
  expect(got).toEqual(want);
  expect(keyOrder(got)).toEqual(keyOrder(want));
  if (got.kind !== 'err') expect(Object.getPrototypeOf(got.body)).toBe(Object.prototype);
}

describe('codec: dedicated decoders of the hot messages', () => {
  it('property: read what @msgpack/msgpack reads, members in the order written', () => {
    fc.assert(
      fc.property(hotFrame, (f) => {
        const bytes = encodeFrame(f);
        expectSameFrame(decodeFrame(bytes), referenceFrame(bytes));
        expectSameFrame(decodeFrame(bytes), f);
        expectSameFrame(decodeFrameIn(bytes, 0, bytes.length), f);
      }),
      { numRuns: 400 },
    );
  });

  it('property: a hot frame with one byte changed, cut or added reads as @msgpack/msgpack reads it, or is refused with KV_INVALID_MESSAGE', () => {
    const mutated = fc
      .tuple(hotFrame, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert'))
      .map(([f, at, byte, how]) => {
        const bytes = Uint8Array.from(encodeFrame(f));
        const i = at % bytes.length;
        if (how === 'set') bytes[i] = byte;
        if (how === 'cut') return bytes.subarray(0, i);
        if (how === 'insert') return Uint8Array.from([...bytes.subarray(0, i), byte, ...bytes.subarray(i)]);
        return bytes;
      });
    let decoded = 0;
    fc.assert(
      fc.property(mutated, (bytes) => {
        let got: Frame;
        try {
          got = decodeFrame(bytes);
        } catch (err) {
          expect((err as KvError).code).toBe('KV_INVALID_MESSAGE');
          return;
        }
        decoded++;
        expectSameFrame(got, referenceFrame(bytes));
      }),
      { numRuns: 3000 },
    );
    // The property is not vacuous: many mutations (a changed id, a byte of a binary) still decode.
    expect(decoded).toBeGreaterThan(300);
  });

  it('a member name cut short inside a UTF-8 sequence reads with the bytes after it, each time (found by the property above)', () => {
    // [0, 2^32, '     ', {type: 'kv.hint', cluster: '', key: bin7, record: bin1, 'targe\xf0': <what follows>}]: the name's
    // last byte starts a 4-byte sequence the decoder completes with the next bytes, so the same name bytes read two ways.
    const head = [148, 0, 207, 0, 0, 0, 1, 0, 0, 0, 0, 165, 32, 32, 32, 32, 32, 133, 164, 116, 121, 112, 101, 167, 107, 118, 46, 104, 105, 110, 116, 167, 99, 108, 117, 115, 116, 101, 114, 160, 163, 107, 101, 121, 196, 7, 0, 0, 0, 0, 0, 0, 0, 166, 114, 101, 99, 111, 114, 100, 196, 1, 0, 166, 116, 97, 114, 103, 101, 240];
    const names = [[162, 32, 32], [162, 180, 178]].map((tail) => {
      const bytes = Uint8Array.from([...head, ...tail]);
      let frame: Frame;
      try {
        frame = decodeFrame(bytes);
      } catch (err) {
        expect((err as KvError).code).toBe('KV_INVALID_MESSAGE');
        expect(() => uncached.decode(bytes)).toThrow();
        return undefined;
      }
      expectSameFrame(frame, referenceFrame(bytes));
      expect(frame.kind).toBe('req');
      return frame.kind === 'err' ? undefined : Object.keys(frame.body).at(-1);
    });
    expect(names[0]).toBe('targe\u{22820}');
    expect(names[1]).not.toBe(names[0]);
  });

  it('near misses (members added, missing, reordered, of another kind) read as @msgpack/msgpack reads them', () => {
    const bodies: unknown[] = [
      { type: 'kv.apply', cluster: 'c', key: new Uint8Array([1]), record: new Uint8Array([2]), extra: 1 },
      { type: 'kv.apply', cluster: 'c', key: new Uint8Array([1]) },
      { type: 'kv.apply', key: new Uint8Array([1]), cluster: 'c', record: new Uint8Array([2]) },
      { cluster: 'c', type: 'kv.read', key: new Uint8Array([1]) },
      { type: 'kv.read', cluster: 'c', key: 'a string key' },
      { type: 'kv.versioned', record: null },
      { type: 'kv.record', record: { nested: [1, 2] } },
      { type: 'kv.version', cluster: 'c', key: new Uint8Array([1]), value: null, tombstone: 0, overwrite: false, context: null, timestamp: null, expires: 5 },
      { type: 'kv.version', cluster: 'c', key: new Uint8Array([1]), value: null, tombstone: false, overwrite: false, context: null, timestamp: null, expires: null },
      { type: 'kv.applied', note: 'x' },
      { type: 'kv.unknown', cluster: 'c' },
    ];
    for (const body of bodies) {
      const bytes = encode([1, 3, body]);
      expectSameFrame(decodeFrame(bytes), referenceFrame(bytes));
    }
  });

  it('limits still apply to a hot body: maxDepth 0 and a maxCollectionLength below its member count refuse it', () => {
    const bytes = encodeFrame({ kind: 'res', id: 1, body: { type: 'kv.apply', cluster: 'c', key: new Uint8Array([1]), record: new Uint8Array([2]) } });
    expect(codeOf(() => decodeFrame(bytes, { maxCollectionLength: 3 }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(bytes, { maxDepth: 0 }))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(bytes, { maxCollectionLength: 4 }))).toBeUndefined();
  });

  it('decoded hot bodies hold no reference to each other (the decoder reuses one scratch array)', () => {
    const a = decodeFrame(encodeFrame({ kind: 'res', id: 1, body: { type: 'kv.versioned', record: new Uint8Array([1]) } }));
    const b = decodeFrame(encodeFrame({ kind: 'res', id: 2, body: { type: 'kv.versioned', record: new Uint8Array([2]) } }));
    expect((a as unknown as { body: { record: Uint8Array } }).body.record).toEqual(new Uint8Array([1]));
    expect((b as unknown as { body: { record: Uint8Array } }).body.record).toEqual(new Uint8Array([2]));
  });
});

describe('codec: decodeFrameIn (in place)', () => {
  // The records and values of the data path stay views of the input; every other binary is a copy.
  const PAYLOADS: Record<string, string> = {
    'kv.apply': 'record',
    'kv.hint': 'record',
    'kv.versioned': 'record',
    'kv.record': 'record',
    'kv.version': 'value',
    'kv.apply-batch': 'records',
    'kv.records': 'records',
  };

  it('property: decodes a frame where it lies, as decodeFrame does; payloads are views of it, other binaries plain copies', () => {
    fc.assert(
      fc.property(hotFrame, fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ maxLength: 20 }), fc.boolean(), (f, before, after, asBuffer) => {
        const bytes = encodeFrame(f);
        const all = new Uint8Array(before.length + bytes.length + after.length);
        all.set(before, 0);
        all.set(bytes, before.length);
        all.set(after, before.length + bytes.length);
        const input = asBuffer ? Buffer.from(all.buffer, all.byteOffset, all.byteLength) : all;
        const got = decodeFrameIn(input, before.length, before.length + bytes.length);
        expect(got).toEqual(decodeFrame(bytes));
        expect(got).toEqual(f);
        // Binaries are Uint8Arrays (not Buffers); only a payload aliases the input.
        const body = (got as { body: Record<string, unknown> }).body;
        const payload = PAYLOADS[String(body['type'])];
        // Binaries of the body and of its lists (a batch's keys and records), by member name.
        const binaries = Object.entries(body).flatMap(([name, v]): [string, Uint8Array][] =>
          v instanceof Uint8Array ? [[name, v]] : Array.isArray(v) ? v.filter((e): e is Uint8Array => e instanceof Uint8Array).map((e) => [name, e]) : [],
        );
        for (const [, b] of binaries) expect(Object.getPrototypeOf(b)).toBe(Uint8Array.prototype);
        const snapshot = binaries.map(([, b]) => Uint8Array.from(b));
        all.fill(0xee);
        binaries.forEach(([name, b], i) => {
          if (name === payload) expect(b.every((x) => x === 0xee)).toBe(true);
          else expect(Buffer.compare(b, snapshot[i]!)).toBe(0);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('property: random and corrupted input never throws anything but KV_INVALID_MESSAGE', () => {
    fc.assert(
      fc.property(hotFrame, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), (f, flips, cut) => {
        const bytes = Uint8Array.from(encodeFrame(f));
        for (const [at, v] of flips) bytes[at % bytes.length] = v;
        const end = Math.max(1, bytes.length - (cut % 3));
        const code = codeOf(() => decodeFrameIn(bytes, 0, end));
        expect(code === undefined || code === 'KV_INVALID_MESSAGE').toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('refuses an empty range and a frame over maxFrameBytes', () => {
    const bytes = encodeFrame({ kind: 'res', id: 1, body: { type: 'kv.record', record: new Uint8Array(500) } });
    expect(codeOf(() => decodeFrameIn(bytes, 3, 3))).toBe('KV_INVALID_MESSAGE');
    expect(codeOf(() => decodeFrameIn(bytes, 0, bytes.length, { maxFrameBytes: 100 }))).toBe('KV_INVALID_MESSAGE');
    // A frame cut short of its end inside the range is truncated, not read past the range.
    expect(codeOf(() => decodeFrameIn(bytes, 0, bytes.length - 1))).toBe('KV_INVALID_MESSAGE');
  });

  it('leaves decodeFrame viewing its own copy afterwards (the in-place mode does not leak)', () => {
    const bytes = encodeFrame({ kind: 'res', id: 1, body: { type: 'kv.record', record: new Uint8Array([1, 2, 3]) } });
    expect(codeOf(() => decodeFrameIn(new Uint8Array([0x93, 0x01]), 0, 2))).toBe('KV_INVALID_MESSAGE');
    const f = decodeFrame(bytes);
    expect(f).toEqual({ kind: 'res', id: 1, body: { type: 'kv.record', record: new Uint8Array([1, 2, 3]) } });
  });
});

describe('codec: repeated header and cluster strings', () => {
  it('property: frames from alternating senders and clusters are written as @msgpack/msgpack writes them', () => {
    // More senders than the cache remembers (8): entries are replaced and found again.
    const senders = ['127.0.0.1:7001', 'n\u00e9-2:80', 'x'.repeat(70), 'a', ...Array.from({ length: 9 }, (_, k) => `n${k}:70${k}`)];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...senders), fc.constantFrom('bench', '', 'gr\u00fcn', 'c'.repeat(80))), {
          minLength: 1,
          maxLength: 40,
        }),
        (senders) => {
          for (const [i, [from, cluster]] of senders.entries()) {
            const f: Frame = { kind: 'req', id: i, from, body: { type: 'kv.read', cluster, key: new Uint8Array([i]) } };
            expect(Buffer.compare(encodeFrame(f), encode(tuple(f)))).toBe(0);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('maxHeaderStringBytes applies to a sender address written from its remembered bytes', () => {
    const f: Frame = { kind: 'req', id: 1, from: '127.0.0.1:7001', body: { type: 'kv.applied' } };
    expect(codeOf(() => encodeFrame(f))).toBeUndefined();
    expect(codeOf(() => encodeFrame(f, { maxHeaderStringBytes: 10 }))).toBe('KV_INVALID_MESSAGE');
  });
});
