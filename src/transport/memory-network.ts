import { AbortError, ErrorCodes, KvError, TimeoutError, toKvError, type ErrorCode } from '../errors/index.js';
import { systemClock, type Clock, type TimerHandle } from '../internal/clock.js';
import { seededRandom } from '../internal/random.js';
import { decodeFrame, encodeFrame, validateWireMessage, type Frame } from './codec.js';
import type { RequestHandler, RequestOptions, Transport, TransportCapabilities, WireMessage } from './types.js';

/** Default per-request timeout of memory transports, in ms. */
export const DEFAULT_MEMORY_TIMEOUT = 5000;

/**
 * The code a request rejects with when the remote handler throws something
 * that is not a `KvError` (a bug or an unexpected failure in the handler).
 * The message carries the original error's message.
 */
export const HANDLER_FAILURE_CODE: ErrorCode = ErrorCodes.INTERNAL;

/** Options of {@link MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /**
   * Every request, answer and error goes through `encodeFrame` /
   * `decodeFrame`, so tests prove messages survive the wire. With `false`,
   * bodies are still validated but passed by reference (handlers must not
   * mutate them).
   * @default true
   */
  codec?: boolean;
  /**
   * Seed of the PRNG that draws message drops and latencies; the same seed
   * and the same sequence of messages give the same faults.
   * @default a random 32-bit seed, readable as `net.seed`
   */
  seed?: number;
  /**
   * Default per-request timeout of the transports (ms).
   * @default 5000
   */
  defaultTimeout?: number;
  /**
   * Source of time for timeouts and latency timers.
   * @default systemClock
   */
  clock?: Clock;
}

/** Options of {@link MemoryNetwork.transport}. */
export interface MemoryTransportOptions {
  /**
   * Per-request timeout when a request does not give one (ms).
   * @default the network's `defaultTimeout` (5000)
   */
  defaultTimeout?: number;
}

/** Message counters of a {@link MemoryNetwork}. */
export interface MemoryNetworkStats {
  /** Messages (requests, answers, errors) handed to the network. */
  readonly sent: number;
  /** Messages that reached their destination. */
  readonly delivered: number;
  /** Messages lost to partitions, isolation or the drop rate. */
  readonly dropped: number;
  /** Encoded bytes of every sent message (0 with `codec: false`). */
  readonly bytes: number;
}

type Cancel = () => void;

/** One request and its answer, from the moment it is sent until it settles. */
interface Exchange {
  readonly id: number;
  readonly caller: MemoryTransport;
  readonly target: MemoryTransport;
  /** `lost`: the request or its answer was dropped; only the timeout ends it. */
  phase: 'to-target' | 'handling' | 'to-caller' | 'lost';
  cancelDelivery: Cancel | undefined;
  settle(result: { ok: true; body: WireMessage } | { ok: false; error: KvError }): void;
}

function checkTimeout(value: number, what: string): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new RangeError(`Expected \`${what}\` to be a positive number of milliseconds (or Infinity), got ${String(value)}`);
  }
}

function linkKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

/**
 * An in-process network of {@link MemoryTransport}s with fault injection:
 * partitions, isolation, latency and random loss, all drawn from a seeded
 * PRNG. Delivery is always asynchronous.
 *
 * Semantics:
 * - A request to an address with no started transport rejects at once with
 *   `KV_UNREACHABLE`.
 * - A message cut by a partition, isolation or the drop rate is lost
 *   silently: the request rejects with `KV_TIMEOUT` at its deadline.
 * - When a transport stops, every unfinished request it sent, and every
 *   request addressed to it that is still travelling, being handled, or whose
 *   answer is still travelling, rejects at once with `KV_CONNECTION_CLOSED`
 *   at the caller; answers of handlers still running are discarded. Requests
 *   whose message was already lost are not affected (they time out).
 *
 * @example
 * ```ts
 * const net = new MemoryNetwork({ seed: 42 });
 * const a = net.transport('a'), b = net.transport('b');
 * await b.start(async (msg) => ({ type: 'pong' }));
 * await a.start(() => ({ type: 'noop' }));
 * await a.request('b', { type: 'ping' }); // { type: 'pong' }
 * net.partition(['a'], ['b']);            // now requests time out
 * ```
 */
export class MemoryNetwork {
  /** The PRNG seed (print it in failing tests to replay them). */
  readonly seed: number;
  /** True when messages go through the wire codec. */
  readonly codec: boolean;
  /** @internal */
  readonly clock: Clock;
  /** @internal */
  readonly defaultTimeout: number;

  readonly #random: () => number;
  readonly #slots = new Map<string, MemoryTransport>();
  readonly #cuts = new Set<string>();
  readonly #isolated = new Set<string>();
  #latency = { min: 0, max: 0 };
  #dropRate = 0;
  #nextId = 1;
  readonly #exchanges = new Map<number, Exchange>();
  #stats = { sent: 0, delivered: 0, dropped: 0, bytes: 0 };

  constructor(options: MemoryNetworkOptions = {}) {
    if (options.seed !== undefined && (!Number.isInteger(options.seed) || typeof options.seed !== 'number')) {
      throw new TypeError(`Expected \`seed\` to be an integer, got ${String(options.seed)}`);
    }
    this.seed = options.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : options.seed >>> 0;
    this.#random = seededRandom(this.seed);
    this.codec = options.codec ?? true;
    this.clock = options.clock ?? systemClock;
    this.defaultTimeout = options.defaultTimeout ?? DEFAULT_MEMORY_TIMEOUT;
    checkTimeout(this.defaultTimeout, 'defaultTimeout');
  }

  /**
   * The transport for `address`. May be called again for an address whose
   * transport is stopped (a restart): the new transport replaces the old one.
   *
   * @throws Error while a transport for `address` is started.
   */
  transport(address: string, options: MemoryTransportOptions = {}): MemoryTransport {
    if (typeof address !== 'string' || address.length === 0) {
      throw new TypeError(`Expected \`address\` to be a non-empty string, got ${String(address)}`);
    }
    const current = this.#slots.get(address);
    if (current?.started) {
      throw new Error(`MemoryNetwork: address "${address}" is already in use by a started transport; stop it first`);
    }
    const t = new MemoryTransport(this, address, options.defaultTimeout ?? this.defaultTimeout);
    this.#slots.set(address, t);
    return t;
  }

  /**
   * Cuts every link between addresses of different groups: messages between
   * them are dropped silently. Addresses in no group are unaffected. Calling
   * again adds more cuts; {@link heal} removes them all.
   */
  partition(...groups: readonly (readonly string[])[]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = i + 1; j < groups.length; j++) {
        for (const a of groups[i]!) {
          for (const b of groups[j]!) if (a !== b) this.#cuts.add(linkKey(a, b));
        }
      }
    }
  }

  /** `address` reaches nobody and nobody reaches it, until {@link heal}. */
  isolate(address: string): void {
    this.#isolated.add(address);
  }

  /** Restores every link (partitions and isolation). Keeps latency and drop rate. */
  heal(): void {
    this.#cuts.clear();
    this.#isolated.clear();
  }

  /**
   * Delay of every message, in ms, each direction: a fixed number or a
   * uniform `{ min, max }` range (drawn from the seeded PRNG).
   * @default 0 (delivered on the next turn of the event loop)
   */
  setLatency(latency: { min: number; max: number } | number): void {
    const l = typeof latency === 'number' ? { min: latency, max: latency } : { min: latency.min, max: latency.max };
    if (!(Number.isFinite(l.min) && Number.isFinite(l.max) && l.min >= 0 && l.max >= l.min)) {
      throw new RangeError(`Expected latency to be a number >= 0 or { min, max } with 0 <= min <= max, got ${JSON.stringify(latency)}`);
    }
    this.#latency = l;
  }

  /**
   * Probability (0..1) that any one message is lost, drawn from the seeded PRNG.
   * @default 0
   */
  setDropRate(rate: number): void {
    if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
      throw new RangeError(`Expected \`rate\` to be a number between 0 and 1, got ${String(rate)}`);
    }
    this.#dropRate = rate;
  }

  /** Addresses with a started transport. */
  addresses(): string[] {
    return [...this.#slots.values()].filter((t) => t.started).map((t) => t.address);
  }

  /** Message counters since the network was created. */
  stats(): MemoryNetworkStats {
    return { ...this.#stats };
  }

  // ---- internals used by MemoryTransport ----

  /** @internal Claims the address slot for `t` on start. */
  claim(t: MemoryTransport): void {
    const current = this.#slots.get(t.address);
    if (current && current !== t && current.started) {
      throw new Error(`MemoryNetwork: address "${t.address}" is already in use by another started transport`);
    }
    this.#slots.set(t.address, t);
  }

  #linkUp(from: string, to: string): boolean {
    return !this.#isolated.has(from) && !this.#isolated.has(to) && !this.#cuts.has(linkKey(from, to));
  }

  /** Decides loss and delay of one message; returns undefined when it is lost. */
  #route(from: string, to: string, bytes: number): number | undefined {
    this.#stats.sent++;
    this.#stats.bytes += bytes;
    const random = this.#dropRate > 0 ? this.#random() : 1;
    if (!this.#linkUp(from, to) || random < this.#dropRate) {
      this.#stats.dropped++;
      return undefined;
    }
    const { min, max } = this.#latency;
    return max > min ? min + this.#random() * (max - min) : min;
  }

  #schedule(delay: number, fn: () => void): Cancel {
    if (delay > 0) {
      const h: TimerHandle = this.clock.setTimeout(fn, delay);
      return () => this.clock.clearTimeout(h);
    }
    const h = setImmediate(fn);
    return () => clearImmediate(h);
  }

  #encode(frame: Frame): { frame: Frame; bytes: Uint8Array | undefined } {
    if (!this.codec) {
      if (frame.kind !== 'err') validateWireMessage(frame.body, undefined, frame.kind === 'req' ? 'request body' : 'response body');
      return { frame, bytes: undefined };
    }
    return { frame, bytes: encodeFrame(frame) };
  }

  #decode(wire: { frame: Frame; bytes: Uint8Array | undefined }): Frame {
    return wire.bytes === undefined ? wire.frame : decodeFrame(wire.bytes);
  }

  /** @internal Sends one request from `caller`; the caller's promise is wired to `settle`. */
  send(
    caller: MemoryTransport,
    to: string,
    message: WireMessage,
    timeout: number,
    signal: AbortSignal | undefined,
  ): Promise<WireMessage> {
    return new Promise<WireMessage>((resolve, reject) => {
      const id = this.#nextId++;
      let wire: { frame: Frame; bytes: Uint8Array | undefined };
      try {
        wire = this.#encode({ kind: 'req', id, from: caller.address, body: message });
      } catch (err) {
        reject(err);
        return;
      }
      const target = this.#slots.get(to);
      if (!target?.started) {
        reject(new KvError(ErrorCodes.UNREACHABLE, `${to} is not reachable: no started transport at that address`));
        return;
      }

      let timer: TimerHandle | undefined;
      let onAbort: (() => void) | undefined;
      const exchange: Exchange = {
        id,
        caller,
        target,
        phase: 'to-target',
        cancelDelivery: undefined,
        settle: (result) => {
          if (!this.#exchanges.delete(id)) return;
          exchange.cancelDelivery?.();
          exchange.cancelDelivery = undefined;
          if (timer !== undefined) this.clock.clearTimeout(timer);
          if (onAbort) signal?.removeEventListener('abort', onAbort);
          if (result.ok) resolve(result.body);
          else reject(result.error);
        },
      };
      this.#exchanges.set(id, exchange);

      if (Number.isFinite(timeout)) {
        timer = this.clock.setTimeout(() => {
          timer = undefined;
          exchange.settle({
            ok: false,
            error: new TimeoutError(`request ${message.type} to ${to} timed out after ${timeout} ms`),
          });
        }, timeout);
      }
      if (signal) {
        onAbort = () => exchange.settle({ ok: false, error: new AbortError(undefined, { cause: signal.reason }) });
        signal.addEventListener('abort', onAbort, { once: true });
      }

      const delay = this.#route(caller.address, to, wire.bytes?.byteLength ?? 0);
      if (delay === undefined) {
        exchange.phase = 'lost';
        return;
      }
      exchange.cancelDelivery = this.#schedule(delay, () => {
        exchange.cancelDelivery = undefined;
        this.#arrive(exchange, wire);
      });
    });
  }

  /** The request reaches its target. */
  #arrive(exchange: Exchange, wire: { frame: Frame; bytes: Uint8Array | undefined }): void {
    const { target } = exchange;
    if (!target.started || this.#slots.get(target.address) !== target) {
      exchange.settle({
        ok: false,
        error: new KvError(ErrorCodes.UNREACHABLE, `${target.address} stopped before the request arrived`),
      });
      return;
    }
    this.#stats.delivered++;
    exchange.phase = 'handling';
    let frame: Frame;
    try {
      frame = this.#decode(wire);
    } catch (err) {
      this.#answer(exchange, err);
      return;
    }
    if (frame.kind !== 'req') return; // cannot happen: we encoded it
    const handler = target.handler;
    new Promise<WireMessage>((resolve) => resolve(handler!(frame.body, frame.from))).then(
      (body) => this.#answer(exchange, undefined, body),
      (err: unknown) => this.#answer(exchange, err),
    );
  }

  /** The target's handler finished: send the answer (or error) back. */
  #answer(exchange: Exchange, error: unknown, body?: WireMessage): void {
    if (!this.#exchanges.has(exchange.id) || exchange.phase !== 'handling') return; // caller gave up or a side stopped
    let wire: { frame: Frame; bytes: Uint8Array | undefined };
    if (error === undefined) {
      try {
        wire = this.#encode({ kind: 'res', id: exchange.id, body: body! });
      } catch (err) {
        const e = toKvError(err, ErrorCodes.INVALID_MESSAGE);
        wire = this.#encode({ kind: 'err', id: exchange.id, code: e.code, message: `handler answer cannot be sent: ${e.message}` });
      }
    } else {
      const e =
        error instanceof KvError
          ? error
          : new KvError(HANDLER_FAILURE_CODE, `handler failed: ${error instanceof Error ? error.message : String(error)}`);
      wire = this.#encode({ kind: 'err', id: exchange.id, code: e.code, message: e.message });
    }
    exchange.phase = 'to-caller';
    const delay = this.#route(exchange.target.address, exchange.caller.address, wire.bytes?.byteLength ?? 0);
    if (delay === undefined) {
      exchange.phase = 'lost';
      return;
    }
    exchange.cancelDelivery = this.#schedule(delay, () => {
      exchange.cancelDelivery = undefined;
      this.#stats.delivered++;
      let frame: Frame;
      try {
        frame = this.#decode(wire);
      } catch (err) {
        exchange.settle({ ok: false, error: toKvError(err, ErrorCodes.INVALID_MESSAGE) });
        return;
      }
      if (frame.kind === 'res') exchange.settle({ ok: true, body: frame.body });
      else if (frame.kind === 'err') exchange.settle({ ok: false, error: new KvError(frame.code, frame.message) });
    });
  }

  /** @internal `t` stopped: fail everything it is part of (see class docs). */
  stopped(t: MemoryTransport): void {
    for (const ex of [...this.#exchanges.values()]) {
      if (ex.caller === t) {
        ex.settle({ ok: false, error: new KvError(ErrorCodes.CONNECTION_CLOSED, `${t.address} stopped while the request to ${ex.target.address} was in flight`) });
      } else if (ex.target === t && ex.phase !== 'lost') {
        ex.settle({ ok: false, error: new KvError(ErrorCodes.CONNECTION_CLOSED, `${t.address} stopped before answering`) });
      }
    }
  }
}

/**
 * A {@link Transport} on a {@link MemoryNetwork}; get one with
 * `net.transport(address)`. See {@link MemoryNetwork} for delivery semantics.
 */
export class MemoryTransport implements Transport {
  /** This node's address on the network. */
  readonly address: string;
  /** `encodes` mirrors the network's `codec` option. */
  readonly capabilities: TransportCapabilities;
  /** Timeout of requests that do not give one (ms). */
  readonly defaultTimeout: number;
  readonly #network: MemoryNetwork;
  #handler: RequestHandler | undefined;

  /** @internal Use `MemoryNetwork.transport(address)`. */
  constructor(network: MemoryNetwork, address: string, defaultTimeout: number) {
    checkTimeout(defaultTimeout, 'defaultTimeout');
    this.#network = network;
    this.address = address;
    this.defaultTimeout = defaultTimeout;
    this.capabilities = Object.freeze({ encodes: network.codec, faultInjection: true });
  }

  /** True between `start()` and `stop()`. */
  get started(): boolean {
    return this.#handler !== undefined;
  }

  /** @internal */
  get handler(): RequestHandler | undefined {
    return this.#handler;
  }

  /**
   * Starts accepting requests, answered by `handler`. Idempotent while
   * started (the first handler stays). A stopped transport can be started
   * again if no other transport took its address meanwhile.
   */
  async start(handler: RequestHandler): Promise<void> {
    if (typeof handler !== 'function') {
      throw new TypeError(`Expected \`handler\` to be a function, got ${typeof handler}`);
    }
    if (this.#handler) return;
    this.#network.claim(this);
    this.#handler = handler;
  }

  /**
   * Stops: unfinished requests sent by this transport reject with
   * `KV_CONNECTION_CLOSED`, so do requests it received and has not answered;
   * no timer is left behind. Idempotent.
   */
  async stop(): Promise<void> {
    if (!this.#handler) return;
    this.#handler = undefined;
    this.#network.stopped(this);
  }

  /**
   * Sends `message` to `to` and resolves with the answer.
   *
   * Rejects with `KV_NOT_STARTED` (this transport is stopped),
   * `KV_UNREACHABLE` (no started transport at `to`), `KV_TIMEOUT`,
   * `KV_ABORTED` (name `AbortError`), `KV_CONNECTION_CLOSED` (either side
   * stopped first), `KV_INVALID_MESSAGE` (the body cannot go on the wire),
   * or the code of a `KvError` thrown by the remote handler.
   */
  async request(to: string, message: WireMessage, options: RequestOptions = {}): Promise<WireMessage> {
    if (!this.#handler) {
      throw new KvError(ErrorCodes.NOT_STARTED, `transport ${this.address} is not started`);
    }
    if (typeof to !== 'string' || to.length === 0) {
      throw new TypeError(`Expected \`to\` to be a non-empty string, got ${String(to)}`);
    }
    const timeout = options.timeout ?? this.defaultTimeout;
    checkTimeout(timeout, 'timeout');
    if (options.signal?.aborted) throw new AbortError(undefined, { cause: options.signal.reason });
    return this.#network.send(this, to, message, timeout, options.signal);
  }

  /** Same as {@link stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
