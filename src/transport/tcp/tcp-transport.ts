import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  checkServerIdentity,
  connect as tlsConnect,
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type TLSSocket,
} from 'node:tls';
import { EventEmitter } from 'eventemitter3';
import { AbortError, ErrorCodes, KvError } from '../../errors/index.js';
import { DEFAULT_CODEC_LIMITS, type CodecLimits } from '../codec.js';
import type { AnswerReceiver, RequestHandler, RequestOptions, Transport, TransportCapabilities, TransportContext, WireMessage } from '../types.js';
import { formatAddress, parseAddress, type HostPort } from './address.js';
import { Connection, isTlsAuthError, type ConnectionOptions, type Direction } from './connection.js';
import type { HandshakeIdentity } from './handshake.js';
import { InboundSession, type InboundHost } from './inbound.js';
import { resolveTcpOptions, type ResolvedTcpOptions, type TcpTransportOptions } from './options.js';
import { OutboundPeer, type PeerHost } from './peer.js';
import { newCounters, type TcpTransportStats } from './stats.js';

/** Payload of the {@link TcpTransportEvents}. */
export interface TcpConnectionEvent {
  /** `inbound`: a peer dialled this node; `outbound`: this node dialled the peer. */
  readonly direction: Direction;
  /** The peer: the address dialled (outbound) or the socket's `ip:port` (inbound). */
  readonly remote: string;
  /** Why, with a stable code. */
  readonly error: KvError;
}

/** Events of a {@link TcpTransport} (they observe; nothing waits on them). */
export interface TcpTransportEvents {
  /**
   * A connection's handshake failed, on this side: `KV_PROTOCOL_MISMATCH`
   * (no common version), `KV_CLUSTER_MISMATCH`, `KV_AUTH_FAILED` (wrong or
   * missing secret, rejected TLS certificate), `KV_INVALID_MESSAGE`
   * (anything but the handshake first), `KV_TIMEOUT` (not completed within
   * `handshakeTimeout`), `KV_CONNECTION_CLOSED` (the peer went away). The
   * peer, when it dialled, sees its request fail with the same code.
   */
  'handshake:failed': (event: TcpConnectionEvent) => void;
  /**
   * An established connection, or one over `maxConnections`, was closed
   * because of what the peer did: a frame over `maxFrameBytes` or malformed
   * (`KV_INVALID_MESSAGE`), a frame not completed within `frameTimeout`
   * (`KV_TIMEOUT`), one connection too many (`KV_OVERLOADED`).
   */
  'connection:dropped': (event: TcpConnectionEvent) => void;
}

/** Codes with which this node drops an established connection for the peer's behaviour. */
const DROP_CODES = new Set<string>([ErrorCodes.INVALID_MESSAGE, ErrorCodes.TIMEOUT, ErrorCodes.INTERNAL]);

/** Peers kept without a connection or requests before idle ones are forgotten. */
const MAX_IDLE_PEERS = 4096;

type State = 'stopped' | 'starting' | 'started' | 'stopping';

function socketClosed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

/**
 * A {@link Transport} over TCP (`node:net`), or mutual TLS (`node:tls`).
 *
 * - **Frames**: a 4-byte big-endian length, then a frame of the wire codec
 *   (msgpack, validated, size- and depth-limited). Requests to one peer are
 *   multiplexed by id over one persistent connection this node dials lazily
 *   (answers come back on it); the peer's requests arrive on the
 *   connection it dialled. Writes of one event-loop turn go out as one batch;
 *   Nagle is off.
 * - **Handshake** on every connection, before anything else: protocol
 *   versions (the highest common one is used), cluster name, node id,
 *   advertised address; with `secret`, an HMAC-SHA256 challenge-response
 *   both ways. A mismatch is refused with a code on both sides
 *   (`KV_PROTOCOL_MISMATCH`, `KV_CLUSTER_MISMATCH`, `KV_AUTH_FAILED`).
 * - **Failures**: a request has its timeout and AbortSignal; requests in
 *   flight on a connection that drops fail at once with
 *   `KV_CONNECTION_CLOSED`; a peer that cannot be reached fails requests
 *   with `KV_UNREACHABLE` and is redialled with exponential backoff and
 *   jitter (requests during the backoff fail at once, never queue); past
 *   `maxPendingPerPeer` requests in flight or `maxBufferedBytesPerPeer`
 *   bytes waiting, a request fails at once with `KV_OVERLOADED`.
 * - **Hostile input** (absurd length prefixes, oversized or malformed
 *   frames, slow frames, data before the handshake, connection floods)
 *   closes that connection or is answered with a coded error, is counted in
 *   {@link stats}, and never affects other connections.
 * - `stop()` closes the listener and every socket and timer.
 *
 * Without `tls`, traffic is not encrypted (`secret` authenticates peers, it
 * does not hide or protect the data). See docs/tcp.md.
 *
 * @example
 * ```ts
 * const transport = new TcpTransport({ host: '127.0.0.1', port: 0, secret: process.env.QKV_SECRET });
 * const store = new Store({ id: 'a', transport, seeds: ['10.0.0.1:7000'] });
 * await store.start();
 * transport.address; // '127.0.0.1:41234'
 * ```
 */
export class TcpTransport extends EventEmitter<TcpTransportEvents> implements Transport {
  /** Encodes (always), no fault injection, frames up to `maxFrameBytes`. */
  readonly capabilities: TransportCapabilities;
  /** Timeout of requests that do not give one (ms). */
  readonly defaultTimeout: number;

  readonly #o: ResolvedTcpOptions;
  readonly #counters = newCounters();
  readonly #limits: Readonly<Required<CodecLimits>>;
  readonly #secureContext: SecureContext | undefined;
  readonly #core: PeerHost & InboundHost;
  #state: State = 'stopped';
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #handler: RequestHandler | undefined;
  #identity: HandshakeIdentity | undefined;
  #address: string;
  #port: number | undefined;
  #server: Server | undefined;
  readonly #peers = new Map<string, OutboundPeer>();
  readonly #connections = new Set<Connection>();
  /** Accepted TLS sockets (raw TCP), tracked until they close: some never finish their TLS handshake. */
  readonly #raw = new Map<Socket, Promise<void>>();

  /**
   * @throws TypeError / RangeError naming a bad option (including a `tls`
   *   key or certificate that cannot be loaded).
   */
  constructor(options: TcpTransportOptions = {}) {
    super();
    const o = resolveTcpOptions(options);
    this.#o = o;
    this.defaultTimeout = o.defaultTimeout;
    this.#limits =
      o.maxFrameBytes === DEFAULT_CODEC_LIMITS.maxFrameBytes ? DEFAULT_CODEC_LIMITS : Object.freeze({ ...DEFAULT_CODEC_LIMITS, maxFrameBytes: o.maxFrameBytes });
    this.capabilities = Object.freeze({ encodes: true, faultInjection: false, maxFrameBytes: o.maxFrameBytes, batchesRequests: true });
    if (o.tls) {
      try {
        this.#secureContext = createSecureContext({
          ca: o.tls.ca,
          cert: o.tls.cert,
          key: o.tls.key,
          passphrase: o.tls.passphrase,
          minVersion: o.tls.minVersion,
        });
      } catch (err) {
        throw new TypeError(`Expected \`tls\` to hold a loadable CA, certificate and key (PEM): ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
        });
      }
    }
    this.#address = formatAddress(o.advertiseHost, o.advertisePort ?? o.port);
    const self = this;
    this.#core = {
      options: o,
      counters: this.#counters,
      limits: this.#limits,
      identity: () => this.#identity!,
      handler: () => this.#handler,
      get stopping(): boolean {
        return self.#state !== 'started';
      },
      dial: (to, label, hooks, connected) => this.#dial(to, label, hooks, connected),
      handshakeFailed: (direction, remote, error) => this.#handshakeFailed(direction, remote, error),
      // A peer that just connected to us (and passed the handshake) is up: dial it
      // at once instead of waiting out a backoff from before it restarted.
      peerReachable: (address) => this.#peers.get(address)?.resetBackoff(),
    };
  }

  /**
   * This node's address as peers dial it, `host:port` (`[v6]:port`):
   * `advertiseHost` (default `host`) and `advertisePort` (default the port
   * listened on). With `port: 0` the port is known once started.
   */
  get address(): string {
    return this.#address;
  }

  /** The port listened on while started (the one `port: 0` picked), else undefined. */
  get port(): number | undefined {
    return this.#port;
  }

  /** True between a successful `start()` and `stop()`. */
  get started(): boolean {
    return this.#state === 'started';
  }

  /** Counters since the transport was created (see {@link TcpTransportStats}). */
  stats(): TcpTransportStats {
    return { ...this.#counters };
  }

  /**
   * Listens on `host:port` and hands every request of an authenticated peer
   * to `handler`, with the peer's advertised address as `from`. `context`
   * (the Store passes it) gives the cluster name and node id the handshake
   * announces and checks; without it the cluster is `''` and the node id the
   * address. Resolves once listening. Idempotent while started; a stopped
   * transport can start again.
   *
   * @throws TypeError on a bad handler or context; the listen error
   *   (e.g. `EADDRINUSE`) if the port cannot be bound.
   */
  start(handler: RequestHandler, context?: TransportContext): Promise<void> {
    if (typeof handler !== 'function') {
      return Promise.reject(new TypeError(`Expected \`handler\` to be a function, got ${typeof handler}`));
    }
    if (context !== undefined) {
      const c = context as Partial<TransportContext> | null;
      if (typeof c !== 'object' || c === null || typeof c.nodeId !== 'string' || c.nodeId.length === 0 || typeof c.cluster !== 'string') {
        return Promise.reject(new TypeError('Expected `context` to be { nodeId: non-empty string, cluster: string }'));
      }
    }
    if (this.#state === 'started') return Promise.resolve();
    if (this.#starting) return this.#starting;
    const run = async (): Promise<void> => {
      if (this.#stopping) await this.#stopping;
      await this.#listen(handler, context);
    };
    this.#starting = run().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /**
   * Stops: requests in flight reject with `KV_CONNECTION_CLOSED`, the
   * listener closes, every connection is closed (gracefully, then destroyed
   * after `closeTimeout`), and no socket or timer is left. Idempotent.
   */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    if (this.#state === 'stopped' && !this.#starting) return Promise.resolve();
    this.#stopping = this.#shutdown().finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  /**
   * Sends `message` to the peer at `to` (`host:port`) and resolves with its
   * answer.
   *
   * Rejects with `KV_NOT_STARTED`, `KV_TIMEOUT`, `KV_ABORTED` (name
   * `AbortError`), `KV_UNREACHABLE` (cannot connect, or in reconnect
   * backoff, or `to` is not `host:port`), `KV_PROTOCOL_MISMATCH` /
   * `KV_CLUSTER_MISMATCH` / `KV_AUTH_FAILED` (the peer's handshake refused
   * this node, or this node refused the peer), `KV_CONNECTION_CLOSED` (the
   * connection dropped or the transport stopped while it was in flight),
   * `KV_OVERLOADED` (past `maxPendingPerPeer` or `maxBufferedBytesPerPeer`;
   * not sent), `KV_INVALID_MESSAGE` (the body cannot go on the wire, or is
   * over `maxFrameBytes`), or the code the remote handler threw
   * (`KV_INTERNAL` for anything that is not a `KvError`).
   *
   * @throws TypeError if `to` is not a non-empty string; RangeError on a
   *   negative or NaN timeout.
   */
  request(to: string, message: WireMessage, options: RequestOptions = {}): Promise<WireMessage> {
    // Not an async function: the answer's promise is the peer's own (one promise a request, not two).
    try {
      return this.#peerFor(to, options).request(message, options.timeout ?? this.defaultTimeout, options.signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * {@link TcpTransport.request} without a promise: the answer or the error
   * goes to `receiver` with `tag` (see `Transport.send`), with the same
   * codes as `request`.
   */
  send(to: string, message: WireMessage, options: RequestOptions | undefined, receiver: AnswerReceiver, tag: number): void {
    const o = options ?? {};
    try {
      this.#peerFor(to, o).request(message, o.timeout ?? this.defaultTimeout, o.signal, receiver, tag);
    } catch (err) {
      receiver.failed(tag, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** A request's checks, then the peer it goes to (made on first use). */
  #peerFor(to: string, options: RequestOptions): OutboundPeer {
    if (typeof to !== 'string' || to.length === 0) {
      throw new TypeError(`Expected \`to\` to be a non-empty string, got ${to === '' ? 'an empty string' : typeof to}`);
    }
    const timeout = options.timeout ?? this.defaultTimeout;
    if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
      throw new RangeError(`Expected \`timeout\` to be a number of milliseconds >= 0 (or Infinity), got ${String(timeout)}`);
    }
    if (this.#state !== 'started') throw new KvError(ErrorCodes.NOT_STARTED, `transport ${this.#address} is not started`);
    const signal = options.signal;
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    let peer = this.#peers.get(to);
    if (!peer) {
      const target = parseAddress(to);
      if (!target) throw new KvError(ErrorCodes.UNREACHABLE, `${JSON.stringify(to.slice(0, 100))} is not a host:port address`);
      if (this.#peers.size >= MAX_IDLE_PEERS) this.#forgetIdlePeers();
      peer = new OutboundPeer(this.#core, to, target);
      this.#peers.set(to, peer);
    }
    return peer;
  }

  /** Same as {@link stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #forgetIdlePeers(): void {
    for (const [address, peer] of this.#peers) {
      if ((peer.state === 'idle' || peer.state === 'backoff') && peer.pending.size === 0) this.#peers.delete(address);
    }
  }

  async #listen(handler: RequestHandler, context: TransportContext | undefined): Promise<void> {
    const o = this.#o;
    this.#state = 'starting';
    const server: Server = o.tls
      ? createTlsServer({
          ca: o.tls.ca,
          cert: o.tls.cert,
          key: o.tls.key,
          passphrase: o.tls.passphrase,
          minVersion: o.tls.minVersion,
          requestCert: true,
          // Verified in #accept instead, so the peer is told why (KV_AUTH_FAILED)
          // before the connection closes; nothing it sends is read before that.
          rejectUnauthorized: false,
          handshakeTimeout: o.handshakeTimeout,
        })
      : createNetServer();
    server.maxConnections = o.maxConnections;
    server.on('drop', (data) => {
      this.#counters.connectionsRefused++;
      const remote = data?.remoteAddress ? formatAddress(data.remoteAddress, data.remotePort ?? 0) : 'unknown';
      this.emit('connection:dropped', {
        direction: 'inbound',
        remote,
        error: new KvError(ErrorCodes.OVERLOADED, `connection from ${remote} refused: maxConnections (${o.maxConnections}) are open`),
      });
    });
    server.on('connection', (socket: Socket) => {
      this.#counters.connectionsAccepted++;
      if (this.#state !== 'started') {
        socket.destroy();
        return;
      }
      if (o.tls) {
        socket.on('error', () => {}); // the TLS socket wrapping it reports failures
        this.#raw.set(socket, socketClosed(socket));
        socket.once('close', () => this.#raw.delete(socket));
        return;
      }
      this.#accept(socket);
    });
    if (o.tls) {
      server.on('secureConnection', (socket: TLSSocket) => this.#accept(socket));
      server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
        // With a listener, Node leaves the failed socket open: close it.
        socket.destroy();
        if (this.#state !== 'started') return;
        const remote = socket.remoteAddress ? formatAddress(socket.remoteAddress, socket.remotePort ?? 0) : 'unknown';
        const code = (err as { code?: unknown }).code;
        const detail = `${typeof code === 'string' ? `${code} ` : ''}${err.message}`;
        const timedOut = code === 'ERR_TLS_HANDSHAKE_TIMEOUT' || /timeout/i.test(err.message);
        this.#handshakeFailed(
          'inbound',
          remote,
          timedOut
            ? new KvError(ErrorCodes.TIMEOUT, `TLS handshake with ${remote} not completed within ${o.handshakeTimeout} ms`, { cause: err })
            : isTlsAuthError(err) || /certificate/i.test(err.message)
              ? new KvError(ErrorCodes.AUTH_FAILED, `TLS authentication of ${remote} failed: ${detail}`, { cause: err })
              : new KvError(ErrorCodes.CONNECTION_CLOSED, `TLS handshake with ${remote} failed: ${detail}`, { cause: err }),
        );
        if (timedOut) this.#counters.slowConnectionsClosed++;
      });
    }
    // Accept failures (e.g. EMFILE) surface here once listening; the node keeps serving.
    const onError = (): void => {};
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: o.host, port: o.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.#state = 'stopped';
      server.close();
      throw err;
    }
    server.on('error', onError);
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    this.#address = formatAddress(o.advertiseHost, o.advertisePort ?? this.#port);
    this.#identity = { cluster: context?.cluster ?? '', node: context?.nodeId ?? this.#address, address: this.#address };
    this.#handler = handler;
    this.#state = 'started';
  }

  async #shutdown(): Promise<void> {
    if (this.#starting) await this.#starting.catch(() => {});
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    this.#handler = undefined;
    const error = new KvError(ErrorCodes.CONNECTION_CLOSED, `transport ${this.#address} stopped while the request was in flight`);
    for (const peer of this.#peers.values()) peer.shutdown(error);
    this.#peers.clear();
    const server = this.#server;
    this.#server = undefined;
    const serverClosed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const closing = new KvError(ErrorCodes.CONNECTION_CLOSED, `${this.#address} is stopping`);
    for (const conn of this.#connections) conn.end(closing);
    await Promise.all([...this.#connections].map((c) => c.closed));
    // TLS sockets that never completed their TLS handshake.
    for (const socket of this.#raw.keys()) socket.destroy();
    await Promise.all(this.#raw.values());
    await serverClosed;
    this.#port = undefined;
    this.#state = 'stopped';
  }

  #connectionOptions(direction: Direction, remote: string, hooks: Pick<ConnectionOptions, 'onFrame' | 'onClose'>): ConnectionOptions {
    const o = this.#o;
    return {
      direction,
      remote,
      maxFrameBytes: o.maxFrameBytes,
      frameTimeout: o.frameTimeout,
      handshakeTimeout: o.handshakeTimeout,
      closeTimeout: o.closeTimeout,
      clock: o.clock,
      counters: this.#counters,
      onFrame: hooks.onFrame,
      onClose: hooks.onClose,
    };
  }

  #track(conn: Connection, counter: 'inboundConnections' | 'outboundConnections'): void {
    this.#connections.add(conn);
    this.#counters[counter]++;
    void conn.closed.then(() => {
      this.#connections.delete(conn);
      this.#counters[counter]--;
    });
  }

  #accept(socket: Socket): void {
    if (this.#state !== 'started' || !socket.remoteAddress) {
      socket.destroy();
      return;
    }
    const remote = formatAddress(socket.remoteAddress, socket.remotePort ?? 0);
    const tlsSocket = this.#o.tls ? (socket as TLSSocket) : undefined;
    const session = new InboundSession(this.#core);
    const conn = new Connection(
      socket,
      this.#connectionOptions('inbound', remote, {
        onFrame: session.onFrame,
        onClose: (_c, error, phase) => {
          if (this.#state !== 'started') return;
          const e = error ?? new KvError(ErrorCodes.CONNECTION_CLOSED, `${remote} closed the connection`);
          if (phase === 'handshake') this.#handshakeFailed('inbound', remote, e);
          else if (DROP_CODES.has(e.code)) this.emit('connection:dropped', { direction: 'inbound', remote, error: e });
        },
      }),
    );
    this.#track(conn, 'inboundConnections');
    if (tlsSocket && !tlsSocket.authorized) {
      const reason = tlsSocket.authorizationError;
      conn.refuse(
        new KvError(
          ErrorCodes.AUTH_FAILED,
          `${remote} presented no certificate signed by the cluster CA (${reason instanceof Error ? reason.message : String(reason ?? 'no certificate')})`,
        ),
      );
      return;
    }
    conn.startHandshakeTimer();
  }

  #dial(to: HostPort, label: string, hooks: Pick<ConnectionOptions, 'onFrame' | 'onClose'>, connected: (conn: Connection) => void): Connection {
    const o = this.#o;
    let socket: Socket;
    if (o.tls) {
      socket = tlsConnect({
        host: to.host,
        port: to.port,
        secureContext: this.#secureContext!,
        minVersion: o.tls.minVersion,
        checkServerIdentity: o.tls.verifyHostname ? checkServerIdentity : () => undefined,
      });
    } else {
      socket = netConnect({ host: to.host, port: to.port });
    }
    this.#counters.connectionsDialed++;
    const conn = new Connection(
      socket,
      this.#connectionOptions('outbound', label, {
        onFrame: hooks.onFrame,
        onClose: (c, error, phase) => {
          hooks.onClose(c, error, phase);
          if (phase === 'open' && error && DROP_CODES.has(error.code) && this.#state === 'started') {
            this.emit('connection:dropped', { direction: 'outbound', remote: label, error });
          }
        },
      }),
    );
    socket.once(o.tls ? 'secureConnect' : 'connect', () => connected(conn));
    this.#track(conn, 'outboundConnections');
    return conn;
  }

  #handshakeFailed(direction: Direction, remote: string, error: KvError): void {
    this.#counters.handshakesFailed++;
    if (error.code === ErrorCodes.AUTH_FAILED) this.#counters.authFailures++;
    this.emit('handshake:failed', { direction, remote, error });
  }
}
