/**
 * One Merkle exchange between two replicas of a range: the messages, in
 * order, and {@link exchangeLocally}, which runs them between two sides in
 * one process (pure: the sides' `entries` are the only input). It is the
 * reference the network session follows, and what the property test and
 * `bench/merkle.ts` run.
 *
 * The exchange descends one level a message, each side answering the
 * other's hashes with its own for the children of the nodes that differ:
 *
 * ```
 * A -> B  ae.start   range, shape, root hash
 * B -> A  ae.hashes  level 1: bitmap of differing nodes at level 0, B's hashes of their children
 * A -> B  ae.hashes  level 2: bitmap over B's list, A's hashes of the children of the differing ones
 * ...                (until the leaves; depth 3 → 4 hash messages)
 * X -> Y  ae.entries bitmap of differing leaves, X's entry hashes of each (counts + sorted hashes)
 * Y -> X  ae.request bitmap over X's entries that Y lacks; Y also sends its records X lacks
 * X -> Y             the requested records
 * ```
 *
 * Either side ends it with `ae.done` when the hashes it got equal its own.
 * Depth 3: 7 one-way messages (3.5 round trips) and 8 bytes a compared node.
 *
 * @module
 */
import {
  HASH_BYTES,
  childNodes,
  differingChildren,
  fromBitmap,
  keysToExchange,
  leafEntries,
  levelHashes,
  toBitmap,
  type LeafEntries,
} from './diff.js';
import type { MerkleEntry, MerkleTree } from './merkle-tree.js';

/** Opens an exchange: the range, the tree shape and the root hash. */
export interface AeStartMessage {
  readonly type: 'ae.start';
  readonly start: number;
  readonly end: number;
  readonly fanout: number;
  readonly depth: number;
  /** The sender's root hash, 8 bytes. */
  readonly root: Uint8Array;
}

/** The sender's hashes for the children of the nodes that differed in the message it answers. */
export interface AeHashesMessage {
  readonly type: 'ae.hashes';
  /** Level of the hashes (1 .. depth). */
  readonly level: number;
  /** Bitmap over the node list of the answered message: the nodes that differ. */
  readonly differing: Uint8Array;
  /** 8 bytes a child, in node order. */
  readonly hashes: Uint8Array;
}

/** The sender's entries of the leaves that differ. */
export interface AeEntriesMessage {
  readonly type: 'ae.entries';
  /** Bitmap over the leaf list of the answered message: the leaves that differ. */
  readonly differing: Uint8Array;
  /** Entries in each differing leaf, in leaf order. */
  readonly counts: readonly number[];
  /** Every differing leaf's sorted entry hashes, one leaf after another. */
  readonly hashes: Uint8Array;
}

/** The entries (of an `ae.entries` message) whose records the sender asks for. */
export interface AeRequestMessage {
  readonly type: 'ae.request';
  /** Bitmap over all the entries of the answered `ae.entries` message. */
  readonly request: Uint8Array;
}

/** The hashes received equal the sender's own: nothing differs below. */
export interface AeDoneMessage {
  readonly type: 'ae.done';
}

/** A message of the exchange (records travel in the data path's own messages). */
export type ExchangeMessage = AeStartMessage | AeHashesMessage | AeEntriesMessage | AeRequestMessage | AeDoneMessage;

/** One side of an exchange. */
export interface ExchangeSide {
  /** The side's tree for the range. */
  readonly tree: MerkleTree;
  /**
   * The side's records in leaf `segment` (a scan of
   * `tree.segmentRange(segment)`), with the digests the tree was given.
   */
  entries(segment: number): Iterable<MerkleEntry>;
}

/** What {@link exchangeLocally} found. */
export interface ExchangeOutcome {
  /** The messages in order: even positions from the initiator, odd from the responder. */
  readonly messages: readonly ExchangeMessage[];
  /** Keys whose records the initiator sends to the responder. */
  readonly initiatorSends: readonly Uint8Array[];
  /** Keys whose records the responder sends to the initiator. */
  readonly responderSends: readonly Uint8Array[];
  /** The leaf segments whose hashes differed, ascending. */
  readonly differingSegments: readonly number[];
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Runs an exchange between `initiator` and `responder` (two replicas'
 * trees of the same range and shape) and returns its messages and the keys
 * each side sends. Trees are read, never changed.
 *
 * @throws RangeError if the trees differ in range or shape, or as the steps
 * of `./diff.ts` on entries that do not match their segment.
 *
 * @example
 * ```ts
 * const { initiatorSends, responderSends } = exchangeLocally(
 *   { tree: treeA, entries: (s) => scanA(treeA.segmentRange(s)) },
 *   { tree: treeB, entries: (s) => scanB(treeB.segmentRange(s)) },
 * );
 * ```
 */
export function exchangeLocally(initiator: ExchangeSide, responder: ExchangeSide): ExchangeOutcome {
  const a = initiator.tree;
  const b = responder.tree;
  if (!a.sameShape(b)) {
    throw new RangeError(
      `Expected trees of the same range and shape, got (${a.start}, ${a.end}] ${a.fanout}^${a.depth} and (${b.start}, ${b.end}] ${b.fanout}^${b.depth}`,
    );
  }
  const sides = [initiator, responder] as const;
  const sends: [Uint8Array[], Uint8Array[]] = [[], []];
  const messages: ExchangeMessage[] = [];
  const outcome = (differingSegments: number[]): ExchangeOutcome => ({
    messages,
    initiatorSends: sends[0],
    responderSends: sends[1],
    differingSegments,
  });

  messages.push({ type: 'ae.start', start: a.start, end: a.end, fanout: a.fanout, depth: a.depth, root: levelHashes(a, 0, [0]) });
  // The node list both sides hold for the last hashes sent, and those hashes.
  let level = 0;
  let nodes = [0];
  let received = (messages[0] as AeStartMessage).root;
  let receiver: 0 | 1 = 1;
  for (;;) {
    const me = sides[receiver].tree;
    const differing = differingChildren(levelHashes(me, level, nodes), received);
    if (differing.length === 0) {
      messages.push({ type: 'ae.done' });
      return outcome([]);
    }
    const bitmap = toBitmap(differing, nodes.length);
    if (level === me.depth) return leafPhase(receiver, nodes, differing, bitmap);
    const children = childNodes(me, level, nodes, differing);
    const hashes = levelHashes(me, level + 1, children);
    messages.push({ type: 'ae.hashes', level: level + 1, differing: bitmap, hashes });
    // The other side learns the new node list from the bitmap alone.
    const other = sides[1 - receiver]!.tree;
    nodes = childNodes(other, level, nodes, fromBitmap(bitmap, nodes.length));
    received = hashes;
    level++;
    receiver = receiver === 0 ? 1 : 0;
  }

  function leafPhase(x: 0 | 1, leaves: number[], differing: number[], bitmap: Uint8Array): ExchangeOutcome {
    const sideX = sides[x];
    const segments = differing.map((p) => leaves[p]!);
    const mineX: LeafEntries[] = segments.map((s) => leafEntries(sideX.tree, s, sideX.entries(s)));
    const total = mineX.reduce((n, l) => n + l.hashes.length, 0);
    messages.push({
      type: 'ae.entries',
      differing: bitmap,
      counts: mineX.map((l) => l.hashes.length / HASH_BYTES),
      hashes: concat(
        mineX.map((l) => l.hashes),
        total,
      ),
    });

    const y = x === 0 ? 1 : 0;
    const sideY = sides[y];
    const got = messages[messages.length - 1] as AeEntriesMessage;
    const ySegments = fromBitmap(got.differing, leaves.length).map((p) => leaves[p]!);
    const requested: number[] = [];
    let first = 0;
    for (let k = 0; k < ySegments.length; k++) {
      const segment = ySegments[k]!;
      const count = got.counts[k]!;
      const theirs = got.hashes.subarray(first * HASH_BYTES, (first + count) * HASH_BYTES);
      const { send, request } = keysToExchange(leafEntries(sideY.tree, segment, sideY.entries(segment)), theirs);
      for (const key of send) sends[y].push(key);
      for (const r of request) requested.push(first + r);
      first += count;
    }
    const entryCount = total / HASH_BYTES;
    messages.push({ type: 'ae.request', request: toBitmap(requested, entryCount) });

    const keysX = mineX.flatMap((l) => l.keys);
    for (const p of fromBitmap((messages[messages.length - 1] as AeRequestMessage).request, entryCount)) {
      sends[x].push(keysX[p]!);
    }
    return outcome(segments);
  }
}
