import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vitest from 'vitest';
import { LmdbStorage } from '../../src/storage/index.js';
import { storageCompliance } from '../../src/testing/storage-compliance.js';

const root = mkdtempSync(join(tmpdir(), 'quorumkv-lmdb-compliance-'));
let n = 0;
vitest.afterAll(() => rm(root, { recursive: true, force: true }));

for (const durability of ['sync', 'async'] as const) {
  storageCompliance({
    name: `LmdbStorage (${durability})`,
    setup: () => new LmdbStorage({ path: join(root, `db${n++}`), durability }),
    reopen: (previous) => new LmdbStorage({ path: previous.path, durability }),
    teardown: (storage) => rm(storage.path, { recursive: true, force: true }),
    test: vitest,
  });
}
