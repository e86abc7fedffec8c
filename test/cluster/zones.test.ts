import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNetwork, Store, type ReplicationOptions } from 'quorumkv';
import { TEST_CLUSTER_GOSSIP, createTestCluster, type TestCluster } from 'quorumkv/testing';
import { rejection } from '../helpers/rejection.js';

const ZONES = { dc1: 2, dc2: 1 } as const;

let cluster: TestCluster | undefined;
const stores: Store[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.stop()));
  await cluster?.stop();
  cluster = undefined;
});

describe('zone map at join', () => {
  it.each([
    ['another zone map with the same N', { zones: { dc1: 1, dc2: 2 } }],
    ['no zone map, the same N', { n: 3 }],
    ['a zone map where the cluster has none', 'reverse'],
  ] as const)('refuses a node with %s (KV_REPLICATION_MISMATCH on both sides)', async (_, theirs) => {
    const net = new MemoryNetwork();
    const gossip = { interval: 20 };
    const mine: ReplicationOptions = theirs === 'reverse' ? { n: 3 } : { zones: ZONES };
    const other: ReplicationOptions = theirs === 'reverse' ? { zones: ZONES } : theirs;
    const a = new Store({ id: 'a', cluster: 'main', zone: 'dc1', transport: net.transport('a'), gossip, replication: mine });
    stores.push(a);
    await a.start();
    const refusedByA = new Promise<string>((resolve) => a.once('member:refused', (e) => resolve(e.error.code)));
    const b = new Store({ id: 'b', cluster: 'main', zone: 'dc2', transport: net.transport('b'), seeds: ['a'], gossip, replication: other });
    stores.push(b);
    const refusedByPeer = new Promise<string>((resolve) => b.once('member:refused', (e) => resolve(`${e.by}:${e.error.code}`)));
    await b.start();
    const err = await rejection(b.waitForMembers(2, { timeout: 5_000 }));
    expect(err.code).toBe('KV_REPLICATION_MISMATCH');
    expect(err.message).toContain('zone map');
    expect(await refusedByA).toBe('KV_REPLICATION_MISMATCH');
    expect(await refusedByPeer).toBe('peer:KV_REPLICATION_MISMATCH');
    expect(a.members().map((m) => m.id)).toEqual(['a']);
  });

  it('accepts the same map written in another order', async () => {
    const net = new MemoryNetwork();
    const gossip = { interval: 20 };
    const a = new Store({ id: 'a', zone: 'dc1', transport: net.transport('a'), gossip, replication: { zones: { dc1: 2, dc2: 1 } } });
    const b = new Store({ id: 'b', zone: 'dc2', transport: net.transport('b'), seeds: ['a'], gossip, replication: { n: 3, zones: { dc2: 1, dc1: 2 } } });
    stores.push(a, b);
    await a.start();
    await b.start();
    await b.waitForMembers(2, { timeout: 5_000 });
    await a.waitForMembers(2, { timeout: 5_000 });
    expect(a.ring.zones).toEqual({ dc1: 2, dc2: 1 });
    expect(b.ring.zones).toEqual({ dc1: 2, dc2: 1 });
  });
});

const DC1 = ['n1', 'n3', 'n5'];
const DC2 = ['n2', 'n4', 'n6'];

/** A 6-node cluster, dc1 = n1 n3 n5, dc2 = n2 n4 n6, replicating { dc1: 2, dc2: 1 }. */
async function zonedCluster(): Promise<TestCluster> {
  cluster = await createTestCluster({ nodes: 6, zones: ['dc1', 'dc2'], replication: { zones: ZONES }, timeout: 1_000 });
  return cluster;
}

/** Ids of the nodes whose own storage holds `key`. */
async function holders(c: TestCluster, key: string): Promise<string[]> {
  const held = await Promise.all(c.stores.map(async (s) => ((await s.localGet(key)) === undefined ? undefined : s.id)));
  return held.filter((id): id is string => id !== undefined).sort();
}

/** Milliseconds `p` took to settle, and its error (a KvError) if it rejected. */
async function timed(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const start = performance.now();
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { ms: performance.now() - start, error };
}

describe('zone-aware replication', () => {
  it('every key has exactly 2 replicas in dc1 and 1 in dc2, as the ring says', async () => {
    const c = await zonedCluster();
    expect(c.stores.map((s) => s.members().find((m) => m.id === s.id)?.zone)).toEqual(['dc1', 'dc2', 'dc1', 'dc2', 'dc1', 'dc2']);
    const keys = Array.from({ length: 60 }, (_, i) => `key:${i}`);
    // 'all' waits for every primary, so nothing is left in flight when localGet looks.
    for (const [i, key] of keys.entries()) await c.stores[i % 6]!.put(key, i, { consistency: 'all' });
    const seen = new Set<string>();
    for (const key of keys) {
      const held = await holders(c, key);
      expect(held.filter((id) => DC1.includes(id))).toHaveLength(2);
      expect(held.filter((id) => DC2.includes(id))).toHaveLength(1);
      expect(held).toEqual(
        c.stores[0]!.ring
          .preferenceList(key, 3)
          .map((n) => n.id)
          .sort(),
      );
      for (const id of held) seen.add(id);
    }
    // Spread over every node of both zones, not a fixed few.
    expect([...seen].sort()).toEqual([...DC1, ...DC2].sort());
  });

  it('with dc2 partitioned away, local_quorum works from dc1 while each_quorum fails with KV_QUORUM_NOT_MET within the deadline', async () => {
    const c = await zonedCluster();
    const n1 = c.store('n1');
    await n1.put('before', 'v0', { consistency: 'each_quorum' });
    expect((await n1.get('before', { consistency: 'each_quorum' }))?.values).toEqual(['v0']);
    c.network.partition(DC1, DC2);

    for (let i = 0; i < 10; i++) {
      await n1.put(`k${i}`, i, { consistency: 'local_quorum' });
      expect((await c.store('n3').get(`k${i}`, { consistency: 'local_quorum' }))?.values).toEqual([i]);
    }
    expect((await n1.get('before', { consistency: 'local_quorum' }))?.values).toEqual(['v0']);

    const timeout = 400;
    for (const call of [
      () => n1.put('k0', 'x', { consistency: 'each_quorum', timeout }),
      () => n1.get('k0', { consistency: 'each_quorum', timeout }),
      () => n1.delete('k0', { consistency: 'each_quorum', timeout }),
    ]) {
      const { ms, error } = await timed(call());
      expect(error).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 3 });
      const q = error as { acknowledged: number; failures: { node: string; code: string }[] };
      // dc1's quorum answered; dc2's replica did not.
      expect(q.acknowledged).toBe(2);
      expect(q.failures.map((f) => f.node).every((id) => DC2.includes(id))).toBe(true);
      expect(q.failures.length).toBeGreaterThan(0);
      expect(ms).toBeLessThan(timeout + 1_000);
    }
  });

  it('local_quorum in dc2 needs its zone’s one replica: an isolated dc2 node serves only the keys it holds', async () => {
    const c = await zonedCluster();
    const n2 = c.store('n2');
    const dc2Replica = (key: string): string => n2.ring.preferenceList(key, 3).find((n) => n.zone === 'dc2')!.id;
    const keys = Array.from({ length: 40 }, (_, i) => `key:${i}`);
    const own = keys.find((k) => dc2Replica(k) === 'n2')!;
    const other = keys.find((k) => dc2Replica(k) !== 'n2')!;
    c.network.isolate('n2');
    await n2.put(own, 1, { consistency: 'local_quorum' });
    expect((await n2.get(own, { consistency: 'local_quorum' }))?.values).toEqual([1]);
    const { error } = await timed(n2.put(other, 1, { consistency: 'local_quorum', timeout: 300 }));
    expect(error).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 1, acknowledged: 0 });
    c.network.heal();
    await n2.put(other, 2, { consistency: 'local_quorum' });
    await c.store('n1').put('k2', 3, { consistency: 'each_quorum' });
    expect((await c.store('n6').get('k2', { consistency: 'each_quorum' }))?.values).toEqual([3]);
  });

  it('acknowledgements count per zone: other zones do not make up for the missing ones', async () => {
    const c = await zonedCluster();
    // A key n1 replicates, and its other dc1 replica.
    const key = Array.from({ length: 40 }, (_, i) => `key:${i}`).find((k) =>
      c.store('n1').ring.preferenceList(k, 3).some((n) => n.id === 'n1'),
    )!;
    const partner = c.store('n1').ring.preferenceList(key, 3).find((n) => n.zone === 'dc1' && n.id !== 'n1')!.id;
    c.network.isolate(partner);
    // W = 2 is met by n1 and the dc2 replica; a quorum of dc1's two replicas is not.
    await c.store('n1').put(key, 1, { w: 2, timeout: 1_000 });
    const { error } = await timed(c.store('n1').put(key, 2, { consistency: 'local_quorum', timeout: 300 }));
    expect(error).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 2, acknowledged: 1 });
    expect((error as { failures: { node: string }[] }).failures.map((f) => f.node)).toEqual([partner]);
    const read = await timed(c.store('n1').get(key, { consistency: 'local_quorum', timeout: 300 }));
    expect(read.error).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 2, acknowledged: 1 });
  });

  it('local_quorum on a node without a zone, or whose zone has no replicas, rejects at once with KV_UNAVAILABLE_CONSISTENCY', async () => {
    const c = await zonedCluster();
    const make = (id: string, zone?: string): Store => {
      const s = new Store({
        id,
        cluster: 'test',
        transport: c.network.transport(id),
        seeds: ['n1'],
        gossip: TEST_CLUSTER_GOSSIP,
        replication: { zones: ZONES },
        ...(zone === undefined ? {} : { zone }),
      });
      stores.push(s);
      return s;
    };
    const none = make('x');
    const dc3 = make('y', 'dc3');
    await none.start();
    await dc3.start();
    // Every node must know both newcomers (replicas refuse data requests from unknown peers).
    await Promise.all([none, dc3, ...c.stores].map((s) => s.waitForMembers(8, { timeout: 5_000 })));
    for (const s of [none, dc3]) {
      for (const call of [
        () => s.get('k', { consistency: 'local_quorum', timeout: 30_000 }),
        () => s.put('k', 1, { consistency: 'local_quorum', timeout: 30_000 }),
        () => s.delete('k', { consistency: 'local_quorum', timeout: 30_000 }),
      ]) {
        const { ms, error } = await timed(call());
        expect(error).toMatchObject({ code: 'KV_UNAVAILABLE_CONSISTENCY' });
        expect(ms).toBeLessThan(1_000);
      }
      // Nodes outside the map hold no replicas, yet coordinate every other level.
      await s.put(`from-${s.id}`, s.id, { consistency: 'each_quorum' });
      expect((await s.get(`from-${s.id}`, { consistency: 'each_quorum' }))?.values).toEqual([s.id]);
      expect(await s.localGet(`from-${s.id}`)).toBeUndefined();
    }
  });

  it('zone levels without a zone map reject at once with KV_UNAVAILABLE_CONSISTENCY', async () => {
    cluster = await createTestCluster({ nodes: 3, zones: ['dc1', 'dc2'] });
    const s = cluster.stores[0]!;
    for (const consistency of ['local_quorum', 'each_quorum'] as const) {
      const { ms, error } = await timed(s.put('k', 1, { consistency, timeout: 30_000 }));
      expect(error).toMatchObject({ code: 'KV_UNAVAILABLE_CONSISTENCY' });
      expect((error as Error).message).toContain('no zone map');
      expect(ms).toBeLessThan(1_000);
      expect(await rejection(s.get('k', { consistency }))).toMatchObject({ code: 'KV_UNAVAILABLE_CONSISTENCY' });
    }
    expect(await s.localGet('k')).toBeUndefined();
  });

  it('a zone with fewer nodes than its count holds the key on all it has; quorums count those', async () => {
    // dc1: n1 n2 n3, dc2: n4 only; the map asks for 2 in each.
    cluster = await createTestCluster({ nodes: 4, zones: ['dc1', 'dc1', 'dc1', 'dc2'], replication: { zones: { dc1: 2, dc2: 2 } }, timeout: 1_000 });
    const c = cluster;
    const keys = Array.from({ length: 30 }, (_, i) => `key:${i}`);
    for (const key of keys) await c.store('n1').put(key, key, { consistency: 'all' });
    for (const key of keys) {
      const held = await holders(c, key);
      expect(held.filter((id) => id !== 'n4')).toHaveLength(2);
      expect(held).toContain('n4');
    }
    // each_quorum: 2 of dc1's 2 and 1 of dc2's 1; three answers from dc1 would not do.
    c.network.isolate('n4');
    const { error } = await timed(c.store('n1').put('k', 1, { consistency: 'each_quorum', timeout: 300 }));
    expect(error).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 3, acknowledged: 2 });
    await c.store('n1').put('k', 2, { consistency: 'local_quorum' });
  });
});

describe('each_quorum with a larger zone', () => {
  it('three dc1 acknowledgements do not make up for dc2’s missing one', async () => {
    cluster = await createTestCluster({ nodes: 6, zones: ['dc1', 'dc2'], replication: { zones: { dc1: 3, dc2: 1 } }, timeout: 1_000 });
    const c = cluster;
    c.network.partition(DC1, DC2);
    // Needs 2 of dc1's 3 and 1 of dc2's 1: 3 in all, which dc1 alone could give.
    const { error } = await timed(c.store('n1').put('k', 1, { consistency: 'each_quorum', timeout: 300 }));
    expect(error).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 3, acknowledged: 2 });
    const read = await timed(c.store('n3').get('k', { consistency: 'each_quorum', timeout: 300 }));
    expect(read.error).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 3, acknowledged: 2 });
    // (The failed write may have left its version on dc1's replicas: a blind write beside it would be a sibling.)
    await c.store('n1').put('k2', 2, { consistency: 'local_quorum' });
    expect((await c.store('n5').get('k2', { consistency: 'local_quorum' }))?.values).toEqual([2]);
  });
});
