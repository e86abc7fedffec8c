import { afterEach, describe, expect, it } from 'vitest';
import { KvError, type StorageAdapter } from 'quorumkv';
import { createTestCluster, type TestCluster } from 'quorumkv/testing';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

/** Polls `condition` every 5 ms until it holds; fails after `timeout` ms saying what it waited for. */
async function until(what: string, condition: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function hintsOf(storage: StorageAdapter, target?: string): Promise<{ target: string; key: string }[]> {
  const out: { target: string; key: string }[] = [];
  for await (const h of storage.hints(target)) out.push({ target: h.target, key: new TextDecoder().decode(h.key) });
  return out;
}

/** Owners (N=3) of `key` on the cluster's ring. */
const owners = (c: TestCluster, key: string): string[] => c.stores[0]!.ring.preferenceList(key, 3).map((n) => n.id);

describe('sloppy quorum and hinted handoff (5 nodes, N3)', () => {
  it('with one replica stopped: 200 quorum puts succeed through stand-ins, `all` still fails honestly, hints go home when it returns', async () => {
    cluster = await createTestCluster({ nodes: 5, timeout: 2_000 });
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
});
