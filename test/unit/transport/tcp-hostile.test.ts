import { encode } from '@msgpack/msgpack';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import { TcpTransport, type TcpConnectionEvent, type TcpTransportStats } from '../../../src/transport/index.js';
import type { RequestHandler } from '../../../src/transport/types.js';
import { RawPeer, framed, until } from './tcp-raw.js';

const MAX_FRAME = 64 * 1024;

let server: TcpTransport;
let client: TcpTransport;
let handled = 0;
const dropped: TcpConnectionEvent[] = [];
const failed: TcpConnectionEvent[] = [];

/** Answers like the node's router: echo, or a coded error for unknown types. */
const handler: RequestHandler = (message) => {
  handled++;
  if (message.type === 'echo') return { type: 'echo', payload: message.payload };
  throw new KvError('KV_INVALID_MESSAGE', `no handler for message type ${JSON.stringify(message.type)}`);
};

beforeAll(async () => {
  server = new TcpTransport({
    host: '127.0.0.1',
    port: 0,
    maxFrameBytes: MAX_FRAME,
    frameTimeout: 200,
    handshakeTimeout: 300,
    maxConnections: 50,
  });
  server.on('connection:dropped', (e) => dropped.push(e));
  server.on('handshake:failed', (e) => failed.push(e));
  client = new TcpTransport({ host: '127.0.0.1', port: 0 });
  await server.start(handler);
  await client.start(handler);
  await serves();
});
afterEach(async () => {
  await RawPeer.destroyAll();
  dropped.length = 0;
  failed.length = 0;
});
afterAll(async () => {
  await client.stop();
  await server.stop();
});

/** The well-behaved client still gets its answers. */
async function serves(): Promise<void> {
  const payload = Math.random();
  expect(await client.request(server.address, { type: 'echo', payload }, { timeout: 2_000 })).toEqual({ type: 'echo', payload });
}

/** What changed in the server's counters while `fn` ran. */
async function delta(fn: () => Promise<void>): Promise<Partial<Record<keyof TcpTransportStats, number>>> {
  const before = server.stats();
  await fn();
  const after = server.stats();
  const out: Partial<Record<keyof TcpTransportStats, number>> = {};
  for (const k of Object.keys(after) as (keyof TcpTransportStats)[]) {
    if (after[k] !== before[k]) out[k] = after[k] - before[k];
  }
  return out;
}

/** A raw client past the handshake (no secret). */
async function handshaked(): Promise<RawPeer> {
  const raw = await RawPeer.connect(server.address);
  const welcome = await raw.hello();
  expect(welcome.kind).toBe('res');
  return raw;
}

/** The connection was refused with a coded `err 0` frame, then closed. */
async function refusedWith(raw: RawPeer, code: string): Promise<void> {
  const frame = await raw.next();
  expect(frame.kind).toBe('err');
  expect(frame.kind === 'err' && frame.id).toBe(0);
  expect(frame.kind === 'err' && frame.code).toBe(code);
  await raw.closed;
}

const prefix = (length: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length, 0);
  return b;
};

describe('TcpTransport under hostile input (raw sockets against a live transport)', () => {
  it('an absurd length prefix before the handshake: refused, closed, counted', async () => {
    const d = await delta(async () => {
      const raw = await RawPeer.connect(server.address);
      raw.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
      await refusedWith(raw, 'KV_INVALID_MESSAGE');
    });
    expect(d.framesTooLarge).toBe(1);
    expect(d.handshakesFailed).toBe(1);
    expect(failed.map((e) => e.error.code)).toEqual(['KV_INVALID_MESSAGE']);
    await serves();
  });

  it('an absurd length prefix after the handshake: closed before anything is buffered, counted, reported', async () => {
    const d = await delta(async () => {
      const raw = await handshaked();
      raw.send(prefix(0xffff_fff0));
      await refusedWith(raw, 'KV_INVALID_MESSAGE');
    });
    expect(d.framesTooLarge).toBe(1);
    expect(d.handshakesFailed ?? 0).toBe(0);
    await until(() => dropped.length === 1, 'connection:dropped');
    expect(dropped[0]!.error.code).toBe('KV_INVALID_MESSAGE');
    await serves();
  });

  it('a frame one byte over maxFrameBytes, actually sent: closed and counted', async () => {
    const d = await delta(async () => {
      const raw = await handshaked();
      raw.send(framed(new Uint8Array(MAX_FRAME + 1)));
      await raw.closed;
    });
    expect(d.framesTooLarge).toBe(1);
    await serves();
  });

  const malformed: [string, () => Uint8Array][] = [
    ['invalid msgpack (0xc1)', () => Uint8Array.of(0xc1)],
    ['truncated msgpack (an array of 4 holding 2)', () => Uint8Array.of(0x94, 0x00, 0x01)],
    ['trailing bytes after the frame', () => Uint8Array.of(...encode([0, 1, 'x', { type: 'echo' }]), 0x00)],
    ['an unknown frame kind', () => encode([7, 1, 'x', { type: 'echo' }])],
    ['a wrong field type (string id)', () => encode([0, 'one', 'x', { type: 'echo' }])],
    ['a body without a string type', () => encode([0, 1, 'x', { type: 5 }])],
    ['a __proto__ key', () => encode([0, 1, 'x', JSON.parse('{"type":"echo","__proto__":{"polluted":true}}')])],
    ['an extension type', () => Uint8Array.of(0x94, 0x00, 0x01, 0xa1, 0x78, 0xd4, 0x01, 0x00)],
    [
      'nesting 60 000 deep',
      () => {
        const head = Uint8Array.of(0x94, 0x00, 0x01, 0xa1, 0x78, 0x82, 0xa4, ...Buffer.from('type'), 0xa1, 0x61, 0xa1, 0x64);
        return Buffer.concat([head, Buffer.alloc(60_000, 0x91), Uint8Array.of(0xc0)]);
      },
    ],
    ['an answer sent on the connection the peer dialled', () => encode([1, 1, { type: 'echo' }])],
  ];
  for (const [what, bytes] of malformed) {
    it(`${what}: answered with KV_INVALID_MESSAGE, closed, counted; the handler never sees it`, async () => {
      const handledBefore = handled;
      const d = await delta(async () => {
        const raw = await handshaked();
        raw.send(framed(bytes()));
        await refusedWith(raw, 'KV_INVALID_MESSAGE');
      });
      expect(d.malformedFrames).toBe(1);
      expect(handled).toBe(handledBefore);
      await serves();
    });
  }

  it('an empty frame (length 0): closed and counted as malformed', async () => {
    const d = await delta(async () => {
      const raw = await handshaked();
      raw.send(prefix(0));
      await refusedWith(raw, 'KV_INVALID_MESSAGE');
    });
    expect(d.malformedFrames).toBe(1);
  });

  it('an unknown message type in a valid frame is answered with the handler\'s coded error; the connection keeps working', async () => {
    const raw = await handshaked();
    raw.sendFrame({ kind: 'req', id: 7, from: 'x:1', body: { type: 'no-such-type' } });
    const answer = await raw.next();
    expect(answer).toMatchObject({ kind: 'err', id: 7, code: 'KV_INVALID_MESSAGE' });
    raw.sendFrame({ kind: 'req', id: 8, from: 'x:1', body: { type: 'echo', payload: 'still here' } });
    expect(await raw.next()).toEqual({ kind: 'res', id: 8, body: { type: 'echo', payload: 'still here' } });
    expect(raw.isClosed).toBe(false);
  });

  it('data before the handshake: refused, closed, counted, never handled', async () => {
    const handledBefore = handled;
    const d = await delta(async () => {
      const raw = await RawPeer.connect(server.address);
      raw.sendFrame({ kind: 'req', id: 1, from: '127.0.0.1:9', body: { type: 'echo', payload: 'sneaky' } });
      await refusedWith(raw, 'KV_INVALID_MESSAGE');
    });
    expect(d.handshakesFailed).toBe(1);
    expect(handled).toBe(handledBefore);
    await serves();
  });

  it('a hello with wrong field types: refused and counted', async () => {
    const d = await delta(async () => {
      const raw = await RawPeer.connect(server.address);
      raw.sendFrame({ kind: 'req', id: 0, from: 'x:1', body: { type: 'quorumkv.hello', versions: 'all', cluster: 1, node: 'n', address: 'x:1' } });
      await refusedWith(raw, 'KV_INVALID_MESSAGE');
    });
    expect(d.handshakesFailed).toBe(1);
  });

  it('slowloris: a frame started and never finished is closed after frameTimeout and counted', async () => {
    const d = await delta(async () => {
      const raw = await handshaked();
      const started = Date.now();
      raw.send(Buffer.concat([prefix(1000), Buffer.alloc(10)]));
      await raw.closed;
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    });
    expect(d.slowConnectionsClosed).toBe(1);
    await until(() => dropped.some((e) => e.error.code === 'KV_TIMEOUT'), 'connection:dropped with KV_TIMEOUT');
    await serves();
  });

  it('slowloris: a byte every 50 ms keeps no frame alive past frameTimeout', async () => {
    const raw = await handshaked();
    const bytes = framed(encode([0, 1, 'x', { type: 'echo', payload: 'x'.repeat(100) }]));
    let i = 0;
    const drip = setInterval(() => {
      if (i < bytes.length && !raw.isClosed) raw.send(bytes.subarray(i, ++i));
    }, 50);
    try {
      await raw.closed;
    } finally {
      clearInterval(drip);
    }
    expect(i).toBeLessThan(bytes.length);
  });

  it('a connection that never says hello is closed after handshakeTimeout and counted', async () => {
    const d = await delta(async () => {
      const raw = await RawPeer.connect(server.address);
      await raw.closed;
    });
    expect(d.slowConnectionsClosed).toBe(1);
    expect(d.handshakesFailed).toBe(1);
    expect(failed.map((e) => e.error.code)).toEqual(['KV_TIMEOUT']);
  });

  it('a flood of 200 connections beyond maxConnections (50): the excess is closed on arrival and counted; the established peer keeps being served', async () => {
    const d = await delta(async () => {
      const settled = await Promise.allSettled(Array.from({ length: 200 }, () => RawPeer.connect(server.address)));
      const peers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      // While the flood holds its connections, the established client is served.
      await serves();
      await until(() => server.stats().connectionsRefused >= 150, 'the excess to be refused');
      // Every flood connection ends: the excess at once, the rest at the handshake deadline.
      await Promise.all(peers.map((p) => p.closed));
    });
    expect(d.connectionsRefused! + d.connectionsAccepted!).toBe(200);
    expect(d.connectionsRefused).toBeGreaterThanOrEqual(150);
    expect(dropped.filter((e) => e.error.code === 'KV_OVERLOADED').length).toBe(d.connectionsRefused);
    await until(() => server.stats().inboundConnections === 1, 'only the client\'s connection to remain');
    // A new peer can connect again.
    const fresh = new TcpTransport({ host: '127.0.0.1', port: 0 });
    await fresh.start(handler);
    try {
      expect(await fresh.request(server.address, { type: 'echo', payload: 1 })).toEqual({ type: 'echo', payload: 1 });
    } finally {
      await fresh.stop();
    }
  });
});
