import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { decodeFrame, encodeFrame, type Frame } from '../../../src/transport/codec.js';
import { FrameReader } from '../../../src/transport/tcp/frame-reader.js';
import { parseAddress } from '../../../src/transport/tcp/address.js';
import type { WireMessage } from '../../../src/transport/types.js';

/** `[u32 length][payload]`. */
export function framed(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.byteLength);
  out.writeUInt32BE(payload.byteLength, 0);
  out.set(payload, 4);
  return out;
}

/** Resolves when `check()` holds, polling each turn of the event loop; rejects after `ms`. */
export async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * A hand-driven client speaking (or not) the wire protocol to a live
 * TcpTransport: for hostile-input tests. Registers itself in `all` so tests
 * can destroy every one in `afterEach`.
 */
export class RawPeer {
  static readonly all = new Set<RawPeer>();
  readonly socket: Socket;
  readonly frames: Frame[] = [];
  /** Settles when the socket closed. */
  readonly closed: Promise<void>;
  isClosed = false;
  readonly #reader = new FrameReader(64 * 1024 * 1024);
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    RawPeer.all.add(this);
    socket.on('data', (chunk: Buffer) => {
      this.#reader.push(chunk);
      for (let f = this.#reader.next(); f; f = this.#reader.next()) {
        this.frames.push(decodeFrame(new Uint8Array(f), { maxFrameBytes: 64 * 1024 * 1024 }));
      }
      this.#wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        RawPeer.all.delete(this);
        this.#wake();
        resolve();
      }),
    );
  }

  /**
   * Connects to `address` (`host:port`). With `allowHalfOpen`, it does not
   * close its side when the other side closes (a peer that never says goodbye).
   */
  static connect(address: string, options: { allowHalfOpen?: boolean } = {}): Promise<RawPeer> {
    const target = parseAddress(address)!;
    return new Promise((resolve, reject) => {
      const socket = connect({ host: target.host, port: target.port, allowHalfOpen: options.allowHalfOpen ?? false });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawPeer(socket));
      });
    });
  }

  static destroyAll(): Promise<void> {
    const peers = [...RawPeer.all];
    for (const p of peers) p.socket.destroy();
    return Promise.all(peers.map((p) => p.closed)).then(() => undefined);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `check()` holds after some frame arrived or the socket closed. */
  wait(check: () => boolean, what: string, ms = 5_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw peer: timed out after ${ms} ms waiting for ${what}`)), ms);
      const test = (): void => {
        if (check()) {
          clearTimeout(timer);
          resolve();
        } else this.#waiters.push(test);
      };
      test();
    });
  }

  /** The next frame not yet taken, or rejects if the socket closes first. */
  async next(ms = 5_000): Promise<Frame> {
    await this.wait(() => this.frames.length > 0 || this.isClosed, 'a frame', ms);
    const f = this.frames.shift();
    if (!f) throw new Error('raw peer: the connection closed without a frame');
    return f;
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  sendFrame(frame: Frame): void {
    this.send(framed(encodeFrame(frame)));
  }

  /** Sends a hello (overridable fields) and returns the answer frame. */
  async hello(fields: Partial<{ cluster: string; node: string; address: string; versions: [number, number] }> = {}): Promise<Frame> {
    const body: WireMessage = {
      type: 'quorumkv.hello',
      versions: fields.versions ?? [1, 1],
      cluster: fields.cluster ?? '',
      node: fields.node ?? 'raw',
      address: fields.address ?? '127.0.0.1:9',
      nonce: new Uint8Array(randomBytes(32)),
    };
    this.sendFrame({ kind: 'req', id: 0, from: body['address'] as string, body });
    return this.next();
  }
}
