import { AbortError, TimeoutError } from '../errors/index.js';
import type { Clock } from './clock.js';

/** Throws `KV_ABORTED` if the signal has already fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}

/**
 * Runs `fn` with a signal that fires when `signal` fires or `timeout` ms pass;
 * the returned promise rejects with `KV_ABORTED` / `KV_TIMEOUT` then.
 * Listeners and timers are always removed.
 */
export async function withDeadline<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  options: { signal?: AbortSignal | undefined; timeout?: number | undefined; clock: Clock; what?: string },
): Promise<T> {
  throwIfAborted(options.signal);
  const controller = new AbortController();
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  let onAbort: (() => void) | undefined;
  const guard = new Promise<never>((_, reject) => {
    if (options.timeout !== undefined && Number.isFinite(options.timeout)) {
      timer = options.clock.setTimeout(() => {
        const err = new TimeoutError(`${options.what ?? 'operation'} timed out after ${options.timeout} ms`);
        controller.abort(err);
        reject(err);
      }, Math.max(0, options.timeout));
    }
    if (options.signal) {
      const outer = options.signal;
      onAbort = () => {
        const err = new AbortError(undefined, { cause: outer.reason });
        controller.abort(err);
        reject(err);
      };
      outer.addEventListener('abort', onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([fn(controller.signal), guard]);
  } finally {
    if (timer !== undefined) options.clock.clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener('abort', onAbort);
  }
}
