import { describe, expect, it } from 'vitest';
import {
  Nemesis,
  checkRegisterWorkload,
  checkSetWorkload,
  runRegisterWorkload,
  runSetWorkload,
  simulate,
  type NemesisFault,
  type SimulationResult,
} from 'quorumkv/testing';
import { faultSeeds } from './helpers.js';

/**
 * The deterministic fault simulation (issue 8): a seeded nemesis against a
 * 5-node cluster in virtual time while clients read and write; then heal,
 * repair, check. A failing seed replays exactly:
 *   QKV_FAULT_SEED=<seed> npx vitest run test/fault/simulation.test.ts
 * and `npm run test:fault -- --seeds 1000` explores more seeds.
 */

/** Every fault but `wipe`: a replica restarted on empty storage legitimately breaks R + W > N until it is repaired. */
const STRICT_FAULTS: readonly NemesisFault[] = ['partition', 'isolate', 'bridge', 'loss', 'latency', 'crash'];

async function setRun(seed: number, duration = 30_000): Promise<SimulationResult<string>> {
  return simulate<string[], string>({ seed }, async (sim) => {
    const nemesis = new Nemesis(sim, { random: sim.random('nemesis') });
    nemesis.start();
    const history = await runSetWorkload(sim, { duration });
    await nemesis.stop();
    await sim.startAll();
    await sim.repairAll(history.keys);
    const check = await checkSetWorkload(sim, history);
    expect(history.acked, 'acknowledged writes').toBeGreaterThan(50);
    expect(check.lost, `seed ${seed}: acknowledged elements lost`).toEqual([]);
    expect(check.divergent, `seed ${seed}: owners diverge`).toEqual([]);
    return `${check.summary}; faults: ${nemesis.events.map((e) => e.fault).join(',')}`;
  });
}

async function registerRun(seed: number, duration = 30_000): Promise<SimulationResult<string>> {
  return simulate<string, string>(
    // sloppyQuorum: false once the option exists (strict quorums are the only behaviour before it).
    { seed, replication: { n: 3, r: 2, w: 2 }, store: { sloppyQuorum: false } as Record<string, unknown> },
    async (sim) => {
      const nemesis = new Nemesis(sim, { random: sim.random('nemesis'), faults: STRICT_FAULTS });
      nemesis.start();
      const history = await runRegisterWorkload(sim, { duration });
      await nemesis.stop();
      await sim.startAll();
      await sim.repairAll(history.keys);
      const check = await checkRegisterWorkload(sim, history);
      expect(history.acked, 'acknowledged writes').toBeGreaterThan(50);
      expect(check.stale, `seed ${seed}: stale reads`).toEqual([]);
      return `${check.summary}; faults: ${nemesis.events.map((e) => e.fault).join(',')}`;
    },
  );
}

describe('fault simulation: set workload (zero acknowledged writes lost)', () => {
  it.each(faultSeeds([1, 2, 3, 20261201, 77]))('seed %i', async (seed) => {
    const result = await setRun(seed);
    console.log(result.value);
  });
});

describe('fault simulation: strict-quorum register (zero stale reads)', () => {
  it.each(faultSeeds([1, 4, 5, 20261202, 91]))('seed %i', async (seed) => {
    const result = await registerRun(seed);
    console.log(result.value);
  });
});

describe('fault simulation: replay', () => {
  it('the same seed gives the same history and trace hash, bit for bit; another seed does not', async () => {
    const a = await setRun(4242, 10_000);
    const b = await setRun(4242, 10_000);
    expect(b.history).toEqual(a.history);
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.steps).toBe(a.steps);
    expect(b.virtualMs).toBe(a.virtualMs);
    const c = await setRun(4243, 10_000);
    expect(c.traceHash).not.toBe(a.traceHash);
  });

  it('a node isolated for two virtual hours is declared down, then back alive after the heal, and nothing acknowledged is lost', async () => {
    // One-second gossip rounds (the usual production setting) keep two virtual hours cheap.
    const result = await simulate<string[], string>({ seed: 8, gossip: { interval: 1_000 } }, async (sim) => {
      const first = await runSetWorkload(sim, { duration: 2_000, clients: 2 });
      sim.network.isolate('n3');
      await sim.waitFor(() => sim.store('n1').members().find((m) => m.id === 'n3')?.status === 'down', {
        timeout: 30_000,
        what: 'n3 declared down',
      });
      const downAfter = sim.elapsed;
      const during = await runSetWorkload(sim, { duration: 2_000, clients: 2 });
      await sim.sleep(2 * 3_600_000);
      sim.network.heal();
      await sim.converged({ timeout: 30_000 });
      const keys = first.keys;
      await sim.repairAll(keys);
      for (const h of [first, during]) {
        const check = await checkSetWorkload(sim, h);
        expect(check.lost).toEqual([]);
        expect(check.divergent).toEqual([]);
      }
      return `n3 down after ${downAfter} virtual ms`;
    });
    expect(result.virtualMs).toBeGreaterThan(2 * 3_600_000);
    console.log(`${result.value}; ${(result.virtualMs / 3_600_000).toFixed(2)} virtual hours in ${(result.realMs / 1000).toFixed(1)} s`);
  }, 60_000);
});
