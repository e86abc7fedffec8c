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
  readonly signal?: AbortSignal | undefined;
  readonly clock: Clock;
}

/** What {@link gather} returns. */
export interface Gathering<T> {
  /**
   * Resolves as soon as `required` distinct nodes answered (with a snapshot
   * of the answers so far), or rejects with `KV_QUORUM_NOT_MET` once that
   * became impossible or the deadline passed (`KV_ABORTED` if the caller
   * aborted).
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

const PENDING = 0;
/** Answered, or failed, or given up at the deadline: its answer no longer counts. */
const SETTLED = 1;

/**
 * The state of one quorum call: a class with per-node state in arrays, not
 * closures over Sets and Maps, since this runs for every operation.
 */
class Gather<T> implements Gathering<T> {
  readonly quorum: Promise<Gathered<T>>;
  readonly all: Promise<Gathered<T>>;
  readonly #nodes: readonly NodeInfo[];
  readonly #state: Uint8Array;
  readonly #ok = new Map<string, T>();
  readonly #failures: ReplicaFailure[] = [];
  readonly #options: GatherOptions;
  readonly #timer: TimerHandle;
  /** Nodes whose answer still counts. */
  #open: number;
  /** Calls not settled yet (`all` waits for every one, even after the deadline). */
  #running: number;
  #settled = false;
  /** Removes this call's abort callback (one listener per signal, however many calls share it). */
  readonly #offAbort: () => void;
  #resolve!: (g: Gathered<T>) => void;
  #reject!: (e: unknown) => void;
  #resolveAll!: (g: Gathered<T>) => void;
  readonly #onAbort = (): void => {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(new AbortError(undefined, { cause: this.#options.signal?.reason }));
  };

  constructor(nodes: readonly NodeInfo[], options: GatherOptions) {
    this.#nodes = nodes;
    this.#options = options;
    this.#state = new Uint8Array(nodes.length);
    this.#open = nodes.length;
    this.#running = nodes.length;
    this.quorum = new Promise<Gathered<T>>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The caller may ignore `quorum` after an early failure path; never leave it unhandled.
    this.quorum.catch(noop);
    this.all = new Promise<Gathered<T>>((resolve) => {
      this.#resolveAll = resolve;
    });
    this.#timer = options.clock.setTimeout(() => this.#expire(), Math.max(0, options.deadline - options.clock.now()));
    this.#offAbort = options.signal ? onAbort(options.signal, this.#onAbort) : noop;
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
    if (this.#options.signal?.aborted) this.#onAbort();
    this.#finish();
    if (this.#running === 0) this.#done();
  }

  #answered(i: number, id: string, value: T): void {
    if (this.#state[i] === PENDING) {
      this.#state[i] = SETTLED;
      this.#open--;
      this.#ok.set(id, value);
      this.#finish();
    }
    if (--this.#running === 0) this.#done();
  }

  #failed(i: number, id: string, err: unknown): void {
    if (this.#state[i] === PENDING) {
      this.#state[i] = SETTLED;
      this.#open--;
      this.#failures.push({ node: id, code: toKvError(err).code });
      this.#finish();
    }
    if (--this.#running === 0) this.#done();
  }

  /** Every call settled: release the timer and listener. */
  #done(): void {
    this.#options.clock.clearTimeout(this.#timer);
    this.#offAbort();
    this.#resolveAll({ ok: this.#ok, failures: this.#failures });
  }

  #expire(): void {
    for (let i = 0; i < this.#state.length; i++) {
      if (this.#state[i] !== PENDING) continue;
      this.#state[i] = SETTLED;
      this.#failures.push({ node: this.#nodes[i]!.id, code: ErrorCodes.TIMEOUT });
    }
    // The requests themselves carry the same deadline and end on their own.
    this.#open = 0;
    this.#finish();
  }

  #finish(): void {
    if (this.#settled) return;
    const { required, operation } = this.#options;
    const acks = (this.#options.counted ?? 0) + this.#ok.size;
    if (acks >= required) {
      this.#settled = true;
      this.#resolve({ ok: new Map(this.#ok), failures: [...this.#failures] });
    } else if (acks + this.#open < required) {
      this.#settled = true;
      this.#reject(new QuorumNotMetError(operation, required, acks, [...this.#failures]));
    }
  }
}
