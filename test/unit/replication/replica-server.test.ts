import { describe, expect, it, vi } from 'vitest';
import { MemoryStorage, Ring, VectorClock } from 'quorumkv';
import { ReplicaServer, SiblingSet, decodeSiblingSet, encodeSiblingSet, metadataCounterLease } from 'quorumkv/internals';
import { TooManySiblingsError } from '../../../src/errors/index.js';
import type { CoordinatedVersion, ReplicaServerOptions, SiblingsEvent } from '../../../src/replication/index.js';
import { ManualClock } from '../../../src/testing/manual-clock.js';
import type { WireMessage } from '../../../src/transport/index.js';

const ring = Ring.from([{ id: 'a' }]);
const key = (s: string): Uint8Array => new TextEncoder().encode(s);
const value = (s: string): Uint8Array => new TextEncoder().encode(s);

async function server(storage: MemoryStorage, actor = 'a~1'): Promise<ReplicaServer> {
  await storage.open();
  const r = new ReplicaServer({ storage, actor, ring: () => ring, lease: metadataCounterLease(storage, 'test.counter') });
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
    const r = new ReplicaServer({ storage, actor: 'a~1', ring: () => ring, lease: metadataCounterLease(storage, 'test.counter'), maxClockEntries: 1 });
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

async function bounded(options: Partial<ReplicaServerOptions> = {}, storage = new MemoryStorage()): Promise<ReplicaServer> {
  await storage.open();
  const r = new ReplicaServer({ storage, actor: 'a~1', ring: () => ring, lease: metadataCounterLease(storage, 'test.counter'), ...options });
  await r.open();
  return r;
}

const del = (context = VectorClock.EMPTY) => ({ value: undefined, tombstone: true, context, overwrite: false, timestamp: 1 });

describe('ReplicaServer sibling bound', () => {
  it('refuses a blind write past maxSiblings with KV_TOO_MANY_SIBLINGS and stores nothing', async () => {
    const storage = new MemoryStorage();
    const r = await bounded({ maxSiblings: 20 }, storage);
    for (let i = 0; i < 20; i++) await r.coordinateWrite(key('k'), write(`w${i}`));
    const before = await r.readEncoded(key('k'));
    expect((await r.read(key('k'))).size).toBe(20);
    const refused = await r.coordinateWrite(key('k'), write('one too many')).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TooManySiblingsError);
    expect(refused).toMatchObject({ code: 'KV_TOO_MANY_SIBLINGS', name: 'TooManySiblingsError', siblings: 21, limit: 20 });
    expect((refused as Error).message).toContain('"k"');
    expect(await r.readEncoded(key('k'))).toEqual(before);
    // Tombstones are versions too: a blind delete is refused as well.
    await expect(r.coordinateWrite(key('k'), del())).rejects.toMatchObject({ code: 'KV_TOO_MANY_SIBLINGS' });
    expect(await r.readEncoded(key('k'))).toEqual(before);
    // Other keys are not affected.
    await r.coordinateWrite(key('other'), write('fine'));
  });

  it('always accepts a write or delete whose context supersedes siblings', async () => {
    const r = await bounded({ maxSiblings: 5 });
    for (let i = 0; i < 5; i++) await r.coordinateWrite(key('k'), write(`w${i}`));
    const full = await r.read(key('k'));
    // A context that covers one sibling: the set does not grow, so the write passes.
    const one = full.versions[0]!;
    const partial = VectorClock.from([[one.dot.actor, one.dot.counter]]);
    expect((await r.coordinateWrite(key('k'), write('replaces one', partial))).set.size).toBe(5);
    await expect(r.coordinateWrite(key('k'), write('blind'))).rejects.toMatchObject({ code: 'KV_TOO_MANY_SIBLINGS' });
    const collapsed = await r.coordinateWrite(key('k'), write('merged', (await r.read(key('k'))).clock()));
    expect(collapsed.set.size).toBe(1);
    for (let i = 0; i < 4; i++) await r.coordinateWrite(key('k'), write(`again${i}`));
    const deleted = await r.coordinateWrite(key('k'), del((await r.read(key('k'))).clock()));
    expect(deleted.set.size).toBe(1);
    expect(deleted.set.hasOnlyTombstones).toBe(true);
    // Last-writer-wins writes supersede everything local, so they pass too.
    for (let i = 0; i < 4; i++) await r.coordinateWrite(key('k'), write(`more${i}`));
    const lww = await r.coordinateWrite(key('k'), { ...write('lww'), overwrite: true });
    expect(lww.set.size).toBe(1);
  });

  it('never refuses a merge, and a key merged past the bound is repaired by a write with its context', async () => {
    const r = await bounded({ maxSiblings: 4 });
    for (let i = 0; i < 4; i++) await r.coordinateWrite(key('k'), write(`local${i}`));
    // The other side of a partition accepted its own 4 writes.
    let remote = SiblingSet.empty<Uint8Array>();
    for (let i = 0; i < 4; i++) ({ set: remote } = remote.write('b~1', VectorClock.EMPTY, { value: value(`remote${i}`), timestamp: i }));
    await r.apply(key('k'), remote, encodeSiblingSet(remote));
    const merged = await r.read(key('k'));
    expect(merged.size).toBe(8);
    await expect(r.coordinateWrite(key('k'), write('blind'))).rejects.toMatchObject({ code: 'KV_TOO_MANY_SIBLINGS', siblings: 9 });
    // Superseding just one keeps 8: not more than now, so it passes.
    const v = merged.versions[0]!;
    expect((await r.coordinateWrite(key('k'), write('one', VectorClock.from([[v.dot.actor, v.dot.counter]])))).set.size).toBe(8);
    const repaired = await r.coordinateWrite(key('k'), write('resolved', (await r.read(key('k'))).clock()));
    expect(repaired.set.size).toBe(1);
  });

  it('calls onSiblings once per crossing of siblingWarning, after the write is stored', async () => {
    const events: SiblingsEvent[] = [];
    const storage = new MemoryStorage();
    const r = await bounded({ siblingWarning: 3, maxSiblings: 10, onSiblings: (e) => events.push(e) }, storage);
    for (let i = 0; i < 3; i++) await r.coordinateWrite(key('k'), write(`w${i}`));
    expect(events).toEqual([]);
    await r.coordinateWrite(key('k'), write('w3'));
    expect(events).toEqual([{ key: key('k'), siblings: 4, threshold: 3 }]);
    await r.coordinateWrite(key('k'), write('w4'));
    expect(events).toHaveLength(1); // still above: no new event
    await r.coordinateWrite(key('k'), write('merged', (await r.read(key('k'))).clock()));
    for (let i = 0; i < 3; i++) await r.coordinateWrite(key('k'), write(`again${i}`));
    expect(events).toHaveLength(2); // 1 -> 4: a new crossing
    expect(events[1]).toMatchObject({ siblings: 4, threshold: 3 });
    // Merges do not report (only coordinated writes do).
    let remote = SiblingSet.empty<Uint8Array>();
    for (let i = 0; i < 3; i++) ({ set: remote } = remote.write('b~1', VectorClock.EMPTY, { value: value(`r${i}`), timestamp: i }));
    let more = SiblingSet.empty<Uint8Array>();
    for (let i = 0; i < 2; i++) ({ set: more } = more.write('c~1', VectorClock.EMPTY, { value: value(`c${i}`), timestamp: i }));
    await r.apply(key('fresh'), remote, encodeSiblingSet(remote));
    await r.apply(key('fresh'), more, encodeSiblingSet(more));
    expect((await r.read(key('fresh'))).size).toBe(5);
    expect(events).toHaveLength(2);
  });

  it('a throwing onSiblings does not fail the stored write', async () => {
    let calls = 0;
    const r = await bounded({
      siblingWarning: 1,
      onSiblings: () => {
        calls++;
        throw new Error('observer bug');
      },
    });
    await r.coordinateWrite(key('k'), write('a'));
    const second = await r.coordinateWrite(key('k'), write('b'));
    expect(calls).toBe(1);
    expect(second.set.size).toBe(2);
    expect((await r.read(key('k'))).size).toBe(2);
  });

  it('validates maxSiblings, siblingWarning and onSiblings', async () => {
    const storage = new MemoryStorage();
    const make = (o: Record<string, unknown>) => () =>
      new ReplicaServer({ storage, actor: 'a~1', ring: () => ring, lease: metadataCounterLease(storage, 'test.counter'), ...(o as Partial<ReplicaServerOptions>) });
    expect(make({ maxSiblings: 0 })).toThrow(new RangeError('Expected `maxSiblings` to be a positive integer, got 0'));
    expect(make({ maxSiblings: 1.5 })).toThrow(RangeError);
    expect(make({ maxSiblings: '100' })).toThrow(new TypeError('Expected `maxSiblings` to be a positive integer, got string'));
    expect(make({ siblingWarning: -1 })).toThrow(new RangeError('Expected `siblingWarning` to be a positive integer, got -1'));
    expect(make({ siblingWarning: Number.NaN })).toThrow(RangeError);
    expect(make({ onSiblings: 'yes' })).toThrow(new TypeError('Expected `onSiblings` to be a function, got string'));
    expect(make({ maxSiblings: 1, siblingWarning: 1 })).not.toThrow();
  });
});

describe('ReplicaServer corrupt local records', () => {
  const corrupt = new Uint8Array([1, 0xc1, 0xff]); // right format byte, invalid msgpack

  it('a record from our own storage that does not decode is KV_STORAGE_FAILURE naming the key', async () => {
    const storage = new MemoryStorage();
    const r = await bounded({}, storage);
    await storage.put(key('user:1'), ring.token(key('user:1')), corrupt);
    const read = await r.read(key('user:1')).catch((e: unknown) => e);
    expect(read).toMatchObject({ code: 'KV_STORAGE_FAILURE' });
    expect((read as Error).message).toContain('"user:1"');
    expect((read as Error).cause).toMatchObject({ code: 'KV_INVALID_MESSAGE' });
    await expect(r.coordinateWrite(key('user:1'), write('x'))).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE' });
    const incoming = SiblingSet.empty<Uint8Array>().write('b~1', VectorClock.EMPTY, { value: value('b'), timestamp: 1 }).set;
    await expect(r.apply(key('user:1'), incoming, encodeSiblingSet(incoming))).rejects.toMatchObject({
      code: 'KV_STORAGE_FAILURE',
    });
    // Binary keys are named in hex.
    const binary = new Uint8Array([0xff, 0x00, 0x01]);
    await storage.put(binary, ring.token(binary), new Uint8Array([9]));
    await expect(r.read(binary)).rejects.toThrow(/key 0xff0001 is corrupt/);
  });

  it('a bad record that came off the wire is still KV_INVALID_MESSAGE', async () => {
    const storage = new MemoryStorage();
    const r = await bounded({}, storage);
    await r.coordinateWrite(key('k'), write('v'));
    await expect(r.handle({ type: 'kv.apply', key: key('k'), record: corrupt })).rejects.toMatchObject({
      code: 'KV_INVALID_MESSAGE',
    });
  });
});

describe('ReplicaServer: the synchronous read-merge-write and storages that answer later', () => {
  /** A MemoryStorage whose hooks answer after a macrotask, as a disk engine's do (getNow/putNow then return promises). */
  class SlowStorage extends MemoryStorage {
    protected override _get(k: Uint8Array): Uint8Array | undefined {
      return new Promise((resolve) => setImmediate(() => resolve(super._get(k)))) as unknown as Uint8Array | undefined;
    }
    protected override _put(k: Uint8Array, token: number, record: Uint8Array): void {
      return new Promise<void>((resolve) => setImmediate(() => resolve(super._put(k, token, record)))) as unknown as void;
    }
  }

  for (const [name, make] of [
    ['synchronous MemoryStorage', () => new MemoryStorage()],
    ['a storage whose hooks answer a macrotask later', () => new SlowStorage()],
  ] as const) {
    it(`loses nothing when many writes and merges of one key run at once (${name})`, async () => {
      const storage = make();
      const r = await server(storage);
      const k = key('hot');
      const foreign = Array.from({ length: 20 }, (_, i) =>
        SiblingSet.empty<Uint8Array>().write(`b${i}~1`, VectorClock.EMPTY, { value: value(`f${i}`), timestamp: 1 }).set,
      );
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < 50; i++) {
        pending.push(r.coordinateWrite(k, write(`own${i}`)));
        if (i < 20) pending.push(r.apply(k, foreign[i]!, encodeSiblingSet(foreign[i]!)));
        if (i % 10 === 0) pending.push(Promise.resolve(r.handle({ type: 'kv.apply', key: k, record: encodeSiblingSet(foreign[i % 20]!) })));
      }
      await Promise.all(pending);
      const set = await r.read(k);
      const values = set.values().map((v) => new TextDecoder().decode(v)).sort();
      expect(values).toHaveLength(70);
      expect(values.filter((v) => v.startsWith('own'))).toHaveLength(50);
      expect(values.filter((v) => v.startsWith('f'))).toHaveLength(20);
    });
  }

  it('a storage failure in the synchronous path is KV_STORAGE_FAILURE and releases the key', async () => {
    let fail = true;
    class Flaky extends MemoryStorage {
      protected override _put(k: Uint8Array, token: number, record: Uint8Array): void {
        if (fail) throw new Error('disk full');
        super._put(k, token, record);
      }
    }
    const r = await server(new Flaky());
    await expect(r.coordinateWrite(key('k'), write('a'))).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE' });
    const other = SiblingSet.empty<Uint8Array>().write('b~1', VectorClock.EMPTY, { value: value('b'), timestamp: 1 }).set;
    await expect(r.apply(key('k'), other, encodeSiblingSet(other))).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE' });
    fail = false;
    // The key's lock was let go: the next write goes through.
    await r.coordinateWrite(key('k'), write('c'));
    expect((await r.read(key('k'))).values().map((v) => new TextDecoder().decode(v))).toEqual(['c']);
  });
});

describe('ReplicaServer.coordinateWriteNow', () => {
  it('returns the version itself over a synchronous storage, a promise over one that answers later, the same version either way', async () => {
    const sync = await server(new MemoryStorage());
    // The first version extends the counter lease (a metadata write: asynchronous).
    expect(sync.coordinateWriteNow(key('first'), write('x'))).toBeInstanceOf(Promise);
    await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    const now = sync.coordinateWriteNow(key('k'), write('a'));
    expect(now).not.toBeInstanceOf(Promise);
    expect((now as { set: SiblingSet<Uint8Array> }).set.size).toBe(1);
    class Later extends MemoryStorage {
      protected override _get(k: Uint8Array): Uint8Array | undefined {
        return new Promise((resolve) => setImmediate(() => resolve(super._get(k)))) as unknown as Uint8Array | undefined;
      }
    }
    const slow = await server(new Later());
    const later = slow.coordinateWriteNow(key('k'), write('a'));
    expect(later).toBeInstanceOf(Promise);
    const v = await later;
    expect(v.set.values().map((x) => new TextDecoder().decode(x))).toEqual(['a']);
    // Refusals are thrown, not returned.
    expect(() => sync.coordinateWriteNow(key('k'), write('b'), Date.now() - 1)).toThrow(expect.objectContaining({ code: 'KV_TIMEOUT' }));
  });

  it('kv.version is answered in the same turn over a synchronous storage, later over a slow one; refusals still reject', async () => {
    const sync = await server(new MemoryStorage());
    await sync.coordinateWrite(key('warm'), write('lease')); // the first version extends the counter lease
    const message = (k: string, expires?: number) => ({
      type: 'kv.version',
      key: key(k),
      value: new TextEncoder().encode('v'),
      tombstone: false,
      overwrite: false,
      context: null,
      timestamp: null,
      expires: expires ?? null,
    });
    const answer = sync.handle(message('k'));
    expect(answer).not.toBeInstanceOf(Promise);
    expect(answer).toMatchObject({ type: 'kv.versioned' });
    expect(decodeSiblingSet((answer as unknown as { record: Uint8Array }).record).size).toBe(1);
    const late = sync.handle(message('k', Date.now() - 1));
    expect(late).toBeInstanceOf(Promise);
    await expect(late).rejects.toMatchObject({ code: 'KV_TIMEOUT' });
    class Later extends MemoryStorage {
      protected override _get(k: Uint8Array): Uint8Array | undefined {
        return new Promise((resolve) => setImmediate(() => resolve(super._get(k)))) as unknown as Uint8Array | undefined;
      }
    }
    const slow = await server(new Later());
    await slow.coordinateWrite(key('warm'), write('lease'));
    const pending = slow.handle(message('k'));
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toMatchObject({ type: 'kv.versioned' });
  });
});

describe("ReplicaServer: the caller's clock reading", () => {
  /** A MemoryStorage whose puts wait while `hold` is set. */
  class HeldStorage extends MemoryStorage {
    hold = false;
    readonly held: (() => void)[] = [];
    override put(k: Uint8Array, token: number, record: Uint8Array): Promise<void> {
      if (!this.hold) return super.put(k, token, record);
      return new Promise<void>((resolve, reject) => this.held.push(() => super.put(k, token, record).then(resolve, reject)));
    }
  }
  const blind = (v: string) => ({ value: value(v), tombstone: false, context: VectorClock.EMPTY, overwrite: false });

  it('stamps a version created within the call with the reading; one created after the key lock was waited for reads the clock again', async () => {
    const clock = new ManualClock(1_000);
    const storage = new HeldStorage();
    await storage.open();
    const r = new ReplicaServer({ storage, actor: 'a~1', ring: () => ring, lease: metadataCounterLease(storage, 'test.counter'), clock });
    await r.open();
    const now = (await r.coordinateWriteNow(key('k'), blind('first'), undefined, 900)) as CoordinatedVersion;
    expect(now.set.versions[0]!.timestamp).toBe(900);
    storage.hold = true;
    const holding = r.coordinateWriteNow(key('k'), blind('holds the lock'), undefined, 1_000);
    const waiting = r.coordinateWriteNow(key('k'), blind('waits'), undefined, 1_000);
    const expiring = r.coordinateWriteNow(key('k'), blind('expires while waiting'), 1_200, 1_000);
    expect(holding).toBeInstanceOf(Promise);
    clock.advance(500);
    storage.hold = false;
    for (const release of storage.held.splice(0)) release();
    const stamps = (v: CoordinatedVersion) => v.set.versions.map((x) => x.timestamp).sort((a, b) => a - b);
    expect(stamps(await holding)).toEqual([900, 1_000]);
    expect(stamps(await waiting)).toEqual([900, 1_000, 1_500]);
    await expect(expiring).rejects.toMatchObject({ code: 'KV_TIMEOUT' });
  });
});

describe('ReplicaServer: a record off the wire that is the merge itself', () => {
  const apply = (r: ReplicaServer, k: string, record: Uint8Array) => r.handle({ type: 'kv.apply', key: key(k), record });

  it('stores a superseding record byte for byte, writes nothing for a dominated one, merges a concurrent one', async () => {
    const storage = new MemoryStorage();
    const r = await server(storage);
    const held = await r.coordinateWrite(key('k'), write('mine'));
    // A coordinator's new record: what this replica holds plus a version whose context covers it.
    const next = held.set.write('b~1', held.set.clock(), { value: value('theirs'), timestamp: 2 }).set;
    const sent = encodeSiblingSet(next);
    const puts = vi.spyOn(storage, 'putNow');
    await apply(r, 'k', sent);
    expect(puts).toHaveBeenCalledTimes(1);
    expect(await r.readEncoded(key('k'))).toEqual(sent);
    // The replica's older record again (a late or repeated message): nothing to store.
    await apply(r, 'k', held.encoded);
    expect(puts).toHaveBeenCalledTimes(1);
    expect(await r.readEncoded(key('k'))).toEqual(sent);
    // A concurrent version: neither record is the merge, so the full merge stores both.
    const concurrent = SiblingSet.empty<Uint8Array>().write('c~1', VectorClock.EMPTY, { value: value('c'), timestamp: 3 }).set;
    await apply(r, 'k', encodeSiblingSet(concurrent));
    expect(puts).toHaveBeenCalledTimes(2);
    const merged = await r.read(key('k'));
    expect(merged.values().map((v) => new TextDecoder().decode(v)).sort()).toEqual(['c', 'theirs']);
  });

  it('a malformed sent record is refused as before, the held one untouched', async () => {
    const storage = new MemoryStorage();
    const r = await server(storage);
    const held = await r.coordinateWrite(key('k'), write('mine'));
    const next = encodeSiblingSet(held.set.write('b~1', held.set.clock(), { value: value('theirs'), timestamp: 2 }).set);
    for (const bad of [next.subarray(0, next.length - 3), Uint8Array.of(...next, 0xc0), Uint8Array.of(1, 0x91, 0x95, 0xa1, 0x61, 0, 1, 0x90, 0xc0)]) {
      await expect(apply(r, 'k', bad)).rejects.toMatchObject({ code: 'KV_INVALID_MESSAGE' });
    }
    expect(await r.readEncoded(key('k'))).toEqual(held.encoded);
  });
});

describe('ReplicaServer: kv.apply-batch', () => {
  /** A MemoryStorage whose hooks answer after a macrotask; `failOn` keys fail to store. */
  class LaterStorage extends MemoryStorage {
    failOn = new Set<string>();
    protected override _get(k: Uint8Array): Uint8Array | undefined {
      return new Promise((resolve) => setImmediate(() => resolve(super._get(k)))) as unknown as Uint8Array | undefined;
    }
    protected override _put(k: Uint8Array, token: number, record: Uint8Array): void {
      return new Promise<void>((resolve, reject) =>
        setImmediate(() => (this.failOn.has(new TextDecoder().decode(k)) ? reject(new Error('disk full')) : resolve(super._put(k, token, record)))),
      ) as unknown as void;
    }
  }
  const blind = (actor: string, v: string) => SiblingSet.empty<Uint8Array>().write(actor, VectorClock.EMPTY, { value: value(v), timestamp: 1 }).set;
  const batch = (items: [string, Uint8Array][]) => ({
    type: 'kv.apply-batch',
    cluster: 'c',
    keys: items.map(([k]) => key(k)),
    records: items.map(([, r]) => r),
  });
  const valuesOf = async (r: ReplicaServer, k: string) => (await r.read(key(k))).values().map((v) => new TextDecoder().decode(v)).sort();

  it('applies every item, in order, and answers in the same turn over a synchronous storage', async () => {
    const r = await server(new MemoryStorage());
    const items: [string, Uint8Array][] = Array.from({ length: 20 }, (_, i) => [`k${i % 10}`, encodeSiblingSet(blind(`b${i}~1`, `v${i}`))]);
    const answer = r.handle(batch(items));
    expect(answer).toEqual({ type: 'kv.applied-batch', failures: [] });
    // Two items of one key merge one after the other: both concurrent versions are kept.
    for (let i = 0; i < 10; i++) expect(await valuesOf(r, `k${i}`)).toEqual([`v${i}`, `v${i + 10}`].sort());
  });

  it('an item that cannot be applied is reported by index with its code; the others are applied', async () => {
    const r = await server(new MemoryStorage());
    const good = (i: number) => encodeSiblingSet(blind(`b${i}~1`, `v${i}`));
    const message = {
      type: 'kv.apply-batch',
      cluster: 'c',
      keys: [key('a'), new Uint8Array(0), key('c'), 'not bytes', key('e')],
      records: [good(0), good(1), Uint8Array.of(1, 0x92, 0xff), good(3), good(4)],
    };
    const answer = (await r.handle(message as unknown as WireMessage)) as unknown as { failures: [number, string, string][] };
    expect(answer.failures.map(([i, code]) => [i, code])).toEqual([
      [1, 'KV_INVALID_MESSAGE'],
      [2, 'KV_INVALID_MESSAGE'],
      [3, 'KV_INVALID_MESSAGE'],
    ]);
    expect(answer.failures[0]![2]).toContain('key');
    expect(await valuesOf(r, 'a')).toEqual(['v0']);
    expect(await valuesOf(r, 'e')).toEqual(['v4']);
    expect(await r.readEncoded(key('c'))).toBeUndefined();
  });

  it('over a storage that answers later: the answer is a promise, a failed store is KV_STORAGE_FAILURE for its item only', async () => {
    const storage = new LaterStorage();
    storage.failOn.add('k1');
    const r = await server(storage);
    const items: [string, Uint8Array][] = [0, 1, 2].map((i) => [`k${i}`, encodeSiblingSet(blind(`b${i}~1`, `v${i}`))]);
    const answer = r.handle(batch(items));
    expect(answer).toBeInstanceOf(Promise);
    const { failures } = (await answer) as unknown as { failures: [number, string, string][] };
    expect(failures.map(([i, code]) => [i, code])).toEqual([[1, 'KV_STORAGE_FAILURE']]);
    expect(await valuesOf(r, 'k0')).toEqual(['v0']);
    expect(await valuesOf(r, 'k2')).toEqual(['v2']);
    storage.failOn.clear();
    expect(await r.readEncoded(key('k1'))).toBeUndefined();
  });

  it('a malformed batch is refused whole with KV_INVALID_MESSAGE and applies nothing', async () => {
    const r = await server(new MemoryStorage());
    const rec = encodeSiblingSet(blind('b~1', 'v'));
    const many = Array.from({ length: 1025 }, (_, i) => key(`k${i}`));
    for (const body of [
      { keys: key('a'), records: [rec] },
      { keys: [key('a')], records: rec },
      { keys: [key('a'), key('b')], records: [rec] },
      { keys: [], records: [] },
      { keys: many, records: many.map(() => rec) },
      { records: [rec] },
    ]) {
      await expect(Promise.resolve(r.handle({ type: 'kv.apply-batch', cluster: 'c', ...body } as unknown as WireMessage))).rejects.toMatchObject({
        code: 'KV_INVALID_MESSAGE',
      });
    }
    for (const k of ['a', 'b', 'k0', 'k1024']) expect(await r.readEncoded(key(k))).toBeUndefined();
  });
});

describe('ReplicaServer: kv.read-batch', () => {
  const blind = (v: string) => SiblingSet.empty<Uint8Array>().write('b~1', VectorClock.EMPTY, { value: value(v), timestamp: 1 }).set;

  it('reads every key in order (null when absent) and answers in the same turn over a synchronous storage', async () => {
    const r = await server(new MemoryStorage());
    await r.apply(key('a'), blind('A'), encodeSiblingSet(blind('A')));
    await r.apply(key('c'), blind('C'), encodeSiblingSet(blind('C')));
    const answer = r.handle({ type: 'kv.read-batch', cluster: 'c', keys: [key('a'), key('b'), key('c')] }) as WireMessage;
    expect(answer.type).toBe('kv.records');
    expect(answer['failures']).toEqual([]);
    const records = answer['records'] as (Uint8Array | null)[];
    expect(records[1]).toBeNull();
    expect(decodeSiblingSet(records[0]!).values().map((v) => new TextDecoder().decode(v))).toEqual(['A']);
    expect(decodeSiblingSet(records[2]!).values().map((v) => new TextDecoder().decode(v))).toEqual(['C']);
  });

  it('a key that is not one, or whose read fails, is listed in failures (record null); the others are read', async () => {
    let failing = false;
    class Flaky extends MemoryStorage {
      protected override _get(k: Uint8Array): Uint8Array | undefined {
        if (failing && new TextDecoder().decode(k) === 'x') throw new Error('disk on fire');
        return super._get(k);
      }
    }
    const r = await server(new Flaky());
    await r.apply(key('a'), blind('A'), encodeSiblingSet(blind('A')));
    failing = true;
    const answer = (await r.handle({ type: 'kv.read-batch', cluster: 'c', keys: [key('x'), 'no', key('a')] } as unknown as WireMessage)) as WireMessage;
    expect((answer['failures'] as [number, string, string][]).map(([i, code]) => [i, code])).toEqual([
      [0, 'KV_STORAGE_FAILURE'],
      [1, 'KV_INVALID_MESSAGE'],
    ]);
    const records = answer['records'] as (Uint8Array | null)[];
    expect(records.slice(0, 2)).toEqual([null, null]);
    expect(records[2]).toBeInstanceOf(Uint8Array);
  });

  it('a malformed batch is refused whole with KV_INVALID_MESSAGE', async () => {
    const r = await server(new MemoryStorage());
    for (const keys of [key('a'), [], Array.from({ length: 1025 }, (_, i) => key(`k${i}`)), undefined]) {
      await expect(Promise.resolve(r.handle({ type: 'kv.read-batch', cluster: 'c', keys } as unknown as WireMessage))).rejects.toMatchObject({
        code: 'KV_INVALID_MESSAGE',
      });
    }
  });
});

