import { describe, expect, it } from 'vitest';
import { MemoryNetwork, Store, type StoreOptions } from 'quorumkv';

const net = new MemoryNetwork();
const base = (): StoreOptions => ({ id: 'a', transport: net.transport('a') });

function refused(patch: Record<string, unknown>): Error {
  try {
    new Store({ ...base(), ...patch } as StoreOptions);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`options ${JSON.stringify(patch)} were accepted`);
}

describe('Store options are validated at construction', () => {
  it.each([
    [{ gossip: { interval: 0 } }, RangeError, /gossip\.interval.*>= 10.*got 0/],
    [{ gossip: { interval: 5 } }, RangeError, /gossip\.interval/],
    [{ gossip: { interval: Number.NaN } }, RangeError, /gossip\.interval.*NaN/],
    [{ gossip: { interval: Infinity } }, RangeError, /gossip\.interval/],
    [{ gossip: { suspectAfterRounds: 0 } }, RangeError, /gossip\.suspectAfterRounds/],
    [{ gossip: { suspectAfterRounds: 1.5 } }, RangeError, /gossip\.suspectAfterRounds/],
    [{ gossip: { suspectAfterRounds: 5, downAfterRounds: 5 } }, RangeError, /downAfterRounds.*greater/],
    [{ gossip: { timeout: 0 } }, RangeError, /gossip\.timeout/],
    [{ gossip: { shutdownTimeout: -1 } }, RangeError, /gossip\.shutdownTimeout/],
    [{ gossip: 'fast' }, TypeError, /`gossip` to be an object/],
    [{ replication: { n: 0 } }, RangeError, /replication\.n/],
    [{ replication: { n: 3, r: 4 } }, RangeError, /at most N=3/],
    [{ replication: { n: 3, w: 0 } }, RangeError, /replication\.w/],
    [{ replication: { n: 2.5 } }, RangeError, /replication\.n/],
    [{ timeout: -1 }, RangeError, /`timeout`/],
    [{ timeout: Number.NaN }, RangeError, /`timeout`/],
    [{ timeout: Infinity }, RangeError, /`timeout`/],
    [{ maxKeyBytes: 0 }, RangeError, /maxKeyBytes/],
    [{ maxKeyBytes: 1e9 }, RangeError, /maxKeyBytes.*65536/],
    [{ maxValueBytes: -5 }, RangeError, /maxValueBytes/],
    [{ maxClockEntries: 0 }, RangeError, /maxClockEntries/],
    [{ weight: 0 }, RangeError, /weight/],
    [{ weight: 5000 }, RangeError, /weight/],
    [{ tokens: [] }, RangeError, /tokens/],
    [{ tokens: [1, -1] }, RangeError, /tokens\[1\]/],
    [{ tokens: [2 ** 32] }, RangeError, /tokens\[0\]/],
    [{ id: '' }, TypeError, /`id`/],
    [{ id: 'x'.repeat(300) }, TypeError, /`id`/],
    [{ cluster: '' }, TypeError, /`cluster`/],
    [{ zone: '' }, TypeError, /`zone`/],
    [{ seeds: 'a' }, TypeError, /`seeds`/],
    [{ seeds: ['b', ''] }, TypeError, /seeds\[1\]/],
    [{ conflict: 'newest' }, TypeError, /conflict/],
    [{ transport: {} }, TypeError, /Transport/],
    [{ storage: {} }, TypeError, /StorageAdapter/],
    [{ clock: { now: () => 0 } }, TypeError, /Clock/],
    [{ maxSiblings: 0 }, RangeError, /maxSiblings/],
    [{ maxSiblings: 10, siblingWarning: 11 }, RangeError, /siblingWarning.*at most.*maxSiblings/],
    // Ten 1.9 MB siblings used to build a record larger than the 16 MiB frame: refused up front.
    [{ maxValueBytes: 2 * 1024 * 1024 }, RangeError, /fit the frame limit.*lower maxValueBytes to at most \d+/],
    [{ maxValueBytes: 1024 * 1024, maxSiblings: 10 }, RangeError, /frame limit/],
  ])('%j is refused', (patch, type, message) => {
    const err = refused(patch);
    expect(err).toBeInstanceOf(type);
    expect(err.message).toMatch(message);
  });

  it('accepts the documented edge values', () => {
    expect(() => new Store({ ...base(), gossip: { interval: 10, suspectAfterRounds: 1, downAfterRounds: 2, timeout: 1, shutdownTimeout: 0 } })).not.toThrow();
    expect(() => new Store({ ...base(), replication: { n: 1, r: 1, w: 1 }, timeout: 0 })).not.toThrow();
    expect(() => new Store({ ...base(), tokens: [0, 2 ** 32 - 1] })).not.toThrow();
    expect(() => new Store({ ...base(), maxSiblings: 5 })).not.toThrow(); // the warning level follows it down
    expect(() => new Store({ ...base(), maxValueBytes: 512 * 1024, maxSiblings: 10 })).not.toThrow();
  });

  it('a per-call timeout is validated like the option', async () => {
    const s = new Store({ ...base(), replication: { n: 1, r: 1, w: 1 } });
    await s.start();
    try {
      await expect(s.get('k', { timeout: -1 })).rejects.toThrow(RangeError);
      await expect(s.put('k', 1, { timeout: Number.NaN })).rejects.toThrow(RangeError);
    } finally {
      await s.stop();
    }
  });
});
