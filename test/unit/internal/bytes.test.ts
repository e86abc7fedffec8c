import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MsgpackReader, MsgpackWriter, StringCache, allocBytes, bytesKey, copyTail, latin1Of, sameBytes, writeLatin1 } from '../../../src/internal/bytes.js';

/** `bytes` at a non-zero offset of a larger buffer, so views are exercised, not whole buffers. */
function offsetView(bytes: Uint8Array): Uint8Array {
  const backing = new Uint8Array(bytes.length + 7);
  backing.set(bytes, 3);
  return backing.subarray(3, 3 + bytes.length);
}

describe('latin1 helpers', () => {
  it('latin1Of gives one char per byte, for every byte value, from a view at an offset', () => {
    const all = offsetView(Uint8Array.from({ length: 256 }, (_, i) => i));
    const s = latin1Of(all);
    expect(s.length).toBe(256);
    for (let i = 0; i < 256; i++) expect(s.charCodeAt(i)).toBe(i);
    expect(latin1Of(all, 65, 68)).toBe('ABC');
    expect(latin1Of(all, 10, 10)).toBe('');
  });

  it('writeLatin1 writes back exactly the bytes latin1Of read, short and long, into slab views', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const out = allocBytes(bytes.length);
        writeLatin1(out, latin1Of(offsetView(bytes)));
        expect([...out]).toEqual([...bytes]);
      }),
    );
  });

  it('writeLatin1 writes only its own bytes of a shared slab', () => {
    const slab = new Uint8Array(64).fill(0xee);
    writeLatin1(slab.subarray(8, 48), 'x'.repeat(40));
    expect(slab[7]).toBe(0xee);
    expect(slab[48]).toBe(0xee);
    expect(slab[8]).toBe(0x78);
    expect(slab[47]).toBe(0x78);
  });
});

describe('bytesKey', () => {
  it('is equal for equal bytes and different for different bytes, at every length (both code paths)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 }), (a, b) => {
        const same = a.length === b.length && a.every((x, i) => x === b[i]);
        expect(bytesKey(offsetView(a)) === bytesKey(b)).toBe(same);
        expect(bytesKey(a)).toBe(latin1Of(a));
      }),
    );
  });
});

describe('sameBytes', () => {
  it('is true exactly for equal bytes, short and long, whatever the views offsets', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (a, at, byte) => {
        expect(sameBytes(offsetView(a), a.slice())).toBe(true);
        if (a.length === 0) return;
        const b = a.slice();
        const i = at % a.length;
        b[i] = byte;
        expect(sameBytes(offsetView(a), b)).toBe(a[i] === byte);
        expect(sameBytes(a, a.subarray(0, a.length - 1))).toBe(false);
      }),
    );
  });
});

describe('bytesKey on a reused array', () => {
  it('gives the string of the bytes the array holds now, not of what it held at the last call', () => {
    const key = new TextEncoder().encode('user:0001');
    const first = bytesKey(key);
    expect(bytesKey(key)).toBe(first);
    key[8] = 0x32; // 'user:0002'
    expect(bytesKey(key)).toBe('user:0002');
    key.set(new TextEncoder().encode('zzzz'), 0);
    expect(bytesKey(key)).toBe('zzzz:0002');
    const long = new Uint8Array(100).fill(0x61);
    expect(bytesKey(long)).toBe('a'.repeat(100));
    long[99] = 0x62;
    expect(bytesKey(long)).toBe(`${'a'.repeat(99)}b`);
    const view = key.subarray(0, 4);
    expect(bytesKey(view)).toBe('zzzz');
  });
});

describe('StringCache', () => {
  const encoded = (strings: readonly string[]): Uint8Array => {
    const w = new MsgpackWriter(64);
    for (const s of strings) w.string(s);
    return w.copy();
  };
  /** Reads every string of `bytes` through `cache`, as a decoder does. */
  const readAll = (cache: StringCache, bytes: Uint8Array, count: number): string[] => {
    const r = new MsgpackReader(bytes);
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push(cache.read(r, r.stringLength(r.byte())));
    expect(r.left).toBe(0);
    return out;
  };

  for (const sampled of [false, true]) {
    const kind = sampled ? 'slots from four sampled bytes' : 'slots from a hash of every byte';

    it(`gives back what was written, through slots shared by many strings of one length, past its length limit, non-ASCII and empty (${kind})`, () => {
      const cache = new StringCache(4, 8, sampled);
      // n1~abcdefg / n2~abcdefg / n1~abcdefh: the sampled bytes (0, n/4, n/2, n-1) of the first two are equal.
      const strings = ['', 'a', 'b', 'ab', 'ba', 'abcdefgh', 'abcdefghi', 'ü', 'üü', '日本', 'n1~abcdefg', 'n2~abcdefg', 'n1~abcdefh', ...Array.from({ length: 50 }, (_, i) => `k${String(i).padStart(3, '0')}`)];
      const bytes = encoded(strings);
      // Twice: the second pass finds many cached, and some slots taken by another string since.
      expect(readAll(new StringCache(64, 16, sampled), bytes, strings.length)).toEqual(strings);
      expect(readAll(cache, bytes, strings.length)).toEqual(strings);
      expect(readAll(cache, bytes, strings.length)).toEqual(strings);
    });

    it(`keeps its own copy of the bytes, even of a Buffer whose memory is then reused (${kind})`, () => {
      // One slot, so every string meets the one kept. A Buffer's slice() is a view: a cache keeping
      // one would find 'actor~2' in it once the buffer holds that, and answer 'actor~1'.
      const cache = new StringCache(1, 16, sampled);
      const buffer = Buffer.from(encoded(['actor~1']));
      expect(readAll(cache, buffer, 1)).toEqual(['actor~1']);
      buffer.set(encoded(['actor~2']));
      expect(readAll(cache, encoded(['actor~2']), 1)).toEqual(['actor~2']);
      expect(readAll(cache, buffer, 1)).toEqual(['actor~2']);
      expect(readAll(cache, encoded(['actor~1']), 1)).toEqual(['actor~1']);
    });
  }

  it('a string whose last character is cut short (malformed UTF-8) reads as uncached each time, whatever bytes follow it', () => {
    // The lenient decoder (as @msgpack/msgpack's) completes a cut sequence with the bytes after the string,
    // so the same six bytes give different strings in different places: one must not be handed out for the other.
    const cache = new StringCache(4, 8);
    const head = [0xa6, 0x72, 0x65, 0x63, 0x6f, 0x72, 0xed];
    for (const after of [[0xc4, 0x07], [0xa0, 0x80], [], [0xc4, 0x07]]) {
      const bytes = Uint8Array.from([...head, ...after]);
      const uncached = new MsgpackReader(bytes);
      const want = uncached.string(uncached.stringLength(uncached.byte()));
      const r = new MsgpackReader(bytes);
      expect(cache.read(r, r.stringLength(r.byte()))).toBe(want);
      expect(r.pos).toBe(head.length);
    }
  });

  it('takes a power of two of slots', () => {
    expect(() => new StringCache(3, 8)).toThrow(RangeError);
    expect(() => new StringCache(0, 8)).toThrow(RangeError);
  });
});

describe('MsgpackWriter.toBase64url', () => {
  it("property: equals Node's base64url of the bytes written, short (encoded in JS) or long (native)", () => {
    const w = new MsgpackWriter(8);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        w.reset();
        w.raw(bytes);
        expect(w.toBase64url()).toBe(Buffer.from(bytes).toString('base64url'));
      }),
      { numRuns: 2000 },
    );
  });

  it('every length from 0 to 40 bytes, all byte values', () => {
    const w = new MsgpackWriter(8);
    for (let n = 0; n <= 40; n++) {
      for (const fill of [0, 0x3f, 0x80, 0xfb, 0xff]) {
        const bytes = new Uint8Array(n).map((_, i) => (fill + i * 97) & 0xff);
        w.reset();
        w.raw(bytes);
        expect(w.toBase64url()).toBe(Buffer.from(bytes).toString('base64url'));
      }
    }
  });

  it('property: a prefix comes first, one string, short or long prefix and output', () => {
    const w = new MsgpackWriter(8);
    const base64url = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), maxLength: 200 });
    fc.assert(
      fc.property(base64url, fc.uint8Array({ maxLength: 60 }), (prefix, bytes) => {
        w.reset();
        w.raw(bytes);
        expect(w.toBase64url(prefix)).toBe(prefix + Buffer.from(bytes).toString('base64url'));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('MsgpackReader.string', () => {
  const utf8 = new TextEncoder();
  const read = (s: string): string => {
    const w = new MsgpackWriter();
    w.string(s);
    const r = new MsgpackReader(offsetView(w.copy()));
    return r.string(r.stringLength(r.byte()));
  };

  it('reads back ASCII strings of every length up to past the JS decoder (appended, array-built and native paths)', () => {
    for (let n = 0; n <= 210; n++) {
      const s = Array.from({ length: n }, (_, i) => String.fromCharCode(32 + ((i * 7) % 95))).join('');
      expect(read(s)).toBe(s);
      // A non-ASCII character at the start, middle and end: the ASCII prefix then the general decoder.
      if (n > 0) for (const at of [0, n >> 1, n - 1]) expect(read(`${s.slice(0, at)}é${s.slice(at + 1)}`)).toBe(`${s.slice(0, at)}é${s.slice(at + 1)}`);
    }
  });

  it('property: reads any string from its UTF-8 bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.string({ minLength: 7, maxLength: 20 })), (s) => {
        const bytes = utf8.encode(s);
        const r = new MsgpackReader(offsetView(bytes));
        expect(r.string(bytes.length)).toBe(s);
        expect(r.left).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('copyTail', () => {
  it('property: a copy of the bytes after `skip`, 8-byte aligned, owning its bytes, across slab boundaries and sizes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5_000 }), fc.nat(20), (bytes, s) => {
        const skip = Math.min(s, bytes.length);
        const out = copyTail(bytes, skip);
        expect([...out]).toEqual([...bytes.subarray(skip)]);
        expect(out.byteOffset % 8).toBe(0);
        // Its own bytes: neither the source nor the next copies write over them.
        const before = [...out];
        bytes.fill(0xee);
        copyTail(Uint8Array.from({ length: 300 }, () => 0x55), 3);
        const fresh = allocBytes(64);
        fresh.fill(0x77);
        expect([...out]).toEqual(before);
      }),
      { numRuns: 3_000 },
    );
  });
});
