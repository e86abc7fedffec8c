import { afterEach, describe, expect, it } from 'vitest';
import { KvError, type StorageAdapter } from 'quorumkv';
import { createTestCluster, type TestCluster } from 'quorumkv/testing';
import { until } from '../helpers/until.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function hintsOf(storage: StorageAdapter, target?: string): Promise<{ target: string; key: string }[]> {
  const out: { target: string; key: string }[] = [];
  for await (const h of storage.hints(target)) out.push({ target: h.target, key: new TextDecoder().decode(h.key) });
  return out;
}

// Call deadlines are generous on purpose: what these tests claim (every quorum put succeeds
// through stand-ins) does not depend on the deadline, and 200 puts in flight on five
// in-process nodes can take seconds on a loaded 2-core machine.

/** Owners (N=3) of `key` on the cluster's ring. */
const owners = (c: TestCluster, key: string): string[] => c.stores[0]!.ring.preferenceList(key, 3).map((n) => n.id);

describe('sloppy quorum and hinted handoff (5 nodes, N3)', () => {
  it('with one replica stopped: 200 quorum puts succeed through stand-ins, `all` still fails honestly, hints go home when it returns', async () => {
    cluster = await createTestCluster({ nodes: 5, timeout: 10_000 });
    const c = cluster;
    const stored: { node: string; target: string }[] = [];
    const delivered: { node: string; target: string }[] = [];
    for (const s of c.stores) {
      s.on('hint:stored', (e) => stored.push({ node: s.id, target: e.target }));
      s.on('hint:delivered', (e) => delivered.push({ node: s.id, target: e.target }));
    }
    await c.store('n3').stop();
    const live = c.stores.filter((s) => s.id !== 'n3');
    await until('n3 down everywhere', () => live.every((s) => s.members().find((m) => m.id === 'n3')?.status === 'down'));

    const keys = Array.from({ length: 200 }, (_, i) => `q:${i}`);
    const results = await Promise.allSettled(keys.map((k, i) => live[i % 4]!.put(k, { i }, { consistency: 'quorum' })));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);

    // `all` needs every replica: a put of a key n3 owns fails naming n3, nothing pretends otherwise.
    const allKeys = keys.map((k) => `all:${k}`);
    const allResults = await Promise.allSettled(allKeys.map((k, i) => live[i % 4]!.put(k, { i }, { consistency: 'all' })));
    const allOwned = allKeys.filter((k) => owners(c, k).includes('n3'));
    expect(allOwned.length).toBeGreaterThan(60);
    for (const [i, k] of allKeys.entries()) {
      const r = allResults[i]!;
      if (!allOwned.includes(k)) {
        expect(r.status).toBe('fulfilled');
        continue;
      }
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as KvError;
      // It fails as soon as n3's refusal makes 3 impossible (the other replica may not have answered yet).
      expect(err).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 3 });
      expect((err as KvError & { acknowledged: number }).acknowledged).toBeLessThan(3);
      expect((err as KvError & { failures: { node: string }[] }).failures.map((f) => f.node)).toContain('n3');
    }

    // Every key n3 owns has a hint for n3 on a stand-in (stored in the background, past W).
    const owned = keys.filter((k) => owners(c, k).includes('n3'));
    const hinted = async (): Promise<Set<string>> => {
      const have = new Set<string>();
      for (const s of live) for (const h of await hintsOf(c.storage(s.id), 'n3')) have.add(h.key);
      return have;
    };
    await until('a hint for n3 of every key it owns', async () => {
      const have = await hinted();
      return owned.every((k) => have.has(k));
    });
    expect([...(await hinted())].sort()).toEqual([...owned].sort());
    // Stand-ins are never the key's own replicas, and none keeps a hint for anyone else.
    for (const s of live) {
      for (const h of await hintsOf(c.storage(s.id))) {
        expect(h.target).toBe('n3');
        expect(owners(c, h.key)).not.toContain(s.id);
      }
    }
    expect(stored.every((e) => e.target === 'n3')).toBe(true);
    expect(stored.length).toBeGreaterThanOrEqual(owned.length);

    // n3 comes back over its storage: member:up sends the hints home, each deleted once acknowledged.
    const n3 = await c.restart('n3');
    await until('every hint for n3 delivered', async () => (await hinted()).size === 0);
    expect(delivered.length).toBe(stored.length);
    for (const k of owned) {
      const local = await n3.localGet(k);
      // Exactly the version the coordinator made: the hint carried the same record.
      expect(local?.values).toEqual([{ i: keys.indexOf(k) }]);
      expect(local?.siblings).toHaveLength(1);
    }
  });

  it('with one replica silent (isolated, not yet declared down): 200 quorum puts succeed, and after it heals every value is there once', async () => {
    cluster = await createTestCluster({ nodes: 5, timeout: 10_000, store: { hints: { interval: 100 } } });
    const c = cluster;
    c.network.isolate('n3');
    const live = c.stores.filter((s) => s.id !== 'n3');
    const keys = Array.from({ length: 200 }, (_, i) => `s:${i}`);
    const results = await Promise.allSettled(keys.map((k, i) => live[i % 4]!.put(k, { i })));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    c.network.heal();
    const hinted = async (): Promise<number> => {
      let count = 0;
      for (const s of live) count += (await hintsOf(c.storage(s.id), 'n3')).length;
      return count;
    };
    await until('every hint for n3 delivered', async () => (await hinted()) === 0, 15_000);
    const n3 = c.store('n3');
    for (const [i, k] of keys.entries()) {
      if (!owners(c, k).includes('n3')) continue;
      const local = await n3.localGet(k);
      // One version: the hint carried the record the coordinator made, never a second version of the write.
      expect(local?.siblings.length).toBe(1);
      expect(local?.values).toEqual([{ i }]);
    }
    for (const [i, k] of keys.entries()) expect((await c.stores[i % 5]!.get(k, { consistency: 'all' }))?.values).toEqual([{ i }]);
  });

  it('validates its options precisely', async () => {
    const { Store, MemoryNetwork } = await import('quorumkv');
    const net = new MemoryNetwork();
    const make = (o: object) => () => new Store({ id: 'x', transport: net.transport('x'), ...o });
    expect(make({ sloppyQuorum: 'yes' })).toThrow('Expected `sloppyQuorum` to be a boolean, got "yes"');
    expect(make({ hopTimeout: 0 })).toThrow('Expected `hopTimeout` to be a finite number of milliseconds >= 1, got 0');
    expect(make({ hints: { ttl: 11 * 24 * 3600 * 1000 } })).toThrow(
      'Expected `hints.ttl` to be at most the tombstone grace (864000000 ms), got 950400000',
    );
    expect(make({ hints: { ttl: 2 * 3600 * 1000 }, antiEntropy: { tombstoneGrace: 3600 * 1000 } })).toThrow(
      'Expected `hints.ttl` to be at most the tombstone grace (3600000 ms), got 7200000',
    );
    expect(make({ hints: { maxInFlight: 0 } })).toThrow(RangeError);
    expect(make({ hints: [] })).toThrow('Expected `hints` to be an object, got an array');
  });
});
