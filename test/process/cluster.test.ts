import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { ProcessCluster, eventually, type NodeProcess } from './harness.js';

/**
 * Three real OS processes, each a Store on a TcpTransport at 127.0.0.1 (N3
 * W2 R2, memory storage): they join through a seed, serve reads and writes
 * through any of them, keep taking W=2 writes with one of them SIGKILLed,
 * and the killed one, restarted empty at its port, catches up.
 */
let cluster = new ProcessCluster();
afterEach(async () => {
  await cluster.close();
  cluster = new ProcessCluster();
});

/** Boots three processes at once, starts n1, then n2 and n3 with n1 as their seed. */
async function bootThree(): Promise<[NodeProcess, NodeProcess, NodeProcess]> {
  const [n1, n2, n3] = await Promise.all(['n1', 'n2', 'n3'].map((name) => cluster.boot(name)));
  await cluster.start(n1!, { nodeId: 'n1', seeds: [] });
  await Promise.all([n2!, n3!].map((n) => cluster.start(n, { nodeId: n.name, seeds: [n1!.address] })));
  return [n1!, n2!, n3!];
}

/** The value written for key `i` by `writer`, version `v` (bytes included, to cross the wire codec). */
const valueOf = (i: number, writer: string, v: number) => ({ i, writer, v, bytes: new Uint8Array([i & 0xff, v, 0, 255]) });

describe('a three-process cluster over TCP', () => {
  it('joins through seeds, survives a SIGKILL at W=2, and the restarted node catches up', async () => {
    onTestFailed(() => console.error(cluster.logs()));
    const [n1, n2, n3] = await bootThree();
    expect(n1.address).toMatch(/^127\.0\.0\.1:\d+$/);
    const all = [n1, n2, n3];
    await Promise.all(all.map((n) => n.call('waitForMembers', { count: 3 })));
    // Every process sees the others at the addresses they listen on, in other processes.
    const members = await n2.call<{ id: string; address: string; status: string }[]>('members');
    expect(members.map((m) => [m.id, m.address, m.status])).toEqual([
      ['n1', n1.address, 'alive'],
      ['n2', n2.address, 'alive'],
      ['n3', n3.address, 'alive'],
    ]);
    expect(new Set(all.map((n) => n.child.pid)).size).toBe(3);

    /** The last acknowledged value of each key. */
    const acknowledged = new Map<string, unknown>();
    const write = async (through: NodeProcess, i: number, v: number): Promise<void> => {
      const value = valueOf(i, through.name, v);
      await through.put(`key:${i}`, value, { w: 2 });
      acknowledged.set(`key:${i}`, value);
    };

    // Written through n1, read through n2.
    for (let i = 0; i < 20; i++) await write(n1, i, 1);
    for (let i = 0; i < 20; i++) expect((await n2.get(`key:${i}`))?.values).toEqual([valueOf(i, 'n1', 1)]);

    // SIGKILL n3: W=2 writes through the survivors still succeed, at once (no waiting for the failure detector).
    await n3.kill9();
    expect(n3.alive).toBe(false);
    for (let i = 20; i < 40; i++) await write(i % 2 === 0 ? n1 : n2, i, 1);
    // Overwrites with the context of a read (no siblings), through n2.
    for (let i = 0; i < 10; i++) {
      const read = await n2.get(`key:${i}`);
      const value = valueOf(i, 'n2', 2);
      await n2.put(`key:${i}`, value, { w: 2, context: read!.context });
      acknowledged.set(`key:${i}`, value);
    }
    for (const [key, value] of acknowledged) expect((await n1.get(key, { r: 2 }))?.values, key).toEqual([value]);

    // Restart n3 at its port: memory storage, so it comes back empty (a new incarnation).
    const n3b = await cluster.restart(n3, { port: 'same' });
    expect(n3b.address).toBe(n3.address);
    expect(n3b.child.pid).not.toBe(n3.child.pid);
    await Promise.all([n1, n2, n3b].map((n) => n.call('waitForMembers', { count: 3 })));

    // Reads through the restarted node return every acknowledged value...
    for (const [key, value] of acknowledged) expect((await n3b.get(key))?.values, key).toEqual([value]);
    // ...and read repair has filled its own storage with them.
    await eventually(async () => {
      for (const [key, value] of acknowledged) {
        const local = await n3b.call<{ values: unknown[] } | null>('localGet', { key });
        if (JSON.stringify(local?.values) !== JSON.stringify([value])) return false;
      }
      return true;
    }, 'n3 to hold every acknowledged value after reading them');

    // And it serves writes again: a write through it is read through the others.
    await write(n3b, 100, 1);
    expect((await n2.get('key:100'))?.values).toEqual([valueOf(100, 'n3', 1)]);
    // R=3 through n1 needs n1 to dial n3 again: n1's dials failed while n3 was down, so
    // it may still be in its reconnect backoff (at most reconnect.maxDelay, 5 s) although
    // n3 already gossips with it over the connection n3 dialled.
    await eventually(
      async () => JSON.stringify((await n1.get('key:100', { r: 3 }))?.values) === JSON.stringify([valueOf(100, 'n3', 1)]),
      'an R=3 read through n1 to reach the restarted n3',
    );
    for (const n of [n1, n2, n3b]) expect(n.alive).toBe(true);
  });

  it('a node restarted at a new port is taken back at its new address', async () => {
    onTestFailed(() => console.error(cluster.logs()));
    const [n1, n2, n3] = await bootThree();
    await Promise.all([n1, n2, n3].map((n) => n.call('waitForMembers', { count: 3 })));
    await n1.put('before', 1, { w: 3 });
    await n2.kill9();
    await n1.put('during', 2, { w: 2 });
    const n2b = await cluster.restart(n2, { port: 'new' });
    expect(n2b.address).not.toBe(n2.address);
    await Promise.all([n1, n2b, n3].map((n) => n.call('waitForMembers', { count: 3 })));
    // Until gossip tells a node the new address, it refuses n2's requests from there (KV_UNKNOWN_PEER).
    await eventually(async () => {
      for (const n of [n1, n3]) {
        const members = await n.call<{ id: string; address: string; status: string }[]>('members');
        if (!members.some((m) => m.id === 'n2' && m.address === n2b.address && m.status === 'alive')) return false;
      }
      return true;
    }, 'n1 and n3 to see n2 alive at its new address');
    // R=3 and W=3 need the restarted node itself.
    expect((await n2b.get('before', { r: 3 }))?.values).toEqual([1]);
    expect((await n3.get('during', { r: 3 }))?.values).toEqual([2]);
    await n2b.put('after', 3, { w: 3 });
    expect((await n1.get('after'))?.values).toEqual([3]);
  });
});
