import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNetwork, MemoryStorage, QuorumCoordinator, Ring, VectorClock, systemClock } from 'quorumkv';
import { ReplicaServer, metadataCounterLease, type MemoryTransport } from 'quorumkv/internals';
import { TooManySiblingsError } from '../../../src/errors/index.js';
import type { SiblingsEvent } from '../../../src/replication/index.js';

/** Four nodes, N=3: one node is not a replica of the key and forwards its writes. */
async function quartet(maxSiblings: number) {
  const net = new MemoryNetwork();
  const ring = Ring.from([{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }]);
  const events: (SiblingsEvent & { node: string })[] = [];
  const nodes = new Map<string, { coordinator: QuorumCoordinator; replica: ReplicaServer; transport: MemoryTransport }>();
  for (const id of ['a', 'b', 'c', 'd']) {
    const storage = new MemoryStorage();
    await storage.open();
    const replica = new ReplicaServer({
      storage,
      actor: `${id}~1`,
      ring: () => ring,
      lease: metadataCounterLease(storage, 'test.counter'),
      maxSiblings,
      siblingWarning: 2,
      onSiblings: (e) => events.push({ ...e, node: id }),
    });
    await replica.open();
    const transport = net.transport(id);
    const coordinator = new QuorumCoordinator({ self: id, cluster: 'x', n: 3, transport, replica, ring: () => ring, clock: systemClock });
    await transport.start((m) => (m.type === 'kv.coordinate' ? coordinator.handle(m) : replica.handle(m)));
    nodes.set(id, { coordinator, replica, transport });
  }
  return {
    ring,
    events,
    get: (id: string) => nodes.get(id)!,
    async stop() {
      for (const n of nodes.values()) {
        await n.transport.stop();
        await n.coordinator.stop();
      }
    },
  };
}

const key = new TextEncoder().encode('hot-key');
const value = (s: string) => new TextEncoder().encode(s);
const deadline = () => ({ deadline: Date.now() + 2_000 });
const write = (v: string, context = VectorClock.EMPTY) => ({ value: value(v), tombstone: false, context, overwrite: false, w: 3 });

let t: Awaited<ReturnType<typeof quartet>> | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe('QuorumCoordinator and the sibling bound', () => {
  it('a locally coordinated write past maxSiblings rejects with TooManySiblingsError, nothing stored anywhere', async () => {
    t = await quartet(4);
    const [first] = t.ring.preferenceList(key, 3);
    const coordinator = t.get(first!.id).coordinator;
    for (let i = 0; i < 4; i++) await coordinator.write(key, write(`w${i}`), deadline());
    const err = await coordinator.write(key, write('w4'), deadline()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TooManySiblingsError);
    expect(err).toMatchObject({ code: 'KV_TOO_MANY_SIBLINGS', siblings: 5, limit: 4 });
    for (const n of t.ring.preferenceList(key, 3)) expect((await t.get(n.id).replica.read(key)).size).toBe(4);
    expect(t.events.filter((e) => e.node === first!.id).map((e) => e.siblings)).toEqual([3]);
  });

  it('a forwarded write refused by the replica reaches the caller as KV_TOO_MANY_SIBLINGS, not KV_QUORUM_NOT_MET', async () => {
    t = await quartet(4);
    const replicas = t.ring.preferenceList(key, 3).map((n) => n.id);
    const outsider = ['a', 'b', 'c', 'd'].find((id) => !replicas.includes(id))!;
    const coordinator = t.get(outsider).coordinator;
    for (let i = 0; i < 4; i++) await coordinator.write(key, write(`w${i}`), deadline());
    const err = await coordinator.write(key, write('w4'), deadline()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'KV_TOO_MANY_SIBLINGS' });
    expect((err as Error).message).toMatch(/5 siblings, over maxSiblings=4/);
    for (const id of replicas) expect((await t.get(id).replica.read(key)).size).toBe(4);
    // The read's context repairs the key, through the same forwarding node.
    const read = await coordinator.read(key, 2, deadline());
    expect(read.size).toBe(4);
    await coordinator.write(key, write('resolved', read.clock()), deadline());
    const after = await coordinator.read(key, 3, deadline());
    expect(after.values().map((v) => new TextDecoder().decode(v))).toEqual(['resolved']);
  });

  it('at the bound, a write whose context others have already superseded is refused like a blind one; a fresh read repairs', async () => {
    t = await quartet(3);
    const [first] = t.ring.preferenceList(key, 3);
    const coordinator = t.get(first!.id).coordinator;
    await coordinator.write(key, write('v1'), deadline());
    const stale = (await coordinator.read(key, 2, deadline())).clock(); // covers v1 only
    await coordinator.write(key, write('v2'), deadline());
    await coordinator.write(key, write('v3'), deadline()); // the key is at the bound: v1 v2 v3
    // The first writer with that context supersedes v1: the key stays at 3, accepted.
    await coordinator.write(key, write('a', stale), deadline());
    // A second one with the same context supersedes nothing the key still holds: it would make 4.
    const err = await coordinator.write(key, write('b', stale), deadline()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'KV_TOO_MANY_SIBLINGS', siblings: 4, limit: 3 });
    // The message says how to get out: a context this stale needs a fresh read, not the same context again.
    expect((err as Error).message).toMatch(/read the key again and write with its context/);
    const held = await coordinator.read(key, 3, deadline());
    expect(held.values().map((v) => new TextDecoder().decode(v)).sort()).toEqual(['a', 'v2', 'v3']);
    // Read again, merge, write: accepted, and the key is down to one version.
    await coordinator.write(key, write('a+b+v2+v3', held.clock()), deadline());
    expect((await coordinator.read(key, 3, deadline())).values().map((v) => new TextDecoder().decode(v))).toEqual(['a+b+v2+v3']);
  });
});
