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
