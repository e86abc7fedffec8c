import { ErrorCodes, KvError, toKvError } from '../../errors/index.js';
import type { CodecLimits, Frame } from '../codec.js';
import type { RequestHandler, WireMessage } from '../types.js';
import type { Connection } from './connection.js';
import {
  HandshakeTypes,
  computeProof,
  negotiateVersion,
  newNonce,
  parseAuth,
  parseHello,
  readyMessage,
  verifyProof,
  welcomeMessage,
  type Hello,
  type HandshakeIdentity,
  type Transcript,
} from './handshake.js';
import type { ResolvedTcpOptions } from './options.js';
import type { TcpCounters } from './stats.js';

/** Longest error message sent back for a failed request. */
const MAX_ERROR_MESSAGE = 4096;

/** What an {@link InboundSession} needs from its transport. @internal */
export interface InboundHost {
  readonly options: ResolvedTcpOptions;
  readonly counters: TcpCounters;
  readonly limits: Readonly<Required<CodecLimits>>;
  identity(): HandshakeIdentity;
  /** The request handler, while started. */
  handler(): RequestHandler | undefined;
  /** A handshake failed (counted, and emitted as `handshake:failed`). */
  handshakeFailed(direction: 'inbound', remote: string, error: KvError): void;
  /** A peer completed a handshake from its advertised `address`: it is up again. */
  peerReachable(address: string): void;
}

function isThenable(v: unknown): v is PromiseLike<WireMessage> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * The acceptor's side of one inbound connection: the handshake (hello →
 * welcome, then auth → ready with a secret; nothing else is accepted before
 * it completes), then the peer's requests, each handed to the handler with
 * the peer's advertised address as `from` and answered on this connection.
 * At most `maxPendingPerPeer` requests are handled at once (past it the peer
 * is answered `KV_OVERLOADED`); when the peer does not read its answers and
 * more than `maxBufferedBytesPerPeer` wait, the connection is not read until
 * they drain.
 *
 * @internal
 */
export class InboundSession {
  readonly #host: InboundHost;
  #hello: Hello | undefined;
  #transcript: Transcript | undefined;
  #inFlight = 0;
  #requests = 0;

  constructor(host: InboundHost) {
    this.#host = host;
  }

  /** Requests being handled now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  readonly onFrame = (conn: Connection, frame: Frame): void => {
    if (conn.state === 'handshake') {
      this.#onHandshakeFrame(conn, frame);
      return;
    }
    if (frame.kind === 'req') {
      this.#onRequest(conn, frame.id, frame.body);
      return;
    }
    if (frame.kind === 'err' && frame.id === 0) {
      if (this.#requests === 0) {
        // Our side of the handshake was done (no secret: the welcome ends it),
        // but the dialer refused the welcome: that is a failed handshake too.
        const error = new KvError(frame.code, `${conn.remote} refused the handshake: ${frame.message}`);
        this.#host.handshakeFailed('inbound', conn.remote, error);
        conn.end(error);
        return;
      }
      conn.end(new KvError(frame.code, `${conn.remote} closed the connection: ${frame.message}`));
      return;
    }
    this.#host.counters.malformedFrames++;
    conn.refuse(new KvError(ErrorCodes.INVALID_MESSAGE, `unexpected ${frame.kind} frame: answers travel on the connection their request came on`));
  };

  #onHandshakeFrame(conn: Connection, frame: Frame): void {
    if (frame.kind === 'err' && frame.id === 0) {
      conn.end(new KvError(frame.code, `${conn.remote} gave up the handshake: ${frame.message}`));
      return;
    }
    const o = this.#host.options;
    const self = this.#host.identity();
    if (!this.#hello) {
      if (frame.kind !== 'req' || frame.id !== 0 || frame.body.type !== HandshakeTypes.hello) {
        conn.refuse(new KvError(ErrorCodes.INVALID_MESSAGE, `handshake: expected ${HandshakeTypes.hello} before anything else`));
        return;
      }
      let hello: Hello;
      try {
        hello = parseHello(frame.body);
      } catch (err) {
        conn.refuse(toKvError(err, ErrorCodes.INVALID_MESSAGE));
        return;
      }
      const ours = o.protocolVersions;
      const version = negotiateVersion(ours, hello.versions);
      if (version === undefined) {
        conn.refuse(
          new KvError(
            ErrorCodes.PROTOCOL_MISMATCH,
            `no common protocol version: ${hello.address} speaks ${hello.versions[0]} to ${hello.versions[1]}, ${self.address} speaks ${ours[0]} to ${ours[1]}`,
          ),
        );
        return;
      }
      if (hello.cluster !== self.cluster) {
        conn.refuse(
          new KvError(
            ErrorCodes.CLUSTER_MISMATCH,
            `${hello.address} belongs to cluster ${JSON.stringify(hello.cluster)}, ${self.address} to ${JSON.stringify(self.cluster)}`,
          ),
        );
        return;
      }
      this.#hello = hello;
      const nonce = newNonce();
      const secret = o.secret;
      if (!secret) {
        conn.sendFrame({ kind: 'res', id: 0, body: welcomeMessage(self, { version, nonce, auth: 'none', proof: undefined }) });
        this.#established(conn, hello, version);
        return;
      }
      const transcript: Transcript = {
        version,
        cluster: self.cluster,
        dialer: { cluster: hello.cluster, node: hello.node, address: hello.address, nonce: hello.nonce },
        acceptor: { ...self, nonce },
      };
      this.#transcript = transcript;
      const proof = computeProof(secret, 'acceptor', transcript);
      conn.sendFrame({ kind: 'res', id: 0, body: welcomeMessage(self, { version, nonce, auth: 'hmac-sha256', proof }) });
      return;
    }
    // With a secret: the dialer's proof, and nothing else.
    const transcript = this.#transcript!;
    if (frame.kind !== 'req' || frame.id !== 0) {
      conn.refuse(new KvError(ErrorCodes.AUTH_FAILED, `handshake: expected ${HandshakeTypes.auth} (this node requires the cluster secret)`));
      return;
    }
    let proof: Uint8Array;
    try {
      proof = parseAuth(frame.body);
    } catch (err) {
      conn.refuse(toKvError(err, ErrorCodes.AUTH_FAILED));
      return;
    }
    if (!verifyProof(o.secret!, 'dialer', transcript, proof)) {
      conn.refuse(new KvError(ErrorCodes.AUTH_FAILED, `${this.#hello.address} failed to prove the cluster secret (wrong secret)`));
      return;
    }
    conn.sendFrame({ kind: 'res', id: 0, body: readyMessage() });
    this.#established(conn, this.#hello, transcript.version);
  }

  #established(conn: Connection, hello: Hello, version: number): void {
    conn.established({ cluster: hello.cluster, node: hello.node, address: hello.address }, version, this.#host.limits);
    this.#host.peerReachable(hello.address);
  }

  #onRequest(conn: Connection, id: number, body: WireMessage): void {
    const host = this.#host;
    host.counters.requestsReceived++;
    this.#requests++;
    const handler = host.handler();
    if (!handler) {
      this.#sendError(conn, id, new KvError(ErrorCodes.NOT_STARTED, `${host.identity().address} is stopping`));
      return;
    }
    if (this.#inFlight >= host.options.maxPendingPerPeer) {
      host.counters.overloaded++;
      this.#sendError(
        conn,
        id,
        new KvError(ErrorCodes.OVERLOADED, `${host.identity().address} is handling ${this.#inFlight} requests of this connection already (maxPendingPerPeer)`),
      );
      return;
    }
    this.#inFlight++;
    let result: WireMessage | PromiseLike<WireMessage>;
    try {
      result = handler(body, conn.peer!.address);
    } catch (err) {
      this.#inFlight--;
      this.#sendError(conn, id, err);
      return;
    }
    if (isThenable(result)) {
      result.then(
        (answer) => {
          this.#inFlight--;
          this.#answer(conn, id, answer);
        },
        (err: unknown) => {
          this.#inFlight--;
          this.#sendError(conn, id, err);
        },
      );
      return;
    }
    this.#inFlight--;
    this.#answer(conn, id, result);
  }

  #answer(conn: Connection, id: number, answer: WireMessage): void {
    if (conn.state !== 'open') return; // the connection is gone: nobody waits for it
    try {
      conn.sendFrame({ kind: 'res', id, body: answer });
    } catch (err) {
      const e = toKvError(err, ErrorCodes.INVALID_MESSAGE);
      this.#sendError(conn, id, new KvError(e.code, `handler answer cannot be sent: ${e.message}`));
      return;
    }
    this.#backpressure(conn);
  }

  #sendError(conn: Connection, id: number, err: unknown): void {
    if (conn.state !== 'open') return;
    const e =
      err instanceof KvError
        ? err
        : new KvError(ErrorCodes.INTERNAL, `handler failed: ${err instanceof Error ? err.message : String(err)}`);
    const message = e.message.length > MAX_ERROR_MESSAGE ? `${e.message.slice(0, MAX_ERROR_MESSAGE)}…` : e.message;
    conn.sendFrame({ kind: 'err', id, code: e.code, message });
    this.#backpressure(conn);
  }

  #backpressure(conn: Connection): void {
    if (conn.writableLength > this.#host.options.maxBufferedBytesPerPeer) conn.pauseUntilDrained();
  }
}
