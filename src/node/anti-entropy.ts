/**
 * The node's anti-entropy component: background rounds on the injectable
 * clock, `repair()` on demand, and the responder that answers peers' rounds.
 * The sessions themselves live in `src/antientropy/`.
 *
 * @module
 */
import { ErrorCodes, KvError, TimeoutError } from '../errors/index.js';
import {
  AntiEntropyResponder,
  abortReason,
  runRound,
  type AntiEntropyReplica,
  type RepairOptions,
  type RepairResult,
  type SkippedPeer,
} from '../antientropy/index.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import { onAbort } from '../internal/signals.js';
import type { Logger, Metrics } from '../observability/index.js';
import type { MemberStatus, Ring } from '../ring/index.js';
import type { ReplicaServer } from '../replication/index.js';
import type { StorageAdapter } from '../storage/index.js';
import type { Transport, WireMessage } from '../transport/index.js';
import { decodeSiblingSet } from '../versioning/index.js';

/**
 * The node's replica as anti-entropy sees it: scans from the storage,
 * reads, merges and purges through the `ReplicaServer` (so a record from a
 * peer is merged under the key's lock like any replicated write).
 */
export function antiEntropyReplica(storage: StorageAdapter, replica: ReplicaServer): AntiEntropyReplica {
  return {
    scan: (range, signal) => storage.scan(range, signal ? { signal } : undefined),
    read: (key) => replica.readEncoded(key),
    merge: (key, record) => replica.apply(key, decodeSiblingSet(record), record),
    purgeTombstone: (key, matches) => replica.purgeTombstone(key, matches),
  };
}

/** Defaults of the anti-entropy options (each repeated as `@default` on its option). */
export const AntiEntropyDefaults = {
  /** Time between background rounds, ms (10 minutes). */
  interval: 600_000,
  /** Share of the interval each wait is moved by at random, either way. */
  jitter: 0.1,
  /** Tombstones younger than this are never purged, ms (10 days, Cassandra's `gc_grace_seconds`). */
  tombstoneGrace: 864_000_000,
  /** Timeout of one anti-entropy request, ms. */
  timeout: 10_000,
  /** A responder's session with no message for this long is dropped, ms. */
  sessionTimeout: 60_000,
} as const;

/** The anti-entropy settings of a node (validated, defaults applied). */
export interface AntiEntropyConfig {
  /** Time between background rounds, ms; `false`: no background rounds (`repair()` still works). */
  readonly interval: number | false;
  /** Share of `interval` by which each wait is moved at random, either way (0 to 1). */
  readonly jitter: number;
  /** Grace before a tombstone held by every replica may be purged, ms; `Infinity` never purges. */
  readonly tombstoneGrace: number;
  /** Timeout of one request of a round, ms. */
  readonly timeout: number;
  /** How long a responder keeps a session without a message, ms. */
  readonly sessionTimeout: number;
}

/**
 * Delivers this node's pending hints to their owners and resolves with how
 * many were delivered: `repair()` runs it first (hinted handoff plugs it in
 * through {@link AntiEntropyComponentOptions.deliverHints}).
 */
export type HintDelivery = (signal: AbortSignal) => Promise<number>;

/** What the component needs from the node. */
export interface AntiEntropyComponentOptions {
  /** This node's id. */
  readonly self: string;
  readonly cluster: string;
  /** Replication factor N. */
  readonly n: number;
  /** The node's transport (requests go out through it; its address is this node's). */
  readonly transport: Transport;
  readonly replica: AntiEntropyReplica;
  readonly ring: () => Ring;
  /** A peer's health (`down` when unknown). */
  readonly status: (id: string) => MemberStatus;
  readonly clock: Clock;
  /** Randomness in [0, 1) for the jitter. @default Math.random */
  readonly random?: (() => number) | undefined;
  readonly config: AntiEntropyConfig;
  /** Largest record accepted from a peer, bytes (the replica protocol's bound). */
  readonly maxRecordBytes: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Optional: delivers pending hints before each `repair()` (see {@link HintDelivery}). @default none (0 hints) */
  readonly deliverHints?: HintDelivery | undefined;
}

/**
 * Anti-entropy of one node. `start()` arms the first background round
 * (`interval` ± `jitter` from now, on the node's clock); each round arms the
 * next when it ends. Rounds never overlap: `repair()` during a round waits
 * for it. `stop()` clears the timer, fails a running round and any waiting
 * `repair()` with `KV_NOT_STARTED`, waits for it to end and drops the
 * responder's sessions, leaving no timer behind.
 */
export class AntiEntropy {
  /** For the node's life cycle. */
  readonly name = 'anti-entropy';
  /** Answers peers' `ae.*` requests (the node registers `responder.handle` with its router). */
  readonly responder: AntiEntropyResponder;
  /**
   * The hint delivery `repair()` runs first; settable after construction
   * (hinted handoff is built after this component in some orders).
   */
  deliverHints: HintDelivery | undefined;
  readonly #o: AntiEntropyComponentOptions;
  readonly #random: () => number;
  #timer: TimerHandle | undefined;
  #started = false;
  #stop = new AbortController();
  /** The round running or queued last: the next one starts after it. */
  #tail: Promise<unknown> = Promise.resolve();
  #sessions = 0;
  readonly #epoch: string;

  constructor(options: AntiEntropyComponentOptions) {
    this.#o = options;
    this.#random = options.random ?? Math.random;
    this.deliverHints = options.deliverHints;
    this.#epoch = options.clock.now().toString(36);
    this.responder = new AntiEntropyResponder({
      self: options.self,
      n: options.n,
      replica: options.replica,
      ring: options.ring,
      clock: options.clock,
      sessionTimeout: options.config.sessionTimeout,
      tombstoneGrace: options.config.tombstoneGrace,
      maxRecordBytes: options.maxRecordBytes,
    });
  }

  /** Handles a peer's `ae.*` request (registered with the router for each `AE_REQUEST_TYPES`). */
  readonly handle = (message: WireMessage, from: string): Promise<WireMessage> => this.responder.handle(message, from);

  /** Arms background rounds (none with `interval: false`). Idempotent. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#stop = new AbortController();
    this.#arm();
  }

  /** Stops background rounds, fails the running round with `KV_NOT_STARTED` and waits for it. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    if (this.#timer !== undefined) {
      this.#o.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#stop.abort(new KvError(ErrorCodes.NOT_STARTED, `anti-entropy of node ${this.#o.self} stopped`));
    await this.#tail.catch(() => {});
    this.responder.close();
  }

  /**
   * Delivers pending hints (when hinted handoff plugged in `deliverHints`),
   * then runs one round against the other replicas of every range this
   * node holds. Waits for a round already running.
   *
   * @throws KvError `KV_NOT_STARTED` when stopped (or stopped meanwhile),
   *   `KV_ABORTED` when `signal` fires, `KV_TIMEOUT` past `timeout`;
   *   `KV_STORAGE_FAILURE` when this node's storage fails. A peer that
   *   fails is skipped and counted, never an error of the round.
   */
  repair(options: RepairOptions = {}): Promise<RepairResult> {
    if (!this.#started) return Promise.reject(new KvError(ErrorCodes.NOT_STARTED, `anti-entropy of node ${this.#o.self} is not started`));
    if (options.signal?.aborted) return Promise.reject(abortReason(options.signal));
    const run = this.#tail.catch(() => {}).then(() => this.#round(options));
    this.#tail = run;
    return run;
  }

  #arm(): void {
    const { interval, jitter } = this.#o.config;
    if (interval === false || !this.#started) return;
    const delay = Math.max(0, interval * (1 + jitter * (2 * this.#random() - 1)));
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#started) return;
      const run = this.#tail.catch(() => {}).then(() => this.#round({}));
      this.#tail = run;
      run.then(
        (result) => {
          this.#o.logger.debug('quorumkv: anti-entropy round completed', { node: this.#o.self, ...result });
        },
        (err: unknown) => {
          if (this.#started) this.#o.logger.warn('quorumkv: anti-entropy round failed', { node: this.#o.self, error: err });
        },
      ).finally(() => this.#arm());
    }, delay);
  }

  async #round(options: RepairOptions): Promise<RepairResult> {
    const stop = this.#stop.signal;
    if (!this.#started || stop.aborted) throw new KvError(ErrorCodes.NOT_STARTED, `anti-entropy of node ${this.#o.self} is not started`);
    const controller = new AbortController();
    const offs: (() => void)[] = [];
    const abortWith = (source: AbortSignal): void => controller.abort(abortReason(source));
    offs.push(onAbort(stop, () => abortWith(stop)));
    if (options.signal) {
      const user = options.signal;
      if (user.aborted) throw abortReason(user);
      offs.push(onAbort(user, () => abortWith(user)));
    }
    let deadline: TimerHandle | undefined;
    if (options.timeout !== undefined && Number.isFinite(options.timeout)) {
      const ms = options.timeout;
      deadline = this.#o.clock.setTimeout(() => controller.abort(new TimeoutError(`repair did not finish within ${ms} ms`)), ms);
    }
    const signal = controller.signal;
    const o = this.#o;
    try {
      let hintsDelivered = 0;
      if (this.deliverHints) {
        try {
          hintsDelivered = await this.deliverHints(signal);
        } catch (err) {
          if (signal.aborted) throw abortReason(signal);
          o.logger.warn('quorumkv: hint delivery before repair failed', { node: o.self, error: err });
        }
      }
      const result = await runRound(
        {
          self: o.self,
          address: o.transport.address,
          cluster: o.cluster,
          n: o.n,
          transport: o.transport,
          replica: o.replica,
          ring: o.ring,
          timeout: o.config.timeout,
          maxRecordBytes: o.maxRecordBytes,
          status: o.status,
          tree: {},
          tombstoneGrace: o.config.tombstoneGrace,
          now: () => o.clock.now(),
          newSession: () => `${this.#epoch}.${(++this.#sessions).toString(36)}`,
          onSkipped: (s) => this.#skipped(s),
          onGcFailed: (range, error) =>
            o.logger.warn('quorumkv: tombstone collection failed', { node: o.self, start: range.start, end: range.end, error }),
        },
        signal,
      );
      o.metrics.increment('quorumkv_antientropy_rounds_total');
      o.metrics.increment('quorumkv_antientropy_keys_total', {}, result.keysExchanged);
      o.metrics.increment('quorumkv_tombstones_purged_total', {}, result.tombstonesPurged);
      return { ...result, hintsDelivered };
    } finally {
      for (const off of offs) off();
      if (deadline !== undefined) o.clock.clearTimeout(deadline);
    }
  }

  #skipped(s: SkippedPeer): void {
    const { logger, self } = this.#o;
    const fields = { node: self, peer: s.peer.id, start: s.range.start, end: s.range.end };
    if (s.reason === 'down') logger.debug('quorumkv: anti-entropy skipped a down peer', fields);
    else logger.warn('quorumkv: anti-entropy exchange failed', { ...fields, code: s.reason.code, error: s.reason });
  }
}
