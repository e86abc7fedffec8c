import { mkdtempSync } from 'node:fs';
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vitest from 'vitest';
import { storageCompliance } from '../../src/testing/storage-compliance.js';
import { LogFileStorage } from '../../examples/custom-storage.js';

/**
 * The docs' "writing your own adapter" example (examples/custom-storage.ts,
 * an append-only log file) runs the same suite as the built-in adapters,
 * durable cases included.
 */
const root = mkdtempSync(join(tmpdir(), 'quorumkv-logfile-compliance-'));
let n = 0;
vitest.afterAll(() => rm(root, { recursive: true, force: true }));

storageCompliance({
  name: 'LogFileStorage (examples/custom-storage.ts)',
  setup: () => new LogFileStorage({ path: join(root, `log${n++}`) }),
  reopen: (previous) => new LogFileStorage({ path: previous.path }),
  teardown: (storage) => rm(storage.path, { recursive: true, force: true }),
  test: vitest,
});

vitest.describe('LogFileStorage example', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

  vitest.it('drops a torn last line (an append cut by a crash) and refuses damage elsewhere', async () => {
    const path = join(root, `torn${n++}`);
    const s = new LogFileStorage({ path });
    await s.open();
    await s.put(enc('a'), 1, enc('ra'));
    // A crash between open and close: no compaction, the log holds the put; a torn append follows.
    await appendFile(join(path, 'log.jsonl'), '{"op":"put","k":"Yg==","t":2,"r');
    const crashed = new LogFileStorage({ path });
    // The first object still holds the directory's file handle; the second reads the log as a restart would.
    await crashed.open();
    vitest.expect(await crashed.get(enc('a'))).toEqual(enc('ra'));
    vitest.expect(await crashed.get(enc('b'))).toBeUndefined();
    await crashed.close();
    await s.close();
    const log = await readFile(join(path, 'log.jsonl'), 'utf8');
    await writeFile(join(path, 'log.jsonl'), `garbage\n${log}`);
    const damaged = new LogFileStorage({ path });
    const error = await damaged.open().then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    vitest.expect(error?.code).toBe('KV_STORAGE_FAILURE');
  });
});
