import { describe, expect, it } from 'vitest';
import { ManualClock } from 'quorumkv/testing';
import { KvError, type NodeInfo } from 'quorumkv';
import { gather } from '../../../src/replication/gather.js';

/** a1 a2 a3 in zone a, b1 b2 in zone b, x without a zone. */
const NODES: NodeInfo[] = ['a1', 'a2', 'a3', 'b1', 'b2', 'x'].map((id, i) => ({
  id,
  address: id,
  weight: 1,
  tokens: [i],
  ...(id === 'x' ? {} : { zone: id[0]! }),
}));

/** A call per node whose outcome the test decides. */
function controlled() {
  const calls = new Map<string, { resolve: (v: string) => void; reject: (e: unknown) => void }>();
  const call = (node: NodeInfo): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      calls.set(node.id, { resolve, reject });
    });
  return { calls, call };
}

const settle = () => new Promise((r) => setImmediate(r));

/** Resolves to 'pending' if `p` has not settled by the next turn. */
async function state(p: Promise<unknown>): Promise<string> {
  let result = 'pending';
  p.then(
    () => (result = 'resolved'),
    () => (result = 'rejected'),
  );
  await settle();
  return result;
}

describe('gather with a per-zone quorum', () => {
  it('resolves only once every zone has its count: answers from other zones do not count', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    const zones = new Map([
      ['a', 2],
      ['b', 1],
    ]);
    const g = gather(NODES, call, { operation: 'write', required: 3, zones, deadline: clock.now() + 100, clock });
    calls.get('a1')!.resolve('ok');
    calls.get('x')!.resolve('ok');
    calls.get('b1')!.resolve('ok');
    calls.get('b2')!.resolve('ok');
    // Four answers, more than `required`, but zone a has one of its two.
    expect(await state(g.quorum)).toBe('pending');
    calls.get('a3')!.resolve('ok');
    expect(await state(g.quorum)).toBe('resolved');
    expect([...(await g.quorum).ok.keys()]).toEqual(['a1', 'x', 'b1', 'b2', 'a3']);
    calls.get('a2')!.resolve('ok');
    expect((await g.all).ok.size).toBe(6);
  });

  it('rejects as soon as one zone can no longer get its count, with the answers that count', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    const zones = new Map([
      ['a', 2],
      ['b', 2],
    ]);
    const g = gather(NODES, call, { operation: 'read', required: 4, zones, deadline: clock.now() + 100, clock });
    calls.get('a1')!.resolve('ok');
    calls.get('a2')!.resolve('ok');
    calls.get('a3')!.resolve('ok');
    calls.get('b1')!.resolve('ok');
    expect(await state(g.quorum)).toBe('pending');
    calls.get('b2')!.reject(new KvError('KV_UNREACHABLE', 'gone'));
    await expect(g.quorum).rejects.toMatchObject({
      code: 'KV_QUORUM_NOT_MET',
      required: 4,
      // a: 2 of its 3 answers count; b: 1.
      acknowledged: 3,
      failures: [{ node: 'b2', code: 'KV_UNREACHABLE' }],
    });
    calls.get('x')!.resolve('ok');
    await g.all;
  });

  it('counts what the caller already has, and fails the silent nodes of a short zone at the deadline', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    // The coordinator stored it in zone a already: a needs one more, b one.
    const zones = new Map([
      ['a', 1],
      ['b', 1],
    ]);
    const g = gather(NODES, call, { operation: 'write', required: 3, counted: 1, zones, deadline: clock.now() + 100, clock });
    calls.get('a2')!.resolve('ok');
    expect(await state(g.quorum)).toBe('pending');
    clock.advance(100);
    await expect(g.quorum).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 3, acknowledged: 2 });
    const err = await g.quorum.catch((e: { failures: { node: string; code: string }[] }) => e);
    expect((err as { failures: { node: string; code: string }[] }).failures.map((f) => `${f.node}:${f.code}`).sort()).toEqual([
      'a1:KV_TIMEOUT',
      'a3:KV_TIMEOUT',
      'b1:KV_TIMEOUT',
      'b2:KV_TIMEOUT',
      'x:KV_TIMEOUT',
    ]);
    for (const id of ['a1', 'a3', 'b1', 'b2', 'x']) calls.get(id)!.resolve('late');
    await g.all;
  });

  it('resolves at once when no zone needs anything more', async () => {
    const clock = new ManualClock();
    const { call } = controlled();
    const g = gather(NODES.slice(0, 2), call, { operation: 'write', required: 1, counted: 1, zones: new Map([['a', 0]]), deadline: clock.now() + 100, clock });
    expect(await state(g.quorum)).toBe('resolved');
  });
});
