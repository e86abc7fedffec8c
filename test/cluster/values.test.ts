import { afterEach, describe, expect, it } from 'vitest';
import { createTestCluster, type TestCluster } from '../../src/testing/index.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

/** Every value `get` returns, from every node. */
async function readEverywhere(c: TestCluster, key: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const s of c.stores) out.push((await s.get(key))?.values);
  return out;
}

describe('values round-trip through a cluster', () => {
  it('a Map, a Set, nested ones and a Float32Array come back as they were put, from every node', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const [a] = cluster.stores;
    const values: Record<string, unknown> = {
      map: new Map([['apple', 3]]),
      set: new Set(['x', 'y']),
      nested: {
        byUser: new Map<unknown, unknown>([
          ['ada', { roles: new Set(['admin']), seen: new Date(1_700_000_000_123) }],
          [{ composite: 1 }, new Map([[1, [new Set([2n])]]])],
        ]),
        list: [new Set([new Map([['deep', undefined]])])],
      },
      floats: new Float32Array([1.5, -0, Number.NaN]),
    };
    for (const [key, value] of Object.entries(values)) await a!.put(key, value);
    for (const [key, value] of Object.entries(values)) {
      for (const read of await readEverywhere(cluster, key)) {
        expect(read).toStrictEqual([value]);
      }
    }
    const [floats] = (await cluster.stores[2]!.get('floats'))!.values as [Float32Array];
    expect(floats).toBeInstanceOf(Float32Array);
    expect(Object.is(floats[1], -0)).toBe(true);
  });

  it('a value that cannot round-trip is refused with a TypeError naming the path, and nothing is stored', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const [a] = cluster.stores;
    const put = a!.put('bad', { items: [{}, {}, { when: new Date(Number.NaN) }] });
    await expect(put).rejects.toThrow(TypeError);
    await expect(put).rejects.toThrow(
      'Expected a value msgpack can round-trip at `value.items[2].when`: got an invalid Date (NaN)',
    );
    await expect(a!.put('bad', new Map([['k', () => 1]]))).rejects.toThrow('at `value.get("k")`: got a function');
    for (const s of cluster.stores) {
      expect(await s.get('bad')).toBeUndefined();
      expect(await s.localGet('bad')).toBeUndefined();
    }
  });
});

describe("a value read is the caller's own", () => {
  // Replicas may hand out their stored bytes without copying them (MemoryStorage
  // does, read-only): a value a caller gets must still be a copy it can change.
  for (const codec of [true, false]) {
    it(`overwriting the bytes of a Uint8Array read (alone, nested, in a Map) changes nothing stored (codec ${codec ? 'on' : 'off'})`, async () => {
      cluster = await createTestCluster({ nodes: 3, network: { codec } });
      const original = Uint8Array.from({ length: 200 }, (_, i) => i);
      const values: Record<string, unknown> = {
        alone: original,
        nested: { blob: original, list: [original.subarray(0, 10)] },
        inMap: new Map([['blob', original]]),
      };
      const blobsOf = (v: unknown): Uint8Array[] => {
        if (v instanceof Uint8Array) return [v];
        if (v instanceof Map) return [...v.values()].flatMap(blobsOf);
        if (Array.isArray(v)) return v.flatMap(blobsOf);
        if (v !== null && typeof v === 'object') return Object.values(v).flatMap(blobsOf);
        return [];
      };
      for (const [key, value] of Object.entries(values)) await cluster.stores[0]!.put(key, value);
      for (const [key, value] of Object.entries(values)) {
        // Every node coordinates a read (its own replica's bytes and its peers'), then scribbles on what it got.
        for (const s of cluster.stores) {
          const got = (await s.get(key))!;
          expect(got.values).toStrictEqual([value]);
          for (const blob of blobsOf(got.values)) blob.fill(0xee);
          const local = await s.localGet(key);
          for (const blob of blobsOf(local?.siblings.map((x) => x.value))) blob.fill(0xdd);
        }
        for (const s of cluster.stores) {
          expect((await s.get(key, { r: 3 }))!.values).toStrictEqual([value]);
          expect((await s.localGet(key))!.siblings.map((x) => x.value)).toStrictEqual([value]);
        }
      }
    });
  }
});
