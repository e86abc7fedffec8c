import { ErrorCodes, KvError, toKvError, type ErrorCode } from '../../errors/index.js';
import type { TimerHandle } from '../../internal/clock.js';
import { encodeFrame, type CodecLimits, type Frame } from '../codec.js';
import { PendingRequests } from '../pending-requests.js';
import type { AnswerReceiver, WireMessage } from '../types.js';
import type { HostPort } from './address.js';
import type { Connection, ConnectionOptions, Direction } from './connection.js';
import { LENGTH_PREFIX_BYTES } from './frame-reader.js';
import {
  HandshakeTypes,
  authMessage,
  computeProof,
  helloMessage,
  newNonce,
  parseWelcome,
  verifyProof,
  type HandshakeIdentity,
  type Transcript,
  type Welcome,
} from './handshake.js';
import type { ResolvedTcpOptions } from './options.js';
import type { TcpCounters } from './stats.js';

/** Codes a refused handshake keeps when it fails the requests waiting on it. */
const REFUSALS = new Set<ErrorCode>([ErrorCodes.PROTOCOL_MISMATCH, ErrorCodes.CLUSTER_MISMATCH, ErrorCodes.AUTH_FAILED]);

/** Request labels (per message type) a peer keeps. */
const MAX_LABELS = 64;

/** What an {@link OutboundPeer} needs from its transport. @internal */
export interface PeerHost {
  readonly options: ResolvedTcpOptions;
  readonly counters: TcpCounters;
  /** Codec limits of established connections. */
  readonly limits: Readonly<Required<CodecLimits>>;
  /** This node as it presents itself (valid while started). */
  identity(): HandshakeIdentity;
  /** True while the transport is stopping: failures are not reported then. */
  readonly stopping: boolean;
  /**
   * Dials `to`; `connected` runs once the TCP (and TLS) connection is up.
   * The connection reports frames and its close through `hooks`.
   */
  dial(
    to: HostPort,
    label: string,
    hooks: Pick<ConnectionOptions, 'onFrame' | 'onClose'>,
    connected: (conn: Connection) => void,
  ): Connection;
  /** A handshake failed (counted, and emitted as `handshake:failed`). */
  handshakeFailed(direction: Direction, remote: string, error: KvError): void;
}

/**
 * Everything this node keeps about one peer address it sends requests to:
 * one persistent outbound connection, dialled lazily, over which requests
 * are multiplexed by id; the table of requests in flight (bounded by
 * `maxPendingPerPeer`); the requests waiting for the connection (bounded by
 * `maxBufferedBytesPerPeer`); and the reconnect backoff.
 *
 * States: `idle` (no connection) → `connecting` (dial and handshake; requests
 * queue) → `open` (requests are written at once) → `idle` when the
 * connection drops (its requests fail with `KV_CONNECTION_CLOSED`). A dial or
 * handshake that fails puts the peer in `backoff`: until it ends, requests
 * fail at once with the failure's code (`KV_UNREACHABLE`, or the refusal:
 * `KV_PROTOCOL_MISMATCH`, `KV_CLUSTER_MISMATCH`, `KV_AUTH_FAILED`); the next
 * request after it dials again.
 *
 * @internal
 */
export class OutboundPeer {
  readonly address: string;
  readonly target: HostPort;
  state: 'idle' | 'connecting' | 'open' | 'backoff' = 'idle';
  readonly pending: PendingRequests<WireMessage>;

  readonly #host: PeerHost;
  #conn: Connection | undefined;
  #connected = false;
  #connectTimer: TimerHandle | undefined;
  /** Encoded requests waiting for the connection, by id, in order. */
  readonly #queue = new Map<number, Uint8Array>();
  #queuedBytes = 0;
  #failures = 0;
  #retryAt = 0;
  #lastError: KvError | undefined;
  readonly #labels = new Map<string, string>();
  // Handshake state.
  #nonce: Uint8Array | undefined;
  #welcome: Welcome | undefined;

  constructor(host: PeerHost, address: string, target: HostPort) {
    this.#host = host;
    this.address = address;
    this.target = target;
    this.pending = new PendingRequests({ clock: host.options.clock, maxPending: host.options.maxPendingPerPeer });
  }

  /** The connection, once dialled (connecting, handshaking or open). */
  get connection(): Connection | undefined {
    return this.#conn;
  }

  /**
   * Ends a reconnect backoff early (the peer was seen alive: it dialled this
   * node and passed the handshake), so the next request dials at once.
   */
  resetBackoff(): void {
    if (this.state !== 'backoff') return;
    this.state = 'idle';
    this.#failures = 0;
    this.#retryAt = 0;
  }

  /**
   * Sends one request (see {@link TcpTransport.request}): returns its
   * promise, or, with `receiver`, nothing (the outcome goes to
   * `receiver` with `tag`, see `Transport.send`).
   */
  request(message: WireMessage, timeout: number, signal: AbortSignal | undefined): Promise<WireMessage>;
  request(message: WireMessage, timeout: number, signal: AbortSignal | undefined, receiver: AnswerReceiver, tag: number): undefined;
  request(
    message: WireMessage,
    timeout: number,
    signal: AbortSignal | undefined,
    receiver?: AnswerReceiver,
    tag = 0,
  ): Promise<WireMessage> | undefined {
    const host = this.#host;
    const o = host.options;
    if (this.state === 'backoff') {
      const wait = this.#retryAt - o.clock.now();
      if (wait > 0) {
        const last = this.#lastError!;
        const error = new KvError(last.code, `${this.address} is in reconnect backoff for ${Math.ceil(wait)} more ms after: ${last.message}`, {
          cause: last,
        });
        if (receiver === undefined) return Promise.reject(error);
        receiver.failed(tag, error);
        return undefined;
      }
      this.state = 'idle';
    }
    let id = 0;
    let promise: Promise<WireMessage> | undefined;
    // Open: the request is written at once, so it never waits in the queue to be taken out of.
    const open = this.state === 'open';
    try {
      const options = { timeout, signal, label: this.#label(message.type), onSettled: open ? undefined : () => this.#unqueue(id) };
      if (receiver === undefined) ({ id, promise } = this.pending.open(options));
      else id = this.pending.openFor(options, receiver, tag);
    } catch (err) {
      if (err instanceof KvError && err.code === ErrorCodes.OVERLOADED) host.counters.overloaded++;
      if (receiver === undefined) return Promise.reject(err);
      receiver.failed(tag, err instanceof Error ? err : new Error(String(err)));
      return undefined;
    }
    const max = o.maxBufferedBytesPerPeer;
    const frame: Frame = { kind: 'req', id, from: host.identity().address, body: message };
    if (open) {
      const conn = this.#conn!;
      let refused: number;
      try {
        refused = conn.sendFrameWithin(frame, max);
      } catch (err) {
        this.pending.reject(id, toKvError(err, ErrorCodes.INVALID_MESSAGE));
        return promise;
      }
      if (refused > 0) this.#overloaded(id, conn.writableLength, refused);
      else host.counters.requestsSent++;
      return promise;
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(frame, host.limits);
    } catch (err) {
      this.pending.reject(id, toKvError(err, ErrorCodes.INVALID_MESSAGE));
      return promise;
    }
    const size = bytes.byteLength + LENGTH_PREFIX_BYTES;
    if (this.#queuedBytes > 0 && this.#queuedBytes + size > max) {
      this.#overloaded(id, this.#queuedBytes, size);
      return promise;
    }
    this.#queue.set(id, bytes);
    this.#queuedBytes += size;
    if (this.state === 'idle') this.#dial();
    return promise;
  }

  /** `request <type> to <address>`, the label of a request (built once per message type). */
  #label(type: string): string {
    let label = this.#labels.get(type);
    if (label === undefined) {
      label = `request ${type} to ${this.address}`;
      // Types come from this node's own code; the bound only guards against a caller inventing many.
      if (this.#labels.size < MAX_LABELS) this.#labels.set(type, label);
    }
    return label;
  }

  /** Fails everything and closes the connection (the transport stops). */
  shutdown(error: KvError): void {
    this.pending.rejectAll(error);
    this.#queue.clear();
    this.#queuedBytes = 0;
    this.#clearConnectTimer();
    const conn = this.#conn;
    this.#conn = undefined;
    this.state = 'idle';
    conn?.end(error);
  }

  #overloaded(id: number, buffered: number, size: number): void {
    this.#host.counters.overloaded++;
    this.pending.reject(
      id,
      new KvError(
        ErrorCodes.OVERLOADED,
        `request to ${this.address} refused: ${buffered} bytes already waiting to be sent, ${size} more would pass maxBufferedBytesPerPeer (${this.#host.options.maxBufferedBytesPerPeer})`,
      ),
    );
  }

  #unqueue(id: number): void {
    const bytes = this.#queue.get(id);
    if (bytes === undefined) return;
    this.#queue.delete(id);
    this.#queuedBytes -= bytes.byteLength + LENGTH_PREFIX_BYTES;
  }

  #dial(): void {
    const host = this.#host;
    this.state = 'connecting';
    this.#connected = false;
    this.#nonce = undefined;
    this.#welcome = undefined;
    const conn = host.dial(
      this.target,
      this.address,
      { onFrame: (c, f) => this.#onFrame(c, f), onClose: (c, e, phase) => this.#onClose(c, e, phase) },
      (c) => this.#onConnected(c),
    );
    this.#conn = conn;
    const { connectTimeout, clock } = host.options;
    this.#connectTimer = clock.setTimeout(() => {
      this.#connectTimer = undefined;
      if (this.#conn === conn && !this.#connected) {
        conn.destroy(new KvError(ErrorCodes.UNREACHABLE, `connect to ${this.address} timed out after ${connectTimeout} ms`));
      }
    }, connectTimeout);
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== undefined) {
      this.#host.options.clock.clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
  }

  #onConnected(conn: Connection): void {
    if (conn !== this.#conn || conn.state !== 'handshake') return;
    this.#connected = true;
    this.#clearConnectTimer();
    conn.startHandshakeTimer();
    const nonce = newNonce();
    this.#nonce = nonce;
    const self = this.#host.identity();
    conn.sendFrame({ kind: 'req', id: 0, from: self.address, body: helloMessage(self, this.#host.options.protocolVersions, nonce) });
  }

  #onFrame(conn: Connection, frame: Frame): void {
    if (conn !== this.#conn) return;
    if (conn.state === 'handshake') {
      this.#onHandshakeFrame(conn, frame);
      return;
    }
    switch (frame.kind) {
      case 'res':
        this.pending.resolve(frame.id, frame.body);
        return;
      case 'err':
        if (frame.id === 0) {
          // The peer closes the connection and says why.
          conn.end(new KvError(frame.code, `${this.address} closed the connection: ${frame.message}`));
          return;
        }
        this.pending.reject(frame.id, new KvError(frame.code, frame.message));
        return;
      case 'req':
        this.#host.counters.malformedFrames++;
        conn.refuse(new KvError(ErrorCodes.INVALID_MESSAGE, 'a request must travel on a connection its sender dialled'));
        return;
    }
  }

  #onHandshakeFrame(conn: Connection, frame: Frame): void {
    if (frame.kind === 'err' && frame.id === 0) {
      conn.end(new KvError(frame.code, `${this.address} refused the connection: ${frame.message}`));
      return;
    }
    if (frame.kind !== 'res' || frame.id !== 0 || this.#nonce === undefined) {
      conn.refuse(new KvError(ErrorCodes.INVALID_MESSAGE, `handshake: expected the ${this.#welcome ? HandshakeTypes.ready : HandshakeTypes.welcome} answer, got a ${frame.kind} frame`));
      return;
    }
    const o = this.#host.options;
    const self = this.#host.identity();
    if (this.#welcome) {
      if (frame.body.type !== HandshakeTypes.ready) {
        conn.refuse(new KvError(ErrorCodes.INVALID_MESSAGE, `handshake: expected ${HandshakeTypes.ready}`));
        return;
      }
      this.#established(conn, this.#welcome);
      return;
    }
    let w: Welcome;
    try {
      w = parseWelcome(frame.body);
    } catch (err) {
      conn.refuse(toKvError(err, ErrorCodes.INVALID_MESSAGE));
      return;
    }
    const [min, max] = o.protocolVersions;
    if (w.version < min || w.version > max) {
      conn.refuse(
        new KvError(ErrorCodes.PROTOCOL_MISMATCH, `${this.address} chose protocol version ${w.version}; this node speaks versions ${min} to ${max}`),
      );
      return;
    }
    if (w.cluster !== self.cluster) {
      conn.refuse(
        new KvError(ErrorCodes.CLUSTER_MISMATCH, `${this.address} belongs to cluster ${JSON.stringify(w.cluster)}, this node to ${JSON.stringify(self.cluster)}`),
      );
      return;
    }
    const secret = o.secret;
    if (!secret) {
      if (w.auth !== 'none') {
        conn.refuse(new KvError(ErrorCodes.AUTH_FAILED, `${this.address} requires the cluster secret, and this node has none configured`));
        return;
      }
      this.#established(conn, w);
      return;
    }
    if (w.auth !== 'hmac-sha256') {
      conn.refuse(new KvError(ErrorCodes.AUTH_FAILED, `${this.address} does not prove the cluster secret (it has none configured)`));
      return;
    }
    const transcript: Transcript = {
      version: w.version,
      cluster: self.cluster,
      dialer: { ...self, nonce: this.#nonce },
      acceptor: { cluster: w.cluster, node: w.node, address: w.address, nonce: w.nonce },
    };
    if (!verifyProof(secret, 'acceptor', transcript, w.proof!)) {
      conn.refuse(new KvError(ErrorCodes.AUTH_FAILED, `${this.address} failed to prove the cluster secret (wrong secret)`));
      return;
    }
    this.#welcome = w;
    conn.sendFrame({ kind: 'req', id: 0, from: self.address, body: authMessage(computeProof(secret, 'dialer', transcript)) });
  }

  #established(conn: Connection, w: Welcome): void {
    conn.established({ cluster: w.cluster, node: w.node, address: w.address }, w.version, this.#host.limits);
    this.state = 'open';
    this.#failures = 0;
    this.#lastError = undefined;
    const queued = [...this.#queue.values()];
    this.#queue.clear();
    this.#queuedBytes = 0;
    for (const bytes of queued) {
      conn.send(bytes);
      this.#host.counters.requestsSent++;
    }
  }

  #onClose(conn: Connection, error: KvError | undefined, phase: 'handshake' | 'open'): void {
    if (conn !== this.#conn) return;
    this.#conn = undefined;
    this.#clearConnectTimer();
    const host = this.#host;
    if (host.stopping) {
      this.state = 'idle';
      return;
    }
    if (phase === 'open') {
      this.state = 'idle';
      const reason = error ? `: ${error.message}` : '';
      this.pending.rejectAll(
        () => new KvError(ErrorCodes.CONNECTION_CLOSED, `connection to ${this.address} closed while the request was in flight${reason}`, { cause: error }),
      );
      return;
    }
    // The dial or the handshake failed.
    let failure: KvError;
    if (error && REFUSALS.has(error.code)) {
      host.handshakeFailed('outbound', this.address, error);
      failure = error;
    } else if (!this.#connected) {
      host.counters.dialFailures++;
      failure = new KvError(ErrorCodes.UNREACHABLE, `${this.address} is not reachable: ${error?.message ?? 'connection closed'}`, { cause: error });
    } else {
      const e = error ?? new KvError(ErrorCodes.CONNECTION_CLOSED, 'connection closed');
      host.handshakeFailed('outbound', this.address, e);
      failure = new KvError(ErrorCodes.UNREACHABLE, `connection to ${this.address} failed during its handshake: ${e.message}`, { cause: e });
    }
    const { initialDelay, maxDelay, jitter } = host.options.reconnect;
    this.#failures++;
    const delay = Math.min(maxDelay, initialDelay * 2 ** Math.min(this.#failures - 1, 30)) * (1 - jitter * Math.random());
    this.#retryAt = host.options.clock.now() + delay;
    this.#lastError = failure;
    this.state = 'backoff';
    this.pending.rejectAll(() => new KvError(failure.code, failure.message, { cause: failure.cause }));
    this.#queue.clear();
    this.#queuedBytes = 0;
  }
}
