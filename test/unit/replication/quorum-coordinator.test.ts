import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNetwork, MemoryStorage, QuorumCoordinator, QuorumNotMetError, Ring, VectorClock, systemClock } from 'quorumkv';
import { ManualClock } from 'quorumkv/testing';
import { MAX_CALLS_IN_PROGRESS, ReplicaServer, metadataCounterLease, type MemoryTransport } from 'quorumkv/internals';

/** Three nodes wired by hand: QuorumCoordinator and ReplicaServer without Store. */
async function trio() {
  const net = new MemoryNetwork();
  const ring = Ring.from([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
  const repairs: string[][] = [];
  const nodes = new Map<string, { coordinator: QuorumCoordinator; replica: ReplicaServer; transport: MemoryTransport }>();
  for (const id of ['a', 'b', 'c']) {
    const storage = new MemoryStorage();
    await storage.open();
    const replica = new ReplicaServer({ storage, actor: `${id}~1`, ring: () => ring, lease: metadataCounterLease(storage, 'test.counter') });
    await replica.open();
    const transport = net.transport(id);
    const coordinator = new QuorumCoordinator({
      self: id,
      cluster: 'x',
      n: 3,
      transport,
      replica,
      ring: () => ring,
      clock: systemClock,
      onRepair: (e) => repairs.push([...e.nodes]),
    });
    await transport.start((m) => (m.type === 'kv.coordinate' ? coordinator.handle(m) : replica.handle(m)));
    nodes.set(id, { coordinator, replica, transport });
  }
  const get = (id: string) => nodes.get(id)!;
  return {
    net,
    repairs,
    get,
    async stop() {
      for (const n of nodes.values()) {
        await n.transport.stop();
        await n.coordinator.stop();
      }
    },
  };
}

const key = new TextEncoder().encode('k');
const value = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);
const deadline = (ms = 1_000) => ({ deadline: Date.now() + ms });
const write = (v: string, context = VectorClock.EMPTY, w = 2) => ({ value: value(v), tombstone: false, context, overwrite: false, w });

let t: Awaited<ReturnType<typeof trio>> | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe('QuorumCoordinator without Store', () => {
  it('writes through one node and reads through another', async () => {
    t = await trio();
    await t.get('a').coordinator.write(key, write('v1', VectorClock.EMPTY, 3), deadline());
    const set = await t.get('c').coordinator.read(key, 2, deadline());
    expect(set.values().map(text)).toEqual(['v1']);
    for (const id of ['a', 'b', 'c']) expect((await t.get(id).replica.read(key)).size).toBe(1);
  });

  it('readWith resolves with what `present` makes of the merged set, and rejects with what it throws', async () => {
    t = await trio();
    await t.get('a').coordinator.write(key, write('v1', VectorClock.EMPTY, 3), deadline());
    const seen: number[] = [];
    const presented = await t.get('c').coordinator.readWith(key, 2, deadline(), (set) => {
      seen.push(set.size);
      return set.values().map(text).join();
    });
    expect(presented).toBe('v1');
    expect(seen).toEqual([1]);
    const boom = new Error('present failed');
    await expect(
      t.get('b').coordinator.readWith(key, 2, deadline(), () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    // A failed read never calls `present`.
    t.net.isolate('c');
    let called = false;
    const err = await t
      .get('c')
      .coordinator.readWith(key, 2, deadline(100), () => (called = true))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuorumNotMetError);
    expect(called).toBe(false);
  });

  it('counts acknowledgements by distinct node and reports who failed', async () => {
    t = await trio();
    t.net.isolate('c');
    const err = await t.get('a').coordinator.write(key, write('v', VectorClock.EMPTY, 3), deadline(200)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuorumNotMetError);
    expect(err).toMatchObject({ required: 3, acknowledged: 2, failures: [{ node: 'c', code: 'KV_TIMEOUT' }] });
    // W=2 succeeds; R=2 reads it.
    await t.get('a').coordinator.write(key, write('w'), deadline(200));
    const read = await t.get('b').coordinator.read(key, 2, deadline(200));
    expect(read.values().map(text).sort()).toEqual(['v', 'w']);
  });

  it('an answer of the wrong type counts as that replica failing with KV_INVALID_MESSAGE, on writes and reads', async () => {
    t = await trio();
    await t.get('a').coordinator.write(key, write('v', VectorClock.EMPTY, 3), deadline());
    // c now answers every request with a message of no known type.
    const c = t.get('c').transport;
    await c.stop();
    await c.start(() => ({ type: 'kv.nonsense' }));
    const writeErr = await t.get('a').coordinator.write(key, write('w', VectorClock.EMPTY, 3), deadline()).catch((e: unknown) => e);
    expect(writeErr).toMatchObject({ required: 3, acknowledged: 2, failures: [{ node: 'c', code: 'KV_INVALID_MESSAGE' }] });
    const readErr = await t.get('a').coordinator.read(key, 3, deadline()).catch((e: unknown) => e);
    expect(readErr).toMatchObject({ code: 'KV_QUORUM_NOT_MET', failures: [{ node: 'c', code: 'KV_INVALID_MESSAGE' }] });
    // The two good replicas still make W=2 and R=2.
    await t.get('a').coordinator.write(key, write('x', (await t.get('a').coordinator.read(key, 2, deadline())).clock()), deadline());
    expect((await t.get('b').coordinator.read(key, 2, deadline())).values().map(text)).toEqual(['x']);
  });

  it('repairs a stale replica after the read, merging only', async () => {
    t = await trio();
    t.net.isolate('c');
    await t.get('a').coordinator.write(key, write('fresh'), deadline(300));
    t.net.heal();
    expect((await t.get('c').replica.read(key)).size).toBe(0);
    const set = await t.get('b').coordinator.read(key, 3, deadline());
    expect(set.values().map(text)).toEqual(['fresh']);
    for (let i = 0; i < 100 && t.repairs.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(t.repairs).toEqual([['c']]);
    const repaired = await t.get('c').replica.read(key);
    expect(repaired.equals(set)).toBe(true);
  });

  it('rejects with KV_ABORTED when the caller aborts', async () => {
    t = await trio();
    t.net.setLatency(50);
    const controller = new AbortController();
    const pending = t.get('a').coordinator.read(key, 3, { deadline: Date.now() + 1_000, signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'KV_ABORTED', name: 'AbortError' });
  });
});

describe('QuorumCoordinator read deadlines (one timer for all reads)', () => {
  /** A MemoryStorage whose reads hang while `hang` is set. */
  class HangingStorage extends MemoryStorage {
    hang = false;
    readonly held: (() => void)[] = [];
    override get(k: Uint8Array): Promise<Uint8Array | undefined> {
      if (!this.hang) return super.get(k);
      return new Promise((resolve) => this.held.push(() => resolve(undefined)));
    }
  }

  it('a read whose own replica hangs fails at its own deadline, each read at its own, on the injected clock', async () => {
    const clock = new ManualClock(1_000_000);
    const net = new MemoryNetwork({ clock, deliverOnClock: true });
    const ring = Ring.from([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const storage = new HangingStorage();
    await storage.open();
    const replica = new ReplicaServer({ storage, actor: 'a~1', ring: () => ring, lease: metadataCounterLease(storage, 'c') });
    await replica.open();
    const transport = net.transport('a');
    await transport.start(() => ({ type: 'never' }));
    const coordinator = new QuorumCoordinator({ self: 'a', cluster: 'x', n: 3, transport, replica, ring: () => ring, clock });
    // b and c never answer and a's own read hangs: only the deadlines end the reads.
    const silent = [net.transport('b'), net.transport('c')];
    const unanswered: (() => void)[] = [];
    for (const t of silent) await t.start(() => new Promise((resolve) => unanswered.push(() => resolve({ type: 'kv.record', record: null }))));
    storage.hang = true;
    const outcomes: { which: string; at: number; code: string }[] = [];
    const settle = (which: string) => (err: unknown) =>
      outcomes.push({ which, at: clock.now(), code: (err as { code: string }).code });
    // R = 1: once b and c time out, a's own (hanging) read could still make the
    // quorum, so only the read's own deadline ends it.
    coordinator.read(key, 1, { deadline: clock.now() + 300 }).catch(settle('late'));
    coordinator.read(key, 1, { deadline: clock.now() + 100 }).catch(settle('early'));
    for (let i = 0; i < 40 && outcomes.length < 2; i++) {
      clock.advance(10);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(outcomes.map((o) => [o.which, o.at - 1_000_000, o.code])).toEqual([
      ['early', 100, 'KV_QUORUM_NOT_MET'],
      ['late', 300, 'KV_QUORUM_NOT_MET'],
    ]);
    storage.hang = false;
    for (const release of [...storage.held, ...unanswered]) release();
    for (const t of [transport, ...silent]) await t.stop();
    await coordinator.stop();
    expect(clock.pending).toBe(0);
  });
});

describe('QuorumCoordinator: calls in progress are bounded', () => {
  /** Three nodes on a ManualClock network whose messages take `latency` ms: W=1 writes through `a` resolve at once, their replication stays in progress. */
  async function slowTrio(latency: number) {
    const clock = new ManualClock(1_000_000);
    const net = new MemoryNetwork({ clock });
    net.setLatency(latency);
    const ring = Ring.from([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const coordinators = new Map<string, QuorumCoordinator>();
    const transports: MemoryTransport[] = [];
    for (const id of ['a', 'b', 'c']) {
      const storage = new MemoryStorage();
      await storage.open();
      const replica = new ReplicaServer({ storage, actor: `${id}~1`, ring: () => ring, lease: metadataCounterLease(storage, 'test.counter'), clock });
      await replica.open();
      const transport = net.transport(id);
      const coordinator = new QuorumCoordinator({ self: id, cluster: 'x', n: 3, transport, replica, ring: () => ring, clock, sloppyQuorum: false });
      await transport.start((m) => replica.handle(m));
      coordinators.set(id, coordinator);
      transports.push(transport);
    }
    const a = coordinators.get('a')!;
    const enc = new TextEncoder();
    const w1 = (i: number, options: { deadline?: number; signal?: AbortSignal } = {}) =>
      a.write(enc.encode(`k${i}`), write(`v${i}`, VectorClock.EMPTY, 1), { deadline: options.deadline ?? clock.now() + 10_000, signal: options.signal });
    const stopAll = async () => {
      const stopping = [...coordinators.values()].map((c) => c.stop());
      for (let i = 0; i < 10; i++) clock.advance(latency);
      await Promise.all(stopping);
      for (const t of transports) await t.stop();
    };
    return { clock, a, w1, stopAll };
  }
  const flush = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };

  it(`lets ${MAX_CALLS_IN_PROGRESS} calls be in progress; the next ones wait (aborted, timed out or let through as earlier ones finish)`, async () => {
    const s = await slowTrio(100);
    // Every one resolves with no time passing: a itself is a replica, W = 1.
    await Promise.all(Array.from({ length: MAX_CALLS_IN_PROGRESS }, (_, i) => s.w1(i)));
    let passed = false;
    const waits = s.w1(10_000).then(() => (passed = true));
    // Reads wait their turn too (an R = 1 read through a replica resolves without I/O as well).
    let read = false;
    const reads = s.a.read(new TextEncoder().encode('k0'), 1, { deadline: s.clock.now() + 10_000 }).then(() => (read = true));
    const controller = new AbortController();
    const aborted = s.w1(10_001, { signal: controller.signal });
    const late = s.w1(10_002, { deadline: s.clock.now() + 10 });
    await flush();
    expect(passed).toBe(false);
    expect(read).toBe(false);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'KV_ABORTED', name: 'AbortError' });
    s.clock.advance(10);
    await expect(late).rejects.toMatchObject({ code: 'KV_TIMEOUT' });
    expect(passed).toBe(false);
    // The applies arrive after 100 ms and their answers 100 ms later: the earlier calls finish, the waiting one goes on.
    s.clock.advance(90);
    s.clock.advance(100);
    await flush();
    expect(passed).toBe(true);
    await waits;
    s.clock.advance(100);
    s.clock.advance(100);
    await flush();
    expect(read).toBe(true);
    await reads;
    await s.stopAll();
  });

  it('a waiting call that fails as it starts frees its place: the calls behind it go on', async () => {
    const s = await slowTrio(100);
    await Promise.all(Array.from({ length: MAX_CALLS_IN_PROGRESS }, (_, i) => s.w1(i)));
    const enc = new TextEncoder();
    // More failing calls queued than there are calls in progress to finish: each fails as it starts
    // (a zone level on a ring without zones), so only their own ends can let the good ones behind them go.
    const failing = Array.from({ length: MAX_CALLS_IN_PROGRESS + 100 }, (_, i) =>
      s.a.write(enc.encode(`bad${i}`), write('x', VectorClock.EMPTY, 1), { deadline: s.clock.now() + 10_000, zoneLevel: 'each_quorum' }),
    );
    const good = Array.from({ length: 8 }, (_, i) => s.w1(30_000 + i));
    s.clock.advance(100);
    s.clock.advance(100);
    for (const f of failing) await expect(f).rejects.toMatchObject({ code: 'KV_UNAVAILABLE_CONSISTENCY' });
    await Promise.all(good);
    await s.stopAll();
  });

  it('fails the calls still waiting with KV_NOT_STARTED when the coordinator stops', async () => {
    const s = await slowTrio(100);
    await Promise.all(Array.from({ length: MAX_CALLS_IN_PROGRESS }, (_, i) => s.w1(i)));
    const waiting = s.w1(20_000);
    const stopped = s.stopAll();
    await expect(waiting).rejects.toMatchObject({ code: 'KV_NOT_STARTED' });
    await stopped;
  });
});

describe('QuorumCoordinator: a write goes to the replicas of the ring in use', () => {
  it('replicates to the other primaries of the current ring, list by list, as the ring changes under it', async () => {
    const net = new MemoryNetwork();
    let ring = Ring.from([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const nodes = new Map<string, { coordinator: QuorumCoordinator; replica: ReplicaServer; transport: MemoryTransport }>();
    for (const id of ['a', 'b', 'c', 'd']) {
      const storage = new MemoryStorage();
      await storage.open();
      const replica = new ReplicaServer({ storage, actor: `${id}~1`, ring: () => ring, lease: metadataCounterLease(storage, 'test.counter') });
      await replica.open();
      const transport = net.transport(id);
      const coordinator = new QuorumCoordinator({ self: id, cluster: 'x', n: 3, transport, replica, ring: () => ring, clock: systemClock });
      await transport.start((m) => (m.type === 'kv.coordinate' ? coordinator.handle(m) : replica.handle(m)));
      nodes.set(id, { coordinator, replica, transport });
    }
    const has = async (id: string, k: Uint8Array) => (await nodes.get(id)!.replica.read(k)).size > 0;
    const keys = Array.from({ length: 20 }, (_, i) => new TextEncoder().encode(`key-${i}`));
    try {
      // Every key through `a`, twice per ring (the second write of a key finds its other replicas worked out already).
      for (const k of keys) {
        await nodes.get('a')!.coordinator.write(k, write('v1', VectorClock.EMPTY, 3), deadline());
        await nodes.get('a')!.coordinator.write(k, write('v2', VectorClock.EMPTY, 3), deadline());
      }
      for (const k of keys) expect([await has('b', k), await has('c', k), await has('d', k)]).toEqual([true, true, false]);
      // c leaves, d joins: the same keys now replicate to b and d, never to c.
      ring = Ring.from([{ id: 'a' }, { id: 'b' }, { id: 'd' }]);
      const moved = keys.map((k) => new Uint8Array([...k, 0x21]));
      for (const k of moved) {
        await nodes.get('a')!.coordinator.write(k, write('v1', VectorClock.EMPTY, 3), deadline());
        await nodes.get('a')!.coordinator.write(k, write('v2', VectorClock.EMPTY, 3), deadline());
      }
      for (const k of moved) expect([await has('b', k), await has('c', k), await has('d', k)]).toEqual([true, false, true]);
      // A ring where `a` is not a replica: its writes are forwarded (to b, which replicates to c and d).
      ring = Ring.from([{ id: 'b' }, { id: 'c' }, { id: 'd' }]);
      const forwarded = new TextEncoder().encode('forwarded');
      await nodes.get('a')!.coordinator.write(forwarded, write('v1', VectorClock.EMPTY, 3), deadline());
      expect([await has('a', forwarded), await has('b', forwarded), await has('c', forwarded), await has('d', forwarded)]).toEqual([false, true, true, true]);
    } finally {
      for (const n of nodes.values()) {
        await n.transport.stop();
        await n.coordinator.stop();
      }
    }
  });
});
