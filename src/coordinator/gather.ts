import {
  AbortError,
  ErrorCodes,
  QuorumNotMetError,
  toKvError,
  type ReplicaFailure,
} from '../errors/index.js';
import type { Clock } from '../internal/clock.js';

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
  const ok = new Map<string, T>();
  const failures: ReplicaFailure[] = [];
  const counted = options.counted ?? 0;
  let settled = false;
  let resolveQuorum!: (g: Gathered<T>) => void;
  let rejectQuorum!: (e: unknown) => void;
  const quorum = new Promise<Gathered<T>>((res, rej) => {
    resolveQuorum = res;
    rejectQuorum = rej;
  });
  // The caller may ignore `quorum` after an early failure path; never leave it unhandled.
  quorum.catch(() => {});

  const snapshot = (): Gathered<T> => ({ ok: new Map(ok), failures: [...failures] });
  const pending = new Set(nodes);
  const timer = options.clock.setTimeout(
    () => {
      for (const node of pending) failures.push({ node, code: ErrorCodes.TIMEOUT });
      // The requests themselves carry the same deadline and end on their own.
      pending.clear();
      finish();
    },
    Math.max(0, options.deadline - options.clock.now()),
  );
  const onAbort = (): void => {
    if (!settled) {
      settled = true;
      rejectQuorum(new AbortError(undefined, { cause: options.signal?.reason }));
    }
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  function finish(): void {
    if (settled) return;
    const acks = counted + ok.size;
    if (acks >= options.required) {
      settled = true;
      resolveQuorum(snapshot());
    } else if (acks + pending.size < options.required) {
      settled = true;
      rejectQuorum(new QuorumNotMetError(options.operation, options.required, acks, [...failures]));
    }
  }

  const all = Promise.all(
    nodes.map(async (node) => {
      try {
        const value = await call(node, options.signal);
        if (pending.delete(node)) ok.set(node, value);
      } catch (err) {
        if (pending.delete(node)) failures.push({ node, code: toKvError(err).code });
      }
      finish();
    }),
  ).then(() => {
    options.clock.clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    return snapshot();
  });
  if (options.signal?.aborted) onAbort();
  finish();
  return { quorum, all };
}
