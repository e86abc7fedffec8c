/**
 * The token ranges one node replicates, each with its replicas: what an
 * anti-entropy round walks (pure).
 *
 * @module
 */
import type { NodeInfo, Ring } from '../ring/index.js';

/** A token range `(start, end]` and the nodes that replicate every token in it. */
export interface ReplicatedRange {
  /** Exclusive lower bound (`start === end`: the whole ring). */
  readonly start: number;
  /** Inclusive upper bound. */
  readonly end: number;
  /** The range's replicas (its preference list, this node included), in preference order of its last vnode range. */
  readonly replicas: readonly NodeInfo[];
}

function sameIds(a: readonly NodeInfo[], b: readonly NodeInfo[]): boolean {
  if (a.length !== b.length) return false;
  for (const x of a) if (!b.some((y) => y.id === x.id)) return false;
  return true;
}

/**
 * The ranges `self` replicates at replication factor `n` in `ring`, in token
 * order. Adjacent vnode ranges with the same replica set (as a set) are
 * merged, across the wrap too, so a ring where every node holds everything
 * (N >= nodes) is one range, the whole ring: one tree and one exchange per
 * peer instead of one per vnode. Empty when `self` is not on the ring.
 *
 * @throws RangeError if `n` is not a positive integer.
 *
 * @example
 * ```ts
 * for (const r of replicatedRanges(ring, 'a', 3)) {
 *   const peers = r.replicas.filter((p) => p.id !== 'a');
 * }
 * ```
 */
export function replicatedRanges(ring: Ring, self: string, n: number): ReplicatedRange[] {
  if (!(Number.isSafeInteger(n) && n >= 1)) throw new RangeError(`Expected \`n\` to be a positive integer, got ${String(n)}`);
  const out: { start: number; end: number; replicas: readonly NodeInfo[] }[] = [];
  const ranges = ring.ranges();
  let adjacent = false;
  for (const r of ranges) {
    const replicas = ring.preferenceListForToken(r.end, n);
    if (!replicas.some((p) => p.id === self)) {
      adjacent = false;
      continue;
    }
    const last = out[out.length - 1];
    if (adjacent && last && sameIds(last.replicas, replicas)) {
      last.end = r.end;
      last.replicas = replicas;
    } else {
      out.push({ start: r.start, end: r.end, replicas });
    }
    adjacent = true;
  }
  // The first range wraps through 0: join it with the last when they touch and agree.
  if (out.length > 1) {
    const first = out[0]!;
    const last = out[out.length - 1]!;
    if (last.end === first.start && sameIds(first.replicas, last.replicas)) {
      first.start = last.start;
      out.pop();
    }
  }
  return out.map((r) => Object.freeze({ start: r.start, end: r.end, replicas: r.replicas }));
}
