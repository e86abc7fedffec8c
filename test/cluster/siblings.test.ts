import { afterEach, describe, expect, it } from 'vitest';
import { KvError, MemoryNetwork, Store } from 'quorumkv';
import { createTestCluster, type TestCluster } from 'quorumkv/testing';

/**
 * Issue 6 §3: blind concurrent writers to one key used to grow its record
 * without bound (100 writers: 100 siblings; large values: a record over the
 * frame limit, after which the key could be neither read at R=2 nor written).
 *
 * Needs the Store options `maxSiblings` / `siblingWarning` and the
 * `siblings:exceeded` event (wired from ReplicaServerOptions).
 */
let cluster: TestCluster<{ writer: number }> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const MAX = 20;
const text = (key: string | Uint8Array) => (typeof key === 'string' ? key : new TextDecoder().decode(key));

describe('siblings are bounded', () => {
  it('100 concurrent blind writers: the key stays bounded, readable and repairable', async () => {
    cluster = await createTestCluster<{ writer: number }>({ nodes: 3, store: { maxSiblings: MAX, siblingWarning: 5 } });
    const warnings: { node: string; key: string; siblings: number; threshold: number }[] = [];
    for (const s of cluster.stores) {
      s.on('siblings:exceeded', (e) => warnings.push({ node: s.id, key: text(e.key), siblings: e.siblings, threshold: e.threshold }));
    }
    const stores = cluster.stores;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 100 }, (_, writer) => stores[writer % stores.length]!.put('hot', { writer })),
    );
    const accepted = outcomes.flatMap((o, writer) => (o.status === 'fulfilled' ? [writer] : []));
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    // Every refusal is the new stable code, nothing else (no quorum failures, no oversized frames).
    for (const err of refused) {
      expect(err).toBeInstanceOf(KvError);
      expect((err as KvError).code).toBe('KV_TOO_MANY_SIBLINGS');
    }
    // Each coordinating node keeps its own versions at or under the bound; merges of the
    // three nodes' sets are never refused, so the key holds at most 3 × MAX versions.
    expect(accepted.length).toBeGreaterThanOrEqual(MAX);
    expect(accepted.length).toBeLessThanOrEqual(stores.length * MAX);
    expect(refused.length).toBe(100 - accepted.length);

    // No acknowledged write is lost: the read (R=2, W=2) returns exactly the accepted writers.
    const read = await stores[1]!.get('hot');
    expect(read).toBeDefined();
    expect(read!.values.map((v) => v.writer).sort((a, b) => a - b)).toEqual(accepted);

    // A node reports the key when one of its own writes takes it past the warning level
    // (a node whose set was pushed past it by merges does not): at most once per node here.
    expect(new Set(warnings.map((w) => w.node)).size).toBe(warnings.length);
    for (const w of warnings) expect(w).toMatchObject({ key: 'hot', threshold: 5, siblings: 6 });

    // A write with the read's context always works and collapses the siblings...
    await stores[2]!.put('hot', { writer: -1 }, { context: read!.context });
    const resolved = await stores[0]!.get('hot');
    expect(resolved!.values).toEqual([{ writer: -1 }]);
    // ...after which blind writes are accepted again (through the node that holds the collapsed set).
    await stores[2]!.put('hot', { writer: 1000 });
    expect((await stores[1]!.get('hot'))!.values).toHaveLength(2);
  });

  it('siblings:exceeded fires once when a key passes siblingWarning', async () => {
    cluster = await createTestCluster<{ writer: number }>({ nodes: 3, store: { maxSiblings: MAX, siblingWarning: 5 } });
    const warnings: { node: string; key: string; siblings: number; threshold: number }[] = [];
    for (const s of cluster.stores) {
      s.on('siblings:exceeded', (e) => warnings.push({ node: s.id, key: text(e.key), siblings: e.siblings, threshold: e.threshold }));
    }
    const via = cluster.stores[0]!;
    for (let writer = 0; writer < 5; writer++) await via.put('warm', { writer });
    expect(warnings).toEqual([]);
    await via.put('warm', { writer: 5 });
    expect(warnings).toEqual([{ node: via.id, key: 'warm', siblings: 6, threshold: 5 }]);
    await via.put('warm', { writer: 6 });
    expect(warnings).toHaveLength(1);
  });

  it('refuses options that could build a record larger than a frame', () => {
    const transport = new MemoryNetwork().transport('x');
    // The case: ten 1.9 MB siblings already overflow a 16 MiB frame. Each of the
    // N = 3 replicas bounds its own set, so a key can merge to 3 × maxSiblings versions.
    expect(() => new Store({ id: 'x', transport, maxValueBytes: 2 * 1024 * 1024 })).toThrow(RangeError);
    expect(() => new Store({ id: 'x', transport, maxValueBytes: 2 * 1024 * 1024, maxSiblings: 10 })).toThrow(
      /`maxValueBytes` × `maxSiblings` × N/,
    );
    expect(() => new Store({ id: 'x', transport, maxValueBytes: 2 * 1024 * 1024, maxSiblings: 2 })).not.toThrow();
  });
});
