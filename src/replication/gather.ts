import {
  AbortError,
  ErrorCodes,
  QuorumNotMetError,
  toKvError,
  type ReplicaFailure,
} from '../errors/index.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import { onAbort } from '../internal/signals.js';
import type { NodeInfo } from '../ring/index.js';

/** The outcome of asking a set of replicas. */
export interface Gathered<T> {
  /** Answers by node id, in the order they came. */
  readonly ok: ReadonlyMap<string, T>;
  readonly failures: readonly ReplicaFailure[];
}

export interface GatherOptions {
  readonly operation: 'read' | 'write';
  /** Successful answers needed from distinct nodes. */
  readonly required: number;
  /** Successes already counted (the coordinator's own write). */
  readonly counted?: number;
  /** Absolute deadline (clock ms). */
  readonly deadline: number;
  /**
   * Arm a timer that gives up on the nodes still pending at the deadline.
   * Pass false when every call is a transport request carrying the same
   * deadline as its timeout (it then fails with `KV_TIMEOUT` by itself), to
   * save a timer per call.
   * @default true
   */
  readonly timer?: boolean;
  readonly signal?: AbortSignal | undefined;
  readonly clock: Clock;
}

/** What {@link gather} returns. */
export interface Gathering<T> {
  /**
   * Resolves as soon as `required` distinct nodes answered, or rejects with
   * `KV_QUORUM_NOT_MET` once that became impossible or the deadline passed
   * (`KV_ABORTED` if the caller aborted). What it resolves with shows the
   * answers as they are when it is read (later answers may have joined).
   */
  readonly quorum: Promise<Gathered<T>>;
  /** Resolves once every call settled (never rejects), for read repair and `stop()`. */
  readonly all: Promise<Gathered<T>>;
}

/**
 * Sends `call` to every node (at once, in order) and gathers the answers;
 * see {@link Gathering}. A node is counted once, whatever it answers; a
 * call that fails or is still pending at the deadline is a failure of that
 * node with its error's code (`KV_TIMEOUT` at the deadline).
 */
export function gather<T>(
  nodes: readonly NodeInfo[],
  call: (node: NodeInfo, signal: AbortSignal | undefined) => Promise<T>,
  options: GatherOptions,
): Gathering<T> {
  const g = new Gather<T>(nodes, options);
  for (let i = 0; i < nodes.length; i++) g.ask(i, call);
  g.begin();
  return g;
}

const noop = (): void => {};

/**
 * The state of one quorum call. It runs for every operation, so it is kept
 * small: per-node state in a bit mask, answers in parallel arrays (the
 * `Gathered` view is built only when read), no timer or abort listener
 * unless asked for.
 */
class Gather<T> implements Gathering<T>, Gathered<T> {
  readonly quorum: Promise<Gathered<T>>;
  readonly all: Promise<Gathered<T>>;
  readonly #nodes: readonly NodeInfo[];
  readonly #options: GatherOptions;
  /** Bit i set: node i's answer no longer counts (it answered, failed or expired). Beyond 31 nodes, a Set. */
  #closed = 0;
  #closedSet: Set<number> | undefined;
  readonly #okIds: string[] = [];
  readonly #okValues: T[] = [];
  readonly #failures: ReplicaFailure[] = [];
  readonly #timer: TimerHandle | undefined;
  /** Nodes whose answer still counts. */
  #open: number;
  /** Calls not settled yet (`all` waits for every one, even after the deadline). */
  #running: number;
  #settled = false;
  readonly #offAbort: () => void;
  #resolve!: (g: Gathered<T>) => void;
  #reject!: (e: unknown) => void;
  #resolveAll!: (g: Gathered<T>) => void;

  constructor(nodes: readonly NodeInfo[], options: GatherOptions) {
    this.#nodes = nodes;
    this.#options = options;
    this.#open = nodes.length;
    this.#running = nodes.length;
    if (nodes.length > 31) this.#closedSet = new Set();
    this.quorum = new Promise<Gathered<T>>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The caller may ignore `quorum` after an early failure path; never leave it unhandled.
    this.quorum.catch(noop);
    this.all = new Promise<Gathered<T>>((resolve) => {
      this.#resolveAll = resolve;
    });
    this.#timer =
      options.timer === false
        ? undefined
        : options.clock.setTimeout(() => this.#expire(), Math.max(0, options.deadline - options.clock.now()));
    const signal = options.signal;
    this.#offAbort = signal ? onAbort(signal, () => this.#aborted()) : noop;
  }

  get ok(): ReadonlyMap<string, T> {
    const map = new Map<string, T>();
    for (let i = 0; i < this.#okIds.length; i++) map.set(this.#okIds[i]!, this.#okValues[i]!);
    return map;
  }

  get failures(): readonly ReplicaFailure[] {
    return this.#failures.slice();
  }

  ask(i: number, call: (node: NodeInfo, signal: AbortSignal | undefined) => Promise<T>): void {
    const node = this.#nodes[i]!;
    let pending: Promise<T>;
    try {
      pending = call(node, this.#options.signal);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (value) => this.#answered(i, node.id, value),
      (err: unknown) => this.#failed(i, node.id, err),
    );
  }

  /** Settles at once if nothing needs asking (or the caller already aborted). */
  begin(): void {
    if (this.#options.signal?.aborted) this.#aborted();
    this.#finish();
    if (this.#running === 0) this.#done();
  }

  /** Marks node i closed; false if it already was. */
  #close(i: number): boolean {
    if (this.#closedSet !== undefined) {
      if (this.#closedSet.has(i)) return false;
      this.#closedSet.add(i);
      return true;
    }
    const bit = 1 << i;
    if ((this.#closed & bit) !== 0) return false;
    this.#closed |= bit;
    return true;
  }

  #answered(i: number, id: string, value: T): void {
    if (this.#close(i)) {
      this.#open--;
      this.#okIds.push(id);
      this.#okValues.push(value);
      this.#finish();
    }
    if (--this.#running === 0) this.#done();
  }

  #failed(i: number, id: string, err: unknown): void {
    if (this.#close(i)) {
      this.#open--;
      this.#failures.push({ node: id, code: toKvError(err).code });
      this.#finish();
    }
    if (--this.#running === 0) this.#done();
  }

  #aborted(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(new AbortError(undefined, { cause: this.#options.signal?.reason }));
  }

  /** Every call settled: release the timer and listener. */
  #done(): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#offAbort();
    this.#resolveAll(this);
  }

  #expire(): void {
    for (let i = 0; i < this.#nodes.length; i++) {
      if (this.#close(i)) this.#failures.push({ node: this.#nodes[i]!.id, code: ErrorCodes.TIMEOUT });
    }
    // The requests themselves carry the same deadline and end on their own.
    this.#open = 0;
    this.#finish();
  }

  #finish(): void {
    if (this.#settled) return;
    const { required, operation } = this.#options;
    const acks = (this.#options.counted ?? 0) + this.#okIds.length;
    if (acks >= required) {
      this.#settled = true;
      this.#resolve(this);
    } else if (acks + this.#open < required) {
      this.#settled = true;
      this.#reject(new QuorumNotMetError(operation, required, acks, this.#failures.slice()));
    }
  }
}
