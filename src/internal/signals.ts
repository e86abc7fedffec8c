import { AbortError } from '../errors/index.js';

/** Throws `KV_ABORTED` if the signal has already fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}

/** One registration made by {@link onAbort}; `active` until it ran or was removed. */
interface Subscription {
  readonly callback: () => void;
  active: boolean;
}

/** The callbacks waiting on each signal, with the one listener that runs them. */
interface SignalEntry {
  readonly subscriptions: Set<Subscription>;
  readonly listener: () => void;
}

const entries = new WeakMap<AbortSignal, SignalEntry>();

const noop = (): void => {};

function entryFor(signal: AbortSignal): SignalEntry {
  let entry = entries.get(signal);
  if (entry) return entry;
  const subscriptions = new Set<Subscription>();
  const listener = (): void => {
    // The signal fires once: forget it, then run every callback still registered, in order.
    entries.delete(signal);
    for (const s of subscriptions) {
      if (!s.active) continue; // removed by an earlier callback
      s.active = false;
      try {
        s.callback();
      } catch (err) {
        // As EventTarget does: one failing callback does not stop the others,
        // and its error still surfaces (as an uncaught exception).
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    subscriptions.clear();
  };
  entry = { subscriptions, listener };
  entries.set(signal, entry);
  signal.addEventListener('abort', listener, { once: true });
  return entry;
}

/**
 * Runs `callback` once when `signal` aborts, and returns a function that
 * cancels it (idempotent; call it in `finally` once the operation settles).
 *
 * However many callbacks wait on one signal, the signal carries a single
 * `abort` listener, added with the first callback and removed with the last,
 * so a signal shared by many concurrent calls never triggers
 * `MaxListenersExceededWarning`, and the caller's signal is left as it was
 * (no `setMaxListeners` on it). Callbacks run in the order they were
 * registered; a callback removed by an earlier one does not run; one that
 * throws does not stop the others (its error is rethrown asynchronously, as
 * `EventTarget` does).
 *
 * Like `addEventListener`, it does nothing for a signal that has already
 * aborted (the returned function is then a no-op): check `signal.aborted`
 * first.
 *
 * @example
 * ```ts
 * if (signal.aborted) throw new AbortError(undefined, { cause: signal.reason });
 * const off = onAbort(signal, () => reject(new AbortError(undefined, { cause: signal.reason })));
 * try { return await work(); } finally { off(); }
 * ```
 */
export function onAbort(signal: AbortSignal, callback: () => void): () => void {
  if (typeof signal !== 'object' || signal === null || typeof signal.addEventListener !== 'function') {
    throw new TypeError(`Expected \`signal\` to be an AbortSignal, got ${signal === null ? 'null' : typeof signal}`);
  }
  if (typeof callback !== 'function') {
    throw new TypeError(`Expected \`callback\` to be a function, got ${typeof callback}`);
  }
  if (signal.aborted) return noop;
  const entry = entryFor(signal);
  const subscription: Subscription = { callback, active: true };
  entry.subscriptions.add(subscription);
  return () => {
    if (!subscription.active) return;
    subscription.active = false;
    entry.subscriptions.delete(subscription);
    if (entry.subscriptions.size === 0 && entries.get(signal) === entry) {
      entries.delete(signal);
      signal.removeEventListener('abort', entry.listener);
    }
  };
}
