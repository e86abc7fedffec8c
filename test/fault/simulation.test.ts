import { describe, expect, it } from 'vitest';
import { checkSetWorkload, registerScenario, runSetWorkload, setScenario, simulate, type ScenarioReport, type SimulationResult } from 'quorumkv/testing';
import { faultSeeds } from './helpers.js';

/**
 * The deterministic fault simulation (issue 8): a seeded nemesis against a
 * 5-node cluster in virtual time while clients read and write; then heal,
 * repair, check. A failing seed replays exactly:
 *   QKV_FAULT_SEED=<seed> npx vitest run test/fault/simulation.test.ts
 * and `npm run test:fault -- --seeds 1000` explores more seeds.
 */

const setRun = (seed: number, duration = 30_000): Promise<SimulationResult<ScenarioReport>> => setScenario({ seed, duration });
const registerRun = (seed: number, duration = 30_000): Promise<SimulationResult<ScenarioReport>> => registerScenario({ seed, duration });

describe('fault simulation: set workload (zero acknowledged writes lost)', () => {
  it.each(faultSeeds([1, 2, 3, 20261201, 77]))('seed %i', async (seed) => {
    const result = await setRun(seed);
    expect(result.value.acked, 'acknowledged writes').toBeGreaterThan(50);
    console.log(`${result.value.summary}; faults: ${result.value.faults.join(',')}`);
  }, 60_000);
});

describe('fault simulation: strict-quorum register (zero stale reads)', () => {
  it.each(faultSeeds([1, 4, 5, 20261202, 91]))('seed %i', async (seed) => {
    const result = await registerRun(seed);
    expect(result.value.acked, 'acknowledged writes').toBeGreaterThan(50);
    console.log(`${result.value.summary}; faults: ${result.value.faults.join(',')}`);
  }, 60_000);
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
  }, 60_000);

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
      await sim.repairAll();
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
