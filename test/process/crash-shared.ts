/**
 * What crash-writer.ts (the child) and crash-safety.test.ts (the parent)
 * share: the options message, the node id, and the keys and values of the
 * writes, so the parent can check each acknowledged write without being
 * sent its value.
 */
import { LevelStorage, LmdbStorage } from 'quorumkv';

/** What the parent sends. */
export interface CrashWriterOptions {
  readonly adapter: 'level' | 'lmdb';
  readonly path: string;
  readonly durability: 'sync' | 'async';
  readonly seed: number;
  readonly inFlight: number;
}

/** The node id the writer runs as (the parent restarts the same node). */
export const CRASH_NODE_ID = 'crash-node';

/** The key of write `i`. */
export const crashKey = (i: number): string => `key-${i}`;

/** The value of write `i` in the run of `seed`: a string with a payload of 100-300 characters. */
export function crashValue(seed: number, i: number): string {
  const n = 100 + ((Math.imul(i + 1, 2654435761) ^ seed) >>> 0) % 200;
  return `${seed}:${i}:${String.fromCharCode(97 + (i % 26)).repeat(n)}`;
}

/** The storage of `adapter` over `path`. */
export function crashStorage(options: Pick<CrashWriterOptions, 'adapter' | 'path' | 'durability'>): LevelStorage | LmdbStorage {
  const { adapter, path, durability } = options;
  return adapter === 'level' ? new LevelStorage({ path, durability }) : new LmdbStorage({ path, durability });
}

