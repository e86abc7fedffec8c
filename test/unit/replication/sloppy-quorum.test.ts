import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNetwork, MemoryStorage, QuorumCoordinator, QuorumNotMetError, Ring, VectorClock, type WireMessage } from 'quorumkv';
import { HintedHandoff, ReplicaServer, metadataCounterLease } from 'quorumkv/internals';
import { ManualClock } from 'quorumkv/testing';

const HOP = 100;
const enc = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);
const write = (v: string, w = 2) => ({ value: enc(v), tombstone: false, context: VectorClock.EMPTY, overwrite: false, w });
const turn = () => new Promise<void>((r) => setImmediate(r));

interface Part {
  readonly transport: { stop(): Promise<void> };
  readonly storage: MemoryStorage;
  readonly replica: ReplicaServer;
  readonly handoff: HintedHandoff;
  readonly coordinator: QuorumCoordinator;
  /** While set, this node's handler waits for it before handling a message of these types. */
  gate: { types: readonly string[]; open: Promise<void> } | undefined;
}

/** Five nodes wired by hand on one ManualClock (network timeouts included): virtual time only. */
async function five(options: { sloppy?: boolean } = {}) {
  const clock = new ManualClock(1_000_000);
  const net = new MemoryNetwork({ clock });
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const ring = Ring.from(ids.map((id) => ({ id })));
  const parts = new Map<string, Part>();
  for (const id of ids) {
    const storage = new MemoryStorage();
    await storage.open();
    const transport = net.transport(id);
    const replica = new ReplicaServer({ storage, actor: `${id}~1`, ring: () => ring, clock, lease: metadataCounterLease(storage, 'c') });
    await replica.open();
    const handoff = new HintedHandoff({
      self: id,
      cluster: 'x',
      storage,
      transport,
      ring: () => ring,
      clock,
      generation: 1,
      applyLocal: (key, set, record) => replica.apply(key, set, record),
    });
    const coordinator = new QuorumCoordinator({
      self: id,
      cluster: 'x',
      n: 3,
      transport,
      replica,
      ring: () => ring,
      clock,
      hopTimeout: HOP,
      hints: handoff,
      ...(options.sloppy === undefined ? {} : { sloppyQuorum: options.sloppy }),
    });
    const part: Part = { transport, storage, replica, handoff, coordinator, gate: undefined };
    await transport.start(async (m: WireMessage) => {
      const gate = part.gate;
      if (gate && gate.types.includes(m.type)) await gate.open;
      if (m.type === 'kv.coordinate') return coordinator.handle(m);
      if (m.type === 'kv.hint') return handoff.handle(m);
      return replica.handle(m);
    });
    parts.set(id, part);
  }
  return {
    clock,
    net,
    ring,
    part: (id: string) => parts.get(id)!,
    /** Runs virtual time in `step` ms steps until `p` settles; resolves with its outcome and the virtual ms it took. */
    async drive<T>(p: Promise<T>, step = 5, max = 10_000): Promise<{ ms: number; value?: T; error?: unknown }> {
      const t0 = clock.now();
      let done: { value?: T; error?: unknown } | undefined;
      p.then(
        (value) => (done = { value }),
        (error: unknown) => (done = { error }),
      );
      for (;;) {
        for (let i = 0; i < 10 && !done; i++) await turn();
        if (done) return { ms: clock.now() - t0, ...done };
        if (clock.now() - t0 > max) throw new Error(`still pending after ${max} virtual ms`);
        clock.advance(step);
      }
    },
    /** Lets background work (replication past W, hints) run for `ms` virtual ms. */
    async settle(ms = 1_000, step = 5) {
      for (let t = 0; t < ms; t += step) {
        for (let i = 0; i < 5; i++) await turn();
        clock.advance(step);
      }
      for (let i = 0; i < 10; i++) await turn();
    },
    async hints(id: string) {
      const out: { target: string; key: string }[] = [];
      for await (const h of parts.get(id)!.storage.hints()) out.push({ target: h.target, key: text(h.key)! });
      return out;
    },
    async stop() {
      for (const p of parts.values()) {
        await p.handoff.stop();
        await p.coordinator.stop();
      }
      for (const p of parts.values()) await p.transport.stop();
    },
  };
}

let t: Awaited<ReturnType<typeof five>> | undefined;
afterEach(async () => {
  if (t) {
    t.net.heal();
    for (const id of ['a', 'b', 'c', 'd', 'e']) t.part(id).gate = undefined;
    await t.settle(6_000, 50);
    await t.stop();
  }
  t = undefined;
});

/** Key `k0`: its preference list [p1, p2, p3] and the two other nodes, in ring order (the fallbacks). */
function layout(ring: Ring): { key: Uint8Array; primaries: string[]; others: string[] } {
  const key = enc('k0');
  const primaries = ring.preferenceList(key, 3).map((n) => n.id);
  const others = ring.successors(ring.token(key)).map((n) => n.id).filter((id) => !primaries.includes(id));
  return { key, primaries, others };
}

async function versionsEverywhere(c: NonNullable<typeof t>, key: Uint8Array, ids: readonly string[]) {
  const out: Record<string, string[]> = {};
  for (const id of ids) {
    const set = await c.part(id).replica.read(key);
    out[id] = set.versions.map((v) => `${v.dot.actor}:${v.dot.counter}=${text(v.value)}`);
  }
  return out;
}

describe('sloppy quorum (QuorumCoordinator + HintedHandoff, virtual time)', () => {
  it('a write forwarded to a silent primary (not declared down) ends within two hops, as one version', async () => {
    t = await five();
    const { key, primaries, others } = layout(t.ring);
    const [p1, p2, p3] = primaries as [string, string, string];
    const outsider = others[0]!;
    t.net.isolate(p1); // silent: its messages are lost, nobody has declared it down
    const r = await t.drive(t.part(outsider).coordinator.write(key, write('v'), { deadline: t.clock.now() + 5_000 }));
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeLessThanOrEqual(2 * HOP);
    // The next primary made the version; the silent one gets it through a hint.
    await t.settle(500);
    const v = await versionsEverywhere(t, key, primaries);
    expect(v[p2]).toEqual([`${p2}~1:1=v`]);
    expect(v[p3]).toEqual([`${p2}~1:1=v`]);
    expect(v[p1]).toEqual([]);
    const hints = (await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => t!.hints(id)))).flat();
    expect(hints).toEqual([{ target: p1, key: 'k0' }]);
    // Back: the hint is delivered, merged, deleted.
    t.net.heal();
    let delivered = 0;
    for (const id of ['a', 'b', 'c', 'd', 'e']) delivered += (await t.drive(t.part(id).handoff.deliverPending())).value ?? 0;
    expect(delivered).toBe(1);
    const after = await versionsEverywhere(t, key, primaries);
    expect(after).toEqual({ [p1]: [`${p2}~1:1=v`], [p2]: [`${p2}~1:1=v`], [p3]: [`${p2}~1:1=v`] });
    expect((await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => t!.hints(id)))).flat()).toEqual([]);
  });

  it('a primary that gets the forwarded write only after its hop creates nothing: never two versions of one write', async () => {
    t = await five();
    const { key, primaries, others } = layout(t.ring);
    const [p1, p2] = primaries as [string, string, string];
    let release!: () => void;
    t.part(p1).gate = { types: ['kv.version'], open: new Promise<void>((r) => (release = r)) };
    const r = await t.drive(t.part(others[0]!).coordinator.write(key, write('once'), { deadline: t.clock.now() + 5_000 }));
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeLessThanOrEqual(2 * HOP);
    // p1 wakes up long after its hop, with the request in hand: it must refuse it.
    release();
    t.part(p1).gate = undefined;
    await t.settle(1_000);
    for (const id of ['a', 'b', 'c', 'd', 'e']) await t.drive(t.part(id).handoff.deliverPending());
    const v = await versionsEverywhere(t, key, primaries);
    for (const id of primaries) expect(v[id]).toEqual([`${p2}~1:1=once`]);
    const read = await t.drive(t.part(others[1]!).coordinator.read(key, 3, { deadline: t.clock.now() + 1_000 }));
    expect(read.value?.values().map(text)).toEqual(['once']);
  });

  it('a replica that answers after its stand-in took a hint ends with one version: the delivery is an idempotent merge', async () => {
    t = await five();
    const { key, primaries } = layout(t.ring);
    const [p1, p2, p3] = primaries as [string, string, string];
    let release!: () => void;
    t.part(p2).gate = { types: ['kv.apply'], open: new Promise<void>((r) => (release = r)) };
    const r = await t.drive(t.part(p1).coordinator.write(key, write('v'), { deadline: t.clock.now() + 5_000 }));
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeLessThan(HOP); // p1 + p3 answered: W met before any hop
    await t.settle(2 * HOP); // the hop passes: a stand-in stores a hint for p2
    const hints = (await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => t!.hints(id)))).flat();
    expect(hints).toEqual([{ target: p2, key: 'k0' }]);
    release(); // p2 now applies the write itself, too
    t.part(p2).gate = undefined;
    await t.settle(100);
    for (const id of ['a', 'b', 'c', 'd', 'e']) await t.drive(t.part(id).handoff.deliverPending());
    const v = await versionsEverywhere(t, key, primaries);
    for (const id of [p1, p2, p3]) expect(v[id]).toEqual([`${p1}~1:1=v`]);
    expect((await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => t!.hints(id)))).flat()).toEqual([]);
  });

  it('with two of three primaries silent, W=2 is met by stand-ins; sloppyQuorum false and w = N count primaries only', async () => {
    t = await five();
    const { key, primaries, others } = layout(t.ring);
    const [p1, p2, p3] = primaries as [string, string, string];
    t.net.isolate(p2);
    t.net.isolate(p3);
    const sloppy = await t.drive(t.part(p1).coordinator.write(key, write('s'), { deadline: t.clock.now() + 2_000 }));
    expect(sloppy.error).toBeUndefined();
    expect(sloppy.ms).toBeLessThanOrEqual(2 * HOP);
    const hinted = (await Promise.all(others.map((id) => t!.hints(id)))).flat();
    expect(hinted.map((h) => h.target).sort()).toEqual([p2, p3].sort());

    const strict = await t.drive(t.part(p1).coordinator.write(key, write('x'), { deadline: t.clock.now() + 1_000, sloppy: false }));
    expect(strict.error).toBeInstanceOf(QuorumNotMetError);
    expect(strict.error).toMatchObject({ required: 2, acknowledged: 1 });

    const all = await t.drive(t.part(p1).coordinator.write(key, write('y', 3), { deadline: t.clock.now() + 1_000 }));
    expect(all.error).toBeInstanceOf(QuorumNotMetError);
    expect(all.error).toMatchObject({ required: 3, acknowledged: 1 });
  });

  it('a coordinator built with sloppyQuorum: false never asks a stand-in', async () => {
    t = await five({ sloppy: false });
    const { key, primaries, others } = layout(t.ring);
    const [p1, p2, p3] = primaries as [string, string, string];
    t.net.isolate(p2);
    t.net.isolate(p3);
    const r = await t.drive(t.part(p1).coordinator.write(key, write('s'), { deadline: t.clock.now() + 1_000 }));
    expect(r.error).toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 2, acknowledged: 1 });
    expect((await Promise.all(others.map((id) => t!.hints(id)))).flat()).toEqual([]);
  });
});
