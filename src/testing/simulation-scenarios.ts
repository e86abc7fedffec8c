import { Nemesis, NEMESIS_FAULTS, type NemesisFault, type NemesisOptions } from './nemesis.js';
import { simulate, type SimulationOptions, type SimulationResult } from './simulation.js';
import {
  checkRegisterWorkload,
  checkSetWorkload,
  runRegisterWorkload,
  runSetWorkload,
  type SetCheckResult,
  type StaleRead,
  type WorkloadOptions,
} from './simulation-workloads.js';

/**
 * Every fault but `wipe`, for the strict-quorum register: a replica
 * restarted on empty storage legitimately breaks R + W > N until repaired.
 */
export const STRICT_QUORUM_FAULTS: readonly NemesisFault[] = Object.freeze(NEMESIS_FAULTS.filter((f) => f !== 'wipe'));

/** Options of {@link setScenario} and {@link registerScenario}. */
export interface ScenarioOptions<V> extends Omit<SimulationOptions<V>, 'seed'> {
  /** The seed of the run. */
  seed: number;
  /** How long the clients run under the nemesis, virtual ms. @default 30000 */
  duration?: number;
  /** Workload shape (keys, clients, think time). @default 3 keys, 4 clients */
  workload?: Omit<WorkloadOptions, 'duration'>;
  /** Nemesis settings. @default every fault (set), {@link STRICT_QUORUM_FAULTS} (register) */
  nemesis?: Omit<NemesisOptions, 'random'>;
}

/** What a scenario found (it throws when a check fails). */
export interface ScenarioReport {
  /** The checker's summary line. */
  readonly summary: string;
  /** The faults injected, in order. */
  readonly faults: readonly NemesisFault[];
  /** Writes acknowledged during the run. */
  readonly acked: number;
}

/** A scenario's check failed; `violations` lists what (lost elements, diverging owners or stale reads). */
export class ScenarioViolation extends Error {
  override readonly name = 'ScenarioViolation';
  /** The violations, as the checker reported them. */
  readonly violations: readonly unknown[];

  constructor(message: string, violations: readonly unknown[]) {
    super(message);
    this.violations = violations;
  }
}

function check(options: unknown): void {
  const o = options as { seed?: unknown } | null;
  if (typeof o !== 'object' || o === null || typeof o.seed !== 'number' || !Number.isInteger(o.seed)) {
    throw new TypeError(`Expected \`options.seed\` to be an integer, got ${o === null || typeof o !== 'object' ? String(o) : String(o.seed)}`);
  }
}

/**
 * The set scenario of issue 8: a seeded {@link Nemesis} (every fault)
 * against the cluster while the {@link runSetWorkload} clients add
 * elements; then the nemesis stops and heals, every node is started,
 * `repairAll` runs, and {@link checkSetWorkload} must find zero
 * acknowledged elements lost and identical owners. Rejects with a
 * `SimulationError` (seed, trace; its `cause` a {@link ScenarioViolation}) otherwise.
 */
export function setScenario(options: ScenarioOptions<string[]>): Promise<SimulationResult<ScenarioReport>> {
  check(options);
  const { duration = 30_000, workload, nemesis: nemesisOptions, ...simulation } = options;
  return simulate<string[], ScenarioReport>(simulation, async (sim) => {
    const nemesis = new Nemesis(sim, { ...nemesisOptions, random: sim.random('nemesis') });
    nemesis.start();
    const history = await runSetWorkload(sim, { ...workload, duration });
    await nemesis.stop();
    await sim.startAll();
    await sim.repairAll();
    const result: SetCheckResult = await checkSetWorkload(sim, history);
    if (!result.ok) {
      const detail = [
        ...result.lost.slice(0, 10).map((l) => `lost ${l.element} of ${l.key} on ${l.missingOn.join(',')}`),
        ...result.divergent.slice(0, 3).map((d) => `owners of ${d.key} diverge: ${JSON.stringify(d.owners)}`),
      ];
      throw new ScenarioViolation(`${result.summary}\n${detail.join('\n')}`, [...result.lost, ...result.divergent]);
    }
    return { summary: result.summary, faults: nemesis.events.map((e) => e.fault), acked: history.acked };
  });
}

/**
 * The strict-quorum scenario of issue 8: the same, with the
 * {@link runRegisterWorkload} clients, R + W > N and `sloppyQuorum: false`
 * (pass your own `store` options to change that), and
 * {@link STRICT_QUORUM_FAULTS} by default. Every read that started after a
 * write was acknowledged must return it or a causal successor, during the
 * run and after heal and repair.
 */
export function registerScenario(options: ScenarioOptions<string>): Promise<SimulationResult<ScenarioReport>> {
  check(options);
  const { duration = 30_000, workload, nemesis: nemesisOptions, ...simulation } = options;
  const strict: SimulationOptions<string> = {
    replication: { n: 3, r: 2, w: 2 },
    ...simulation,
    store: { sloppyQuorum: false, ...simulation.store },
  };
  return simulate<string, ScenarioReport>(strict, async (sim) => {
    const r = sim.replication;
    if (r.r + r.w <= r.n) throw new RangeError(`Expected R + W > N for the strict-quorum scenario, got N=${r.n} R=${r.r} W=${r.w}`);
    const nemesis = new Nemesis(sim, { faults: STRICT_QUORUM_FAULTS, ...nemesisOptions, random: sim.random('nemesis') });
    nemesis.start();
    const history = await runRegisterWorkload(sim, { ...workload, duration });
    await nemesis.stop();
    await sim.startAll();
    await sim.repairAll();
    const result = await checkRegisterWorkload(sim, history);
    if (!result.ok) {
      const detail = result.stale
        .slice(0, 10)
        .map((s: StaleRead) => `read of ${s.key} via ${s.via} at ${s.startedAt} ms returned ${JSON.stringify(s.values)}, missing acknowledged ${s.missed}`);
      throw new ScenarioViolation(`${result.summary}\n${detail.join('\n')}`, result.stale);
    }
    return { summary: result.summary, faults: nemesis.events.map((e) => e.fault), acked: history.acked };
  });
}
