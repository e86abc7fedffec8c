import { afterEach, describe, expect, it, vi } from 'vitest';
import { KvError, type RequestHandler } from 'quorumkv';
import { MemoryTransport } from 'quorumkv/internals';
import { MemoryNetwork } from 'quorumkv';
import { createTestCluster, type TestCluster } from 'quorumkv/testing';
import { ErrorCodes } from '../../src/errors/index.js';
import { until } from '../helpers/until.js';

let cluster: TestCluster<number> | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await cluster?.stop();
  cluster = undefined;
});

/** Counts the replica messages each node receives, by type; `older` nodes refuse kv.apply-batch as a release without it would. */
function watchReplicaMessages(older: ReadonlySet<string> = new Set()): Map<string, Map<string, number>> {
  const seen = new Map<string, Map<string, number>>();
  const start = MemoryTransport.prototype.start;
  vi.spyOn(MemoryTransport.prototype, 'start').mockImplementation(function (this: MemoryTransport, handler: RequestHandler) {
    const address = this.address;
    return start.call(this, (message, from) => {
      if (message.type.startsWith('kv.apply') || message.type.startsWith('kv.read')) {
        const byType = seen.get(address) ?? new Map<string, number>();
        seen.set(address, byType);
        byType.set(message.type, (byType.get(message.type) ?? 0) + 1);
        if (message.type.endsWith('-batch') && older.has(address)) {
          throw new KvError(ErrorCodes.INVALID_MESSAGE, `node ${address} has no handler for message type ${JSON.stringify(message.type)}`);
        }
      }
      return handler(message, from);
    });
  });
  return seen;
}

const count = (seen: Map<string, Map<string, number>>, node: string, type: string): number => seen.get(node)?.get(type) ?? 0;

/** Waits until every one of `keys` is stored on every node (W=2 acknowledges before the third has it). */
async function onEveryNode(c: TestCluster<number>, keys: readonly string[]): Promise<void> {
  const bytes = keys.map((k) => new TextEncoder().encode(k));
  for (const id of ['n1', 'n2', 'n3']) {
    const storage = c.storage(id);
    await until(`${id} to hold all ${keys.length} keys`, async () => {
      for (const k of bytes) if ((await storage.get(k)) === undefined) return false;
      return true;
    });
  }
}

/** Puts `<prefix>0` … `<prefix><n - 1>` (values 0 … n - 1) through store `via`, all at once, and waits until every node holds them. */
async function putAll(c: TestCluster<number>, via: number, prefix: string, n: number): Promise<string[]> {
  const keys = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  await Promise.all(keys.map((k, i) => c.stores[via]!.put(k, i)));
  await onEveryNode(c, keys);
  return keys;
}

describe('kv.apply-batch and kv.read-batch: the replica requests of one turn for one peer go in batches', () => {
  it('300 writes at once through one node reach each peer in batches, and every write is on every replica', async () => {
    const seen = watchReplicaMessages();
    cluster = await createTestCluster<number>({ nodes: 3, network: { batching: true } });
    const keys = await putAll(cluster, 0, 'k', 300);
    for (const peer of ['n2', 'n3']) {
      const batches = count(seen, peer, 'kv.apply-batch');
      const singles = count(seen, peer, 'kv.apply');
      expect(batches).toBeGreaterThan(0);
      // 300 writes to replicate: at most 8 in a batch, and far fewer messages than writes.
      expect(batches).toBeGreaterThanOrEqual(Math.ceil((300 - singles) / 8));
      expect(batches + singles).toBeLessThan(100);
    }
    for (let i = 0; i < 300; i += 37) expect((await cluster.stores[2]!.get(`k${i}`, { consistency: 'all' }))?.values).toEqual([i]);
  });

  it('a peer of an older release that refuses batches gets every write as single kv.apply requests; nothing is lost', async () => {
    const seen = watchReplicaMessages(new Set(['n3']));
    cluster = await createTestCluster<number>({ nodes: 3, network: { batching: true } });
    const first = await putAll(cluster, 0, 'a', 200);
    // n3 refused the batches it got; every write still reached it, one request each.
    expect(count(seen, 'n3', 'kv.apply-batch')).toBeGreaterThan(0);
    expect(count(seen, 'n3', 'kv.apply')).toBeGreaterThanOrEqual(200);
    // Later writes go to n3 one by one from the start, to n2 still in batches.
    const refusedBefore = count(seen, 'n3', 'kv.apply-batch');
    const n2Before = count(seen, 'n2', 'kv.apply-batch');
    const second = await putAll(cluster, 0, 'b', 100);
    expect(count(seen, 'n3', 'kv.apply-batch')).toBe(refusedBefore);
    expect(count(seen, 'n2', 'kv.apply-batch')).toBeGreaterThan(n2Before);
  });

  it('300 reads at once through one node reach each peer in batches and read what was written; an older peer gets single reads', async () => {
    const seen = watchReplicaMessages(new Set(['n3']));
    cluster = await createTestCluster<number>({ nodes: 3, network: { batching: true } });
    const keys = await putAll(cluster, 1, 'r', 300);
    const reads = await Promise.all(keys.map((k) => cluster!.stores[0]!.get(k, { consistency: 'all' })));
    expect(reads.map((r) => r?.values)).toEqual(keys.map((_, i) => [i]));
    expect(count(seen, 'n2', 'kv.read-batch')).toBeGreaterThanOrEqual(Math.ceil((300 - count(seen, 'n2', 'kv.read')) / 8));
    expect(count(seen, 'n2', 'kv.read-batch') + count(seen, 'n2', 'kv.read')).toBeLessThan(100);
    // n3 refused its batches: every read reached it alone all the same.
    expect(count(seen, 'n3', 'kv.read')).toBeGreaterThanOrEqual(300);
  });

  it('an in-process network asks for no batches unless told to (a message costs little there)', async () => {
    const seen = watchReplicaMessages();
    cluster = await createTestCluster<number>({ nodes: 3 });
    const keys = await putAll(cluster, 0, 'p', 50);
    expect(count(seen, 'n2', 'kv.apply-batch') + count(seen, 'n3', 'kv.apply-batch')).toBe(0);
    expect(count(seen, 'n2', 'kv.apply')).toBe(50);
    expect(cluster.stores[0]!.transport.capabilities.batchesRequests).toBe(false);
    expect(() => new MemoryNetwork({ batching: 'yes' as never })).toThrow(TypeError);
  });

  it('writes with an abort signal go alone (the batch cannot be aborted item by item)', async () => {
    const seen = watchReplicaMessages();
    cluster = await createTestCluster<number>({ nodes: 3, network: { batching: true } });
    const signal = new AbortController().signal;
    const keys = Array.from({ length: 40 }, (_, i) => `s${i}`);
    await Promise.all(keys.map((k, i) => cluster!.stores[0]!.put(k, i, { signal })));
    await onEveryNode(cluster, keys);
    expect(count(seen, 'n2', 'kv.apply-batch') + count(seen, 'n3', 'kv.apply-batch')).toBe(0);
    expect(count(seen, 'n2', 'kv.apply')).toBe(40);
  });
});
