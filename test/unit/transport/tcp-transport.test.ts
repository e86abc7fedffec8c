import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import { ManualClock } from '../../../src/testing/manual-clock.js';
import { decodeFrame, encodeFrame, type Frame } from '../../../src/transport/codec.js';
import { TcpTransport, type TcpTransportOptions } from '../../../src/transport/index.js';
import { FrameReader } from '../../../src/transport/tcp/frame-reader.js';
import type { RequestHandler, WireMessage } from '../../../src/transport/types.js';
import { makeTestPki } from './tcp-certs.js';
import { RawPeer, framed, until } from './tcp-raw.js';

let open: TcpTransport[] = [];
let servers: Server[] = [];
let hanging: (() => void)[] = [];

afterEach(async () => {
  for (const release of hanging) release();
  hanging = [];
  for (const t of open) await t.stop();
  open = [];
  await RawPeer.destroyAll();
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
  servers = [];
});

/** echo; hang (until released); big (answers `size` bytes). */
const handler: RequestHandler = (m) => {
  if (m.type === 'hang') return new Promise<WireMessage>((resolve) => hanging.push(() => resolve({ type: 'late' })));
  return { type: 'echo', payload: m.payload };
};

function transport(options: TcpTransportOptions = {}): TcpTransport {
  const t = new TcpTransport({ host: '127.0.0.1', port: 0, ...options });
  open.push(t);
  return t;
}

async function started(options: TcpTransportOptions = {}, h: RequestHandler = handler): Promise<TcpTransport> {
  const t = transport(options);
  await t.start(h);
  return t;
}

async function failure(p: Promise<unknown>): Promise<KvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvError);
  return err as KvError;
}

/** Port of a `host:port` address. */
const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(':') + 1));

/**
 * A hand-written acceptor: completes the handshake (no secret), hands each
 * request frame to `onRequest` with its socket.
 */
async function fakeAcceptor(onRequest: (frame: Frame, socket: Socket) => void): Promise<string> {
  const server = createServer((socket: Socket) => {
    const reader = new FrameReader(1 << 20);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let f = reader.next(); f; f = reader.next()) {
        const frame = decodeFrame(new Uint8Array(f));
        if (frame.kind === 'req' && frame.id === 0) {
          const welcome = { type: 'quorumkv.welcome', version: 1, cluster: '', node: 'fake', address: '127.0.0.1:1', nonce: new Uint8Array(32), auth: 'none' };
          socket.write(framed(encodeFrame({ kind: 'res', id: 0, body: welcome })));
        } else onRequest(frame, socket);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe('TcpTransport', () => {
  it('port 0 picks a free port: `address` and `port` give it once listening', async () => {
    const t = transport();
    expect(t.address).toBe('127.0.0.1:0');
    expect(t.port).toBeUndefined();
    await t.start(handler);
    expect(t.port).toBeGreaterThan(0);
    expect(t.address).toBe(`127.0.0.1:${t.port}`);
    const address = t.address;
    await t.stop();
    expect(t.address).toBe(address); // still says where it was
    expect(t.port).toBeUndefined();
  });

  it('a second transport on a port in use fails to start with the listen error, and can start elsewhere after', async () => {
    const a = await started();
    const b = transport({ port: a.port! });
    await expect(b.start(handler)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(b.started).toBe(false);
    await b.stop();
  });

  it('queues requests made while connecting and sends them in order over one connection', async () => {
    const b = await started();
    const a = await started();
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => a.request(b.address, { type: 'echo', payload: i })));
    expect(answers.map((r) => r.payload)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(a.stats().connectionsDialed).toBe(1);
    expect(b.stats().connectionsAccepted).toBe(1);
  });

  it('an answer that comes after its request timed out is ignored; the connection keeps working', async () => {
    const b = await started();
    const a = await started();
    expect((await failure(a.request(b.address, { type: 'hang' }, { timeout: 50 }))).code).toBe('KV_TIMEOUT');
    for (const release of hanging) release();
    hanging = [];
    expect(await a.request(b.address, { type: 'echo', payload: 'next' })).toEqual({ type: 'echo', payload: 'next' });
    expect(a.stats().malformedFrames + b.stats().malformedFrames).toBe(0);
    expect(a.stats().connectionsDialed).toBe(1);
  });

  it('in-flight requests fail at once with KV_CONNECTION_CLOSED when the peer\'s socket is reset; the next request redials', async () => {
    let seen = 0;
    const address = await fakeAcceptor((frame, socket) => {
      if (frame.kind === 'req' && ++seen === 3) socket.resetAndDestroy();
    });
    const a = await started();
    const started_ = Date.now();
    const errors = await Promise.all(Array.from({ length: 3 }, (_, i) => failure(a.request(address, { type: 'echo', payload: i }, { timeout: 10_000 }))));
    expect(errors.map((e) => e.code)).toEqual(['KV_CONNECTION_CLOSED', 'KV_CONNECTION_CLOSED', 'KV_CONNECTION_CLOSED']);
    expect(Date.now() - started_).toBeLessThan(2_000);
    // Not a failed dial: the next request dials again at once.
    const next = failure(a.request(address, { type: 'echo' }, { timeout: 200 }));
    await until(() => a.stats().connectionsDialed === 2, 'a second dial');
    expect((await next).code).toBe('KV_TIMEOUT'); // the fake answers nothing
  });

  it('reconnects after the peer restarts, with exponential backoff during which requests fail at once', async () => {
    const clock = new ManualClock(1_000_000);
    const b = await started();
    const port = b.port!;
    const a = await started({ clock, reconnect: { initialDelay: 100, maxDelay: 250, jitter: 0 } });
    expect(await a.request(b.address, { type: 'echo', payload: 1 })).toEqual({ type: 'echo', payload: 1 });
    await b.stop();
    const address = b.address;

    // The dial fails: KV_UNREACHABLE, backoff 100 ms.
    expect((await failure(a.request(address, { type: 'echo' }))).code).toBe('KV_UNREACHABLE');
    expect(a.stats().dialFailures).toBe(1);
    const dialled = a.stats().connectionsDialed;
    clock.advance(99);
    const inBackoff = await failure(a.request(address, { type: 'echo' }));
    expect(inBackoff.code).toBe('KV_UNREACHABLE');
    expect(inBackoff.message).toMatch(/reconnect backoff for 1 more ms/);
    expect(a.stats().connectionsDialed).toBe(dialled); // not dialled
    // After it, one dial, which fails again: backoff 200, then capped at 250.
    clock.advance(1);
    expect((await failure(a.request(address, { type: 'echo' }))).code).toBe('KV_UNREACHABLE');
    expect(a.stats().dialFailures).toBe(2);
    clock.advance(199);
    expect((await failure(a.request(address, { type: 'echo' }))).message).toMatch(/backoff for 1 more ms/);
    clock.advance(1);
    expect((await failure(a.request(address, { type: 'echo' }))).code).toBe('KV_UNREACHABLE');
    clock.advance(249);
    expect((await failure(a.request(address, { type: 'echo' }))).message).toMatch(/backoff for 1 more ms/);

    // The peer comes back at the same address: the first request after the backoff reaches it.
    const b2 = transport({ port });
    await b2.start(handler);
    clock.advance(1);
    expect(await a.request(address, { type: 'echo', payload: 'back' })).toEqual({ type: 'echo', payload: 'back' });
    // Success reset the backoff: the next failure waits 100 ms again.
    await b2.stop();
    expect((await failure(a.request(address, { type: 'echo' }))).code).toBe('KV_UNREACHABLE');
    clock.advance(99);
    expect((await failure(a.request(address, { type: 'echo' }))).message).toMatch(/backoff for 1 more ms/);
  });

  it('a peer that comes back and connects to us ends our reconnect backoff at once', async () => {
    const clock = new ManualClock(1_000_000);
    const b = await started();
    const port = b.port!;
    const a = await started({ clock, reconnect: { initialDelay: 5_000, maxDelay: 5_000, jitter: 0 } });
    await a.request(b.address, { type: 'echo' });
    await b.stop();
    const address = b.address;
    expect((await failure(a.request(address, { type: 'echo' }))).code).toBe('KV_UNREACHABLE');
    expect((await failure(a.request(address, { type: 'echo' }))).message).toMatch(/reconnect backoff for 5000 more ms/);
    // b restarts at the same address and talks to a (as gossip does): a learns it is back.
    const b2 = transport({ port });
    await b2.start(handler);
    await b2.request(a.address, { type: 'echo' });
    // No clock advance: the backoff is over.
    expect(await a.request(address, { type: 'echo', payload: 'back' })).toEqual({ type: 'echo', payload: 'back' });
  });

  it('a dial that does not connect in time fails with KV_UNREACHABLE', async () => {
    // A loopback server that accepts TCP and then says nothing: a TLS dial to it never
    // completes its connect (no ServerHello), so only connectTimeout ends it.
    // (Only loopback is dialled: tests never send traffic to other addresses.)
    const accepted: Socket[] = [];
    const silent = createServer((socket) => void accepted.push(socket));
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const a = await started({ connectTimeout: 200, tls: makeTestPki().node });
    const started_ = Date.now();
    const err = await failure(a.request(`127.0.0.1:${port}`, { type: 'echo' }, { timeout: 5_000 }));
    expect(err.code).toBe('KV_UNREACHABLE');
    expect(err.message).toMatch(/timed out after 200 ms/);
    expect(Date.now() - started_).toBeLessThan(2_000);
    for (const socket of accepted) socket.destroy();
  });

  it('past maxPendingPerPeer requests in flight to a peer, a request fails at once with KV_OVERLOADED; other peers are not affected', async () => {
    const b = await started();
    const c = await started();
    const a = await started({ maxPendingPerPeer: 5 });
    const inFlight = Array.from({ length: 5 }, () => a.request(b.address, { type: 'hang' }, { timeout: 10_000 }));
    const over = await failure(a.request(b.address, { type: 'echo' }));
    expect(over.code).toBe('KV_OVERLOADED');
    expect(over.message).toMatch(/maxPending 5/);
    expect(a.stats().overloaded).toBe(1);
    expect(await a.request(c.address, { type: 'echo', payload: 'c' })).toEqual({ type: 'echo', payload: 'c' });
    await until(() => hanging.length === 5, 'the 5 requests to arrive');
    for (const release of hanging) release();
    hanging = [];
    await Promise.all(inFlight);
    expect(await a.request(b.address, { type: 'echo', payload: 'again' })).toEqual({ type: 'echo', payload: 'again' });
  });

  it('an acceptor handles at most maxPendingPerPeer requests of one connection at once and answers the rest KV_OVERLOADED', async () => {
    const b = await started({ maxPendingPerPeer: 3 });
    const a = await started();
    const results = Array.from({ length: 5 }, () => a.request(b.address, { type: 'hang' }, { timeout: 10_000 }).catch((e: KvError) => e.code));
    await until(() => b.stats().overloaded === 2, 'two requests to be refused');
    expect(hanging).toHaveLength(3);
    for (const release of hanging) release();
    hanging = [];
    expect((await Promise.all(results)).sort()).toEqual(['KV_OVERLOADED', 'KV_OVERLOADED', { type: 'late' }, { type: 'late' }, { type: 'late' }].sort());
  });

  it('past maxBufferedBytesPerPeer bytes waiting to be sent, a request fails at once with KV_OVERLOADED (while connecting)', async () => {
    const b = await started();
    const a = await started({ maxBufferedBytesPerPeer: 100_000 });
    const payload = new Uint8Array(30_000);
    // Ten in one tick, before the connection is up: they all wait for it.
    const results = await Promise.all(
      Array.from({ length: 10 }, () => a.request(b.address, { type: 'echo', payload }).then(() => 'ok', (e: KvError) => e.code)),
    );
    expect(results).toEqual(['ok', 'ok', 'ok', ...new Array(7).fill('KV_OVERLOADED')]);
    expect(a.stats().overloaded).toBe(7);
  });

  it('past maxBufferedBytesPerPeer bytes waiting to be sent, a request fails at once with KV_OVERLOADED (on an open connection to a peer that stopped reading)', async () => {
    // A large batch goes to the socket at once (FLUSH_BATCH_BYTES), so bytes
    // wait only once the kernel's buffers are full: the peer must stop reading.
    let stalled: Socket | undefined;
    const address = await fakeAcceptor((_frame, socket) => {
      stalled = socket;
      socket.pause();
    });
    const a = await started({ maxBufferedBytesPerPeer: 100_000 });
    const payload = new Uint8Array(30_000);
    const pending: Promise<unknown>[] = [];
    const send = (): Promise<string> => {
      const p = a.request(address, { type: 'echo', payload }, { timeout: 60_000 }).then(
        () => 'ok',
        (e: KvError) => e.code,
      );
      pending.push(p);
      return p;
    };
    void send();
    await until(() => stalled !== undefined, 'the peer to get a request and stop reading');
    // One request a turn until the kernel's buffers are full and the bytes wait here (a few MB on loopback).
    let sent = 1;
    while (a.stats().overloaded === 0) {
      expect(sent).toBeLessThan(2_000);
      void send();
      sent++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const refused = await pending.at(-1);
    expect(refused).toBe('KV_OVERLOADED');
    // Still waiting: the next one is refused too, at once.
    expect(await send()).toBe('KV_OVERLOADED');
    expect(a.stats().overloaded).toBe(2);
    await a.stop(); // the accepted ones fail with the connection
    stalled!.destroy(); // paused, it would never see the end (and the server never close)
    const codes = new Set(await Promise.all(pending.slice(0, -2)));
    expect([...codes].every((c) => c !== 'ok' && c !== 'KV_OVERLOADED')).toBe(true);
  });

  it('a peer that does not read its answers stops being read (bounded memory) and loses nothing once it reads again', async () => {
    const b = await started({ maxBufferedBytesPerPeer: 256 * 1024 });
    const raw = await RawPeer.connect(b.address);
    await raw.hello();
    raw.socket.pause();
    const count = 1000;
    const payload = new Uint8Array(16 * 1024);
    for (let i = 1; i <= count; i++) raw.sendFrame({ kind: 'req', id: i, from: '127.0.0.1:9', body: { type: 'echo', payload } });
    await until(() => b.stats().readsPaused >= 1, 'the acceptor to stop reading');
    const received = b.stats().requestsReceived;
    expect(received).toBeLessThan(count);
    raw.socket.resume();
    await raw.wait(() => raw.frames.length >= count, `${count} answers`, 20_000);
    expect(raw.frames.map((f) => f.id)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(b.stats().requestsReceived).toBe(count);
  });

  it('a received record is a view no later read overwrites: 2,000 kept kv.apply records read back as sent (plain, secret, TLS)', async () => {
    // kv.apply's record stays a view of the bytes the socket delivered (the codec's payload
    // slots); that is only safe while every socket read (TLS included) lands in a buffer of
    // its own that nothing reuses. Records of 1-5 KB, 64 in flight: many reads, frames split across them.
    const pki = makeTestPki();
    for (const options of [{}, { secret: 'a secret of at least 16 bytes' }, { tls: pki.node }] as TcpTransportOptions[]) {
      const kept: Uint8Array[] = [];
      const b = await started(options, (m) => {
        kept.push(m['record'] as Uint8Array);
        return { type: 'kv.applied' };
      });
      const a = await started(options);
      const record = (i: number): Uint8Array => new Uint8Array(1024 + ((i * 397) % 4096)).fill(i % 251);
      let next = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < 2_000) {
            const i = next++;
            const r = record(i);
            r[0] = i & 0xff;
            r[1] = i >> 8;
            await a.request(b.address, { type: 'kv.apply', cluster: '', key: Uint8Array.of(1, 2, 3), record: r });
          }
        }),
      );
      expect(kept).toHaveLength(2_000);
      for (const got of kept) {
        const i = got[0]! | (got[1]! << 8);
        const want = record(i);
        want[0] = i & 0xff;
        want[1] = i >> 8;
        expect(Buffer.compare(got, want)).toBe(0);
      }
      await a.stop();
      await b.stop();
    }
  });

  it('stop() leaves no socket, server or timer behind, with requests in flight, TLS and a silent raw client', async () => {
    const pki = makeTestPki();
    const kinds = new Set(['TCPServerWrap', 'TCPSocketWrap', 'TLSWrap', 'Timeout']);
    const handles = (): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) if (kinds.has(r)) out[r] = (out[r] ?? 0) + 1;
      return out;
    };
    const before = handles();
    for (const options of [{ secret: 'a secret of at least 16 bytes' }, { tls: pki.node }] as TcpTransportOptions[]) {
      const b = new TcpTransport({ host: '127.0.0.1', port: 0, closeTimeout: 300, ...options });
      const a = new TcpTransport({ host: '127.0.0.1', port: 0, closeTimeout: 300, ...options });
      await b.start(handler);
      await a.start(handler);
      await a.request(b.address, { type: 'echo' });
      await b.request(a.address, { type: 'echo' });
      const inFlight = failure(a.request(b.address, { type: 'hang' }, { timeout: 60_000 }));
      await until(() => hanging.length === 1, 'the hanging request');
      const silent = await RawPeer.connect(b.address, { allowHalfOpen: true }); // never says anything, never closes
      await a.stop();
      expect((await inFlight).code).toBe('KV_CONNECTION_CLOSED');
      await b.stop();
      silent.socket.destroy();
      await silent.closed;
      for (const release of hanging) release();
      hanging = [];
    }
    // Nothing of ours is left (other tests' timers may come and go: none more than before).
    const after = handles();
    for (const kind of kinds) expect(after[kind] ?? 0, kind).toBeLessThanOrEqual(before[kind] ?? 0);
  });

  it('stop() is bounded by closeTimeout when a peer never closes its side', async () => {
    const b = await started({ closeTimeout: 200 });
    const raw = await RawPeer.connect(b.address, { allowHalfOpen: true }); // never ends its side
    await raw.hello();
    const t0 = Date.now();
    await b.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(Date.now() - t0).toBeLessThan(1_500);
  });
});
