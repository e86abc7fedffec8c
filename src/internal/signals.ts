import { AbortError } from '../errors/index.js';

/** Throws `KV_ABORTED` if the signal has already fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}
