import { sameBytes } from '../internal/bytes.js';
import type { SiblingSet } from '../versioning/index.js';

/** Records with fewer versions than this decode in about a microsecond: not worth a cache entry. */
export const RECORD_CACHE_MIN_VERSIONS = 4;

interface CachedRecord {
  readonly bytes: Uint8Array;
  readonly set: SiblingSet<Uint8Array>;
}

/**
 * A small per-replica cache of decoded records (a "row cache", as
 * Cassandra's): the sibling set this replica last stored or decoded for a
 * key, with the exact bytes it came from.
 *
 * Decoding is a pure function of the bytes, so a hit needs no invalidation:
 * the replica reads the record from storage as always and uses the cached
 * set only when the stored bytes are byte for byte the cached ones (a
 * memcmp of the record, against a decode that costs ~1 µs per version).
 * Whatever wrote the storage behind the replica's back (another process,
 * a repair, a restore) simply misses.
 *
 * Only records with at least {@link RECORD_CACHE_MIN_VERSIONS} versions are
 * kept — the keys with many siblings, whose every write otherwise decodes
 * the whole set again on each replica. Bounded by `maxBytes` of record
 * bytes (the decoded sets hold views of about the same size), least
 * recently used first out.
 *
 * @internal
 */
export class RecordCache {
  readonly #entries = new Map<string, CachedRecord>();
  readonly #maxBytes: number;
  #bytes = 0;

  /** @param maxBytes Bound on the cached records' total size; 0 disables the cache. */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** The set decoded from `bytes` if this cache holds exactly those bytes for `key`. */
  get(key: string, bytes: Uint8Array): SiblingSet<Uint8Array> | undefined {
    const hit = this.#entries.get(key);
    if (hit === undefined) return undefined;
    if (hit.bytes.length !== bytes.length || !sameBytes(hit.bytes, bytes)) return undefined;
    // Most recently used last.
    this.#entries.delete(key);
    this.#entries.set(key, hit);
    return hit.set;
  }

  /** Remembers that `bytes` (the record now stored for `key`) decodes to `set`. */
  set(key: string, bytes: Uint8Array, set: SiblingSet<Uint8Array>): void {
    const old = this.#entries.get(key);
    if (old !== undefined) {
      this.#entries.delete(key);
      this.#bytes -= old.bytes.length;
    }
    if (set.size < RECORD_CACHE_MIN_VERSIONS || bytes.length > this.#maxBytes) return;
    this.#entries.set(key, { bytes, set });
    this.#bytes += bytes.length;
    while (this.#bytes > this.#maxBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      const evicted = this.#entries.get(oldest.value)!;
      this.#entries.delete(oldest.value);
      this.#bytes -= evicted.bytes.length;
    }
  }

  /** Forgets `key` (its record was deleted or replaced by a path that does not know the set). */
  delete(key: string): void {
    const old = this.#entries.get(key);
    if (old === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= old.bytes.length;
  }

  /** Forgets everything. */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  /** Number of cached records. */
  get size(): number {
    return this.#entries.size;
  }

  /** Total size of the cached records, in bytes. */
  get bytes(): number {
    return this.#bytes;
  }
}
