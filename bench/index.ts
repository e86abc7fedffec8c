/**
 * Benchmark entry point: `npx tsx bench/index.ts` (or `npm run bench`).
 * Every figure is printed next to a baseline measured in the same run.
 *
 * @module
 */
import os from 'node:os';
import { printTable, type Row } from './harness.js';
import { ringBench } from './ring.js';
import { storeBench } from './store.js';

/** A suite returns its rows; it measures its own baselines. */
type Suite = () => Promise<Row[]>;

// Register suites here: they run in order, one table at the end.
// `BENCH_SUITES=store` (comma-separated names) runs only some of them.
const all: Record<string, Suite> = {
  ring: ringBench,
  store: storeBench,
  tcp: async () => (await import('./tcp.js')).tcpBench(),
  merkle: async () => (await import('./merkle.js')).merkleBench(),
  failure: async () => (await import('./failure.js')).failureBench(),
  storage: async () => (await import('./storage.js')).storageBench(),
};
const only = process.env.BENCH_SUITES?.split(',').map((s) => s.trim());
const suites: Suite[] = Object.entries(all)
  .filter(([name]) => only === undefined || only.includes(name))
  .map(([, suite]) => suite);

const rows: Row[] = [];
for (const suite of suites) rows.push(...(await suite()));
console.log(`node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}\n`);
printTable(rows);
