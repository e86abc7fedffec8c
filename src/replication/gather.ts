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

export interface GatherOptions<T = unknown, C = undefined> {
  readonly operation: 'read' | 'write';
  /** Successful answers needed from distinct nodes. */
  readonly required: number;
  /** Successes already counted (the coordinator's own write). */
  readonly counted?: number;
  /** Absolute deadline (clock ms). */
  readonly deadline: number;
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
  readonly signal?: AbortSignal | undefined;
  readonly clock: Clock;
  /**
   * Sloppy quorum: a node that is not available, fails, or (with `hops`)
   * has not answered within a hop gets a stand-in from `standIns.pick`
   * (asked with the same call, `standInFor` set), whose answer counts like
   * any node's; a stand-in that fails is replaced in turn, while the
   * deadline has not passed. Absent: a strict quorum of `nodes`.
   */
  readonly standIns?: StandInPolicy | undefined;
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
   * What the call, `settle`, `onAll` and `result` get as their `context`
   * (see {@link GatherCall}): with it they can be functions made once, not
   * closures made per gather (~250 bytes less per quorum call for the
   * collector; a coordinator makes one per operation).
   */
  readonly context?: C;
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
  const g = new Gather<T, C>(nodes, call, options);
  g.begin();
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

/**
 * The state of one quorum call. It runs for every operation, so it is kept
 * small: per-node state in a bit mask, answers in parallel arrays (the
 * `Gathered` view is built only when read), no timer or abort listener
 * unless asked for. What only a sloppy quorum's stand-ins need (a copy of
 * the node list, whom each stands in for, who was replaced) is allocated
 * the first time a stand-in is added.
 */
class Gather<T, C> implements Gathering<T, unknown>, Gathered<T>, HopWaiter, DeadlineWaiter, AnswerReceiver<unknown> {
  readonly quorum: Promise<unknown>;
  /** Made when `all` is first read (most callers take `onAll`). */
  #all: Promise<Gathered<T>> | undefined;
  #allDone = false;
  /** The nodes asked, stand-ins appended (a copy of the caller's list once one is). */
  #nodes: readonly NodeInfo[];
  /** Per node, the primary it stands in for (allocated with the first stand-in). */
  #standInFor: (string | undefined)[] | undefined;
  readonly #call: GatherCall<T, C>;
  readonly #options: GatherOptions<T, C>;
  /** Nodes the caller gave (the first `#primaries` of `#nodes`). */
  readonly #primaries: number;
  /** Of those, how many have not answered or failed yet. */
  #primariesOpen: number;
  /** Bit i set: node i's answer no longer counts (it answered, failed or expired). Nodes from 31 on: a Set. */
  #closed = 0;
  #closedHigh: Set<number> | undefined;
  /** Nodes already replaced by a stand-in (or that found none): never replaced twice. */
  #replaced: Set<number> | undefined;
  /**
   * Made with the first answer kept (never when `options.answers` is
   * `'count'`), with a slot per node asked (the first `#okCount` used): a
   * first push onto `[]` reserves 17 slots, ~150 bytes, per array.
   */
  #okIds: string[] | undefined;
  /** Answers counted (kept in `#okIds`/`#okValues` unless `options.answers` is `'count'`). */
  #okCount = 0;
  /** With `zones`: answers per zone. */
  #zoneAcks: Map<string, number> | undefined;
  #okValues: T[] | undefined;
  /** Made at the first failure (most gathers have none). */
  #failures: ReplicaFailure[] | undefined;
  #timer: TimerHandle | undefined;
  #deadline: DeadlineEntry | undefined;
  /** Nodes whose answer still counts. */
  #open: number;
  /** Calls not settled yet (`all` waits for every one, even after the deadline). */
  #running: number;
  #settled = false;
  /** True while begin() asks the nodes: an answer given synchronously then leaves #done to begin(). */
  #beginning = false;
  /** Slot in `options.hops` while the hop is pending (-1: none). */
  #hopSlot = -1;
  #offAbort: () => void = noop;
  #resolve!: (value: unknown) => void;
  #reject!: (e: unknown) => void;
  #resolveAll: ((g: Gathered<T>) => void) | undefined;

  constructor(nodes: readonly NodeInfo[], call: GatherCall<T, C>, options: GatherOptions<T, C>) {
    this.#nodes = nodes;
    this.#call = call;
    this.#options = options;
    this.#primaries = nodes.length;
    this.#primariesOpen = nodes.length;
    this.#open = nodes.length;
    this.#running = nodes.length;
    this.quorum = new Promise<unknown>(takeResolvers);
    this.#resolve = takenResolve!;
    this.#reject = takenReject!;
    takenResolve = takenReject = undefined;
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
    if (this.#all === undefined) {
      this.#all = this.#allDone
        ? Promise.resolve<Gathered<T>>(this)
        : new Promise<Gathered<T>>((resolve) => {
            this.#resolveAll = resolve;
          });
    }
    return this.#all;
  }

  get ok(): ReadonlyMap<string, T> {
    const map = new Map<string, T>();
    const ids = this.#okIds;
    const values = this.#okValues;
    if (ids !== undefined && values !== undefined) for (let i = 0; i < this.#okCount; i++) map.set(ids[i]!, values[i]!);
    return map;
  }

  get failures(): readonly ReplicaFailure[] {
    return this.#failures?.slice() ?? [];
  }

  #failure(node: string, code: ErrorCode): void {
    (this.#failures ??= []).push({ node, code });
  }

  /** Every node the caller gave has answered or failed: no hop is needed any more. */
  get hopSettled(): boolean {
    return this.#primariesOpen === 0;
  }

  /** Asks every node (replacing the unavailable ones when sloppy), then settles at once if nothing needs asking. */
  begin(): void {
    const options = this.#options;
    const policy = options.standIns;
    // Calls may answer synchronously (a local read): the end of this method settles what they decided.
    this.#beginning = true;
    for (let i = 0; i < this.#primaries; i++) {
      // An unavailable node is skipped only for a stand-in: with none left it is asked anyway.
      if (policy === undefined || policy.available(this.#nodes[i]!) || !this.#skip(i)) this.#ask(i);
    }
    this.#beginning = false;
    if (this.#running > 0) {
      if (options.timer !== false) {
        if (options.deadlines !== undefined) this.#deadline = options.deadlines.push(this, options.deadline);
        else this.#armTimer();
      }
      if (options.signal) this.#listen(options.signal);
      if (policy !== undefined && options.hops !== undefined && this.#primariesOpen > 0) this.#hopSlot = options.hops.push(this, options.now);
    }
    if (options.signal?.aborted) this.#aborted();
    this.#finish();
    if (this.#running === 0) this.#done();
  }

  // The closures below are made in methods of their own: a closure in begin()
  // or #ask() would allocate their scope on every call (every operation), not
  // only when the closure is needed.

  /** A timer of this gather's own for its deadline. */
  #armTimer(): void {
    const clock = this.#options.clock;
    this.#timer = clock.setTimeout(() => this.#expire(), Math.max(0, this.#options.deadline - clock.now()));
  }

  /** Listens to the caller's signal until every call settled. */
  #listen(signal: AbortSignal): void {
    this.#offAbort = onAbort(signal, () => this.#aborted());
  }

  /** A call that answered with a promise: its outcome is counted when it settles. */
  #await(i: number, node: NodeInfo, pending: Promise<T>): void {
    const settle = this.#options.settle;
    pending.then(
      settle === undefined ? (value) => this.#answered(i, node.id, value) : (value) => this.#answeredAs(i, node, value, settle),
      (err: unknown) => this.#failed(i, node.id, err),
    );
  }

  /** The deadline passed (a {@link DeadlineQueue} calls this). */
  deadlineDue(): void {
    this.#deadline = undefined;
    this.#expire();
  }

  /** The hop passed: every node still silent gets a stand-in (its own call goes on until the deadline). */
  hopDue(): void {
    this.#hopSlot = -1;
    const policy = this.#options.standIns;
    if (policy === undefined) return;
    for (let i = 0; i < this.#primaries; i++) {
      if (this.#isClosed(i) || this.#replaced?.has(i) === true) continue;
      policy.silent(this.#nodes[i]!.id);
      this.#replace(i);
    }
    this.#finish();
  }

  #ask(i: number): void {
    const node = this.#nodes[i]!;
    let pending: T | Promise<T> | typeof SENT;
    try {
      pending = this.#call(node, this.#options.signal, this.#standInFor?.[i], this, i, this.#options.context as C);
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
    const settle = this.#options.settle;
    if (settle === undefined) this.#answered(i, node.id, value as T);
    else this.#answeredAs(i, node, value, settle);
  }

  /** Request `i`, sent with this gather as its receiver, failed. */
  failed(i: number, error: Error): void {
    // A request listens on the caller's signal too, and got to hear of the
    // abort first (synchronously, unlike a promise's rejection): the gather
    // ends as aborted, not as a quorum that the aborted requests made impossible.
    if (this.#options.signal?.aborted === true) this.#aborted();
    this.#failed(i, this.#nodes[i]!.id, error);
  }

  /** An asynchronous answer through `options.settle`. */
  #answeredAs(i: number, node: NodeInfo, value: unknown, settle: (value: unknown, node: NodeInfo, context: C) => T): void {
    let answer: T;
    try {
      answer = settle(value, node, this.#options.context as C);
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
    (this.#replaced ??= new Set()).add(i);
    this.#add(node, i);
    return true;
  }

  /** A stand-in for node i, unless the caller aborted or the deadline passed. */
  #standIn(i: number): NodeInfo | undefined {
    const o = this.#options;
    if (o.standIns === undefined || o.replicaSet === undefined) return undefined;
    if (o.signal?.aborted || o.clock.now() >= o.deadline) return undefined;
    return o.standIns.pick(o.replicaSet, this.#standInFor?.[i] ?? this.#nodes[i]!.id, this.#nodes);
  }

  /**
   * Adds a stand-in for node i (once per node) while the caller has not
   * aborted and the deadline has not passed: it is asked at once and counts
   * like any node.
   */
  #replace(i: number): void {
    if (this.#options.standIns === undefined) return;
    (this.#replaced ??= new Set()).add(i);
    const node = this.#standIn(i);
    if (node !== undefined) this.#add(node, i);
  }

  /** Asks `node` as the stand-in of node i. */
  #add(node: NodeInfo, i: number): void {
    const target = this.#standInFor?.[i] ?? this.#nodes[i]!.id;
    if (this.#standInFor === undefined) {
      this.#nodes = this.#nodes.slice();
      this.#standInFor = [];
    }
    const j = this.#nodes.length;
    (this.#nodes as NodeInfo[]).push(node);
    this.#standInFor[j] = target;
    this.#open++;
    this.#running++;
    this.#ask(j);
  }

  #isClosed(i: number): boolean {
    return i < 31 ? (this.#closed & (1 << i)) !== 0 : this.#closedHigh?.has(i) === true;
  }

  /** Marks node i closed; false if it already was. */
  #close(i: number): boolean {
    if (i < 31) {
      const bit = 1 << i;
      if ((this.#closed & bit) !== 0) return false;
      this.#closed |= bit;
    } else {
      const high = (this.#closedHigh ??= new Set());
      if (high.has(i)) return false;
      high.add(i);
    }
    if (i < this.#primaries && --this.#primariesOpen === 0 && this.#hopSlot >= 0) {
      // Every node answered before the hop: the queue lets go of this gather now.
      this.#options.hops?.release(this.#hopSlot);
      this.#hopSlot = -1;
    }
    return true;
  }

  #answered(i: number, id: string, value: T): void {
    this.#options.standIns?.answered(id);
    if (this.#close(i)) {
      this.#open--;
      if (this.#options.answers !== 'count') this.#keep(id, value);
      this.#okCount++;
      const zone = this.#options.zones === undefined ? undefined : this.#nodes[i]!.zone;
      if (zone !== undefined) (this.#zoneAcks ??= new Map()).set(zone, (this.#zoneAcks?.get(zone) ?? 0) + 1);
      this.#finish();
    }
    if (--this.#running === 0 && !this.#beginning) this.#done();
  }

  /** Keeps answer number `#okCount` (stand-ins may add nodes: the arrays then grow). */
  #keep(id: string, value: T): void {
    const n = this.#okCount;
    if (this.#okIds === undefined || this.#okValues === undefined) {
      this.#okIds = new Array<string>(this.#nodes.length);
      this.#okValues = new Array<T>(this.#nodes.length);
    }
    if (n < this.#okIds.length) {
      this.#okIds[n] = id;
      this.#okValues[n] = value;
    } else {
      this.#okIds.push(id);
      this.#okValues.push(value);
    }
  }

  #failed(i: number, id: string, err: unknown): void {
    if (this.#close(i)) {
      this.#open--;
      this.#failure(id, toKvError(err).code);
      if (this.#options.standIns !== undefined && this.#replaced?.has(i) !== true) this.#replace(i);
      this.#finish();
    }
    if (--this.#running === 0 && !this.#beginning) this.#done();
  }

  #aborted(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#fail(new AbortError(undefined, { cause: this.#options.signal?.reason }));
  }

  /** Every call settled: release the timer and listener. */
  #done(): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    if (this.#deadline !== undefined) {
      this.#options.deadlines?.cancel(this.#deadline);
      this.#deadline = undefined;
    }
    this.#offAbort();
    this.#allDone = true;
    this.#resolveAll?.(this);
    this.#options.onAll?.(this, this.#options.context as C);
  }

  #expire(): void {
    this.#timer = undefined;
    for (let i = 0; i < this.#nodes.length; i++) {
      if (this.#close(i)) this.#failure(this.#nodes[i]!.id, ErrorCodes.TIMEOUT);
    }
    // The requests themselves carry the same deadline and end on their own.
    this.#open = 0;
    this.#finish();
  }

  #finish(): void {
    if (this.#settled) return;
    if (this.#options.zones !== undefined) return this.#finishZones(this.#options.zones);
    const { required, operation } = this.#options;
    const acks = (this.#options.counted ?? 0) + this.#okCount;
    if (acks >= required) this.#met();
    else if (acks + this.#open < required) {
      this.#settled = true;
      this.#fail(new QuorumNotMetError(operation, required, acks, this.failures));
    }
  }

  /** The quorum is met: `quorum` resolves with what the options ask for. */
  #met(): void {
    this.#settled = true;
    const o = this.#options;
    if (o.result === undefined) {
      this.#settle(true, o.quorumValue === 'none' ? undefined : this);
      return;
    }
    let value: unknown;
    try {
      value = o.result(o.context as C);
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
    let acknowledged = this.#options.counted ?? 0;
    for (const [zone, count] of need) {
      const acks = this.#zoneAcks?.get(zone) ?? 0;
      acknowledged += Math.min(acks, count);
      if (acks >= count) continue;
      met = false;
      let open = 0;
      for (let i = 0; i < this.#nodes.length; i++) if (this.#nodes[i]!.zone === zone && !this.#isClosed(i)) open++;
      if (acks + open < count) impossible = true;
    }
    if (met) this.#met();
    else if (impossible) {
      this.#settled = true;
      this.#fail(new QuorumNotMetError(this.#options.operation, this.#options.required, acknowledged, this.failures));
    }
  }
}
