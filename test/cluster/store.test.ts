import { afterEach, describe, expect, it } from 'vitest';
import { KvError, MemoryNetwork, MemoryStorage, QuorumNotMetError, Store } from 'quorumkv';
import { createTestCluster, type TestCluster } from 'quorumkv/testing';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

/** A key whose preference list (N=3) starts with / includes the given node. */
function keyOwnedBy(c: TestCluster, id: string, position: 'first' | 'any' | 'none' = 'first'): string {
  const ring = c.stores[0]!.ring;
  for (let i = 0; i < 100_000; i++) {
    const key = `key-${i}`;
    const ids = ring.preferenceList(key, 3).map((n) => n.id);
    if (position === 'first' && ids[0] === id) return key;
    if (position === 'any' && ids.includes(id)) return key;
    if (position === 'none' && !ids.includes(id)) return key;
  }
  throw new Error('no such key');
}

async function rejection(p: Promise<unknown>): Promise<KvError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KvError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('a 5-node cluster', () => {
  it('converges with every node seeing the same ring', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const rings = cluster.stores.map((s) => JSON.stringify(s.ring.toJSON()));
    expect(new Set(rings).size).toBe(1);
    for (const s of cluster.stores) {
      const members = s.members();
      expect(members.map((m) => m.id)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
      expect(members.every((m) => m.status === 'alive' && m.state === 'normal')).toBe(true);
    }
  });

  it('a value written through one node reads the same through every node', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const keys = Array.from({ length: 20 }, (_, i) => `user:${i}`);
    await Promise.all(keys.map((k, i) => cluster!.stores[i % 5]!.put(k, { i, name: k })));
    for (const s of cluster.stores) {
      for (const [i, k] of keys.entries()) {
        const r = await s.get(k);
        expect(r?.values).toEqual([{ i, name: k }]);
        expect(typeof r?.context).toBe('string');
      }
    }
    expect(await cluster.stores[2]!.get('missing')).toBeUndefined();
  });

  it('keeps each key on exactly N replicas', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    await cluster.stores[0]!.put('placed', 'v', { consistency: 'all' });
    const holders: string[] = [];
    for (const s of cluster.stores) if (await s.localGet('placed')) holders.push(s.id);
    const expected = cluster.stores[0]!.ring.preferenceList('placed', 3).map((n) => n.id);
    expect(holders.sort()).toEqual([...expected].sort());
  });

  it('concurrent writes with the same context become siblings; a write with the read context collapses them', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const [a, b, c, d] = cluster.stores as [Store, Store, Store, Store];
    await a.put('doc', 'v0');
    const read = await b.get('doc');
    await Promise.all([
      c.put('doc', 'left', { context: read!.context }),
      d.put('doc', 'right', { context: read!.context }),
    ]);
    const conflicted = await a.get('doc', { consistency: 'all' });
    expect(conflicted?.values.sort()).toEqual(['left', 'right']);
    await b.put('doc', 'merged', { context: conflicted!.context });
    for (const s of cluster.stores) expect((await s.get('doc'))?.values).toEqual(['merged']);
  });

  it('put and delete resolve with nothing, coordinated here or forwarded to a replica', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const through = cluster.stores[0]!;
    const here = keyOwnedBy(cluster, through.id, 'first');
    const forwarded = keyOwnedBy(cluster, through.id, 'none');
    for (const key of [here, forwarded]) {
      expect(await through.put(key, 'v')).toBeUndefined();
      expect(await through.delete(key)).toBeUndefined();
    }
  });

  it('a get result is a plain { values, context } object', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const [a, b] = cluster.stores as [Store, Store];
    await a.put('plain', { n: 1 });
    const read = (await b.get('plain'))!;
    const context = read.context;
    expect(typeof context).toBe('string');
    expect(read.context).toBe(context);
    expect(Object.keys(read)).toEqual(['values', 'context']);
    expect(JSON.parse(JSON.stringify(read))).toEqual({ values: [{ n: 1 }], context });
    expect({ ...read }).toEqual({ values: [{ n: 1 }], context });
    expect(read).toEqual({ values: [{ n: 1 }], context });
    // The context supersedes exactly what was read, whenever it is first read.
    const later = (await b.get('plain'))!;
    await a.put('plain', { n: 2 }, { context: later.context });
    expect((await b.get('plain'))?.values).toEqual([{ n: 2 }]);
    // Assignable, as a plain object's field is.
    read.context = 'replaced';
    expect(read.context).toBe('replaced');
    // LWW and resolver stores give the same shape.
    const lww = (await createTestCluster({ nodes: 1, conflict: 'lww' }).then(async (c) => {
      try {
        await c.stores[0]!.put('k', 'v');
        return await c.stores[0]!.get('k');
      } finally {
        await c.stop();
      }
    }))!;
    expect(JSON.parse(JSON.stringify(lww))).toEqual({ values: ['v'], context: lww.context });
  });

  it('two concurrent writes through the same coordinator are both kept', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const key = keyOwnedBy(cluster, 'n1');
    const n1 = cluster.store('n1');
    await n1.put(key, 'base');
    const read = await n1.get(key);
    await n1.put(key, 'one', { context: read!.context });
    await n1.put(key, 'two', { context: read!.context });
    expect((await n1.get(key))?.values.sort()).toEqual(['one', 'two']);
  });

  it('many concurrent blind writes through one coordinator are all kept', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const key = keyOwnedBy(cluster, 'n2');
    const n2 = cluster.store('n2');
    await Promise.all(Array.from({ length: 20 }, (_, i) => n2.put(key, i)));
    const r = await cluster.store('n4').get(key, { consistency: 'all' });
    expect(r?.values.sort((a, b) => (a as number) - (b as number))).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await n2.put(key, 'one', { context: r!.context });
    expect((await n2.get(key))?.values).toEqual(['one']);
  });

  it('a coordinator replicates its whole record, so a context never covers a version its reader did not see', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const [p0, p1, p2] = cluster.stores[0]!.ring.preferenceList('k', 3).map((n) => cluster!.store(n.id)) as [Store, Store, Store];
    // v1 reaches only p0 (W=1 while p0 is cut off).
    cluster.network.partition([p0.id], [p1.id, p2.id]);
    await p0.put('k', 'v1', { w: 1 });
    cluster.network.heal();
    // v2, blind, through p0: concurrent with v1; p0 holds both and must ship both.
    await p0.put('k', 'v2', { w: 3 });
    // Read without p0: the reader must see v1 too, since its context will cover it.
    cluster.network.partition([p0.id], [p1.id, p2.id]);
    const read = await p1.get('k', { r: 2 });
    expect(read?.values.sort()).toEqual(['v1', 'v2']);
    cluster.network.heal();
    await p1.put('k', 'v3', { context: read!.context, w: 3 });
    expect((await p2.get('k', { consistency: 'all' }))?.values).toEqual(['v3']);
  });

  it('a blind write (no context) is kept next to what it did not see', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    await cluster.stores[0]!.put('blind', 1);
    await cluster.stores[1]!.put('blind', 2);
    expect((await cluster.stores[2]!.get('blind'))?.values.sort()).toEqual([1, 2]);
  });

  it('delete hides the key; a later write without context is the only value', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const [a, b, c] = cluster.stores as [Store, Store, Store];
    await a.put('gone', 'v1');
    await b.delete('gone');
    for (const s of cluster.stores) expect(await s.get('gone')).toBeUndefined();
    // The tombstone is still a version on the replicas.
    const owner = cluster.store(a.ring.preferenceList('gone', 3)[0]!.id);
    const local = await owner.localGet('gone');
    expect(local?.values).toEqual([]);
    expect(local?.siblings.some((s) => s.tombstone)).toBe(true);
    await c.put('gone', 'v2');
    for (const s of cluster.stores) expect((await s.get('gone'))?.values).toEqual(['v2']);
  });

  it('a write concurrent with a delete survives as a sibling', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const [a, b, c] = cluster.stores as [Store, Store, Store];
    await a.put('race', 'v1');
    const read = await b.get('race');
    await c.delete('race', { context: read!.context });
    await a.put('race', 'v2', { context: read!.context });
    expect((await b.get('race'))?.values).toEqual(['v2']);
    // a delete with the latest context removes it for good
    const latest = await b.get('race');
    await c.delete('race', { context: latest!.context });
    expect(await a.get('race')).toBeUndefined();
  });

  it('delete of a missing key is a no-op', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    await cluster.stores[0]!.delete('never-written');
    expect(await cluster.stores[1]!.get('never-written')).toBeUndefined();
    expect(await cluster.stores[1]!.localGet('never-written')).toBeUndefined();
  });

  it("consistency 'all' with one replica isolated fails with KV_QUORUM_NOT_MET by the deadline", async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const key = keyOwnedBy(cluster, 'n5', 'any');
    const coordinator = cluster.stores.find((s) => s.id !== 'n5' && s.ring.preferenceList(key, 3).some((n) => n.id === s.id))!;
    await coordinator.put(key, 'before');
    cluster.network.isolate('n5');
    const started = Date.now();
    const err = await rejection(coordinator.put(key, 'x', { consistency: 'all', timeout: 400 }));
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(QuorumNotMetError);
    expect(err.code).toBe('KV_QUORUM_NOT_MET');
    const q = err as QuorumNotMetError;
    expect(q.required).toBe(3);
    expect(q.acknowledged).toBe(2);
    expect(q.failures).toEqual([{ node: 'n5', code: 'KV_TIMEOUT' }]);
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(2_000);
    const readErr = await rejection(coordinator.get(key, { consistency: 'all', timeout: 300 }));
    expect(readErr.code).toBe('KV_QUORUM_NOT_MET');
    // A quorum still answers.
    expect((await coordinator.get(key))?.values.length).toBeGreaterThan(0);
  });

  it('a quorum read fails fast when too many replicas are stopped', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    await cluster.stores[0]!.put('k', 'v');
    await cluster.stores[1]!.stop();
    await cluster.stores[2]!.stop();
    const started = Date.now();
    const err = await rejection(cluster.stores[0]!.get('k', { timeout: 5_000 }));
    expect(err.code).toBe('KV_QUORUM_NOT_MET');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((err as QuorumNotMetError).failures.map((f) => f.code)).toEqual(['KV_UNREACHABLE', 'KV_UNREACHABLE']);
    expect((await cluster.stores[0]!.get('k', { r: 1 }))?.values).toEqual(['v']);
  });

  it('a node outside the preference list forwards writes to a replica', async () => {
    cluster = await createTestCluster({ nodes: 5 });
    const key = keyOwnedBy(cluster, 'n1', 'none');
    await cluster.store('n1').put(key, 'forwarded');
    expect(await cluster.store('n1').localGet(key)).toBeUndefined();
    expect((await cluster.store('n1').get(key))?.values).toEqual(['forwarded']);
  });

  it('read repair brings a stale replica up to date and says so', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const [a, b, c] = cluster.stores as [Store, Store, Store];
    await a.put('repair-me', 'old', { consistency: 'all' });
    cluster.network.isolate('n3');
    const read = await a.get('repair-me');
    await a.put('repair-me', 'new', { context: read!.context, w: 2 });
    cluster.network.heal();
    expect((await c.localGet('repair-me'))?.values).toEqual(['old']);
    const repaired = new Promise<{ key: string | Uint8Array; nodes: readonly string[] }>((resolve) => b.once('repair:completed', resolve));
    expect((await b.get('repair-me', { consistency: 'all' }))?.values).toEqual(['new']);
    // A string key is reported as the string (it used to arrive as its UTF-8 bytes).
    expect(await repaired).toEqual({ key: 'repair-me', nodes: ['n3'] });
    expect((await c.localGet('repair-me'))?.values).toEqual(['new']);
  });

  it('places replicas across zones first', async () => {
    cluster = await createTestCluster({ nodes: 6, zones: ['dc1', 'dc2', 'dc3'] });
    const zoneOf = new Map(cluster.stores[0]!.members().map((m) => [m.id, m.zone]));
    expect(new Set(zoneOf.values())).toEqual(new Set(['dc1', 'dc2', 'dc3']));
    for (let i = 0; i < 50; i++) {
      const key = `zoned:${i}`;
      await cluster.stores[i % 6]!.put(key, i, { consistency: 'all' });
      const holders: string[] = [];
      for (const s of cluster.stores) if (await s.localGet(key)) holders.push(s.id);
      expect(holders).toHaveLength(3);
      expect(new Set(holders.map((id) => zoneOf.get(id))).size).toBe(3);
    }
  });

  it('per-call r and w are validated', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const s = cluster.stores[0]!;
    await expect(s.get('k', { r: 4 })).rejects.toThrow(RangeError);
    await expect(s.put('k', 1, { w: 0 })).rejects.toThrow(RangeError);
    await expect(s.put('k', 1, { w: 2, consistency: 'one' })).rejects.toThrow(TypeError);
    await expect(s.get('k', { consistency: 'most' as never })).rejects.toThrow(TypeError);
    await s.put('k', 1, { consistency: 'one' });
    expect((await s.get('k', { consistency: 'all' }))?.values).toEqual([1]);
    // No options and an empty object are the defaults; null is not an options object.
    await s.put('k2', 2);
    await s.put('k3', 3, {});
    expect((await s.get('k2'))?.values).toEqual([2]);
    expect((await s.get('k3', {}))?.values).toEqual([3]);
    await expect(s.get('k', null as never)).rejects.toThrow(TypeError);
    await expect(s.put('k', 4, null as never)).rejects.toThrow(TypeError);
    expect((await s.get('k'))?.values).toEqual([1]);
  });
});

describe('bad input leaves data untouched', () => {
  it('rejects invalid keys, oversized values, bad contexts and unencodable values', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const s = cluster.stores[0]!;
    await s.put('safe', 'kept');
    expect((await rejection(s.put('', 1))).code).toBe('KV_INVALID_KEY');
    expect((await rejection(s.put('\uD800', 1))).code).toBe('KV_INVALID_KEY');
    expect((await rejection(s.get('x'.repeat(1025)))).code).toBe('KV_INVALID_KEY');
    expect((await rejection(s.put(new Uint8Array(0), 1))).code).toBe('KV_INVALID_KEY');
    expect((await rejection(s.put('safe', 'y'.repeat(10_241)))).code).toBe('KV_VALUE_TOO_LARGE');
    expect((await rejection(s.put('safe', 'z', { context: 'not a context!' }))).code).toBe('KV_INVALID_CONTEXT');
    await expect(s.put('safe', (() => 1) as never)).rejects.toThrow(TypeError);
    await expect(s.put('safe', undefined as never)).rejects.toThrow(TypeError);
    await expect(s.put('safe', JSON.parse('{"__proto__": 1}'))).rejects.toThrow(TypeError);
    for (const other of cluster.stores) expect((await other.get('safe'))?.values).toEqual(['kept']);
  });

  it('string and byte keys with the same UTF-8 bytes are the same key', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    await cluster.stores[0]!.put('ключ', 'v');
    expect((await cluster.stores[1]!.get(new TextEncoder().encode('ключ')))?.values).toEqual(['v']);
  });

  it('calls on a stopped or never-started store reject with KV_NOT_STARTED', async () => {
    const net = new MemoryNetwork();
    const s = new Store({ id: 'a', transport: net.transport('a') });
    expect((await rejection(s.get('k'))).code).toBe('KV_NOT_STARTED');
    await s.start();
    await s.stop();
    expect((await rejection(s.put('k', 1))).code).toBe('KV_NOT_STARTED');
    expect((await rejection(s.delete('k'))).code).toBe('KV_NOT_STARTED');
    expect((await rejection(s.localGet('k'))).code).toBe('KV_NOT_STARTED');
    // A promise API never throws synchronously: it rejects.
    const waiting = s.waitForMembers(1);
    expect((await rejection(waiting)).code).toBe('KV_NOT_STARTED');
    await s.start();
    await expect(s.waitForMembers(0)).rejects.toThrow(RangeError);
    await s.stop();
    await s.stop(); // idempotent
  });

  it('aborts: pre-aborted and mid-flight', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const s = cluster.stores[0]!;
    const err = await rejection(s.get('k', { signal: AbortSignal.abort() }));
    expect(err.code).toBe('KV_ABORTED');
    expect(err.name).toBe('AbortError');
    cluster.network.setLatency(200);
    const controller = new AbortController();
    const pending = s.put('k', 1, { signal: controller.signal, w: 3 });
    setTimeout(() => controller.abort(), 20);
    const mid = await rejection(pending);
    expect(mid.code).toBe('KV_ABORTED');
  });

  it('rejects programmer mistakes in the options with precise errors', () => {
    const net = new MemoryNetwork();
    expect(() => new Store({ id: '', transport: net.transport('x') })).toThrow(TypeError);
    expect(() => new Store({ id: 'a', transport: net.transport('y'), replication: { n: 2, r: 3 } })).toThrow(RangeError);
    expect(() => new Store({ id: 'a', transport: net.transport('z'), weight: -1 })).toThrow(RangeError);
  });
});

describe('conflict policies', () => {
  it("'lww' returns the latest write and a blind put overwrites", async () => {
    cluster = await createTestCluster({ nodes: 3, conflict: 'lww' });
    const [a, b, c] = cluster.stores as [Store, Store, Store];
    await a.put('k', 'first');
    await b.put('k', 'second');
    await c.put('k', 'third');
    expect((await a.get('k'))?.values).toEqual(['third']);
    const owner = cluster.store(a.ring.preferenceList('k', 3)[0]!.id);
    expect((await owner.localGet('k'))?.siblings.length).toBe(1);
    await b.delete('k');
    expect(await c.get('k')).toBeUndefined();
  });

  it('a resolver function merges siblings on read without writing back', async () => {
    const typed = await createTestCluster<number[]>({
      nodes: 3,
      conflict: (values) => [...new Set(values.flat())].sort(),
    });
    cluster = typed as unknown as TestCluster;
    const [a, b] = typed.stores as [Store<number[]>, Store<number[]>];
    await a.put('set', [1, 2]);
    await b.put('set', [2, 3]);
    expect((await a.get('set'))?.values).toEqual([[1, 2, 3]]);
    const owner = typed.store(a.ring.preferenceList('set', 3)[0]!.id);
    expect((await owner.localGet('set'))?.siblings.length).toBe(2);
  });
});

describe('restarts', () => {
  it('a restart over the same storage keeps data, incarnation and place on the ring', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const before = cluster.store('n2');
    const key = keyOwnedBy(cluster, 'n2');
    await before.put(key, 'v1', { consistency: 'all' });
    const incarnation = before.incarnation;
    const ring = JSON.stringify(before.ring.toJSON());
    const restarted = await cluster.restart('n2');
    expect(restarted).not.toBe(before);
    expect(restarted.incarnation).toBe(incarnation);
    expect(JSON.stringify(restarted.ring.toJSON())).toBe(ring);
    expect((await restarted.localGet(key))?.values).toEqual(['v1']);
    const read = await restarted.get(key);
    await restarted.put(key, 'v2', { context: read!.context });
    expect((await cluster.store('n1').get(key, { consistency: 'all' }))?.values).toEqual(['v2']);
  });

  it('a restart on empty storage is a new actor, so no write is lost (riak_kv#679)', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const key = keyOwnedBy(cluster, 'n1');
    const n1 = cluster.store('n1');
    await n1.put(key, 'from-old-incarnation', { consistency: 'all' });
    const oldActor = n1.actor;
    const fresh = await cluster.restart('n1', { emptyStorage: true });
    expect(fresh.actor).not.toBe(oldActor);
    expect(await fresh.localGet(key)).toBeUndefined();
    // Blind write through the wiped node: with a reused actor its dot would equal the
    // old one and one of the two writes would silently vanish.
    await fresh.put(key, 'from-new-incarnation', { w: 1 });
    const r = await cluster.store('n2').get(key, { consistency: 'all' });
    expect(r?.values.sort()).toEqual(['from-new-incarnation', 'from-old-incarnation']);
  });

  it('peers see a stopped node as down at once, and up again after its restart', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const n1 = cluster.store('n1');
    const down = new Promise<string>((resolve) => n1.once('member:down', (e) => resolve(`${e.member.id}:${e.reason}`)));
    await cluster.store('n3').stop();
    expect(await down).toBe('n3:shutdown');
    expect(n1.members().find((m) => m.id === 'n3')?.status).toBe('down');
    expect(n1.ring.size).toBe(3); // stop never takes a node off the ring
    const up = new Promise<string>((resolve) => n1.once('member:up', (e) => resolve(e.member.id)));
    await cluster.restart('n3');
    expect(await up).toBe('n3');
  });
});

describe('joining', () => {
  const stores: Store[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()));
  });

  it('start() resolves while seeds are unreachable and joins once they come up', async () => {
    const net = new MemoryNetwork();
    const gossip = { interval: 20 };
    const b = new Store({ id: 'b', transport: net.transport('b'), seeds: ['a'], gossip, replication: { n: 2, r: 1, w: 1 } });
    stores.push(b);
    await b.start();
    expect(b.members().map((m) => m.id)).toEqual(['b']);
    const a = new Store({ id: 'a', transport: net.transport('a'), gossip, replication: { n: 2, r: 1, w: 1 } });
    stores.push(a);
    await a.start();
    await b.waitForMembers(2, { timeout: 5_000 });
    await a.waitForMembers(2, { timeout: 5_000 });
    const joined = a.members().find((m) => m.id === 'b');
    expect(joined).toMatchObject({ id: 'b', address: 'b', status: 'alive', state: 'normal', weight: 1 });
  });

  it.each([
    ['another cluster', { cluster: 'other' }, 'KV_CLUSTER_MISMATCH'],
    ['another N', { replication: { n: 2, r: 1, w: 1 } }, 'KV_REPLICATION_MISMATCH'],
    ['a live node id', { id: 'a' }, 'KV_DUPLICATE_NODE'],
  ] as const)('refuses a node of %s with a coded error on both sides', async (_, override, code) => {
    const net = new MemoryNetwork();
    const gossip = { interval: 20 };
    const a = new Store({ id: 'a', cluster: 'main', transport: net.transport('a'), gossip });
    stores.push(a);
    await a.start();
    const refusedByA = new Promise<string>((resolve) => a.once('member:refused', (e) => resolve(e.error.code)));
    const b = new Store({
      id: 'b',
      cluster: 'main',
      transport: net.transport('b-addr'),
      seeds: ['a'],
      gossip,
      ...override,
    });
    stores.push(b);
    const refusedByPeer = new Promise<string>((resolve) => b.once('member:refused', (e) => resolve(`${e.by}:${e.error.code}`)));
    await b.start();
    const err = await rejection(b.waitForMembers(2, { timeout: 5_000 }));
    expect(err.code).toBe(code);
    expect(err.message.length).toBeGreaterThan(20);
    expect(await refusedByA).toBe(code);
    expect(await refusedByPeer).toBe(`peer:${code}`);
    expect(a.members().map((m) => m.id)).toEqual(['a']);
  });

  it('waitForMembers times out with KV_TIMEOUT and honours abort', async () => {
    const net = new MemoryNetwork();
    const a = new Store({ id: 'a', transport: net.transport('a'), storage: new MemoryStorage() });
    stores.push(a);
    await a.start();
    expect((await rejection(a.waitForMembers(2, { timeout: 50 }))).code).toBe('KV_TIMEOUT');
    expect((await rejection(a.waitForMembers(2, { signal: AbortSignal.abort() }))).code).toBe('KV_ABORTED');
    await a.waitForMembers(1);
  });
});
