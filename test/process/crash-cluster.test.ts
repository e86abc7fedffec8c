/**
 * Crash safety in a 3-process TCP cluster (N3 W2 R2, every node on a durable
 * adapter in 'sync' mode): the test writes continuously at W=2 through all
 * three nodes and records each acknowledged key, SIGKILLs one node (seeded
 * choice and moment, with writes in flight through it), keeps writing
 * through the survivors, restarts the killed node at its port over its
 * directory, and then checks that
 * - the restarted node's own storage (`localGet`, before any read or repair
 *   could refill it) holds every key acknowledged through it before the
 *   kill: a coordinator that is a replica stores the version itself, on
 *   disk in 'sync' mode, before it counts itself toward W;
 * - every acknowledged key is readable at R=2 with its value, through every
 *   node (the restarted one included), and
 * - after `repair()` on the restarted node, its own storage (`localGet`)
 *   holds every acknowledged key: with N=3 on three nodes it is a replica
 *   of every key.
 *
 * Seeds are fixed (reproducible); `QKV_FAULT_SEED=n` replays one,
 * `QKV_FAULT_RANDOM=k` explores k random ones. Each run prints its seed.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { seededRandom } from '../../src/testing/index.js';
import { faultSeeds } from '../fault/helpers.js';
import { ProcessCluster, type NodeProcess } from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'quorumkv-crash-cluster-'));
afterAll(() => rm(root, { recursive: true, force: true }));

let cluster = new ProcessCluster();
afterEach(async () => {
  await cluster.close();
  cluster = new ProcessCluster();
});

/** The value written under key `i` in the run of `seed` (bytes included, to cross the wire codec). */
const valueOf = (seed: number, i: number) => ({ seed, i, bytes: new Uint8Array([i & 0xff, (i >> 8) & 0xff, seed & 0xff]) });
const keyOf = (i: number): string => `crash:${i}`;

type Adapter = 'level' | 'lmdb';

/** Boots three processes at once, then starts n1, and n2 and n3 with n1 as their seed, each over its own directory. */
async function bootThree(adapter: Adapter, dir: string): Promise<NodeProcess[]> {
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map((name) => cluster.boot(name)));
  const options = (n: NodeProcess, seeds: string[]) => ({
    nodeId: n.name,
    seeds,
    storage: { adapter, path: join(dir, n.name), durability: 'sync' as const },
  });
  const [n1, n2, n3] = nodes as [NodeProcess, NodeProcess, NodeProcess];
  await cluster.start(n1, options(n1, []));
  await Promise.all([n2, n3].map((n) => cluster.start(n, options(n, [n1.address]))));
  await Promise.all(nodes.map((n) => n.call('waitForMembers', { count: 3 })));
  return nodes;
}

/**
 * Writes keys 0, 1, 2, … at W=2 with `inFlight` puts outstanding, each
 * through the next live node in turn, until `stop()`; `acked` maps the
 * keys whose put resolved to the node that coordinated it. A put that fails (its coordinator killed, or a
 * quorum not reached in the moment of the kill) is not acknowledged, and is
 * not retried.
 */
function writer(nodes: readonly NodeProcess[], seed: number, inFlight: number) {
  const acked = new Map<number, string>();
  let next = 0;
  let stopped = false;
  const loops = Array.from({ length: inFlight }, async () => {
    while (!stopped) {
      const i = next++;
      const live = nodes.filter((n) => n.alive);
      const through = live[i % live.length] as NodeProcess;
      try {
        await through.put(keyOf(i), valueOf(seed, i), { w: 2, timeout: 2_000 });
        acked.set(i, through.name);
      } catch {
        // Not acknowledged: nothing is promised about it.
      }
    }
  });
  return {
    acked,
    /** Resolves once `count` more keys are acknowledged. */
    async until(count: number): Promise<void> {
      const target = acked.size + count;
      const deadline = Date.now() + 15_000;
      while (acked.size < target) {
        if (Date.now() > deadline) throw new Error(`the writer got ${acked.size} of ${target} acknowledgements in 15 s`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

const seeds = faultSeeds([4242]);

describe.each(['level', 'lmdb'] as const)('crash safety in a 3-process TCP cluster: %s, sync durability', (adapter) => {
  it.each(seeds)('every write acknowledged at W=2 survives a SIGKILL and a restart (seed %i)', async (seed) => {
    onTestFailed(() => console.error(cluster.logs()));
    const random = seededRandom(seed);
    const victimIndex = Math.floor(random() * 3);
    const killAfter = 100 + Math.floor(random() * 300);
    const inFlight = 4 + Math.floor(random() * 12);
    const dir = join(root, `${adapter}-${seed}`);
    const nodes = await bootThree(adapter, dir);
    const victim = nodes[victimIndex] as NodeProcess;
    console.log(
      `crash cluster ${adapter}: seed ${seed} (SIGKILL ${victim.name} after ${killAfter} acks, ${inFlight} writes in flight)`,
    );

    const w = writer(nodes, seed, inFlight);
    await w.until(killAfter);
    await victim.kill9();
    // The survivors keep acknowledging W=2 writes while it is down.
    await w.until(100);
    await w.stop();
    const acked = [...w.acked.keys()].sort((a, b) => a - b);
    const ackedByVictim = acked.filter((i) => w.acked.get(i) === victim.name);
    expect(ackedByVictim.length, 'writes acknowledged through the victim before the kill').toBeGreaterThan(0);

    const restarted = await cluster.restart(victim, { port: 'same' });
    // First thing, before reads (read repair) or a repair could refill it: its own durable writes.
    const lost: string[] = [];
    for (const i of ackedByVictim) {
      const local = await restarted.call<{ values: unknown[] } | null>('localGet', { key: keyOf(i) });
      if (JSON.stringify(local?.values) !== JSON.stringify([valueOf(seed, i)])) lost.push(keyOf(i));
    }
    expect(lost, `seed ${seed}: writes ${victim.name} acknowledged as coordinator, missing after its restart`).toEqual([]);
    const live = nodes.map((n) => (n === victim ? restarted : n));
    await Promise.all(live.map((n) => n.call('waitForMembers', { count: 3 })));

    // Every acknowledged key, at R=2, through each node.
    for (const through of live) {
      const wrong: string[] = [];
      for (const i of acked) {
        const got = await through.get(keyOf(i), { r: 2 });
        if (JSON.stringify(got?.values) !== JSON.stringify([valueOf(seed, i)])) {
          wrong.push(`${keyOf(i)}: ${JSON.stringify(got?.values)}`);
        }
      }
      expect(wrong, `seed ${seed}: acknowledged keys read through ${through.name} at R=2`).toEqual([]);
    }

    // After a repair, the restarted node holds every key itself (it is a replica of each).
    await restarted.call('repair', { timeout: 10_000 }, 15_000);
    const missing: string[] = [];
    for (const i of acked) {
      const local = await restarted.call<{ values: unknown[] } | null>('localGet', { key: keyOf(i) });
      if (JSON.stringify(local?.values) !== JSON.stringify([valueOf(seed, i)])) missing.push(keyOf(i));
    }
    expect(missing, `seed ${seed}: keys missing from ${victim.name}'s own storage after repair`).toEqual([]);
    for (const n of live) expect(n.alive).toBe(true);
  }, 40_000);
});
