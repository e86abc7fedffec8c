import { afterEach, describe, expect, it } from 'vitest';
import {
  MemoryNetwork,
  MemoryStorage,
  QuorumCoordinator,
  QuorumNotMetError,
  Ring,
  VectorClock,
  keyRef,
  systemClock,
  type KeyRef,
  type WireMessage,
} from 'quorumkv';
import {
  ReplicaServer,
  SiblingSet,
  decodeClock,
  encodeClock,
  encodeSiblingSet,
  metadataCounterLease,
  type CounterLease,
  type MemoryTransport,
} from 'quorumkv/internals';
import type { StorageCallOptions } from '../../../src/storage/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string | undefined => (b ? new TextDecoder().decode(b) : undefined);

/** A MemoryStorage that records the tokens it is given and can fail like a broken disk. */
class SpyStorage extends MemoryStorage {
  readonly tokens: number[] = [];
  failGets = false;
  failPuts = false;

  override get(key: Uint8Array, options?: StorageCallOptions): Promise<Uint8Array | undefined> {
    if (this.failGets) return Promise.reject(new Error('disk on fire'));
    return super.get(key, options);
  }

  override put(key: Uint8Array, token: number, record: Uint8Array, options?: StorageCallOptions): Promise<void> {
    if (this.failPuts) throw new Error('disk full'); // synchronously, as a careless adapter might
    this.tokens.push(token);
    return super.put(key, token, record, options);
  }
}

const write = (v: string, context = VectorClock.EMPTY) => ({ value: enc(v), tombstone: false, context, overwrite: false, timestamp: 7 });

async function replicaOn(storage: MemoryStorage, ring: Ring, lease?: CounterLease): Promise<ReplicaServer> {
  await storage.open();
  const r = new ReplicaServer({ storage, actor: 'a~1', ring: () => ring, lease: lease ?? metadataCounterLease(storage, 'test.counter') });
  await r.open();
  return r;
}

describe('KeyRef: a key and its token, computed once', () => {
  const ring = Ring.from([{ id: 'a' }]);

  it('keyRef validates like keyBytes and carries hashKey(bytes)', () => {
    const ref = keyRef('user:1');
    expect(text(ref.bytes)).toBe('user:1');
    expect(ref.token).toBe(ring.token('user:1'));
    expect(keyRef(enc('user:1')).token).toBe(ref.token);
    expect(() => keyRef('')).toThrow(expect.objectContaining({ code: 'KV_INVALID_KEY' }));
    expect(() => keyRef('x'.repeat(11), 10)).toThrow(expect.objectContaining({ code: 'KV_INVALID_KEY' }));
  });

  it('the replica stores under the token the call carries instead of hashing the key again', async () => {
    const storage = new SpyStorage();
    const r = await replicaOn(storage, ring);
    const ref: KeyRef = { bytes: enc('k'), token: 42 };
    await r.coordinateWrite(ref, write('v'));
    const other = SiblingSet.empty<Uint8Array>().write('b~1', VectorClock.EMPTY, { value: enc('w'), timestamp: 1 }).set;
    await r.apply(ref, other, encodeSiblingSet(other));
    expect(storage.tokens).toEqual([42, 42]);
    // Raw bytes still work: their token is computed.
    await r.coordinateWrite(enc('raw'), write('v'));
    expect(storage.tokens[2]).toBe(ring.token('raw'));
  });

  it('a replica hashes a key that came off the wire itself and ignores any token sent along', async () => {
    const storage = new SpyStorage();
    const r = await replicaOn(storage, ring);
    const set = SiblingSet.empty<Uint8Array>().write('b~1', VectorClock.EMPTY, { value: enc('w'), timestamp: 1 }).set;
    await r.handle({ type: 'kv.apply', key: enc('k'), record: encodeSiblingSet(set), token: 42 });
    expect(storage.tokens).toEqual([ring.token('k')]);
  });
});

/** Nodes wired by hand, with every request recorded. */
async function cluster(ids: readonly string[], options: { send?: boolean } = {}) {
  const net = new MemoryNetwork();
  const ring = Ring.from(ids.map((id) => ({ id })));
  const sent: WireMessage[] = [];
  const nodes = new Map<string, { coordinator: QuorumCoordinator; replica: ReplicaServer; storage: MemoryStorage; transport: MemoryTransport }>();
  for (const id of ids) {
    const storage = new MemoryStorage();
    await storage.open();
    const replica = new ReplicaServer({ storage, actor: `${id}~1`, ring: () => ring, lease: metadataCounterLease(storage, 'test.counter') });
    await replica.open();
    const transport = net.transport(id);
    const request = transport.request.bind(transport);
    transport.request = (to, message, options) => {
      sent.push(message);
      return request(to, message, options);
    };
    // Quorum requests and forwards go through send (a receiver, no promise): recorded too.
    const send = transport.send.bind(transport);
    transport.send = (to, message, options, receiver, tag) => {
      sent.push(message);
      send(to, message, options, receiver, tag);
    };
    // A transport without the optional send: the coordinator makes a request per target.
    if (options.send === false) Object.defineProperty(transport, 'send', { value: undefined });
    const coordinator = new QuorumCoordinator({ self: id, cluster: 'x', n: 3, transport, replica, ring: () => ring, clock: systemClock });
    await transport.start((m) => (m.type === 'kv.coordinate' ? coordinator.handle(m) : replica.handle(m)));
    nodes.set(id, { coordinator, replica, storage, transport });
  }
  return {
    ring,
    sent,
    get: (id: string) => nodes.get(id)!,
    async stop() {
      for (const n of nodes.values()) {
        await n.transport.stop();
        await n.coordinator.stop();
      }
    },
  };
}

let c: Awaited<ReturnType<typeof cluster>> | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

const soon = (ms = 1_000) => ({ deadline: Date.now() + ms });
const coordinated = (v: string, context = VectorClock.EMPTY, w = 2) => ({ value: enc(v), tombstone: false, context, overwrite: false, w });

describe('QuorumCoordinator seams', () => {
  it('routes by the token of the KeyRef it is given', async () => {
    c = await cluster(['a', 'b', 'c', 'd', 'e']);
    // A key whose own token belongs to one replica set, with the token of another key.
    const owner = (k: string) => c!.ring.preferenceList(k, 3).map((n) => n.id).sort().join();
    let other = 1;
    while (owner(`k${other}`) === owner('k0')) other++;
    const ref: KeyRef = { bytes: enc('k0'), token: c.ring.token(`k${other}`) };
    const [first] = c.ring.preferenceListForToken(ref.token, 3);
    await c.get(first!.id).coordinator.write(ref, coordinated('v', VectorClock.EMPTY, 3), soon());
    const holders: string[] = [];
    for (const id of ['a', 'b', 'c', 'd', 'e']) if ((await c.get(id).replica.read(enc('k0'))).size > 0) holders.push(id);
    expect(holders.sort().join()).toBe(owner(`k${other}`));
  });

  it('a forwarded write carries its context in the record codec form, and a string context is refused', async () => {
    c = await cluster(['a', 'b', 'c', 'd']);
    const key = enc('fwd');
    const outsider = ['a', 'b', 'c', 'd'].find((id) => !c!.ring.preferenceList(key, 3).some((n) => n.id === id))!;
    const coordinator = c.get(outsider).coordinator;
    await coordinator.write(key, coordinated('v1'), soon());
    const read = await coordinator.read(key, 2, soon());
    await coordinator.write(key, coordinated('v2', read.clock()), soon());
    const forwards = c.sent.filter((m) => m.type === 'kv.version');
    expect(forwards).toHaveLength(2);
    expect(forwards[0]!['context']).toBeNull();
    const context = forwards[1]!['context'];
    expect(context).toBeInstanceOf(Uint8Array);
    expect(decodeClock(context as Uint8Array).equals(read.clock())).toBe(true);
    expect((await coordinator.read(key, 3, soon())).values().map(text)).toEqual(['v2']);
    // The user-facing string form is not a wire form.
    const replica = c.ring.preferenceList(key, 3)[0]!.id;
    const bad = { type: 'kv.coordinate', cluster: 'x', key, value: enc('x'), tombstone: false, overwrite: false, w: 2, timeout: 500 };
    await expect(c.get(replica).coordinator.handle({ ...bad, context: read.clock().encode() })).rejects.toMatchObject({
      code: 'KV_INVALID_MESSAGE',
    });
    await expect(c.get(replica).coordinator.handle({ ...bad, context: new Uint8Array([0xc1]) })).rejects.toMatchObject({
      code: 'KV_INVALID_MESSAGE',
    });
    expect(encodeClock(read.clock())).toEqual(context);
  });

  for (const send of [true, false]) {
    it(`a forwarded write fails over to the next primary and reports every failure when the quorum is lost (${send ? 'send' : 'request per target'})`, async () => {
      c = await cluster(['a', 'b', 'c', 'd'], { send });
      const key = enc('fwd-failover');
      const primaries = c.ring.preferenceList(key, 3).map((n) => n.id);
      const outsider = ['a', 'b', 'c', 'd'].find((id) => !primaries.includes(id))!;
      const coordinator = c.get(outsider).coordinator;
      await coordinator.write(key, coordinated('v1'), soon());
      expect((await coordinator.read(key, 3, soon())).values().map(text)).toEqual(['v1']);
      // The first primary is gone: the second creates the version, the third takes a copy (W = 2).
      await c.get(primaries[0]!).transport.stop();
      const read = await coordinator.read(key, 2, soon());
      await coordinator.write(key, coordinated('v2', read.clock()), soon());
      expect((await coordinator.read(key, 2, soon())).values().map(text)).toEqual(['v2']);
      // Two gone: the third creates it, nobody else stores it; the first two failures are reported too.
      await c.get(primaries[1]!).transport.stop();
      const err = await coordinator.write(key, coordinated('v3'), soon()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QuorumNotMetError);
      expect(err).toMatchObject({ required: 2, acknowledged: 1 });
      const failed = (err as QuorumNotMetError).failures.map((f) => f.node).sort();
      expect(failed).toEqual([primaries[0]!, primaries[0]!, primaries[1]!, primaries[1]!].sort());
    });
  }

  it('a forwarded write whose deadline already passed reports the target it had no time for', async () => {
    c = await cluster(['a', 'b', 'c', 'd']);
    const key = enc('late');
    const outsider = ['a', 'b', 'c', 'd'].find((id) => !c!.ring.preferenceList(key, 3).some((n) => n.id === id))!;
    const err = await c
      .get(outsider)
      .coordinator.write(key, coordinated('v'), { deadline: Date.now() - 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuorumNotMetError);
    expect(err).toMatchObject({
      required: 2,
      acknowledged: 0,
      failures: [{ node: c.ring.preferenceList(key, 3)[0]!.id, code: 'KV_TIMEOUT' }],
    });
  });

  it('a replica answering a corrupt record is that replica failing, not the whole read', async () => {
    c = await cluster(['a', 'b', 'c']);
    const key = enc('k');
    await c.get('a').coordinator.write(key, coordinated('good', VectorClock.EMPTY, 3), soon());
    const corrupt = new Uint8Array([1, 0xc1, 0xff]);
    await c.get('c').storage.put(key, c.ring.token(key), corrupt);
    // Remote corruption: c fails with KV_INVALID_MESSAGE; a and b make R=2.
    expect((await c.get('a').coordinator.read(key, 2, soon())).values().map(text)).toEqual(['good']);
    const remote = await c.get('a').coordinator.read(key, 3, soon()).catch((e: unknown) => e);
    expect(remote).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 3, acknowledged: 2, failures: [{ node: 'c', code: 'KV_INVALID_MESSAGE' }] });
    // Local corruption: the coordinator's own record is a storage failure of its own node.
    const local = await c.get('c').coordinator.read(key, 3, soon()).catch((e: unknown) => e);
    // (It fails first, so R=3 is known to be out of reach before the others answer.)
    expect(local).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 3, failures: [{ node: 'c', code: 'KV_STORAGE_FAILURE' }] });
    expect((await c.get('c').coordinator.read(key, 2, soon())).values().map(text)).toEqual(['good']);
  });
});

describe('ReplicaServer seams', () => {
  const ring = Ring.from([{ id: 'a' }]);

  it('leases counters through the injected lease, never above what it made durable', async () => {
    const extended: number[] = [];
    const storage = new SpyStorage();
    const lease: CounterLease = {
      load: async () => 500,
      extend: async (to) => {
        // Extended before the version that needs it is stored.
        expect(storage.tokens).toHaveLength(0);
        extended.push(to);
      },
    };
    const r = await replicaOn(storage, ring, lease);
    const { set } = await r.coordinateWrite(enc('k'), write('v'));
    const counter = set.versions[0]!.dot.counter;
    expect(counter).toBe(501);
    expect(extended).toHaveLength(1);
    expect(extended[0]).toBeGreaterThanOrEqual(counter);
    expect(await storage.getMeta('quorumkv.counter')).toBeUndefined();
  });

  it('a lease that fails is KV_STORAGE_FAILURE and nothing is stored', async () => {
    const storage = new SpyStorage();
    await storage.open();
    const broken = new ReplicaServer({
      storage,
      actor: 'a~1',
      ring: () => ring,
      lease: { load: () => Promise.reject(new Error('no meta')), extend: () => Promise.resolve() },
    });
    await expect(broken.open()).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE', message: 'no meta' });
    const r = new ReplicaServer({
      storage,
      actor: 'a~1',
      ring: () => ring,
      lease: { load: () => Promise.resolve(0), extend: () => Promise.reject(new Error('meta full')) },
    });
    await r.open();
    await expect(r.coordinateWrite(enc('k'), write('v'))).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE' });
    expect(storage.tokens).toEqual([]);
    expect(() => new ReplicaServer({ storage, actor: 'a~1', ring: () => ring } as never)).toThrow(
      new TypeError('Expected `lease` to be an object with load() and extend(to) methods, got undefined'),
    );
  });

  it("a storage adapter's own failures are KV_STORAGE_FAILURE, its KvErrors pass unchanged", async () => {
    const storage = new SpyStorage();
    const r = await replicaOn(storage, ring);
    storage.failGets = true;
    const read = await r.read(enc('k')).catch((e: unknown) => e);
    expect(read).toMatchObject({ code: 'KV_STORAGE_FAILURE', message: 'disk on fire' });
    expect((read as Error).cause).toBeInstanceOf(Error);
    await expect(r.readEncoded(enc('k'))).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE' });
    await expect(r.handle({ type: 'kv.read', key: enc('k') })).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE' });
    await expect(r.coordinateWrite(enc('k'), write('v'))).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE' });
    storage.failGets = false;
    storage.failPuts = true;
    await expect(r.coordinateWrite(enc('k'), write('v'))).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE', message: 'disk full' });
    const set = SiblingSet.empty<Uint8Array>().write('b~1', VectorClock.EMPTY, { value: enc('w'), timestamp: 1 }).set;
    await expect(r.apply(enc('k'), set, encodeSiblingSet(set))).rejects.toMatchObject({ code: 'KV_STORAGE_FAILURE' });
    storage.failPuts = false;
    await storage.close();
    await expect(r.read(enc('k'))).rejects.toMatchObject({ code: 'KV_NOT_STARTED' });
  });

  it('stamps versions with its clock unless the write brings a timestamp', async () => {
    const storage = new MemoryStorage();
    await storage.open();
    const r = new ReplicaServer({
      storage,
      actor: 'a~1',
      ring: () => ring,
      lease: metadataCounterLease(storage, 'test.counter'),
      clock: { now: () => 1234, setTimeout: systemClock.setTimeout, clearTimeout: systemClock.clearTimeout },
    });
    await r.open();
    const { timestamp: _, ...unstamped } = write('a');
    expect((await r.coordinateWrite(enc('x'), unstamped)).set.versions[0]!.timestamp).toBe(1234);
    expect((await r.coordinateWrite(enc('y'), write('b'))).set.versions[0]!.timestamp).toBe(7);
  });
});
