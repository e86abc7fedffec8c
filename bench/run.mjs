// `npm run bench`: compiles the benchmarks and the library sources with
// esbuild, the compiler tsup ships the package with, then runs them on plain
// `node`. Running them under tsx instead would measure code users never run:
// tsx compiles with esbuild's `keepNames`, which wraps every function created
// at run time in an `Object.defineProperty` call (measured: ~20% more CPU per
// in-process quorum put). Arguments and BENCH_* variables pass through.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = fileURLToPath(new URL('../.tmp/bench/', import.meta.url));
const entry = process.argv[2] ?? 'index';
await build({
  absWorkingDir: root,
  entryPoints: { index: 'bench/index.ts', 'tcp-child': 'bench/tcp-child.ts', profile: 'bench/profile.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
// --expose-gc: suites collect garbage between measured windows (bench/store.ts).
const run = spawnSync(process.execPath, ['--enable-source-maps', '--expose-gc', `${outdir}${entry}.js`, ...process.argv.slice(3)], { stdio: 'inherit', cwd: root });
process.exit(run.status ?? 1);
