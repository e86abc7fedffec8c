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
