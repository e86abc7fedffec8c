import type { Socket } from 'node:net';
import { ErrorCodes, KvError, toKvError } from '../../errors/index.js';
import type { Clock, TimerHandle } from '../../internal/clock.js';
import { decodeFrameIn, encodeFrame, encodeFrameWith, type CodecLimits, type Frame } from '../codec.js';
import { FrameReader, FrameTooLargeError, LENGTH_PREFIX_BYTES } from './frame-reader.js';
import { HANDSHAKE_LIMITS, type HandshakeIdentity } from './handshake.js';
import type { TcpCounters } from './stats.js';

/**
 * Frames are written behind their length prefix into output chunks: a
 * turn's frames go out as one region of a chunk (one write); a chunk is
 * never written over (the next turn's frames follow in it, a full one is
 * replaced by a new one, twice as large up to this size), so nothing is
 * allocated per frame and a quiet connection holds a small chunk.
 */
const OUT_CHUNK_BYTES = 64 * 1024;
/** Size of a connection's first output chunk. */
const OUT_FIRST_CHUNK_BYTES = 4 * 1024;
/** A frame larger than this gets a buffer of its own instead of a place in a chunk. */
const OUT_MAX_IN_CHUNK = 16 * 1024;
/**
 * A turn's batch is written at once when it reaches this many bytes, not
 * at the end of the turn: a long turn (a coordinator that completes and
 * starts dozens of operations in one go) then gets its first frames to the
 * peer while it goes on with the rest, so both processes work at the same
 * time instead of taking turns (see docs/tcp.md, "Batching"). One output
 * chunk: with {@link FLUSH_BATCH_FRAMES}, 1 KB frames (a put's) leave every
 * 32 frames; at 16 KiB they left every ~14, and the extra writes cost the
 * tcp bench's puts ~10% of their CPU.
 */
export const FLUSH_BATCH_BYTES = 32 * 1024;
/**
 * ... or this many frames, for the same reason: small frames (a get's
 * requests, acknowledgements) never reach the byte bound, so a coordinator
 * completing and starting dozens of gets in one turn held all their
 * requests to its end. Measured on the tcp bench (docs/tcp.md): gets
 * 6-21% faster in a closed loop and 13-18% more sustained in an open one,
 * at the same CPU per operation; puts unchanged.
 */
export const FLUSH_BATCH_FRAMES = 32;
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
 * per event-loop turn, Nagle off, keep-alive on; a handshake deadline, a per-frame
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
  /** Output regions waiting for the end of the turn, before the one being filled in `#out`. */
  #batch: Uint8Array[] = [];
  /** Bytes in `#batch` and in `#out[#outStart, #outPos)`. */
  #batchBytes = 0;
  /** Frames in this turn's batch. */
  #batchFrames = 0;
  /** The output chunk being filled: this turn's frames are `#out[#outStart, #outPos)`. */
  #out: Buffer | undefined;
  #outStart = 0;
  #outPos = 0;
  #outChunkBytes = OUT_FIRST_CHUNK_BYTES;
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

  /** Bytes written and not yet taken by the kernel (this turn's batch included). */
  get writableLength(): number {
    return this.socket.writableLength + this.#batchBytes;
  }

  /** True while reading is paused because the peer does not take our answers. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Writes one encoded frame behind its length prefix (the bytes are copied:
   * the caller may reuse them). Frames of one event-loop turn are batched
   * and written together in its check phase (`setImmediate`), or as soon as
   * the batch reaches {@link FLUSH_BATCH_BYTES} or {@link FLUSH_BATCH_FRAMES}:
   * one write when they fit in one output chunk, corked into one `writev` otherwise.
   * Not on `process.nextTick`: Node runs the tick queue after every I/O
   * and timer callback, so answers to the requests of several sockets'
   * reads (a coordinator hears from every replica) would leave in one write
   * per read; gathered to the check phase they leave in one per turn. The
   * trade (less CPU per operation, a later first write) is measured in
   * docs/tcp.md.
   */
  send(bytes: Uint8Array): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    this.#append(bytes);
  }

  /**
   * Encodes and sends a frame under the connection's current limits.
   * @throws KvError `KV_INVALID_MESSAGE` if it cannot be encoded (nothing sent).
   */
  sendFrame(frame: Frame): void {
    if (this.state === 'closed' || this.socket.destroyed) {
      encodeFrame(frame, this.#limits); // still refuses what cannot be encoded
      return;
    }
    encodeFrameWith(frame, this.#limits, this.#append);
  }

  /**
   * Encodes and sends a frame unless the bytes waiting to be sent
   * ({@link writableLength}) are above 0 and the frame would take them past
   * `maxBuffered`: then nothing is sent. Returns 0 when sent (or dropped on
   * a closed connection), else the frame's size with its prefix.
   *
   * @throws KvError `KV_INVALID_MESSAGE` if it cannot be encoded (nothing sent).
   */
  sendFrameWithin(frame: Frame, maxBuffered: number): number {
    this.#maxBuffered = maxBuffered;
    this.#refusedSize = 0;
    if (this.state === 'closed' || this.socket.destroyed) {
      encodeFrame(frame, this.#limits);
      return 0;
    }
    encodeFrameWith(frame, this.#limits, this.#appendWithin);
    return this.#refusedSize;
  }

  #maxBuffered = Infinity;
  #refusedSize = 0;

  readonly #appendWithin = (bytes: Uint8Array): void => {
    const size = bytes.byteLength + LENGTH_PREFIX_BYTES;
    const buffered = this.writableLength;
    if (buffered > 0 && buffered + size > this.#maxBuffered) {
      this.#refusedSize = size;
      return;
    }
    this.#append(bytes);
  };

  /** Copies `bytes` behind its length prefix into the output, and schedules the flush. */
  readonly #append = (bytes: Uint8Array): void => {
    const n = bytes.byteLength;
    const size = n + LENGTH_PREFIX_BYTES;
    if (n > OUT_MAX_IN_CHUNK) {
      this.#cutRegion();
      const own = Buffer.allocUnsafe(size);
      own.writeUInt32BE(n, 0);
      own.set(bytes, LENGTH_PREFIX_BYTES);
      this.#batch.push(own);
    } else {
      let out = this.#out;
      if (out === undefined || out.byteLength - this.#outPos < size) {
        this.#cutRegion();
        const chunkBytes = this.#outChunkBytes;
        this.#outChunkBytes = Math.min(OUT_CHUNK_BYTES, chunkBytes * 2);
        out = this.#out = Buffer.allocUnsafe(Math.max(chunkBytes, size));
        this.#outStart = this.#outPos = 0;
      }
      let p = this.#outPos;
      out[p] = n >>> 24;
      out[p + 1] = (n >>> 16) & 0xff;
      out[p + 2] = (n >>> 8) & 0xff;
      out[p + 3] = n & 0xff;
      p += LENGTH_PREFIX_BYTES;
      if (n <= 64) {
        for (let i = 0; i < n; i++) out[p + i] = bytes[i]!;
      } else {
        out.set(bytes, p);
      }
      this.#outPos = p + n;
    }
    this.#batchBytes += size;
    if (this.#batchBytes >= FLUSH_BATCH_BYTES || ++this.#batchFrames >= FLUSH_BATCH_FRAMES) {
      // The flush already scheduled (if any) writes what this turn adds after.
      this.#writeBatch();
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
    const c = this.#o.counters;
    c.framesSent++;
    c.bytesSent += size;
  };

  /** Moves what this turn wrote into the current chunk to the batch (its place in the chunk is never written again). */
  #cutRegion(): void {
    const out = this.#out;
    if (out === undefined || this.#outPos === this.#outStart) return;
    this.#batch.push(out.subarray(this.#outStart, this.#outPos));
    this.#outStart = this.#outPos;
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

  /** Writes the frames batched this turn (the check phase's flush). */
  #flush = (): void => {
    this.#flushScheduled = false;
    this.#writeBatch();
  };

  /** Hands the batched frames to the socket: one write, or one writev for several regions. */
  #writeBatch(): void {
    this.#cutRegion();
    const list = this.#batch;
    if (list.length === 0) return;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#batchFrames = 0;
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    this.#o.counters.socketWrites++;
    if (list.length === 1) {
      socket.write(list[0]!);
      return;
    }
    // Several regions (a full chunk, a large frame): one writev, nothing copied.
    socket.cork();
    for (const b of list) socket.write(b);
    socket.uncork();
  }

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
      let more: boolean;
      try {
        more = reader.advance();
      } catch (err) {
        if (err instanceof FrameTooLargeError) c.framesTooLarge++;
        else c.malformedFrames++;
        this.refuse(toKvError(err, ErrorCodes.INVALID_MESSAGE));
        return;
      }
      if (!more) break;
      this.#framesIn++;
      let frame: Frame;
      try {
        // Decoded where it lies in the chunk; binaries come out as copies.
        frame = decodeFrameIn(reader.frameBytes, reader.frameStart, reader.frameEnd, this.#limits);
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
