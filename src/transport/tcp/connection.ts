import type { Socket } from 'node:net';
import { ErrorCodes, KvError, toKvError } from '../../errors/index.js';
import type { Clock, TimerHandle } from '../../internal/clock.js';
import { decodeFrame, encodeFrame, type CodecLimits, type Frame } from '../codec.js';
import { FrameReader, FrameTooLargeError, LENGTH_PREFIX_BYTES } from './frame-reader.js';
import { HANDSHAKE_LIMITS, type HandshakeIdentity } from './handshake.js';
import type { TcpCounters } from './stats.js';

/** A tick's batch up to this size is copied into one buffer (one write); a larger one is written with writev, uncopied. */
const COALESCE_BYTES = 256 * 1024;
/** TCP keep-alive probe delay: a silently dead peer is noticed without any traffic. */
const KEEPALIVE_MS = 15_000;
/** Longest error message put in a refusal frame. */
const MAX_REFUSAL_MESSAGE = 512;

/** OpenSSL certificate verification failures (Node puts them in `err.code`). */
const CERT_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'CERT_CHAIN_TOO_LONG',
  'PATH_LENGTH_EXCEEDED',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_REVOKED',
  'HOSTNAME_MISMATCH',
]);

/**
 * True for a TLS failure that means "this peer is not one of ours": a
 * certificate not signed by the cluster CA, a wrong host name, a missing
 * client certificate (alerts come as `ERR_SSL_*`).
 * @internal
 */
export function isTlsAuthError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return CERT_ERRORS.has(code) || code.startsWith('ERR_SSL_') || code === 'ERR_TLS_CERT_ALTNAME_INVALID';
}

/** Which side dialled. */
export type Direction = 'inbound' | 'outbound';

/** @internal */
export interface ConnectionOptions {
  readonly direction: Direction;
  /** The socket's remote end (`ip:port`), for events and messages. */
  readonly remote: string;
  /** Frame cap once established (the handshake uses its own small one). */
  readonly maxFrameBytes: number;
  readonly frameTimeout: number;
  readonly handshakeTimeout: number;
  readonly closeTimeout: number;
  readonly clock: Clock;
  readonly counters: TcpCounters;
  /** A decoded frame arrived. */
  readonly onFrame: (conn: Connection, frame: Frame) => void;
  /**
   * The connection is over (called once, as soon as either side starts
   * closing it): `error` says why when it did not end normally; `phase` is
   * where it was.
   */
  readonly onClose: (conn: Connection, error: KvError | undefined, phase: 'handshake' | 'open') => void;
}

/**
 * One framed socket: length-prefixed frames of the wire codec, writes batched
 * per tick, Nagle off, keep-alive on; a handshake deadline, a per-frame
 * deadline (slowloris), a frame cap checked before anything is buffered, and
 * a graceful close bounded by `closeTimeout`. It knows nothing of requests:
 * the transport handles the frames.
 *
 * @internal
 */
export class Connection {
  readonly socket: Socket;
  readonly direction: Direction;
  readonly remote: string;
  /** `handshake` until {@link established}; `closing` once either side began closing. */
  state: 'handshake' | 'open' | 'closing' | 'closed' = 'handshake';
  /** What the peer said about itself in the handshake. */
  peer: HandshakeIdentity | undefined = undefined;
  /** The protocol version in use (0 during the handshake). */
  version = 0;
  /** Settles when the socket has closed. */
  readonly closed: Promise<void>;

  readonly #o: ConnectionOptions;
  readonly #reader = new FrameReader(HANDSHAKE_LIMITS.maxFrameBytes);
  #limits: Readonly<CodecLimits> = HANDSHAKE_LIMITS;
  /** Frames (prefix, body, prefix, body…) waiting for the end of the tick. */
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #flushScheduled = false;
  #notified = false;
  #handshakeTimer: TimerHandle | undefined;
  #frameTimer: TimerHandle | undefined;
  #destroyTimer: TimerHandle | undefined;
  #partial = false;
  #partialSince = 0;
  #framesIn = 0;
  #paused = false;
  #resolveClosed!: () => void;

  constructor(socket: Socket, options: ConnectionOptions) {
    this.socket = socket;
    this.direction = options.direction;
    this.remote = options.remote;
    this.#o = options;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_MS);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onSocketClose);
  }

  /** Arms the handshake deadline (inbound: on accept; outbound: once connected). */
  startHandshakeTimer(): void {
    if (this.state !== 'handshake' || this.#handshakeTimer !== undefined) return;
    this.#handshakeTimer = this.#o.clock.setTimeout(() => {
      this.#handshakeTimer = undefined;
      if (this.state !== 'handshake') return;
      this.#o.counters.slowConnectionsClosed++;
      this.destroy(new KvError(ErrorCodes.TIMEOUT, `handshake with ${this.remote} not completed within ${this.#o.handshakeTimeout} ms`));
    }, this.#o.handshakeTimeout);
  }

  /** The handshake completed: frames of any size up to the cap are accepted from now on. */
  established(peer: HandshakeIdentity, version: number, limits: Readonly<CodecLimits>): void {
    if (this.state !== 'handshake') return;
    this.state = 'open';
    this.peer = peer;
    this.version = version;
    this.#limits = limits;
    this.#reader.maxFrameBytes = this.#o.maxFrameBytes;
    this.#clearHandshakeTimer();
  }

  /** Bytes written and not yet taken by the kernel (this tick's batch included). */
  get writableLength(): number {
    return this.socket.writableLength + this.#batchBytes;
  }

  /** True while reading is paused because the peer does not take our answers. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Writes one encoded frame behind its length prefix. Frames of one tick
   * are batched and written together on the next (`process.nextTick`): one
   * buffer and one write when small, corked into one `writev` when large.
   */
  send(bytes: Uint8Array): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    const n = bytes.byteLength;
    const prefix = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES);
    prefix.writeUInt32BE(n, 0);
    this.#batch.push(prefix, bytes);
    this.#batchBytes += n + LENGTH_PREFIX_BYTES;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(this.#flush);
    }
    const c = this.#o.counters;
    c.framesSent++;
    c.bytesSent += n + LENGTH_PREFIX_BYTES;
  }

  /**
   * Encodes and sends a frame under the connection's current limits.
   * @throws KvError `KV_INVALID_MESSAGE` if it cannot be encoded (nothing sent).
   */
  sendFrame(frame: Frame): void {
    this.send(encodeFrame(frame, this.#limits));
  }

  /** Stops reading until the peer has taken what we wrote (backpressure on a peer that does not read). */
  pauseUntilDrained(): void {
    // Only when a write asked for 'drain' (over the socket's highWaterMark): else no 'drain' would come.
    if (this.#paused || this.state !== 'open' || !this.socket.writableNeedDrain) return;
    this.#paused = true;
    this.#o.counters.readsPaused++;
    this.socket.pause();
    this.socket.once('drain', () => {
      this.#paused = false;
      if (this.#partial) this.#partialSince = this.#o.clock.now();
      if (this.state === 'open') this.socket.resume();
    });
  }

  /**
   * Refuses the peer: sends `err 0 <code> <message>` (best effort), then
   * closes gracefully. The peer learns why; we report `error`.
   */
  refuse(error: KvError): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    try {
      const message = error.message.length > MAX_REFUSAL_MESSAGE ? `${error.message.slice(0, MAX_REFUSAL_MESSAGE)}…` : error.message;
      this.send(encodeFrame({ kind: 'err', id: 0, code: error.code, message }, HANDSHAKE_LIMITS));
    } catch {
      // Nothing more to say: close anyway.
    }
    this.end(error);
  }

  /**
   * Closes gracefully: our side ends (after what is written), the peer is
   * expected to end its own; after `closeTimeout` the socket is destroyed.
   * Frames arriving meanwhile are ignored.
   */
  end(error?: KvError): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.#notify(error);
    this.#flush();
    this.socket.end();
    this.#armDestroy();
  }

  /** Closes at once. */
  destroy(error?: KvError): void {
    if (this.state === 'closed') return;
    this.#notify(error);
    this.socket.destroy();
  }

  /** True once closing began (a method, so TypeScript does not narrow `state` across calls). */
  #over(): boolean {
    return this.state === 'closing' || this.state === 'closed';
  }

  /** Writes the frames batched this tick. */
  #flush = (): void => {
    this.#flushScheduled = false;
    const list = this.#batch;
    const total = this.#batchBytes;
    if (list.length === 0) return;
    this.#batch = [];
    this.#batchBytes = 0;
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (total <= COALESCE_BYTES) {
      socket.write(Buffer.concat(list, total));
      return;
    }
    // Large frames are not copied: one writev.
    socket.cork();
    for (const b of list) socket.write(b);
    socket.uncork();
  };

  #armDestroy(): void {
    if (this.#destroyTimer !== undefined || this.state === 'closed') return;
    this.#destroyTimer = this.#o.clock.setTimeout(() => {
      this.#destroyTimer = undefined;
      this.socket.destroy();
    }, this.#o.closeTimeout);
  }

  #notify(error: KvError | undefined): void {
    if (this.#notified) return;
    this.#notified = true;
    const phase = this.state === 'open' ? 'open' : 'handshake';
    if (this.state !== 'closed') this.state = 'closing';
    this.#clearHandshakeTimer();
    this.#reader.clear();
    this.#partial = false;
    this.#o.onClose(this, error, phase);
  }

  #clearHandshakeTimer(): void {
    if (this.#handshakeTimer !== undefined) {
      this.#o.clock.clearTimeout(this.#handshakeTimer);
      this.#handshakeTimer = undefined;
    }
  }

  #onData = (chunk: Buffer): void => {
    if (this.state === 'closing' || this.state === 'closed') return; // closing: what the peer still sends is ignored
    const c = this.#o.counters;
    c.bytesReceived += chunk.byteLength;
    const reader = this.#reader;
    reader.push(chunk);
    const before = this.#framesIn;
    for (;;) {
      let bytes: Buffer | undefined;
      try {
        bytes = reader.next();
      } catch (err) {
        if (err instanceof FrameTooLargeError) c.framesTooLarge++;
        else c.malformedFrames++;
        this.refuse(toKvError(err, ErrorCodes.INVALID_MESSAGE));
        return;
      }
      if (!bytes) break;
      this.#framesIn++;
      let frame: Frame;
      try {
        // A plain Uint8Array view: decoded binaries must be Uint8Arrays, not Buffers
        // (and Buffer#slice would not copy).
        frame = decodeFrame(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), this.#limits);
      } catch (err) {
        c.malformedFrames++;
        this.refuse(toKvError(err, ErrorCodes.INVALID_MESSAGE));
        return;
      }
      c.framesReceived++;
      try {
        this.#o.onFrame(this, frame);
      } catch (err) {
        // A bug in frame handling must cost this connection, never the process.
        this.destroy(toKvError(err, ErrorCodes.INTERNAL));
        return;
      }
      if (this.#over()) return;
    }
    if (reader.buffered > 0) {
      if (!this.#partial || this.#framesIn !== before) {
        this.#partial = true;
        this.#partialSince = this.#o.clock.now();
      }
      if (this.#frameTimer === undefined) {
        this.#frameTimer = this.#o.clock.setTimeout(this.#onFrameTimer, this.#o.frameTimeout);
      }
    } else {
      this.#partial = false;
    }
  };

  #onFrameTimer = (): void => {
    this.#frameTimer = undefined;
    if (!this.#partial || this.state === 'closing' || this.state === 'closed') return;
    const frameTimeout = this.#o.frameTimeout;
    const elapsed = this.#paused ? 0 : this.#o.clock.now() - this.#partialSince;
    if (elapsed >= frameTimeout) {
      this.#o.counters.slowConnectionsClosed++;
      this.destroy(new KvError(ErrorCodes.TIMEOUT, `frame from ${this.remote} not completed within ${frameTimeout} ms`));
      return;
    }
    this.#frameTimer = this.#o.clock.setTimeout(this.#onFrameTimer, frameTimeout - elapsed);
  };

  #onEnd = (): void => {
    // The peer closed its side; ours ends too (allowHalfOpen is off).
    this.#notify(new KvError(ErrorCodes.CONNECTION_CLOSED, `${this.remote} closed the connection`));
    this.#armDestroy();
  };

  #onError = (err: Error): void => {
    const code = (err as { code?: unknown }).code;
    const detail = `${typeof code === 'string' ? `${code} ` : ''}${err.message}`;
    this.#notify(
      isTlsAuthError(err)
        ? new KvError(ErrorCodes.AUTH_FAILED, `TLS authentication with ${this.remote} failed: ${detail}`, { cause: err })
        : new KvError(ErrorCodes.CONNECTION_CLOSED, `connection with ${this.remote} failed: ${detail}`, { cause: err }),
    );
  };

  #onSocketClose = (): void => {
    this.#notify(new KvError(ErrorCodes.CONNECTION_CLOSED, `connection with ${this.remote} closed`));
    this.state = 'closed';
    const clock = this.#o.clock;
    if (this.#frameTimer !== undefined) clock.clearTimeout(this.#frameTimer);
    if (this.#destroyTimer !== undefined) clock.clearTimeout(this.#destroyTimer);
    this.#frameTimer = undefined;
    this.#destroyTimer = undefined;
    this.#clearHandshakeTimer();
    this.#resolveClosed();
  };
}
