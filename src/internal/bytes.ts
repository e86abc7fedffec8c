// ---- Buffer's native conversions, on any typed array -----------------------------------------

/**
 * A method of `Buffer.prototype` to call on a plain `Uint8Array` (they take
 * any typed array as receiver), or undefined. Calling them directly saves
 * building a `Buffer` view per call (measured on Node 20 at ~130 bytes:
 * latin1 180 ns against ~500 ns, base64url 217 against 521, equals 103
 * against 355). `latin1Slice`, `latin1Write` and `base64urlSlice` are not
 * documented API, so each is tried once here on known input (`works`) and
 * callers fall back to the documented calls without it.
 */
function bufferMethod<F extends (this: Uint8Array, ...args: never[]) => unknown>(name: string, works: (f: F) => boolean): F | undefined {
  const f = (Buffer.prototype as unknown as Record<string, unknown>)[name];
  if (typeof f !== 'function') return undefined;
  try {
    return works(f as F) ? (f as F) : undefined;
  } catch {
    return undefined;
  }
}

const nativeLatin1Slice = bufferMethod<(this: Uint8Array, start: number, end: number) => string>(
  'latin1Slice',
  (f) => f.call(new Uint8Array([0, 0x41, 0xe9, 0xff, 0]).subarray(1), 0, 3) === 'A\u00e9\u00ff',
);
const nativeLatin1Write = bufferMethod<(this: Uint8Array, s: string, offset: number, length: number) => number>('latin1Write', (f) => {
  const out = new Uint8Array(5);
  return f.call(out.subarray(1), 'A\u00e9\u00ff', 0, 3) === 3 && out.join() === '0,65,233,255,0';
});
/** Writes `s` as UTF-8 at `offset` (up to `length` bytes, whole characters only); returns the bytes written. */
export const nativeUtf8Write = bufferMethod<(this: Uint8Array, s: string, offset: number, length: number) => number>('utf8Write', (f) => {
  const out = new Uint8Array(8);
  return f.call(out.subarray(1), 'A\u00e9\ud83d', 0, 7) === 6 && out.join() === '0,65,195,169,239,191,189,0';
});
const nativeBase64UrlSlice = bufferMethod<(this: Uint8Array, start: number, end: number) => string>(
  'base64urlSlice',
  (f) => f.call(new Uint8Array([0, 0xfb, 0xff, 0x41]).subarray(1), 0, 3) === '-_9B',
);
const nativeEquals = bufferMethod<(this: Uint8Array, other: Uint8Array) => boolean>('equals', (f) => {
  const a = new Uint8Array([9, 1, 2, 3]).subarray(1);
  return f.call(a, Uint8Array.of(1, 2, 3)) === true && f.call(a, Uint8Array.of(1, 2, 4)) === false;
});

/** `bytes` in base64url without padding. */
export function base64url(bytes: Uint8Array): string {
  if (nativeBase64UrlSlice !== undefined) return nativeBase64UrlSlice.call(bytes, 0, bytes.byteLength);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** `bytes[start, end)` as a latin1 string (one char per byte). */
export function latin1Of(bytes: Uint8Array, start = 0, end = bytes.length): string {
  if (nativeLatin1Slice !== undefined) return nativeLatin1Slice.call(bytes, start, end);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1', start, end);
}

/** Writes the latin1 string `s` (every char < 256) into `out` (at least `s.length` bytes) from index 0. */
export function writeLatin1(out: Uint8Array, s: string): void {
  const n = s.length;
  if (n <= 32) {
    for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
  } else if (nativeLatin1Write !== undefined) {
    nativeLatin1Write.call(out, s, 0, n);
  } else {
    Buffer.from(out.buffer, out.byteOffset, n).write(s, 0, n, 'latin1');
  }
}

/**
 * A string that stands for `bytes` exactly (one char per byte), for use as a
 * Map key. Short keys are built in JS, which beats a native call.
 */
export function bytesKey(bytes: Uint8Array): string {
  const n = bytes.length;
  // Measured on Node 20: JS concatenation wins up to ~10 bytes against the native
  // call, and up to ~64 against building a Buffer view.
  if (n <= 10 || (nativeLatin1Slice === undefined && n <= 64)) {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(bytes[i] as number);
    return s;
  }
  return latin1Of(bytes);
}

/** 32-bit FNV-1a of `bytes[start, end)` (a signed int32; for hash tables and caches, not security). */
export function fnv1a(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  return h;
}

/** True if the latin1 string `id` (see {@link bytesKey}) holds exactly the bytes of `key`. */
export function isLatin1Of(id: string, key: Uint8Array): boolean {
  if (id.length !== key.length) return false;
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) !== key[i]) return false;
  return true;
}

/** Byte equality. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  if (a.byteLength <= 64) {
    for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (nativeEquals !== undefined) return nativeEquals.call(a, b);
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A key as events present it: the string whose UTF-8 encoding `bytes` is
 * (every string key), or the bytes themselves when they are not valid UTF-8.
 * A string and its UTF-8 bytes are the same key, so nothing is lost.
 */
export function presentKey(bytes: Uint8Array): string | Uint8Array {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return bytes.slice();
  }
}

// ---- fresh bytes from shared slabs ---------------------------------------------------------------

/**
 * A typed array over 64 bytes gets its own off-heap backing store in V8
 * (malloc, external-memory accounting, a finalizer: 0.5-1 µs), where a view
 * into a shared slab costs tens of nanoseconds. Small allocations are carved
 * out of slabs as Node's `Buffer` pool does: each view owns its bytes for
 * ever (nothing is reused), and a slab is freed once no view into it is left.
 */
const SLAB_BYTES = 64 * 1024;
/** Larger allocations get their own buffer (they would waste slabs). */
const SLAB_MAX_ALLOCATION = 4 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES).buffer as ArrayBuffer;
/** The whole of `slab`: a copy of a whole array goes in with one `set`, no view of the source made for it. */
let slabBytes = new Uint8Array(slab);
let slabUsed = 0;

/**
 * Starts a fresh slab (the old one lives on as long as views into it do).
 * Not zeroed: every byte handed out of a slab is written by its caller
 * first (see {@link allocBytes}), and zeroing 64 KiB was ~2.7 µs of the
 * ~4 µs a slab cost (`new ArrayBuffer` against `Buffer.allocUnsafeSlow`,
 * Node 20): 1.9% of the coordinating process's time under puts, 0.1% after.
 */
function newSlab(): void {
  slab = Buffer.allocUnsafeSlow(SLAB_BYTES).buffer as ArrayBuffer;
  slabBytes = new Uint8Array(slab);
  slabUsed = 0;
}

/**
 * `n` fresh bytes that the caller owns, **to be written in full before
 * anything reads them**: up to 4 KiB they are a view into a shared slab
 * that is not zeroed (their content is whatever the memory held, as in
 * Node's own `Buffer` pool), which no other allocation ever overlaps (so
 * `.buffer` is larger than the view and `.byteOffset` may be non-zero:
 * always go through the view, and slice before handing `.buffer` on);
 * larger ones are a zeroed array of their own. Every caller copies or
 * encodes into all of its bytes at once.
 */
export function allocBytes(n: number): Uint8Array {
  if (n > SLAB_MAX_ALLOCATION) return new Uint8Array(n);
  if (slabUsed + n > SLAB_BYTES) newSlab();
  const out = new Uint8Array(slab, slabUsed, n);
  // 8-byte aligned, so a DataView or wider typed array over a copy stays aligned.
  slabUsed = (slabUsed + n + 7) & ~7;
  return out;
}

/**
 * A fresh copy of `bytes[skip, end)` (see {@link allocBytes}): the whole of
 * `bytes` is copied into the slab with one `set` and the view made starts
 * `skip` bytes in, so no view of the source is made to copy from (a typed
 * array object, ~96 bytes for the collector, per copy). For a short `skip`
 * (a header before the payload): those bytes are copied and never used.
 */
export function copyTail(bytes: Uint8Array, skip: number): Uint8Array {
  const total = bytes.length;
  const n = total - skip;
  if (total > SLAB_MAX_ALLOCATION || skip > 16) return copyBytes(bytes, skip, total);
  // Placed so that the copy (not the skipped bytes) starts 8-byte aligned, as allocBytes' do.
  let at = ((slabUsed + skip + 7) & ~7) - skip;
  if (at + total > SLAB_BYTES) {
    newSlab();
    at = ((skip + 7) & ~7) - skip;
  }
  slabBytes.set(bytes, at);
  const out = new Uint8Array(slab, at + skip, n);
  slabUsed = (at + total + 7) & ~7;
  return out;
}

/** A fresh copy of `bytes[start, end)` (see {@link allocBytes}). */
export function copyBytes(bytes: Uint8Array, start = 0, end = bytes.length): Uint8Array {
  const out = allocBytes(end - start);
  out.set(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
  return out;
}

/**
 * A fresh copy (see {@link allocBytes}) of `length` bytes at `start` of
 * `buffer`. For a caller that keeps its own `ArrayBuffer`: a view made from
 * it costs about half of `subarray` on Node 20 (75 ns against 133 ns; the
 * `.buffer` getter alone costs ~100 ns, so a view made from a typed array's
 * `.buffer` is slower than `subarray`).
 */
export function copyFromBuffer(buffer: ArrayBuffer, start: number, length: number): Uint8Array {
  const out = allocBytes(length);
  out.set(new Uint8Array(buffer, start, length));
  return out;
}

// ---- MessagePack primitives shared by the hand-written codecs ------------------------------------

/** Raised by {@link MsgpackReader} on input that ends early or holds the wrong type; codecs map it to their own error. */
export class MsgpackFormatError extends Error {
  override readonly name = 'MsgpackFormatError';
}

/** Strings up to this many UTF-16 units are encoded in JS (as `@msgpack/msgpack` does), longer ones with TextEncoder. */
const JS_ENCODE_MAX_UNITS = 50;
/** UTF-8 up to this many bytes is decoded in JS (as `@msgpack/msgpack` does), longer with TextDecoder. */
const JS_DECODE_MAX_BYTES = 200;
const textEncoder = new TextEncoder();
const lenientUtf8 = new TextDecoder('utf-8');

/** UTF-8 length of `s` exactly as `@msgpack/msgpack` counts it (a lone surrogate takes 3 bytes). */
function utf8Length(s: string): number {
  const n = s.length;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Longest output {@link MsgpackWriter.toBase64url} encodes itself. */
const SHORT_BASE64_BYTES = 30;
/** The base64url alphabet's character codes. */
const BASE64URL_CODES = Uint8Array.from(BASE64URL_ALPHABET, (c) => c.charCodeAt(0));
/** Where {@link MsgpackWriter.toBase64url} puts a short output's characters before making them one string. */
const base64Chars = new Uint8Array(256);

/**
 * A reusable output buffer that writes MessagePack exactly as
 * `@msgpack/msgpack`'s `Encoder` (default options) does, byte for byte, so
 * hand-written encoders stay compatible with data it wrote (records are
 * compared by their bytes). Not re-entrant: one encoding at a time
 * ({@link MsgpackWriter.busy} tells).
 */
export class MsgpackWriter {
  /** Bytes written so far since {@link MsgpackWriter.reset}. */
  pos = 0;
  /** Set by the owner while an encoding is in progress. */
  busy = false;
  #buf: Uint8Array;
  /** `#buf`'s buffer (its `.buffer` getter costs ~100 ns a call). */
  #ab: ArrayBuffer;
  #view: DataView;
  readonly #initial: number;

  constructor(initialBytes = 4096) {
    this.#initial = initialBytes;
    this.#ab = new ArrayBuffer(initialBytes);
    this.#buf = new Uint8Array(this.#ab);
    this.#view = new DataView(this.#ab);
  }

  /** Starts a new output; a buffer grown past 1 MiB by an earlier one is dropped. */
  reset(): void {
    this.pos = 0;
    if (this.#buf.length > 1024 * 1024) {
      this.#ab = new ArrayBuffer(this.#initial);
      this.#buf = new Uint8Array(this.#ab);
      this.#view = new DataView(this.#ab);
    }
  }

  /** The bytes written so far, as a view into the shared buffer: use before the next write. */
  view(): Uint8Array {
    return new Uint8Array(this.#ab, 0, this.pos);
  }

  /**
   * `prefix` (ASCII, at most 128 characters), then the bytes written so far
   * in base64url without padding. A few bytes are encoded here into
   * character codes made one string by one native call (~70 ns and one
   * string for 14 bytes, against ~275 ns and eight intermediate strings,
   * ~170 bytes for the collector, when built by concatenation); more go to
   * the native encoder.
   */
  toBase64url(prefix = ''): string {
    const n = this.pos;
    const p = prefix.length;
    if (n > SHORT_BASE64_BYTES || p > 128) return prefix + base64url(new Uint8Array(this.#ab, 0, n));
    const b = this.#buf;
    const out = base64Chars;
    for (let k = 0; k < p; k++) out[k] = prefix.charCodeAt(k);
    let o = p;
    let i = 0;
    for (; i + 3 <= n; i += 3) {
      const v = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
      out[o++] = BASE64URL_CODES[v >>> 18]!;
      out[o++] = BASE64URL_CODES[(v >>> 12) & 63]!;
      out[o++] = BASE64URL_CODES[(v >>> 6) & 63]!;
      out[o++] = BASE64URL_CODES[v & 63]!;
    }
    if (n - i === 1) {
      const x = b[i]!;
      out[o++] = BASE64URL_CODES[x >> 2]!;
      out[o++] = BASE64URL_CODES[(x & 3) << 4]!;
    } else if (n - i === 2) {
      const x = b[i]!;
      const y = b[i + 1]!;
      out[o++] = BASE64URL_CODES[x >> 2]!;
      out[o++] = BASE64URL_CODES[((x & 3) << 4) | (y >> 4)]!;
      out[o++] = BASE64URL_CODES[(y & 15) << 2]!;
    }
    return latin1Of(out, 0, o);
  }

  /** A fresh copy of the bytes written so far, with `prefix` spare bytes in front for the caller to write (see {@link allocBytes}). */
  copy(prefix = 0): Uint8Array {
    const out = allocBytes(prefix + this.pos);
    out.set(new Uint8Array(this.#ab, 0, this.pos), prefix);
    return out;
  }

  #ensure(n: number): void {
    if (this.pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const ab = new ArrayBuffer(size);
    const next = new Uint8Array(ab);
    next.set(this.#buf.subarray(0, this.pos));
    this.#ab = ab;
    this.#buf = next;
    this.#view = new DataView(ab);
  }

  u8(b: number): void {
    this.#ensure(1);
    this.#buf[this.pos++] = b;
  }

  #tag16(tag: number, v: number): void {
    this.#ensure(3);
    this.#buf[this.pos] = tag;
    this.#view.setUint16(this.pos + 1, v);
    this.pos += 3;
  }

  #tag32(tag: number, v: number): void {
    this.#ensure(5);
    this.#buf[this.pos] = tag;
    this.#view.setUint32(this.pos + 1, v);
    this.pos += 5;
  }

  nil(): void {
    this.u8(0xc0);
  }

  boolean(b: boolean): void {
    this.u8(b ? 0xc3 : 0xc2);
  }

  /** A number: the smallest integer form for safe integers (`-0` is 0), float64 for the rest. */
  number(v: number): void {
    if (Number.isSafeInteger(v)) {
      if (v >= 0) {
        if (v < 0x80) return this.u8(v);
        if (v < 0x100) {
          this.#ensure(2);
          this.#buf[this.pos] = 0xcc;
          this.#buf[this.pos + 1] = v;
          this.pos += 2;
          return;
        }
        if (v < 0x10000) return this.#tag16(0xcd, v);
        if (v < 0x100000000) return this.#tag32(0xce, v);
        this.#ensure(9);
        this.#buf[this.pos] = 0xcf;
        this.#view.setUint32(this.pos + 1, v / 0x100000000);
        this.#view.setUint32(this.pos + 5, v >>> 0);
        this.pos += 9;
        return;
      }
      if (v >= -0x20) return this.u8(0xe0 | (v + 0x20));
      if (v >= -0x80) {
        this.#ensure(2);
        this.#buf[this.pos] = 0xd0;
        this.#view.setInt8(this.pos + 1, v);
        this.pos += 2;
        return;
      }
      if (v >= -0x8000) {
        this.#ensure(3);
        this.#buf[this.pos] = 0xd1;
        this.#view.setInt16(this.pos + 1, v);
        this.pos += 3;
        return;
      }
      if (v >= -0x80000000) {
        this.#ensure(5);
        this.#buf[this.pos] = 0xd2;
        this.#view.setInt32(this.pos + 1, v);
        this.pos += 5;
        return;
      }
      this.#ensure(9);
      this.#buf[this.pos] = 0xd3;
      this.#view.setUint32(this.pos + 1, Math.floor(v / 0x100000000));
      this.#view.setUint32(this.pos + 5, v >>> 0);
      this.pos += 9;
      return;
    }
    this.#ensure(9);
    this.#buf[this.pos] = 0xcb;
    this.#view.setFloat64(this.pos + 1, v);
    this.pos += 9;
  }

  /** A string; returns its UTF-8 length in bytes. */
  string(s: string): number {
    const units = s.length;
    let ascii = units < 32;
    if (ascii) {
      for (let i = 0; i < units; i++) {
        if (s.charCodeAt(i) >= 0x80) {
          ascii = false;
          break;
        }
      }
    }
    if (ascii) {
      // The common case: a short ASCII string (message types, field names, ids).
      this.#ensure(1 + units);
      const buf = this.#buf;
      let p = this.pos;
      buf[p++] = 0xa0 + units;
      for (let i = 0; i < units; i++) buf[p++] = s.charCodeAt(i);
      this.pos = p;
      return units;
    }
    const length = utf8Length(s);
    if (length < 32) this.u8(0xa0 + length);
    else if (length < 0x100) {
      this.#ensure(2);
      this.#buf[this.pos] = 0xd9;
      this.#buf[this.pos + 1] = length;
      this.pos += 2;
    } else if (length < 0x10000) this.#tag16(0xda, length);
    else this.#tag32(0xdb, length);
    this.#ensure(length);
    if (units > JS_ENCODE_MAX_UNITS) textEncoder.encodeInto(s, this.#buf.subarray(this.pos, this.pos + length));
    else this.#utf8(s);
    this.pos += length;
    return length;
  }

  /** `@msgpack/msgpack`'s JS UTF-8 encoder (a lone surrogate becomes its 3-byte form). */
  #utf8(s: string): void {
    const buf = this.#buf;
    let p = this.pos;
    const n = s.length;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        buf[p++] = c;
        continue;
      }
      if (c < 0x800) {
        buf[p++] = ((c >> 6) & 0x1f) | 0xc0;
      } else {
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
          const d = s.charCodeAt(i + 1);
          if ((d & 0xfc00) === 0xdc00) {
            i++;
            c = ((c & 0x3ff) << 10) + (d & 0x3ff) + 0x10000;
          }
        }
        if (c < 0x10000) {
          buf[p++] = ((c >> 12) & 0x0f) | 0xe0;
          buf[p++] = ((c >> 6) & 0x3f) | 0x80;
        } else {
          buf[p++] = ((c >> 18) & 0x07) | 0xf0;
          buf[p++] = ((c >> 12) & 0x3f) | 0x80;
          buf[p++] = ((c >> 6) & 0x3f) | 0x80;
        }
      }
      buf[p++] = (c & 0x3f) | 0x80;
    }
  }

  /** A binary (`bin 8/16/32`). */
  binary(b: Uint8Array): void {
    const n = b.byteLength;
    if (n < 0x100) {
      this.#ensure(2 + n);
      this.#buf[this.pos] = 0xc4;
      this.#buf[this.pos + 1] = n;
      this.pos += 2;
    } else if (n < 0x10000) this.#tag16(0xc5, n);
    else this.#tag32(0xc6, n);
    this.#ensure(n);
    this.#buf.set(b, this.pos);
    this.pos += n;
  }

  /** Bytes written as they are (msgpack encoded beforehand, e.g. a constant header). */
  raw(b: Uint8Array): void {
    const n = b.length;
    this.#ensure(n);
    const buf = this.#buf;
    const p = this.pos;
    if (n <= 32) for (let i = 0; i < n; i++) buf[p + i] = b[i]!;
    else buf.set(b, p);
    this.pos = p + n;
  }

  arrayHeader(n: number): void {
    if (n < 16) this.u8(0x90 + n);
    else if (n < 0x10000) this.#tag16(0xdc, n);
    else this.#tag32(0xdd, n);
  }

  mapHeader(n: number): void {
    if (n < 16) this.u8(0x80 + n);
    else if (n < 0x10000) this.#tag16(0xde, n);
    else this.#tag32(0xdf, n);
  }

  /** Reserves a map header for up to 65535 entries, to be filled in by {@link MsgpackWriter.patchMapHeader}. */
  reserveMapHeader(): number {
    this.#ensure(3);
    const at = this.pos;
    this.pos += 3;
    return at;
  }

  /**
   * Writes the header reserved at `at` for `n` entries. When it fits a
   * fixmap, the entries move back two bytes so the output is what
   * {@link MsgpackWriter.mapHeader} would have written.
   */
  patchMapHeader(at: number, n: number): void {
    if (n < 16) {
      this.#buf[at] = 0x80 + n;
      this.#buf.copyWithin(at + 1, at + 3, this.pos);
      this.pos -= 2;
    } else {
      this.#buf[at] = 0xde;
      this.#view.setUint16(at + 1, n);
    }
  }
}

/** Scratch for reading floats (a DataView per reader cost more than the rest of a small decode). */
const floatScratch = new DataView(new ArrayBuffer(8));

/**
 * `bytes[start, end)`, all below 0x80, as a string: one `fromCharCode` over
 * an array of the units, which makes a flat string (appending one character
 * at a time makes a chain of cons strings from 13 characters on, which every
 * later compare, hash or encode flattens first): 125 against 340 ns at 14
 * characters, 340 against 870 at 40, measured on Node 20 (below 8
 * characters appending is as fast).
 */
function asciiString(bytes: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n < 8) {
    // Short strings stay flat when appended, and the loop is cheaper than an array.
    let out = '';
    for (let i = start; i < end; i++) out += String.fromCharCode(bytes[i]!);
    return out;
  }
  const units = new Array<number>(n);
  for (let k = 0; k < n; k++) units[k] = bytes[start + k]!;
  return String.fromCharCode.apply(null, units);
}

/**
 * A cursor over MessagePack input for hand-written decoders. Every read is
 * bounds-checked: input that ends early throws {@link MsgpackFormatError}.
 */
export class MsgpackReader {
  pos: number;
  readonly end: number;
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }

  #u32(p: number): number {
    const b = this.bytes;
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  #float(p: number, width: 4 | 8): number {
    for (let i = 0; i < width; i++) floatScratch.setUint8(i, this.bytes[p + i]!);
    return width === 4 ? floatScratch.getFloat32(0) : floatScratch.getFloat64(0);
  }

  /** Bytes left. */
  get left(): number {
    return this.end - this.pos;
  }

  #need(n: number): void {
    if (this.pos + n > this.end) throw new MsgpackFormatError('input is truncated');
  }

  /** The next type byte. */
  byte(): number {
    if (this.pos >= this.end) throw new MsgpackFormatError('input is truncated');
    return this.bytes[this.pos++]!;
  }

  /** An unsigned big-endian integer of `width` bytes (1, 2 or 4). */
  uint(width: 1 | 2 | 4): number {
    this.#need(width);
    const p = this.pos;
    const b = this.bytes;
    this.pos += width;
    return width === 1 ? b[p]! : width === 2 ? (b[p]! << 8) | b[p + 1]! : this.#u32(p);
  }

  /**
   * The number whose type byte `h` was just read, or `undefined` if `h` is
   * not a number type (nothing more is read then).
   */
  number(h: number): number | undefined {
    if (h < 0x80) return h;
    if (h >= 0xe0) return h - 0x100;
    const b = this.bytes;
    const p = this.pos;
    switch (h) {
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        this.#need(8);
        this.pos += 8;
        return this.#u32(p) * 0x100000000 + this.#u32(p + 4);
      case 0xd0:
        this.#need(1);
        this.pos += 1;
        return (b[p]! << 24) >> 24;
      case 0xd1:
        this.#need(2);
        this.pos += 2;
        return (((b[p]! << 8) | b[p + 1]!) << 16) >> 16;
      case 0xd2:
        this.#need(4);
        this.pos += 4;
        return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
      case 0xd3:
        this.#need(8);
        this.pos += 8;
        return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) * 0x100000000 + this.#u32(p + 4);
      case 0xca:
        this.#need(4);
        this.pos += 4;
        return this.#float(p, 4);
      case 0xcb:
        this.#need(8);
        this.pos += 8;
        return this.#float(p, 8);
      default:
        return undefined;
    }
  }

  /** The UTF-8 length of the string whose type byte `h` was just read, or -1 if `h` is not a string type. */
  stringLength(h: number): number {
    if (h >= 0xa0 && h <= 0xbf) return h - 0xa0;
    if (h === 0xd9) return this.uint(1);
    if (h === 0xda) return this.uint(2);
    if (h === 0xdb) return this.uint(4);
    return -1;
  }

  /** The length of the binary whose type byte `h` was just read, or -1 if `h` is not a binary type. */
  binaryLength(h: number): number {
    if (h === 0xc4) return this.uint(1);
    if (h === 0xc5) return this.uint(2);
    if (h === 0xc6) return this.uint(4);
    return -1;
  }

  /** The length of the array whose type byte `h` was just read, or -1 if `h` is not an array type. */
  arrayLength(h: number): number {
    if (h >= 0x90 && h <= 0x9f) return h - 0x90;
    if (h === 0xdc) return this.uint(2);
    if (h === 0xdd) return this.uint(4);
    return -1;
  }

  /** The entry count of the map whose type byte `h` was just read, or -1 if `h` is not a map type. */
  mapLength(h: number): number {
    if (h >= 0x80 && h <= 0x8f) return h - 0x80;
    if (h === 0xde) return this.uint(2);
    if (h === 0xdf) return this.uint(4);
    return -1;
  }

  /** `length` bytes of UTF-8 as a string (decoded leniently, as `@msgpack/msgpack` does). */
  string(length: number): string {
    this.#need(length);
    const bytes = this.bytes;
    const start = this.pos;
    const end = start + length;
    this.pos = end;
    if (length > JS_DECODE_MAX_BYTES) return lenientUtf8.decode(bytes.subarray(start, end));
    let i = start;
    while (i < end && bytes[i]! < 0x80) i++;
    if (i === end) return asciiString(bytes, start, end);
    const out = asciiString(bytes, start, i);
    const units: number[] = [];
    while (i < end) {
      const b1 = bytes[i++]!;
      if ((b1 & 0x80) === 0) units.push(b1);
      else if ((b1 & 0xe0) === 0xc0) units.push(((b1 & 0x1f) << 6) | (bytes[i++]! & 0x3f));
      else if ((b1 & 0xf0) === 0xe0) {
        const b2 = bytes[i++]! & 0x3f;
        const b3 = bytes[i++]! & 0x3f;
        units.push(((b1 & 0x1f) << 12) | (b2 << 6) | b3);
      } else if ((b1 & 0xf8) === 0xf0) {
        const b2 = bytes[i++]! & 0x3f;
        const b3 = bytes[i++]! & 0x3f;
        const b4 = bytes[i++]! & 0x3f;
        let unit = ((b1 & 0x07) << 0x12) | (b2 << 0x0c) | (b3 << 0x06) | b4;
        if (unit > 0xffff) {
          unit -= 0x10000;
          units.push(((unit >>> 10) & 0x3ff) | 0xd800);
          unit = 0xdc00 | (unit & 0x3ff);
        }
        units.push(unit);
      } else units.push(b1);
    }
    // `bytes[i++]` past `end` (a sequence cut by the end) reads the next field's bytes or undefined
    // (& 0x3f -> 0), the same lenient result as @msgpack/msgpack.
    return out + String.fromCharCode(...units);
  }

  /** Steps over `length` bytes (what {@link MsgpackReader.view} checks, without the view). */
  skip(length: number): void {
    this.#need(length);
    this.pos += length;
  }

  /** `length` bytes as a fresh copy (see {@link allocBytes}). */
  copy(length: number): Uint8Array {
    this.#need(length);
    const start = this.pos;
    this.pos += length;
    // The input's last bytes (a value that is bytes, after its header): no view to copy from.
    if (start + length === this.bytes.length) return copyTail(this.bytes, start);
    return copyBytes(this.bytes, start, start + length);
  }

  /** `length` bytes as a view into the input (copy it if the input is reused). */
  view(length: number): Uint8Array {
    this.#need(length);
    const start = this.pos;
    this.pos += length;
    return this.bytes.subarray(start, start + length);
  }
}

/**
 * Short strings that repeat (field names, message types, cluster names,
 * addresses, object keys), read by their bytes: the string made the last
 * time the same bytes were read into the same slot (chosen by a hash of
 * them; the bytes are compared in full) is given again instead of a new
 * one. Besides the decoding, a string V8 has already seen as a property key
 * is found again at once, where a fresh one has to be looked up in its
 * string table at every use as a key.
 */
export class StringCache {
  readonly #bytes: (Uint8Array | undefined)[];
  readonly #strings: string[];
  readonly #mask: number;
  readonly #maxLength: number;
  readonly #sampled: boolean;
  /** 32 - log2(slots): the shift that leaves a hash's top bits as a slot. */
  readonly #shift: number;

  /**
   * @param slots - a power of two
   * @param maxLength - longer strings are decoded each time
   * @param sampled - choose the slot from the length and four of the bytes
   *   (first, quarter, middle, last) instead of a hash of all of them: for
   *   strings that differ where those are (actor ids: node and incarnation),
   *   a hit costs one pass over the bytes instead of two. Either way the
   *   bytes are compared in full: a weaker slot choice only costs misses.
   */
  constructor(slots: number, maxLength: number, sampled = false) {
    if (!Number.isInteger(slots) || slots < 1 || (slots & (slots - 1)) !== 0) {
      throw new RangeError(`Expected \`slots\` to be a power of two, got ${String(slots)}`);
    }
    this.#bytes = new Array<Uint8Array | undefined>(slots).fill(undefined);
    this.#strings = new Array<string>(slots).fill('');
    this.#mask = slots - 1;
    this.#maxLength = maxLength;
    this.#sampled = sampled;
    this.#shift = 32 - Math.log2(slots);
  }

  /** A UTF-8 string of `length` bytes at `r` (as {@link MsgpackReader.string} reads it). */
  read(r: MsgpackReader, length: number): string {
    if (length === 0) return '';
    if (length > this.#maxLength || length > r.left) return r.string(length);
    const bytes = r.bytes;
    const start = r.pos;
    // The sampled hash's best bits are its top ones; FNV-1a's low ones are fine.
    // (The mask matters for one slot only: a shift by 32 shifts by nothing.)
    const slot = (this.#sampled ? sampledHash(bytes, start, length) >>> this.#shift : fnv1a(bytes, start, start + length) >>> 0) & this.#mask;
    const known = this.#bytes[slot];
    if (known !== undefined && known.length === length) {
      let i = 0;
      while (i < length && known[i] === bytes[start + i]) i++;
      if (i === length) {
        r.pos = start + length;
        return this.#strings[slot]!;
      }
    }
    const s = r.string(length);
    // A string whose last character is cut short was decoded with the bytes
    // after it (as @msgpack/msgpack does): the same bytes elsewhere decode
    // otherwise, so it is not kept.
    if (!cutShort(bytes, start, start + length)) {
      // A copy, whatever `bytes` is: a Buffer's own slice() is a view, and the caller may reuse its buffer.
      this.#bytes[slot] = Uint8Array.prototype.slice.call(bytes, start, start + length);
      this.#strings[slot] = s;
    }
    return s;
  }
}

/** Length and the bytes at 0, n/4, n/2 and n-1 of `bytes[start, start + n)` (n >= 1), mixed: take the top bits. */
function sampledHash(bytes: Uint8Array, start: number, n: number): number {
  const mixed =
    Math.imul(n ^ (bytes[start]! << 8) ^ (bytes[start + (n >> 2)]! << 16) ^ (bytes[start + n - 1]! << 24), 0x9e3779b1) ^
    Math.imul(bytes[start + (n >> 1)]! + 1, 0x85ebca77);
  return mixed >>> 0;
}

/**
 * True if decoding `bytes[start, end)` as {@link MsgpackReader.string} does
 * reads past `end`: a lead byte's sequence does not fit before it (only in
 * malformed UTF-8). Steps as that decoder does.
 */
function cutShort(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const b = bytes[i]!;
    i += b < 0x80 ? 1 : (b & 0xe0) === 0xc0 ? 2 : (b & 0xf0) === 0xe0 ? 3 : (b & 0xf8) === 0xf0 ? 4 : 1;
  }
  return i > end;
}
