/**
 * Counters of a {@link TcpTransport} since it was created (`stats()`).
 * Every piece of hostile or broken input that closes a connection or is
 * answered with an error is counted in one of them.
 */
export interface TcpTransportStats {
  /** Inbound TCP connections accepted (under `maxConnections`). */
  readonly connectionsAccepted: number;
  /** Inbound connections closed on arrival because `maxConnections` were open. */
  readonly connectionsRefused: number;
  /** Outbound connections dialled. */
  readonly connectionsDialed: number;
  /** Dials that did not connect (refused, unreachable, timed out). */
  readonly dialFailures: number;
  /** Inbound connections open now (handshaking or established). */
  readonly inboundConnections: number;
  /** Outbound connections open now (connecting, handshaking or established). */
  readonly outboundConnections: number;
  /**
   * Connections whose handshake failed, either side and direction: TLS
   * failures, version / cluster mismatches, wrong secrets, anything sent
   * before the handshake completed, handshake timeouts.
   */
  readonly handshakesFailed: number;
  /** Of `handshakesFailed`: wrong or missing secret, rejected TLS certificate. */
  readonly authFailures: number;
  /** Connections closed because a length prefix announced more than `maxFrameBytes`. */
  readonly framesTooLarge: number;
  /** Frames that were not valid (bad msgpack, wrong shapes or types, empty, wrong direction). */
  readonly malformedFrames: number;
  /** Connections closed because a frame (or the handshake) did not complete in time. */
  readonly slowConnectionsClosed: number;
  /** Requests refused with `KV_OVERLOADED`: ours (not sent) and a peer's (answered so). */
  readonly overloaded: number;
  /**
   * Times an inbound connection stopped being read because its peer did not
   * take its answers (more than `maxBufferedBytesPerPeer` waiting).
   */
  readonly readsPaused: number;
  /** Requests written to peers. */
  readonly requestsSent: number;
  /** Requests received from peers (after the handshake). */
  readonly requestsReceived: number;
  /** Frames written, handshake included. */
  readonly framesSent: number;
  /**
   * Batches handed to sockets: the frames of one event-loop turn leave a
   * connection in one write (one `writev` when they span several buffers),
   * so `framesSent / socketWrites` is how many frames share a system call.
   */
  readonly socketWrites: number;
  /** Frames received and decoded, handshake included. */
  readonly framesReceived: number;
  /** Bytes written, length prefixes included. */
  readonly bytesSent: number;
  /** Bytes received. */
  readonly bytesReceived: number;
}

/** The mutable counters behind {@link TcpTransportStats}. @internal */
export type TcpCounters = { -readonly [K in keyof TcpTransportStats]: TcpTransportStats[K] };

/** Fresh counters, all zero. @internal */
export function newCounters(): TcpCounters {
  return {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    connectionsDialed: 0,
    dialFailures: 0,
    inboundConnections: 0,
    outboundConnections: 0,
    handshakesFailed: 0,
    authFailures: 0,
    framesTooLarge: 0,
    malformedFrames: 0,
    slowConnectionsClosed: 0,
    overloaded: 0,
    readsPaused: 0,
    requestsSent: 0,
    requestsReceived: 0,
    framesSent: 0,
    socketWrites: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
  };
}
