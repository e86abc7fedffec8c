import type { TokenRangeQuery } from './types.js';

/**
 * The whole ring, `(0, 0]` (a range whose `start === end`). Adapters get it
 * from `AbstractStorage` when `scan()` was called without a range.
 */
export const WHOLE_RING: TokenRangeQuery = Object.freeze({ start: 0, end: 0 });

/**
 * True if `token` lies in the half-open ring range `(start, end]`: wrapping
 * through 0 when `start > end`; `start === end` is the whole ring.
 *
 * @example
 * ```ts
 * tokenInRange(5, { start: 1, end: 5 });          // true
 * tokenInRange(0, { start: 0xfffffff0, end: 3 }); // true (wraps)
 * tokenInRange(1, { start: 1, end: 5 });          // false (start excluded)
 * ```
 */
export function tokenInRange(token: number, range: TokenRangeQuery): boolean {
  const { start, end } = range;
  if (start < end) return token > start && token <= end;
  if (start === end) return true;
  return token > start || token <= end;
}
