import * as vitest from 'vitest';
import { transportCompliance } from '../../src/testing/transport-compliance.js';
import { PortNetwork, type PortTransport } from '../../examples/custom-transport.js';

/**
 * The README's "writing a Transport" example (examples/custom-transport.ts,
 * over worker_threads MessageChannel ports) runs the same suite as the
 * built-in transports. It does no fault injection, so nothing else is
 * skipped: it encodes, has a frame limit and can be reopened.
 */
transportCompliance({
  name: 'PortTransport (examples/custom-transport.ts)',
  setup: () => {
    const net = new PortNetwork();
    return { a: net.transport('a'), b: net.transport('b'), reopen: (stopped) => net.transport(stopped.address) };
  },
  teardown: (pair) => {
    // Every port is closed once both sides stopped (an open port keeps the process alive).
    vitest.expect((pair.a as PortTransport).openPorts).toBe(0);
    vitest.expect((pair.b as PortTransport).openPorts).toBe(0);
  },
  test: vitest,
});

vitest.describe('PortTransport example', () => {
  vitest.it('closes every port it opened or accepted on stop, and frees its address', async () => {
    const net = new PortNetwork();
    const a = net.transport('a');
    const b = net.transport('b');
    const c = net.transport('c');
    const echo = (m: { type: string }) => ({ type: 'echo', payload: m.type });
    await Promise.all([a.start(echo), b.start(echo), c.start(echo)]);
    await a.request('b', { type: 'x' });
    await a.request('c', { type: 'x' });
    await b.request('a', { type: 'x' });
    vitest.expect(a.openPorts).toBe(3); // two dialed, one accepted
    await a.stop();
    vitest.expect(a.openPorts).toBe(0);
    vitest.expect(net.addresses().sort()).toEqual(['b', 'c']);
    await Promise.all([b.stop(), c.stop()]);
    vitest.expect(b.openPorts + c.openPorts).toBe(0);
    vitest.expect(net.addresses()).toEqual([]);
  });

  vitest.it('refuses a second started transport at the same address', async () => {
    const net = new PortNetwork();
    const first = net.transport('a');
    await first.start(() => ({ type: 'ok' }));
    try {
      await vitest.expect(net.transport('a').start(() => ({ type: 'ok' }))).rejects.toThrow(/in use/);
    } finally {
      await first.stop();
    }
  });
});
