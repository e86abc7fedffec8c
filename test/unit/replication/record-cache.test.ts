import { describe, expect, it } from 'vitest';
import { RECORD_CACHE_MIN_VERSIONS, RecordCache } from '../../../src/replication/record-cache.js';
import { ReplicaServer, metadataCounterLease } from '../../../src/replication/index.js';
import { Ring } from '../../../src/ring/index.js';
import { MemoryStorage } from '../../../src/storage/index.js';
import { SiblingSet, VectorClock, decodeSiblingSet, encodeSiblingSet } from '../../../src/versioning/index.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A set of `n` concurrent blind versions. */
function siblings(n: number, tag = 'v'): SiblingSet<Uint8Array> {
  let set = SiblingSet.empty<Uint8Array>();
  for (let i = 0; i < n; i++) {
    ({ set } = set.write(`actor-${i}`, VectorClock.EMPTY, { value: bytes(`${tag}${i}`), timestamp: i }));
  }
  return set;
}

describe('RecordCache', () => {
  it('returns the cached set only for the exact bytes it was stored with', () => {
    const cache = new RecordCache(1 << 20);
    const set = siblings(RECORD_CACHE_MIN_VERSIONS);
    const encoded = encodeSiblingSet(set);
    cache.set('k', encoded, set);
    expect(cache.get('k', encoded.slice())).toBe(set);
    const other = encoded.slice();
    other[other.length - 1] ^= 1;
    expect(cache.get('k', other)).toBeUndefined();
    expect(cache.get('k', encoded.subarray(1))).toBeUndefined();
    expect(cache.get('nope', encoded)).toBeUndefined();
  });

  it('keeps only records with many versions, within its byte bound, least recently used out first', () => {
    const small = siblings(RECORD_CACHE_MIN_VERSIONS - 1);
    const cache = new RecordCache(1 << 20);
    cache.set('small', encodeSiblingSet(small), small);
    expect(cache.size).toBe(0);

    const sets = ['a', 'b', 'c'].map((tag) => siblings(RECORD_CACHE_MIN_VERSIONS, tag));
    const encoded = sets.map((s) => encodeSiblingSet(s));
    const bounded = new RecordCache(encoded[0]!.length * 2 + 1);
    bounded.set('a', encoded[0]!, sets[0]!);
    bounded.set('b', encoded[1]!, sets[1]!);
    expect(bounded.get('a', encoded[0]!)).toBe(sets[0]); // a is now the most recent
    bounded.set('c', encoded[2]!, sets[2]!);
    expect(bounded.size).toBe(2);
    expect(bounded.get('b', encoded[1]!)).toBeUndefined();
    expect(bounded.get('a', encoded[0]!)).toBe(sets[0]);
    expect(bounded.bytes).toBe(encoded[0]!.length + encoded[2]!.length);
    bounded.delete('a');
    expect(bounded.bytes).toBe(encoded[2]!.length);
    new RecordCache(0).set('a', encoded[0]!, sets[0]!);
  });

  it('a replica never serves a cached set once the stored record changed behind its back', async () => {
    const storage = new MemoryStorage();
    await storage.open();
    const ring = Ring.from([{ id: 'n1' }]);
    const replica = new ReplicaServer({ storage, actor: 'n1~1', ring: () => ring, lease: metadataCounterLease(storage, 'test.counter') });
    const key = bytes('k');
    const first = siblings(6, 'first');
    await replica.apply(key, first, encodeSiblingSet(first));
    expect((await replica.read(key)).values()).toEqual(first.values());
    // Another writer (a restore, another process) replaces the record directly.
    const second = siblings(6, 'second');
    await storage.put(key, 0, encodeSiblingSet(second));
    const read = await replica.read(key);
    expect(read.values().map((v) => new TextDecoder().decode(v))).toEqual(second.values().map((v) => new TextDecoder().decode(v)));
    expect(decodeSiblingSet(encodeSiblingSet(read)).equals(second)).toBe(true);
    await storage.close();
  });
});
