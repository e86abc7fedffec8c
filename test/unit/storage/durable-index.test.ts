/**
 * The durable adapters apply puts and deletes of a key in call order and
 * keep the token index exact: LmdbStorage skips rewriting a key's index
 * entry when the committed record already carries its token, and both read
 * committed data only before a delete, so a re-put, a delete and a put (or a
 * put and a delete) racing in one turn or across a commit, a token change
 * and a reopen must all leave every record (and only those) in its token's
 * scans.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LevelStorage, LmdbStorage, type StorageAdapter, type TokenRangeQuery } from '../../../src/storage/index.js';

const root = mkdtempSync(join(tmpdir(), 'quorumkv-durable-index-'));
let n = 0;
afterAll(() => rm(root, { recursive: true, force: true }));

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const record = (i: number): Uint8Array => new Uint8Array(32).fill(i);

type Kind = 'level' | 'lmdb';
const make = (kind: Kind, path: string): LevelStorage | LmdbStorage =>
  kind === 'level' ? new LevelStorage({ path }) : new LmdbStorage({ path });

/** `key -> token` of every entry `scan(range)` yields. */
async function scanned(s: StorageAdapter, range?: TokenRangeQuery): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const e of s.scan(range)) out.set(dec(e.key), e.token);
  return out;
}

describe.each(['level', 'lmdb'] as const)('%s: the token index', (kind) => {
  let open: (LevelStorage | LmdbStorage)[] = [];
  const fresh = async (path = join(root, `d${n++}`)): Promise<LevelStorage | LmdbStorage> => {
    const s = make(kind, path);
    await s.open();
    open.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(open.map((s) => s.close()));
    open = [];
  });

  it('a re-put under the same token keeps the key in its scans, once', async () => {
    const s = await fresh();
    await s.put(enc('k'), 1000, record(1));
    await s.put(enc('k'), 1000, record(2));
    await Promise.all([s.put(enc('k'), 1000, record(3)), s.put(enc('k'), 1000, record(4))]);
    expect([...(await scanned(s))]).toEqual([['k', 1000]]);
    expect(await s.get(enc('k'))).toEqual(record(4));
  });

  it('a delete and a put of the same key in one turn leave it indexed', async () => {
    const s = await fresh();
    await s.put(enc('k'), 1000, record(1));
    await Promise.all([s.delete(enc('k')), s.put(enc('k'), 1000, record(2))]);
    expect(await s.get(enc('k'))).toEqual(record(2));
    expect([...(await scanned(s, { start: 999, end: 1000 }))]).toEqual([['k', 1000]]);
  });

  it('a put issued while a delete of its key is uncommitted leaves it indexed', async () => {
    const s = await fresh();
    await s.put(enc('k'), 1000, record(1));
    const deleted = s.delete(enc('k'));
    // The next turn: lmdb has queued the delete, not yet committed it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const put = s.put(enc('k'), 1000, record(2));
    await Promise.all([deleted, put]);
    expect(await s.get(enc('k'))).toEqual(record(2));
    expect([...(await scanned(s))]).toEqual([['k', 1000]]);
  });

  it('a delete issued after a put of the same key, both in flight, removes it', async () => {
    const s = await fresh();
    await s.put(enc('k'), 1000, record(1));
    await Promise.all([s.put(enc('k'), 1000, record(2)), s.delete(enc('k'))]);
    expect(await s.get(enc('k'))).toBeUndefined();
    expect([...(await scanned(s))]).toEqual([]);
    await Promise.all([s.put(enc('new'), 2000, record(3)), s.delete(enc('new'))]);
    expect(await s.get(enc('new'))).toBeUndefined();
    expect([...(await scanned(s))]).toEqual([]);
  });

  it('many keys deleted and re-put concurrently are all indexed', async () => {
    const s = await fresh();
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k, i) => s.put(enc(k), i * 1000, record(i))));
    const ops: Promise<void>[] = [];
    for (let round = 0; round < 3; round++) {
      keys.forEach((k, i) => {
        if ((i + round) % 3 === 0) ops.push(s.delete(enc(k)));
        ops.push(s.put(enc(k), i * 1000, record(round)));
      });
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all(ops);
    const all = await scanned(s);
    expect(all.size).toBe(keys.length);
    keys.forEach((k, i) => expect(all.get(k)).toBe(i * 1000));
  });

  it('a put under a new token moves the key to the new token range', async () => {
    const s = await fresh();
    await s.put(enc('k'), 1000, record(1));
    await s.put(enc('k'), 5000, record(2));
    expect([...(await scanned(s, { start: 0, end: 2000 }))]).toEqual([]);
    expect([...(await scanned(s, { start: 4000, end: 6000 }))]).toEqual([['k', 5000]]);
    await s.put(enc('k'), 1000, record(3));
    expect([...(await scanned(s))]).toEqual([['k', 1000]]);
  });

  it('a deleted key is in no scan, and a re-put after a reopen is indexed', async () => {
    const path = join(root, `d${n++}`);
    const s = await fresh(path);
    await s.put(enc('a'), 10, record(1));
    await s.put(enc('b'), 20, record(2));
    await s.delete(enc('a'));
    expect([...(await scanned(s))]).toEqual([['b', 20]]);
    await s.close();
    const again = await fresh(path);
    await again.put(enc('b'), 20, record(3));
    await again.put(enc('a'), 10, record(4));
    expect([...(await scanned(again))]).toEqual([
      ['a', 10],
      ['b', 20],
    ]);
  });
});
