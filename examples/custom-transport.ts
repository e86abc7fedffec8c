/**
 * Writing your own Transport: `PortTransport`, request/response messaging
 * over `node:worker_threads` `MessageChannel`s, on a small in-process
 * "network" of ports (`PortNetwork`). It passes quorumkv's transport
 * compliance suite (test/compliance/custom-transport-example.test.ts), and
 * three Stores run on it below.
 *
 * How it works:
 * - `PortNetwork` is a directory: address -> the transport listening there.
 *   Dialing an address creates a `MessageChannel`; the dialer keeps `port1`
 *   and the listener is handed `port2` (its "accepted socket"). A port can
 *   also be transferred to a worker thread, so the same wire works across
 *   threads.
 * - Frames are quorumkv's binary wire frames (`encodeFrame` /
 *   `decodeFrame` from `quorumkv`): bodies are validated, limited
 *   to `maxFrameBytes`, and copied through the wire. Their bytes are
 *   transferred through the port, not cloned.
 * - Each outgoing connection keeps its requests in flight in a
 *   `PendingRequests` table (from `quorumkv`), which gives ids, timeouts,
 *   aborts, settle-once and the `maxPending` bound; connection loss rejects
 *   them all with `KV_CONNECTION_CLOSED`.
 * - `stop()` closes every `MessagePort` it opened or accepted: an open port
 *   keeps the process alive.
 *
 * Run the demo with `npx tsx examples/custom-transport.ts`.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import {
  DEFAULT_FRAME_LIMIT,
  decodeFrame,
  encodeFrame,
  ErrorCodes,
  KvError,
  PendingRequests,
  Store,
  type AnswerReceiver,
  type OpenRequestOptions,
  type RequestHandler,
  type RequestOptions,
  type Transport,
  type TransportCapabilities,
  type Frame,
  type WireMessage,
} from 'quorumkv';

/** Options of {@link PortNetwork.transport}. */
export interface PortTransportOptions {
  /**
   * Timeout of requests that do not give one, in ms.
   * @default 5000
   */
  defaultTimeout?: number;
  /**
   * Most requests in flight on one outgoing connection; past it a request
   * rejects at once with `KV_OVERLOADED` and is not sent.
   * @default 10000
   */
  maxPending?: number;
  /**
   * Largest encoded frame, in bytes (requests and answers).
   * @default 16777216 (16 MiB, quorumkv's wire limit)
   */
  maxFrameBytes?: number;
}

/**
 * An in-process network of {@link PortTransport}s: a directory of addresses.
 * Messages travel over `MessageChannel` ports, never through this object.
 *
 * @example
 * ```ts
 * const net = new PortNetwork();
 * const a = new Store({ id: 'a', transport: net.transport('a') });
 * const b = new Store({ id: 'b', transport: net.transport('b'), seeds: ['a'] });
 * ```
 */
export class PortNetwork {
  readonly #listeners = new Map<string, PortTransport>();

  /**
   * A new, unstarted transport at `address`. An address can be given to a
   * new transport again once the previous one stopped (a restart).
   */
  transport(address: string, options: PortTransportOptions = {}): PortTransport {
    if (typeof address !== 'string' || address.length === 0) {
      throw new TypeError(`Expected \`address\` to be a non-empty string, got ${address === '' ? 'an empty string' : typeof address}`);
    }
    return new PortTransport(this, address, options);
  }

  /** Addresses with a started transport. */
  addresses(): string[] {
    return [...this.#listeners.keys()];
  }

  /** @internal Claims `address` for `t` on start. */
  listen(t: PortTransport): void {
    const current = this.#listeners.get(t.address);
    if (current !== undefined && current !== t) {
      throw new Error(`PortNetwork: address "${t.address}" is in use by a started transport; stop it first`);
    }
    this.#listeners.set(t.address, t);
  }

  /** @internal Releases `t`'s address on stop. */
  unlisten(t: PortTransport): void {
    if (this.#listeners.get(t.address) === t) this.#listeners.delete(t.address);
  }

  /** @internal The transport listening at `address`, if any. */
  lookup(address: string): PortTransport | undefined {
    return this.#listeners.get(address);
  }

  /**
   * @internal Dials `to` for `from`: returns the dialer's end of a new
   * channel, or undefined when nobody listens at `to`.
   */
  dial(from: string, to: string): { port: MessagePort; peer: PortTransport } | undefined {
    const peer = this.#listeners.get(to);
    if (peer === undefined) return undefined;
    const { port1, port2 } = new MessageChannel();
    peer.accept(port2, from);
    return { port: port1, peer };
  }
}

/** One outgoing connection: our end of the channel and its requests in flight. */
interface Connection {
  /** The peer's address. */
  readonly to: string;
  readonly port: MessagePort;
  /** The transport we dialed: a restarted peer is a different object. */
  readonly peer: PortTransport;
  readonly pending: PendingRequests<WireMessage>;
  closed: boolean;
}

/** The bytes of a frame as a Uint8Array of its own buffer, so it can be transferred. */
function transferable(bytes: Uint8Array): { bytes: Uint8Array; transfer: ArrayBuffer[] } {
  const own =
    bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
      ? bytes
      : bytes.slice();
  return { bytes: own, transfer: [own.buffer as ArrayBuffer] };
}

function checkPositive(name: string, value: number, integer: boolean): void {
  if (typeof value !== 'number' || !(value > 0) || (integer && value !== Infinity && !Number.isInteger(value))) {
    throw new RangeError(`Expected \`${name}\` to be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  }
}

/**
 * A {@link Transport} over `MessageChannel` ports; get one with
 * `network.transport(address)`.
 *
 * Semantics (the `Transport` contract): a request to an address where
 * nobody listens rejects at once with `KV_UNREACHABLE`; when either side
 * stops, requests in flight between them reject with `KV_CONNECTION_CLOSED`;
 * a request over `maxFrameBytes` rejects with `KV_INVALID_MESSAGE` and is
 * not sent; a handler's `KvError` reaches the caller with its code, any
 * other throw as `KV_INTERNAL`.
 */
export class PortTransport implements Transport {
  /** This transport's address on its {@link PortNetwork}. */
  readonly address: string;
  /** Encodes (binary frames), limited to `maxFrameBytes`; no fault injection. */
  readonly capabilities: TransportCapabilities;
  /** Timeout of requests that do not give one (ms). */
  readonly defaultTimeout: number;
  readonly #network: PortNetwork;
  readonly #maxPending: number;
  readonly #limits: { maxFrameBytes: number };
  #handler: RequestHandler | undefined;
  /** Outgoing connections by peer address. */
  readonly #outgoing = new Map<string, Connection>();
  /** Accepted (incoming) ports. */
  readonly #incoming = new Set<MessagePort>();

  /** @internal Use `network.transport(address)`. */
  constructor(network: PortNetwork, address: string, options: PortTransportOptions) {
    this.#network = network;
    this.address = address;
    this.defaultTimeout = options.defaultTimeout ?? 5000;
    checkPositive('defaultTimeout', this.defaultTimeout, false);
    this.#maxPending = options.maxPending ?? 10_000;
    checkPositive('maxPending', this.#maxPending, true);
    const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_FRAME_LIMIT;
    checkPositive('maxFrameBytes', maxFrameBytes, true);
    this.#limits = { maxFrameBytes };
    this.capabilities = Object.freeze({ encodes: true, faultInjection: false, maxFrameBytes });
  }

  /** True between `start()` and `stop()`. */
  get started(): boolean {
    return this.#handler !== undefined;
  }

  /** Open ports (outgoing and incoming); 0 once stopped. */
  get openPorts(): number {
    return this.#outgoing.size + this.#incoming.size;
  }

  /** Starts listening at `address`. Idempotent while started (the first handler stays). */
  async start(handler: RequestHandler): Promise<void> {
    if (typeof handler !== 'function') throw new TypeError(`Expected \`handler\` to be a function, got ${typeof handler}`);
    if (this.#handler) return;
    this.#network.listen(this);
    this.#handler = handler;
  }

  /**
   * Stops listening, rejects this transport's requests in flight with
   * `KV_CONNECTION_CLOSED`, drops the answers of requests it is still
   * handling, and closes every port. Idempotent.
   */
  async stop(): Promise<void> {
    if (!this.#handler) return;
    this.#handler = undefined;
    this.#network.unlisten(this);
    for (const conn of [...this.#outgoing.values()]) {
      this.#closeConnection(conn, `${this.address} stopped while the request was in flight`);
    }
    for (const port of this.#incoming) port.close();
    this.#incoming.clear();
  }

  /** Same as {@link stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Sends `message` to `to` and resolves with the answer. Rejects with
   * `KV_NOT_STARTED`, `KV_UNREACHABLE`, `KV_TIMEOUT`, `KV_ABORTED`,
   * `KV_OVERLOADED`, `KV_CONNECTION_CLOSED`, `KV_INVALID_MESSAGE`, or the
   * code of the remote handler's error; `RangeError` for a negative or NaN
   * timeout.
   */
  async request(to: string, message: WireMessage, options: RequestOptions = {}): Promise<WireMessage> {
    const conn = this.#connectFor(to);
    // Throws (nothing sent) when aborted, out of time, overloaded, or on a bad timeout.
    const { id, promise } = conn.pending.open(this.#openOptions(to, message, options));
    this.#post(conn, id, message);
    return promise;
  }

  /**
   * Optional (`Transport.send`): {@link PortTransport.request} without a
   * promise. The answer or the error goes to `receiver` with `tag`; the
   * coordinator uses this when a transport has it.
   */
  send(to: string, message: WireMessage, options: RequestOptions | undefined, receiver: AnswerReceiver, tag: number): void {
    try {
      const conn = this.#connectFor(to);
      const id = conn.pending.openFor(this.#openOptions(to, message, options ?? {}), receiver, tag);
      this.#post(conn, id, message);
    } catch (err) {
      receiver.failed(tag, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** A request's checks, then its connection. */
  #connectFor(to: string): Connection {
    if (typeof to !== 'string' || to.length === 0) {
      throw new TypeError(`Expected \`to\` to be a non-empty string, got ${to === '' ? 'an empty string' : typeof to}`);
    }
    if (!this.#handler) throw new KvError(ErrorCodes.NOT_STARTED, `transport ${this.address} is not started`);
    return this.#connect(to);
  }

  #openOptions(to: string, message: WireMessage, options: RequestOptions): OpenRequestOptions {
    return { timeout: options.timeout ?? this.defaultTimeout, signal: options.signal, label: `request ${message.type} to ${to}` };
  }

  /** Encodes and posts request `id` (fails it if it cannot go on the wire). */
  #post(conn: Connection, id: number, message: WireMessage): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame({ kind: 'req', id, from: this.address, body: message }, this.#limits);
    } catch (err) {
      conn.pending.reject(id, err instanceof KvError ? err : new KvError(ErrorCodes.INVALID_MESSAGE, String(err)));
      return;
    }
    const out = transferable(bytes);
    conn.port.postMessage(out.bytes, out.transfer);
  }

  /** The open connection to `to`, dialing one if needed. */
  #connect(to: string): Connection {
    const existing = this.#outgoing.get(to);
    if (existing !== undefined) {
      // The peer stopped (and maybe restarted) before our port heard of it.
      if (this.#network.lookup(to) === existing.peer) return existing;
      this.#closeConnection(existing, `${to} stopped while the request was in flight`);
    }
    const dialed = this.#network.dial(this.address, to);
    if (dialed === undefined) throw new KvError(ErrorCodes.UNREACHABLE, `${to} is not reachable: nobody listens at that address`);
    const conn: Connection = {
      to,
      port: dialed.port,
      peer: dialed.peer,
      pending: new PendingRequests<WireMessage>({ maxPending: this.#maxPending }),
      closed: false,
    };
    this.#outgoing.set(to, conn);
    conn.port.on('message', (data: unknown) => this.#onAnswer(conn, data));
    conn.port.on('close', () => this.#closeConnection(conn, `${to} closed the connection before answering`));
    return conn;
  }

  #closeConnection(conn: Connection, reason: string): void {
    if (conn.closed) return;
    conn.closed = true;
    if (this.#outgoing.get(conn.to) === conn) this.#outgoing.delete(conn.to);
    conn.pending.rejectAll(new KvError(ErrorCodes.CONNECTION_CLOSED, reason));
    conn.port.close();
  }

  /** An answer (or error) arrived on an outgoing connection. */
  #onAnswer(conn: Connection, data: unknown): void {
    let frame: Frame;
    try {
      frame = decodeFrame(data as Uint8Array, this.#limits);
    } catch (err) {
      // A peer that sends garbage is not trusted with more requests.
      this.#closeConnection(conn, `bad answer from the peer: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (frame.kind === 'res') conn.pending.resolve(frame.id, frame.body);
    else if (frame.kind === 'err') conn.pending.reject(frame.id, new KvError(frame.code, frame.message));
    else this.#closeConnection(conn, 'the peer sent a request on an answer channel');
  }

  /** @internal The network hands us the listener's end of a connection dialed by `from`. */
  accept(port: MessagePort, from: string): void {
    this.#incoming.add(port);
    port.on('message', (data: unknown) => this.#onRequest(port, from, data));
    port.on('close', () => this.#incoming.delete(port));
  }

  /** A request arrived on an incoming connection: handle it and answer on the same port. */
  #onRequest(port: MessagePort, from: string, data: unknown): void {
    const handler = this.#handler;
    if (handler === undefined) return;
    let frame: Frame;
    try {
      frame = decodeFrame(data as Uint8Array, this.#limits);
    } catch {
      port.close(); // undecodable: we cannot even tell which request to fail
      return;
    }
    if (frame.kind !== 'req') {
      port.close();
      return;
    }
    const { id } = frame;
    // The connection's dialer is the sender, whatever the frame claims.
    new Promise<WireMessage>((resolve) => resolve(handler(frame.body, from))).then(
      (body) => this.#reply(port, id, undefined, body),
      (err: unknown) => this.#reply(port, id, err),
    );
  }

  #reply(port: MessagePort, id: number, error: unknown, body?: WireMessage): void {
    if (!this.#incoming.has(port)) return; // closed meanwhile: the caller already failed
    let bytes: Uint8Array;
    if (error === undefined) {
      try {
        bytes = encodeFrame({ kind: 'res', id, body: body! }, this.#limits);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        bytes = encodeFrame({ kind: 'err', id, code: ErrorCodes.INVALID_MESSAGE, message: `handler answer cannot be sent: ${message}` });
      }
    } else {
      const e =
        error instanceof KvError
          ? error
          : new KvError(ErrorCodes.INTERNAL, `handler failed: ${error instanceof Error ? error.message : String(error)}`);
      bytes = encodeFrame({ kind: 'err', id, code: e.code, message: e.message });
    }
    const out = transferable(bytes);
    port.postMessage(out.bytes, out.transfer);
  }
}

/** The demo: three Stores on one PortNetwork, a write through one and a read through another. */
async function main(): Promise<void> {
  const net = new PortNetwork();
  const transports = ['a', 'b', 'c'].map((id) => net.transport(id));
  const stores = transports.map(
    (transport, i) => new Store({ id: transport.address, cluster: 'ports', transport, seeds: i === 0 ? [] : ['a'] }),
  );
  try {
    await Promise.all(stores.map((s) => s.start()));
    await Promise.all(stores.map((s) => s.waitForMembers(3, { timeout: 10_000 })));
    console.log('members seen by c:', stores[2]!.members().map((m) => `${m.id}(${m.status})`).join(' '));
    await stores[0]!.put('greeting', { text: 'hello over MessagePorts' });
    const read = await stores[1]!.get('greeting');
    console.log('written through a, read through b:', read?.values);
    if (JSON.stringify(read?.values) !== JSON.stringify([{ text: 'hello over MessagePorts' }])) {
      throw new Error('BUG: the value read through b is not the value written through a');
    }
  } finally {
    await Promise.all(stores.map((s) => s.stop()));
  }
  const open = transports.reduce((sum, t) => sum + t.openPorts, 0);
  console.log(`stopped; open ports left: ${open}`);
  if (open !== 0) throw new Error(`BUG: ${open} ports left open after stop`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
