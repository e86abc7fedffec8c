import { afterEach, describe, expect, it } from 'vitest';
import { KvError } from 'quorumkv';
import { eventually, faultSeeds } from './helpers.js';
import { createTestCluster, seededRandom, type TestCluster } from 'quorumkv/testing';

/**
 * Causality under faults: random reads and read-modify-writes with stale
 * contexts, through random nodes, across partitions, drops and restarts.
 * After healing, a read of every replica must show exactly what dotted
 * version vectors promise:
 * - nothing invented, nothing twice;
 * - a value seen by a read whose write was acknowledged never comes back;
 * - every acknowledged value is either still there or was seen (directly) by
 *   some later write's read — nothing vanishes that nobody superseded.
 */
let cluster: TestCluster<number> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

interface Read {
  values: number[];
  context: string;
}
interface Write {
  value: number;
  saw: number[];
  acked: boolean;
}


describe('causality under faults', () => {
  const seeds = faultSeeds([7, 4242, 90210]);

  it.each(seeds)('siblings are exactly what the writes saw (seed %i)', async (seed) => {
    console.log(`causality seed: ${seed} (replay with QKV_FAULT_SEED=${seed})`);
    const random = seededRandom(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    cluster = await createTestCluster<number>({ nodes: 5, network: { seed }, timeout: 250 });
    const ids = cluster.stores.map((s) => s.id);
    const reads: Read[] = [{ values: [], context: '' }];
    const writes: Write[] = [];
    for (let step = 1; step <= 80; step++) {
      const roll = random();
      if (roll < 0.1) {
        const shuffled = [...ids].sort(() => random() - 0.5);
        const cut = 1 + Math.floor(random() * 2);
        cluster.network.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      } else if (roll < 0.18) {
        cluster.network.heal();
        cluster.network.setDropRate(random() < 0.5 ? 0 : 0.05);
        // Random latency: a different pair of replicas answers a read first each time.
        cluster.network.setLatency({ min: 0, max: Math.floor(random() * 4) });
      } else if (roll < 0.21) {
        cluster.network.heal();
        cluster.network.setDropRate(0);
        await cluster.restart(pick(ids));
      } else if (roll < 0.55) {
        const r = await cluster.store(pick(ids)).get('k', { r: 1 + Math.floor(random() * 2) }).catch((e: unknown) => {
          if (e instanceof KvError) return null;
          throw e;
        });
        if (r !== null) reads.push({ values: r?.values ?? [], context: r?.context ?? '' });
      } else {
        // A write with the context of a random earlier read (possibly stale, possibly none).
        const read = pick(reads);
        const w: Write = { value: step, saw: read.values, acked: false };
        writes.push(w);
        try {
          await cluster.store(pick(ids)).put('k', step, { ...(read.context ? { context: read.context } : {}), w: random() < 0.6 ? 1 : 2 });
          w.acked = true;
        } catch (err) {
          if (!(err instanceof KvError)) throw err;
        }
      }
    }
    cluster.network.heal();
    cluster.network.setDropRate(0);
    cluster.network.setLatency(0);
    const final = await eventually(() => cluster!.stores[0]!.get('k', { consistency: 'all', timeout: 1_000 }), 10_000);
    const values = final?.values ?? [];
    const attempted = new Set(writes.map((w) => w.value));
    expect(new Set(values).size, 'no value twice').toBe(values.length);
    for (const v of values) expect(attempted.has(v), `value ${v} was never written`).toBe(true);
    for (const w of writes.filter((x) => x.acked)) {
      for (const seen of w.saw) {
        expect(values.includes(seen), `value ${seen} came back although acknowledged write ${w.value} superseded it`).toBe(false);
      }
    }
    const sawByAnyWrite = new Set(writes.flatMap((w) => w.saw));
    for (const w of writes.filter((x) => x.acked)) {
      expect(values.includes(w.value) || sawByAnyWrite.has(w.value), `acknowledged ${w.value} vanished unseen`).toBe(true);
    }
    // Every replica agrees once repaired.
    const replicas = cluster.stores[0]!.ring.preferenceList('k', 3).map((n) => cluster!.store(n.id));
    for (let i = 0; i < 200; i++) {
      const locals = await Promise.all(replicas.map((s) => s.localGet('k')));
      if (new Set(locals.map((l) => JSON.stringify([...(l?.values ?? [])].sort()))).size === 1) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const locals = await Promise.all(replicas.map((s) => s.localGet('k')));
    expect(new Set(locals.map((l) => JSON.stringify([...(l?.values ?? [])].sort()))).size).toBe(1);
    console.log(`seed ${seed}: ${writes.length} writes (${writes.filter((w) => w.acked).length} acknowledged), ${values.length} siblings at the end`);
  });
});
