/**
 * Profiling driver: `npx tsx bench/profile.ts put|get [ops]` (`CODEC=off` for
 * the codec off). Runs a fixed number of quorum operations on a 5-node
 * in-process cluster (N3 R2 W2, 64 in flight) and prints wall time and CPU
 * per op. With `PROFILE=file.cpuprofile` it profiles the measured operations
 * only (after set-up and warm-up) and writes a `.cpuprofile` (open it in
 * Chrome DevTools or VS Code). With `ALLOC=file.heapprofile` it samples
 * allocations instead (a `.heapprofile`; with `ALLOC_LIVE=1`, only those
 * still alive at the end: what the operations retained; with
 * `ALLOC_LIVE=promoted`, those that outlived the young generation).
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { createTestCluster } from '../src/testing/index.js';

const kind = (process.argv[2] ?? 'put') as 'put' | 'get' | 'put25' | 'get25';
const OPS = Number(process.argv[3] ?? 20_000);
const IN_FLIGHT = 64;
const NODES = 5;
const KEYS = 2_000;

const cluster = await createTestCluster<{ n: number; pad: string }>({
  nodes: NODES,
  network: { codec: process.env.CODEC !== 'off' },
  timeout: 10_000,
  gossip: { interval: 1_000 },
});
const stores = cluster.stores;
const value = (n: number): { n: number; pad: string } => ({ n, pad: 'x'.repeat(100) });
if (kind === 'get') {
  for (let k = 0; k < KEYS; k += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => stores[(k + j) % NODES]!.put(`key:${k + j}`, value(k + j))));
  }
}
// put25 / get25: keys holding 25 blind versions of one actor; a put carries the
// context of one of them (so the key keeps 25), a get reads all 25 (as in bench/store.ts).
const SIB_KEYS = 400;
const contexts: string[][] = [];
if (kind === 'put25' || kind === 'get25') {
  const ring = stores[0]!.ring;
  const byId = new Map(stores.map((s) => [s.id, s]));
  let k = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (k < SIB_KEYS) {
      const key = k++;
      const store = byId.get(ring.preferenceList(`sib:${key}`, 3)[0]!.id)!;
      for (let s = 0; s < 25; s++) await store.put(`sib:${key}`, value(s));
      const local = await store.localGet(`sib:${key}`);
      contexts[key] = local!.siblings.map((s) => s.clock);
    }
  }));
}
let next = 0;
const op = (i: number): Promise<unknown> => {
  switch (kind) {
    case 'put':
      return stores[i % NODES]!.put(`fresh:${i}`, value(i));
    case 'get':
      return stores[i % NODES]!.get(`key:${(i * 7919) % KEYS}`);
    case 'get25':
      return stores[i % NODES]!.get(`sib:${i % SIB_KEYS}`);
    case 'put25': {
      // Round r supersedes the r-th oldest original version: 25 rounds per key.
      const j = i % (SIB_KEYS * 25);
      return stores[i % NODES]!.put(`sib:${j % SIB_KEYS}`, value(i), { context: contexts[j % SIB_KEYS]![Math.floor(j / SIB_KEYS)]! });
    }
  }
};
// warm-up
const WARM = kind === 'put25' ? 0 : 2_000;
await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
  while (next < WARM) await op(next++);
}));
next = 0;
const out = process.env.PROFILE;
const alloc = process.env.ALLOC;
const session = out || alloc ? new Session() : undefined;
if (session) {
  session.connect();
  if (out) {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  } else {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 512,
      // ALLOC_LIVE=1: only what is still alive at the end; =promoted: also what a full collection freed.
      includeObjectsCollectedByMajorGC: !process.env.ALLOC_LIVE || process.env.ALLOC_LIVE === 'promoted',
      includeObjectsCollectedByMinorGC: !process.env.ALLOC_LIVE,
    } as never);
  }
}
const c0 = process.cpuUsage();
const t0 = performance.now();
const start = kind === 'put25' ? 0 : 100_000;
await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
  while (next < OPS) await op(start + next++);
}));
const wall = performance.now() - t0;
const cpu = process.cpuUsage(c0);
if (session && out) {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(out, JSON.stringify(profile));
  session.disconnect();
} else if (session && alloc) {
  const { profile } = await session.post('HeapProfiler.stopSampling');
  writeFileSync(alloc, JSON.stringify(profile));
  session.disconnect();
}
console.log(`${kind}: ${OPS} ops, ${(wall / OPS * 1000).toFixed(1)} µs wall/op, ${((cpu.user + cpu.system) / OPS).toFixed(1)} µs cpu/op, ${(OPS / wall * 1000).toFixed(0)} ops/s`);
await cluster.stop();
