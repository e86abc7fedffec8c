/**
 * Profiling driver: `npx tsx bench/profile.ts put|get [ops]` (`CODEC=off` for
 * the codec off). Runs a fixed number of quorum operations on a 5-node
 * in-process cluster (N3 R2 W2, 64 in flight) and prints wall time and CPU
 * per op. With `PROFILE=file.cpuprofile` it profiles the measured operations
 * only (after set-up and warm-up) and writes a `.cpuprofile` (open it in
 * Chrome DevTools or VS Code).
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { createTestCluster } from '../src/testing/index.js';

const kind = (process.argv[2] ?? 'put') as 'put' | 'get';
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
let next = 0;
const op = (i: number): Promise<unknown> =>
  kind === 'put' ? stores[i % NODES]!.put(`fresh:${i}`, value(i)) : stores[i % NODES]!.get(`key:${(i * 7919) % KEYS}`);
// warm-up
await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
  while (next < 2_000) await op(next++);
}));
next = 0;
const out = process.env.PROFILE;
const session = out ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
}
const c0 = process.cpuUsage();
const t0 = performance.now();
const start = 100_000;
await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
  while (next < OPS) await op(start + next++);
}));
const wall = performance.now() - t0;
const cpu = process.cpuUsage(c0);
if (session && out) {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(out, JSON.stringify(profile));
  session.disconnect();
}
console.log(`${kind}: ${OPS} ops, ${(wall / OPS * 1000).toFixed(1)} µs wall/op, ${((cpu.user + cpu.system) / OPS).toFixed(1)} µs cpu/op, ${(OPS / wall * 1000).toFixed(0)} ops/s`);
await cluster.stop();
