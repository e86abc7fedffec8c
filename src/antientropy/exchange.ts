/**
 * One Merkle exchange between two replicas of a range: the messages,
 * {@link MerkleExchange} (one side's state machine: the network session
 * carries its messages and scans the segments it asks for) and
 * {@link exchangeLocally}, which runs two of them in one process (what the
 * property test and `bench/merkle.ts` run). Pure: no I/O, no timers.
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

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an instance of ${(value as object).constructor?.name ?? 'Object'}`;
  return typeof value === 'number' ? String(value) : typeof value;
}

function bytesField(message: object, field: string): Uint8Array {
  const v = (message as Record<string, unknown>)[field];
  if (!(v instanceof Uint8Array)) throw new TypeError(`Expected \`${field}\` to be a Uint8Array, got ${describe(v)}`);
  return v;
}

/** What the caller does after a step of {@link MerkleExchange}. */
export interface ExchangeStep {
  /** A message to send to the peer. */
  readonly message?: ExchangeMessage;
  /**
   * Leaf segments whose entries this side needs next: scan
   * `tree.segmentRange(s)` for each, and pass `leafEntries(tree, s, scan)`
   * to {@link MerkleExchange.provideEntries}, in this order.
   */
  readonly needEntries?: readonly number[];
  /** Keys whose records this side sends to the peer (on the last step). */
  readonly send?: readonly Uint8Array[];
  /** True once this side has nothing more to send or receive. */
  readonly done: boolean;
}

type Phase = 'idle' | 'awaiting-hashes' | 'need-own-leaves' | 'awaiting-request' | 'need-leaves-for-request' | 'done';

/**
 * One side of a Merkle exchange as a state machine (pure: the caller moves
 * messages and reads storage). The initiator calls {@link MerkleExchange.start};
 * each side passes every message from its peer to
 * {@link MerkleExchange.receive}, and when a step asks for entries, scans
 * those segments and calls {@link MerkleExchange.provideEntries}. The
 * sequence is in this module's description. Peer messages are checked
 * (types, sizes, bitmaps, the expected step): a bad one throws, and the
 * session should drop the exchange.
 *
 * The tree must not change during the exchange (or the hashes sent stop
 * matching the node lists): run it on `tree.clone()`, or accept that a concurrent
 * write makes it find a little more or less, which the next exchange fixes.
 *
 * @example
 * ```ts
 * const a = new MerkleExchange(treeA);
 * const b = new MerkleExchange(treeB);
 * let step = b.receive(a.start());
 * // ... carry step.message to the other side until both are done
 * ```
 */
export class MerkleExchange {
  /** The tree this side compares. */
  readonly tree: MerkleTree;
  #phase: Phase = 'idle';
  /** Level and node list of the last hashes sent or received (both sides know it). */
  #level = 0;
  #nodes: number[] = [0];
  #bitmap: Uint8Array = new Uint8Array(0);
  #segments: number[] = [];
  /** The peer's `ae.entries`, while this side gathers its own entries of the same leaves. */
  #theirs: AeEntriesMessage | undefined;
  /** This side's entries of the differing leaves, once sent. */
  #mine: LeafEntries[] = [];
  #entryCount = 0;

  constructor(tree: MerkleTree) {
    this.tree = tree;
  }

  /** The differing leaf segments, ascending, once the comparison reached the leaves. */
  get differingSegments(): readonly number[] {
    return this.#segments;
  }

  /** True once this side has finished. */
  get done(): boolean {
    return this.#phase === 'done';
  }

  /**
   * Opens the exchange (initiator only): the range, shape and root hash.
   *
   * @throws RangeError if this side has already started or received.
   */
  start(): AeStartMessage {
    this.#expect('idle', 'start()');
    const t = this.tree;
    this.#phase = 'awaiting-hashes';
    return { type: 'ae.start', start: t.start, end: t.end, fanout: t.fanout, depth: t.depth, root: levelHashes(t, 0, [0]) };
  }

  /**
   * Handles a message from the peer and returns what to do next.
   *
   * @throws TypeError / RangeError on a malformed message, one that does not
   * fit the current step, or an `ae.start` for another range or shape.
   */
  receive(message: ExchangeMessage): ExchangeStep {
    if (typeof message !== 'object' || message === null) {
      throw new TypeError(`Expected \`message\` to be an object, got ${describe(message)}`);
    }
    switch (message.type) {
      case 'ae.start':
        return this.#onStart(message);
      case 'ae.hashes':
        return this.#onHashes(message);
      case 'ae.entries':
        return this.#onEntries(message);
      case 'ae.request':
        return this.#onRequest(message);
      case 'ae.done':
        if (this.#phase !== 'awaiting-hashes' && this.#phase !== 'awaiting-request') {
          throw new RangeError(`Unexpected ae.done in phase ${this.#phase}`);
        }
        this.#phase = 'done';
        return { done: true };
      default:
      {
        const type = (message as { type?: unknown }).type;
        throw new RangeError(`Unknown exchange message type ${typeof type === 'string' ? JSON.stringify(type) : describe(type)}`);
      }
    }
  }

  /**
   * This side's entries of the segments the last step listed in
   * `needEntries`, in that order (from `leafEntries`).
   *
   * @throws RangeError if no entries were asked for, or the leaves given are
   * not the segments asked for.
   */
  provideEntries(leaves: readonly LeafEntries[]): ExchangeStep {
    if (this.#phase !== 'need-own-leaves' && this.#phase !== 'need-leaves-for-request') {
      throw new RangeError(`Unexpected provideEntries() in phase ${this.#phase}`);
    }
    const segments = this.#segments;
    if (!Array.isArray(leaves) || leaves.length !== segments.length || leaves.some((l, i) => l?.segment !== segments[i])) {
      throw new RangeError(`Expected the entries of segments [${segments.join(', ')}] in that order`);
    }
    if (this.#phase === 'need-own-leaves') {
      // This side reached the leaves first: it sends its entries.
      this.#mine = [...leaves];
      const total = leaves.reduce((n, l) => n + l.hashes.length, 0);
      this.#entryCount = total / HASH_BYTES;
      this.#phase = 'awaiting-request';
      const message: AeEntriesMessage = {
        type: 'ae.entries',
        differing: this.#bitmap,
        counts: leaves.map((l) => l.hashes.length / HASH_BYTES),
        hashes: concat(
          leaves.map((l) => l.hashes),
          total,
        ),
      };
      return { message, done: false };
    }
    // The peer's entries arrived: compare leaf by leaf, ask for what is missing here.
    const theirs = this.#theirs!;
    const send: Uint8Array[] = [];
    const requested: number[] = [];
    let first = 0;
    for (let k = 0; k < leaves.length; k++) {
      const count = theirs.counts[k]!;
      const ex = keysToExchange(leaves[k]!, theirs.hashes.subarray(first * HASH_BYTES, (first + count) * HASH_BYTES));
      for (const key of ex.send) send.push(key);
      for (const r of ex.request) requested.push(first + r);
      first += count;
    }
    this.#theirs = undefined;
    this.#phase = 'done';
    return { message: { type: 'ae.request', request: toBitmap(requested, first) }, send, done: true };
  }

  #expect(phase: Phase, what: string): void {
    if (this.#phase !== phase) throw new RangeError(`Unexpected ${what} in phase ${this.#phase}`);
  }

  #onStart(m: AeStartMessage): ExchangeStep {
    this.#expect('idle', 'ae.start');
    const t = this.tree;
    if (m.start !== t.start || m.end !== t.end || m.fanout !== t.fanout || m.depth !== t.depth) {
      throw new RangeError(
        `Expected an exchange of (${t.start}, ${t.end}] ${t.fanout}^${t.depth}, got (${describe(m.start)}, ${describe(m.end)}] ${describe(m.fanout)}^${describe(m.depth)}`,
      );
    }
    const root = bytesField(m, 'root');
    if (root.length !== HASH_BYTES) throw new RangeError(`Expected \`root\` to be ${HASH_BYTES} bytes, got ${root.length}`);
    return this.#compare(root);
  }

  #onHashes(m: AeHashesMessage): ExchangeStep {
    this.#expect('awaiting-hashes', 'ae.hashes');
    if (m.level !== this.#level + 1) throw new RangeError(`Expected hashes of level ${this.#level + 1}, got level ${describe(m.level)}`);
    const positions = fromBitmap(bytesField(m, 'differing'), this.#nodes.length);
    if (positions.length === 0) throw new RangeError('Expected ae.hashes to mark at least one differing node');
    const children = childNodes(this.tree, this.#level, this.#nodes, positions);
    const hashes = bytesField(m, 'hashes');
    if (hashes.length !== children.length * HASH_BYTES) {
      throw new RangeError(`Expected ${children.length} hashes (${children.length * HASH_BYTES} bytes), got ${hashes.length} bytes`);
    }
    this.#level++;
    this.#nodes = children;
    return this.#compare(hashes);
  }

  /** Compares the peer's hashes of `#nodes` with this side's and answers. */
  #compare(theirs: Uint8Array): ExchangeStep {
    const t = this.tree;
    const differing = differingChildren(levelHashes(t, this.#level, this.#nodes), theirs);
    if (differing.length === 0) {
      this.#phase = 'done';
      return { message: { type: 'ae.done' }, done: true };
    }
    const bitmap = toBitmap(differing, this.#nodes.length);
    if (this.#level === t.depth) {
      this.#bitmap = bitmap;
      this.#segments = differing.map((p) => this.#nodes[p]!);
      this.#phase = 'need-own-leaves';
      return { needEntries: this.#segments, done: false };
    }
    const children = childNodes(t, this.#level, this.#nodes, differing);
    this.#level++;
    this.#nodes = children;
    this.#phase = 'awaiting-hashes';
    return { message: { type: 'ae.hashes', level: this.#level, differing: bitmap, hashes: levelHashes(t, this.#level, children) }, done: false };
  }

  #onEntries(m: AeEntriesMessage): ExchangeStep {
    this.#expect('awaiting-hashes', 'ae.entries');
    if (this.#level !== this.tree.depth) throw new RangeError(`Unexpected ae.entries at level ${this.#level}, above the leaves`);
    const positions = fromBitmap(bytesField(m, 'differing'), this.#nodes.length);
    if (positions.length === 0) throw new RangeError('Expected ae.entries to mark at least one differing leaf');
    const hashes = bytesField(m, 'hashes');
    const counts = m.counts;
    if (!Array.isArray(counts) || counts.length !== positions.length) {
      throw new RangeError(`Expected \`counts\` to hold ${positions.length} counts, got ${describe(counts)}`);
    }
    let total = 0;
    for (const c of counts) {
      if (!(Number.isSafeInteger(c) && c >= 0)) throw new RangeError(`Expected each count to be an integer >= 0, got ${describe(c)}`);
      total += c;
    }
    if (hashes.length !== total * HASH_BYTES) {
      throw new RangeError(`Expected ${total} entry hashes (${total * HASH_BYTES} bytes), got ${hashes.length} bytes`);
    }
    this.#theirs = m;
    this.#segments = positions.map((p) => this.#nodes[p]!);
    this.#phase = 'need-leaves-for-request';
    return { needEntries: this.#segments, done: false };
  }

  #onRequest(m: AeRequestMessage): ExchangeStep {
    this.#expect('awaiting-request', 'ae.request');
    const positions = fromBitmap(bytesField(m, 'request'), this.#entryCount);
    const keys = this.#mine.flatMap((l) => l.keys);
    this.#mine = [];
    this.#phase = 'done';
    return { send: positions.map((p) => keys[p]!), done: true };
  }
}

/**
 * Runs an exchange between `initiator` and `responder` (two replicas'
 * trees of the same range and shape) with two {@link MerkleExchange}s and
 * returns its messages and the keys each side sends. Trees are read, never
 * changed.
 *
 * @throws RangeError if the trees differ in range or shape, or as
 * `leafEntries` on entries that do not match their segment.
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
  const machines = [new MerkleExchange(a), new MerkleExchange(b)] as const;
  const sends: [Uint8Array[], Uint8Array[]] = [[], []];
  const messages: ExchangeMessage[] = [];

  let next: ExchangeMessage | undefined = machines[0].start();
  let to: 0 | 1 = 1;
  while (next !== undefined) {
    messages.push(next);
    let step = machines[to].receive(next);
    if (step.needEntries) {
      const side = sides[to];
      step = machines[to].provideEntries(step.needEntries.map((s) => leafEntries(side.tree, s, side.entries(s))));
    }
    if (step.send) sends[to].push(...step.send);
    next = step.message;
    to = to === 0 ? 1 : 0;
  }
  const segments = machines[0].differingSegments.length > 0 ? machines[0].differingSegments : machines[1].differingSegments;
  return { messages, initiatorSends: sends[0], responderSends: sends[1], differingSegments: [...segments] };
}
