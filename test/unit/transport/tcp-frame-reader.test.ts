import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import { FrameReader, FrameTooLargeError } from '../../../src/transport/tcp/frame-reader.js';

/** `[u32 length][payload]`. */
function framed(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.byteLength);
  out.writeUInt32BE(payload.byteLength, 0);
  out.set(payload, 4);
  return out;
}

function drain(reader: FrameReader): Buffer[] {
  const out: Buffer[] = [];
  for (let f = reader.next(); f; f = reader.next()) out.push(Buffer.from(f));
  return out;
}

describe('FrameReader', () => {
  it('returns a frame that arrives in one chunk, and nothing before it is complete', () => {
    const reader = new FrameReader(1024);
    expect(reader.next()).toBeUndefined();
    reader.push(framed(Buffer.from('hello')));
    expect(reader.next()?.toString()).toBe('hello');
    expect(reader.next()).toBeUndefined();
    expect(reader.buffered).toBe(0);
  });

  it('reassembles a frame split byte by byte, prefix included', () => {
    const reader = new FrameReader(1024);
    const bytes = framed(Buffer.from('split across many chunks'));
    for (let i = 0; i < bytes.length - 1; i++) {
      reader.push(bytes.subarray(i, i + 1));
      expect(reader.next()).toBeUndefined();
      expect(reader.buffered).toBe(i + 1);
    }
    reader.push(bytes.subarray(bytes.length - 1));
    expect(reader.next()?.toString()).toBe('split across many chunks');
    expect(reader.buffered).toBe(0);
  });

  it('cuts coalesced frames apart, leaving a partial one buffered', () => {
    const reader = new FrameReader(1024);
    const all = Buffer.concat([framed(Buffer.from('a')), framed(Buffer.from('bb')), framed(Buffer.from('ccc'))]);
    reader.push(all.subarray(0, all.length - 2));
    expect(drain(reader).map(String)).toEqual(['a', 'bb']);
    expect(reader.buffered).toBe(4 + 1);
    reader.push(all.subarray(all.length - 2));
    expect(drain(reader).map(String)).toEqual(['ccc']);
  });

  it('property: any chunking of any frames gives back the same frames in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map(framed));
          const reader = new FrameReader(300);
          const got: Buffer[] = [];
          let pos = 0;
          let i = 0;
          while (pos < stream.length) {
            const size = cuts[i++ % cuts.length]!;
            reader.push(stream.subarray(pos, pos + size));
            pos += size;
            got.push(...drain(reader));
          }
          expect(got.map((b) => [...b])).toEqual(payloads.map((p) => [...p]));
          expect(reader.buffered).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('accepts a frame of exactly the cap and refuses one byte more as soon as the prefix is in', () => {
    const reader = new FrameReader(1000);
    reader.push(framed(new Uint8Array(1000)));
    expect(reader.next()?.byteLength).toBe(1000);
    const over = new FrameReader(1000);
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(1001, 0);
    over.push(prefix); // no payload byte yet
    const err = (() => {
      try {
        over.next();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(FrameTooLargeError);
    expect((err as FrameTooLargeError).code).toBe('KV_INVALID_MESSAGE');
    expect((err as FrameTooLargeError).length).toBe(1001);
    expect((err as FrameTooLargeError).limit).toBe(1000);
  });

  it('refuses an absurd length prefix (4 GiB) without allocating for it', () => {
    const reader = new FrameReader(16 * 1024 * 1024);
    const before = process.memoryUsage().arrayBuffers;
    reader.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    expect(() => reader.next()).toThrow(FrameTooLargeError);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1024 * 1024);
  });

  it('refuses an empty frame (length 0)', () => {
    const reader = new FrameReader(1000);
    reader.push(Buffer.from([0, 0, 0, 0]));
    expect(() => reader.next()).toThrow(KvError);
    expect(() => new FrameReader(10).next()).not.toThrow();
  });

  it('keeps only what was received of a frame announced large (no preallocation)', () => {
    const reader = new FrameReader(16 * 1024 * 1024);
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(16 * 1024 * 1024, 0);
    reader.push(Buffer.concat([prefix, Buffer.alloc(10)]));
    expect(reader.next()).toBeUndefined();
    expect(reader.buffered).toBe(14);
  });

  it('the cap can be raised after the handshake; clear() drops a partial frame', () => {
    const reader = new FrameReader(10);
    reader.maxFrameBytes = 100;
    reader.push(framed(new Uint8Array(50)));
    expect(reader.next()?.byteLength).toBe(50);
    reader.push(framed(new Uint8Array(50)).subarray(0, 20));
    expect(reader.buffered).toBe(20);
    reader.clear();
    expect(reader.buffered).toBe(0);
    reader.push(framed(Buffer.from('x')));
    expect(reader.next()?.toString()).toBe('x');
  });
});

describe('FrameReader.advance (in place)', () => {
  it('property: any chunking gives back the same frames, in place when a frame lies in one chunk', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 50 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map(framed));
          const reader = new FrameReader(300);
          const got: number[][] = [];
          let pos = 0;
          let i = 0;
          while (pos < stream.length) {
            const size = cuts[i++ % cuts.length]!;
            const chunk = stream.subarray(pos, pos + size);
            reader.push(chunk);
            pos += size;
            while (reader.advance()) {
              const { frameBytes, frameStart, frameEnd } = reader;
              // Never a Buffer (decoded binaries must be Uint8Arrays).
              expect(Object.getPrototypeOf(frameBytes)).toBe(Uint8Array.prototype);
              got.push([...frameBytes.subarray(frameStart, frameEnd)]);
            }
          }
          expect(got).toEqual(payloads.map((p) => [...p]));
          expect(reader.buffered).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a frame inside one chunk is not copied: it is a range of that chunk', () => {
    const reader = new FrameReader(1024);
    const chunk = Buffer.concat([framed(Buffer.from('one')), framed(Buffer.from('two'))]);
    reader.push(chunk);
    expect(reader.advance()).toBe(true);
    expect(reader.frameBytes.buffer).toBe(chunk.buffer);
    expect([reader.frameStart - chunk.byteOffset + reader.frameBytes.byteOffset, reader.frameEnd - reader.frameStart]).toEqual([4, 3]);
    expect(reader.advance()).toBe(true);
    expect(Buffer.from(reader.frameBytes.subarray(reader.frameStart, reader.frameEnd)).toString()).toBe('two');
    expect(reader.advance()).toBe(false);
  });

  it('refuses over-cap and empty frames as next() does', () => {
    const over = new FrameReader(10);
    over.push(framed(new Uint8Array(11)));
    expect(() => over.advance()).toThrow(FrameTooLargeError);
    const empty = new FrameReader(10);
    empty.push(Buffer.from([0, 0, 0, 0]));
    expect(() => empty.advance()).toThrow(KvError);
  });
});
