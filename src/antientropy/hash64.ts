/**
 * The 64-bit hash of anti-entropy: the first 64 bits (`h1`, `h2`) of
 * MurmurHash3 x86_128, seed 0 (pure, no I/O; not exported from the package).
 *
 * Why this hash: Merkle entries need 64 bits (a 32-bit hash would make two
 * differing leaves compare equal about once in 4 billion comparisons, which a
 * cluster reaches); x86_128 is built from 32-bit multiplies, so it runs on
 * `Math.imul` without BigInt, and its four lanes are cross-mixed in the
 * finalizer, unlike two independent murmur3 x86_32 runs with different seeds,
 * whose block mixing does not depend on the seed (so a collision under one
 * seed tends to survive the other). xxhash64 would need 64-bit multiplies,
 * which JS only has through BigInt (allocation per step). No dependency, no
 * native code; bit-identical to `murmurhash3js-revisited`'s `x86.hash128`
 * (a unit test checks it).
 *
 * @module
 */

import { fmix32 } from '../ring/murmur.js';

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;


function u32le(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/**
 * Writes the first 64 bits of MurmurHash3 x86_128 (seed 0) of
 * `bytes[0 .. length)` into `out[at]` (high word, `h1`) and `out[at + 1]`
 * (low word, `h2`), as signed 32-bit integers (compare with `>>> 0`).
 */
export function hash64Into(bytes: Uint8Array, length: number, out: Int32Array | Uint32Array, at: number): void {
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  const blocks = length & ~15;
  let i = 0;
  for (; i < blocks; i += 16) {
    let k1 = u32le(bytes, i);
    let k2 = u32le(bytes, i + 4);
    let k3 = u32le(bytes, i + 8);
    let k4 = u32le(bytes, i + 12);

    k1 = Math.imul(k1, C1);
    k1 = (k1 << 15) | (k1 >>> 17);
    k1 = Math.imul(k1, C2);
    h1 ^= k1;
    h1 = (h1 << 19) | (h1 >>> 13);
    h1 = (h1 + h2) | 0;
    h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;

    k2 = Math.imul(k2, C2);
    k2 = (k2 << 16) | (k2 >>> 16);
    k2 = Math.imul(k2, C3);
    h2 ^= k2;
    h2 = (h2 << 17) | (h2 >>> 15);
    h2 = (h2 + h3) | 0;
    h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;

    k3 = Math.imul(k3, C3);
    k3 = (k3 << 17) | (k3 >>> 15);
    k3 = Math.imul(k3, C4);
    h3 ^= k3;
    h3 = (h3 << 15) | (h3 >>> 17);
    h3 = (h3 + h4) | 0;
    h3 = (Math.imul(h3, 5) + 0x96cd1c35) | 0;

    k4 = Math.imul(k4, C4);
    k4 = (k4 << 18) | (k4 >>> 14);
    k4 = Math.imul(k4, C1);
    h4 ^= k4;
    h4 = (h4 << 13) | (h4 >>> 19);
    h4 = (h4 + h1) | 0;
    h4 = (Math.imul(h4, 5) + 0x32ac3b17) | 0;
  }

  const rem = length & 15;
  if (rem > 12) {
    let k4 = 0;
    if (rem >= 15) k4 ^= bytes[i + 14]! << 16;
    if (rem >= 14) k4 ^= bytes[i + 13]! << 8;
    k4 ^= bytes[i + 12]!;
    k4 = Math.imul(k4, C4);
    k4 = (k4 << 18) | (k4 >>> 14);
    k4 = Math.imul(k4, C1);
    h4 ^= k4;
  }
  if (rem > 8) {
    let k3 = 0;
    if (rem >= 12) k3 ^= bytes[i + 11]! << 24;
    if (rem >= 11) k3 ^= bytes[i + 10]! << 16;
    if (rem >= 10) k3 ^= bytes[i + 9]! << 8;
    k3 ^= bytes[i + 8]!;
    k3 = Math.imul(k3, C3);
    k3 = (k3 << 17) | (k3 >>> 15);
    k3 = Math.imul(k3, C4);
    h3 ^= k3;
  }
  if (rem > 4) {
    let k2 = 0;
    if (rem >= 8) k2 ^= bytes[i + 7]! << 24;
    if (rem >= 7) k2 ^= bytes[i + 6]! << 16;
    if (rem >= 6) k2 ^= bytes[i + 5]! << 8;
    k2 ^= bytes[i + 4]!;
    k2 = Math.imul(k2, C2);
    k2 = (k2 << 16) | (k2 >>> 16);
    k2 = Math.imul(k2, C3);
    h2 ^= k2;
  }
  if (rem > 0) {
    let k1 = 0;
    if (rem >= 4) k1 ^= bytes[i + 3]! << 24;
    if (rem >= 3) k1 ^= bytes[i + 2]! << 16;
    if (rem >= 2) k1 ^= bytes[i + 1]! << 8;
    k1 ^= bytes[i]!;
    k1 = Math.imul(k1, C1);
    k1 = (k1 << 15) | (k1 >>> 17);
    k1 = Math.imul(k1, C2);
    h1 ^= k1;
  }

  h1 ^= length;
  h2 ^= length;
  h3 ^= length;
  h4 ^= length;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  // The ring's finaliser; its unsigned result is folded back by the `| 0` sums below.
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h3 = fmix32(h3);
  h4 = fmix32(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  out[at] = h1;
  out[at + 1] = h2;
}

const pair = new Int32Array(2);

/**
 * An 8-byte digest of a record's bytes (the first 64 bits of MurmurHash3
 * x86_128, big-endian), for callers that keep a short digest per key instead
 * of handing the whole encoded record to the tree. Either works: the tree
 * hashes whatever digest bytes it is given together with the key.
 *
 * @throws TypeError if `record` is not a Uint8Array.
 *
 * @example
 * ```ts
 * tree.insert(key, token, recordDigest(encodedSiblingSet));
 * ```
 */
export function recordDigest(record: Uint8Array): Uint8Array {
  if (!(record instanceof Uint8Array)) {
    throw new TypeError(`Expected \`record\` to be a Uint8Array, got ${record === null ? 'null' : typeof record}`);
  }
  hash64Into(record, record.length, pair, 0);
  const out = new Uint8Array(8);
  const h = pair[0]!;
  const l = pair[1]!;
  out[0] = h >>> 24;
  out[1] = h >>> 16;
  out[2] = h >>> 8;
  out[3] = h;
  out[4] = l >>> 24;
  out[5] = l >>> 16;
  out[6] = l >>> 8;
  out[7] = l;
  return out;
}
