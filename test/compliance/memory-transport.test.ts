import * as vitest from 'vitest';
import { MemoryNetwork } from '../../src/transport/index.js';
import { transportCompliance } from '../../src/testing/transport-compliance.js';

transportCompliance('MemoryTransport (codec)', () => {
  const net = new MemoryNetwork();
  return { a: net.transport('a'), b: net.transport('b') };
}, vitest);

transportCompliance('MemoryTransport (codec: false)', () => {
  const net = new MemoryNetwork({ codec: false });
  return { a: net.transport('a'), b: net.transport('b') };
}, vitest);

transportCompliance('MemoryTransport (latency 1-5 ms)', () => {
  const net = new MemoryNetwork({ seed: 1 });
  net.setLatency({ min: 1, max: 5 });
  return { a: net.transport('a'), b: net.transport('b') };
}, vitest);
