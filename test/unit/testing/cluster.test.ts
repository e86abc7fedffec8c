import { afterEach, describe, expect, it } from 'vitest';
import { KvError, MemoryNetwork, MemoryStorage, Store, type StorageAdapter } from 'quorumkv';
import { createTestCluster, TEST_CLUSTER_GOSSIP, type TestCluster } from 'quorumkv/testing';

/** Polls `condition` every 5 ms until it holds; fails with `what` after `ms`. */
async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

const statusOf = (s: Store, id: string): string | undefined => s.members().find((m) => m.id === id)?.status;
const aliveIds = (s: Store): string[] => s.members().filter((m) => m.status === 'alive').map((m) => m.id);
const ringIds = (s: Store): string[] => s.ring.nodes.map((n) => n.id);
/** This node's own heartbeat: one per gossip round. */
const rounds = (s: Store): number => s.members().find((m) => m.id === s.id)?.heartbeat ?? 0;

/**
 * Tracks the global timers set from now on that have neither fired nor been
 * cleared, by delay (the stores' system clock uses them too; the cluster
 * helper polls with 5 ms timers).
 */
function trackTimers(): { live(ms?: number): number; restore(): void } {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const live = new Map<unknown, number | undefined>();
  globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const handle = realSet(() => {
      live.delete(handle);
      fn(...args);
    }, ms);
    live.set(handle, ms);
    return handle;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((handle?: Parameters<typeof clearTimeout>[0]) => {
    live.delete(handle);
    realClear(handle);
  }) as typeof clearTimeout;
  return {
    live: (ms) => [...live.values()].filter((m) => ms === undefined || m === ms).length,
    restore() {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    },
  };
}

class BrokenStorage extends MemoryStorage {
  override async open(): Promise<void> {
    throw new Error('disk gone');
  }
}

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe('MemoryNetwork.connected', () => {
  it('tells whether partitions and isolation leave a link up', () => {
    const net = new MemoryNetwork();
    expect(net.connected('a', 'b')).toBe(true); // no transport needed
    net.partition(['a', 'b'], ['c']);
    expect(net.connected('a', 'b')).toBe(true);
    expect(net.connected('a', 'c')).toBe(false);
    expect(net.connected('c', 'b')).toBe(false);
    expect(net.connected('c', 'd')).toBe(true);
    net.isolate('d');
    expect(net.connected('c', 'd')).toBe(false);
    expect(net.connected('d', 'a')).toBe(false);
    net.setDropRate(1); // random loss is not a cut link
    net.heal();
    expect(net.connected('a', 'c')).toBe(true);
    expect(net.connected('d', 'a')).toBe(true);
    expect(() => net.connected('a', 3 as unknown as string)).toThrow(TypeError);
    expect(() => net.connected('a', 3 as unknown as string)).toThrow('Expected `a` and `b` to be address strings, got string and number');
  });
});

describe('createTestCluster', () => {
  it("runs the README's testing snippet", async () => {
    const cluster = await createTestCluster({ nodes: 5 });   // N3 R2 W2 by default
    await cluster.stores[0]!.put('k', 1);
    cluster.network.isolate('n3');                           // fault injection
    await cluster.restart('n2');                             // crash + restart over the same storage
    await cluster.restart('n4', { emptyStorage: true });     // ... or after losing its disk
    await cluster.stop();
  });

  it('restart waits for the restarted node and the nodes it can reach, not for the ones partitioned away', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    cluster.network.partition(['n1', 'n2'], ['n3', 'n4', 'n5']);
    const n1 = await cluster.restart('n1');
    const n2 = cluster.store('n2');
    expect(cluster.store('n1')).toBe(n1);
    expect(aliveIds(n1)).toContain('n2');
    expect(n2.members().find((m) => m.id === 'n1')).toMatchObject({ status: 'alive', generation: n1.members().find((m) => m.id === 'n1')?.generation });
    // An isolated node is a group of its own.
    cluster.network.heal();
    cluster.network.isolate('n5');
    const n5 = await cluster.restart('n5');
    expect(aliveIds(n5)).toEqual(['n5']);
    // Healed, everyone converges again.
    cluster.network.heal();
    await cluster.converged();
    for (const s of cluster.stores) expect(aliveIds(s)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
  });

  it('converged() is not confused by a node the helper did not make', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const guest = new Store({
      id: 'guest',
      cluster: 'test',
      transport: cluster.network.transport('guest'),
      seeds: ['n1'],
      gossip: TEST_CLUSTER_GOSSIP,
      replication: { n: 3, r: 2, w: 2 },
    });
    try {
      await guest.start();
      await guest.waitForMembers(4, { timeout: 5_000 });
      await cluster.converged(5_000);
      for (const s of cluster.stores) expect(ringIds(s)).toEqual(['guest', 'n1', 'n2', 'n3']);
      // Cut off, the guest is not waited for...
      cluster.network.isolate('guest');
      await cluster.converged(5_000);
      // ...nor once it has stopped (it keeps its place on the ring).
      cluster.network.heal();
      await guest.stop();
      await cluster.converged(5_000);
      expect(cluster.stores.map((s) => s.ring.size)).toEqual([4, 4, 4]);
    } finally {
      await guest.stop();
    }
  });

  it('add() grows the cluster with a node that joins and belongs to it like the others', async () => {
    cluster = await createTestCluster({ nodes: 3, zones: ['a', 'b'] });
    const n4 = await cluster.add();
    expect(n4.id).toBe('n4');
    expect(n4.started).toBe(true);
    expect(cluster.stores.map((s) => s.id)).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(cluster.store('n4')).toBe(n4);
    expect(cluster.storage('n4')).toBe(n4.storage);
    for (const s of cluster.stores) {
      expect(aliveIds(s)).toEqual(['n1', 'n2', 'n3', 'n4']);
      expect(ringIds(s)).toEqual(['n1', 'n2', 'n3', 'n4']);
    }
    expect(n4.members().find((m) => m.id === 'n4')?.zone).toBe('b'); // zones round-robin: a, b, a, b
    await n4.put('added', 'yes', { consistency: 'all' });
    expect((await cluster.store('n1').get('added'))?.values).toEqual(['yes']);

    // Explicit id, zone and storage; seeded through the running nodes even when one is cut off.
    cluster.network.isolate('n1');
    const storage: StorageAdapter = new MemoryStorage();
    const extra = await cluster.add({ id: 'extra', zone: 'z', storage, store: { timeout: 1_234 } });
    expect(cluster.storage('extra')).toBe(storage);
    expect(extra.members().find((m) => m.id === 'extra')?.zone).toBe('z');
    for (const id of ['n2', 'n3', 'n4']) expect(statusOf(cluster.store(id), 'extra')).toBe('alive');
    cluster.network.heal();
    await cluster.converged();
    expect(cluster.stores.map((s) => s.ring.size)).toEqual([5, 5, 5, 5, 5]);

    // The next default id skips the ones in use.
    expect((await cluster.add()).id).toBe('n6');

    // restart and stop know the added nodes.
    const again = await cluster.restart('n4');
    expect(cluster.stores[3]).toBe(again);
    expect(cluster.storage('n4')).toBe(n4.storage);
    expect((await again.localGet('added'))?.values).toEqual(['yes']);
    await cluster.stop();
    expect(cluster.stores.every((s) => !s.started)).toBe(true);
  });

  it('add() validates its options and leaves no trace when the node cannot start', async () => {
    cluster = await createTestCluster({ nodes: 2 });
    await expect(cluster.add({ id: 'n1' })).rejects.toThrow(RangeError);
    await expect(cluster.add({ id: 'n1' })).rejects.toThrow('Expected `id` to be an id not in use in this cluster (n1, n2), got "n1"');
    await expect(cluster.add({ id: '' })).rejects.toThrow('Expected `id` to be a non-empty string, got ""');
    await expect(cluster.add({ zone: 7 as unknown as string })).rejects.toThrow(TypeError);
    await expect(cluster.add({ timeout: 0 })).rejects.toThrow('Expected `timeout` to be a positive number of milliseconds, got 0');
    await expect(cluster.add({ storage: new BrokenStorage() })).rejects.toThrow('disk gone');
    expect(cluster.stores.map((s) => s.id)).toEqual(['n1', 'n2']);
    expect(() => cluster!.store('n3')).toThrow('Expected `id` to be a node of this cluster (n1, n2), got "n3"');
    expect(() => cluster!.storage('n3')).toThrow(RangeError);
    await expect(cluster.restart('n3')).rejects.toThrow(RangeError);
    // The id is free again.
    expect((await cluster.add()).id).toBe('n3');
  });

  it('rejects bad options with precise errors', async () => {
    await expect(createTestCluster({ nodes: 0 })).rejects.toThrow('Expected `nodes` to be a positive integer or a non-empty array of ids, got 0');
    await expect(createTestCluster({ nodes: [] })).rejects.toThrow(RangeError);
    await expect(createTestCluster({ nodes: ['a', 'b', 'a'] })).rejects.toThrow('Expected the ids in `nodes` to be distinct, got "a" twice');
    await expect(createTestCluster({ nodes: ['a', ''] })).rejects.toThrow('Expected `nodes[1]` to be a non-empty string, got ""');
    await expect(createTestCluster({ convergeTimeout: -1 })).rejects.toThrow(RangeError);
    cluster = await createTestCluster({ nodes: 1 });
    await expect(cluster.converged(Number.NaN)).rejects.toThrow('Expected `timeout` to be a positive number of milliseconds, got NaN');
  });

  it('converged() times out saying what each node sees, stop() ends a pending wait, and no timer is left behind', async () => {
    const timers = trackTimers();
    try {
      cluster = await createTestCluster({ nodes: 3 });
      cluster.network.setDropRate(1); // nothing gets through: a new node cannot join
      const err = await rejection(cluster.add({ timeout: 100 }));
      expect(err).toBeInstanceOf(KvError);
      expect((err as KvError).code).toBe('KV_TIMEOUT');
      expect((err as KvError).message).toContain('n4 sees alive n4 on ring n4');
      expect(cluster.store('n4').started).toBe(true); // it stays, running
      expect(await rejection(cluster.converged(20))).toMatchObject({ code: 'KV_TIMEOUT' });
      expect(timers.live(5)).toBe(0);
      const pending = rejection(cluster.converged());
      expect(timers.live(5)).toBe(1); // polling
      const stopping = cluster.stop();
      expect(await pending).toMatchObject({ code: 'KV_NOT_STARTED' });
      expect(timers.live(5)).toBe(0); // before the stores have stopped
      await stopping;
      expect(timers.live()).toBe(0);
    } finally {
      timers.restore();
    }
  });

  it('its gossip preset never suspects a healthy node while another is isolated', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const healthy = cluster.stores.filter((s) => s.id !== 'n3');
    const falseSuspicions: string[] = [];
    const suspectedN3 = new Set<string>();
    for (const s of healthy) {
      s.on('member:suspected', (e) => {
        if (e.member.id === 'n3') suspectedN3.add(s.id);
        else falseSuspicions.push(`${s.id} suspected ${e.member.id}`);
      });
    }
    cluster.network.isolate('n3');
    // Until everyone sees n3 down (about 1.6 s), then another suspicion window (about 1.3 s, 26 rounds).
    await until(() => healthy.every((s) => statusOf(s, 'n3') === 'down'), 15_000, 'n3 to be down everywhere');
    const from = new Map(healthy.map((s) => [s, rounds(s)]));
    await until(
      () => healthy.every((s) => rounds(s) >= from.get(s)! + 26),
      15_000,
      'another suspicion window of gossip rounds',
    );
    expect([...suspectedN3].sort()).toEqual(['n1', 'n2', 'n4', 'n5']);
    expect(falseSuspicions).toEqual([]);
    for (const s of healthy) expect(aliveIds(s)).toEqual(['n1', 'n2', 'n4', 'n5']);
  });
});
