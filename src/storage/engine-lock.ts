/**
 * An exclusive lock on a data directory for engines that do not take one
 * themselves (LMDB lets many processes share an environment; a quorumkv node
 * must be the only one using its directory). A lock file holds the owner's
 * pid; a lock whose process is gone (a crash) is taken over.
 *
 * @internal
 */
import { readFile, realpath, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { storageFailure } from './engine-common.js';

/** The lock file's name inside the data directory. */
export const LOCK_FILE = 'quorumkv.lock';

/** Directories (real paths) this process holds the lock of. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

/**
 * Takes the lock of `dir`; resolves with its release. Rejects with
 * `KV_STORAGE_FAILURE` when another live process (or another adapter in
 * this one) holds it.
 */
export async function lockDirectory(adapter: string, dir: string): Promise<() => Promise<void>> {
  const file = join(dir, LOCK_FILE);
  const real = await realpath(dir);
  if (held.has(real)) {
    throw storageFailure(adapter, dir, `the directory is already open (by another ${adapter} in this process)`);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EEXIST' || attempt > 0) {
        throw storageFailure(adapter, dir, `cannot create the lock file ${LOCK_FILE}`, error);
      }
    }
    const owner = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
      throw storageFailure(adapter, dir, `the directory is locked by another process (pid ${owner}, ${LOCK_FILE})`);
    }
    // Left by a process that is gone (or by this one before a crash of the adapter): take it over.
    await unlink(file).catch(() => undefined);
  }
  held.add(real);
  return async () => {
    held.delete(real);
    await unlink(file).catch(() => undefined);
  };
}
