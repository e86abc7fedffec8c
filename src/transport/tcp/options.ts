import { isIP } from 'node:net';
import { systemClock, type Clock } from '../../internal/clock.js';
import { DEFAULT_CODEC_LIMITS } from '../codec.js';

/**
 * Mutual TLS between the nodes of a cluster: every node presents a
 * certificate signed by the cluster's CA and accepts only peers that do.
 *
 * Both sides verify: the acceptor requires a client certificate
 * (`requestCert`, `rejectUnauthorized`), the dialer checks the acceptor's
 * certificate against `ca` and (by default) that it names the host it dialled.
 */
export interface TcpTlsOptions {
  /** The cluster's CA certificate(s), PEM. Only peers with a certificate it signed can connect. */
  readonly ca: string | Uint8Array | readonly (string | Uint8Array)[];
  /** This node's certificate (PEM), signed by `ca`; the chain if there are intermediates. */
  readonly cert: string | Uint8Array;
  /** This node's private key (PEM). */
  readonly key: string | Uint8Array;
  /**
   * Passphrase of `key`, if it is encrypted.
   * @default undefined
   */
  readonly passphrase?: string;
  /**
   * Whether the dialer checks that the acceptor's certificate names the host
   * it dialled (its subjectAltName holds the DNS name or IP address of the
   * peer's advertised address, as HTTPS does). With `false`, any certificate
   * signed by `ca` is accepted whatever host it names: the CA alone is the
   * trust boundary (fine for a private CA that signs only this cluster's nodes).
   * @default true
   */
  readonly verifyHostname?: boolean;
  /**
   * Oldest TLS version accepted.
   * @default 'TLSv1.3'
   */
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** Reconnection backoff of {@link TcpTransportOptions.reconnect}. */
export interface TcpReconnectOptions {
  /**
   * Backoff after the first failed dial (ms); each further failure doubles it.
   * @default 100
   */
  readonly initialDelay?: number;
  /**
   * Longest backoff (ms).
   * @default 5000
   */
  readonly maxDelay?: number;
  /**
   * Random share (0..1) taken off each backoff so peers do not redial in
   * step: the delay is `d × (1 − jitter × random())`.
   * @default 0.5
   */
  readonly jitter?: number;
}

/** Options of {@link TcpTransport}. */
export interface TcpTransportOptions {
  /**
   * Interface to listen on. A wildcard (`'0.0.0.0'`, `'::'`) needs `advertiseHost`.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * Port to listen on; `0` picks a free port (read it from `address` once started).
   * @default 0
   */
  readonly port?: number;
  /**
   * Host that peers dial to reach this node (what `address` and the
   * handshake say), e.g. the container's IP or DNS name when `host` is `'0.0.0.0'`.
   * @default host
   */
  readonly advertiseHost?: string;
  /**
   * Port that peers dial, when it differs from the listening port (a
   * published container port).
   * @default the listening port
   */
  readonly advertisePort?: number;
  /**
   * Mutual TLS with the cluster's CA. Without it, traffic is NOT encrypted.
   * @default undefined (plain TCP)
   */
  readonly tls?: TcpTlsOptions;
  /**
   * Shared cluster secret (at least 16 bytes; a string is taken as UTF-8).
   * Every connection starts with an HMAC-SHA256 challenge-response proving
   * both sides know it; a peer that fails is dropped before any message is
   * handled. It authenticates, it does not encrypt: use `tls` for that.
   * @default undefined (no authentication beyond `tls`)
   */
  readonly secret?: string | Uint8Array;
  /**
   * Timeout of a request that does not give one (ms).
   * @default 5000
   */
  readonly defaultTimeout?: number;
  /**
   * Deadline of a TCP (and TLS) connect (ms).
   * @default 5000
   */
  readonly connectTimeout?: number;
  /**
   * Deadline of the connection handshake (version, cluster, node id, secret),
   * and of the TLS handshake of an accepted connection (ms).
   * @default 5000
   */
  readonly handshakeTimeout?: number;
  /**
   * A frame that has started arriving must be complete within this many ms,
   * or the connection is closed (slowloris defence).
   * @default 30000
   */
  readonly frameTimeout?: number;
  /**
   * How long `stop()` waits for a peer to close a connection it was asked to
   * close before destroying it (ms).
   * @default 1000
   */
  readonly closeTimeout?: number;
  /**
   * Largest frame (encoded request or answer, without its 4-byte length
   * prefix) sent or accepted. A longer length prefix closes the connection
   * before anything is allocated for it.
   * @default 16777216 (16 MiB, the wire codec's limit)
   */
  readonly maxFrameBytes?: number;
  /**
   * Most requests in flight to one peer; past it a request fails at once
   * with `KV_OVERLOADED`. Also the most requests of one inbound connection
   * handled at once (past it the peer is answered `KV_OVERLOADED`).
   * @default 10000
   */
  readonly maxPendingPerPeer?: number;
  /**
   * Most bytes queued for one peer (written but not yet taken by the
   * kernel, or waiting for the connection). A request that would go past it
   * fails at once with `KV_OVERLOADED` (a single frame is always accepted by
   * an empty buffer); an inbound connection past it stops being read until
   * it drains. At least 65536.
   * @default 33554432 (32 MiB)
   */
  readonly maxBufferedBytesPerPeer?: number;
  /**
   * Most inbound connections at once (handshaking or open); more are closed
   * on arrival and counted in `stats().connectionsRefused`.
   * @default 1024
   */
  readonly maxConnections?: number;
  /** Backoff between dials of an unreachable peer (see {@link TcpReconnectOptions}). */
  readonly reconnect?: TcpReconnectOptions;
  /**
   * Source of time for request deadlines and the transport's timers.
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Protocol versions this transport speaks, `[min, max]`. For tests of the
   * version negotiation only.
   * @internal
   */
  readonly protocolVersions?: readonly [number, number];
}

/** Protocol versions this release speaks: the handshake picks the highest both sides speak. */
export const PROTOCOL_VERSIONS: readonly [number, number] = Object.freeze([1, 1] as const);

/** Every default of {@link TcpTransportOptions}, in one place. */
export const TCP_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  defaultTimeout: 5_000,
  connectTimeout: 5_000,
  handshakeTimeout: 5_000,
  frameTimeout: 30_000,
  closeTimeout: 1_000,
  maxFrameBytes: DEFAULT_CODEC_LIMITS.maxFrameBytes,
  maxPendingPerPeer: 10_000,
  maxBufferedBytesPerPeer: 32 * 1024 * 1024,
  maxConnections: 1_024,
  reconnect: Object.freeze({ initialDelay: 100, maxDelay: 5_000, jitter: 0.5 }),
  /** Shortest accepted `secret`, in bytes. */
  minSecretBytes: 16,
});

/** The options, validated and defaulted. @internal */
export interface ResolvedTcpOptions {
  readonly host: string;
  readonly port: number;
  readonly advertiseHost: string;
  readonly advertisePort: number | undefined;
  readonly tls: ResolvedTls | undefined;
  readonly secret: Buffer | undefined;
  readonly defaultTimeout: number;
  readonly connectTimeout: number;
  readonly handshakeTimeout: number;
  readonly frameTimeout: number;
  readonly closeTimeout: number;
  readonly maxFrameBytes: number;
  readonly maxPendingPerPeer: number;
  readonly maxBufferedBytesPerPeer: number;
  readonly maxConnections: number;
  readonly reconnect: Required<TcpReconnectOptions>;
  readonly clock: Clock;
  readonly protocolVersions: readonly [number, number];
}

/** @internal */
export interface ResolvedTls {
  readonly ca: (string | Buffer)[];
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly passphrase: string | undefined;
  readonly verifyHostname: boolean;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return typeof v;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

function hostName(name: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 253 || /[\s/[\]]/.test(v)) {
    throw new TypeError(`Expected \`${name}\` to be a host name or IP address, got ${describe(v)}`);
  }
  return v;
}

function portNumber(name: string, v: unknown, allowZero: boolean): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65_535) {
    throw new RangeError(`Expected \`${name}\` to be an integer from ${allowZero ? 0 : 1} to 65535, got ${describe(v)}`);
  }
  return v;
}

function millis(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new RangeError(`Expected \`${name}\` to be a positive finite number of milliseconds, got ${describe(v)}`);
  }
  return v;
}

function positiveInt(name: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`Expected \`${name}\` to be an integer >= ${min}, got ${describe(v)}`);
  }
  return v;
}

function pem(name: string, v: unknown): string | Buffer {
  if (typeof v === 'string' && v.length > 0) return v;
  if (v instanceof Uint8Array && v.byteLength > 0) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`Expected \`${name}\` to be a non-empty PEM string or Uint8Array, got ${describe(v)}`);
}

function resolveTls(v: unknown): ResolvedTls | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TypeError(`Expected \`tls\` to be an object { ca, cert, key }, got ${describe(v)}`);
  }
  const t = v as Record<string, unknown>;
  const caList = Array.isArray(t['ca']) ? (t['ca'] as unknown[]) : [t['ca']];
  if (caList.length === 0) throw new TypeError('Expected `tls.ca` to hold at least one CA certificate, got an empty array');
  const ca = caList.map((c, i) => pem(Array.isArray(t['ca']) ? `tls.ca[${i}]` : 'tls.ca', c));
  const cert = pem('tls.cert', t['cert']);
  const key = pem('tls.key', t['key']);
  const passphrase = t['passphrase'];
  if (passphrase !== undefined && typeof passphrase !== 'string') {
    throw new TypeError(`Expected \`tls.passphrase\` to be a string, got ${describe(passphrase)}`);
  }
  const verifyHostname = t['verifyHostname'] ?? true;
  if (typeof verifyHostname !== 'boolean') {
    throw new TypeError(`Expected \`tls.verifyHostname\` to be a boolean, got ${describe(verifyHostname)}`);
  }
  const minVersion = t['minVersion'] ?? 'TLSv1.3';
  if (minVersion !== 'TLSv1.2' && minVersion !== 'TLSv1.3') {
    throw new TypeError(`Expected \`tls.minVersion\` to be 'TLSv1.2' or 'TLSv1.3', got ${describe(minVersion)}`);
  }
  return { ca, cert, key, passphrase, verifyHostname, minVersion };
}

function resolveSecret(v: unknown): Buffer | undefined {
  if (v === undefined) return undefined;
  let bytes: Buffer;
  if (typeof v === 'string') bytes = Buffer.from(v, 'utf8');
  else if (v instanceof Uint8Array) bytes = Buffer.from(v); // a copy: the caller may reuse theirs
  else throw new TypeError(`Expected \`secret\` to be a string or Uint8Array, got ${describe(v)}`);
  if (bytes.byteLength < TCP_DEFAULTS.minSecretBytes) {
    throw new RangeError(
      `Expected \`secret\` to be at least ${TCP_DEFAULTS.minSecretBytes} bytes (e.g. \`openssl rand -base64 32\`), got ${bytes.byteLength}`,
    );
  }
  return bytes;
}

function resolveReconnect(v: unknown): Required<TcpReconnectOptions> {
  if (v === undefined) return TCP_DEFAULTS.reconnect;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TypeError(`Expected \`reconnect\` to be an object { initialDelay?, maxDelay?, jitter? }, got ${describe(v)}`);
  }
  const r = v as Record<string, unknown>;
  const initialDelay = millis('reconnect.initialDelay', r['initialDelay'] ?? TCP_DEFAULTS.reconnect.initialDelay);
  const maxDelay = millis('reconnect.maxDelay', r['maxDelay'] ?? Math.max(TCP_DEFAULTS.reconnect.maxDelay, initialDelay));
  if (maxDelay < initialDelay) {
    throw new RangeError(`Expected \`reconnect.maxDelay\` (${maxDelay}) to be >= \`reconnect.initialDelay\` (${initialDelay})`);
  }
  const jitter = r['jitter'] ?? TCP_DEFAULTS.reconnect.jitter;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(`Expected \`reconnect.jitter\` to be a number from 0 to 1, got ${describe(jitter)}`);
  }
  return Object.freeze({ initialDelay, maxDelay, jitter });
}

function resolveVersions(v: unknown): readonly [number, number] {
  if (v === undefined) return PROTOCOL_VERSIONS;
  if (!Array.isArray(v) || v.length !== 2) throw new TypeError(`Expected \`protocolVersions\` to be [min, max], got ${describe(v)}`);
  const min = positiveInt('protocolVersions[0]', v[0]);
  const max = positiveInt('protocolVersions[1]', v[1], min);
  return [min, max];
}

/**
 * Validates {@link TcpTransportOptions} and applies the defaults.
 *
 * @throws TypeError / RangeError naming the option that is wrong.
 * @internal
 */
export function resolveTcpOptions(options: unknown): ResolvedTcpOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  const host = hostName('host', o['host'] ?? TCP_DEFAULTS.host);
  const port = portNumber('port', o['port'] ?? TCP_DEFAULTS.port, true);
  let advertiseHost: string;
  if (o['advertiseHost'] === undefined) {
    if (WILDCARDS.has(host)) {
      throw new TypeError(
        `Expected \`advertiseHost\` (the host peers dial, e.g. this machine's IP or DNS name) when \`host\` is the wildcard ${JSON.stringify(host)}`,
      );
    }
    advertiseHost = host;
  } else {
    advertiseHost = hostName('advertiseHost', o['advertiseHost']);
    if (WILDCARDS.has(advertiseHost)) {
      throw new TypeError(`Expected \`advertiseHost\` to be a host peers can dial, got the wildcard ${JSON.stringify(advertiseHost)}`);
    }
  }
  const advertisePort = o['advertisePort'] === undefined ? undefined : portNumber('advertisePort', o['advertisePort'], false);
  const clock = o['clock'] ?? systemClock;
  if (
    typeof clock !== 'object' ||
    clock === null ||
    typeof (clock as Clock).now !== 'function' ||
    typeof (clock as Clock).setTimeout !== 'function' ||
    typeof (clock as Clock).clearTimeout !== 'function'
  ) {
    throw new TypeError(`Expected \`clock\` to be a Clock { now, setTimeout, clearTimeout }, got ${describe(clock)}`);
  }
  const maxFrameBytes = positiveInt('maxFrameBytes', o['maxFrameBytes'] ?? TCP_DEFAULTS.maxFrameBytes, 1024);
  if (maxFrameBytes > 0xffff_ffff) {
    throw new RangeError(`Expected \`maxFrameBytes\` to fit the 4-byte length prefix (<= 4294967295), got ${maxFrameBytes}`);
  }
  if (isIP(advertiseHost) === 0 && /:/.test(advertiseHost)) {
    throw new TypeError(`Expected \`advertiseHost\` to be a host name or IP address, got ${describe(advertiseHost)}`);
  }
  return {
    host,
    port,
    advertiseHost,
    advertisePort,
    tls: resolveTls(o['tls']),
    secret: resolveSecret(o['secret']),
    defaultTimeout: millis('defaultTimeout', o['defaultTimeout'] ?? TCP_DEFAULTS.defaultTimeout),
    connectTimeout: millis('connectTimeout', o['connectTimeout'] ?? TCP_DEFAULTS.connectTimeout),
    handshakeTimeout: millis('handshakeTimeout', o['handshakeTimeout'] ?? TCP_DEFAULTS.handshakeTimeout),
    frameTimeout: millis('frameTimeout', o['frameTimeout'] ?? TCP_DEFAULTS.frameTimeout),
    closeTimeout: millis('closeTimeout', o['closeTimeout'] ?? TCP_DEFAULTS.closeTimeout),
    maxFrameBytes,
    maxPendingPerPeer: positiveInt('maxPendingPerPeer', o['maxPendingPerPeer'] ?? TCP_DEFAULTS.maxPendingPerPeer),
    maxBufferedBytesPerPeer: positiveInt('maxBufferedBytesPerPeer', o['maxBufferedBytesPerPeer'] ?? TCP_DEFAULTS.maxBufferedBytesPerPeer, 64 * 1024),
    maxConnections: positiveInt('maxConnections', o['maxConnections'] ?? TCP_DEFAULTS.maxConnections),
    reconnect: resolveReconnect(o['reconnect']),
    clock: clock as Clock,
    protocolVersions: resolveVersions(o['protocolVersions']),
  };
}
