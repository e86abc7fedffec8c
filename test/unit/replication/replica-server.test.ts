import { describe, expect, it } from 'vitest';
import { MemoryStorage, ReplicaServer, Ring, SiblingSet, VectorClock, encodeSiblingSet } from 'quorumkv';

const ring = Ring.from([{ id: 'a' }]);
const key = (s: string): Uint8Array => new TextEncoder().encode(s);
const value = (s: string): Uint8Array => new TextEncoder().encode(s);

async function server(storage: MemoryStorage, actor = 'a~1'): Promise<ReplicaServer> {
  await storage.open();
  const r = new ReplicaServer({ storage, actor, ring: () => ring });
  await r.open();
  return r;
}

const write = (v: string, context = VectorClock.EMPTY) => ({
  value: value(v),
  tombstone: false,
  context,
  overwrite: false,
  timestamp: 1,
});

describe('ReplicaServer', () => {
  it('issues node-wide increasing counters, leased durably across restarts', async () => {
    const storage = new MemoryStorage();
    const r1 = await server(storage);
    const a = await r1.coordinateWrite(key('x'), write('1'));
    const b = await r1.coordinateWrite(key('y'), write('2'));
    const ca = a.set.versions[0]!.dot.counter;
    const cb = b.set.versions[0]!.dot.counter;
    expect(cb).toBeGreaterThan(ca);
    await storage.close();
    const r2 = await server(storage);
    const c = await r2.coordinateWrite(key('x'), write('3'));
    const counters = c.set.versions.map((v) => v.dot.counter);
    expect(Math.max(...counters)).toBeGreaterThan(cb);
    expect(new Set(counters).size).toBe(counters.length);
  });

  it('never reissues a dot even when pruning erased the actor from the key', async () => {
    const storage = new MemoryStorage();
    await storage.open();
    const r = new ReplicaServer({ storage, actor: 'a~1', ring: () => ring, maxClockEntries: 1 });
    await r.open();
    const first = await r.coordinateWrite(key('k'), write('mine'));
    const dot = first.set.versions[0]!.dot;
    // b supersedes a's version; then c supersedes b's with a context pruned to one
    // entry, which drops a's: the key's set no longer remembers any event of a.
    const b = first.set.write('b~1', first.set.clock(), { value: value('b'), timestamp: 2 });
    const pruned = VectorClock.from([
      ['b~1', b.version.dot.counter, 50],
      ['a~1', dot.counter, 1],
    ]);
    const c = b.set.write('c~1', pruned, { value: value('c'), timestamp: 3, maxClockEntries: 1 });
    await r.apply(key('k'), b.set, encodeSiblingSet(b.set));
    await r.apply(key('k'), c.set, encodeSiblingSet(c.set));
    expect((await r.read(key('k'))).clock().get('a~1')).toBe(0);
    const next = await r.coordinateWrite(key('k'), write('again'));
    const again = next.set.versions.find((v) => new TextDecoder().decode(v.value) === 'again');
    expect(again?.dot.actor).toBe('a~1');
    expect(again!.dot.counter).toBeGreaterThan(dot.counter);
    const dots = next.set.versions.map((v) => `${v.dot.actor}:${v.dot.counter}`);
    expect(new Set(dots).size).toBe(dots.length);
  });

  it('apply merges, skips identical records and keeps concurrent versions', async () => {
    const storage = new MemoryStorage();
    const r = await server(storage);
    const local = await r.coordinateWrite(key('k'), write('local'));
    await r.apply(key('k'), local.set, local.encoded);
    expect((await r.read(key('k'))).equals(local.set)).toBe(true);
    const other = SiblingSet.empty<Uint8Array>().write('b~1', VectorClock.EMPTY, { value: value('other'), timestamp: 3 });
    await r.apply(key('k'), other.set, encodeSiblingSet(other.set));
    const merged = await r.read(key('k'));
    expect(merged.size).toBe(2);
    expect(merged.descends(other.set) && merged.descends(local.set)).toBe(true);
  });

  it('refuses malformed replica messages with KV_INVALID_MESSAGE and stores nothing', async () => {
    const storage = new MemoryStorage();
    const r = await server(storage);
    await expect(r.handle({ type: 'kv.apply', key: key('k'), record: new Uint8Array([1, 2, 3]) })).rejects.toMatchObject({
      code: 'KV_INVALID_MESSAGE',
    });
    await expect(r.handle({ type: 'kv.read', key: 'not bytes' })).rejects.toMatchObject({ code: 'KV_INVALID_MESSAGE' });
    await expect(r.handle({ type: 'kv.nope' })).rejects.toMatchObject({ code: 'KV_INVALID_MESSAGE' });
    expect(await r.readEncoded(key('k'))).toBeUndefined();
  });
});
