import { AbortError } from '../errors/index.js';

/** Throws `KV_ABORTED` if the signal has already fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}

/** One registration made by {@link onAbort}; `active` until it ran or was removed. */
interface Subscription {
  readonly callback: () => void;
  active: boolean;
  prev: Subscription | undefined;
  next: Subscription | undefined;
}

/**
 * The callbacks waiting on each signal, in registration order, with the one
 * listener that runs them. A doubly linked list rather than a `Set`: a
 * signal shared by many calls sees a registration and a removal per call,
 * and a `Set` under that churn leaves a chain of replaced tables that keeps
 * removed callbacks (and what they hold) alive in minor GCs (see IdTable).
 * A removed subscription's links are cleared for the same reason.
 */
interface SignalEntry {
  head: Subscription | undefined;
  tail: Subscription | undefined;
  readonly listener: () => void;
}

const entries = new WeakMap<AbortSignal, SignalEntry>();

const noop = (): void => {};

function entryFor(signal: AbortSignal): SignalEntry {
  const known = entries.get(signal);
  if (known) return known;
  const listener = (): void => {
    // The signal fires once: forget it, then run every callback still registered, in order.
    entries.delete(signal);
    const subscriptions: Subscription[] = [];
    for (let s = created.head; s !== undefined; s = s.next) subscriptions.push(s);
    created.head = created.tail = undefined;
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
  };
  const created: SignalEntry = { head: undefined, tail: undefined, listener };
  entries.set(signal, created);
  signal.addEventListener('abort', listener, { once: true });
  return created;
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
  const subscription: Subscription = { callback, active: true, prev: entry.tail, next: undefined };
  if (entry.tail === undefined) entry.head = subscription;
  else entry.tail.next = subscription;
  entry.tail = subscription;
  return () => {
    if (!subscription.active) return;
    subscription.active = false;
    const { prev, next } = subscription;
    if (prev === undefined) {
      if (entry.head === subscription) entry.head = next;
    } else prev.next = next;
    if (next === undefined) {
      if (entry.tail === subscription) entry.tail = prev;
    } else next.prev = prev;
    subscription.prev = subscription.next = undefined;
    if (entry.head === undefined && entries.get(signal) === entry) {
      entries.delete(signal);
      signal.removeEventListener('abort', entry.listener);
    }
  };
}
