import * as vitest from 'vitest';
import { MemoryNetwork, type MemoryNetworkOptions } from '../../src/transport/index.js';
import { transportCompliance } from '../../src/testing/transport-compliance.js';

/** A pair on a fresh network; `reopen` restarts a peer the way `net.transport(id)` allows. */
function memoryPair(options: MemoryNetworkOptions = {}, latency?: { min: number; max: number }) {
  return () => {
    const net = new MemoryNetwork(options);
    if (latency) net.setLatency(latency);
    return { a: net.transport('a'), b: net.transport('b'), reopen: (stopped: { address: string }) => net.transport(stopped.address) };
  };
}

transportCompliance({ name: 'MemoryTransport (codec)', setup: memoryPair(), test: vitest });

transportCompliance({ name: 'MemoryTransport (codec: false)', setup: memoryPair({ codec: false }), test: vitest });

transportCompliance({ name: 'MemoryTransport (latency 1-5 ms)', setup: memoryPair({ seed: 1 }, { min: 1, max: 5 }), test: vitest });

vitest.describe('transportCompliance itself', () => {
  /** Runs the suite's registration against a recording test API; returns each case and whether it was skipped. */
  function registrations(setup: Parameters<typeof transportCompliance>[0]['setup']): Map<string, boolean> {
    const cases = new Map<string, boolean>();
    const it = Object.assign((name: string) => void cases.set(name, false), { skip: (name: string) => void cases.set(name, true) });
    const noop = (): void => {};
    transportCompliance({ name: 'probe', setup, test: { describe: (_name, fn) => fn(), it, beforeEach: noop, afterEach: noop, expect: vitest.expect } });
    return cases;
  }
  const skipped = (cases: Map<string, boolean>): string[] => [...cases].filter(([, s]) => s).map(([name]) => name);

  vitest.it('registers what a transport cannot do with it.skip, never as a passing case', () => {
    const all = registrations(memoryPair());
    vitest.expect(all.size).toBeGreaterThan(20);
    vitest.expect(skipped(all)).toEqual([]);
    const plain = skipped(registrations(memoryPair({ codec: false })));
    vitest.expect(plain).toHaveLength(2);
    vitest.expect(plain.join('\n')).toMatch(/oversized[^\n]*maxFrameBytes/);
    vitest.expect(plain.join('\n')).toMatch(/copies[^\n]*encodes/);
    const net = new MemoryNetwork();
    const noReopen = skipped(registrations(() => ({ a: net.transport('a'), b: net.transport('b') })));
    vitest.expect(noReopen).toEqual([vitest.expect.stringContaining('restarted at the same address')]);
  });

  vitest.it('checks its options and refuses an asynchronous setup', () => {
    vitest.expect(() => transportCompliance(undefined as never)).toThrow(/Expected `options` to be an object/);
    vitest.expect(() => transportCompliance({ name: '', setup: memoryPair(), test: vitest })).toThrow(/Expected `name`/);
    vitest.expect(() => transportCompliance({ name: 'x', setup: 'nope' as never, test: vitest })).toThrow(/Expected `setup` to be a function/);
    const asyncSetup = (async () => memoryPair()()) as never;
    vitest.expect(() => registrations(asyncSetup)).toThrow(/synchronously, got a promise/);
  });
});
