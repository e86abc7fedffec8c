import { afterEach, describe, expect, it } from 'vitest';
import {
  AntiEntropyResponder,
  GC_BATCH_KEYS,
  MerkleExchange,
  MerkleTree,
  RECORD_BATCH_COUNT,
  buildTree,
  collectTombstones,
  emptyCounters,
  isExpiredTombstone,
  mergeRecords,
  replicatedRanges,
  runExchange,
  type AntiEntropyReplica,
  type SessionContext,
} from '../../../src/antientropy/index.js';
import { KvError } from '../../../src/errors/index.js';
import { Ring } from '../../../src/ring/index.js';
import { tokenInRange, type StoredEntry, type TokenRangeQuery } from '../../../src/storage/index.js';
import { ManualClock } from '../../../src/testing/manual-clock.js';
import { MemoryNetwork, type MemoryTransport, type WireMessage } from '../../../src/transport/index.js';
import { SiblingSet, VectorClock, decodeSiblingSet, encodeSiblingSet } from '../../../src/versioning/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const GRACE = 1_000;

function value(actor: string, v: string, timestamp = 1): Uint8Array {
  return encodeSiblingSet(SiblingSet.empty<Uint8Array>().write(actor, VectorClock.EMPTY, { value: enc.encode(v), timestamp }).set);
}

function tombstoneOver(record: Uint8Array, actor: string, timestamp: number): Uint8Array {
  const set = decodeSiblingSet(record);
  return encodeSiblingSet(set.write(actor, set.clock(), { tombstone: true, timestamp }).set);
}

/** A replica over a Map, merging with real sibling sets (what the ReplicaServer does). */
class MapReplica implements AntiEntropyReplica {
  readonly rows = new Map<string, StoredEntry>();
  merges = 0;
  constructor(readonly ring: () => Ring) {}
  set(key: string, record: Uint8Array): void {
    const k = enc.encode(key);
    this.rows.set(key, { key: k, token: this.ring().token(k), record });
  }
  get(key: string): Uint8Array | undefined {
    return this.rows.get(key)?.record;
  }
  async *scan(range: TokenRangeQuery): AsyncIterable<StoredEntry> {
    const rows = [...this.rows.values()].filter((e) => tokenInRange(e.token, range)).sort((a, b) => a.token - b.token);
    for (const r of rows) yield r;
  }
  async read(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.get(dec.decode(key));
  }
  async merge(key: Uint8Array, record: Uint8Array): Promise<void> {
    this.merges++;
    const name = dec.decode(key);
    const local = this.get(name);
    const merged = local === undefined ? record : encodeSiblingSet(decodeSiblingSet(local).merge(decodeSiblingSet(record)));
    this.set(name, merged);
  }
  async purgeTombstone(key: Uint8Array, matches: (record: Uint8Array) => boolean): Promise<boolean> {
    const name = dec.decode(key);
    const r = this.get(name);
    if (r === undefined || !matches(r) || !decodeSiblingSet(r).hasOnlyTombstones) return false;
    this.rows.delete(name);
    return true;
  }
}

interface TestNode {
  readonly id: string;
  readonly replica: MapReplica;
  readonly responder: AntiEntropyResponder;
  readonly transport: MemoryTransport;
  readonly ctx: SessionContext;
  received: string[];
}

const transports: MemoryTransport[] = [];
afterEach(async () => {
  for (const t of transports.splice(0)) await t.stop();
});

/** Nodes on one MemoryNetwork (with its codec), each with a responder; N = every node. */
async function nodes(ids: readonly string[], clock = new ManualClock(10 * GRACE)): Promise<TestNode[]> {
  const net = new MemoryNetwork({ codec: true });
  const ring = Ring.from(ids.map((id, i) => ({ id, tokens: [i * 1000 + 7, 2 ** 31 + i * 1000] })));
  const out: TestNode[] = [];
  for (const id of ids) {
    const replica = new MapReplica(() => ring);
    const responder = new AntiEntropyResponder({
      self: id,
      n: ids.length,
      replica,
      ring: () => ring,
      clock,
      sessionTimeout: 5_000,
      tombstoneGrace: GRACE,
      maxRecordBytes: 1 << 20,
    });
    const transport = net.transport(id);
    transports.push(transport);
    const node: TestNode = {
      id,
      replica,
      responder,
      transport,
      received: [],
      ctx: { self: id, address: id, cluster: 'c', n: ids.length, transport, replica, ring: () => ring, timeout: 5_000, maxRecordBytes: 1 << 20 },
    };
    await transport.start((m, from) => {
      node.received.push(m.type);
      return responder.handle(m, from);
    });
    out.push(node);
  }
  return out;
}

const WHOLE = { start: 0, end: 0 };
const sortedKeys = (r: MapReplica): string[] => [...r.rows.keys()].sort();

async function exchange(a: TestNode, b: TestNode, session = 's1') {
  const { tree } = await buildTree(a.replica, WHOLE, {});
  const counters = emptyCounters();
  await runExchange(a.ctx, b.id, tree, session, counters);
  return counters;
}

async function rejection(p: Promise<unknown>): Promise<KvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvError);
  return err as KvError;
}

describe('replicatedRanges', () => {
  it('is the whole ring, once, when every node holds everything', () => {
    const ring = Ring.from([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const ranges = replicatedRanges(ring, 'a', 3);
    expect(ranges).toHaveLength(1);
    expect(ranges[0]!.start).toBe(ranges[0]!.end);
    expect(ranges[0]!.replicas.map((r) => r.id).sort()).toEqual(['a', 'b', 'c']);
  });

  it('covers exactly the tokens whose preference list names the node, with that list', () => {
    const ring = Ring.from(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, tokens: undefined })));
    for (const self of ['a', 'c']) {
      const ranges = replicatedRanges(ring, self, 3);
      // Adjacent ranges with the same replicas are merged: fewer ranges than vnode ranges held.
      const held = ring.ranges().filter((r) => ring.preferenceListForToken(r.end, 3).some((p) => p.id === self));
      expect(ranges.length).toBeLessThan(held.length);
      for (let i = 0; i < 2_000; i++) {
        const token = (Math.imul(i, 2654435761) >>> 0) % 2 ** 32;
        const list = ring.preferenceListForToken(token, 3).map((p) => p.id);
        const inRanges = ranges.filter((r) => tokenInRange(token, r));
        expect(inRanges.length).toBe(list.includes(self) ? 1 : 0);
        if (inRanges.length === 1) expect(inRanges[0]!.replicas.map((p) => p.id).sort()).toEqual([...list].sort());
      }
    }
  });

  it('is empty for a node not on the ring; rejects a bad n', () => {
    const ring = Ring.from([{ id: 'a' }]);
    expect(replicatedRanges(ring, 'zz', 1)).toEqual([]);
    expect(() => replicatedRanges(ring, 'a', 0)).toThrow(RangeError);
  });
});

describe('runExchange + AntiEntropyResponder', () => {
  it('sends exactly the differing records both ways and merges (siblings kept); the session ends', async () => {
    const [a, b] = await nodes(['a', 'b']);
    for (let i = 0; i < 200; i++) {
      a!.replica.set(`same-${i}`, value('w', `v${i}`));
      b!.replica.set(`same-${i}`, value('w', `v${i}`));
    }
    a!.replica.set('only-a', value('x', '1'));
    b!.replica.set('only-b', value('y', '2'));
    a!.replica.set('both', value('x', 'A'));
    b!.replica.set('both', value('y', 'B'));

    const c = await exchange(a!, b!);
    expect(c).toMatchObject({ keysSent: 2, keysReceived: 2, keysIgnored: 0 });
    expect(c.bytesSent).toBeGreaterThan(0);
    expect(sortedKeys(a!.replica)).toEqual(sortedKeys(b!.replica));
    expect(a!.replica.get('both')).toEqual(b!.replica.get('both'));
    expect(decodeSiblingSet(a!.replica.get('both')!).size).toBe(2);
    expect(b!.responder.sessions).toBe(0);
    // Trees are now equal: one round trip and nothing else.
    b!.received = [];
    const again = await exchange(a!, b!, 's2');
    expect(again).toMatchObject({ keysSent: 0, keysReceived: 0 });
    expect(b!.received).toEqual(['ae.start']);
  });

  it('pulls many records in batches; the peer keeps the session until the last pull', async () => {
    const [a, b] = await nodes(['a', 'b']);
    const count = 2 * RECORD_BATCH_COUNT + 5;
    for (let i = 0; i < count; i++) b!.replica.set(`k${i}`, value('y', 'x'));
    const c = await exchange(a!, b!);
    expect(c.keysReceived).toBe(count);
    expect(b!.received.filter((t) => t === 'ae.pull')).toHaveLength(3);
    expect(a!.replica.rows.size).toBe(count);
    expect(b!.responder.sessions).toBe(0);
  });

  it('drops records of keys the receiver does not replicate', async () => {
    const [a] = await nodes(['a']);
    const ring = Ring.from([{ id: 'a', tokens: [100] }, { id: 'b', tokens: [2 ** 31] }]);
    const ctx = { ...a!.ctx, n: 1, ring: () => ring };
    const keys: Uint8Array[] = [];
    for (let i = 0; keys.length < 20; i++) keys.push(enc.encode(`k${i}`));
    const mine = keys.filter((k) => ring.preferenceList(k, 1)[0]!.id === 'a').length;
    const counters = emptyCounters();
    await mergeRecords(ctx, keys, keys.map(() => value('z', 'v')), undefined, counters);
    expect(counters.keysReceived).toBe(mine);
    expect(counters.keysIgnored).toBe(20 - mine);
    expect(mine).toBeGreaterThan(0);
    expect(mine).toBeLessThan(20);
  });

  it('refuses malformed requests with KV_INVALID_MESSAGE and stores nothing', async () => {
    const [, b] = await nodes(['a', 'b']);
    const h = (m: WireMessage) => b!.responder.handle(m, 'a');
    expect((await rejection(h({ type: 'ae.hashes', session: 'nope', level: 1 }))).code).toBe('KV_INVALID_MESSAGE');
    expect((await rejection(h({ type: 'ae.start', session: 's', start: 0, end: 0, fanout: 16, depth: 5, root: new Uint8Array(8) }))).code).toBe(
      'KV_INVALID_MESSAGE',
    );
    expect((await rejection(h({ type: 'ae.start', session: 's', start: -1, end: 0, fanout: 16, depth: 3, root: new Uint8Array(8) }))).code).toBe(
      'KV_INVALID_MESSAGE',
    );
    const good = value('x', 'v');
    const bad = new Uint8Array([1, 2, 3]);
    const err = await rejection(h({ type: 'ae.push', keys: [enc.encode('k1'), enc.encode('k2')], records: [good, bad] }));
    expect(err.code).toBe('KV_INVALID_MESSAGE');
    expect(b!.replica.rows.size).toBe(0);
    expect((await rejection(h({ type: 'ae.push', keys: [enc.encode('k1')], records: [] }))).code).toBe('KV_INVALID_MESSAGE');
    expect(b!.responder.sessions).toBe(0);
  });

  it('drops an idle session after sessionTimeout on its clock; close() leaves no timer', async () => {
    const clock = new ManualClock(10 * GRACE);
    const [, b] = await nodes(['a', 'b'], clock);
    b!.replica.set('k', value('x', 'v'));
    const tree = new MerkleTree(WHOLE);
    const start = new MerkleExchange(tree).start();
    const answer = await b!.responder.handle({ ...start, session: 's' } as unknown as WireMessage, 'a');
    expect(answer.type).toBe('ae.hashes');
    expect(b!.responder.sessions).toBe(1);
    expect(clock.pending).toBe(1);
    clock.advance(4_999);
    expect(b!.responder.sessions).toBe(1);
    clock.advance(1);
    expect(b!.responder.sessions).toBe(0);
    expect(clock.pending).toBe(0);

    await b!.responder.handle({ ...start, session: 's2' } as unknown as WireMessage, 'a');
    expect(clock.pending).toBe(1);
    b!.responder.close();
    expect(clock.pending).toBe(0);
    expect((await rejection(b!.responder.handle({ ...start, session: 's3' } as unknown as WireMessage, 'a'))).code).toBe('KV_NOT_STARTED');
  });
});

describe('tombstone GC', () => {
  it('isExpiredTombstone: tombstones only, every one at or before the horizon', () => {
    const v = value('x', 'v', 1);
    const t = tombstoneOver(v, 'x', 100);
    expect(isExpiredTombstone(v, 1_000)).toBe(false);
    expect(isExpiredTombstone(t, 100)).toBe(true);
    expect(isExpiredTombstone(t, 99)).toBe(false);
    // A tombstone with a concurrent live sibling is not collectable.
    const both = encodeSiblingSet(decodeSiblingSet(t).merge(decodeSiblingSet(value('y', 'w', 1))));
    expect(isExpiredTombstone(both, 1_000)).toBe(false);
    expect(isExpiredTombstone(new Uint8Array([9, 9]), 1_000)).toBe(false);
  });

  it('purges on every replica only when all of them hold the same expired tombstone', async () => {
    const [a, b, c] = await nodes(['a', 'b', 'c']);
    const old = tombstoneOver(value('x', 'v', 1), 'x', 10);
    for (const n of [a!, b!, c!]) n.replica.set('dead', old);
    c!.replica.set('dead', value('x', 'v', 1)); // c still has the value
    a!.replica.set('young', tombstoneOver(value('x', 'v', 1), 'x', 10 * GRACE - 10));
    b!.replica.set('young', a!.replica.get('young')!);
    c!.replica.set('young', a!.replica.get('young')!);
    const peers = [b!, c!].map((n) => ({ id: n.id, address: n.id, weight: 1, tokens: [1] }));
    const horizon = 10 * GRACE - GRACE;

    // Held by 2 of 3: nothing purged anywhere, and no purge was even asked for.
    let purged = await collectTombstones(a!.ctx, WHOLE, peers, horizon, emptyCounters());
    expect(purged).toBe(0);
    expect(b!.received).not.toContain('ae.purge');
    for (const n of [a!, b!]) expect(n.replica.get('dead')).toEqual(old);

    // Once c holds it too: purged on all three; the young tombstone stays.
    c!.replica.set('dead', old);
    purged = await collectTombstones(a!.ctx, WHOLE, peers, horizon, emptyCounters());
    expect(purged).toBe(1);
    for (const n of [a!, b!, c!]) {
      expect(n.replica.get('dead')).toBeUndefined();
      expect(n.replica.get('young')).toBeDefined();
    }
  });

  it('confirms in batches of GC_BATCH_KEYS', async () => {
    const [a, b] = await nodes(['a', 'b']);
    const old = tombstoneOver(value('x', 'v', 1), 'x', 10);
    for (let i = 0; i < GC_BATCH_KEYS + 1; i++) {
      a!.replica.set(`d${i}`, old);
      b!.replica.set(`d${i}`, old);
    }
    const purged = await collectTombstones(a!.ctx, WHOLE, [{ id: 'b', address: 'b', weight: 1, tokens: [1] }], 9 * GRACE, emptyCounters());
    expect(purged).toBe(GC_BATCH_KEYS + 1);
    expect(b!.received.filter((t) => t === 'ae.confirm')).toHaveLength(2);
    expect(b!.replica.rows.size).toBe(0);
  });
});
