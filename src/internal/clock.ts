/** An opaque timer handle returned by {@link Clock.setTimeout}. */
export interface TimerHandle {
  readonly __timer: unique symbol;
}

/**
 * The source of time for everything that waits: gossip rounds, failure
 * detection, request deadlines, LWW timestamps. Inject a fake one in tests.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clock (Date.now and the global timers). Timers keep the process
 * alive on purpose: a pending request's deadline must fire. `stop()` clears them.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return t as unknown as TimerHandle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as unknown as ReturnType<typeof setTimeout>);
  },
};
