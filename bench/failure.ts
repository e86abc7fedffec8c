/**
 * Failure-detection suite (`BENCH_SUITES=failure`): a 5-node in-process
 * cluster with the real defaults (250 ms gossip rounds, phi-accrual
 * detector), under a steady client load at half its measured capacity.
 *
 * - False downs: `member:down` (and `member:suspected`) events about nodes
 *   that never stopped, during `BENCH_FAILURE_MS` (default 60 s) of load.
 *   Goal: 0.
 * - Crash → down: a node goes silent (isolated on the network, no shutdown
 *   announcement, as after a crash or a cable cut); the time until every
 *   other node has emitted `member:down` for it. Median and max of
 *   `BENCH_FAILURE_TRIALS` (default 5) trials at different phases of the
 *   gossip round, under the same load. Goal: about 2 s.
 *
 * The in-process nodes share one event loop with the load generator, so
 * this is also the stall test: a busy loop must not look like a dead peer.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { KvError, QuorumNotMetError } from '../src/index.js';
import { createTestCluster, type TestCluster } from '../src/testing/index.js';
import { fmtOps, median, type Row } from './harness.js';

const NODES = 5;
const LOAD_MS = Math.max(1_000, Number(process.env.BENCH_FAILURE_MS ?? 60_000));
const TRIALS = Math.max(1, Number(process.env.BENCH_FAILURE_TRIALS ?? 5));
const CAPACITY_MS = 2_000;
const IN_FLIGHT = 64;
const KEYS = 2_000;
/**
 * Keys of the steady load. Its puts are blind (no context), so every put to
 * a key adds a sibling until `maxSiblings` (100) refuses the next with
 * KV_TOO_MANY_SIBLINGS: the load's key space must be large enough that no
 * key gets near that in a run (about 260k puts at 2026-11-25 speeds: under 3
 * per key). With 2,000 keys a faster store filled them during the 60 s row,
 * and the crash trials then counted those refusals as failed puts.
 */
const LOAD_KEYS = 100_000;
const VALUE = { pad: 'x'.repeat(100) };
/** Store defaults, spelled out: the test cluster's own gossip preset is faster. */
const GOSSIP = { interval: 250, timeout: 1_000 } as const;

interface Observed {
  at: number;
  observer: string;
  member: string;
  event: 'member:down' | 'member:suspected';
}

/** Closed-loop capacity: quorum puts per second with 64 in flight. */
async function capacity(cluster: TestCluster<typeof VALUE>): Promise<number> {
  const stores = cluster.stores;
  let i = 0;
  let done = 0;
  const end = performance.now() + CAPACITY_MS;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        const n = i++;
        await stores[n % NODES]!.put(`cap:${n % KEYS}`, VALUE);
        done++;
      }
    }),
  );
  return (done / (performance.now() - t0)) * 1000;
}

/**
 * An open-loop load of `rate` puts per second spread over the running
 * nodes `on()` names, until `stop()`; failed calls are counted, not thrown.
 */
function steadyLoad(
  cluster: TestCluster<typeof VALUE>,
  rate: number,
  on: () => readonly string[],
): { stop: () => Promise<{ ok: number; failed: number; codes: string; failures: { at: number; via: string }[] }> } {
  let ok = 0;
  let failed = 0;
  const codes = new Map<string, number>();
  const failures: { at: number; via: string }[] = [];
  let n = 0;
  let running = true;
  const pending = new Set<Promise<void>>();
  const t0 = performance.now();
  const tick = (): void => {
    if (!running) return;
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    const ids = on();
    while (n < due && pending.size < 4 * IN_FLIGHT) {
      const k = n++;
      const via = ids[k % ids.length]!;
      const issuedAt = performance.now();
      const p = cluster
        .store(via)
        .put(`load:${k % LOAD_KEYS}`, VALUE)
        .then(
          () => void ok++,
          (err: unknown) => {
            failed++;
            failures.push({ at: issuedAt, via });
            const code = err instanceof KvError ? (err instanceof QuorumNotMetError ? `${err.code}(${err.failures.map((f) => f.code).join('+')})` : err.code) : String(err);
            codes.set(code, (codes.get(code) ?? 0) + 1);
          },
        )
        .finally(() => pending.delete(p));
      pending.add(p);
    }
    timer = setTimeout(tick, 5);
  };
  let timer = setTimeout(tick, 5);
  return {
    async stop() {
      running = false;
      clearTimeout(timer);
      await Promise.allSettled([...pending]);
      return { ok, failed, codes: [...codes].map(([c, n]) => `${n} ${c}`).join(', '), failures };
    },
  };
}

async function waitFor(predicate: () => boolean, limitMs: number, what: string): Promise<void> {
  const end = performance.now() + limitMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`failure bench: timed out after ${limitMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs the suite. */
export async function failureBench(): Promise<Row[]> {
  const cluster = await createTestCluster<typeof VALUE>({ nodes: NODES, gossip: GOSSIP, timeout: 2_000, convergeTimeout: 20_000 });
  const observed: Observed[] = [];
  const t0 = performance.now();
  for (const store of cluster.stores) {
    for (const event of ['member:down', 'member:suspected'] as const) {
      store.on(event, (e) => observed.push({ at: performance.now() - t0, observer: store.id, member: e.member.id, event }));
    }
  }
  const ids = cluster.stores.map((s) => s.id);
  try {
    const cap = await capacity(cluster);
    const rate = cap / 2;

    // 1. False downs under a steady load at half capacity.
    const from = observed.length;
    const load = steadyLoad(cluster, rate, () => ids);
    await new Promise((r) => setTimeout(r, LOAD_MS));
    const loaded = await load.stop();
    const quiet = observed.slice(from);
    const falseDowns = quiet.filter((e) => e.event === 'member:down').length;
    const falseSuspicions = quiet.filter((e) => e.event === 'member:suspected').length;

    // 2. Crash -> down, under the same load, at different phases of the gossip round.
    const detections: number[] = [];
    /** When each victim was cut off: a put it was coordinating then cannot succeed. */
    const crashes: { victim: string; at: number }[] = [];
    let alive = ids;
    const load2 = steadyLoad(cluster, rate, () => alive);
    for (let t = 0; t < TRIALS; t++) {
      const victim = ids[(t * 2 + 1) % NODES]!;
      const others = ids.filter((id) => id !== victim);
      // Vary the phase: crash 0, 50, 100, ... ms into a round.
      await new Promise((r) => setTimeout(r, 1_000 + ((t * 50) % GOSSIP.interval)));
      alive = others;
      const crashAt = performance.now() - t0;
      crashes.push({ victim, at: performance.now() });
      cluster.network.isolate(victim);
      await waitFor(
        () => others.every((o) => observed.some((e) => e.event === 'member:down' && e.member === victim && e.observer === o && e.at >= crashAt)),
        15_000,
        `${victim} down everywhere`,
      );
      const downs = others.map((o) => observed.find((e) => e.event === 'member:down' && e.member === victim && e.observer === o && e.at >= crashAt)!.at);
      detections.push(Math.max(...downs) - crashAt);
      cluster.network.heal();
      await cluster.converged(20_000);
      alive = ids;
    }
    const loaded2 = await load2.stop();
    // Puts issued through a node shortly before it was cut off fail by their deadline: the
    // coordinator itself was gone. Every other failure would be a put through a live node.
    const throughLive = loaded2.failures.filter(
      (f) => !crashes.some((c) => c.victim === f.via && f.at <= c.at && f.at >= c.at - 2_000),
    ).length;
    const med = median(detections);
    const max = Math.max(...detections);
    const interval = GOSSIP.interval;
    return [
      {
        suite: 'failure',
        metric: `false downs in ${(LOAD_MS / 1000).toFixed(0)} s, 5 nodes, load at half capacity`,
        value: `${falseDowns} (suspected ${falseSuspicions})`,
        baseline: `load ${fmtOps(rate)} (capacity ${fmtOps(cap)}), ${loaded.ok} ok / ${loaded.failed} failed${loaded.failed > 0 ? ` (${loaded.codes})` : ''}`,
        ratio: '-',
        goal: `0 ${falseDowns === 0 ? 'PASS' : 'MISS'}`,
      },
      {
        suite: 'failure',
        metric: `crash -> member:down everywhere, median of ${TRIALS}, under load`,
        value: `${(med / 1000).toFixed(2)} s`,
        baseline: `gossip interval ${interval} ms`,
        ratio: `${(med / interval).toFixed(1)}x`,
        goal: `about 2 s ${med <= 2_500 ? 'PASS' : 'MISS'}`,
      },
      {
        suite: 'failure',
        metric: `crash -> member:down everywhere, max of ${TRIALS}, under load`,
        value: `${(max / 1000).toFixed(2)} s`,
        baseline:
          `gossip interval ${interval} ms; puts meanwhile: ${loaded2.ok} ok, ${loaded2.failed - throughLive} failed in flight ` +
          `through the node being cut off, ${throughLive} failed through live nodes${loaded2.failed > 0 ? ` (${loaded2.codes})` : ''}`,
        ratio: `${(max / interval).toFixed(1)}x`,
        goal: `< 3 s ${max < 3_000 ? 'PASS' : 'MISS'}`,
      },
    ];
  } finally {
    await cluster.stop();
  }
}
