/**
 * LmdbStorage's data file: a new file gets 8 KB pages (1 KB records fill
 * them far better than LMDB's default 4 KB), a file made with 4 KB pages
 * keeps them and its data, and the file is mapped once however much it
 * grows (lmdb's default map grows by remapping and keeps every earlier
 * mapping resident).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LmdbStorage, type LmdbEngineModule, type LmdbEngineOpenOptions } from '../../../src/storage/index.js';

const root = mkdtempSync(join(tmpdir(), 'quorumkv-lmdb-file-'));
let n = 0;
const dir = (): string => join(root, `d${n++}`);
afterAll(() => rm(root, { recursive: true, force: true }));

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The page size recorded in the data file's first meta page (after a 24-byte page header, at offset 24 of the meta). */
const filePageSize = (path: string): number => readFileSync(join(path, 'data.mdb')).readUInt32LE(24 + 24);

/** lmdb, opened with `change(options)`, recording the options it was given. */
function engine(seen: LmdbEngineOpenOptions[], change: (o: LmdbEngineOpenOptions) => object = (o) => o) {
  return async (): Promise<LmdbEngineModule> => {
    const real = (await import('lmdb')) as unknown as LmdbEngineModule;
    return {
      open(options) {
        seen.push(options);
        return real.open(change(options) as LmdbEngineOpenOptions);
      },
    };
  };
}

describe('LmdbStorage: the data file', () => {
  it('is created with 8 KB pages, and takes a key of 4,021 bytes', async () => {
    const path = dir();
    const s = new LmdbStorage({ path });
    await s.open();
    const long = new Uint8Array(4021).fill(0x61);
    await s.put(long, 7, Uint8Array.of(1, 2, 3));
    expect(await s.get(long)).toEqual(Uint8Array.of(1, 2, 3));
    await s.close();
    expect(filePageSize(path)).toBe(8192);
  });

  it('made with 4 KB pages, keeps them and its data when reopened', async () => {
    const path = dir();
    const seen: LmdbEngineOpenOptions[] = [];
    const old = new LmdbStorage({ path, loadEngine: engine(seen, ({ pageSize: _, ...rest }) => rest) });
    await old.open();
    for (let i = 0; i < 200; i++) await old.put(enc(`k${i}`), i, new Uint8Array(1000).fill(i));
    await old.close();
    expect(filePageSize(path)).toBe(4096);

    const s = new LmdbStorage({ path });
    await s.open();
    for (let i = 0; i < 200; i++) expect(await s.get(enc(`k${i}`))).toEqual(new Uint8Array(1000).fill(i));
    await s.put(enc('more'), 1, Uint8Array.of(9));
    let scanned = 0;
    for await (const _ of s.scan()) scanned++;
    expect(scanned).toBe(201);
    await s.close();
    expect(filePageSize(path)).toBe(4096);
  });

  it('is mapped once, at its full reserved size, while it grows', async () => {
    const path = dir();
    const seen: LmdbEngineOpenOptions[] = [];
    const s = new LmdbStorage({ path, loadEngine: engine(seen) });
    await s.open();
    expect(seen.map((o) => [o.pageSize, o.mapSize])).toEqual([[8192, 2 ** 38]]);
    // ~20 MB: lmdb's default map (128 KB, doubling) would have been remapped about eight times.
    const value = new Uint8Array(1000).fill(3);
    for (let i = 0; i < 20_000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => s.put(enc(`key-${i + j}`), i + j, value)));
    }
    if (existsSync('/proc/self/maps')) {
      const file = join(path, 'data.mdb');
      const mappings = readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .filter((line) => line.endsWith(` ${file}`));
      expect(mappings).toHaveLength(1);
    }
    await s.close();
  });
});
