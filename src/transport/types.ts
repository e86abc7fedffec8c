/**
 * A message body: any value the wire codec (msgpack) can carry — plain
 * objects, arrays, strings, numbers, booleans, null and Uint8Array.
 * Protocol messages are objects with a string `type` field.
 */
export type WireValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | readonly WireValue[]
  | { readonly [key: string]: WireValue | undefined };

/** A protocol message: a wire object tagged with its `type`. */
export interface WireMessage {
  readonly type: string;
  readonly [key: string]: WireValue | undefined;
}

/** Per-request options. */
export interface RequestOptions {
  /**
   * Milliseconds to wait for the answer before rejecting with `KV_TIMEOUT`.
   * `0` means the deadline has already passed: the request rejects with
   * `KV_TIMEOUT` without being sent. `Infinity` waits for ever. Negative or
   * NaN: `RangeError`.
   * @default the transport's `defaultTimeout` (5000 ms)
   */
  timeout?: number;
  /** Rejects with `KV_ABORTED` (name `AbortError`) when aborted. */
  signal?: AbortSignal;
}

/**
 * Receives the outcomes of requests sent with {@link Transport.send}. One
 * receiver may serve many requests, told apart by the `tag` each was sent
 * with: a caller that sends many requests then allocates no promise or
 * closure per request.
 */
export interface AnswerReceiver<T = WireMessage> {
  /** Request `tag` was answered with `answer`. */
  answered(tag: number, answer: T): void;
  /** Request `tag` failed, with the error `request()` would reject with. */
  failed(tag: number, error: Error): void;
}

/**
 * Handles one incoming request and returns the answer. Throwing a `KvError`
 * sends its `code` and message back to the caller, where the request rejects
 * with a `KvError` of the same code.
 */
export type RequestHandler = (
  message: WireMessage,
  from: string,
) => WireMessage | Promise<WireMessage>;

/** What a transport can do, read by the compliance suite. */
export interface TransportCapabilities {
  /** Messages go through the binary wire codec. */
  readonly encodes: boolean;
  /** Supports fault injection (partitions, latency, drops). */
  readonly faultInjection: boolean;
  /**
   * Largest encoded frame (a request or an answer with its header), in
   * bytes; a request over it rejects with `KV_INVALID_MESSAGE` and is not
   * sent, an answer over it makes the request reject with
   * `KV_INVALID_MESSAGE`. Absent when the transport has no limit of its own
   * (e.g. it does not encode); the compliance suite then skips its
   * oversized-message case.
   */
  readonly maxFrameBytes?: number;
  /**
   * Requests to one peer cost less sent together (each single request
   * costs a frame, a table entry and a share of system calls): a node then
   * sends the replica requests of one turn for one peer as one batch
   * request (`kv.apply-batch`, `kv.read-batch`). Absent or false: one
   * request each. `TcpTransport`: true; the in-process network: its
   * `batching` option.
   */
  readonly batchesRequests?: boolean;
}

/**
 * Who the node starting a transport is, for transports that authenticate
 * their connections (a handshake carrying the cluster name and node id, so a
 * peer of another cluster or posing as another node is refused before any
 * message is handled). Transports that do not care ignore it.
 */
export interface TransportContext {
  /** The node's id. */
  readonly nodeId: string;
  /** The cluster the node belongs to. */
  readonly cluster: string;
}

/**
 * Request/response messaging between node addresses.
 *
 * Lifecycle: `start(handler)` begins accepting requests (idempotent while
 * started); `stop()` rejects in-flight requests with `KV_CONNECTION_CLOSED`,
 * stops accepting, and frees every timer and socket. Requests on a stopped
 * transport reject with `KV_NOT_STARTED`. A request to a peer that is
 * stopped or unknown rejects with `KV_UNREACHABLE`.
 *
 * Implementations can keep their requests in flight in a
 * `PendingRequests` table (timeouts, aborts, settle-once, `maxPending`),
 * and check themselves with `transportCompliance` from `quorumkv/testing`.
 */
export interface Transport {
  /** This node's address as peers should dial it. */
  readonly address: string;
  readonly capabilities: TransportCapabilities;
  /** True between a successful `start()` and `stop()`. */
  readonly started: boolean;
  /**
   * Starts accepting requests, handing each to `handler`. `context` says which
   * node starts it (the Store always passes it; tests and tools may omit it).
   */
  start(handler: RequestHandler, context?: TransportContext): Promise<void>;
  stop(): Promise<void>;
  /** Sends `message` to `to` and resolves with the peer's answer. */
  request(to: string, message: WireMessage, options?: RequestOptions): Promise<WireMessage>;
  /**
   * Optional: {@link Transport.request} without a promise. The outcome goes
   * to `receiver`: `answered(tag, answer)` or `failed(tag, error)` (the
   * error `request` would reject with), exactly once per call. It may come
   * before `send` returns (a failure found before anything was sent, or a
   * peer that answers at once); `send` itself does not throw. The
   * coordinator uses it when the transport has it (every quorum call sends
   * two or three requests); `transportCompliance` checks it like `request`.
   */
  send?(to: string, message: WireMessage, options: RequestOptions | undefined, receiver: AnswerReceiver, tag: number): void;
}
