import { describe, expect, it } from 'vitest';
import { MemoryNetwork, type StoreOptions } from 'quorumkv';
import { resolveStoreOptions } from '../../../src/store/options.js';

const net = new MemoryNetwork();
const base = (): StoreOptions => ({ id: 'a', transport: net.transport('a') });
const resolve = (replication: unknown) => resolveStoreOptions({ ...base(), replication } as StoreOptions);

function refused(replication: unknown): Error {
  try {
    resolve(replication);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`replication ${JSON.stringify(replication)} was accepted`);
}

describe('replication.zones', () => {
  it('N defaults to the sum of the zone counts; R and W to a quorum of it', () => {
    const o = resolve({ zones: { dc2: 1, dc1: 2 } });
    expect([o.n, o.r, o.w]).toEqual([3, 2, 2]);
    expect(o.zones).toEqual({ dc1: 2, dc2: 1 });
    expect(Object.keys(o.zones!)).toEqual(['dc1', 'dc2']);
    const five = resolve({ zones: { dc1: 3, dc2: 2 } });
    expect([five.n, five.r, five.w]).toEqual([5, 3, 3]);
    // An explicit n equal to the sum, explicit R and W.
    const explicit = resolve({ n: 3, r: 1, w: 3, zones: { dc1: 2, dc2: 1 } });
    expect([explicit.n, explicit.r, explicit.w]).toEqual([3, 1, 3]);
  });

  it('leaves configurations without zones as they were', () => {
    const o = resolve({ n: 5 });
    expect([o.n, o.r, o.w, o.zones]).toEqual([5, 2, 2, undefined]);
    expect(resolve(undefined).zones).toBeUndefined();
  });

  it.each([
    [{ n: 2, zones: { dc1: 2, dc2: 1 } }, TypeError, 'Expected `replication.n` (2) to equal the sum of `replication.zones` { "dc1": 2, "dc2": 1 } (3); omit `n` with zones'],
    [{ zones: {} }, TypeError, 'Expected `replication.zones` to name at least one zone, got an empty object'],
    [{ zones: 'dc1' }, TypeError, 'Expected `replication.zones` to be an object of replicas per zone, got "dc1"'],
    [{ zones: [2, 1] }, TypeError, 'Expected `replication.zones` to be an object of replicas per zone, got an array'],
    [{ zones: { '': 1 } }, TypeError, 'Expected the zone names of `replication.zones` to be non-empty strings, got ""'],
    [{ zones: { dc1: 0 } }, RangeError, 'Expected `replication.zones.dc1` to be a positive integer, got 0'],
    [{ zones: { dc1: 1.5 } }, RangeError, 'Expected `replication.zones.dc1` to be a positive integer, got 1.5'],
    [{ zones: { dc1: 40, dc2: 25 } }, RangeError, 'Expected the counts of `replication.zones` to sum to at most 64, got 65'],
    [{ zones: { dc1: 2, dc2: 1 }, r: 4 }, RangeError, 'Expected R and W to be at most N=3, got R=4 W=2'],
  ] as const)('refuses %j', (replication, type, message) => {
    const err = refused(replication);
    expect(err).toBeInstanceOf(type);
    expect(err.message).toBe(message);
  });

  it('refuses zone names longer than the gossip wire carries', () => {
    expect(refused({ zones: { ['z'.repeat(257)]: 1 } })).toBeInstanceOf(TypeError);
  });
});
