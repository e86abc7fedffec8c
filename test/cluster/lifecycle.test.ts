import { describe, expect, it } from 'vitest';
import { MemoryNetwork, Store, systemClock, type Clock, type TimerHandle, type WireMessage } from 'quorumkv';
import { createTestCluster } from 'quorumkv/testing';

/** The system clock, counting the timers that are set and neither fired nor cleared. */
function countingClock(): Clock & { live(): number } {
  const live = new Set<TimerHandle>();
  return {
    now: () => systemClock.now(),
    setTimeout(fn, ms) {
      const handle: TimerHandle = systemClock.setTimeout(() => {
        live.delete(handle);
        fn();
      }, ms);
      live.add(handle);
      return handle;
    },
    clearTimeout(handle) {
      live.delete(handle);
      systemClock.clearTimeout(handle);
    },
    live: () => live.size,
  };
}

describe('lifecycle', () => {
  it('stop() is prompt and leaves no timer behind, even with requests in flight to a cut-off node', async () => {
    const clock = countingClock();
    const cluster = await createTestCluster({ nodes: 5, network: { clock }, store: { clock }, timeout: 5_000 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => cluster.stores[i % 5]!.put(`k${i}`, i)));
    cluster.network.isolate('n2');
    cluster.network.setLatency({ min: 1, max: 3 });
    // Writes and reads whose requests to n2 hang until their 5 s deadline.
    // (Each put goes through a replica of its key other than n2, so none waits on a forward.)
    const via = (key: string): Store => cluster.store(cluster.stores[0]!.ring.preferenceList(key, 3).find((n) => n.id !== 'n2')!.id);
    await Promise.allSettled(Array.from({ length: 20 }, (_, i) => via(`k${i}`).put(`k${i}`, -i, { w: 1 })));
    await Promise.allSettled(Array.from({ length: 20 }, (_, i) => cluster.stores[0]!.get(`k${i}`, { r: 1 })));
    expect(clock.live()).toBeGreaterThan(0);
    const started = Date.now();
    await cluster.stop();
    // Bounded by the shutdown announcement's timeout (500 ms here), not by the 5 s deadlines.
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(clock.live()).toBe(0);
  });

  it('stop() is bounded by gossip.shutdownTimeout while a peer is silent, not by the gossip timeout', async () => {
    const cluster = await createTestCluster({
      nodes: 3,
      gossip: { interval: 50, suspectAfterRounds: 10, downAfterRounds: 20, timeout: 5_000, shutdownTimeout: 100 },
    });
    try {
      // n3 swallows every message: exchanges with it (and the announcement) hang for the 5 s gossip timeout.
      cluster.network.isolate('n3');
      const started = Date.now();
      await cluster.store('n1').stop();
      expect(Date.now() - started).toBeLessThan(1_500);
    } finally {
      await cluster.stop();
    }
  });

  it('start and stop are idempotent and a stopped store can start again on a new transport', async () => {
    const net = new MemoryNetwork();
    const s = new Store({ id: 'a', transport: net.transport('a'), replication: { n: 1, r: 1, w: 1 } });
    await Promise.all([s.start(), s.start()]);
    expect(s.started).toBe(true);
    await s.put('k', 'v');
    await Promise.all([s.stop(), s.stop()]);
    expect(s.started).toBe(false);
    const again = new Store({ id: 'a', transport: net.transport('a'), storage: s.storage, replication: { n: 1, r: 1, w: 1 } });
    await again.start();
    expect((await again.get('k'))?.values).toEqual(['v']);
    await again.stop();
  });

  it('supports await using', async () => {
    const net = new MemoryNetwork();
    let store: Store | undefined;
    {
      await using s = new Store({ id: 'a', transport: net.transport('a'), replication: { n: 1, r: 1, w: 1 } });
      await s.start();
      store = s;
      expect(store.started).toBe(true);
    }
    expect(store.started).toBe(false);
  });
});

describe('hostile and unknown peers', () => {
  it('answers malformed and unknown requests with coded errors and keeps its data', async () => {
    const cluster = await createTestCluster({ nodes: 3 });
    try {
      const target = cluster.stores[0]!;
      await target.put('safe', 'kept', { consistency: 'all' });
      const rogue = cluster.network.transport('rogue');
      await rogue.start(() => ({ type: 'nothing' }));
      const send = (m: WireMessage): Promise<unknown> => rogue.request(target.transport.address, m, { timeout: 1_000 }).catch((e: unknown) => e);
      const key = new TextEncoder().encode('safe');
      // An unknown sender may not read or write data.
      expect(await send({ type: 'kv.read', cluster: 'test', key })).toMatchObject({ code: 'KV_UNKNOWN_PEER' });
      expect(await send({ type: 'kv.apply', cluster: 'test', key, record: new Uint8Array([1]) })).toMatchObject({ code: 'KV_UNKNOWN_PEER' });
      // Another cluster's traffic is refused.
      expect(await send({ type: 'kv.read', cluster: 'other', key })).toMatchObject({ code: 'KV_CLUSTER_MISMATCH' });
      // Garbage gossip is refused without harm.
      expect(await send({ type: 'gossip.syn', cluster: 'test', n: 3, from: [1, 2, 3], digests: [] })).toMatchObject({ code: 'KV_INVALID_MESSAGE' });
      expect(await send({ type: 'gossip.push', cluster: 'test', records: 'x' })).toMatchObject({ code: 'KV_INVALID_MESSAGE' });
      expect(await send({ type: 'gossip.nope' })).toMatchObject({ code: 'KV_INVALID_MESSAGE' });
      await rogue.stop();

      // A member sending a corrupt record is refused too, and nothing changes.
      const member = cluster.stores[1]!;
      const corrupt = await member.transport
        .request(target.transport.address, { type: 'kv.apply', cluster: 'test', key, record: new Uint8Array([1, 0x92, 0xff]) })
        .catch((e: unknown) => e);
      expect(corrupt).toMatchObject({ code: 'KV_INVALID_MESSAGE' });
      const badCoordinate = await member.transport
        .request(target.transport.address, { type: 'kv.coordinate', cluster: 'test', key, value: null, tombstone: false, overwrite: false, context: null, w: 9, timeout: 10 })
        .catch((e: unknown) => e);
      expect(badCoordinate).toMatchObject({ code: 'KV_INVALID_MESSAGE' });
      for (const s of cluster.stores) expect((await s.get('safe'))?.values).toEqual(['kept']);
      expect(target.members().map((m) => m.id)).toEqual(['n1', 'n2', 'n3']);
    } finally {
      await cluster.stop();
    }
  });
});
