import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, KvError } from '../../../src/errors/index.js';
import { defaultTokens, hashKey, keyBytes, validateKey } from '../../../src/ring/index.js';
import { keyBytesInSlab } from '../../../src/ring/hash.js';
import { keyRef } from '../../../src/replication/index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof KvError ? err.code : `not a KvError: ${String(err)}`;
  }
  return undefined;
}

describe('hashKey', () => {
  it('matches known MurmurHash3 x86_32 (seed 0) values', () => {
    expect(hashKey('foo')).toBe(0xf6a5c420);
    expect(hashKey('hello')).toBe(0x248bfa47);
    expect(hashKey('Hello, world!')).toBe(0xc0363e43);
    expect(hashKey(new Uint8Array([0x21, 0x43, 0x65, 0x87]))).toBe(0xf55b516b);
  });

  it('hashes a string and a Uint8Array of its UTF-8 bytes equally', () => {
    for (const s of ['a', 'user:1', 'héllo wörld', '日本語キー', '😀 emoji', 'x'.repeat(1024)]) {
      expect(hashKey(new TextEncoder().encode(s))).toBe(hashKey(s));
    }
  });

  it('returns unsigned 32-bit integers and is stable across calls (scratch reuse)', () => {
    const long = 'ü'.repeat(500); // 1000 bytes
    const h1 = hashKey(long);
    hashKey('short');
    expect(hashKey(long)).toBe(h1);
    expect(Number.isInteger(h1) && h1 >= 0 && h1 < 2 ** 32).toBe(true);
  });

  it('rejects invalid keys with KV_INVALID_KEY', () => {
    expect(codeOf(() => hashKey(''))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey(new Uint8Array(0)))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey('\ud800'))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey('a\udc00b'))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey(42 as unknown as string))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey(null as unknown as string))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey([1, 2] as unknown as string))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey('x'.repeat(1025)))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey(new Uint8Array(1025)))).toBe(ErrorCodes.INVALID_KEY);
    // 342 code units, but 1026 UTF-8 bytes
    expect(codeOf(() => hashKey('€'.repeat(342)))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey('€'.repeat(341)))).toBeUndefined();
    expect(codeOf(() => hashKey('abcd', 3))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => hashKey('abc', 3))).toBeUndefined();
  });

  it('gives clear messages', () => {
    expect(() => hashKey('')).toThrow(/empty/);
    expect(() => hashKey('\ud800')).toThrow(/well-formed|surrogate/);
    expect(() => hashKey('x'.repeat(2000))).toThrow(/at most 1024/);
    expect(() => hashKey(7 as unknown as string)).toThrow(/string or a Uint8Array, got number/);
  });

  it('rejects a bad maxKeyBytes with RangeError', () => {
    expect(() => hashKey('a', 0)).toThrow(RangeError);
    expect(() => hashKey('a', 1.5)).toThrow(RangeError);
  });
});

describe('keyBytes / validateKey', () => {
  it('returns a fresh copy of the UTF-8 bytes', () => {
    const a = keyBytes('héllo');
    const b = keyBytes('héllo');
    expect([...a]).toEqual([...new TextEncoder().encode('héllo')]);
    expect(a).not.toBe(b);
    expect(a.buffer).not.toBe(b.buffer);
    const src = new Uint8Array([1, 2, 3]);
    const copy = keyBytes(src);
    src[0] = 9;
    expect(copy[0]).toBe(1);
  });

  it('property: the bytes are exactly TextEncoder\'s, for ASCII (fast path) and any well-formed string, fresh each call', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ minLength: 1, maxLength: 80 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 40 })), (s) => {
        const a = keyBytes(s);
        expect([...a]).toEqual([...new TextEncoder().encode(s)]);
        const b = keyBytes(s);
        expect(b).not.toBe(a);
        b[0] = (b[0]! + 1) & 0xff;
        expect(keyBytes(s)[0]).toBe(a[0]);
      }),
    );
  });

  it('keyBytes keeps a buffer of its own; keyRef\'s bytes are views into a shared slab that never overlap, with the same bytes, limits and errors', () => {
    expect(keyBytes('abc').buffer.byteLength).toBe(3);
    const keys = ['a', 'user:1', 'héllo', 'x'.repeat(64), 'y'.repeat(65), '日本語のキー', '\u{1F600}k'];
    const refs = keys.map((k) => keyRef(k));
    const raw = keyRef(new Uint8Array([7, 8, 9]));
    refs.forEach((ref, i) => {
      expect([...ref.bytes]).toEqual([...new TextEncoder().encode(keys[i]!)]);
      expect(ref.token).toBe(hashKey(keys[i]!));
    });
    // Views into a shared slab (larger than any key), each over bytes of its own: writing one changes no other.
    expect(refs[0]!.bytes.buffer.byteLength).toBeGreaterThan(1024);
    for (const ref of refs) ref.bytes.fill(0xff);
    expect([...raw.bytes]).toEqual([7, 8, 9]);
    expect([...keyRef('user:1').bytes]).toEqual([...new TextEncoder().encode('user:1')]);
    // A Uint8Array key is copied, not kept.
    const src = new Uint8Array([1, 2, 3]);
    const ref = keyRef(src);
    src[0] = 9;
    expect(ref.bytes[0]).toBe(1);
    expect(codeOf(() => keyRef(''))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => keyBytesInSlab('abcd', 3))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => keyRef('\ud800'))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => keyRef(new Uint8Array(0)))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => keyRef(42 as unknown as string))).toBe(ErrorCodes.INVALID_KEY);
  });

  it('the ASCII path keeps the limits: over maxKeyBytes and empty are KV_INVALID_KEY', () => {
    expect(keyBytes('abc', 3)).toEqual(new Uint8Array([97, 98, 99]));
    expect(codeOf(() => keyBytes('abcd', 3))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => keyBytes('a'.repeat(65), 64))).toBe(ErrorCodes.INVALID_KEY);
    expect(keyBytes('a'.repeat(64), 64)).toHaveLength(64);
    expect(codeOf(() => keyBytes('é'.repeat(33), 64))).toBe(ErrorCodes.INVALID_KEY); // 66 UTF-8 bytes
  });

  it('validates like hashKey', () => {
    expect(codeOf(() => keyBytes(''))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => validateKey('\udfff'))).toBe(ErrorCodes.INVALID_KEY);
    expect(codeOf(() => validateKey({}))).toBe(ErrorCodes.INVALID_KEY);
    expect(() => validateKey('ok')).not.toThrow();
  });
});

describe('defaultTokens', () => {
  it('is deterministic, sorted, unique, unsigned 32-bit', () => {
    const t = defaultTokens('node-a');
    expect(t).toEqual(defaultTokens('node-a'));
    expect(t.length).toBeGreaterThan(250);
    expect(t.length).toBeLessThanOrEqual(256);
    for (let i = 1; i < t.length; i++) expect(t[i]!).toBeGreaterThan(t[i - 1]!);
    expect(t.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)).toBe(true);
    expect(defaultTokens('node-b')).not.toEqual(t);
  });

  it('scales with weight and tokensPerWeight', () => {
    expect(defaultTokens('a', 2).length).toBeGreaterThan(500);
    expect(defaultTokens('a', 1, 8).length).toBe(8);
    expect(defaultTokens('a', 0.001).length).toBe(1);
    expect(() => defaultTokens('a', 0)).toThrow(RangeError);
    expect(() => defaultTokens('a', Number.NaN)).toThrow(RangeError);
    expect(() => defaultTokens('')).toThrow(TypeError);
  });
});
