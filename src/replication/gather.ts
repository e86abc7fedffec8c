import {
  AbortError,
  ErrorCodes,
  QuorumNotMetError,
  toKvError,
  type ReplicaFailure,
} from '../errors/index.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import { onAbort } from '../internal/signals.js';

/** The outcome of asking a set of replicas. */
export interface Gathered<T> {
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

/**
 * Sends `call` to every node and resolves `quorum` as soon as `required`
 * distinct nodes answered, or rejects it with `KV_QUORUM_NOT_MET` once that
 * became impossible or the deadline passed (`KV_ABORTED` if the caller
 * aborted). `all` settles when every call has, for read repair.
 */
export function gather<T>(
  nodes: readonly string[],
  call: (node: string, signal: AbortSignal | undefined) => Promise<T>,
  options: GatherOptions,
): { quorum: Promise<Gathered<T>>; all: Promise<Gathered<T>> } {
  const g = new Gather<T>(nodes, options);
  const all = Promise.all(nodes.map((node) => g.ask(node, call))).then(() => g.done());
  g.begin();
  return { quorum: g.quorum, all };
}

const noop = (): void => {};

/** The state of one quorum call (a class, not closures: this runs for every operation). */
class Gather<T> {
  readonly quorum: Promise<Gathered<T>>;
  readonly #ok = new Map<string, T>();
  readonly #failures: ReplicaFailure[] = [];
  readonly #pending: Set<string>;
  readonly #options: GatherOptions;
  readonly #timer: TimerHandle;
  #settled = false;
  /** Removes this call's abort callback (one listener per signal, however many calls share it). */
  readonly #offAbort: () => void;
  #resolve!: (g: Gathered<T>) => void;
  #reject!: (e: unknown) => void;
  readonly #onAbort = (): void => {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(new AbortError(undefined, { cause: this.#options.signal?.reason }));
  };

  constructor(nodes: readonly string[], options: GatherOptions) {
    this.#options = options;
    this.#pending = new Set(nodes);
    this.quorum = new Promise<Gathered<T>>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The caller may ignore `quorum` after an early failure path; never leave it unhandled.
    this.quorum.catch(() => {});
    this.#timer = options.clock.setTimeout(() => this.#expire(), Math.max(0, options.deadline - options.clock.now()));
    this.#offAbort = options.signal ? onAbort(options.signal, this.#onAbort) : noop;
  }

  async ask(node: string, call: (node: string, signal: AbortSignal | undefined) => Promise<T>): Promise<void> {
    try {
      const value = await call(node, this.#options.signal);
      if (this.#pending.delete(node)) this.#ok.set(node, value);
    } catch (err) {
      if (this.#pending.delete(node)) this.#failures.push({ node, code: toKvError(err).code });
    }
    this.#finish();
  }

  /** Settles at once if nothing needs asking (or the caller already aborted). */
  begin(): void {
    if (this.#options.signal?.aborted) this.#onAbort();
    this.#finish();
  }

  /** Every call settled: release the timer and listener. */
  done(): Gathered<T> {
    this.#options.clock.clearTimeout(this.#timer);
    this.#offAbort();
    return this.#snapshot();
  }

  #expire(): void {
    for (const node of this.#pending) this.#failures.push({ node, code: ErrorCodes.TIMEOUT });
    // The requests themselves carry the same deadline and end on their own.
    this.#pending.clear();
    this.#finish();
  }

  #finish(): void {
    if (this.#settled) return;
    const { required, operation } = this.#options;
    const acks = (this.#options.counted ?? 0) + this.#ok.size;
    if (acks >= required) {
      this.#settled = true;
      this.#resolve(this.#snapshot());
    } else if (acks + this.#pending.size < required) {
      this.#settled = true;
      this.#reject(new QuorumNotMetError(operation, required, acks, [...this.#failures]));
    }
  }

  #snapshot(): Gathered<T> {
    return { ok: new Map(this.#ok), failures: [...this.#failures] };
  }
}
