/**
 * Key hashing for the ring: MurmurHash3 x86_32 (seed 0) over a key's UTF-8 bytes.
 * Same output as `murmurhash3js-revisited`'s `x86.hash32(bytes, 0)`, computed by the
 * faster `./murmur.ts` (ASCII strings are hashed without encoding; other strings are
 * encoded with `encodeInto` into a reused scratch buffer, no allocation per call).
 *
 * @module
 */
import { ErrorCodes, KvError } from '../errors/index.js';
import { allocBytes } from '../internal/bytes.js';
import { Defaults } from '../internal/defaults.js';
import { murmurAscii, murmurBytes } from './murmur.js';

/**
 * Largest accepted key, in UTF-8 bytes.
 * @default 1024
 */
export const DEFAULT_MAX_KEY_BYTES: number = Defaults.maxKeyBytes;

/**
 * Default number of tokens (virtual nodes) per unit of weight. 256 gives an
 * ownership coefficient of variation of about 6% over 10 equal nodes.
 * @default 256
 */
export const DEFAULT_TOKENS_PER_WEIGHT: number = Defaults.tokensPerWeight;

const encoder = new TextEncoder();

// Reused scratch buffer: hashing a string does not allocate (encodeInto + a view).
// Pure code may keep a private cache; it holds no state a caller can observe.
let scratch = new Uint8Array(4096);

function scratchFor(codeUnits: number): Uint8Array {
  // A UTF-16 code unit encodes to at most 3 UTF-8 bytes (a surrogate pair: 2 units -> 4 bytes).
  const need = codeUnits * 3;
  if (scratch.length < need) {
    let size = scratch.length;
    while (size < need) size *= 2;
    scratch = new Uint8Array(size);
  }
  return scratch;
}

// `String#isWellFormed` is ES2024 (Node >= 20); the project's lib is ES2023.
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? `an instance of ${value.constructor?.name ?? 'Object'}` : `${typeof value}`;
}

function invalid(message: string): KvError {
  return new KvError(ErrorCodes.INVALID_KEY, message);
}

function checkMax(maxKeyBytes: number): void {
  if (!Number.isSafeInteger(maxKeyBytes) || maxKeyBytes < 1) {
    throw new RangeError(`Expected \`maxKeyBytes\` to be a positive integer, got ${String(maxKeyBytes)}`);
  }
}

/**
 * Validates `key` and returns its UTF-8 bytes. For a string the bytes are a
 * view on a shared scratch buffer, valid until the next call: copy before keeping.
 */
function validBytes(key: unknown, maxKeyBytes: number): Uint8Array {
  if (typeof key === 'string') {
    const units = key.length;
    if (units === 0) throw invalid('Invalid key: a key must not be empty');
    // Every code unit is at least one UTF-8 byte, so this is a cheap early out.
    if (units > maxKeyBytes) {
      throw invalid(`Invalid key: a key must be at most ${maxKeyBytes} UTF-8 bytes, got at least ${units}`);
    }
    if (!isWellFormed(key)) throw invalid('Invalid key: the string is not well-formed UTF-16 (lone surrogate)');
    const buf = scratchFor(units);
    const { written } = encoder.encodeInto(key, buf);
    if (written > maxKeyBytes) {
      throw invalid(`Invalid key: a key must be at most ${maxKeyBytes} UTF-8 bytes, got ${written}`);
    }
    return buf.subarray(0, written);
  }
  if (key instanceof Uint8Array) {
    if (key.length === 0) throw invalid('Invalid key: a key must not be empty');
    if (key.length > maxKeyBytes) {
      throw invalid(`Invalid key: a key must be at most ${maxKeyBytes} bytes, got ${key.length}`);
    }
    return key;
  }
  throw invalid(`Invalid key: expected a string or a Uint8Array, got ${describe(key)}`);
}

/**
 * Throws a `KvError` with code `KV_INVALID_KEY` unless `key` is a non-empty,
 * well-formed string or a non-empty `Uint8Array` of at most `maxKeyBytes` UTF-8 bytes.
 *
 * @param maxKeyBytes - @default 1024
 * @throws KvError `KV_INVALID_KEY`; RangeError if `maxKeyBytes` is not a positive integer.
 */
export function validateKey(key: unknown, maxKeyBytes: number = DEFAULT_MAX_KEY_BYTES): asserts key is string | Uint8Array {
  checkMax(maxKeyBytes);
  validBytes(key, maxKeyBytes);
}

/**
 * The ring token of a key: MurmurHash3 x86_32 (seed 0) of its UTF-8 bytes, an
 * unsigned 32-bit integer. A string and a `Uint8Array` holding its UTF-8 bytes hash equal.
 * Does not allocate.
 *
 * @param maxKeyBytes - @default 1024
 * @throws KvError `KV_INVALID_KEY` for a key that is not a string/Uint8Array,
 * empty, ill-formed (lone surrogate) or over `maxKeyBytes`.
 *
 * @example
 * ```ts
 * hashKey('user:1') // => an integer in [0, 2^32)
 * ```
 */
export function hashKey(key: string | Uint8Array, maxKeyBytes: number = DEFAULT_MAX_KEY_BYTES): number {
  if (maxKeyBytes !== DEFAULT_MAX_KEY_BYTES) checkMax(maxKeyBytes);
  // Fast path: a non-empty ASCII string within the limit is well-formed and its
  // UTF-8 bytes are its code units, so hash those without encoding.
  if (typeof key === 'string' && key.length !== 0 && key.length <= maxKeyBytes) {
    const h = murmurAscii(key);
    if (h >= 0) return h;
  }
  return murmurBytes(validBytes(key, maxKeyBytes));
}

/**
 * A validated, fresh copy of a key's UTF-8 bytes (for storage).
 *
 * @param maxKeyBytes - @default 1024
 * @throws KvError `KV_INVALID_KEY` (see {@link hashKey}).
 */
export function keyBytes(key: string | Uint8Array, maxKeyBytes: number = DEFAULT_MAX_KEY_BYTES): Uint8Array {
  return copyKey(key, maxKeyBytes, freshBytes);
}

/**
 * {@link keyBytes} into a view of a shared slab ({@link allocBytes}): one
 * typed-array object (~96 bytes) instead of a typed array, its own
 * `ArrayBuffer` and its bytes (~217 bytes, Node 20), for the key of every
 * get and put (`keyRef`). Its `.buffer` is the slab: go through the view.
 * @internal
 */
export function keyBytesInSlab(key: string | Uint8Array, maxKeyBytes: number = DEFAULT_MAX_KEY_BYTES): Uint8Array {
  return copyKey(key, maxKeyBytes, allocBytes);
}

const freshBytes = (n: number): Uint8Array => new Uint8Array(n);

function copyKey(key: string | Uint8Array, maxKeyBytes: number, alloc: (n: number) => Uint8Array): Uint8Array {
  checkMax(maxKeyBytes);
  // Fast path: a short non-empty ASCII string within the limit is well-formed and
  // its UTF-8 bytes are its code units (copied in JS: no native encode, no view).
  if (typeof key === 'string' && key.length !== 0 && key.length <= ASCII_FAST_MAX && key.length <= maxKeyBytes) {
    const n = key.length;
    let i = 0;
    for (; i < n; i++) if (key.charCodeAt(i) >= 0x80) break;
    if (i === n) {
      const out = alloc(n);
      for (let j = 0; j < n; j++) out[j] = key.charCodeAt(j);
      return out;
    }
  }
  const bytes = validBytes(key, maxKeyBytes);
  const out = alloc(bytes.length);
  out.set(bytes);
  return out;
}

/** Keys up to this many code units take {@link keyBytes}'s ASCII path (a typed array this small lives on the JS heap). */
const ASCII_FAST_MAX = 64;

/** Murmur of any string, without the key length limit (used for token generation). */
function hashString(s: string): number {
  const h = murmurAscii(s);
  if (h >= 0) return h;
  const buf = scratchFor(s.length);
  const { written } = encoder.encodeInto(s, buf);
  return murmurBytes(buf, written);
}

/**
 * Deterministic default tokens of a node: MurmurHash3 of `${id}\u0000${i}` for
 * `i` in `0 .. round(weight * tokensPerWeight) - 1` (at least one), de-duplicated and
 * sorted ascending. Every process derives the same tokens from the same id and weight.
 *
 * @param weight - relative capacity, > 0. @default 1
 * @param tokensPerWeight - tokens per unit of weight. @default 256
 * @throws RangeError on a non-positive weight or tokensPerWeight.
 */
export function defaultTokens(
  id: string,
  weight: number = 1,
  tokensPerWeight: number = DEFAULT_TOKENS_PER_WEIGHT,
): number[] {
  if (typeof id !== 'string' || id.length === 0) {
    throw new TypeError(`Expected \`id\` to be a non-empty string, got ${describe(id)}`);
  }
  if (!(typeof weight === 'number' && Number.isFinite(weight) && weight > 0)) {
    throw new RangeError(`Expected \`weight\` to be a finite number > 0, got ${String(weight)}`);
  }
  if (!(Number.isSafeInteger(tokensPerWeight) && tokensPerWeight > 0)) {
    throw new RangeError(`Expected \`tokensPerWeight\` to be a positive integer, got ${String(tokensPerWeight)}`);
  }
  const count = Math.max(1, Math.round(weight * tokensPerWeight));
  const tokens = new Uint32Array(count);
  for (let i = 0; i < count; i++) tokens[i] = hashString(`${id}\u0000${i}`);
  tokens.sort();
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = tokens[i]!;
    if (i === 0 || t !== tokens[i - 1]) out.push(t);
  }
  return out;
}
