import { hashKey } from '../ring/index.js';
import { keyBytesInSlab } from '../ring/hash.js';
import type { KeyRef } from './types.js';

/**
 * The {@link KeyRef} of a key: a validated copy of its bytes and its ring
 * token, computed once for the whole call. The copy is a view into a
 * shared 64 KiB slab (`bytes.buffer` is larger than the key and
 * `bytes.byteOffset` may be non-zero, as with a pooled `Buffer`): one
 * object per key for the collector instead of three. Something that keeps
 * keys for long should keep a copy of their own (storages do).
 *
 * @param maxKeyBytes - largest accepted key, in UTF-8 bytes. @default 1024
 * @throws KvError `KV_INVALID_KEY` for a key that is not a non-empty,
 *   well-formed string or `Uint8Array` within `maxKeyBytes`.
 * @example
 * ```ts
 * const ref = keyRef('user:1');
 * ring.preferenceListForToken(ref.token, 3); // same as ring.preferenceList('user:1', 3)
 * ```
 */
export function keyRef(key: string | Uint8Array, maxKeyBytes?: number): KeyRef {
  // An ASCII string hashes without being encoded; keyBytes validates either way.
  const token = hashKey(key, maxKeyBytes);
  return { bytes: keyBytesInSlab(key, maxKeyBytes), token };
}

/**
 * `key` as a {@link KeyRef}: itself, or for raw bytes, the bytes with the
 * token `tokenOf` computes (which validates them).
 */
export function toKeyRef(key: KeyRef | Uint8Array, tokenOf: (bytes: Uint8Array) => number): KeyRef {
  return key instanceof Uint8Array ? { bytes: key, token: tokenOf(key) } : key;
}
