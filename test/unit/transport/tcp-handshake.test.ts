import { createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import { decodeFrame, encodeFrame } from '../../../src/transport/codec.js';
import { TcpTransport, type TcpConnectionEvent, type TcpTransportOptions } from '../../../src/transport/index.js';
import { FrameReader } from '../../../src/transport/tcp/frame-reader.js';
import { computeProof, negotiateVersion, type Transcript } from '../../../src/transport/tcp/handshake.js';
import type { RequestHandler, TransportContext } from '../../../src/transport/types.js';
import { makeTestPki } from './tcp-certs.js';
import { RawPeer, framed, until } from './tcp-raw.js';

const SECRET = 'sixteen+ bytes of cluster secret';
const pki = makeTestPki();

let open: TcpTransport[] = [];
let servers: Server[] = [];
let handled = 0;
const handler: RequestHandler = (m) => {
  handled++;
  return { type: 'echo', payload: m.payload };
};

afterEach(async () => {
  for (const t of open) await t.stop();
  open = [];
  await RawPeer.destroyAll();
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
  servers = [];
  handled = 0;
});

/** A started transport on 127.0.0.1, port 0, recording its handshake failures. */
async function started(options: TcpTransportOptions = {}, context?: TransportContext): Promise<TcpTransport & { failures: TcpConnectionEvent[] }> {
  const t = Object.assign(new TcpTransport({ host: '127.0.0.1', port: 0, ...options }), { failures: [] as TcpConnectionEvent[] });
  t.on('handshake:failed', (e) => t.failures.push(e));
  open.push(t);
  await t.start(handler, context);
  return t;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvError);
  return (err as KvError).code;
}

describe('protocol versions', () => {
  it('uses the highest version both speak; no overlap gives undefined', () => {
    expect(negotiateVersion([1, 1], [1, 1])).toBe(1);
    expect(negotiateVersion([1, 3], [2, 5])).toBe(3);
    expect(negotiateVersion([2, 5], [1, 3])).toBe(3);
    expect(negotiateVersion([1, 1], [2, 3])).toBeUndefined();
  });

  it('a later release speaking [1, 2] talks to this one ([1, 1])', async () => {
    const older = await started();
    const newer = await started({ protocolVersions: [1, 2] });
    expect(await newer.request(older.address, { type: 'echo', payload: 1 })).toEqual({ type: 'echo', payload: 1 });
    expect(await older.request(newer.address, { type: 'echo', payload: 2 })).toEqual({ type: 'echo', payload: 2 });
  });

  it('no common version: refused with KV_PROTOCOL_MISMATCH on both sides, and the dialer fails fast while in backoff', async () => {
    const b = await started();
    const a = await started({ protocolVersions: [2, 3], reconnect: { initialDelay: 60_000 } });
    expect(await codeOf(a.request(b.address, { type: 'echo' }))).toBe('KV_PROTOCOL_MISMATCH');
    await until(() => b.failures.length === 1, 'the acceptor to report it');
    expect(b.failures[0]).toMatchObject({ direction: 'inbound', error: { code: 'KV_PROTOCOL_MISMATCH' } });
    expect(b.failures[0]!.error.message).toMatch(/2 to 3.*1 to 1/);
    expect(a.failures).toMatchObject([{ direction: 'outbound', remote: b.address, error: { code: 'KV_PROTOCOL_MISMATCH' } }]);
    expect(a.stats().handshakesFailed).toBe(1);
    expect(b.stats().handshakesFailed).toBe(1);
    // In backoff: the same code at once, without dialling again.
    const dialled = a.stats().connectionsDialed;
    expect(await codeOf(a.request(b.address, { type: 'echo' }))).toBe('KV_PROTOCOL_MISMATCH');
    expect(a.stats().connectionsDialed).toBe(dialled);
    expect(handled).toBe(0);
  });

  it('an acceptor that picks a version the dialer does not speak is refused by the dialer (KV_PROTOCOL_MISMATCH sent back)', async () => {
    const seen: unknown[] = [];
    const server = createServer((socket: Socket) => {
      const reader = new FrameReader(4096);
      socket.on('data', (chunk: Buffer) => {
        reader.push(chunk);
        for (let f = reader.next(); f; f = reader.next()) {
          const frame = decodeFrame(new Uint8Array(f));
          seen.push(frame);
          if (frame.kind === 'req') {
            const welcome = { type: 'quorumkv.welcome', version: 9, cluster: '', node: 'fake', address: '127.0.0.1:1', nonce: new Uint8Array(32), auth: 'none' };
            socket.write(framed(encodeFrame({ kind: 'res', id: 0, body: welcome })));
          }
        }
      });
      socket.on('error', () => {});
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const a = await started();
    expect(await codeOf(a.request(`127.0.0.1:${port}`, { type: 'echo' }))).toBe('KV_PROTOCOL_MISMATCH');
    await until(() => seen.length === 2, 'the refusal to reach the acceptor');
    expect(seen[1]).toMatchObject({ kind: 'err', id: 0, code: 'KV_PROTOCOL_MISMATCH' });
  });
});

describe('cluster and node identity', () => {
  it('another cluster is refused with KV_CLUSTER_MISMATCH on both sides; nothing is handled', async () => {
    const b = await started({}, { nodeId: 'b', cluster: 'blue' });
    const a = await started({}, { nodeId: 'a', cluster: 'green' });
    expect(await codeOf(a.request(b.address, { type: 'echo' }))).toBe('KV_CLUSTER_MISMATCH');
    await until(() => b.failures.length === 1, 'the acceptor to report it');
    expect(b.failures[0]!.error.code).toBe('KV_CLUSTER_MISMATCH');
    expect(b.failures[0]!.error.message).toContain('"green"');
    expect(handled).toBe(0);
  });

  it('the handler gets the peer\'s advertised address as `from`, not its socket address', async () => {
    const b = await started();
    const a = await started({ advertiseHost: 'localhost', advertisePort: 4321 });
    let from = '';
    await b.stop();
    const b2 = new TcpTransport({ host: '127.0.0.1', port: 0 });
    open.push(b2);
    await b2.start((_m, f) => {
      from = f;
      return { type: 'ok' };
    });
    await a.request(b2.address, { type: 'who' });
    expect(from).toBe('localhost:4321');
    expect(a.address).toBe('localhost:4321');
  });
});

describe('shared secret (challenge-response)', () => {
  it('the same secret on both sides connects', async () => {
    const b = await started({ secret: SECRET });
    const a = await started({ secret: SECRET });
    expect(await a.request(b.address, { type: 'echo', payload: 'ok' })).toEqual({ type: 'echo', payload: 'ok' });
    expect(a.stats().authFailures + b.stats().authFailures).toBe(0);
  });

  it('a wrong secret is dropped with KV_AUTH_FAILED, counted on both sides, and never reaches the handler', async () => {
    const b = await started({ secret: SECRET });
    const a = await started({ secret: 'a different secret, also long' });
    expect(await codeOf(a.request(b.address, { type: 'echo' }))).toBe('KV_AUTH_FAILED');
    await until(() => b.stats().authFailures === 1, 'the acceptor to count it');
    expect(a.stats().authFailures).toBe(1);
    expect(b.failures[0]).toMatchObject({ direction: 'inbound', error: { code: 'KV_AUTH_FAILED' } });
    expect(handled).toBe(0);
    // And the other way round.
    expect(await codeOf(b.request(a.address, { type: 'echo' }))).toBe('KV_AUTH_FAILED');
    expect(handled).toBe(0);
  });

  it('a peer without the secret cannot talk to a node that requires one, nor the reverse', async () => {
    const guarded = await started({ secret: SECRET });
    const open_ = await started();
    expect(await codeOf(open_.request(guarded.address, { type: 'echo' }))).toBe('KV_AUTH_FAILED');
    expect(await codeOf(guarded.request(open_.address, { type: 'echo' }))).toBe('KV_AUTH_FAILED');
    expect(handled).toBe(0);
    await until(() => guarded.stats().authFailures === 2 && open_.stats().authFailures === 2, 'both sides to count both');
  });

  it('a raw client that skips the proof, or sends a forged one, is refused before any request is handled', async () => {
    const b = await started({ secret: SECRET });
    const skip = await RawPeer.connect(b.address);
    const welcome = await skip.hello();
    expect(welcome).toMatchObject({ kind: 'res', id: 0, body: { type: 'quorumkv.welcome', auth: 'hmac-sha256' } });
    skip.sendFrame({ kind: 'req', id: 1, from: '127.0.0.1:9', body: { type: 'echo', payload: 'let me in' } });
    expect(await skip.next()).toMatchObject({ kind: 'err', id: 0, code: 'KV_AUTH_FAILED' });
    await skip.closed;

    const forge = await RawPeer.connect(b.address);
    await forge.hello();
    forge.sendFrame({ kind: 'req', id: 0, from: '127.0.0.1:9', body: { type: 'quorumkv.auth', proof: new Uint8Array(32) } });
    expect(await forge.next()).toMatchObject({ kind: 'err', id: 0, code: 'KV_AUTH_FAILED' });
    await forge.closed;
    expect(b.stats().authFailures).toBe(2);
    expect(handled).toBe(0);
  });

  it('proofs depend on the role, both nonces and the secret (no reflection, no replay)', () => {
    const side = (node: string, n: number) => ({ cluster: 'c', node, address: `${node}:1`, nonce: new Uint8Array(32).fill(n) });
    const t: Transcript = { version: 1, cluster: 'c', dialer: side('a', 1), acceptor: side('b', 2) };
    const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
    const base = hex(computeProof(Buffer.from(SECRET), 'dialer', t));
    expect(hex(computeProof(Buffer.from(SECRET), 'acceptor', t))).not.toBe(base);
    expect(hex(computeProof(Buffer.from(SECRET), 'dialer', { ...t, acceptor: side('b', 3) }))).not.toBe(base);
    expect(hex(computeProof(Buffer.from(SECRET), 'dialer', { ...t, dialer: side('a', 4) }))).not.toBe(base);
    expect(hex(computeProof(Buffer.from('another secret of 16+ bytes'), 'dialer', t))).not.toBe(base);
    expect(hex(computeProof(Buffer.from(SECRET), 'dialer', t))).toBe(base);
  });
});

describe('mutual TLS', () => {
  it('two nodes with certificates of the cluster CA connect', async () => {
    const b = await started({ tls: pki.node });
    const a = await started({ tls: pki.node2 });
    expect(await a.request(b.address, { type: 'echo', payload: 'tls' })).toEqual({ type: 'echo', payload: 'tls' });
  });

  it('a dialer without a client certificate is told KV_AUTH_FAILED and closed before anything it sends is read', async () => {
    const b = await started({ tls: pki.node });
    const socket = tlsConnect({ host: '127.0.0.1', port: b.port!, ca: pki.node.ca });
    const reader = new FrameReader(4096);
    const frames: unknown[] = [];
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let f = reader.next(); f; f = reader.next()) frames.push(decodeFrame(new Uint8Array(f)));
    });
    socket.on('error', () => {});
    socket.once('secureConnect', () => {
      socket.write(framed(encodeFrame({ kind: 'req', id: 1, from: '127.0.0.1:9', body: { type: 'echo', payload: 'no cert' } })));
    });
    await new Promise((resolve) => socket.once('close', resolve));
    expect(frames).toMatchObject([{ kind: 'err', id: 0, code: 'KV_AUTH_FAILED' }]);
    expect(b.stats().authFailures).toBe(1);
    expect(b.failures[0]).toMatchObject({ direction: 'inbound', error: { code: 'KV_AUTH_FAILED' } });
    expect(handled).toBe(0);
  });

  for (const [what, key] of [
    ['a certificate of another CA', 'rogue'],
    ['a self-signed certificate', 'selfSigned'],
  ] as const) {
    it(`${what} cannot connect, nor be connected to: KV_AUTH_FAILED for the dialer, a failed handshake for both`, async () => {
      const member = await started({ tls: pki.node });
      const outsider = await started({ tls: pki[key] });
      expect(await codeOf(outsider.request(member.address, { type: 'echo' }))).toBe('KV_AUTH_FAILED');
      expect(await codeOf(member.request(outsider.address, { type: 'echo' }))).toBe('KV_AUTH_FAILED');
      await until(() => member.stats().handshakesFailed >= 2 && outsider.stats().handshakesFailed >= 2, 'both to count both');
      expect(member.stats().authFailures).toBeGreaterThanOrEqual(1);
      expect(outsider.stats().authFailures).toBeGreaterThanOrEqual(1);
      expect(handled).toBe(0);
    });
  }

  it('a dialer that trusts the cluster CA but presents a certificate of another CA is refused by the acceptor (KV_AUTH_FAILED on both sides)', async () => {
    const member = await started({ tls: pki.node });
    const impostor = await started({ tls: pki.impostor });
    expect(await codeOf(impostor.request(member.address, { type: 'echo' }))).toBe('KV_AUTH_FAILED');
    await until(() => member.stats().authFailures === 1, 'the acceptor to count it');
    expect(member.failures[0]).toMatchObject({ direction: 'inbound', error: { code: 'KV_AUTH_FAILED' } });
    expect(handled).toBe(0);
  });

  it('a certificate of the CA naming another host is refused by the dialer, unless verifyHostname is false', async () => {
    const b = await started({ tls: pki.wrongHost });
    const strict = await started({ tls: pki.node });
    const err = await strict.request(b.address, { type: 'echo' }).catch((e: unknown) => e as KvError);
    expect((err as KvError).code).toBe('KV_AUTH_FAILED');
    expect((err as KvError).message).toMatch(/127\.0\.0\.1|altname|IP/i);
    const lax = await started({ tls: { ...pki.node, verifyHostname: false } });
    expect(await lax.request(b.address, { type: 'echo', payload: 1 })).toEqual({ type: 'echo', payload: 1 });
  });

  it('a plain TCP peer cannot talk to a TLS node', async () => {
    const b = await started({ tls: pki.node, handshakeTimeout: 500 });
    const plain = await started({ handshakeTimeout: 500 });
    expect(['KV_UNREACHABLE', 'KV_AUTH_FAILED']).toContain(await codeOf(plain.request(b.address, { type: 'echo' })));
    await until(() => b.stats().handshakesFailed >= 1, 'the TLS node to count it');
    expect(handled).toBe(0);
  });

  it('a TCP connection that never starts TLS is closed after handshakeTimeout and counted', async () => {
    const b = await started({ tls: pki.node, handshakeTimeout: 200 });
    const raw = await RawPeer.connect(b.address);
    await raw.closed;
    await until(() => b.stats().slowConnectionsClosed === 1, 'the slow TLS handshake to be counted');
    expect(b.failures[0]!.error.code).toBe('KV_TIMEOUT');
  });
});
