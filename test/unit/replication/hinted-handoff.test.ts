import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNetwork, MemoryStorage, Ring, type MemberStatus, type WireMessage } from 'quorumkv';
import { HintedHandoff, HopQueue } from 'quorumkv/internals';
import { ManualClock } from 'quorumkv/testing';
import { SiblingSet, VectorClock, encodeSiblingSet } from '../../../src/versioning/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const turn = () => new Promise<void>((r) => setImmediate(r));
const HOUR = 3600 * 1000;

/** A valid encoded record holding one value. */
function record(v: string): Uint8Array {
  return encodeSiblingSet(SiblingSet.empty<Uint8Array>().write('x~1', VectorClock.EMPTY, { value: enc(v), tombstone: false, timestamp: 1 }).set);
}

/** A stand-in `s` with a HintedHandoff, and owners `o1`, `o2` whose handlers the test controls. */
async function setup(options: { maxInFlight?: number; status?: (id: string) => MemberStatus } = {}) {
  const clock = new ManualClock(10 * HOUR);
  const net = new MemoryNetwork({ clock });
  const ring = Ring.from([{ id: 's' }, { id: 'o1' }, { id: 'o2' }]);
  const storage = new MemoryStorage();
  await storage.open();
  const transport = net.transport('s');
  await transport.start(() => ({ type: 'none' }));
  const events: string[] = [];
  const handoff = new HintedHandoff({
    self: 's',
    cluster: 'x',
    storage,
    transport,
    ring: () => ring,
    clock,
    generation: 7,
    maxInFlight: options.maxInFlight ?? 16,
    deliveryTimeout: 1_000,
    ...(options.status ? { status: options.status } : {}),
    onStored: (e) => events.push(`stored ${e.target} ${new TextDecoder().decode(e.key)}`),
    onDelivered: (e) => events.push(`delivered ${e.target} ${new TextDecoder().decode(e.key)}`),
    onExpired: (e) => events.push(`expired ${e.target} ${new TextDecoder().decode(e.key)}`),
  });
  const received: Record<string, string[]> = { o1: [], o2: [] };
  let inFlight = 0;
  let maxSeen = 0;
  let gate: Promise<void> | undefined;
  const owners: { readonly started: boolean; stop(): Promise<void> }[] = [];
  for (const id of ['o1', 'o2']) {
    const t = net.transport(id);
    await t.start(async (m: WireMessage) => {
      inFlight++;
      maxSeen = Math.max(maxSeen, inFlight);
      try {
        if (gate) await gate;
        received[id]!.push(new TextDecoder().decode(m['key'] as Uint8Array));
        return { type: 'kv.applied' };
      } finally {
        inFlight--;
      }
    });
    owners.push(t);
  }
  const hints = async () => {
    const out: string[] = [];
    for await (const h of storage.hints()) out.push(`${h.target}:${new TextDecoder().decode(h.key)}`);
    return out;
  };
  return {
    clock,
    net,
    ring,
    storage,
    handoff,
    events,
    received,
    hints,
    maxInFlight: () => maxSeen,
    hold(): () => void {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
    async stop() {
      await handoff.stop();
      await transport.stop();
      for (const o of owners) if (o.started) await o.stop();
    },
  };
}

let t: Awaited<ReturnType<typeof setup>> | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const ref = (ring: Ring, key: string) => ({ bytes: enc(key), token: ring.token(key) });

describe('HintedHandoff', () => {
  it('stores a hint only once the storage has it, and kv.hint answers after that', async () => {
    t = await setup();
    const answer = await t.handoff.handle({ type: 'kv.hint', cluster: 'x', key: enc('k1'), record: record('v'), target: 'o1' });
    expect(answer).toEqual({ type: 'kv.hinted' });
    expect(await t.hints()).toEqual(['o1:k1']);
    expect(t.events).toEqual(['stored o1 k1']);
    await expect(t.handoff.handle({ type: 'kv.hint', cluster: 'x', key: enc('k2'), record: enc('junk'), target: 'o1' })).rejects.toMatchObject({
      code: 'KV_INVALID_MESSAGE',
    });
    expect(await t.hints()).toEqual(['o1:k1']);
  });

  it('delivers to the owner and deletes each hint only after the owner acknowledged it', async () => {
    t = await setup();
    await t.handoff.store('o1', ref(t.ring, 'a'), record('1'));
    await t.handoff.store('o2', ref(t.ring, 'b'), record('2'));
    const release = t.hold();
    const pass = t.handoff.deliverPending();
    for (let i = 0; i < 10; i++) await turn();
    // Owners have the requests but have not answered: nothing deleted yet.
    expect((await t.hints()).sort()).toEqual(['o1:a', 'o2:b']);
    release();
    expect(await pass).toBe(2);
    expect(await t.hints()).toEqual([]);
    expect(t.received).toEqual({ o1: ['a'], o2: ['b'] });
    expect(t.events.filter((e) => e.startsWith('delivered')).sort()).toEqual(['delivered o1 a', 'delivered o2 b']);
  });

  it('expires hints older than the TTL undelivered (injectable clock), keeps younger ones', async () => {
    t = await setup();
    expect(t.handoff.ttl).toBe(3 * HOUR);
    await t.handoff.store('o1', ref(t.ring, 'old'), record('1'));
    t.clock.advance(2 * HOUR);
    await t.handoff.store('o1', ref(t.ring, 'young'), record('2'));
    t.clock.advance(HOUR); // 'old' is exactly 3 h old now
    expect(await t.handoff.deliverPending()).toBe(1);
    expect(t.received['o1']).toEqual(['young']);
    expect(t.events).toContain('expired o1 old');
    expect(await t.hints()).toEqual([]);
  });

  it('keeps hints for an owner that is down or does not answer; the first failure stops that owner for the pass', async () => {
    const status = new Map<string, MemberStatus>([['o2', 'down']]);
    t = await setup({ status: (id) => status.get(id) ?? 'alive' });
    for (let i = 0; i < 5; i++) await t.handoff.store('o1', ref(t.ring, `a${i}`), record('1'));
    await t.handoff.store('o2', ref(t.ring, 'b'), record('2'));
    t.net.isolate('o1'); // silent: deliveries time out
    const pass = t.handoff.deliverPending();
    for (let i = 0; i < 20; i++) await turn();
    t.clock.advance(1_000);
    expect(await pass).toBe(0);
    expect((await t.hints()).length).toBe(6);
    // Only the probe went to the silent owner, nothing to the down one.
    expect(t.net.stats().dropped).toBe(1);
    expect(t.received).toEqual({ o1: [], o2: [] });
    // Back: member:up wakes the owner's delivery.
    t.net.heal();
    status.set('o2', 'alive');
    t.handoff.start();
    t.handoff.wake('o2');
    expect(await t.handoff.deliverPending()).toBe(5);
    expect(await t.hints()).toEqual([]);
  });

  it('throttles deliveries to maxInFlight at once', async () => {
    t = await setup({ maxInFlight: 3 });
    for (let i = 0; i < 12; i++) await t.handoff.store(i % 2 ? 'o1' : 'o2', ref(t.ring, `k${i}`), record('v'));
    const release = t.hold();
    const pass = t.handoff.deliverPending();
    for (let i = 0; i < 30; i++) await turn();
    expect(t.maxInFlight()).toBeLessThanOrEqual(3);
    release();
    expect(await pass).toBe(12);
    expect(t.maxInFlight()).toBeLessThanOrEqual(3);
    expect(t.maxInFlight()).toBeGreaterThan(1);
  });

  it('refuses a TTL beyond the tombstone grace, and the background sweep delivers on its interval', async () => {
    expect(() => new HintedHandoff({ self: 's', cluster: 'x', storage: new MemoryStorage(), transport: new MemoryNetwork().transport('z'), ring: () => Ring.empty(), clock: new ManualClock(), generation: 1, ttl: 11 * 24 * HOUR })).toThrow(
      /Expected `ttl` to be a number of milliseconds from 1 to 864000000, got 950400000/,
    );
    t = await setup();
    await t.handoff.store('o1', ref(t.ring, 'k'), record('v'));
    t.handoff.start();
    t.clock.advance(10_000);
    for (let i = 0; i < 50 && t.received['o1']!.length === 0; i++) await turn();
    for (let i = 0; i < 20; i++) await turn();
    expect(t.received['o1']).toEqual(['k']);
    expect(await t.hints()).toEqual([]);
  });

  it('deliverPending rejects with KV_ABORTED on an aborted signal', async () => {
    t = await setup();
    const ac = new AbortController();
    ac.abort();
    await expect(t.handoff.deliverPending(ac.signal)).rejects.toMatchObject({ code: 'KV_ABORTED', name: 'AbortError' });
  });
});

describe('HopQueue', () => {
  it('calls each waiter one hop after it was queued unless it settled, with one timer', () => {
    const clock = new ManualClock();
    const q = new HopQueue(clock, 100);
    const calls: string[] = [];
    const waiter = (name: string, settled = false) => ({ hopSettled: settled, hopDue: () => void calls.push(`${name}@${clock.now()}`) });
    q.push(waiter('a'));
    clock.advance(30);
    const b = waiter('b');
    q.push(b);
    q.push(waiter('c', true));
    expect(clock.pending).toBe(1);
    clock.advance(70);
    expect(calls).toEqual(['a@100']);
    b.hopSettled = true;
    clock.advance(100);
    expect(calls).toEqual(['a@100']);
    expect(clock.pending).toBe(0);
    expect(q.size).toBe(0);
    const e = q.push(waiter('e'));
    q.release(e); // settled before its hop: never called, not referenced
    clock.advance(100);
    expect(calls).toEqual(['a@100']);
    expect(q.size).toBe(0);
    q.push(waiter('d'));
    q.stop();
    clock.advance(1_000);
    expect(calls).toEqual(['a@100']);
    expect(() => new HopQueue(clock, -1)).toThrow(RangeError);
  });
});
