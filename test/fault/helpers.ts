/** Shared pieces of the fault tests. */

/**
 * Seeds for a fault test: fixed by default (reproducible CI);
 * `QKV_FAULT_SEED=n` replays one run, `QKV_FAULT_RANDOM=k` explores k random seeds.
 */
export function faultSeeds(fixed: readonly number[]): number[] {
  if (process.env['QKV_FAULT_SEED']) return [Number(process.env['QKV_FAULT_SEED'])];
  if (process.env['QKV_FAULT_RANDOM']) {
    return Array.from({ length: Number(process.env['QKV_FAULT_RANDOM']) }, () => Math.floor(Math.random() * 2 ** 31));
  }
  return [...fixed];
}

/** Retries `fn` until it resolves or `ms` pass (then rethrows its last error). */
export async function eventually<T>(fn: () => Promise<T>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
    }
  }
}
