import { afterEach, describe, expect, it } from 'vitest';
import { KvError, MemoryStorage, Store } from 'quorumkv';
import { TEST_CLUSTER_GOSSIP } from 'quorumkv/testing';
import { TcpTransport, type TcpTransportOptions } from '../../src/transport/index.js';
import { rejection } from '../helpers/rejection.js';
import { until } from '../helpers/until.js';

const SECRET = 'the cluster secret, 32+ bytes long';

let stores: Store[] = [];
let transports: TcpTransport[] = [];
afterEach(async () => {
  for (const s of stores) await s.stop();
  for (const t of transports) await t.stop();
  stores = [];
  transports = [];
});

function node(id: string, seeds: string[], options: TcpTransportOptions = {}, storage?: MemoryStorage): { store: Store; transport: TcpTransport } {
  const transport = new TcpTransport({ host: '127.0.0.1', port: 0, ...options });
  const store = new Store({ id, cluster: 'tcp-test', transport, seeds, gossip: TEST_CLUSTER_GOSSIP, timeout: 2_000, ...(storage ? { storage } : {}) });
  transports.push(transport);
  stores.push(store);
  return { store, transport };
}

describe('Stores over TcpTransport', () => {
  it('three stores on 127.0.0.1 (port 0) join through the first one; a put through one is read through another', async () => {
    const first = node('n1', [], { secret: SECRET });
    await first.store.start();
    expect(first.transport.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(first.transport.address).not.toBe('127.0.0.1:0');
    const seeds = [first.transport.address];
    const second = node('n2', seeds, { secret: SECRET });
    const third = node('n3', seeds, { secret: SECRET });
    await Promise.all([second.store.start(), third.store.start()]);
    await Promise.all(stores.map((s) => s.waitForMembers(3, { timeout: 10_000 })));
    const addresses = first.store.members().map((m) => [m.id, m.address]);
    expect(addresses).toEqual([
      ['n1', first.transport.address],
      ['n2', second.transport.address],
      ['n3', third.transport.address],
    ]);

    await second.store.put('user:1', { name: 'Ada', tags: new Set(['x']) });
    const read = await third.store.get('user:1', { consistency: 'all' });
    expect(read?.values).toEqual([{ name: 'Ada', tags: new Set(['x']) }]);
    await Promise.all(Array.from({ length: 50 }, (_, i) => stores[i % 3]!.put(`k${i}`, i)));
    for (let i = 0; i < 50; i++) expect((await stores[(i + 1) % 3]!.get(`k${i}`))?.values).toEqual([i]);

    for (const t of transports) {
      const s = t.stats();
      expect(s.handshakesFailed).toBe(0);
      expect(s.malformedFrames).toBe(0);
      expect(s.requestsReceived).toBeGreaterThan(0);
    }
  });

  it("400 writes at once through one store: each peer gets them in kv.apply-batch requests, and every write is on every replica", async () => {
    const first = node('n1', []);
    await first.store.start();
    const others = [node('n2', [first.transport.address]), node('n3', [first.transport.address])];
    await Promise.all(others.map((o) => o.store.start()));
    await Promise.all(stores.map((s) => s.waitForMembers(3, { timeout: 10_000 })));
    const received = (): number => others.reduce((n, o) => n + o.transport.stats().requestsReceived, 0);
    const before = received();
    await Promise.all(Array.from({ length: 400 }, (_, i) => first.store.put(`b${i}`, i)));
    // 800 replica writes (two peers each) in batches of up to 8: at least 100 requests, far fewer than 800.
    await until('the peers to receive every batch', () => received() - before >= 100);
    expect(received() - before).toBeLessThan(400);
    for (let i = 0; i < 400; i += 7) expect((await others[1]!.store.get(`b${i}`, { consistency: 'all' }))?.values).toEqual([i]);
    for (const t of transports) expect(t.stats().malformedFrames).toBe(0);
  });

  it('a node restarted at a new port is served by its peers from its first call (it announces its new address as it starts)', async () => {
    const first = node('n1', []);
    await first.store.start();
    const seeds = [first.transport.address];
    const second = node('n2', seeds);
    const storage = new MemoryStorage();
    const third = node('n3', seeds, {}, storage);
    await Promise.all([second.store.start(), third.store.start()]);
    await Promise.all(stores.map((s) => s.waitForMembers(3, { timeout: 10_000 })));
    await Promise.all(Array.from({ length: 20 }, (_, i) => first.store.put(`r${i}`, i)));
    const oldAddress = third.transport.address;
    await third.store.stop();
    // Back over the same storage, at a new ephemeral port, and used the moment start() resolves.
    const again = node('n3', seeds, {}, storage);
    await again.store.start();
    expect(again.transport.address).not.toBe(oldAddress);
    const reads = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => again.store.get(`r${i}`)));
    const refused = reads.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as KvError);
    expect(refused.map((e) => e.message)).toEqual([]);
    expect(reads.map((r) => (r as PromiseFulfilledResult<{ values: number[] } | undefined>).value?.values)).toEqual(
      Array.from({ length: 20 }, (_, i) => [i]),
    );
  });

  it('a node with a wrong secret cannot join, read or write, and is counted as an auth failure', async () => {
    const first = node('n1', [], { secret: SECRET });
    await first.store.start();
    const second = node('n2', [first.transport.address], { secret: SECRET });
    await second.store.start();
    await Promise.all([first.store.waitForMembers(2, { timeout: 10_000 }), second.store.waitForMembers(2, { timeout: 10_000 })]);

    const intruder = node('n3', [first.transport.address, second.transport.address], { secret: 'not the cluster secret at all!!' });
    await intruder.store.start();
    // Refused in the handshake: the node knows at once why it cannot join, and serves nothing.
    const joined = await rejection(intruder.store.waitForMembers(2, { timeout: 5_000 }));
    expect(joined.code).toBe('KV_AUTH_FAILED');
    expect((await rejection(intruder.store.put('k', 'v', { timeout: 300 }))).code).toBe('KV_AUTH_FAILED');
    expect((await rejection(intruder.store.get('k', { timeout: 300 }))).code).toBe('KV_AUTH_FAILED');
    // Its requests never reach the cluster's handlers: refused in the handshake.
    const err = await rejection(intruder.transport.request(first.transport.address, { type: 'gossip.syn' }));
    expect(['KV_AUTH_FAILED']).toContain(err.code);
    // Each side counts the failed handshakes it saw (the intruder keeps retrying its seeds).
    const until = Date.now() + 5_000;
    while (first.transport.stats().authFailures === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(first.transport.stats().authFailures).toBeGreaterThan(0);
    expect(intruder.transport.stats().authFailures).toBeGreaterThan(0);
    // The cluster does not know it.
    expect(first.store.members().map((m) => m.id)).toEqual(['n1', 'n2']);
    expect(second.store.members().map((m) => m.id)).toEqual(['n1', 'n2']);
    // And still works.
    await first.store.put('still', 'fine');
    expect((await second.store.get('still'))?.values).toEqual(['fine']);
  });
});
