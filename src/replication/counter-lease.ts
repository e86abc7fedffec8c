import { decode, encode } from '@msgpack/msgpack';
import { ErrorCodes, toKvError } from '../errors/index.js';
import type { StorageAdapter } from '../storage/index.js';
import type { CounterLease } from './types.js';

/**
 * A {@link CounterLease} kept in `storage`'s metadata slot `name`, as a
 * msgpack number. A slot that is absent or does not hold a positive safe
 * integer loads as 0. Failures of the storage itself reject with
 * `KV_STORAGE_FAILURE` (a `KvError` the storage throws passes unchanged).
 *
 * @example
 * ```ts
 * new ReplicaServer({ storage, actor, ring, lease: metadataCounterLease(storage, MetaNames.counter) });
 * ```
 */
export function metadataCounterLease(storage: StorageAdapter, name: string): CounterLease {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`Expected \`name\` to be a non-empty string, got ${typeof name === 'string' ? 'an empty string' : typeof name}`);
  }
  return {
    async load() {
      let stored: Uint8Array | undefined;
      try {
        stored = await storage.getMeta(name);
      } catch (err) {
        throw toKvError(err, ErrorCodes.STORAGE_FAILURE);
      }
      if (stored === undefined) return 0;
      let value: unknown;
      try {
        value = decode(stored);
      } catch {
        return 0;
      }
      return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0;
    },
    async extend(to) {
      try {
        await storage.setMeta(name, encode(to));
      } catch (err) {
        throw toKvError(err, ErrorCodes.STORAGE_FAILURE);
      }
    },
  };
}
