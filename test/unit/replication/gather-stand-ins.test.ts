import { describe, expect, it } from 'vitest';
import { ManualClock } from 'quorumkv/testing';
import { KvError, Ring, type NodeInfo } from 'quorumkv';
import { HopQueue } from 'quorumkv/internals';
import { gather, type StandInPolicy } from '../../../src/replication/gather.js';

const ring = Ring.from(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id })));
const rs = ring.replicaSet('k', 3);
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

function policy(unavailable: Set<string>): StandInPolicy & { silenced: string[] } {
  const silenced: string[] = [];
  return {
    silenced,
    available: (node) => !unavailable.has(node.id),
    pick: (set, _target, asked) => set.fallbacks.find((n) => !unavailable.has(n.id) && !asked.some((a) => a.id === n.id)),
    answered: () => {},
    silent: (id) => void silenced.push(id),
  };
}

describe('gather with stand-ins', () => {
  it('replaces an unavailable node, a failed one and a silent one (after the hop), never twice; asks an unavailable one when no stand-in is left', async () => {
    const clock = new ManualClock();
    const hops = new HopQueue(clock, 100);
    const [, p2, p3] = rs.primaries as [NodeInfo, NodeInfo, NodeInfo];
    const [f1, f2] = rs.fallbacks as [NodeInfo, NodeInfo];
    const asked: string[] = [];
    const pending = new Map<string, { resolve: () => void; reject: (e: unknown) => void }>();
    const call = (node: NodeInfo, _s: AbortSignal | undefined, standInFor: string | undefined) => {
      asked.push(standInFor ? `${node.id} for ${standInFor}` : node.id);
      return new Promise<void>((resolve, reject) => pending.set(node.id, { resolve, reject }));
    };
    const p = policy(new Set([p2.id]));
    const g = gather([p2, p3], call, { operation: 'write', required: 3, counted: 1, deadline: 1_000, timer: false, clock, standIns: p, replicaSet: rs, hops });
    expect(asked).toEqual([`${f1.id} for ${p2.id}`, p3.id]);
    pending.get(f1.id)!.reject(new KvError('KV_UNREACHABLE', 'gone')); // the stand-in fails: the next one
    await settle();
    expect(asked).toEqual([`${f1.id} for ${p2.id}`, p3.id, `${f2.id} for ${p2.id}`]);
    clock.advance(100); // p3 silent for a hop: no fallback left, nothing added, but it is noted
    expect(p.silenced).toEqual([p3.id]);
    expect(asked).toHaveLength(3);
    pending.get(f2.id)!.resolve();
    pending.get(p3.id)!.resolve();
    await expect(g.quorum).resolves.toBeDefined();

    // Every candidate unavailable: the primary is asked anyway (never fewer asks than a strict quorum).
    const none = policy(new Set(['a', 'b', 'c', 'd', 'e']));
    asked.length = 0;
    gather([p2], call, { operation: 'write', required: 2, counted: 1, deadline: 1_000, timer: false, clock, standIns: none, replicaSet: rs });
    expect(asked).toEqual([p2.id]);
    hops.stop();
  });
});

describe('HopQueue: the reading a caller passes', () => {
  it('times an entry from the given reading; one due before the entry ahead of it waits for that one', () => {
    const clock = new ManualClock();
    const hops = new HopQueue(clock, 100);
    const fired: string[] = [];
    const waiter = (name: string) => ({ hopSettled: false, hopDue: () => void fired.push(name) });
    clock.advance(50);
    hops.push(waiter('a')); // due at 150 (the clock's reading)
    hops.push(waiter('b'), 20); // a stale reading: due at 120, behind a (150)
    hops.push(waiter('c'), 60); // due at 160
    clock.advance(99); // 149
    expect(fired).toEqual([]);
    clock.advance(1); // 150: a, and b with it
    expect(fired).toEqual(['a', 'b']);
    clock.advance(9); // 159
    expect(fired).toEqual(['a', 'b']);
    clock.advance(1); // 160
    expect(fired).toEqual(['a', 'b', 'c']);
    hops.stop();
  });

  it('keeps the answers of stand-ins past the nodes it was given, in the order they came', async () => {
    const clock = new ManualClock();
    const hops = new HopQueue(clock, 100);
    const [p1, p2] = rs.primaries as [NodeInfo, NodeInfo, NodeInfo];
    const [f1] = rs.fallbacks as [NodeInfo, NodeInfo];
    const pending = new Map<string, (v: string) => void>();
    const call = (node: NodeInfo) => new Promise<string>((resolve) => pending.set(node.id, resolve));
    const g = gather([p1, p2], call, { operation: 'read', required: 2, deadline: 1_000, timer: false, clock, standIns: policy(new Set()), replicaSet: rs, hops });
    pending.get(p1.id)!('from p1'); // kept while the gather has its two nodes
    await settle();
    clock.advance(100); // p2 silent for a hop: f1 stands in for it, p2's own call goes on
    await settle();
    expect([...pending.keys()]).toEqual([p1.id, p2.id, f1.id]);
    pending.get(f1.id)!('from f1');
    pending.get(p2.id)!('from p2');
    // Three answers kept from a gather given two nodes (p2's came after the quorum).
    const all = await g.all;
    expect([...all.ok]).toEqual([
      [p1.id, 'from p1'],
      [f1.id, 'from f1'],
      [p2.id, 'from p2'],
    ]);
    hops.stop();
  });
});
