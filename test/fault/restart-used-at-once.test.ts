import { afterEach, describe, expect, it } from 'vitest';
import { KvError, Store } from 'quorumkv';
import { eventually, faultSeeds } from './helpers.js';
import { createTestCluster, seededRandom, type TestCluster } from 'quorumkv/testing';

const KEYS = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
const gossip = { interval: 50, suspectAfterRounds: 10, downAfterRounds: 20, timeout: 200 } as const;

let cluster: TestCluster<number> | undefined;
const extra: Store<number>[] = [];
afterEach(async () => {
  await Promise.all(extra.splice(0).map((s) => s.stop()));
  await cluster?.stop();
  cluster = undefined;
});

/**
 * A register workload (N3 R2 W2, so R + W > N) while nodes crash and restart
 * and are used the moment `start()` resolves — sometimes cut off from
 * everyone. A restarted node must never act as a ring of one: every
 * acknowledged write survives, and every successful read returns the latest
 * acknowledged value or a later write.
 */
describe('faults: a restarted node is used at once', () => {
  const seeds = faultSeeds([7, 20261126, 99991]);

  it.each(seeds)('no acknowledged write is lost and no read is stale (seed %i)', async (seed) => {
    console.log(`fault test seed: ${seed} (replay with QKV_FAULT_SEED=${seed})`);
    const random = seededRandom(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    cluster = await createTestCluster<number>({ nodes: 5, network: { seed }, timeout: 300, gossip });
    const c = cluster;
    const ids = c.stores.map((s) => s.id);
    const live = new Map<string, Store<number>>(c.stores.map((s) => [s.id, s]));
    /** key → [step of the latest acknowledged write, every step attempted after it]. */
    const acked = new Map<string, number>();
    const attempted = new Map<string, number[]>();
    let refused = 0;
    let stale = 0;
    let reads = 0;

    const restartAtOnce = async (id: string, isolate: boolean): Promise<void> => {
      await live.get(id)!.stop();
      if (isolate) c.network.isolate(id);
      const fresh = new Store<number>({
        id,
        cluster: 'test',
        transport: c.network.transport(id),
        storage: c.storage(id),
        seeds: [id === 'n1' ? 'n2' : 'n1'],
        replication: { n: 3, r: 2, w: 2 },
        gossip,
        timeout: 300,
      });
      extra.push(fresh);
      await fresh.start(); // no waiting for the cluster: used right away below
      live.set(id, fresh);
    };

    for (let step = 1; step <= 60; step++) {
      const roll = random();
      if (roll < 0.12) {
        c.network.heal();
        await restartAtOnce(pick(ids), random() < 0.5);
        continue;
      }
      if (roll < 0.2) {
        c.network.heal();
        continue;
      }
      const key = pick(KEYS);
      const via = live.get(pick(ids))!;
      try {
        const read = await via.get(key);
        reads++;
        const floor = acked.get(key);
        if (floor !== undefined) {
          const allowed = new Set([floor, ...(attempted.get(key) ?? []).filter((s) => s > floor)]);
          if (!(read?.values ?? []).some((v) => allowed.has(v))) stale++;
        }
        attempted.set(key, [...(attempted.get(key) ?? []), step]);
        await via.put(key, step, read ? { context: read.context, consistency: random() < 0.3 ? 'all' : 'quorum' } : {});
        acked.set(key, step);
      } catch (err) {
        if (!(err instanceof KvError)) throw err;
        expect(['KV_QUORUM_NOT_MET', 'KV_TIMEOUT', 'KV_NOT_JOINED']).toContain(err.code);
        refused++;
      }
    }
    c.network.heal();
    expect(stale, 'reads that missed an acknowledged write').toBe(0);
    const reader = live.get('n1')!;
    for (const [key, step] of acked) {
      const result = await eventually(() => reader.get(key, { consistency: 'all', timeout: 1_000 }), 10_000);
      const allowed = new Set([step, ...(attempted.get(key) ?? []).filter((s) => s > step)]);
      expect((result?.values ?? []).some((v) => allowed.has(v)), `key ${key}: acked ${step}, read ${JSON.stringify(result?.values)}`).toBe(true);
    }
    console.log(`seed ${seed}: ${acked.size} keys acknowledged, ${reads} reads, ${refused} calls refused under faults`);
  });
});
