import net from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { KvError, TcpTransport, type TcpTransportStats } from 'quorumkv';
import { ProcessCluster } from './harness.js';

/**
 * Hostile bytes at a live node's port: random bytes, and real frames
 * (captured from a real TcpTransport's handshake and requests on their way
 * to the node) flipped, overwritten, truncated and extended, each sent on a
 * raw socket of its own. Afterwards the node's process is alive and it
 * still serves correct reads and writes with a proper peer.
 *
 * Seeded: the seed is printed; replay with FUZZ_SEED=<seed>. FUZZ_RUNS sets
 * the number of attacks (default 120, about 2 s).
 */
const SEED = process.env.FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED);
/** Runs per test; FUZZ_RUNS=<n> for a longer local run. */
const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 120));
const CLUSTER = 'process-test';

let cluster = new ProcessCluster();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await cluster.close();
  cluster = new ProcessCluster();
});

/** Splits `[u32 length][payload]` frames out of a byte stream. */
function frames(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (stream.length - pos >= 4) {
    const len = stream.readUInt32BE(pos);
    if (stream.length - pos - 4 < len) break;
    out.push(stream.subarray(pos, pos + 4 + len));
    pos += 4 + len;
  }
  return out;
}

/**
 * The bytes a real TcpTransport sends to `target` for its handshake and four
 * requests (a `gossip.push` with no records, a `kv.read`, a `kv.apply-batch`
 * and a `kv.read-batch` from a node that is not a member): recorded by a
 * pass-through proxy.
 */
async function captureFrames(target: string): Promise<Buffer[]> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const recorded: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((inbound) => {
    const outbound = net.connect({ host, port });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    inbound.on('data', (chunk: Buffer) => recorded.push(Buffer.from(chunk)));
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const via = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  const client = new TcpTransport({ host: '127.0.0.1', port: 0 });
  try {
    await client.start(() => ({ type: 'noop' }), { nodeId: 'fuzzer', cluster: CLUSTER });
    await client.request(via, { type: 'gossip.push', cluster: CLUSTER, records: [] }, { timeout: 5_000 });
    const refused = await client.request(via, { type: 'kv.read', cluster: CLUSTER, key: new Uint8Array([107, 49]) }, { timeout: 5_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused, 'a kv.read from a non-member is refused').toBeInstanceOf(KvError);
    // The batch messages too (their lists are decoded by dedicated readers before the router refuses them).
    const k = (s: string): Uint8Array => new TextEncoder().encode(s);
    for (const body of [
      { type: 'kv.apply-batch', cluster: CLUSTER, keys: [k('k1'), k('k2')], records: [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5)] },
      { type: 'kv.read-batch', cluster: CLUSTER, keys: [k('k1'), k('k2'), k('k3')] },
    ]) {
      const batchRefused = await client.request(via, body, { timeout: 5_000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(batchRefused, `a ${body.type} from a non-member is refused`).toBeInstanceOf(KvError);
    }
  } finally {
    await client.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  }
  const captured = frames(Buffer.concat(recorded));
  expect(captured.length, 'hello + push + read + two batches').toBeGreaterThanOrEqual(5);
  return captured;
}

/** One edit of a byte string (positions are taken modulo its length). */
type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly byte: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'extend'; readonly bytes: Uint8Array }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array };

function mutate(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : ('at' in m ? m.at : 0) % b.length;
    switch (m.kind) {
      case 'flip':
        if (b.length > 0) b[at]! ^= 1 << m.bit;
        break;
      case 'set':
        if (b.length > 0) b[at] = m.byte;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'extend':
        b = Buffer.concat([b, m.bytes]);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
    }
  }
  return b;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);

/** Sends `bytes` on a fresh connection, half-closes it, and waits for the node to close it (or 3 s). */
async function throwAt(address: string, bytes: Buffer): Promise<void> {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  socket.resume(); // drain whatever the node answers
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve) => {
      socket.once('connect', resolve);
      socket.once('close', resolve);
    });
    if (!socket.destroyed) socket.end(bytes);
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 3_000)))]);
  } finally {
    clearTimeout(timer);
    socket.destroy();
    await closed;
  }
}

describe('hostile frames at a live node process', () => {
  it(`leaves it alive and serving correct reads and writes (fast-check, ${RUNS} runs, seed ${SEED})`, async () => {
    console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
    onTestFailed(() => console.error(`fuzz seed ${SEED}\n${cluster.logs()}`));
    const replication = { n: 2, r: 2, w: 2 };
    const [target, peer] = await Promise.all([cluster.boot('target'), cluster.boot('peer')]);
    await cluster.start(target, { nodeId: 'n1', seeds: [], replication });
    await cluster.start(peer, { nodeId: 'n2', seeds: [target.address], replication });
    await Promise.all([target, peer].map((n) => n.call('waitForMembers', { count: 2 })));
    const captured = await captureFrames(target.address);
    const before = await target.call<TcpTransportStats>('stats');

    /** A write through the peer read back through the target, and the other way (R = W = N = 2: both nodes take part). */
    let checks = 0;
    const serves = async (): Promise<void> => {
      const n = checks++;
      await peer.put(`check:${n}`, { n, via: 'peer' });
      expect((await target.get(`check:${n}`))?.values).toEqual([{ n, via: 'peer' }]);
      await target.put(`check:${n}:back`, { n, via: 'target' });
      expect((await peer.get(`check:${n}:back`))?.values).toEqual([{ n, via: 'target' }]);
    };
    await serves();

    const attack = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 2048 }).map((b) => ({ what: 'random bytes', bytes: Buffer.from(b) })),
      fc
        .record({ count: fc.integer({ min: 1, max: captured.length }), mutations: fc.array(mutation, { minLength: 1, maxLength: 6 }) })
        .map(({ count, mutations }) => ({ what: `first ${count} real frames, mutated`, bytes: mutate(Buffer.concat(captured.slice(0, count)), mutations) })),
      fc
        .record({ count: fc.integer({ min: 1, max: captured.length }), mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }) })
        .map(({ count, mutations }) => ({
          what: `the handshake, then real frame ${count} mutated`,
          bytes: Buffer.concat([captured[0]!, mutate(captured[count - 1]!, mutations)]),
        })),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(attack, async ({ bytes }) => {
        await throwAt(target.address, bytes);
        expect(target.alive, 'the node process is alive').toBe(true);
        if (++run % 40 === 0) await serves();
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );

    expect(target.alive).toBe(true);
    await serves();
    const after = await target.call<TcpTransportStats>('stats');
    if (process.env.FUZZ_VERBOSE) {
      const delta = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof TcpTransportStats]]));
      console.log('target stats during the fuzz', delta);
    }
    // The attacks did reach the node's parsers: some connections were refused or dropped.
    expect(after.connectionsAccepted - before.connectionsAccepted).toBeGreaterThanOrEqual(RUNS);
    expect(after.handshakesFailed + after.malformedFrames + after.framesTooLarge - (before.handshakesFailed + before.malformedFrames + before.framesTooLarge)).toBeGreaterThan(0);
    // No connection of the attacks is left open on the node.
    await expect.poll(async () => (await target.call<TcpTransportStats>('stats')).inboundConnections, { timeout: 5_000 }).toBeLessThanOrEqual(1);
  });
});
