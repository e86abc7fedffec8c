/**
 * Explores seeds of the deterministic fault simulation (issue 8).
 *
 *   npm run test:fault -- --seeds 1000            # 1000 seeds of each scenario, from a random start
 *   npm run test:fault -- --seeds 200 --from 1    # seeds 1..200
 *   npm run test:fault -- --seed 123456 --trace   # replay one seed and print its trace
 *   npm run test:fault -- --scenario set          # only the set scenario ('set', 'register', 'both')
 *   npm run test:fault -- --duration 60000        # virtual ms of faults per run (default 30000)
 *
 * Prints every failing seed (with the command that replays it), seeds per
 * minute, and exits with status 1 when a seed failed.
 */
import { parseArgs } from 'node:util';
import { registerScenario, setScenario, SimulationError, type ScenarioReport, type SimulationResult } from '../src/testing/index.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '100' },
    from: { type: 'string' },
    seed: { type: 'string' },
    scenario: { type: 'string', default: 'both' },
    duration: { type: 'string', default: '30000' },
    trace: { type: 'boolean', default: false },
  },
});

function int(name: string, text: string | undefined, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`Expected --${name} to be an integer >= ${min}, got ${String(text)}`);
  return n;
}

const scenario = values.scenario;
if (scenario !== 'set' && scenario !== 'register' && scenario !== 'both') {
  throw new TypeError(`Expected --scenario to be 'set', 'register' or 'both', got ${String(scenario)}`);
}
const duration = int('duration', values.duration, 1);
const seeds: number[] =
  values.seed !== undefined
    ? [int('seed', values.seed, 0)]
    : (() => {
        const count = int('seeds', values.seeds, 1);
        const from = values.from === undefined ? Math.floor(Math.random() * 2 ** 31) : int('from', values.from, 0);
        return Array.from({ length: count }, (_, i) => (from + i) >>> 0);
      })();
const scenarios = scenario === 'both' ? (['set', 'register'] as const) : ([scenario] as const);

const failures: { scenario: string; seed: number; message: string }[] = [];
const started = performance.now();
let runs = 0;
let virtualMs = 0;
console.log(`fault simulation: ${seeds.length} seed(s) from ${seeds[0]}, scenario ${scenario}, ${duration} virtual ms of faults each`);
for (const seed of seeds) {
  for (const name of scenarios) {
    const run = name === 'set' ? setScenario : registerScenario;
    try {
      const result: SimulationResult<ScenarioReport> = await run({ seed, duration, log: false });
      runs++;
      virtualMs += result.virtualMs;
      if (values.trace) console.log(result.history.join('\n'));
      if (seeds.length === 1) console.log(`${name} seed ${seed}: ${result.value.summary}; trace ${result.traceHash}`);
    } catch (err) {
      runs++;
      const message = err instanceof Error ? err.message : String(err);
      failures.push({ scenario: name, seed, message });
      console.log(`FAIL ${name} seed ${seed}: ${message}`);
      console.log(`  replay: npm run test:fault -- --scenario ${name} --seed ${seed} --duration ${duration} --trace`);
      if (values.trace && err instanceof SimulationError) console.log(err.history.join('\n'));
    }
  }
  const done = runs;
  if (seeds.length > 1 && done % 20 === 0) {
    const minutes = (performance.now() - started) / 60_000;
    console.log(`  ${done} runs, ${failures.length} failed, ${(done / minutes).toFixed(0)} runs/min`);
  }
}
const minutes = (performance.now() - started) / 60_000;
console.log(
  `fault simulation: ${runs} runs (${seeds.length} seeds x ${scenarios.length} scenario(s)) in ${(minutes * 60).toFixed(1)} s: ` +
    `${(seeds.length / minutes).toFixed(1)} seeds/min (${(runs / minutes).toFixed(1)} runs/min), ` +
    `${(virtualMs / 3_600_000).toFixed(2)} virtual hours; ${failures.length} failed`,
);
if (failures.length > 0) {
  console.log(`failing seeds: ${failures.map((f) => `${f.scenario}:${f.seed}`).join(' ')}`);
  process.exitCode = 1;
}
