/**
 * MurmurHash3 x86_32, seed 0, with `Math.imul` (internal; not exported from the package).
 *
 * Output is bit-identical to `murmurhash3js-revisited`'s `x86.hash32(bytes, 0)` (a
 * property test checks it), but about 5x faster: that implementation validates every
 * byte on each call and multiplies in 16-bit halves. The ASCII path hashes a string's
 * code units directly, with no UTF-8 encoding step at all.
 *
 * @module
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3's 32-bit finaliser (avalanche), as an unsigned 32-bit number. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 (seed 0) of `bytes[0 .. length)`. */
export function murmurBytes(bytes: Uint8Array, length: number = bytes.length): number {
  const blocks = length & ~3;
  let h = 0;
  let k = 0;
  let i = 0;
  for (; i < blocks; i += 4) {
    k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rem = length & 3;
  if (rem !== 0) {
    k = bytes[i]!;
    if (rem >= 2) k ^= bytes[i + 1]! << 8;
    if (rem === 3) k ^= bytes[i + 2]! << 16;
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  return fmix32(h ^ length);
}

/**
 * MurmurHash3 x86_32 (seed 0) of an ASCII string's bytes (its code units), or -1 if
 * the string holds a code unit above 0x7f (then hash its UTF-8 bytes instead).
 */
export function murmurAscii(s: string): number {
  const length = s.length;
  const blocks = length & ~3;
  let seen = 0;
  let h = 0;
  let k = 0;
  let i = 0;
  for (; i < blocks; i += 4) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    seen |= c0 | c1 | c2 | c3;
    k = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rem = length & 3;
  if (rem !== 0) {
    let c = s.charCodeAt(i);
    seen |= c;
    k = c;
    if (rem >= 2) {
      c = s.charCodeAt(i + 1);
      seen |= c;
      k ^= c << 8;
    }
    if (rem === 3) {
      c = s.charCodeAt(i + 2);
      seen |= c;
      k ^= c << 16;
    }
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  if (seen > 0x7f) return -1;
  return fmix32(h ^ length);
}
