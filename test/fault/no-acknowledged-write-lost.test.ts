import { afterEach, describe, expect, it } from 'vitest';
import { KvError } from 'quorumkv';
import { eventually, faultSeeds } from './helpers.js';
import { createTestCluster, seededRandom, type TestCluster } from 'quorumkv/testing';

const KEYS = ['k0', 'k1', 'k2', 'k3'];

let cluster: TestCluster<number> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});


describe('faults: partitions, drops, latency, crashes and restarts', () => {
  const seeds = faultSeeds([1, 20261125, 336434984]);

  it.each(seeds)('no acknowledged write is lost (seed %i)', async (seed) => {
    console.log(`fault test seed: ${seed} (replay with QKV_FAULT_SEED=${seed})`);
    const random = seededRandom(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    cluster = await createTestCluster<number>({ nodes: 5, network: { seed }, timeout: 250 });
    const ids = cluster.stores.map((s) => s.id);
    const acked = new Map<string, number>();
    const attempted = new Map<string, number[]>();
    let failures = 0;
    for (let step = 1; step <= 40; step++) {
      const roll = random();
      if (roll < 0.15) {
        const shuffled = [...ids].sort(() => random() - 0.5);
        const cut = 1 + Math.floor(random() * 2);
        cluster.network.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      } else if (roll < 0.25) {
        cluster.network.heal();
        cluster.network.setDropRate(random() < 0.5 ? 0 : 0.05);
        cluster.network.setLatency({ min: 0, max: Math.floor(random() * 5) });
      } else if (roll < 0.3) {
        cluster.network.heal();
        cluster.network.setDropRate(0);
        await cluster.restart(pick(ids));
      } else {
        const key = pick(KEYS);
        const via = cluster.store(pick(ids));
        attempted.set(key, [...(attempted.get(key) ?? []), step]);
        try {
          const read = await via.get(key).catch(() => undefined);
          await via.put(key, step, read ? { context: read.context } : {});
          acked.set(key, step);
        } catch (err) {
          if (!(err instanceof KvError)) throw err;
          expect(['KV_QUORUM_NOT_MET', 'KV_TIMEOUT']).toContain(err.code);
          failures++;
        }
      }
    }
    cluster.network.heal();
    cluster.network.setDropRate(0);
    cluster.network.setLatency(0);
    for (const [key, step] of acked) {
      const result = await eventually(() => cluster!.stores[0]!.get(key, { consistency: 'all', timeout: 1_000 }), 10_000);
      const values = result?.values ?? [];
      // The acknowledged value, or a later write (which saw it through its context), must be there.
      const laterOrSame = (attempted.get(key) ?? []).filter((s) => s >= step);
      expect(values.some((v) => laterOrSame.includes(v)), `key ${key}: acked ${step}, read ${JSON.stringify(values)}`).toBe(true);
    }
    console.log(`seed ${seed}: ${acked.size} keys acknowledged, ${failures} writes refused under faults`);
  });
});
