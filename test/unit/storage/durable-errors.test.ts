/**
 * The durable adapters' failures: a missing engine, damaged, truncated or
 * foreign files, a directory locked by another process, a failing write
 * (full disk) and a read-only directory each give a coded error on open or
 * on the failing write, never a hang or a crash of the process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, truncateSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  LevelStorage,
  LmdbStorage,
  type LevelEngineDatabase,
  type LevelEngineModule,
  type LmdbEngineDatabase,
  type LmdbEngineModule,
} from '../../../src/storage/index.js';
import { KvError } from '../../../src/errors/index.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'quorumkv-durable-errors-'));
let n = 0;
const dir = (): string => join(root, `d${n++}`);
afterAll(() => rm(root, { recursive: true, force: true }));

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

async function failure(p: Promise<unknown>): Promise<KvError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a rejection').toBeInstanceOf(KvError);
  return error as KvError;
}

type Adapter = LevelStorage | LmdbStorage;
const adapters = {
  level: (path: string, loadEngine?: () => Promise<LevelEngineModule>): LevelStorage =>
    new LevelStorage(loadEngine === undefined ? { path } : { path, loadEngine }),
  lmdb: (path: string, loadEngine?: () => Promise<LmdbEngineModule>): LmdbStorage =>
    new LmdbStorage(loadEngine === undefined ? { path } : { path, loadEngine }),
} as const;

/** Opens a new adapter of `kind` at `path`, writes a few records and closes it. */
async function populate(kind: keyof typeof adapters, path: string, count = 50): Promise<void> {
  const s: Adapter = adapters[kind](path);
  await s.open();
  for (let i = 0; i < count; i++) await s.put(enc(`k${i}`), i, new Uint8Array(200).fill(i));
  await s.close();
}

/** A write error as the OS reports a full disk. */
const diskFull = (): Error => Object.assign(new Error('IO error: No space left on device'), { code: 'ENOSPC' });

/** classic-level, with writes that fail while `fault.write` is set and an open that fails with `fault.open`. */
async function faultyLevel(fault: { write: boolean; open?: Error }): Promise<LevelEngineModule> {
  const real = (await import('classic-level')) as unknown as LevelEngineModule;
  class Faulty extends real.ClassicLevel {
    override open(options?: { createIfMissing?: boolean }): Promise<void> {
      return fault.open !== undefined ? Promise.reject(fault.open) : super.open(options);
    }
    override batch(...args: Parameters<LevelEngineDatabase['batch']>): Promise<void> {
      return fault.write ? Promise.reject(diskFull()) : super.batch(...args);
    }
  }
  return { ClassicLevel: Faulty };
}

/** lmdb, with writes that fail while `fault.write` is set and an open that throws `fault.open`. */
async function faultyLmdb(fault: { write: boolean; open?: Error }): Promise<LmdbEngineModule> {
  const real = (await import('lmdb')) as unknown as LmdbEngineModule;
  return {
    open(options) {
      if (fault.open !== undefined) throw fault.open;
      const db = real.open(options);
      return new Proxy(db, {
        get(target, prop) {
          if ((prop === 'put' || prop === 'remove') && fault.write) return () => Promise.reject(diskFull());
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      }) as LmdbEngineDatabase;
    },
  };
}

describe.each(['level', 'lmdb'] as const)('%s: a missing engine', (kind) => {
  const pkg = kind === 'level' ? 'classic-level' : 'lmdb';

  it(`rejects open() with KV_ENGINE_MISSING naming ${pkg} when the package is not installed`, async () => {
    const notFound = Object.assign(new Error(`Cannot find package '${pkg}'`), { code: 'ERR_MODULE_NOT_FOUND' });
    const s = adapters[kind](dir(), (): Promise<never> => Promise.reject(notFound));
    const error = await failure(s.open());
    expect(error.code).toBe('KV_ENGINE_MISSING');
    expect(error.message).toContain(`npm install ${pkg}`);
    expect(error.cause).toBe(notFound);
    expect(s.status).toBe('closed');
    expect((await failure(s.get(enc('k')))).code).toBe('KV_NOT_STARTED');
  });

  it('rejects open() with KV_ENGINE_MISSING when the engine fails to load (e.g. no native build)', async () => {
    const broken = new Error('No native build was found for platform=plan9');
    const s = adapters[kind](dir(), (): Promise<never> => Promise.reject(broken));
    const error = await failure(s.open());
    expect(error.code).toBe('KV_ENGINE_MISSING');
    expect(error.message).toContain('plan9');
    expect(error.message).toContain(`npm install ${pkg}`);
  });

  it('imports without the engine: the constructor loads nothing', () => {
    let loaded = 0;
    const s = adapters[kind](dir(), (): Promise<never> => {
      loaded++;
      return Promise.reject(new Error('unused'));
    });
    expect(loaded).toBe(0);
    expect(s.status).toBe('closed');
  });
});

describe.each(['level', 'lmdb'] as const)('%s: options', (kind) => {
  const Ctor = kind === 'level' ? LevelStorage : LmdbStorage;
  const name = Ctor.name;
  it('refuses malformed options with precise TypeErrors', () => {
    expect(() => new Ctor(undefined as never)).toThrow(new TypeError(`${name}: Expected \`options\` to be an object { path, durability? }, got undefined`));
    expect(() => new Ctor({ path: '' })).toThrow(
      new TypeError(`${name}: Expected \`options.path\` to be a non-empty string (a directory), got an empty string`),
    );
    expect(() => new Ctor({ path: 'x', durability: 'fast' as never })).toThrow(
      new TypeError(`${name}: Expected \`options.durability\` to be 'sync' or 'async', got string "fast"`),
    );
    expect(() => new Ctor({ path: 'x', loadEngine: 'classic-level' as never })).toThrow(TypeError);
    expect(new Ctor({ path: 'x' }).durability).toBe('sync');
  });
});

describe.each(['level', 'lmdb'] as const)('%s: damaged, truncated and foreign files', (kind) => {
  it('refuses a path that is a file', async () => {
    const path = dir();
    writeFileSync(path, 'not a directory');
    const error = await failure(adapters[kind](path).open());
    expect(error.code).toBe('KV_STORAGE_FAILURE');
    expect(error.message).toContain('not a directory');
  });

  it("refuses a directory of someone else's files, and the other engine's", async () => {
    const path = dir();
    mkdirSync(path);
    writeFileSync(join(path, 'notes.txt'), 'hello');
    const error = await failure(adapters[kind](path).open());
    expect(error.code).toBe('KV_STORAGE_FAILURE');
    expect(error.message).toContain('notes.txt');
    const other = dir();
    await populate(kind === 'level' ? 'lmdb' : 'level', other);
    expect((await failure(adapters[kind](other).open())).code).toBe('KV_STORAGE_FAILURE');
  });

  it('refuses a database of the same engine not written by quorumkv', async () => {
    const path = dir();
    mkdirSync(path);
    if (kind === 'level') {
      const { ClassicLevel } = (await import('classic-level')) as unknown as LevelEngineModule;
      const db = new ClassicLevel(path, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      await db.batch([{ type: 'put', key: enc('user'), value: enc('data') }], { sync: true });
      await db.close();
    } else {
      const lmdb = (await import('lmdb')) as unknown as LmdbEngineModule;
      const db = lmdb.open({ path: join(path, 'data.mdb'), keyEncoding: 'binary', encoding: 'binary', compression: false, overlappingSync: true });
      await db.put(enc('user'), enc('data'));
      await db.close();
    }
    const error = await failure(adapters[kind](path).open());
    expect(error.code).toBe('KV_STORAGE_FAILURE');
    expect(error.message).toContain('not written by quorumkv');
  });

  it('refuses garbage in place of the database files', async () => {
    const path = dir();
    await populate(kind, path);
    if (kind === 'level') writeFileSync(join(path, 'CURRENT'), 'garbage\n');
    else writeFileSync(join(path, 'data.mdb'), Buffer.alloc(64 * 1024, 7));
    const s = adapters[kind](path);
    expect((await failure(s.open())).code).toBe('KV_STORAGE_FAILURE');
    expect(s.status).toBe('closed');
  });

  it('refuses truncated database files', async () => {
    const path = dir();
    await populate(kind, path, 400);
    // LevelDB moves its log into a table on the next open.
    if (kind === 'level') await populate(kind, path, 0);
    const file = kind === 'level' ? (readdirSync(path).find((f) => f.endsWith('.ldb')) as string) : 'data.mdb';
    expect(file, 'a table file to truncate').toBeDefined();
    truncateSync(join(path, file), Math.floor(statSync(join(path, file)).size / 3));
    const s = adapters[kind](path);
    const error = await failure(s.open());
    expect(error.code).toBe('KV_STORAGE_FAILURE');
    expect(s.status).toBe('closed');
  });

  if (kind === 'lmdb') {
    it('refuses a data file cut inside its meta pages', async () => {
      const path = dir();
      await populate(kind, path);
      truncateSync(join(path, 'data.mdb'), 5000);
      const error = await failure(adapters[kind](path).open());
      expect(error.message).toContain('truncated');
    });
  }
});

/** A process holding `path` open (as a LevelStorage or LmdbStorage); resolves once it holds it. */
async function holder(kind: keyof typeof adapters, path: string): Promise<ChildProcess> {
  const ctor = kind === 'level' ? 'LevelStorage' : 'LmdbStorage';
  const source = join(ROOT, 'src/storage/index.ts');
  const code =
    `const m = await import(${JSON.stringify(source)});` +
    `const s = new m.${ctor}({ path: ${JSON.stringify(path)} });` +
    `await s.open(); process.stdout.write('holding\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  holders.add(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the holder did not open ${path} in time: ${out}`)), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('holding')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the holder exited (${code}): ${out}`));
    });
  });
  return child;
}
const holders = new Set<ChildProcess>();
async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }
  holders.delete(child);
}
afterEach(async () => {
  for (const child of [...holders]) await kill9(child);
});

describe.each(['level', 'lmdb'] as const)('%s: a locked directory', (kind) => {
  it('refuses a second adapter in this process while the first is open', async () => {
    const path = dir();
    const first = adapters[kind](path);
    await first.open();
    try {
      const error = await failure(adapters[kind](path).open());
      expect(error.code).toBe('KV_STORAGE_FAILURE');
      expect(error.message).toMatch(/locked|already open/);
    } finally {
      await first.close();
    }
    const again = adapters[kind](path);
    await again.open();
    await again.close();
  });

  it('refuses a directory another process holds, and opens it once that process is killed', async () => {
    const path = dir();
    await populate(kind, path);
    const child = await holder(kind, path);
    const s = adapters[kind](path);
    const error = await failure(s.open());
    expect(error.code).toBe('KV_STORAGE_FAILURE');
    expect(error.message).toContain('locked by another process');
    await kill9(child);
    await s.open();
    expect((await s.get(enc('k7')))?.length).toBe(200);
    await s.close();
  });
});

describe.each(['level', 'lmdb'] as const)('%s: failing writes and a read-only directory', (kind) => {
  it('rejects the write that failed (a full disk) with KV_STORAGE_FAILURE and its cause; recovers after', async () => {
    const fault = { write: false };
    const path = dir();
    const s =
      kind === 'level'
        ? new LevelStorage({ path, loadEngine: () => faultyLevel(fault) })
        : new LmdbStorage({ path, loadEngine: () => faultyLmdb(fault) });
    await s.open();
    await s.put(enc('before'), 1, enc('ok'));
    fault.write = true;
    const error = await failure(s.put(enc('lost'), 2, enc('never stored')));
    expect(error.code).toBe('KV_STORAGE_FAILURE');
    expect(error.message).toContain('No space left on device');
    expect((error.cause as { code?: string }).code).toBe('ENOSPC');
    expect((await failure(s.setMeta('m', enc('x')))).code).toBe('KV_STORAGE_FAILURE');
    expect(await s.get(enc('before'))).toEqual(enc('ok'));
    expect(await s.get(enc('lost'))).toBeUndefined();
    fault.write = false;
    await s.put(enc('after'), 3, enc('ok'));
    expect(await s.get(enc('after'))).toEqual(enc('ok'));
    await s.close();
  });

  it('rejects open() of a read-only directory with KV_STORAGE_FAILURE', async () => {
    const path = dir();
    await populate(kind, path);
    let s: Adapter;
    if (!IS_ROOT) {
      for (const f of readdirSync(path)) chmodSync(join(path, f), 0o444);
      chmodSync(path, 0o555);
      s = adapters[kind](path);
    } else {
      // Root writes through permission bits: the engine reports the read-only file system instead.
      const readOnly = Object.assign(new Error(`IO error: ${path}/LOCK: Read-only file system`), { code: 'EROFS' });
      s =
        kind === 'level'
          ? new LevelStorage({ path, loadEngine: () => faultyLevel({ write: false, open: readOnly }) })
          : new LmdbStorage({ path, loadEngine: () => faultyLmdb({ write: false, open: readOnly }) });
    }
    try {
      const error = await failure(s.open());
      expect(error.code).toBe('KV_STORAGE_FAILURE');
      expect(s.status).toBe('closed');
    } finally {
      chmodSync(path, 0o755);
      for (const f of readdirSync(path)) chmodSync(join(path, f), 0o644);
    }
  });
});
