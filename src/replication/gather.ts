import {
  AbortError,
  ErrorCodes,
  type ErrorCode,
  QuorumNotMetError,
  toKvError,
  type ReplicaFailure,
} from '../errors/index.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import { onAbort } from '../internal/signals.js';
import type { NodeInfo, ReplicaSet } from '../ring/index.js';
import type { AnswerReceiver } from '../transport/index.js';
import type { DeadlineEntry, DeadlineQueue, DeadlineWaiter } from './deadline-queue.js';
import type { HopQueue, HopWaiter } from './hop-queue.js';

/** The outcome of asking a set of replicas. */
export interface Gathered<T> {
  /** Answers by node id, in the order they came. */
  readonly ok: ReadonlyMap<string, T>;
  readonly failures: readonly ReplicaFailure[];
}

/**
 * What a {@link GatherCall} returns when it sent a transport request whose
 * outcome goes to the gather itself (`Transport.send` with the call's
 * `receiver` and `tag`): no promise per request.
 */
export const SENT: unique symbol = Symbol('quorumkv.gather.sent');

/**
 * One call of a gather: ask `node`. `standInFor` is the id of the primary
 * `node` stands in for (a sloppy quorum's fallback, which must keep what it
 * gets under a hint for that primary), undefined when `node` is asked for
 * itself. The call answers with its value, a promise of it, or
 * {@link SENT} once it has handed `receiver` and `tag` to a transport's
 * `send` (the answer then goes through `settle`, as a promise's would).
 * `context` is the gather's `GatherOptions.context`: a call made once (a
 * caller's field) reads what differs per gather from it, instead of a
 * closure and its captured scope allocated per gather.
 */
export type GatherCall<T, C = undefined> = (
  node: NodeInfo,
  signal: AbortSignal | undefined,
  standInFor: string | undefined,
  receiver: AnswerReceiver<unknown>,
  tag: number,
  context: C,
) => T | Promise<T> | typeof SENT;

/**
 * Where a sloppy quorum finds its stand-ins and what it learns about nodes
 * (one object per coordinator: nothing is allocated per request).
 */
export interface StandInPolicy {
  /** Whether `node` may be asked now; a node that may not is replaced at once, without being asked. */
  available(node: NodeInfo): boolean;
  /**
   * A stand-in for the primary `target` of `replicaSet`: the first fallback
   * that is available and not among `asked`, or undefined when none is left.
   */
  pick(replicaSet: ReplicaSet, target: string, asked: readonly NodeInfo[]): NodeInfo | undefined;
  /** `id` answered a call. */
  answered(id: string): void;
  /** `id` had not answered one hop after it was asked. */
  silent(id: string): void;
}

/**
 * What a kind of gather does, the same for every gather of that kind (a
 * coordinator makes one per kind, once): see {@link Gather}.
 */
export interface GatherPolicy<T = unknown, C = undefined> {
  readonly operation: 'read' | 'write';
  /**
   * Arm a timer that gives up on the nodes still pending at the deadline.
   * Pass false when every call is a transport request carrying the same
   * deadline as its timeout (it then fails with `KV_TIMEOUT` by itself), to
   * save a timer per call.
   * @default true
   */
  readonly timer?: boolean;
  /**
   * Where that deadline waits: one timer for every gather of a coordinator
   * instead of a `setTimeout` per call.
   * @default a clock timer of its own
   */
  readonly deadlines?: DeadlineQueue | undefined;
  readonly clock: Clock;
  /**
   * Sloppy quorum: a node that is not available, fails, or (with `hops`)
   * has not answered within a hop gets a stand-in from `standIns.pick`
   * (asked with the same call, `standInFor` set), whose answer counts like
   * any node's; a stand-in that fails is replaced in turn, while the
   * deadline has not passed. Absent: a strict quorum of `nodes`. Needs the
   * gather's `replicaSet`.
   */
  readonly standIns?: StandInPolicy | undefined;
  /** Per-hop timeouts (with `standIns`): a node still silent after a hop gets a stand-in, its own call goes on. */
  readonly hops?: HopQueue | undefined;
  /**
   * Turns the value of a call that answered with a promise into its answer
   * (a throw counts as that node's failure). With it a call may return a
   * transport's promise as it is, and the check or decoding of its answer
   * runs in gather's own reaction: one promise and one turn fewer per
   * request than a `.then()` of the caller's. Synchronous answers are
   * taken as they are.
   * @default the value is the answer
   */
  readonly settle?: ((value: unknown, node: NodeInfo, context: C) => T) | undefined;
  /**
   * Called once every call settled, as `all` resolves but without a promise
   * (a coordinator's read repair and background accounting run on every
   * operation).
   */
  readonly onAll?: ((gathered: Gathered<T>, context: C) => void) | undefined;
  /**
   * What `quorum` resolves with, computed as the quorum is met: a read's
   * merged answer, presented, without a `.then()` (a promise, a reaction
   * and a turn) of the caller's. A throw rejects `quorum` with it.
   * Overrides `quorumValue`.
   */
  readonly result?: ((context: C) => unknown) | undefined;
  /**
   * What `quorum` resolves with: the gathering (`'gathered'`, the default),
   * or nothing (`'none'`, for a write, whose caller wants no answer: it
   * returns `quorum` as it is instead of chaining a promise to drop it).
   */
  readonly quorumValue?: 'gathered' | 'none' | undefined;
  /**
   * Whether the answers are kept (`'keep'`, the default: `ok` holds them) or
   * only counted (`'count'`: `ok` stays empty; for a write, whose answers say
   * nothing beyond arriving, so that it allocates nothing per answer).
   */
  readonly answers?: 'keep' | 'count' | undefined;
}

/** A {@link GatherPolicy} with what differs per gather: everything {@link gather} needs in one object. */
export interface GatherOptions<T = unknown, C = undefined> extends GatherPolicy<T, C> {
  /** Successful answers needed from distinct nodes. */
  readonly required: number;
  /** Successes already counted (the coordinator's own write). */
  readonly counted?: number;
  /** Absolute deadline (clock ms). */
  readonly deadline: number;
  readonly signal?: AbortSignal | undefined;
  /**
   * Per-zone quorum (`local_quorum`, `each_quorum`): acknowledgements still
   * needed from the `nodes` of each zone (by `NodeInfo.zone`). With it, the
   * gather resolves once every zone has its count and rejects once one zone
   * cannot get it; `required` and `counted` then only give the error its
   * numbers (`acknowledged` counts the answers that count toward a zone).
   * Not combined with `standIns` (zone levels count primaries only).
   */
  readonly zones?: ReadonlyMap<string, number> | undefined;
  /** The replica set the stand-ins come from (required with `standIns`). */
  readonly replicaSet?: ReplicaSet | undefined;
  /**
   * What the call, `settle`, `onAll` and `result` get as their `context`
   * (see {@link GatherCall}): with it they can be functions made once, not
   * closures made per gather (~250 bytes less per quorum call for the
   * collector; a coordinator makes one per operation).
   */
  readonly context?: C;
  /** The clock's reading as the gather starts, if the caller has just taken it (the hop is timed from it). */
  readonly now?: number | undefined;
}

/** What {@link gather} returns (`Q`: what `quorum` resolves with, see `GatherOptions.quorumValue`). */
export interface Gathering<T, Q = Gathered<T>> {
  /**
   * Resolves as soon as `required` distinct nodes answered, or rejects with
   * `KV_QUORUM_NOT_MET` once that became impossible or the deadline passed
   * (`KV_ABORTED` if the caller aborted). What it resolves with shows the
   * answers as they are when it is read (later answers may have joined).
   */
  readonly quorum: Promise<Q>;
  /** Resolves once every call settled (never rejects), for read repair and `stop()`. */
  readonly all: Promise<Gathered<T>>;
}

/**
 * Sends `call` to every node (at once, in order) and gathers the answers;
 * see {@link Gathering}. A node is counted once, whatever it answers; a
 * call that fails or is still pending at the deadline is a failure of that
 * node with its error's code (`KV_TIMEOUT` at the deadline; a node skipped
 * as unavailable by `standIns` is `KV_UNREACHABLE`).
 */
export function gather<T, C = undefined, Q = unknown>(
  nodes: readonly NodeInfo[],
  call: GatherCall<T, C>,
  options: GatherOptions<T, C> & { readonly result: (context: C) => Q },
): Gathering<T, Q>;
export function gather<T, C = undefined>(
  nodes: readonly NodeInfo[],
  call: GatherCall<T, C>,
  options: GatherOptions<T, C> & { readonly quorumValue: 'none' },
): Gathering<T, undefined>;
export function gather<T, C = undefined>(nodes: readonly NodeInfo[], call: GatherCall<T, C>, options: GatherOptions<T, C>): Gathering<T>;
export function gather<T, C = undefined>(nodes: readonly NodeInfo[], call: GatherCall<T, C>, options: GatherOptions<T, C>): Gathering<T, unknown> {
  const g = new Gather<T, C>(
    nodes,
    call,
    options,
    options.required,
    options.counted ?? 0,
    options.deadline,
    options.signal,
    options.context as C,
    options.zones,
    options.replicaSet,
  );
  g.begin(options.now);
  return g;
}

const noop = (): void => {};

/** Where {@link takeResolvers} leaves a new promise's resolving functions, for the constructor to take at once. */
let takenResolve: ((value: unknown) => void) | undefined;
let takenReject: ((reason: unknown) => void) | undefined;
/**
 * A promise executor made once: the executor runs synchronously inside
 * `new Promise`, so its caller finds the resolving functions here right
 * after. An arrow capturing the gather was a closure and a scope per gather.
 */
function takeResolvers(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  takenResolve = resolve;
  takenReject = reject;
}

/** `Gather.#state` bits. */
const SETTLED = 1;
const BEGINNING = 2;
const ALL_DONE = 4;

/**
 * What only some gathers need, in an object of its own made the first
 * time one of them does: a sloppy quorum's stand-ins, a zone quorum, a
 * failure, a timer or abort listener of its own, a caller reading `all`.
 */
interface Rare<T> {
  /** Per node, the primary it stands in for (made with the first stand-in). */
  standInFor: (string | undefined)[] | undefined;
  /** Nodes from 31 on that are closed (see `Gather.#closed`). */
  closedHigh: Set<number> | undefined;
  /** Nodes already replaced by a stand-in (or that found none): never replaced twice. */
  replaced: Set<number> | undefined;
  zones: ReadonlyMap<string, number> | undefined;
  /** With `zones`: answers per zone. */
  zoneAcks: Map<string, number> | undefined;
  failures: ReplicaFailure[] | undefined;
  timer: TimerHandle | undefined;
  offAbort: (() => void) | undefined;
  all: Promise<Gathered<T>> | undefined;
  resolveAll: ((g: Gathered<T>) => void) | undefined;
}

/**
 * The state of one quorum call: {@link gather} makes one from an options
 * object; a caller that makes one per operation (a coordinator) makes it
 * itself, with what is the same for every gather of a kind in a `policy`
 * made once and what differs as arguments (no options object per call: a
 * literal of ~20 fields was ~180 bytes a write for the collector), then
 * calls `begin`. The arguments mean what {@link GatherOptions}' fields of
 * the same names do.
 *
 * It runs for every operation, so it is kept
 * small: per-node state in a bit mask, flags in one number, answers in
 * one array (the `Gathered` view is built only when read), what is
 * the same for every gather of a kind in the shared policy, and what only
 * some gathers need (stand-ins, zones, failures, a timer or listener of
 * their own, `all`) in an object made the first time one of them does.
 */
export class Gather<T, C> implements Gathering<T, unknown>, Gathered<T>, HopWaiter, DeadlineWaiter, AnswerReceiver<unknown> {
  readonly quorum: Promise<unknown>;
  /** The nodes asked, stand-ins appended (a copy of the caller's list once one is). */
  #nodes: readonly NodeInfo[];
  readonly #call: GatherCall<T, C>;
  readonly #policy: GatherPolicy<T, C>;
  readonly #context: C;
  readonly #signal: AbortSignal | undefined;
  readonly #deadline: number;
  readonly #required: number;
  readonly #counted: number;
  readonly #replicaSet: ReplicaSet | undefined;
  #rare: Rare<T> | undefined;
  /** Nodes the caller gave (the first `#primaries` of `#nodes`). */
  readonly #primaries: number;
  /** Of those, how many have not answered or failed yet. */
  #primariesOpen: number;
  /** Bit i set: node i's answer no longer counts (it answered, failed or expired). Nodes from 31 on: `Rare.closedHigh`. */
  #closed = 0;
  /** SETTLED, BEGINNING (begin() asks the nodes: an answer given synchronously leaves #done to begin()), ALL_DONE. */
  #state = 0;
  /**
   * The answers kept, node id and answer by turns (`[id0, answer0, id1, …]`):
   * made with the first one kept (never when the policy's `answers` is
   * `'count'`), with two slots per node asked, the first `2 * #okCount`
   * used. One array of its exact size: a first push onto `[]` reserves 17
   * slots, ~150 bytes, and two arrays were ~50 bytes more than one.
   */
  #ok: unknown[] | undefined;
  /** Answers counted (kept in `#ok` unless they are only counted). */
  #okCount = 0;
  /** The deadline's place in the policy's `deadlines` queue. */
  #deadlineEntry: DeadlineEntry | undefined;
  /** Nodes whose answer still counts. */
  #open: number;
  /** Calls not settled yet (`all` waits for every one, even after the deadline). */
  #running: number;
  /** Slot in the policy's `hops` while the hop is pending (-1: none). */
  #hopSlot = -1;
  #resolve: (value: unknown) => void;
  #reject: (e: unknown) => void;

  constructor(
    nodes: readonly NodeInfo[],
    call: GatherCall<T, C>,
    policy: GatherPolicy<T, C>,
    required: number,
    counted: number,
    deadline: number,
    signal: AbortSignal | undefined,
    context: C,
    zones: ReadonlyMap<string, number> | undefined,
    replicaSet: ReplicaSet | undefined,
  ) {
    this.#nodes = nodes;
    this.#call = call;
    this.#policy = policy;
    this.#context = context;
    this.#signal = signal;
    this.#deadline = deadline;
    this.#required = required;
    this.#counted = counted;
    this.#replicaSet = replicaSet;
    this.#primaries = nodes.length;
    this.#primariesOpen = nodes.length;
    this.#open = nodes.length;
    this.#running = nodes.length;
    if (zones !== undefined) this.#more().zones = zones;
    this.quorum = new Promise<unknown>(takeResolvers);
    this.#resolve = takenResolve!;
    this.#reject = takenReject!;
    takenResolve = takenReject = undefined;
  }

  /** The rarely needed state, made at the first need. */
  #more(): Rare<T> {
    return (this.#rare ??= {
      standInFor: undefined,
      closedHigh: undefined,
      replaced: undefined,
      zones: undefined,
      zoneAcks: undefined,
      failures: undefined,
      timer: undefined,
      offAbort: undefined,
      all: undefined,
      resolveAll: undefined,
    });
  }

  /**
   * Rejects `quorum`, marked handled first: the caller may ignore it after
   * an early failure path. Only here, not at construction: a handler
   * attached to every gathering was a promise and a reaction per operation.
   */
  #fail(error: Error): void {
    this.quorum.catch(noop);
    this.#settle(false, error);
  }

  /**
   * Settles `quorum` and lets go of its resolving functions: a write's
   * gather lives on until its last replica answered, well past its quorum.
   */
  #settle(ok: boolean, value: unknown): void {
    const settle = ok ? this.#resolve : this.#reject;
    this.#resolve = this.#reject = noop;
    settle(value);
  }

  get all(): Promise<Gathered<T>> {
    const rare = this.#more();
    if (rare.all === undefined) {
      rare.all = (this.#state & ALL_DONE) !== 0 ? Promise.resolve<Gathered<T>>(this) : this.#allPromise(rare);
    }
    return rare.all;
  }

  #allPromise(rare: Rare<T>): Promise<Gathered<T>> {
    return new Promise<Gathered<T>>((resolve) => {
      rare.resolveAll = resolve;
    });
  }

  get ok(): ReadonlyMap<string, T> {
    const map = new Map<string, T>();
    const ok = this.#ok;
    if (ok !== undefined) for (let i = 0; i < this.#okCount; i++) map.set(ok[2 * i] as string, ok[2 * i + 1] as T);
    return map;
  }

  get failures(): readonly ReplicaFailure[] {
    return this.#rare?.failures?.slice() ?? [];
  }

  #failure(node: string, code: ErrorCode): void {
    (this.#more().failures ??= []).push({ node, code });
  }

  /** Every node the caller gave has answered or failed: no hop is needed any more. */
  get hopSettled(): boolean {
    return this.#primariesOpen === 0;
  }

  /**
   * Asks every node (replacing the unavailable ones when sloppy), then
   * settles at once if nothing needs asking; once, right after construction. `now`: the clock's reading as
   * the gather starts, if the caller has just taken it (the hop is timed from it).
   */
  begin(now: number | undefined): void {
    const policy = this.#policy;
    const standIns = policy.standIns;
    // Calls may answer synchronously (a local read): the end of this method settles what they decided.
    this.#state |= BEGINNING;
    for (let i = 0; i < this.#primaries; i++) {
      // An unavailable node is skipped only for a stand-in: with none left it is asked anyway.
      if (standIns === undefined || standIns.available(this.#nodes[i]!) || !this.#skip(i)) this.#ask(i);
    }
    this.#state &= ~BEGINNING;
    if (this.#running > 0) {
      if (policy.timer !== false) {
        if (policy.deadlines !== undefined) this.#deadlineEntry = policy.deadlines.push(this, this.#deadline);
        else this.#armTimer();
      }
      if (this.#signal) this.#listen(this.#signal);
      if (standIns !== undefined && policy.hops !== undefined && this.#primariesOpen > 0) this.#hopSlot = policy.hops.push(this, now);
    }
    if (this.#signal?.aborted) this.#aborted();
    this.#finish();
    if (this.#running === 0) this.#done();
  }

  // The closures below are made in methods of their own: a closure in begin()
  // or #ask() would allocate their scope on every call (every operation), not
  // only when the closure is needed.

  /** A timer of this gather's own for its deadline. */
  #armTimer(): void {
    const clock = this.#policy.clock;
    this.#more().timer = clock.setTimeout(() => this.#expire(), Math.max(0, this.#deadline - clock.now()));
  }

  /** Listens to the caller's signal until every call settled. */
  #listen(signal: AbortSignal): void {
    this.#more().offAbort = onAbort(signal, () => this.#aborted());
  }

  /** A call that answered with a promise: its outcome is counted when it settles. */
  #await(i: number, node: NodeInfo, pending: Promise<T>): void {
    const settle = this.#policy.settle;
    pending.then(
      settle === undefined ? (value) => this.#answered(i, node.id, value) : (value) => this.#answeredAs(i, node, value, settle),
      (err: unknown) => this.#failed(i, node.id, err),
    );
  }

  /** The deadline passed (a {@link DeadlineQueue} calls this). */
  deadlineDue(): void {
    this.#deadlineEntry = undefined;
    this.#expire();
  }

  /** The hop passed: every node still silent gets a stand-in (its own call goes on until the deadline). */
  hopDue(): void {
    this.#hopSlot = -1;
    const standIns = this.#policy.standIns;
    if (standIns === undefined) return;
    for (let i = 0; i < this.#primaries; i++) {
      if (this.#isClosed(i) || this.#rare?.replaced?.has(i) === true) continue;
      standIns.silent(this.#nodes[i]!.id);
      this.#replace(i);
    }
    this.#finish();
  }

  #ask(i: number): void {
    const node = this.#nodes[i]!;
    let pending: T | Promise<T> | typeof SENT;
    try {
      pending = this.#call(node, this.#signal, this.#rare?.standInFor?.[i], this, i, this.#context);
    } catch (err) {
      pending = Promise.reject(err);
    }
    // Sent with this gather as the receiver: answered() or failed() follows (perhaps already came).
    if (pending === SENT) return;
    // A call that answered synchronously (no promise) is counted at once.
    if (!(pending instanceof Promise)) return this.#answered(i, node.id, pending);
    this.#await(i, node, pending);
  }

  /** The answer of request `i`, sent with this gather as its receiver (see {@link SENT}). */
  answered(i: number, value: unknown): void {
    const node = this.#nodes[i]!;
    const settle = this.#policy.settle;
    if (settle === undefined) this.#answered(i, node.id, value as T);
    else this.#answeredAs(i, node, value, settle);
  }

  /** Request `i`, sent with this gather as its receiver, failed. */
  failed(i: number, error: Error): void {
    // A request listens on the caller's signal too, and got to hear of the
    // abort first (synchronously, unlike a promise's rejection): the gather
    // ends as aborted, not as a quorum that the aborted requests made impossible.
    if (this.#signal?.aborted === true) this.#aborted();
    this.#failed(i, this.#nodes[i]!.id, error);
  }

  /** An asynchronous answer through the policy's `settle`. */
  #answeredAs(i: number, node: NodeInfo, value: unknown, settle: (value: unknown, node: NodeInfo, context: C) => T): void {
    let answer: T;
    try {
      answer = settle(value, node, this.#context);
    } catch (err) {
      return this.#failed(i, node.id, err);
    }
    this.#answered(i, node.id, answer);
  }

  /**
   * Node i is not available: if a stand-in is found, node i is not asked
   * (it fails as unreachable) and the stand-in is; false when none is left.
   */
  #skip(i: number): boolean {
    const node = this.#standIn(i);
    if (node === undefined) return false;
    this.#close(i);
    this.#open--;
    this.#running--;
    this.#failure(this.#nodes[i]!.id, ErrorCodes.UNREACHABLE);
    (this.#more().replaced ??= new Set()).add(i);
    this.#add(node, i);
    return true;
  }

  /** A stand-in for node i, unless the caller aborted or the deadline passed. */
  #standIn(i: number): NodeInfo | undefined {
    const p = this.#policy;
    if (p.standIns === undefined || this.#replicaSet === undefined) return undefined;
    if (this.#signal?.aborted || p.clock.now() >= this.#deadline) return undefined;
    return p.standIns.pick(this.#replicaSet, this.#rare?.standInFor?.[i] ?? this.#nodes[i]!.id, this.#nodes);
  }

  /**
   * Adds a stand-in for node i (once per node) while the caller has not
   * aborted and the deadline has not passed: it is asked at once and counts
   * like any node.
   */
  #replace(i: number): void {
    if (this.#policy.standIns === undefined) return;
    (this.#more().replaced ??= new Set()).add(i);
    const node = this.#standIn(i);
    if (node !== undefined) this.#add(node, i);
  }

  /** Asks `node` as the stand-in of node i. */
  #add(node: NodeInfo, i: number): void {
    const rare = this.#more();
    const target = rare.standInFor?.[i] ?? this.#nodes[i]!.id;
    if (rare.standInFor === undefined) {
      // A copy: the caller's list may be frozen (a ring's), and is the caller's.
      const copy: NodeInfo[] = [];
      for (let k = 0; k < this.#nodes.length; k++) copy.push(this.#nodes[k]!);
      this.#nodes = copy;
      rare.standInFor = [];
    }
    const j = this.#nodes.length;
    (this.#nodes as NodeInfo[]).push(node);
    rare.standInFor[j] = target;
    this.#open++;
    this.#running++;
    this.#ask(j);
  }

  #isClosed(i: number): boolean {
    return i < 31 ? (this.#closed & (1 << i)) !== 0 : this.#rare?.closedHigh?.has(i) === true;
  }

  /** Marks node i closed; false if it already was. */
  #close(i: number): boolean {
    if (i < 31) {
      const bit = 1 << i;
      if ((this.#closed & bit) !== 0) return false;
      this.#closed |= bit;
    } else {
      const high = (this.#more().closedHigh ??= new Set());
      if (high.has(i)) return false;
      high.add(i);
    }
    if (i < this.#primaries && --this.#primariesOpen === 0 && this.#hopSlot >= 0) {
      // Every node answered before the hop: the queue lets go of this gather now.
      this.#policy.hops?.release(this.#hopSlot);
      this.#hopSlot = -1;
    }
    return true;
  }

  #answered(i: number, id: string, value: T): void {
    const policy = this.#policy;
    policy.standIns?.answered(id);
    if (this.#close(i)) {
      this.#open--;
      if (policy.answers !== 'count') this.#keep(id, value);
      this.#okCount++;
      const zones = this.#rare?.zones;
      if (zones !== undefined) this.#zoneAnswered(this.#nodes[i]!.zone);
      this.#finish();
    }
    if (--this.#running === 0 && (this.#state & BEGINNING) === 0) this.#done();
  }

  #zoneAnswered(zone: string | undefined): void {
    if (zone === undefined) return;
    const rare = this.#more();
    const acks = (rare.zoneAcks ??= new Map());
    acks.set(zone, (acks.get(zone) ?? 0) + 1);
  }

  /** Keeps answer number `#okCount` (stand-ins may add nodes: the array then grows). */
  #keep(id: string, value: T): void {
    const at = 2 * this.#okCount;
    const ok = (this.#ok ??= new Array<unknown>(2 * this.#nodes.length));
    if (at < ok.length) {
      ok[at] = id;
      ok[at + 1] = value;
    } else ok.push(id, value);
  }

  #failed(i: number, id: string, err: unknown): void {
    if (this.#close(i)) {
      this.#open--;
      this.#failure(id, toKvError(err).code);
      if (this.#policy.standIns !== undefined && this.#rare?.replaced?.has(i) !== true) this.#replace(i);
      this.#finish();
    }
    if (--this.#running === 0 && (this.#state & BEGINNING) === 0) this.#done();
  }

  #aborted(): void {
    if ((this.#state & SETTLED) !== 0) return;
    this.#state |= SETTLED;
    this.#fail(new AbortError(undefined, { cause: this.#signal?.reason }));
  }

  /** Every call settled: release the timer and listener. */
  #done(): void {
    const policy = this.#policy;
    if (this.#deadlineEntry !== undefined) {
      policy.deadlines?.cancel(this.#deadlineEntry);
      this.#deadlineEntry = undefined;
    }
    this.#state |= ALL_DONE;
    const rare = this.#rare;
    if (rare !== undefined) {
      if (rare.timer !== undefined) policy.clock.clearTimeout(rare.timer);
      rare.offAbort?.();
      rare.resolveAll?.(this);
    }
    policy.onAll?.(this, this.#context);
  }

  #expire(): void {
    if (this.#rare !== undefined) this.#rare.timer = undefined;
    for (let i = 0; i < this.#nodes.length; i++) {
      if (this.#close(i)) this.#failure(this.#nodes[i]!.id, ErrorCodes.TIMEOUT);
    }
    // The requests themselves carry the same deadline and end on their own.
    this.#open = 0;
    this.#finish();
  }

  #finish(): void {
    if ((this.#state & SETTLED) !== 0) return;
    const zones = this.#rare?.zones;
    if (zones !== undefined) return this.#finishZones(zones);
    const required = this.#required;
    const acks = this.#counted + this.#okCount;
    if (acks >= required) this.#met();
    else if (acks + this.#open < required) {
      this.#state |= SETTLED;
      this.#fail(new QuorumNotMetError(this.#policy.operation, required, acks, this.failures));
    }
  }

  /** The quorum is met: `quorum` resolves with what the policy asks for. */
  #met(): void {
    this.#state |= SETTLED;
    const p = this.#policy;
    if (p.result === undefined) {
      this.#settle(true, p.quorumValue === 'none' ? undefined : this);
      return;
    }
    let value: unknown;
    try {
      value = p.result(this.#context);
    } catch (err) {
      // Not marked handled (as #fail does): it is the caller's own failure, on the promise it returns.
      this.#settle(false, err);
      return;
    }
    this.#settle(true, value);
  }

  /** {@link Gather.#finish} for a per-zone quorum. */
  #finishZones(need: ReadonlyMap<string, number>): void {
    let met = true;
    let impossible = false;
    let acknowledged = this.#counted;
    const zoneAcks = this.#rare?.zoneAcks;
    for (const [zone, count] of need) {
      const acks = zoneAcks?.get(zone) ?? 0;
      acknowledged += Math.min(acks, count);
      if (acks >= count) continue;
      met = false;
      let open = 0;
      for (let i = 0; i < this.#nodes.length; i++) if (this.#nodes[i]!.zone === zone && !this.#isClosed(i)) open++;
      if (acks + open < count) impossible = true;
    }
    if (met) this.#met();
    else if (impossible) {
      this.#state |= SETTLED;
      this.#fail(new QuorumNotMetError(this.#policy.operation, this.#required, acknowledged, this.failures));
    }
  }
}
