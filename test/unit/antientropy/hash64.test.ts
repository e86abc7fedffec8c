import fc from 'fast-check';
import murmur from 'murmurhash3js-revisited';
import { describe, expect, it } from 'vitest';
// Internal module, tested directly against the reference implementation.
import { hash64Into, recordDigest } from '../../../src/antientropy/hash64.js';

const hex = (h: number): string => (h >>> 0).toString(16).padStart(8, '0');

function ours(bytes: Uint8Array): string {
  const out = new Int32Array(2);
  hash64Into(bytes, bytes.length, out, 0);
  return hex(out[0]!) + hex(out[1]!);
}

describe('hash64Into', () => {
  it('is the first 64 bits of MurmurHash3 x86_128 (murmurhash3js-revisited) for every tail length', () => {
    for (let n = 0; n <= 48; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 97 + n * 31 + 7) & 0xff);
      expect(ours(bytes), `length ${n}`).toBe(murmur.x86.hash128(bytes, 0).slice(0, 16));
    }
  });

  it('matches the reference on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(ours(bytes)).toBe(murmur.x86.hash128(bytes, 0).slice(0, 16));
      }),
      { numRuns: 300 },
    );
  });

  it('hashes only the first `length` bytes', () => {
    const bytes = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9);
    const out = new Int32Array(4);
    hash64Into(bytes, 5, out, 2);
    expect(hex(out[2]!) + hex(out[3]!)).toBe(ours(bytes.subarray(0, 5)));
    expect([out[0], out[1]]).toEqual([0, 0]);
  });
});

describe('recordDigest', () => {
  it('is the 64-bit hash, big-endian, in 8 fresh bytes', () => {
    const record = new TextEncoder().encode('a record');
    const digest = recordDigest(record);
    expect(digest).toHaveLength(8);
    expect(Buffer.from(digest).toString('hex')).toBe(ours(record));
    expect(recordDigest(record)).not.toBe(digest);
  });

  it('rejects what is not a Uint8Array', () => {
    expect(() => recordDigest('x' as unknown as Uint8Array)).toThrow(new TypeError('Expected `record` to be a Uint8Array, got string'));
    expect(() => recordDigest(null as unknown as Uint8Array)).toThrow(/got null/);
  });
});
