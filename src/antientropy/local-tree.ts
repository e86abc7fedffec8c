/**
 * Trees and leaf entries from this node's storage: the reads both sides of
 * an exchange make.
 *
 * ## Rebuilt per exchange, not kept incrementally (and why)
 * `MerkleTree` can be kept current on every write (`update`, O(depth)), but
 * the sessions build a fresh tree from one storage scan of the range when
 * an exchange starts (`MerkleTree#insert` per record, no per-key state),
 * and drop it when the exchange ends:
 * - **Storage is the only truth.** Records reach storage through more
 *   paths than the replica's writes (hinted-handoff delivery, range
 *   streaming on join and leave, tombstone purges, a restart over durable
 *   storage, a node restarted on empty storage). A kept tree must see all
 *   of them or drift silently, and drift in a Merkle tree is invisible: a
 *   stale leaf can hide a real divergence for ever. A tree built from a
 *   scan cannot drift.
 * - **Nothing on the write path.** An incremental tree costs every write a
 *   record digest and a tree update under the key's lock; a rebuild costs
 *   nothing until a round runs (every 10 minutes by default).
 * - **Bounded memory.** With virtual nodes a node replicates hundreds of
 *   ranges (N × 256 per node by default): trees for all of them, kept,
 *   would cost 35 KB each (16^3). One tree at a time costs 35 KB.
 *
 * The price is a read and a digest of every record of the range per round
 * (Cassandra's validation compaction does the same): measured in
 * `bench/merkle.ts` (about 0.1 s for 100k records of 1 KB). Only the
 * differing leaves are read again, to list their entries.
 *
 * @module
 */
import { throwIfAborted } from '../internal/signals.js';
import type { TokenRangeQuery } from '../storage/index.js';
import { leafEntries, type LeafEntries } from './diff.js';
import { recordDigest } from './hash64.js';
import { MerkleTree, type MerkleEntry, type MerkleTreeOptions } from './merkle-tree.js';
import type { AntiEntropyReplica } from './types.js';

/** What {@link buildTree} read. */
export interface BuiltTree {
  readonly tree: MerkleTree;
  /** Records scanned. */
  readonly records: number;
}

/**
 * A tree of `range` over this node's records (key + digest of the encoded
 * sibling set, tombstones included), from one storage scan.
 *
 * @throws KvError `KV_ABORTED` when `signal` fires; what the storage scan throws.
 */
export async function buildTree(
  replica: AntiEntropyReplica,
  range: TokenRangeQuery,
  options: MerkleTreeOptions,
  signal?: AbortSignal,
): Promise<BuiltTree> {
  const tree = new MerkleTree(range, options);
  let records = 0;
  for await (const e of replica.scan(range, signal)) {
    tree.insert(e.key, e.token, recordDigest(e.record));
    records++;
  }
  throwIfAborted(signal);
  return { tree, records };
}

/**
 * This node's entries of each of `segments` (ascending) of `tree`, in that
 * order. Runs of adjacent segments are read with one scan each.
 *
 * @throws KvError `KV_ABORTED` when `signal` fires; what the storage scan throws.
 */
export async function scanLeaves(
  replica: AntiEntropyReplica,
  tree: MerkleTree,
  segments: readonly number[],
  signal?: AbortSignal,
): Promise<LeafEntries[]> {
  const buckets = new Map<number, MerkleEntry[]>();
  for (const s of segments) buckets.set(s, []);
  let i = 0;
  while (i < segments.length) {
    let j = i;
    while (j + 1 < segments.length && segments[j + 1] === segments[j]! + 1) j++;
    const run = runRange(tree, segments, i, j);
    i = j + 1;
    if (run === undefined) continue;
    for await (const e of replica.scan(run, signal)) {
      const bucket = buckets.get(tree.segmentOf(e.token));
      if (bucket) bucket.push({ key: e.key, token: e.token, digest: recordDigest(e.record) });
    }
  }
  throwIfAborted(signal);
  return segments.map((s) => leafEntries(tree, s, buckets.get(s)!));
}

/** The tokens of segments `segments[from..to]` (adjacent) as one range, undefined when they hold none. */
function runRange(tree: MerkleTree, segments: readonly number[], from: number, to: number): TokenRangeQuery | undefined {
  let start: number | undefined;
  let end: number | undefined;
  for (let k = from; k <= to; k++) {
    const r = tree.segmentRange(segments[k]!);
    if (r === undefined) continue;
    start ??= r.start;
    end = r.end;
  }
  return start === undefined || end === undefined ? undefined : { start, end };
}
