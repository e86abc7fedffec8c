import { setMaxListeners } from 'node:events';
import {
  AbortError,
  ErrorCodes,
  KvError,
  QuorumNotMetError,
  TimeoutError,
  toKvError,
  type ReplicaFailure,
} from '../errors/index.js';
import { sameBytes } from '../internal/bytes.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import { onAbort, throwIfAborted } from '../internal/signals.js';
import { ReplicaSet, type MemberStatus, type NodeInfo, type Ring, type ZoneConsistencyLevel } from '../ring/index.js';
import { ownBody } from '../transport/codec.js';
import { ApplyBatcher, ReadBatcher } from './apply-batcher.js';
import type { AnswerReceiver, Transport, WireMessage } from '../transport/index.js';
import {
  SiblingSet,
  VectorClock,
  decodeClock,
  decodeSiblingSet,
  encodeClock,
  encodeSiblingSet,
} from '../versioning/index.js';
import { DeadlineQueue } from './deadline-queue.js';
import { Gather, SENT, type GatherCall, type GatherPolicy, type Gathered, type Gathering, type StandInPolicy } from './gather.js';
import { HopQueue } from './hop-queue.js';
import { toKeyRef } from './key-ref.js';
import {
  MAX_WIRE_CLOCK,
  MAX_WIRE_KEY,
  MAX_WIRE_RECORD,
  failuresFromWire,
  failuresToWire,
  readBoolean,
  readBytes,
  readInt,
  readOptionalBoolean,
  readOptionalBytes,
  readOptionalNumber,
} from './messages.js';
import { corruptStoredRecord, type CoordinatedVersion, type ReplicaServer } from './replica-server.js';
import type { KeyRef, WriteRequest } from './types.js';

/** How long read repair may take after the read answered, ms. */
const READ_REPAIR_TIMEOUT = 5_000;
/** Default per-hop timeout, ms (see {@link QuorumCoordinatorOptions.hopTimeout}). */
export const DEFAULT_HOP_TIMEOUT = 250;
/** How long a node that let a hop pass unanswered is treated as unavailable, at least, ms. */
const MIN_SLOW_FOR = 1_000;
/** Longest forwarded deadline accepted, ms. */
const MAX_FORWARD_TIMEOUT = 24 * 3600 * 1000;
/**
 * Quorum calls in progress (until their last replica answered, read repair
 * and replication past W included) past which a new call waits for one to
 * finish. A call with W = 1 (or R = 1) on a replica whose storage answers
 * synchronously resolves without waiting for any I/O, so a caller's loop of
 * them never let the event loop turn: measured before this bound, 30k such
 * puts in a loop ran for 2 s with no timer firing, and 16% of the replica
 * copies they sent were lost (the transport's in-flight bound refused
 * them). Waiting here lets the replication catch up.
 */
export const MAX_CALLS_IN_PROGRESS = 512;

const EMPTY = SiblingSet.empty<Uint8Array>();
/** Decode option of read answers (see ReadAnswers.decode). */
const VIEWS = Object.freeze({ copyValues: false });

/**
 * One read: what its calls, answers and repair need (the context of its
 * gather, so that they are functions made once per coordinator, not
 * closures made per read), and the replica answers, decoded once per
 * distinct encoding: in the steady state every replica returns the same
 * bytes, so a read decodes one record, and its repair reuses the decoded
 * sets and their bytes.
 */
class ReadAnswers {
  /**
   * The distinct encodings decoded and their sets: the first in fields (in
   * the steady state the only one), the others in arrays made when a second
   * one comes (a first push onto `[]` reserves 17 slots, ~150 bytes).
   */
  #bytes0: Uint8Array | undefined;
  #set0: SiblingSet<Uint8Array> | undefined;
  #bytes: Uint8Array[] | undefined;
  #sets: SiblingSet<Uint8Array>[] | undefined;
  /** Some replica answered that it has no record. */
  #sawEmpty = false;
  /**
   * The clock's reading shared by the requests the gather makes as it
   * begins (in the caller's turn); undefined after: later ones read it anew.
   */
  now: number | undefined;

  constructor(
    readonly ref: KeyRef,
    /** The replicas asked. */
    readonly replicas: readonly NodeInfo[],
    readonly deadline: number,
    now: number,
    /** Turns the merged answer into what the read resolves with. */
    readonly present: (set: SiblingSet<Uint8Array>) => unknown,
  ) {
    this.now = now;
  }

  /**
   * The set of one answer. A record that does not decode is that replica's
   * failure: `KV_STORAGE_FAILURE` for this node's own (`local`), else
   * `KV_INVALID_MESSAGE` (what `decodeSiblingSet` throws).
   */
  decode(key: Uint8Array, bytes: Uint8Array | undefined, local: boolean): SiblingSet<Uint8Array> {
    if (bytes === undefined) {
      this.#sawEmpty = true;
      return EMPTY;
    }
    if (this.#bytes0 !== undefined && sameBytes(this.#bytes0, bytes)) return this.#set0!;
    if (this.#bytes !== undefined) for (let i = 0; i < this.#bytes.length; i++) if (sameBytes(this.#bytes[i]!, bytes)) return this.#sets![i]!;
    let set: SiblingSet<Uint8Array>;
    try {
      // Values as views into the answer's bytes, decoded once: read-only (a local answer may be
      // the storage's own bytes); the value decoder copies what it gives the caller.
      set = decodeSiblingSet(bytes, VIEWS);
    } catch (err) {
      throw local ? corruptStoredRecord(key, err) : err;
    }
    if (this.#bytes0 === undefined) {
      this.#bytes0 = bytes;
      this.#set0 = set;
    } else {
      (this.#bytes ??= []).push(bytes);
      (this.#sets ??= []).push(set);
    }
    return set;
  }

  /** Distinct encodings decoded so far. */
  get #distinct(): number {
    return (this.#bytes0 === undefined ? 0 : 1) + (this.#bytes?.length ?? 0);
  }

  /**
   * True when every answer decoded so far was the same (the same bytes, or
   * every one empty): nothing to merge or repair among them.
   */
  get unanimous(): boolean {
    return this.#distinct + (this.#sawEmpty ? 1 : 0) <= 1;
  }

  /** The merge of every answer decoded so far (all of them answers that succeeded). */
  merged(): SiblingSet<Uint8Array> {
    if (this.#set0 === undefined) return EMPTY;
    return this.#sets === undefined ? this.#set0 : mergeAll([this.#set0, ...this.#sets]);
  }

  /** The encoding of a set decoded here, or a fresh one. */
  encode(set: SiblingSet<Uint8Array>): Uint8Array {
    if (set === this.#set0) return this.#bytes0!;
    const i = this.#sets?.indexOf(set) ?? -1;
    return i >= 0 ? this.#bytes![i]! : encodeSiblingSet(set);
  }
}

const asIs = <T>(x: T): T => x;

/** A read's answer as gather settles it: this node's own record comes decoded (a set), a replica's as its kv.record. */
function settleRead(value: unknown, _node: NodeInfo, read: ReadAnswers): SiblingSet<Uint8Array> {
  return value instanceof SiblingSet ? value : readAnswer(read, value as WireMessage);
}

/** What a read resolves with once R answered: their merge, presented. */
function presentRead(read: ReadAnswers): unknown {
  return read.present(read.merged());
}

/** The nodes of `nodes` in one of `zones`. */
function inZones(nodes: readonly NodeInfo[], zones: ReadonlyMap<string, number>): NodeInfo[] {
  return nodes.filter((node) => node.zone !== undefined && zones.has(node.zone));
}

/**
 * This node's own record, read from storage that answered later. A function
 * of its own: a closure in #readFrom would allocate its scope on every call.
 */
function decodeLater(read: ReadAnswers, bytes: Promise<Uint8Array | undefined>): Promise<SiblingSet<Uint8Array>> {
  return bytes.then((b) => read.decode(read.ref.bytes, b, true));
}

/** What a write's replication calls need (the context of its gather). */
interface Replication {
  readonly ref: KeyRef;
  readonly record: Uint8Array;
  readonly deadline: number;
  /** As {@link ReadAnswers.now}. */
  now: number | undefined;
}

/** Merges distinct answers (answers with equal bytes share one set object). */
function mergeAll(sets: Iterable<SiblingSet<Uint8Array>>): SiblingSet<Uint8Array> {
  let merged = EMPTY;
  for (const set of sets) if (set !== merged) merged = merged.merge(set);
  return merged;
}

/** Options of {@link QuorumCoordinator}. */
export interface QuorumCoordinatorOptions {
  /** This node's id (requests to itself skip the network). */
  readonly self: string;
  /** Cluster name sent with every request. */
  readonly cluster: string;
  /** Replication factor N. */
  readonly n: number;
  readonly transport: Transport;
  /** This node's replica. */
  readonly replica: ReplicaServer;
  /** The current ring snapshot. */
  readonly ring: () => Ring;
  /** Failure-detector view; forwarded writes try nodes known down last. @default every node alive */
  readonly status?: (id: string) => MemberStatus;
  readonly clock: Clock;
  /** Called after read repair sent merged records to stale replicas. */
  readonly onRepair?: (event: { key: Uint8Array; nodes: readonly string[] }) => void;
  /**
   * Sloppy quorum for writes: a primary that is down, fails, or has not
   * answered within `hopTimeout` gets a stand-in (the next available
   * fallback of the key's `ReplicaSet`), which stores the same record under
   * a hint for it and whose acknowledgement counts toward W. Writes that
   * need every replica (`w` = N) always count primaries only, and a call
   * may turn it off (`CoordinatorCallOptions.sloppy`).
   * @default true
   */
  readonly sloppyQuorum?: boolean;
  /**
   * Per-hop timeout, ms: how long a write waits for a replica before a
   * sloppy quorum asks a stand-in (the replica's own request goes on until
   * the deadline), and how long a forwarded write waits for the replica it
   * asked to create its version (plus half of it for the answer) before it
   * asks the next one. A node that lets a hop pass is treated as
   * unavailable (skipped, as if down) until it answers something; every
   * max(1 s, 8 hops) one call tries it again (a probe) while the others
   * keep away.
   * @default 250
   */
  readonly hopTimeout?: number;
  /**
   * This node's hint store, so that it can be a stand-in itself for writes
   * it coordinates without being a replica. Without it, this node is never
   * picked as a stand-in by its own coordinator.
   */
  readonly hints?: HintStore;
  /**
   * Send the `kv.apply` and `kv.read` requests of one turn for one peer
   * together, as `kv.apply-batch` and `kv.read-batch` (see `ApplyBatcher`
   * and `ReadBatcher`; calls with an abort signal, and records over 16 KiB,
   * go alone). Only over a transport with `send()` whose capabilities say
   * requests are worth batching (`batchesRequests`: `TcpTransport`).
   * @default true
   */
  readonly batchRequests?: boolean;
}

/** Where a coordinator keeps hints on its own node (a `HintedHandoff`). */
export interface HintStore {
  /** Stores `record` under a hint for `target`; resolves once stored. */
  store(target: string, key: KeyRef, record: Uint8Array): Promise<void>;
}

/** Per-call options of the coordinator. */
export interface CoordinatorCallOptions {
  /** Absolute deadline on the coordinator's clock. */
  readonly deadline: number;
  readonly signal?: AbortSignal | undefined;
  /**
   * Whether this write may count stand-ins toward W (a sloppy quorum).
   * Writes with `w` = N never do, whatever this says.
   * @default the coordinator's `sloppyQuorum`
   */
  readonly sloppy?: boolean | undefined;
  /**
   * Count acknowledgements per zone instead of R / W (which are then
   * ignored), over the key's primaries only (never stand-ins):
   * `'local_quorum'` needs a quorum of the replicas in this node's zone,
   * `'each_quorum'` one in every zone of the ring's zone map. Reads ask the
   * replicas of the zones that count only. A level the configuration cannot
   * meet rejects at once with `KV_UNAVAILABLE_CONSISTENCY`
   * (see `ReplicaSet.zoneQuorum`).
   * @default undefined (count R / W over all replicas)
   */
  readonly zoneLevel?: ZoneConsistencyLevel | undefined;
  /**
   * The coordinator's clock as the caller just read it (to compute
   * `deadline`), for a call made in the same turn: the requests and the
   * version the call makes before its first wait take this reading instead
   * of reading the clock again (~95 ns a reading on the development VM, and
   * a put read it five times). Leave it out for a call made after a wait.
   */
  readonly now?: number | undefined;
}

/** A call's options for when it goes on after a wait: the reading it carried is stale, the clock is read again. */
export function afterWait(options: CoordinatorCallOptions): CoordinatorCallOptions {
  return options.now === undefined ? options : { ...options, now: undefined };
}

/** Sum of a per-zone quorum's counts. */
function totalOf(need: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const count of need.values()) total += count;
  return total;
}

const alive = (): MemberStatus => 'alive';

/**
 * `nodes` without the one whose id is `id`, in an array of its exact size
 * (a first push onto `[]` reserves 17 slots, ~150 bytes), filled by an
 * index loop. Not `slice`: replica lists are frozen, and V8's `slice` of a
 * frozen array takes its slow, generic path (~300 ns against ~30 for a
 * plain one, measured on Node 20; `filter`, `some` and `find` are 3-4x
 * slower on them too). Every write makes one of these.
 */
function othersThan(nodes: readonly NodeInfo[], id: string): NodeInfo[] {
  const n = nodes.length;
  const at = indexOfNode(nodes, id);
  const out = new Array<NodeInfo>(at < 0 ? n : n - 1);
  for (let i = 0, j = 0; i < n; i++) if (i !== at) out[j++] = nodes[i]!;
  return out;
}

/** Where in `nodes` the node `id` is (-1: not there); an index loop, see othersThan. */
function indexOfNode(nodes: readonly NodeInfo[], id: string): number {
  for (let i = 0; i < nodes.length; i++) if (nodes[i]!.id === id) return i;
  return -1;
}

const noop = (): void => {};

/** Refuses an answer that is not of `type` (a replica that answered something else is that replica's failure). */
function expectAnswer(answer: WireMessage, type: string): void {
  if (answer.type !== type) throw new KvError(ErrorCodes.INVALID_MESSAGE, `unexpected answer ${answer.type}`);
}

function expectApplied(answer: WireMessage): void {
  expectAnswer(answer, 'kv.applied');
}

/** A write gather's asynchronous answers: a replica's `kv.applied`, or nothing (a local apply, a hint checked already). */
function settleApplied(value: unknown): unknown {
  if (value !== undefined) expectApplied(value as WireMessage);
  return undefined;
}

/** A replica's answer to `kv.read`, decoded into `read`'s answers. */
function readAnswer(read: ReadAnswers, answer: WireMessage): SiblingSet<Uint8Array> {
  expectAnswer(answer, 'kv.record');
  return read.decode(read.ref.bytes, readOptionalBytes(answer, 'record', MAX_WIRE_RECORD), false);
}

function expectHinted(answer: WireMessage): void {
  expectAnswer(answer, 'kv.hinted');
}

/**
 * Runs quorum reads and writes for any key, from any node.
 *
 * - Read: ask the key's N replicas, answer with the merge of the first R
 *   distinct answers, then — once every replica answered or the deadline
 *   passed — send the merge of all answers to the replicas that were stale or
 *   missing (read repair; it merges, it never creates a version). A replica
 *   whose record does not decode counts as that replica's failure.
 * - Write: the targets are the primaries of the key's {@link ReplicaSet}.
 *   The version is created by a replica (Dynamo §4.5): if this node is one
 *   it creates the version, stores it and replicates its whole sibling set
 *   to the others, counting itself toward W. Otherwise it asks the first
 *   available primary to create and store the version (`kv.version`), then
 *   replicates the set that primary answered with to the others itself; a
 *   primary silent for a hop is given up on (it refuses to create the
 *   version once that hop has passed) and the next one is asked, so such a
 *   write ends within about two hops instead of at its deadline.
 * - Sloppy quorum (writes, unless `w` = N): a primary that is down, fails
 *   or stays silent for a hop gets a stand-in, the next available fallback
 *   of the replica set, which stores the same record under a hint for that
 *   primary and counts toward W (see `HintedHandoff`). The primary's own
 *   request goes on: if it answers too, the later hint delivery is a merge
 *   of a record it has, which changes nothing. Reads count primaries only:
 *   stand-ins keep hints, not data they serve, so a read may miss a write
 *   acknowledged by stand-ins until their hints are delivered (as in
 *   Dynamo and Cassandra, a sloppy quorum does not give read-your-writes).
 *
 * Keys come as a {@link KeyRef} (bytes and token computed once by the
 * caller) or as raw bytes, whose token is computed here.
 */
export class QuorumCoordinator {
  readonly #o: QuorumCoordinatorOptions;
  readonly #status: (id: string) => MemberStatus;
  readonly #stopping = new AbortController();
  /** Background work (read repair, replication past W) that `stop()` waits for. */
  #background = 0;
  /** Resolves `stop()`'s wait once the background work is done. */
  #drained: (() => void) | undefined;
  #idle: Promise<void> | undefined;
  /** Calls waiting for one in progress to finish (over MAX_CALLS_IN_PROGRESS), first come first served. */
  readonly #waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  /** Waiting calls let go whose promise has not settled yet: they count toward the bound. */
  #released = 0;
  readonly #untrack = (): void => {
    if (--this.#background === 0 && this.#drained) {
      this.#drained();
      this.#drained = undefined;
      this.#idle = undefined;
    }
    if (this.#waiting.length !== 0) this.#pump();
  };
  readonly #tokenOf = (bytes: Uint8Array): number => this.#o.ring().token(bytes);
  readonly #sloppy: boolean;
  readonly #hops: HopQueue;
  /** Batches the kv.apply requests of one turn per peer (undefined: a transport without send()). */
  readonly #batcher: ApplyBatcher | undefined;
  /** Batches the kv.read requests of one turn per peer (undefined: a transport without send()). */
  readonly #readBatcher: ReadBatcher | undefined;
  /** The deadlines of reads (one timer for all of them). */
  readonly #deadlines: DeadlineQueue;
  /** How long a node that let a hop pass stays unavailable, ms. */
  readonly #slowFor: number;
  /** Nodes that let a hop pass unanswered → until when they count as unavailable. */
  readonly #slow = new Map<string, number>();
  readonly #policy: StandInPolicy = {
    available: (node) => this.#available(node.id),
    pick: (replicaSet, target, asked) => this.#pickStandIn(replicaSet, asked),
    answered: (id) => {
      if (this.#slow.size !== 0) this.#slow.delete(id);
    },
    silent: (id) => this.#markSlow(id),
  };

  /**
   * What every read's gather does, and every write's replication (strict,
   * or sloppy with stand-ins): made once, so that a quorum call allocates no
   * options object (see `Gather`).
   */
  readonly #readGather: GatherPolicy<SiblingSet<Uint8Array>, ReadAnswers>;
  readonly #writeGather: GatherPolicy<unknown, Replication>;
  readonly #sloppyWriteGather: GatherPolicy<unknown, Replication>;
  /**
   * Per preference list, the primaries other than this node, or null when
   * this node is not one of them. The ring makes each list once (per vnode
   * and replica count) and keeps it, so the answer is worked out once per
   * list, not on every write (a search by id and an array each time was
   * ~2.8% of the coordinating process's time under puts); a list of a ring
   * no longer in use goes with its entry.
   */
  readonly #others = new WeakMap<readonly NodeInfo[], readonly NodeInfo[] | null>();

  constructor(options: QuorumCoordinatorOptions) {
    this.#o = options;
    this.#status = options.status ?? alive;
    const sloppy = options.sloppyQuorum ?? true;
    if (typeof sloppy !== 'boolean') throw new TypeError(`Expected \`sloppyQuorum\` to be a boolean, got ${typeof sloppy}`);
    this.#sloppy = sloppy;
    const hop = options.hopTimeout ?? DEFAULT_HOP_TIMEOUT;
    if (typeof hop !== 'number' || !Number.isFinite(hop) || hop < 1) {
      throw new RangeError(`Expected \`hopTimeout\` to be a finite number of milliseconds >= 1, got ${String(hop)}`);
    }
    this.#hops = new HopQueue(options.clock, hop);
    const batching = options.transport.send !== undefined && options.transport.capabilities.batchesRequests === true && options.batchRequests !== false;
    const batcherOptions = { transport: options.transport, cluster: options.cluster, clock: options.clock };
    this.#batcher = batching ? new ApplyBatcher(batcherOptions) : undefined;
    this.#readBatcher = batching ? new ReadBatcher(batcherOptions) : undefined;
    this.#deadlines = new DeadlineQueue(options.clock);
    this.#slowFor = Math.max(MIN_SLOW_FOR, 8 * hop);
    this.#readGather = {
      operation: 'read',
      settle: settleRead,
      deadlines: this.#deadlines,
      clock: options.clock,
      // Read repair and the background count once every replica answered.
      onAll: this.#readDone,
      // Presented as R answered, in no promise of its own.
      result: presentRead,
    };
    this.#writeGather = {
      operation: 'write',
      // Every call is a request whose timeout is the write's deadline.
      timer: false,
      clock: options.clock,
      settle: settleApplied,
      // Replication past W goes on in the background until every call settled.
      onAll: this.#untrack,
      // The write's caller wants nothing back: no promise chained to drop the gathering.
      quorumValue: 'none',
      // A replica's kv.applied says nothing beyond its arrival: counted, not kept.
      answers: 'count',
    };
    this.#sloppyWriteGather = { ...this.#writeGather, standIns: this.#policy, hops: this.#hops };
    // Every background request listens on this signal; many may be in flight.
    setMaxListeners(0, this.#stopping.signal);
    // Requests and gathers subscribe to it through onAbort, which adds the
    // signal's one DOM listener with the first subscriber and removes it with
    // the last: keeping one subscriber for the coordinator's life saves an
    // addEventListener/removeEventListener pair on every forwarded write.
    onAbort(this.#stopping.signal, noop);
  }

  /** `primaries` without this node (a list to share, never to change), or undefined if this node is not one of them. */
  #othersOf(primaries: readonly NodeInfo[]): readonly NodeInfo[] | undefined {
    let others = this.#others.get(primaries);
    if (others === undefined) {
      others = indexOfNode(primaries, this.#o.self) < 0 ? null : Object.freeze(othersThan(primaries, this.#o.self));
      this.#others.set(primaries, others);
    }
    return others ?? undefined;
  }

  /** Quorum read; resolves with the merged sibling set (empty if no replica has the key). */
  read(key: KeyRef | Uint8Array, r: number, options: CoordinatorCallOptions): Promise<SiblingSet<Uint8Array>> {
    return this.readWith(key, r, options, asIs);
  }

  /**
   * {@link QuorumCoordinator.read}, resolving with `present(merged set)`:
   * a caller that turns the set into its own result does it in the read's
   * own reaction, not in one more promise (a promise and a turn fewer per
   * read). A throw from `present` rejects the read.
   */
  readWith<T>(key: KeyRef | Uint8Array, r: number, options: CoordinatorCallOptions, present: (set: SiblingSet<Uint8Array>) => T): Promise<T> {
    // Not async (as write): a promise and a turn fewer per read; failures still reject.
    try {
      if (this.#full()) return this.#readInTurn(key, r, options, present);
      return this.#read(key, r, options, present);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // The waits for a turn are methods of their own: closures in readWith() or
  // write() would allocate their scope on every call, not only on a wait.

  /** {@link QuorumCoordinator.readWith} once a call in progress let it go (see MAX_CALLS_IN_PROGRESS). */
  #readInTurn<T>(key: KeyRef | Uint8Array, r: number, options: CoordinatorCallOptions, present: (set: SiblingSet<Uint8Array>) => T): Promise<T> {
    return this.#turn(options).then(() => this.#start(() => this.#read(key, r, afterWait(options), present)));
  }

  /** {@link QuorumCoordinator.write} once a call in progress let it go. */
  #writeInTurn(key: KeyRef | Uint8Array, write: WriteRequest, options: CoordinatorCallOptions): Promise<void> {
    return this.#turn(options).then(() => this.#start(() => this.#write(key, write, afterWait(options))));
  }

  #read<T>(key: KeyRef | Uint8Array, r: number, options: CoordinatorCallOptions, present: (set: SiblingSet<Uint8Array>) => T): Promise<T> {
    throwIfAborted(options.signal);
    const ref = toKeyRef(key, this.#tokenOf);
    let replicas = this.#o.ring().preferenceListForToken(ref.token, this.#o.n);
    const zones = this.#zoneQuorum(ref, options);
    // A zone level asks the replicas of the zones that count only.
    if (zones !== undefined) replicas = inZones(replicas, zones);
    // The requests gather() makes as it begins (in this turn) share one reading of the clock; later ones read it anew.
    const read = new ReadAnswers(ref, replicas, options.deadline, options.now ?? this.#o.clock.now(), present);
    // Background work until every replica answered (stop() waits for it): onAll (#readDone) lets it go.
    const required = zones === undefined ? Math.min(r, replicas.length) : totalOf(zones);
    const gathering = this.#tracked(
      new Gather(replicas, this.#readCall, this.#readGather, required, 0, options.deadline, options.signal, read, zones, undefined),
      undefined,
    );
    read.now = undefined;
    return gathering.quorum as Promise<T>;
  }

  /** A read's call to one replica (see #readFrom). */
  readonly #readCall: GatherCall<SiblingSet<Uint8Array>, ReadAnswers> = (node, signal, _standInFor, receiver, tag, read) =>
    this.#readFrom(node, read, signal, receiver, tag);

  /** Read repair once every replica answered; answers that all agree need no look at who said what. */
  readonly #readDone = (done: Gathered<SiblingSet<Uint8Array>>, read: ReadAnswers): void => {
    if (read.unanimous) this.#untrack();
    else this.#repair(read.ref, read.replicas, done.ok, read).then(this.#untrack, this.#untrack);
  };

  /** Quorum write. Rejects with `KV_QUORUM_NOT_MET` when fewer than W replicas stored it in time. */
  write(key: KeyRef | Uint8Array, write: WriteRequest, options: CoordinatorCallOptions): Promise<void> {
    // Not async: returning the inner promise from an async function would cost a promise and two turns.
    try {
      if (this.#full()) return this.#writeInTurn(key, write, options);
      return this.#write(key, write, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #write(key: KeyRef | Uint8Array, write: WriteRequest, options: CoordinatorCallOptions): Promise<void> {
    throwIfAborted(options.signal);
    const ref = toKeyRef(key, this.#tokenOf);
    const ring = this.#o.ring();
    const n = this.#o.n;
    const primaries = ring.preferenceListForToken(ref.token, n);
    // Stand-ins only when the ring has nodes beyond the primaries, and never for w = N or a zone level.
    const mayStandIn = (options.sloppy ?? this.#sloppy) && write.w < n && ring.size > primaries.length;
    // The replica set (fallbacks, zones) only when stand-ins or a zone level may need it: an object
    // and ~0.3 µs less per write on a ring of N nodes, or with sloppy quorums off.
    const replicaSet = mayStandIn || options.zoneLevel !== undefined ? ReplicaSet.forToken(ring, ref.token, n) : undefined;
    // A zone level the configuration cannot meet rejects here, before anything is written.
    const zoned = replicaSet !== undefined && this.#zoneQuorum(ref, options, replicaSet) !== undefined;
    const sloppy = !zoned && mayStandIn;
    const others = this.#othersOf(primaries);
    if (others !== undefined) return this.#coordinateLocally(ref, primaries, others, replicaSet, write, options, sloppy);
    return this.#forward(ref, replicaSet ?? ReplicaSet.forToken(ring, ref.token, n), write, options, sloppy);
  }

  /** Handles `kv.coordinate` (a write forwarded by a node that is not a replica). */
  async handle(message: WireMessage): Promise<WireMessage> {
    if (message.type !== 'kv.coordinate') {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, `unknown coordinator message type ${message.type}`);
    }
    const key = readBytes(message, 'key', MAX_WIRE_KEY);
    const value = readOptionalBytes(message, 'value', MAX_WIRE_RECORD);
    const tombstone = readBoolean(message, 'tombstone');
    const overwrite = readBoolean(message, 'overwrite');
    const contextBytes = readOptionalBytes(message, 'context', MAX_WIRE_CLOCK);
    const w = readInt(message, 'w', 1, this.#o.n);
    const timeout = readInt(message, 'timeout', 0, MAX_FORWARD_TIMEOUT);
    const timestamp = readOptionalNumber(message, 'timestamp', 0, Number.MAX_SAFE_INTEGER);
    const sloppy = readOptionalBoolean(message, 'sloppy') ?? false;
    if (tombstone === (value !== undefined)) {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, 'malformed kv.coordinate: exactly one of value and tombstone');
    }
    const context = contextBytes === undefined ? VectorClock.EMPTY : decodeClock(contextBytes);
    // The token is ours to compute, never the sender's (see ReplicaServer).
    const ref: KeyRef = { bytes: key, token: this.#tokenOf(key) };
    const replicaSet = ReplicaSet.forToken(this.#o.ring(), ref.token, this.#o.n);
    if (!replicaSet.isPrimary(this.#o.self)) {
      throw new KvError(ErrorCodes.UNKNOWN_PEER, `node ${this.#o.self} is not a replica of this key`);
    }
    try {
      await this.#coordinateLocally(
        ref,
        replicaSet.primaries,
        othersThan(replicaSet.primaries, this.#o.self),
        replicaSet,
        { value, tombstone, overwrite, context, w, timestamp },
        { deadline: this.#o.clock.now() + timeout, signal: this.#stopping.signal },
        sloppy && w < this.#o.n && this.#o.ring().size > replicaSet.primaries.length,
      );
      return { type: 'kv.written' };
    } catch (err) {
      if (err instanceof QuorumNotMetError) {
        return {
          type: 'kv.write-failed',
          required: err.required,
          acknowledged: err.acknowledged,
          failures: failuresToWire(err.failures),
        };
      }
      throw err;
    }
  }

  /** Aborts background work (read repair, replication past W) and waits for it. */
  async stop(): Promise<void> {
    // Batches being filled go now (their writes' outcomes are part of the background work waited for below).
    this.#batcher?.flush();
    this.#readBatcher?.flush();
    this.#stopping.abort();
    this.#hops.stop();
    for (const w of this.#waiting.splice(0)) {
      w.reject(new KvError(ErrorCodes.NOT_STARTED, 'the coordinator stopped while the call waited for earlier calls to finish'));
    }
    // The read deadlines are not stopped: a read in flight still ends at its
    // deadline (as with a timer of its own), and the queue's timer ends with the last one.
    if (this.#background === 0) return;
    this.#idle ??= new Promise<void>((resolve) => {
      this.#drained = resolve;
    });
    await this.#idle;
  }

  // ---- internals ---------------------------------------------------------------------------

  #request(node: NodeInfo, message: WireMessage, deadline: number, signal: AbortSignal | undefined): Promise<WireMessage> {
    const timeout = Math.max(0, deadline - this.#o.clock.now());
    return this.#o.transport.request(node.address, message, signal ? { timeout, signal } : { timeout });
  }

  /**
   * A gather's request to `node`: its answer goes to the gather (`receiver`,
   * `tag`) when the transport has `send`, else it is the promise returned.
   */
  #send(
    node: NodeInfo,
    message: WireMessage,
    deadline: number,
    signal: AbortSignal | undefined,
    now: number,
    receiver: AnswerReceiver<unknown>,
    tag: number,
  ): Promise<WireMessage> | typeof SENT {
    const timeout = Math.max(0, deadline - now);
    const transport = this.#o.transport;
    const options = signal ? { timeout, signal } : { timeout };
    if (transport.send === undefined) return transport.request(node.address, message, options);
    transport.send(node.address, message, options, receiver, tag);
    return SENT;
  }

  /** A replica's record, decoded (empty when it has none). */
  #readFrom(
    node: NodeInfo,
    read: ReadAnswers,
    signal: AbortSignal | undefined,
    receiver: AnswerReceiver<unknown>,
    tag: number,
  ): SiblingSet<Uint8Array> | Promise<SiblingSet<Uint8Array>> | typeof SENT {
    const ref = read.ref;
    if (node.id === this.#o.self) {
      // This node's own record, synchronously when its storage answers so (gather counts it at once).
      const bytes = this.#o.replica.readEncodedNow(ref);
      return bytes instanceof Promise ? decodeLater(read, bytes) : read.decode(ref.bytes, bytes, true);
    }
    // The answer as it came: the read's gather decodes it (its settle, readAnswer).
    const reads = this.#readBatcher;
    if (reads !== undefined && signal === undefined && reads.accepts(node.address, 0)) {
      reads.add(node.address, ref.bytes, read.deadline, receiver, tag);
      return SENT;
    }
    const message = ownBody({ type: 'kv.read', cluster: this.#o.cluster, key: ref.bytes });
    return this.#send(node, message, read.deadline, signal, read.now ?? this.#o.clock.now(), receiver, tag) as Promise<unknown> as
      | Promise<SiblingSet<Uint8Array>>
      | typeof SENT;
  }

  #applyTo(
    node: NodeInfo,
    ref: KeyRef,
    set: SiblingSet<Uint8Array>,
    record: Uint8Array,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (node.id === this.#o.self) return this.#o.replica.apply(ref, set, record);
    return this.#request(node, ownBody({ type: 'kv.apply', cluster: this.#o.cluster, key: ref.bytes, record }), deadline, signal).then(
      expectApplied,
    );
  }

  /** Asks `node` to keep `record` under a hint for `target` (this node keeps it in its own hint store). */
  #hintTo(
    node: NodeInfo,
    target: string,
    ref: KeyRef,
    record: Uint8Array,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (node.id === this.#o.self) {
      const hints = this.#o.hints;
      if (hints === undefined) return Promise.reject(new KvError(ErrorCodes.INTERNAL, 'no hint store on this node'));
      return hints.store(target, ref, record);
    }
    return this.#request(
      node,
      ownBody({ type: 'kv.hint', cluster: this.#o.cluster, key: ref.bytes, record, target }),
      deadline,
      signal,
    ).then(expectHinted);
  }

  /** A write's replication to the other replicas: a gather with the coordinator's write policy (strict or sloppy), no options object per write. */
  #replicate(
    others: readonly NodeInfo[],
    ref: KeyRef,
    record: Uint8Array,
    primaries: readonly NodeInfo[],
    replicaSet: ReplicaSet | undefined,
    w: number,
    options: CoordinatorCallOptions,
    sloppy: boolean,
    at: number | undefined,
  ): Promise<undefined> {
    const deadline = options.deadline;
    // A zone level: what each zone still needs once the replica that created the version (not in `others`) counted.
    let zones: Map<string, number> | undefined;
    let required = Math.min(w, primaries.length);
    let counted = 1;
    const need = this.#zoneQuorum(ref, options, replicaSet);
    if (need !== undefined) {
      zones = new Map(need);
      required = totalOf(need);
      counted = 0;
      for (const p of primaries) {
        const left = p.zone === undefined || others.includes(p) ? undefined : zones.get(p.zone);
        if (left !== undefined && left > 0) {
          zones.set(p.zone!, left - 1);
          counted++;
        }
      }
    }
    // The requests gather() makes as it begins (in this turn) share one reading of the clock; stand-ins asked later read it anew.
    const now = at ?? this.#o.clock.now();
    const replication: Replication = { ref, record, deadline, now };
    // Replication past W goes on in the background until every call settled (the policy's onAll lets it go).
    const policy = sloppy ? this.#sloppyWriteGather : this.#writeGather;
    const gathering = this.#tracked(
      new Gather(others, this.#replicaCall, policy, required, counted, deadline, options.signal, replication, zones, sloppy ? replicaSet : undefined),
      now,
    );
    replication.now = undefined;
    return gathering.quorum as Promise<undefined>;
  }

  /**
   * A write's replication call to one node: a stand-in gets the record under
   * a hint for the primary it stands in for; a primary gets it in a batch
   * (see ApplyBatcher) unless the call has a signal to abort it by, or alone.
   * Its answer comes as it came: gather checks it (settleApplied).
   */
  readonly #replicaCall: GatherCall<unknown, Replication> = (node, signal, standInFor, receiver, tag, r) => {
    if (standInFor !== undefined) return this.#hintTo(node, standInFor, r.ref, r.record, r.deadline, signal);
    const batcher = this.#batcher;
    if (batcher !== undefined && signal === undefined && batcher.accepts(node.address, r.record.byteLength)) {
      batcher.add(node.address, r.ref.bytes, r.record, r.deadline, receiver, tag);
      return SENT;
    }
    const message = ownBody({ type: 'kv.apply', cluster: this.#o.cluster, key: r.ref.bytes, record: r.record });
    return this.#send(node, message, r.deadline, signal, r.now ?? this.#o.clock.now(), receiver, tag);
  };

  /** `replicaSet`: the key's, when stand-ins or a zone level may need it (see #write). */
  #coordinateLocally(
    ref: KeyRef,
    primaries: readonly NodeInfo[],
    others: readonly NodeInfo[],
    replicaSet: ReplicaSet | undefined,
    write: WriteRequest,
    options: CoordinatorCallOptions,
    sloppy: boolean,
  ): Promise<void> {
    // The version is usually created synchronously (coordinateWriteNow): no turn before replication starts.
    const version = this.#o.replica.coordinateWriteNow(ref, write, undefined, options.now);
    // Created after a wait (the key's lock, the storage): replicated then, the clock read again.
    if (version instanceof Promise) return this.#replicateLater(version, { ref, primaries, others, replicaSet, write, options, sloppy });
    // The record only: the version's set was stored here already, and every node asked is another one
    // (a gather holds what its calls refer to until the last replica answered, well past W).
    return this.#replicate(others, ref, version.encoded, primaries, replicaSet, write.w, options, sloppy, options.now);
  }

  /**
   * {@link QuorumCoordinator.#coordinateLocally} for a version created after
   * a wait. A method of its own, so that the closure it makes is not a scope
   * allocated on every write.
   */
  #replicateLater(
    version: Promise<CoordinatedVersion>,
    w: {
      ref: KeyRef;
      primaries: readonly NodeInfo[];
      others: readonly NodeInfo[];
      replicaSet: ReplicaSet | undefined;
      write: WriteRequest;
      options: CoordinatorCallOptions;
      sloppy: boolean;
    },
  ): Promise<void> {
    return version.then(({ encoded }) =>
      this.#replicate(w.others, w.ref, encoded, w.primaries, w.replicaSet, w.write.w, w.options, w.sloppy, undefined),
    );
  }

  /**
   * A write from a node that is not one of the key's replicas: asks the
   * primaries in order (believed available first) to create the version
   * (`kv.version`), then replicates what the first one created. Not an
   * async function: one promise per call, settled from the transport's
   * receiver (`send`), with no promise or turn per request.
   */
  #forward(ref: KeyRef, replicaSet: ReplicaSet, write: WriteRequest, options: CoordinatorCallOptions, sloppy: boolean): Promise<void> {
    const targets = replicaSet.primaries;
    // Primaries believed available first, in preference order.
    const order = this.#availableFirst(targets);
    const failures: ReplicaFailure[] = [];
    const context = write.context.size === 0 ? null : encodeClock(write.context);
    const hop = this.#hops.hop;
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // The caller's reading for the first target (asked in the caller's turn), the clock's for the next ones.
    let at = options.now;
    /** Asks `order[i]`, or the next target still in time; fails the write once none is left. */
    const ask = (i: number): void => {
      if (i < order.length) {
        const node = order[i]!;
        const now = at ?? this.#o.clock.now();
        at = undefined;
        const remaining = options.deadline - now;
        if (remaining > 0) {
          const message: WireMessage = {
            type: 'kv.version',
            cluster: this.#o.cluster,
            key: ref.bytes,
            value: write.value ?? null,
            tombstone: write.tombstone,
            overwrite: write.overwrite,
            context,
            timestamp: write.timestamp ?? null,
            // The replica creates nothing once this has passed on its clock, so
            // after the hop (and half a hop for the answer) the next one may be asked.
            expires: now + hop,
          };
          try {
            // Through the receiver either way: a transport without `send` answers with a promise.
            const pending = this.#send(node, ownBody(message), now + Math.min(remaining, hop * 1.5), options.signal, now, receiver, i);
            if (pending !== SENT) {
              pending.then(
                (answer) => receiver.answered(i, answer),
                (err: unknown) => receiver.failed(i, toKvError(err)),
              );
            }
          } catch (err) {
            receiver.failed(i, toKvError(err));
          }
          return;
        }
        // Out of time before this target could be asked: it is the one that timed out.
        failures.push({ node: node.id, code: ErrorCodes.TIMEOUT });
      }
      try {
        const need = this.#zoneQuorum(ref, options, replicaSet);
        reject(new QuorumNotMetError('write', need === undefined ? Math.min(write.w, targets.length) : totalOf(need), 0, failures));
      } catch (err) {
        reject(err);
      }
    };
    const receiver: AnswerReceiver<WireMessage> = {
      answered: (i, answer) => {
        const node = order[i]!;
        let replicated: Promise<undefined>;
        try {
          expectAnswer(answer, 'kv.versioned');
          const record = readBytes(answer, 'record', MAX_WIRE_RECORD);
          this.#policy.answered(node.id);
          replicated = this.#replicate(othersThan(targets, node.id), ref, record, targets, replicaSet, write.w, options, sloppy, undefined);
        } catch (err) {
          reject(err);
          return;
        }
        // A replication that misses its quorum also reports the targets that failed before.
        replicated.then(resolve, (err: unknown) =>
          reject(
            err instanceof QuorumNotMetError && failures.length > 0
              ? new QuorumNotMetError('write', err.required, err.acknowledged, [...failures, ...err.failures])
              : err,
          ),
        );
      },
      failed: (i, err) => {
        const node = order[i]!;
        const e = toKvError(err);
        // A replica that refused the write itself (too many siblings: nothing stored) answers for all.
        if (e.code === ErrorCodes.ABORTED || e.code === ErrorCodes.TOO_MANY_SIBLINGS) {
          reject(e);
          return;
        }
        failures.push({ node: node.id, code: e.code });
        if (e.code === ErrorCodes.TIMEOUT) this.#markSlow(node.id);
        // The replica created no version (it failed, refused, or will refuse:
        // `expires` has passed), so the next one may create it.
        ask(i + 1);
      },
    };
    ask(0);
    return promise;
  }

  /**
   * The acknowledgements a call's zone level needs per zone (undefined
   * without one), counted over the key's primaries.
   * @throws KvError `KV_UNAVAILABLE_CONSISTENCY` when the configuration cannot meet the level.
   */
  #zoneQuorum(ref: KeyRef, options: CoordinatorCallOptions, replicaSet?: ReplicaSet): ReadonlyMap<string, number> | undefined {
    if (options.zoneLevel === undefined) return undefined;
    const ring = this.#o.ring();
    const set = replicaSet ?? ReplicaSet.forToken(ring, ref.token, this.#o.n);
    return set.zoneQuorum(options.zoneLevel, ring.node(this.#o.self)?.zone);
  }

  async #repair(
    ref: KeyRef,
    replicas: readonly NodeInfo[],
    answers: ReadonlyMap<string, SiblingSet<Uint8Array>>,
    decoded: ReadAnswers,
  ): Promise<void> {
    if (answers.size < 2 || this.#stopping.signal.aborted) return;
    let first: SiblingSet<Uint8Array> | undefined;
    let differ = false;
    for (const set of answers.values()) {
      if (first === undefined) first = set;
      else if (set !== first) differ = true;
    }
    if (!differ) return; // every replica answered the same
    const merged = mergeAll(answers.values());
    const stale = replicas.filter((node) => {
      const set = answers.get(node.id);
      return set !== undefined && !set.descends(merged);
    });
    if (stale.length === 0) return;
    const record = decoded.encode(merged);
    const deadline = this.#o.clock.now() + READ_REPAIR_TIMEOUT;
    const done = await Promise.allSettled(
      stale.map((node) => this.#applyTo(node, ref, merged, record, deadline, this.#stopping.signal)),
    );
    const repaired = stale.filter((_, i) => done[i]?.status === 'fulfilled').map((n) => n.id);
    if (repaired.length > 0) this.#o.onRepair?.({ key: ref.bytes, nodes: repaired });
  }

  /** True if a new call must wait its turn: the bound is reached, or calls are already waiting (first come first served). */
  #full(): boolean {
    return this.#waiting.length !== 0 || this.#background + this.#released >= MAX_CALLS_IN_PROGRESS;
  }

  /** Lets waiting calls go, first come first served, while the bound allows. */
  #pump(): void {
    while (this.#waiting.length !== 0 && this.#background + this.#released < MAX_CALLS_IN_PROGRESS) {
      this.#released++;
      this.#waiting.shift()!.resolve();
    }
  }

  /**
   * Starts a call that was let go. It keeps its place until its promise
   * settles (it may count twice meanwhile, once it is in progress: the
   * bound is then a little stricter), so a call that fails before its
   * replicas were asked, or with storage that answers later, frees its
   * place all the same, and the next waiting call goes.
   */
  #start<T>(call: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = call();
    } catch (err) {
      promise = Promise.reject(err);
    }
    const done = (): void => {
      this.#released--;
      if (this.#waiting.length !== 0) this.#pump();
    };
    promise.then(done, done);
    return promise;
  }

  /**
   * Resolves once this call may start (a call in progress finished, see
   * MAX_CALLS_IN_PROGRESS): `KV_ABORTED` if the caller aborts meanwhile,
   * `KV_TIMEOUT` if its deadline passes first, `KV_NOT_STARTED` if the
   * coordinator stops.
   */
  #turn(options: CoordinatorCallOptions): Promise<void> {
    throwIfAborted(options.signal);
    if (this.#stopping.signal.aborted) {
      return Promise.reject(new KvError(ErrorCodes.NOT_STARTED, 'the coordinator is stopping'));
    }
    return new Promise<void>((resolve, reject) => {
      let off = noop;
      let timer: TimerHandle | undefined;
      const entry = {
        resolve: (): void => {
          off();
          if (timer !== undefined) this.#o.clock.clearTimeout(timer);
          resolve();
        },
        reject: (err: Error): void => {
          off();
          if (timer !== undefined) this.#o.clock.clearTimeout(timer);
          reject(err);
        },
      };
      const leave = (err: Error): void => {
        const i = this.#waiting.indexOf(entry);
        if (i >= 0) this.#waiting.splice(i, 1);
        entry.reject(err);
      };
      if (options.signal) off = onAbort(options.signal, () => leave(new AbortError(undefined, { cause: options.signal?.reason })));
      timer = this.#o.clock.setTimeout(
        () => leave(new TimeoutError(`the call's deadline passed while ${this.#background} earlier calls were still in progress`)),
        Math.max(0, options.deadline - this.#o.clock.now()),
      );
      this.#waiting.push(entry);
      // Places may have freed since the caller looked (a released call that failed before it started).
      this.#pump();
    });
  }

  /**
   * Starts a gather as background work that `stop()` waits for (its
   * `onAll` must call #untrack once that work is done).
   */
  #tracked<T, C>(gathering: Gather<T, C>, now: number | undefined): Gathering<T, unknown> {
    this.#background++;
    try {
      gathering.begin(now);
      return gathering;
    } catch (err) {
      this.#untrack();
      throw err;
    }
  }

  /** Not down and not silent for a hop lately. */
  #available(id: string): boolean {
    if (this.#status(id) === 'down') return false;
    if (this.#slow.size === 0) return true;
    const until = this.#slow.get(id);
    if (until === undefined) return true;
    const now = this.#o.clock.now();
    if (until > now) return false;
    // Time to try it again, with this one call: the others keep away until it
    // answers (which clears the mark) or lets another hop pass (which renews it).
    this.#slow.set(id, now + this.#slowFor);
    return true;
  }

  #markSlow(id: string): void {
    this.#slow.set(id, this.#o.clock.now() + this.#slowFor);
  }

  /** The first available fallback not yet asked (this node only if it has a hint store). */
  #pickStandIn(replicaSet: ReplicaSet, asked: readonly NodeInfo[]): NodeInfo | undefined {
    if (this.#stopping.signal.aborted) return undefined;
    const self = this.#o.self;
    next: for (const node of replicaSet.fallbacks) {
      for (const a of asked) if (a.id === node.id) continue next;
      if (node.id === self ? this.#o.hints !== undefined : this.#available(node.id)) return node;
    }
    return undefined;
  }

  #availableFirst(targets: readonly NodeInfo[]): readonly NodeInfo[] {
    let down: NodeInfo[] | undefined;
    let up: NodeInfo[] | undefined;
    for (let i = 0; i < targets.length; i++) {
      const node = targets[i]!;
      if (!this.#available(node.id)) {
        if (down === undefined) {
          down = [];
          // Not `targets.slice(0, i)`: a frozen array's slice is V8's slow path (see othersThan).
          up = [];
          for (let k = 0; k < i; k++) up.push(targets[k]!);
        }
        down.push(node);
      } else up?.push(node);
    }
    return down === undefined ? targets : [...up!, ...down];
  }
}
