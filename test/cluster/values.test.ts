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
