import { AbortError, ErrorCodes, KvError, toKvError, type ErrorCode } from '../errors/index.js';
import { systemClock, type Clock, type TimerHandle } from '../internal/clock.js';
import { seededRandom } from '../internal/random.js';
import { DEFAULT_CODEC_LIMITS, passFrame, validateWireMessage, type Frame } from './codec.js';
import { DEFAULT_MAX_PENDING, PendingRequests, checkMaxPending } from './pending-requests.js';
import type { AnswerReceiver, RequestHandler, RequestOptions, Transport, TransportCapabilities, WireMessage } from './types.js';

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
   * Tell the nodes that requests to one peer are worth batching
   * (`TransportCapabilities.batchesRequests`), as they are over TCP: a
   * coordinator then sends one turn's replica requests for a peer as one
   * batch request. Off by default: in one process a message costs little
   * and batching costs more than it saves (measured on five in-process
   * nodes: gets +17–33% CPU, puts unchanged); the fault simulation turns
   * it on, so batches meet its faults.
   * @default false
   */
  batching?: boolean;
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
   * Default bound on the requests one transport keeps in flight; past it a
   * request rejects at once with `KV_OVERLOADED`. `Infinity` for no bound.
   * @default 10000
   */
  maxPending?: number;
  /**
   * Source of time for timeouts and latency timers.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Deliver every message with a timer of `clock`, even without latency
   * (then due at once), instead of batching latency-free messages on the
   * next turn of the event loop (`setImmediate`). For simulated clocks
   * (`SimulatedClock` in `quorumkv/testing`): they run timers due at the
   * same virtual instant in an order drawn from their seed, so messages are
   * interleaved differently per seed, and nothing escapes virtual time.
   * @default false
   */
  deliverOnClock?: boolean;
}

/** A one-way delay of messages: a fixed number of ms or a uniform `{ min, max }` range. */
export type MemoryLatency = number | { readonly min: number; readonly max: number };

/** Options of {@link MemoryNetwork.transport}. */
export interface MemoryTransportOptions {
  /**
   * Per-request timeout when a request does not give one (ms).
   * @default the network's `defaultTimeout` (5000)
   */
  defaultTimeout?: number;
  /**
   * Most requests this transport keeps in flight; past it a request rejects
   * at once with `KV_OVERLOADED`. `Infinity` for no bound.
   * @default the network's `maxPending` (10000)
   */
  maxPending?: number;
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

/**
 * A message on its way: what the receiver gets (with the codec, the frame
 * already decoded from its encoding) and its encoded size (0 without).
 */
interface Wire {
  readonly frame: Frame;
  readonly bytes: number;
}

/**
 * One request and its answer, from the moment it is sent until it settles.
 * The caller's pending-request table owns its outcome (timeout, abort,
 * answer); the exchange tracks where the message is. Its callbacks are made
 * once per exchange, not per hop.
 */
class Exchange {
  /** The request's id in the caller's table. */
  id = 0;
  /** `lost`: the request or its answer was dropped; only the timeout ends it. */
  phase: 'to-target' | 'handling' | 'to-caller' | 'lost' = 'to-target';
  /** Set once the caller's request settled: nothing more is delivered. */
  done = false;
  /** The message on its way (request, then answer). */
  wire: Wire | undefined = undefined;
  /** The latency timer of the message on its way, if it has latency. */
  timer: TimerHandle | undefined = undefined;
  /** Index in the network's list of exchanges in flight (-1: not in it). */
  slot = -1;
  /** Sending order, network-wide. */
  seq = 0;
  /** The caller's request settled (any route): stop delivering its messages. */
  readonly settled = (): void => this.network.release(this);
  readonly answered = (body: WireMessage): void => this.network.answer(this, undefined, body);
  readonly failed = (error: unknown): void => this.network.answer(this, error === undefined ? new Error('undefined') : error);

  constructor(
    readonly network: MemoryNetwork,
    readonly caller: MemoryTransport,
    readonly pending: PendingRequests<WireMessage>,
    readonly target: MemoryTransport,
  ) {}
}

function checkTimeout(value: number, what: string): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new RangeError(`Expected \`${what}\` to be a positive number of milliseconds (or Infinity), got ${String(value)}`);
  }
}

function toLatency(latency: MemoryLatency): { min: number; max: number } {
  const l =
    typeof latency === 'number'
      ? { min: latency, max: latency }
      : typeof latency === 'object' && latency !== null
        ? { min: latency.min, max: latency.max }
        : { min: NaN, max: NaN };
  if (!(Number.isFinite(l.min) && Number.isFinite(l.max) && l.min >= 0 && l.max >= l.min)) {
    throw new RangeError(`Expected latency to be a number >= 0 or { min, max } with 0 <= min <= max, got ${JSON.stringify(latency)}`);
  }
  return l;
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
 * - Each transport keeps its requests in a {@link PendingRequests} table:
 *   a request settles exactly once, a request whose `timeout` is 0 (its
 *   deadline has passed) rejects with `KV_TIMEOUT` without being sent, and
 *   past `maxPending` requests in flight one rejects at once with
 *   `KV_OVERLOADED`.
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
  /** True when the transports tell their nodes to batch requests (the `batching` option). */
  readonly batching: boolean;
  /** @internal */
  readonly clock: Clock;
  /** @internal */
  readonly defaultTimeout: number;
  /** @internal */
  readonly maxPending: number;
  /** True when every message is delivered by a timer of `clock` (see {@link MemoryNetworkOptions.deliverOnClock}). */
  readonly deliverOnClock: boolean;

  readonly #random: () => number;
  readonly #slots = new Map<string, MemoryTransport>();
  readonly #cuts = new Set<string>();
  readonly #isolated = new Set<string>();
  #latency = { min: 0, max: 0 };
  /** Latency of single links, over the network's. */
  readonly #linkLatency = new Map<string, { min: number; max: number }>();
  #dropRate = 0;
  /**
   * Requests not yet settled at their caller, in slots 0..#exchangeCount
   * (each knows its slot; a removal moves the last one into it; `seq` keeps
   * the sending order). Not a `Set`: see IdTable, whose
   * notes say why a `Set` that every request passes through costs GC time.
   */
  #exchanges: (Exchange | undefined)[] = new Array<Exchange | undefined>(16).fill(undefined);
  #exchangeCount = 0;
  #exchangeSeq = 0;
  #stats = { sent: 0, delivered: 0, dropped: 0, bytes: 0 };
  /** Messages without latency, waiting for the next turn of the event loop. */
  #ready: Exchange[] = [];
  #drainScheduled = false;

  constructor(options: MemoryNetworkOptions = {}) {
    if (options.seed !== undefined && (!Number.isInteger(options.seed) || typeof options.seed !== 'number')) {
      throw new TypeError(`Expected \`seed\` to be an integer, got ${String(options.seed)}`);
    }
    this.seed = options.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : options.seed >>> 0;
    this.#random = seededRandom(this.seed);
    this.codec = options.codec ?? true;
    if (options.batching !== undefined && typeof options.batching !== 'boolean') {
      throw new TypeError(`Expected \`batching\` to be a boolean, got ${typeof options.batching}`);
    }
    this.batching = options.batching ?? false;
    this.clock = options.clock ?? systemClock;
    this.defaultTimeout = options.defaultTimeout ?? DEFAULT_MEMORY_TIMEOUT;
    checkTimeout(this.defaultTimeout, 'defaultTimeout');
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    checkMaxPending(this.maxPending);
    const deliverOnClock = options.deliverOnClock ?? false;
    if (typeof deliverOnClock !== 'boolean') {
      throw new TypeError(`Expected \`deliverOnClock\` to be a boolean, got ${typeof deliverOnClock}`);
    }
    this.deliverOnClock = deliverOnClock;
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
    const t = new MemoryTransport(this, address, {
      defaultTimeout: options.defaultTimeout ?? this.defaultTimeout,
      maxPending: options.maxPending ?? this.maxPending,
    });
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

  /**
   * A bridge (as Jepsen's): `left` and `right` cannot reach each other, and
   * `via`, in neither group, still reaches both sides, so news between the
   * halves can only pass through it. Same as `partition(left, right)` with
   * `via` left out; {@link heal} removes it.
   *
   * @throws RangeError when `via` is in `left` or `right`.
   */
  bridge(left: readonly string[], via: string, right: readonly string[]): void {
    if (!Array.isArray(left) || !Array.isArray(right)) {
      throw new TypeError(`Expected \`left\` and \`right\` to be arrays of addresses, got ${typeof left} and ${typeof right}`);
    }
    if (typeof via !== 'string' || via.length === 0) {
      throw new TypeError(`Expected \`via\` to be a non-empty address string, got ${String(via)}`);
    }
    if (left.includes(via) || right.includes(via)) {
      throw new RangeError(`Expected \`via\` to be in neither group of the bridge, got ${JSON.stringify(via)} inside one`);
    }
    this.partition(left, right);
  }

  /** `address` reaches nobody and nobody reaches it, until {@link heal} or {@link reconnect}. */
  isolate(address: string): void {
    this.#isolated.add(address);
  }

  /** Ends the isolation of `address` (partitions stay). A no-op for an address not isolated. */
  reconnect(address: string): void {
    this.#isolated.delete(address);
  }

  /** True while `address` is isolated (see {@link isolate}). */
  isolated(address: string): boolean {
    return this.#isolated.has(address);
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
  setLatency(latency: MemoryLatency): void {
    this.#latency = toLatency(latency);
  }

  /**
   * Delay of the messages between `a` and `b` (both directions), in ms,
   * over the network's {@link setLatency}: a fixed number or a uniform
   * `{ min, max }` range drawn from the seeded PRNG. `undefined` removes the
   * link's own latency. Kept by {@link heal}; {@link reset} removes it.
   */
  setLinkLatency(a: string, b: string, latency: MemoryLatency | undefined): void {
    if (typeof a !== 'string' || typeof b !== 'string') {
      throw new TypeError(`Expected \`a\` and \`b\` to be address strings, got ${typeof a} and ${typeof b}`);
    }
    if (latency === undefined) this.#linkLatency.delete(linkKey(a, b));
    else this.#linkLatency.set(linkKey(a, b), toLatency(latency));
  }

  /** Restores the network's first state: every link up, no latency (network-wide or per link), no loss. */
  reset(): void {
    this.heal();
    this.#latency = { min: 0, max: 0 };
    this.#linkLatency.clear();
    this.#dropRate = 0;
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

  /**
   * Whether the link between `a` and `b` is up: neither is isolated and no
   * partition cuts them apart (links are symmetric). Only the faults set with
   * {@link partition} and {@link isolate} count: not the drop rate, and not
   * whether a transport is started at either address.
   */
  connected(a: string, b: string): boolean {
    if (typeof a !== 'string' || typeof b !== 'string') {
      throw new TypeError(`Expected \`a\` and \`b\` to be address strings, got ${typeof a} and ${typeof b}`);
    }
    return this.#linkUp(a, b);
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
    const { min, max } = this.#linkLatency.size > 0 ? (this.#linkLatency.get(linkKey(from, to)) ?? this.#latency) : this.#latency;
    return max > min ? min + this.#random() * (max - min) : min;
  }

  /**
   * Queues the exchange's message: after its latency on the clock, or, with
   * none, on the next turn of the event loop. Messages without latency share
   * one `setImmediate` per turn (a queue drained in order) instead of one each.
   */
  #schedule(exchange: Exchange, delay: number, wire: Wire): void {
    exchange.wire = wire;
    if (delay > 0 || this.deliverOnClock) {
      exchange.timer = this.clock.setTimeout(() => {
        exchange.timer = undefined;
        this.#deliver(exchange);
      }, delay);
      return;
    }
    this.#ready.push(exchange);
    if (!this.#drainScheduled) {
      this.#drainScheduled = true;
      setImmediate(this.#drain);
    }
  }

  /** Delivers what was queued before this turn; what they queue waits for the next one. */
  readonly #drain = (): void => {
    const batch = this.#ready;
    this.#ready = [];
    this.#drainScheduled = false;
    for (const exchange of batch) this.#deliver(exchange);
  };

  #deliver(exchange: Exchange): void {
    const wire = exchange.wire;
    exchange.wire = undefined;
    if (exchange.done || wire === undefined) return;
    if (exchange.phase === 'to-target') {
      this.#arrive(exchange, wire);
      return;
    }
    this.#stats.delivered++;
    const frame = wire.frame;
    if (frame.kind === 'res') exchange.pending.resolve(frame.id, frame.body);
    else if (frame.kind === 'err') exchange.pending.reject(frame.id, new KvError(frame.code, frame.message));
  }

  /**
   * With the codec, the frame is encoded and decoded at once (one copy of its
   * bytes): the receiver gets what `decodeFrame(encodeFrame(frame))` gives, and
   * a frame that cannot be encoded fails at its sender.
   */
  #encode(frame: Frame): Wire {
    if (!this.codec) {
      if (frame.kind !== 'err') validateWireMessage(frame.body, undefined, frame.kind === 'req' ? 'request body' : 'response body');
      return { frame, bytes: 0 };
    }
    return passFrame(frame);
  }

  /**
   * @internal Sends one request from `caller`, registered in its `pending`
   * table (which settles it: answer, timeout, abort or stop). Returns its
   * promise, or nothing when it settles through `receiver` instead.
   */
  send(
    caller: MemoryTransport,
    pending: PendingRequests<WireMessage>,
    to: string,
    message: WireMessage,
    timeout: number,
    signal: AbortSignal | undefined,
    receiver?: AnswerReceiver,
    tag = 0,
  ): Promise<WireMessage> | undefined {
    const target = this.#slots.get(to);
    const ex = new Exchange(this, caller, pending, target as MemoryTransport);
    // Throws (nothing sent) when aborted, out of time (timeout 0) or overloaded.
    const options = { timeout, signal, label: `request ${message.type} to ${to}`, onSettled: ex.settled };
    let id: number;
    let promise: Promise<WireMessage> | undefined;
    if (receiver === undefined) ({ id, promise } = pending.open(options));
    else id = pending.openFor(options, receiver, tag);
    ex.id = id;
    let wire: Wire;
    try {
      wire = this.#encode({ kind: 'req', id, from: caller.address, body: message });
    } catch (err) {
      ex.done = true;
      pending.reject(id, toKvError(err, ErrorCodes.INVALID_MESSAGE));
      return promise;
    }
    if (!target?.started) {
      ex.done = true;
      pending.reject(id, new KvError(ErrorCodes.UNREACHABLE, `${to} is not reachable: no started transport at that address`));
      return promise;
    }
    this.#track(ex);
    const delay = this.#route(caller.address, to, wire.bytes);
    if (delay === undefined) {
      ex.phase = 'lost';
      return promise;
    }
    this.#schedule(ex, delay, wire);
    return promise;
  }

  /** @internal The caller's request settled (any route): stop delivering its messages. */
  release(exchange: Exchange): void {
    exchange.done = true;
    exchange.wire = undefined;
    if (exchange.timer !== undefined) {
      this.clock.clearTimeout(exchange.timer);
      exchange.timer = undefined;
    }
    this.#untrack(exchange);
  }

  #track(ex: Exchange): void {
    let list = this.#exchanges;
    if (this.#exchangeCount === list.length) {
      const bigger = new Array<Exchange | undefined>(list.length * 2).fill(undefined);
      for (let i = 0; i < list.length; i++) bigger[i] = list[i];
      list.fill(undefined);
      this.#exchanges = list = bigger;
    }
    ex.seq = this.#exchangeSeq++;
    ex.slot = this.#exchangeCount++;
    list[ex.slot] = ex;
  }

  #untrack(ex: Exchange): void {
    const i = ex.slot;
    if (i < 0) return;
    ex.slot = -1;
    const list = this.#exchanges;
    const last = list[--this.#exchangeCount]!;
    list[this.#exchangeCount] = undefined;
    if (last !== ex) {
      list[i] = last;
      last.slot = i;
    }
  }

  /** The request reaches its target. */
  #arrive(exchange: Exchange, wire: Wire): void {
    const { target } = exchange;
    if (!target.started || this.#slots.get(target.address) !== target) {
      exchange.pending.reject(
        exchange.id,
        new KvError(ErrorCodes.UNREACHABLE, `${target.address} stopped before the request arrived`),
      );
      return;
    }
    this.#stats.delivered++;
    exchange.phase = 'handling';
    const frame = wire.frame;
    if (frame.kind !== 'req') return; // cannot happen: we encoded it
    // The handler's result is taken as it comes: a promise is followed directly
    // (wrapping it in another promise costs two more turns per request).
    let result: WireMessage | Promise<WireMessage>;
    try {
      result = target.handler!(frame.body, frame.from);
    } catch (err) {
      this.answer(exchange, err === undefined ? new Error('undefined') : err);
      return;
    }
    if (result instanceof Promise) result.then(exchange.answered, exchange.failed);
    else if (result !== null && typeof (result as { then?: unknown }).then === 'function') {
      Promise.resolve(result).then(exchange.answered, exchange.failed);
    } else this.answer(exchange, undefined, result);
  }

  /** @internal The target's handler finished: send the answer (or error) back. */
  answer(exchange: Exchange, error: unknown, body?: WireMessage): void {
    if (exchange.done || exchange.phase !== 'handling') return; // caller gave up or a side stopped
    let wire: Wire;
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
    const delay = this.#route(exchange.target.address, exchange.caller.address, wire.bytes);
    if (delay === undefined) {
      exchange.phase = 'lost';
      return;
    }
    this.#schedule(exchange, delay, wire);
  }

  /** @internal `t` stopped: fail everything it is part of (see class docs). */
  stopped(t: MemoryTransport): void {
    // A snapshot, in sending order (rejecting runs callbacks that may send or settle).
    const inFlight = this.#exchanges.slice(0, this.#exchangeCount) as Exchange[];
    inFlight.sort((a, b) => a.seq - b.seq);
    for (const ex of inFlight) {
      if (ex.caller === t) {
        ex.pending.reject(
          ex.id,
          new KvError(ErrorCodes.CONNECTION_CLOSED, `${t.address} stopped while the request to ${ex.target.address} was in flight`),
        );
      } else if (ex.target === t && ex.phase !== 'lost') {
        ex.pending.reject(ex.id, new KvError(ErrorCodes.CONNECTION_CLOSED, `${t.address} stopped before answering`));
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
  /**
   * `encodes` mirrors the network's `codec` option; with the codec, frames
   * are limited to `maxFrameBytes` (16 MiB); fault injection is supported.
   */
  readonly capabilities: TransportCapabilities;
  /** Timeout of requests that do not give one (ms). */
  readonly defaultTimeout: number;
  readonly #network: MemoryNetwork;
  readonly #pending: PendingRequests<WireMessage>;
  #handler: RequestHandler | undefined;

  /** @internal Use `MemoryNetwork.transport(address)`. */
  constructor(network: MemoryNetwork, address: string, options: Required<MemoryTransportOptions>) {
    checkTimeout(options.defaultTimeout, 'defaultTimeout');
    this.#network = network;
    this.address = address;
    this.defaultTimeout = options.defaultTimeout;
    this.#pending = new PendingRequests({ clock: network.clock, maxPending: options.maxPending });
    this.capabilities = Object.freeze(
      network.codec
        ? { encodes: true, faultInjection: true, maxFrameBytes: DEFAULT_CODEC_LIMITS.maxFrameBytes, batchesRequests: network.batching }
        : { encodes: false, faultInjection: true, batchesRequests: network.batching },
    );
  }

  /** True between `start()` and `stop()`. */
  get started(): boolean {
    return this.#handler !== undefined;
  }

  /** Requests this transport sent that have not settled yet. */
  get pendingRequests(): number {
    return this.#pending.size;
  }

  /** Most requests this transport keeps in flight (see {@link MemoryTransportOptions.maxPending}). */
  get maxPending(): number {
    return this.#pending.maxPending;
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
   * no timer or abort listener is left behind. Idempotent.
   */
  async stop(): Promise<void> {
    if (!this.#handler) return;
    this.#handler = undefined;
    this.#network.stopped(this);
    // Nothing should be left; if something is, it must not hang.
    this.#pending.rejectAll(
      new KvError(ErrorCodes.CONNECTION_CLOSED, `${this.address} stopped while a request was in flight`),
    );
  }

  /**
   * Sends `message` to `to` and resolves with the answer.
   *
   * `timeout` is the request's own deadline in ms (default
   * `defaultTimeout`); `0` means the deadline has already passed, so the
   * request rejects with `KV_TIMEOUT` without being sent; `Infinity` waits
   * for ever. A negative or NaN timeout is a bug in the caller: `RangeError`.
   *
   * Rejects with `KV_NOT_STARTED` (this transport is stopped),
   * `KV_UNREACHABLE` (no started transport at `to`), `KV_TIMEOUT`,
   * `KV_ABORTED` (name `AbortError`), `KV_OVERLOADED` (`maxPending`
   * requests already in flight; not sent), `KV_CONNECTION_CLOSED` (either
   * side stopped first), `KV_INVALID_MESSAGE` (the body cannot go on the
   * wire), or the code of a `KvError` thrown by the remote handler
   * (`KV_INTERNAL` for anything else it throws).
   */
  request(to: string, message: WireMessage, options?: RequestOptions): Promise<WireMessage> {
    // Not an async function: every failure is still a rejection, without a promise of our own per request.
    try {
      const timeout = this.#check(to, options);
      return this.#network.send(this, this.#pending, to, message, timeout, options?.signal)!;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * {@link MemoryTransport.request} without a promise: the answer or the
   * error goes to `receiver` with `tag` (see {@link Transport.send}), with
   * the same codes as `request`.
   */
  send(to: string, message: WireMessage, options: RequestOptions | undefined, receiver: AnswerReceiver, tag: number): void {
    try {
      const timeout = this.#check(to, options);
      this.#network.send(this, this.#pending, to, message, timeout, options?.signal, receiver, tag);
    } catch (err) {
      receiver.failed(tag, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** A request's checks before anything is registered; returns its timeout. */
  #check(to: string, options: RequestOptions | undefined): number {
    if (typeof to !== 'string' || to.length === 0) {
      throw new TypeError(`Expected \`to\` to be a non-empty string, got ${to === '' ? 'an empty string' : typeof to}`);
    }
    const timeout = options?.timeout ?? this.defaultTimeout;
    if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
      throw new RangeError(`Expected \`timeout\` to be a number of milliseconds >= 0 (or Infinity), got ${String(timeout)}`);
    }
    if (!this.#handler) {
      throw new KvError(ErrorCodes.NOT_STARTED, `transport ${this.address} is not started`);
    }
    const signal = options?.signal;
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    return timeout;
  }

  /** Same as {@link stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
