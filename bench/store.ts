/**
 * Store suite: in-process quorum put/get throughput (N3 W2 R2, many calls in
 * flight) against a fan-out echo over the same kind of MemoryNetwork — the
 * same number and size of messages, handlers that do nothing — measured in
 * the same run, with the codec on and off; and the time createTestCluster
 * takes to return a converged 5-node cluster.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { MemoryNetwork, type WireMessage } from '../src/index.js';
import { createTestCluster } from '../src/testing/index.js';
import { fmtOps, fmtRatio, type Row } from './harness.js';

const NODES = 5;
const IN_FLIGHT = 64;
const KEYS = 2_000;
const DURATION_MS = Number(process.env.BENCH_STORE_MS ?? 1_500);

/** Runs `op` from IN_FLIGHT concurrent loops for DURATION_MS; returns ops/s. */
async function throughput(op: (i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  let next = 0;
  const until = performance.now() + DURATION_MS;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < until) {
        await op(next++);
        done++;
      }
    }),
  );
  return (done / (performance.now() - t0)) * 1000;
}

interface Traffic {
  opsPerSec: number;
  /** Requests per operation (each has an answer). */
  requestsPerOp: number;
  /** Average encoded bytes of a message (0 with the codec off). */
  bytesPerMessage: number;
}

async function storeRun(codec: boolean, kind: 'put' | 'get'): Promise<Traffic> {
  const cluster = await createTestCluster<{ n: number; pad: string }>({
    nodes: NODES,
    network: { codec },
    timeout: 10_000,
    gossip: { interval: 1_000 },
  });
  try {
    const stores = cluster.stores;
    const value = (n: number): { n: number; pad: string } => ({ n, pad: 'x'.repeat(100) });
    if (kind === 'get') {
      for (let k = 0; k < KEYS; k += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => stores[(k + j) % NODES]!.put(`key:${k + j}`, value(k + j))));
      }
    }
    const before = cluster.network.stats();
    let ops = 0;
    const opsPerSec = await throughput(async (i) => {
      const store = stores[i % NODES]!;
      // Puts go to fresh keys (blind writes to one key would pile up siblings);
      // gets read the keys written before the run.
      if (kind === 'put') await store.put(`fresh:${i}`, value(i));
      else await store.get(`key:${(i * 7919) % KEYS}`);
      ops++;
    });
    const after = cluster.network.stats();
    const messages = after.sent - before.sent;
    return {
      opsPerSec,
      requestsPerOp: messages / 2 / ops,
      bytesPerMessage: codec ? (after.bytes - before.bytes) / messages : 0,
    };
  } finally {
    await cluster.stop();
  }
}

/** The baseline: each operation fans out the same number of requests, of the same size, to handlers that do nothing. */
async function echoRun(codec: boolean, traffic: Traffic): Promise<number> {
  const net = new MemoryNetwork({ codec, defaultTimeout: 10_000 });
  const transports = Array.from({ length: NODES }, (_, i) => net.transport(`e${i}`));
  const pad = new Uint8Array(Math.max(0, Math.round(traffic.bytesPerMessage) - 24));
  const reply: WireMessage = { type: 'echo.ok', pad };
  await Promise.all(transports.map((t) => t.start(() => reply)));
  try {
    // A fractional fan-out (e.g. 2.6 requests per op) is matched on average.
    let carry = 0;
    return await throughput(async (i) => {
      const from = transports[i % NODES]!;
      carry += traffic.requestsPerOp;
      const fanout = Math.floor(carry);
      carry -= fanout;
      await Promise.all(
        Array.from({ length: fanout }, (_, j) =>
          from.request(`e${(i + 1 + j) % NODES}`, { type: 'echo', pad }),
        ),
      );
    });
  } finally {
    await Promise.all(transports.map((t) => t.stop()));
  }
}

export async function storeBench(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const codec of [true, false]) {
    for (const kind of ['put', 'get'] as const) {
      const traffic = await storeRun(codec, kind);
      const echo = await echoRun(codec, traffic);
      const ratio = traffic.opsPerSec / echo;
      rows.push({
        suite: 'store',
        metric: `quorum ${kind} N3 ${kind === 'put' ? 'W2' : 'R2'}, ${IN_FLIGHT} in flight, codec ${codec ? 'on' : 'off'}`,
        value: fmtOps(traffic.opsPerSec),
        baseline: `echo fan-out ${traffic.requestsPerOp.toFixed(2)} req/op${codec ? ` of ${Math.round(traffic.bytesPerMessage)} B` : ''}: ${fmtOps(echo)}`,
        ratio: fmtRatio(traffic.opsPerSec, echo),
        goal: `>= 0.5x ${ratio >= 0.5 ? 'PASS' : 'MISS'}`,
      });
    }
  }
  // createTestCluster time, against starting the same 5 transports alone.
  const timesMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const cluster = await createTestCluster({ nodes: 5 });
    timesMs.push(performance.now() - t0);
    await cluster.stop();
  }
  timesMs.sort((a, b) => a - b);
  const median = timesMs[2]!;
  const gossipInterval = 50;
  rows.push({
    suite: 'store',
    metric: 'createTestCluster({ nodes: 5 }) until converged (median of 5)',
    value: `${median.toFixed(0)} ms`,
    baseline: `one gossip interval: ${gossipInterval} ms; embedded Cassandra: 10-15 s`,
    ratio: fmtRatio(median, gossipInterval),
    goal: `< 1 s ${median < 1_000 ? 'PASS' : 'MISS'}`,
  });
  return rows;
}
