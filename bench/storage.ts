/**
 * The `storage` suite: the durable adapters (LevelStorage on classic-level,
 * LmdbStorage on lmdb) through a Store, against the raw engine doing the
 * same work in the same run.
 *
 * - **single node**, each adapter x durability, 64 operations in flight:
 *   the adapter doing what a put asks of it (read the key's record, write
 *   the new one under the key's token) against the raw engine reading the
 *   key's value then writing one of the same size at the same durability
 *   and concurrency, and the adapter's read against the engine's: the ratio
 *   is the adapter's cost over the engine, goal <= 1.5x. Then
 *   `store.put`/`store.get` through a one-node Store over the adapter
 *   against the same raw figures (the difference is mostly the Store's own
 *   CPU per operation).
 * - **3-node in-process cluster** (n=3, r=w=2) per adapter (sync), against
 *   the same cluster on MemoryStorage.
 * - **RSS** of a node loaded with 1 KB values, measured in a child process
 *   at half and at all of `BENCH_STORAGE_KEYS` keys (default 100,000; the
 *   issue's figure is `BENCH_STORAGE_KEYS=1000000`), and the RSS a
 *   full-range scan adds (streamed, so it should add little). Goal: flat,
 *   under 300 MB.
 *
 * Every compared figure comes from alternating windows in one process:
 * everything compared is open and loaded first, then each round runs one
 * window of each (in turn reversed every other round, so a drift in the
 * machine's load weighs on both alike). A figure is the median of its
 * windows; a ratio is the median of the per-round ratios. The machine's
 * noise (other processes, compactions, the disk) thus falls on both sides.
 *
 * `BENCH_STORAGE_MS` sets a window (default 300 ms), `BENCH_STORAGE_ROUNDS`
 * the rounds (default 7), `BENCH_STORAGE_PARTS` the parts to run
 * (comma-separated `single,cluster,rss`; default all).
 *
 * @module
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  LevelStorage,
  LmdbStorage,
  MemoryNetwork,
  MemoryStorage,
  Store,
  type LevelEngineModule,
  type LmdbEngineModule,
  type StorageAdapter,
} from '../src/index.js';
import { fmtOps, fmtRatio, median, type Row } from './harness.js';

const IN_FLIGHT = 64;
const WINDOW_MS = Number(process.env.BENCH_STORAGE_MS ?? 300);
const ROUNDS = Math.max(1, Number(process.env.BENCH_STORAGE_ROUNDS ?? 7));
const PARTS = new Set((process.env.BENCH_STORAGE_PARTS ?? 'single,cluster,rss').split(',').map((p) => p.trim()));
const KEYS = 20_000;
const VALUE_BYTES = 200;
const RSS_KEYS = Number(process.env.BENCH_STORAGE_KEYS ?? 100_000);
const SELF = fileURLToPath(import.meta.url);

type Kind = 'level' | 'lmdb';
type Durability = 'sync' | 'async';

const enc = new TextEncoder();
const keyOf = (i: number): string => `bench-key-${i % KEYS}`;
const value = 'v'.repeat(VALUE_BYTES);

/** Runs `op(0), op(1), …` from 64 concurrent loops for `ms`; ops/s. */
async function timed(op: (i: number) => Promise<unknown>, ms = WINDOW_MS): Promise<number> {
  let started = 0;
  let done = 0;
  const t0 = performance.now();
  const until = t0 + ms;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < until) {
        await op(started++);
        done++;
      }
    }),
  );
  return (done / (performance.now() - t0)) * 1000;
}

/** The medians of alternating windows of each operation, and each one's median cost over `base` (per round). */
interface Alternated<K extends string> {
  readonly ops: Record<K, number>;
  /** Per operation: the median over rounds of `base`'s ops/s divided by its own in that round. */
  readonly cost: Record<K, number>;
}

/**
 * Runs `ROUNDS` rounds of one window per operation, in turn reversed every
 * other round, and takes medians (see the module's description).
 */
async function alternate<K extends string>(base: NoInfer<K>, ops: Record<K, (i: number) => Promise<unknown>>): Promise<Alternated<K>> {
  const names = Object.keys(ops) as K[];
  const rates = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) rates[name].push(await timed(ops[name]));
  }
  const out = { ops: {} as Record<K, number>, cost: {} as Record<K, number> };
  for (const name of names) {
    out.ops[name] = median(rates[name]);
    out.cost[name] = median(rates[name].map((r, i) => (rates[base][i] as number) / r));
  }
  if (process.env.BENCH_VERBOSE) {
    for (const name of names) console.error(`  ${name}: ${rates[name].map((r) => fmtOps(r)).join(', ')}`);
  }
  return out;
}

function adapter(kind: Kind, path: string, durability: Durability): LevelStorage | LmdbStorage {
  return kind === 'level' ? new LevelStorage({ path, durability }) : new LmdbStorage({ path, durability });
}

/** A raw engine: read a key's value, write one; at the adapter's durability. */
interface RawEngine {
  read(key: Uint8Array): Promise<Uint8Array | undefined> | Uint8Array | undefined;
  write(key: Uint8Array, value: Uint8Array): Promise<unknown>;
  close(): Promise<void>;
}

async function rawEngine(kind: Kind, path: string, durability: Durability): Promise<RawEngine> {
  if (kind === 'level') {
    const { ClassicLevel } = (await import('classic-level')) as unknown as LevelEngineModule;
    const db = new ClassicLevel(path, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open({ createIfMissing: true });
    const sync = durability === 'sync';
    return {
      read: (key) => db.get(key),
      // One put per write, as an application would; LevelDB itself groups concurrent writers.
      write: (key, v) => db.batch([{ type: 'put', key, value: v }], { sync }),
      close: () => db.close(),
    };
  }
  const lmdb = (await import('lmdb')) as unknown as LmdbEngineModule;
  const db = lmdb.open({ path: join(path, 'data.mdb'), keyEncoding: 'binary', encoding: 'binary', compression: false, overlappingSync: true, pageSize: 8192, mapSize: 2 ** 38 });
  return {
    read: (key) => db.get(key),
    write: async (key, v) => {
      await db.put(key, v);
      if (durability === 'sync') await db.flushed;
    },
    close: () => db.close(),
  };
}

async function singleNodeRows(kind: Kind, durability: Durability, root: string): Promise<Row[]> {
  const name = kind === 'level' ? 'LevelStorage' : 'LmdbStorage';
  const net = new MemoryNetwork();
  const storage = adapter(kind, join(root, `${kind}-${durability}-node`), durability);
  const store = new Store({ id: 'b', transport: net.transport('b'), storage, replication: { n: 1, r: 1, w: 1 } });
  await store.start();
  for (let i = 0; i < KEYS; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => store.put(keyOf(i + j), value)));
  // The adapter alone, doing what the store asks of it: a read, then a write
  // of the record under the key's own token (put); a read (get).
  const keyBytes = Array.from({ length: KEYS }, (_, i) => enc.encode(keyOf(i)));
  const tokenOf = new Map<string, number>();
  for await (const entry of storage.scan()) tokenOf.set(Buffer.from(entry.key).toString(), entry.token);
  const tokens = keyBytes.map((k) => tokenOf.get(Buffer.from(k).toString()) ?? 0);
  const sample = (await storage.get(keyBytes[0] as Uint8Array)) ?? new Uint8Array(VALUE_BYTES);
  // The raw engine, beside it, loaded with records of the size the store writes (value, clock, framing).
  const raw = await rawEngine(kind, join(root, `${kind}-${durability}-raw`), durability);
  const rawValue = new Uint8Array(sample.length + 4).fill(1); // + the adapter's 4-byte token
  for (let i = 0; i < KEYS; i += 1000) await Promise.all(keyBytes.slice(i, i + 1000).map((k) => raw.write(k, rawValue)));

  const puts = await alternate('raw', {
    raw: async (i) => {
      const key = keyBytes[i % KEYS] as Uint8Array;
      await raw.read(key);
      await raw.write(key, rawValue);
    },
    adapter: async (i) => {
      const key = keyBytes[i % KEYS] as Uint8Array;
      await storage.get(key);
      await storage.put(key, tokens[i % KEYS] as number, sample);
    },
    store: (i) => store.put(keyOf(i), value),
  });
  const gets = await alternate('raw', {
    raw: async (i) => raw.read(keyBytes[i % KEYS] as Uint8Array),
    adapter: (i) => storage.get(keyBytes[i % KEYS] as Uint8Array),
    store: (i) => store.get(keyOf(i)),
  });
  await store.stop();
  await raw.close();
  const engine = kind === 'level' ? 'classic-level' : 'lmdb';
  const row = (op: string, ours: number, base: number, cost: number, what: string): Row => ({
    suite: 'storage',
    metric: `${name} ${durability}: ${op}, 64 in flight`,
    value: fmtOps(ours),
    baseline: `${fmtOps(base)} raw ${engine} (${what})`,
    ratio: `${cost.toFixed(2)}x`,
    goal: `cost <= 1.5x ${cost <= 1.5 ? 'PASS' : 'MISS'}`,
  });
  const storeRow = (op: string, ours: number, base: number, cost: number, what: string): Row => ({
    ...row(`store.${op} through a 1-node Store`, ours, base, cost, what),
    goal: '(store CPU; no goal)',
  });
  return [
    row('adapter read + put', puts.ops.adapter, puts.ops.raw, puts.cost.adapter, 'read + write'),
    row('adapter get', gets.ops.adapter, gets.ops.raw, gets.cost.adapter, 'read'),
    storeRow('put', puts.ops.store, puts.ops.raw, puts.cost.store, 'read + write'),
    storeRow('get', gets.ops.store, gets.ops.raw, gets.cost.store, 'read'),
  ];
}

/** A started 3-node in-process cluster (n=3, r=w=2) over `storage`. */
async function startCluster(storage: (id: string) => StorageAdapter, name: string): Promise<Store[]> {
  const net = new MemoryNetwork();
  const ids = ['c0', 'c1', 'c2'].map((id) => `${name}-${id}`);
  const stores = ids.map(
    (id, i) =>
      new Store({
        id,
        cluster: `bench-storage-${name}`,
        transport: net.transport(id),
        storage: storage(id),
        seeds: i === 0 ? [] : [ids[0] as string],
        replication: { n: 3, r: 2, w: 2 },
      }),
  );
  for (const s of stores) await s.start();
  await Promise.all(stores.map((s) => s.waitForMembers(3, { timeout: 30_000 })));
  return stores;
}

async function clusterRows(root: string): Promise<Row[]> {
  const clusters = {
    memory: await startCluster(() => new MemoryStorage(), 'memory'),
    level: await startCluster((id) => adapter('level', join(root, `level-cluster-${id}`), 'sync'), 'level'),
    lmdb: await startCluster((id) => adapter('lmdb', join(root, `lmdb-cluster-${id}`), 'sync'), 'lmdb'),
  };
  type Name = keyof typeof clusters;
  const each = <T>(f: (stores: Store[]) => (i: number) => Promise<T>): Record<Name, (i: number) => Promise<T>> => ({
    memory: f(clusters.memory),
    level: f(clusters.level),
    lmdb: f(clusters.lmdb),
  });
  const results = {
    put: await alternate('memory', each((stores) => (i) => (stores[i % 3] as Store).put(keyOf(i), value))),
    get: await alternate('memory', each((stores) => (i) => (stores[i % 3] as Store).get(keyOf(i)))),
  };
  for (const stores of Object.values(clusters)) for (const s of stores) await s.stop();
  const rows: Row[] = [];
  for (const kind of ['level', 'lmdb'] as const) {
    const name = kind === 'level' ? 'LevelStorage' : 'LmdbStorage';
    for (const op of ['put', 'get'] as const) {
      const r = results[op];
      rows.push({
        suite: 'storage',
        metric: `${name} sync: store.${op}, 3-node in-process cluster (n=3, r=w=2)`,
        value: fmtOps(r.ops[kind]),
        baseline: `${fmtOps(r.ops.memory)} same cluster on MemoryStorage`,
        ratio: `${r.cost[kind].toFixed(2)}x`,
        goal: '(no goal)',
      });
    }
  }
  return rows;
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

/**
 * RSS after a GC (the child runs with --expose-gc), its private part
 * (`RssAnon` on Linux: heap, engine caches, buffers) and its file-backed
 * part (`RssFile`: mapped files' pages the process has touched, its code
 * included). LMDB maps its data file, so every page a read or write touched
 * (and, on a fault, the kernel maps up to 64 KB around it) counts in RSS:
 * that is the OS's page cache, shared and taken back under memory pressure.
 */
function rss(collect = true): { rss: number; anon: number; file: number } {
  if (collect) (globalThis as { gc?: () => void }).gc?.();
  const total = process.memoryUsage().rss;
  let anon = total;
  let file = 0;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = /RssAnon:\s+(\d+) kB/.exec(status)?.[1];
    if (kb !== undefined) anon = Number(kb) * 1024;
    file = Number(/RssFile:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    // not Linux: the total is all there is
  }
  return { rss: total, anon, file };
}

/** Bytes of the files in `dir` (not recursive: both engines keep their files at the top). */
function directoryBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}

/** In a child process: loads `count` keys of 1 KB into one node, reports RSS at half and full, and a full scan's peak. */
async function rssChild(kind: Kind, path: string, count: number): Promise<void> {
  const net = new MemoryNetwork();
  const storage = adapter(kind, path, 'async');
  const store = new Store({ id: 'r', transport: net.transport('r'), storage, replication: { n: 1, r: 1, w: 1 } });
  await store.start();
  const kb = 'x'.repeat(1000);
  const report: Record<string, number> = {};
  let next = 0;
  const load = async (until: number): Promise<void> => {
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < until) await store.put(`rss-key-${next++}`, kb);
      }),
    );
  };
  const t0 = performance.now();
  await load(Math.floor(count / 2));
  const half = rss();
  report.half = half.rss;
  report.halfAnon = half.anon;
  await load(count);
  const full = rss();
  report.full = full.rss;
  report.fullAnon = full.anon;
  report.halfFile = half.file;
  report.fullFile = full.file;
  report.loadMs = performance.now() - t0;
  // The scan's peaks, sampled without forcing GCs (garbage it leaves counts):
  // the total (LMDB's grows by the mapped pages the scan reads) and the
  // private part (what the scan holds: streamed, it should stay flat).
  let peak = process.memoryUsage().rss;
  let peakAnon = full.anon;
  const sample = (): void => {
    const now = rss(false);
    peak = Math.max(peak, now.rss);
    peakAnon = Math.max(peakAnon, now.anon);
  };
  let scanned = 0;
  for await (const _ of storage.scan()) {
    if (++scanned % 10_000 === 0) sample();
  }
  sample();
  report.scanBase = full.rss;
  report.scanPeak = peak;
  report.scanBaseAnon = full.anon;
  report.scanPeakAnon = peakAnon;
  report.scanned = scanned;
  await store.stop();
  report.disk = directoryBytes(path);
  process.send?.(report);
}

/** The RSS rows alone (each adapter loaded in a child process under `root`). */
export async function rssRows(root: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const kind of ['level', 'lmdb'] as const) {
    const name = kind === 'level' ? 'LevelStorage' : 'LmdbStorage';
    const child = fork(SELF, ['--rss-child', kind, join(root, `${kind}-rss`), String(RSS_KEYS)], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const report = await new Promise<Record<string, number>>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Record<string, number>));
      child.once('exit', (code) => reject(new Error(`the RSS child for ${name} exited (${code}) without a report`)));
    });
    const r = (name: string): number => report[name] as number;
    const data = RSS_KEYS * 1024;
    const flat = (a: number, b: number): boolean => b < 300 * 2 ** 20 && b - a < 0.25 * a;
    rows.push(
      {
        suite: 'storage',
        metric: `${name}: RSS at ${RSS_KEYS / 2} / ${RSS_KEYS} keys of 1 KB, after GC (1 node, loaded in ${(r('loadMs') / 1000).toFixed(0)} s)`,
        value: `${mb(r('half'))} / ${mb(r('full'))}`,
        baseline: `data: ${mb(data / 2)} / ${mb(data)}`,
        ratio: fmtRatio(r('full'), data),
        goal: `flat, < 300 MB ${flat(r('half'), r('full')) ? 'PASS' : 'MISS'}`,
      },
      {
        suite: 'storage',
        metric: `${name}: private RSS (RssAnon, no mapped file pages) at ${RSS_KEYS / 2} / ${RSS_KEYS} keys`,
        value: `${mb(r('halfAnon'))} / ${mb(r('fullAnon'))}`,
        baseline: `data: ${mb(data / 2)} / ${mb(data)}`,
        ratio: fmtRatio(r('fullAnon'), data),
        goal: `flat, < 300 MB ${flat(r('halfAnon'), r('fullAnon')) ? 'PASS' : 'MISS'}`,
      },
      {
        suite: 'storage',
        metric: `${name}: file-backed RSS (RssFile: mapped pages, code included) at ${RSS_KEYS / 2} / ${RSS_KEYS} keys`,
        value: `${mb(r('halfFile'))} / ${mb(r('fullFile'))}`,
        baseline: `data: ${mb(data / 2)} / ${mb(data)}`,
        ratio: fmtRatio(r('fullFile'), data),
        goal: '(page cache; no goal)',
      },
      {
        suite: 'storage',
        metric: `${name}: on disk after the load (${RSS_KEYS} keys of 1 KB)`,
        value: mb(r('disk')),
        baseline: `data: ${mb(data)}`,
        ratio: fmtRatio(r('disk'), data),
        goal: '(no goal)',
      },
      {
        suite: 'storage',
        metric: `${name}: RSS peak of a full-range scan (${r('scanned')} entries)`,
        value: `${mb(r('scanPeak'))} (+${mb(r('scanPeak') - r('scanBase'))})`,
        baseline: `RSS before: ${mb(r('scanBase'))}; data: ${mb(data)}`,
        ratio: fmtRatio(r('scanPeak') - r('scanBase'), data),
        goal: '(mapped pages count; see private)',
      },
      {
        suite: 'storage',
        metric: `${name}: private RSS peak of a full-range scan (RssAnon)`,
        value: `${mb(r('scanPeakAnon'))} (+${mb(r('scanPeakAnon') - r('scanBaseAnon'))})`,
        baseline: `private RSS before: ${mb(r('scanBaseAnon'))}; data: ${mb(data)}`,
        ratio: fmtRatio(r('scanPeakAnon') - r('scanBaseAnon'), data),
        goal: `streamed (adds < 1/4 of the data) ${r('scanPeakAnon') - r('scanBaseAnon') < data / 4 ? 'PASS' : 'MISS'}`,
      },
    );
  }
  return rows;
}

/** The storage suite's rows. */
export async function storageBench(): Promise<Row[]> {
  const root = mkdtempSync(join(tmpdir(), 'quorumkv-bench-storage-'));
  try {
    const rows: Row[] = [];
    if (PARTS.has('single')) {
      for (const kind of ['level', 'lmdb'] as const) {
        for (const durability of ['sync', 'async'] as const) rows.push(...(await singleNodeRows(kind, durability, root)));
      }
    }
    if (PARTS.has('cluster')) rows.push(...(await clusterRows(root)));
    if (PARTS.has('rss')) rows.push(...(await rssRows(root)));
    return rows;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url && process.argv[2] === '--rss-child') {
  const [, , , kind, path, count] = process.argv;
  rssChild(kind as Kind, path as string, Number(count)).catch((error: unknown) => {
    console.error(error);
    process.exit(70);
  });
}
