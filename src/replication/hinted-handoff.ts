import { AbortError, ErrorCodes, KvError, toKvError } from '../errors/index.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import type { MemberStatus, Ring } from '../ring/index.js';
import type { StorageAdapter, StoredHint } from '../storage/index.js';
import { ownBody } from '../transport/codec.js';
import type { Transport, WireMessage } from '../transport/index.js';
import { decodeSiblingSet, type SiblingSet } from '../versioning/index.js';
import { MAX_WIRE_KEY, MAX_WIRE_RECORD, readBytes, readString } from './messages.js';
import type { KeyRef } from './types.js';

/** Default time a hint is kept before it expires undelivered, ms (3 hours, Cassandra's `max_hint_window`). */
export const DEFAULT_HINT_TTL = 3 * 3600 * 1000;
/**
 * Longest hint TTL, ms: the tombstone grace (10 days). A hint older than the
 * grace could carry a delete whose tombstone the other replicas have already
 * collected, or miss one: past it only anti-entropy (or a wiped rejoin) is safe.
 */
export const MAX_HINT_TTL = 10 * 24 * 3600 * 1000;
/** Default bound on hint deliveries in flight at once. */
export const DEFAULT_HINTS_IN_FLIGHT = 16;
/** Default period of the background sweep that delivers hints to owners that are alive, ms. */
export const DEFAULT_HINT_INTERVAL = 10_000;
/** Default timeout of one hint delivery, ms. */
export const DEFAULT_HINT_DELIVERY_TIMEOUT = 2_000;

/** What `hint:stored`, `hint:delivered` and `hint:expired` carry. */
export interface HintEvent {
  /** Id of the node the record belongs to. */
  readonly target: string;
  /** The key (bytes). */
  readonly key: Uint8Array;
}

/** Options of {@link HintedHandoff}. */
export interface HintedHandoffOptions {
  /** This node's id. */
  readonly self: string;
  /** Cluster name sent with every delivery. */
  readonly cluster: string;
  /** Where hints are kept (opened and closed by its owner). */
  readonly storage: StorageAdapter;
  readonly transport: Transport;
  /** The current ring (owners' addresses, keys' tokens). */
  readonly ring: () => Ring;
  /** Failure-detector view: hints are delivered only to owners that are not `down`. @default every node alive */
  readonly status?: (id: string) => MemberStatus;
  readonly clock: Clock;
  /**
   * A number that differs on every start over the same storage (the node's
   * generation): hint ids are `<generation>.<sequence>`, so ids never repeat
   * across restarts and a new hint never replaces an old one.
   */
  readonly generation: number;
  /**
   * Merges a record into this node's own storage, for a hint whose target is
   * this node (ring views can differ for a moment). Without it such a hint is
   * stored like any other and delivered to this node over the transport.
   */
  readonly applyLocal?: (key: KeyRef, set: SiblingSet<Uint8Array>, record: Uint8Array) => Promise<void>;
  /**
   * How long a hint is kept, ms: older ones are deleted undelivered (the owner
   * then relies on read repair and anti-entropy). At most {@link MAX_HINT_TTL}.
   * @default 10_800_000 (3 hours)
   */
  readonly ttl?: number;
  /** Most deliveries in flight at once (the throttle). @default 16 */
  readonly maxInFlight?: number;
  /** Period of the background delivery sweep, ms. @default 10_000 */
  readonly interval?: number;
  /** Timeout of one delivery, ms. @default 2_000 */
  readonly deliveryTimeout?: number;
  /** A hint was stored on this node. */
  readonly onStored?: (event: HintEvent) => void;
  /** A hint's owner acknowledged it and it was deleted. */
  readonly onDelivered?: (event: HintEvent) => void;
  /** A hint passed its TTL and was deleted undelivered. */
  readonly onExpired?: (event: HintEvent) => void;
  /** A background delivery pass failed (a storage failure, most likely). */
  readonly onError?: (error: KvError) => void;
}

const HINTED: WireMessage = Object.freeze({ type: 'kv.hinted' });
const noop = (): void => {};
const alive = (): MemberStatus => 'alive';

function checkMs(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`Expected \`${name}\` to be a number of milliseconds from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * Hinted handoff (Dynamo §4.6): the stand-in side of a sloppy quorum.
 *
 * - A fallback that receives `kv.hint {key, record, target}` stores the
 *   record under a hint naming its owner (`StorageAdapter.putHint`, durable
 *   with a durable adapter) and answers only once it is stored, so the
 *   coordinator may count it toward W. Hints are not this node's data:
 *   `localGet`, reads and anti-entropy do not see them.
 * - Hints are delivered back to their owner (`kv.apply`: a merge, so a
 *   record the owner already has, or newer, changes nothing) when the owner
 *   comes back (`wake(owner)` on `member:up`), on a background sweep every
 *   `interval` ms (an owner that was only silent, never declared down, has
 *   no `member:up`), and on demand (`deliverPending`, which `repair()` calls
 *   first). A hint is deleted only after its owner acknowledged it.
 * - Delivery is throttled: at most `maxInFlight` deliveries at once, and the
 *   first hint for an owner goes alone (a probe): if it fails, the owner's
 *   other hints wait for the next pass.
 * - Hints expire after `ttl` (default 3 hours, never beyond the 10-day
 *   tombstone grace) and are then deleted undelivered; read repair and
 *   anti-entropy repair what they carried.
 *
 * One delivery pass runs at a time; passes asked for meanwhile run after it.
 */
export class HintedHandoff {
  readonly #o: HintedHandoffOptions;
  readonly #status: (id: string) => MemberStatus;
  readonly #ttl: number;
  readonly #maxInFlight: number;
  readonly #interval: number;
  readonly #deliveryTimeout: number;
  #seq = 0;
  #running = false;
  #timer: TimerHandle | undefined;
  #stopping = new AbortController();
  /** The last pass queued: passes run one at a time, in order. */
  #chain: Promise<unknown> = Promise.resolve();
  /** A background pass queued and not started yet (further wakes join it). */
  #queued: { target: string | undefined } | undefined;

  constructor(options: HintedHandoffOptions) {
    this.#o = options;
    this.#status = options.status ?? alive;
    this.#ttl = checkMs('ttl', options.ttl ?? DEFAULT_HINT_TTL, 1, MAX_HINT_TTL);
    const inFlight = options.maxInFlight ?? DEFAULT_HINTS_IN_FLIGHT;
    if (!Number.isSafeInteger(inFlight) || inFlight < 1) {
      throw new RangeError(`Expected \`maxInFlight\` to be a positive integer, got ${String(inFlight)}`);
    }
    this.#maxInFlight = inFlight;
    this.#interval = checkMs('interval', options.interval ?? DEFAULT_HINT_INTERVAL, 1);
    this.#deliveryTimeout = checkMs('deliveryTimeout', options.deliveryTimeout ?? DEFAULT_HINT_DELIVERY_TIMEOUT, 1);
  }

  /** Hint TTL in effect, ms. */
  get ttl(): number {
    return this.#ttl;
  }

  /** Starts the background sweep (idempotent). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    if (this.#stopping.signal.aborted) this.#stopping = new AbortController();
    this.#arm();
  }

  /** Stops the sweep, aborts the delivery pass in flight and waits for it (idempotent). */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopping.abort();
    await this.#chain.catch(noop);
  }

  /**
   * Stores `record` (an encoded sibling set of `key`) under a hint for the
   * node `target`; resolves once the storage has it.
   *
   * @throws KvError `KV_STORAGE_FAILURE` when the storage fails, `KV_NOT_STARTED` when it is closed.
   */
  async store(target: string, key: KeyRef, record: Uint8Array): Promise<void> {
    const hint: StoredHint = {
      id: `${this.#o.generation.toString(36)}.${(this.#seq++).toString(36)}`,
      target,
      key: key.bytes,
      token: key.token,
      record,
      createdAt: this.#o.clock.now(),
    };
    try {
      await this.#o.storage.putHint(hint);
    } catch (err) {
      throw toKvError(err, ErrorCodes.STORAGE_FAILURE);
    }
    this.#o.onStored?.({ target, key: key.bytes });
  }

  /**
   * Handles `kv.hint {key, record, target}` → `kv.hinted {}` once the hint is
   * stored (or, when `target` is this node, once the record is merged into
   * its own storage). The record is decoded first, so a malformed one is
   * refused (`KV_INVALID_MESSAGE`) before anything is stored.
   */
  async handle(message: WireMessage): Promise<WireMessage> {
    if (message.type !== 'kv.hint') {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, `unknown hint message type ${message.type}`);
    }
    const key = readBytes(message, 'key', MAX_WIRE_KEY);
    const record = readBytes(message, 'record', MAX_WIRE_RECORD);
    const target = readString(message, 'target', 256);
    if (target.length === 0) throw new KvError(ErrorCodes.INVALID_MESSAGE, 'malformed kv.hint: target');
    const set = decodeSiblingSet(record);
    // The token is ours to compute, never the sender's (see ReplicaServer).
    const ref: KeyRef = { bytes: key, token: this.#o.ring().token(key) };
    if (target === this.#o.self && this.#o.applyLocal) await this.#o.applyLocal(ref, set, record);
    else await this.store(target, ref, record);
    return HINTED;
  }

  /** Queues a background delivery of the hints for `target` (call it on `member:up`). */
  wake(target: string): void {
    if (!this.#running) return;
    this.#background(target);
  }

  /**
   * Delivers every hint whose owner is not `down` now (after the pass in
   * flight, if any) and resolves with how many were delivered (acknowledged
   * by their owner and deleted). Expired hints are deleted on the way.
   * An owner that fails a delivery is skipped until the next pass.
   *
   * @throws KvError `KV_ABORTED` when `signal` fires or the component stops,
   *   `KV_NOT_STARTED`/`KV_STORAGE_FAILURE` from the storage.
   */
  deliverPending(signal?: AbortSignal): Promise<number> {
    return this.#enqueue(undefined, signal);
  }

  // ---- internals ---------------------------------------------------------------------------

  #arm(): void {
    if (!this.#running) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#background(undefined);
      this.#arm();
    }, this.#interval);
  }

  /** Queues a background pass unless one that covers it is already waiting. */
  #background(target: string | undefined): void {
    const queued = this.#queued;
    if (queued !== undefined) {
      if (queued.target !== target) queued.target = undefined; // widen to every owner
      return;
    }
    const entry: { target: string | undefined } = { target };
    this.#queued = entry;
    const run = this.#chain.then(() => {
      if (this.#queued === entry) this.#queued = undefined;
      return this.#pass(entry.target, undefined);
    });
    this.#chain = run.catch((err: unknown) => {
      const e = toKvError(err);
      if (e.code !== ErrorCodes.ABORTED) this.#o.onError?.(e);
    });
  }

  #enqueue(target: string | undefined, signal: AbortSignal | undefined): Promise<number> {
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }));
    const run = this.#chain.then(() => this.#pass(target, signal));
    this.#chain = run.catch(noop);
    return run;
  }

  async #pass(target: string | undefined, callerSignal: AbortSignal | undefined): Promise<number> {
    const signal = callerSignal ? AbortSignal.any([callerSignal, this.#stopping.signal]) : this.#stopping.signal;
    const throwIfAborted = (): void => {
      if (signal.aborted) throw new AbortError(undefined, { cause: signal.reason });
    };
    throwIfAborted();
    const { storage, clock } = this.#o;
    const now = clock.now();
    const ring = this.#o.ring();
    let delivered = 0;
    /** Owners that failed a delivery in this pass (their other hints wait). */
    const failed = new Set<string>();
    /** Owners that acknowledged a delivery in this pass (no more probing). */
    const confirmed = new Set<string>();
    /** Owner → its probe in flight. */
    const probes = new Map<string, Promise<void>>();
    const inFlight = new Set<Promise<void>>();
    /** What a delivery threw (an abort): the pass rethrows it. Deliveries never reject. */
    let thrown: unknown;
    const launch = (hint: StoredHint, address: string): Promise<void> => {
      const p = this.#deliver(hint, address, signal).then(
        (ok) => {
          inFlight.delete(p);
          if (ok) {
            delivered++;
            confirmed.add(hint.target);
          } else failed.add(hint.target);
        },
        (err: unknown) => {
          inFlight.delete(p);
          failed.add(hint.target);
          thrown ??= err;
        },
      );
      inFlight.add(p);
      return p;
    };
    try {
      for await (const hint of storage.hints(target, { signal })) {
        throwIfAborted();
        if (thrown !== undefined) throw thrown;
        if (hint.createdAt + this.#ttl <= now) {
          await storage.deleteHint(hint.id);
          this.#o.onExpired?.({ target: hint.target, key: hint.key });
          continue;
        }
        if (failed.has(hint.target) || this.#status(hint.target) === 'down') continue;
        const owner = ring.node(hint.target);
        if (owner === undefined) continue; // not on this node's ring (yet): kept until it is, or expires
        const probe = probes.get(hint.target);
        if (probe !== undefined && !confirmed.has(hint.target)) {
          await probe;
          throwIfAborted();
          if (failed.has(hint.target)) continue;
        }
        while (inFlight.size >= this.#maxInFlight) await Promise.race(inFlight);
        throwIfAborted();
        const p = launch(hint, owner.address);
        if (!confirmed.has(hint.target) && !probes.has(hint.target)) probes.set(hint.target, p);
      }
    } finally {
      // Never leave deliveries running past the pass.
      await Promise.all(inFlight);
    }
    if (thrown !== undefined) throw thrown;
    throwIfAborted();
    return delivered;
  }

  /** Sends one hint to its owner; true once acknowledged and deleted, false if the owner did not take it. */
  async #deliver(hint: StoredHint, address: string, signal: AbortSignal): Promise<boolean> {
    let answer: WireMessage;
    try {
      answer = await this.#o.transport.request(
        address,
        ownBody({ type: 'kv.apply', cluster: this.#o.cluster, key: hint.key, record: hint.record }),
        { timeout: this.#deliveryTimeout, signal },
      );
    } catch (err) {
      const e = toKvError(err);
      if (e.code === ErrorCodes.ABORTED) throw e;
      return false;
    }
    if (answer.type !== 'kv.applied') return false;
    // Only now, after the owner acknowledged, is the hint deleted.
    await this.#o.storage.deleteHint(hint.id);
    this.#o.onDelivered?.({ target: hint.target, key: hint.key });
    return true;
  }
}
