/**
 * Crash safety of the durable adapters: a child process writes through a
 * Store in 'sync' mode, reporting each acknowledged key; the test SIGKILLs
 * it after a seeded number of acknowledgements (with writes in flight),
 * restarts the node over the same directory and checks that every
 * acknowledged key is there with its value.
 *
 * Seeds are fixed (reproducible); `QKV_FAULT_SEED=n` replays one,
 * `QKV_FAULT_RANDOM=k` explores k random ones. Each run prints its seed.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryNetwork, Store } from '../../src/index.js';
import { seededRandom } from '../../src/testing/index.js';
import { faultSeeds } from '../fault/helpers.js';
import { CRASH_NODE_ID, crashKey, crashStorage, crashValue, type CrashWriterOptions } from './crash-shared.js';

const WRITER = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** How long the writer may take to boot and start writing (tsx compiles on first load). */
const BOOT_TIMEOUT = 20_000;

const root = mkdtempSync(join(tmpdir(), 'quorumkv-crash-'));
afterAll(() => rm(root, { recursive: true, force: true }));

const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    }
  }
  children.clear();
});

interface CrashRun {
  /** Indexes of the writes the child acknowledged before it was killed. */
  readonly acked: number[];
  /** How the child ended. */
  readonly signal: NodeJS.Signals | null;
  readonly log: string;
}

/** Starts a writer, SIGKILLs it once `killAfter` writes are acknowledged, resolves once it is gone. */
function crashWriter(options: CrashWriterOptions, killAfter: number): Promise<CrashRun> {
  const child = fork(WRITER, [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  children.add(child);
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const acked: number[] = [];
  return new Promise<CrashRun>((resolve, reject) => {
    const boot = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the writer did not start writing within ${BOOT_TIMEOUT} ms:\n${log}`));
    }, BOOT_TIMEOUT);
    child.on('message', (m: { acked?: number; started?: boolean }) => {
      if (m.started === true) clearTimeout(boot);
      if (typeof m.acked !== 'number') return;
      acked.push(m.acked);
      if (acked.length === killAfter) child.kill('SIGKILL');
    });
    child.once('exit', (code, signal) => {
      clearTimeout(boot);
      if (signal !== 'SIGKILL') reject(new Error(`the writer exited by itself (${signal ?? `code ${code}`}):\n${log}`));
      else resolve({ acked, signal, log });
    });
    child.send(options);
  });
}

const seeds = faultSeeds([11, 2024, 777]);

describe.each(['level', 'lmdb'] as const)('crash safety: %s, sync durability', (adapter) => {
  it.each(seeds)('every acknowledged write survives a SIGKILL (seed %i)', async (seed) => {
    const random = seededRandom(seed);
    const killAfter = 200 + Math.floor(random() * 800);
    const inFlight = 1 + Math.floor(random() * 32);
    const path = join(root, `${adapter}-${seed}`);
    console.log(`crash safety ${adapter}: seed ${seed} (kill after ${killAfter} acks, ${inFlight} writes in flight)`);
    const run = await crashWriter({ adapter, path, durability: 'sync', seed, inFlight }, killAfter);
    expect(run.acked.length).toBeGreaterThanOrEqual(killAfter);

    // The restart: the same node over the same directory.
    const net = new MemoryNetwork();
    const store = new Store({
      id: CRASH_NODE_ID,
      cluster: 'crash',
      transport: net.transport(CRASH_NODE_ID),
      storage: crashStorage({ adapter, path, durability: 'sync' }),
      replication: { n: 1, r: 1, w: 1 },
    });
    await store.start();
    try {
      const lost: number[] = [];
      const wrong: number[] = [];
      for (const i of run.acked) {
        const got = await store.get(crashKey(i));
        if (got === undefined) lost.push(i);
        else if (got.values.length !== 1 || got.values[0] !== crashValue(seed, i)) wrong.push(i);
      }
      expect({ lost, wrong }, `seed ${seed}: acknowledged writes lost or changed`).toEqual({ lost: [], wrong: [] });
      // Writes in flight at the kill may or may not be there, but never damaged.
      const last = Math.max(...run.acked);
      for (let i = last + 1; i < last + 1 + inFlight; i++) {
        const got = await store.get(crashKey(i));
        if (got !== undefined) expect(got.values).toEqual([crashValue(seed, i)]);
      }
      // The node goes on writing after the restart.
      await store.put('after-restart', 1);
      expect((await store.get('after-restart'))?.values).toEqual([1]);
    } finally {
      await store.stop();
    }
  });
});
