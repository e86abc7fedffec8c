import { setMaxListeners } from 'node:events';
import {
  ErrorCodes,
  KvError,
  QuorumNotMetError,
  toKvError,
  type ReplicaFailure,
} from '../errors/index.js';
import { sameBytes } from '../internal/bytes.js';
import type { Clock } from '../internal/clock.js';
import { onAbort, throwIfAborted } from '../internal/signals.js';
import { ReplicaSet, type MemberStatus, type NodeInfo, type Ring } from '../ring/index.js';
import type { Transport, WireMessage } from '../transport/index.js';
import {
  SiblingSet,
  VectorClock,
  decodeClock,
  decodeSiblingSet,
  encodeClock,
  encodeSiblingSet,
} from '../versioning/index.js';
import { gather } from './gather.js';
import { toKeyRef } from './key-ref.js';
import {
  MAX_WIRE_KEY,
  MAX_WIRE_RECORD,
  failuresFromWire,
  failuresToWire,
  readBoolean,
  readBytes,
  readInt,
  readOptionalBytes,
  readOptionalNumber,
} from './messages.js';
import { corruptStoredRecord, type ReplicaServer } from './replica-server.js';
import type { KeyRef, WriteRequest } from './types.js';

/** How long read repair may take after the read answered, ms. */
const READ_REPAIR_TIMEOUT = 5_000;
/** Largest encoded clock `kv.coordinate` accepts, in bytes. */
const MAX_WIRE_CLOCK = 1024 * 1024;
/** Longest forwarded deadline accepted, ms. */
const MAX_FORWARD_TIMEOUT = 24 * 3600 * 1000;

const EMPTY = SiblingSet.empty<Uint8Array>();

/**
 * The replica answers of one read, decoded once per distinct encoding: in
 * the steady state every replica returns the same bytes, so a read decodes
 * one record, and its repair reuses the decoded sets and their bytes.
 */
class ReadAnswers {
  readonly #bytes: Uint8Array[] = [];
  readonly #sets: SiblingSet<Uint8Array>[] = [];

  /**
   * The set of one answer. A record that does not decode is that replica's
   * failure: `KV_STORAGE_FAILURE` for this node's own (`local`), else
   * `KV_INVALID_MESSAGE` (what `decodeSiblingSet` throws).
   */
  decode(key: Uint8Array, bytes: Uint8Array | undefined, local: boolean): SiblingSet<Uint8Array> {
    if (bytes === undefined) return EMPTY;
    for (let i = 0; i < this.#bytes.length; i++) if (sameBytes(this.#bytes[i]!, bytes)) return this.#sets[i]!;
    let set: SiblingSet<Uint8Array>;
    try {
      set = decodeSiblingSet(bytes);
    } catch (err) {
      throw local ? corruptStoredRecord(key, err) : err;
    }
    this.#bytes.push(bytes);
    this.#sets.push(set);
    return set;
  }

  /** The encoding of a set decoded here, or a fresh one. */
  encode(set: SiblingSet<Uint8Array>): Uint8Array {
    const i = this.#sets.indexOf(set);
    return i >= 0 ? this.#bytes[i]! : encodeSiblingSet(set);
  }
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
}

/** Per-call options of the coordinator. */
export interface CoordinatorCallOptions {
  /** Absolute deadline on the coordinator's clock. */
  readonly deadline: number;
  readonly signal?: AbortSignal | undefined;
}

const alive = (): MemberStatus => 'alive';
const noop = (): void => {};

function expectApplied(answer: WireMessage): void {
  if (answer.type !== 'kv.applied') throw new KvError(ErrorCodes.INVALID_MESSAGE, `unexpected answer ${answer.type}`);
}

/**
 * Runs quorum reads and writes for any key, from any node.
 *
 * - Read: ask the key's N replicas, answer with the merge of the first R
 *   distinct answers, then — once every replica answered or the deadline
 *   passed — send the merge of all answers to the replicas that were stale or
 *   missing (read repair; it merges, it never creates a version). A replica
 *   whose record does not decode counts as that replica's failure.
 * - Write: the targets come from the key's {@link ReplicaSet} (its
 *   primaries: strict quorum; a sloppy quorum will take
 *   `ReplicaSet.select(isAvailable)` with its fallbacks). The coordinator
 *   must be a replica (Dynamo §4.5): if this node is one of the targets it
 *   creates the version, stores it and replicates its whole sibling set to
 *   the others, counting itself toward W; otherwise it forwards the write to
 *   the first reachable target.
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
  readonly #untrack = (): void => {
    if (--this.#background === 0 && this.#drained) {
      this.#drained();
      this.#drained = undefined;
      this.#idle = undefined;
    }
  };
  readonly #tokenOf = (bytes: Uint8Array): number => this.#o.ring().token(bytes);

  constructor(options: QuorumCoordinatorOptions) {
    this.#o = options;
    this.#status = options.status ?? alive;
    // Every background request listens on this signal; many may be in flight.
    setMaxListeners(0, this.#stopping.signal);
    // Requests and gathers subscribe to it through onAbort, which adds the
    // signal's one DOM listener with the first subscriber and removes it with
    // the last: keeping one subscriber for the coordinator's life saves an
    // addEventListener/removeEventListener pair on every forwarded write.
    onAbort(this.#stopping.signal, noop);
  }

  /** Quorum read; resolves with the merged sibling set (empty if no replica has the key). */
  async read(key: KeyRef | Uint8Array, r: number, options: CoordinatorCallOptions): Promise<SiblingSet<Uint8Array>> {
    throwIfAborted(options.signal);
    const ref = toKeyRef(key, this.#tokenOf);
    const replicas = this.#o.ring().preferenceListForToken(ref.token, this.#o.n);
    const answers = new ReadAnswers();
    const { quorum, all } = gather(replicas, (node, signal) => this.#readFrom(node, ref, answers, options.deadline, signal), {
      operation: 'read',
      required: Math.min(r, replicas.length),
      deadline: options.deadline,
      signal: options.signal,
      clock: this.#o.clock,
    });
    this.#track(all.then((done) => this.#repair(ref, replicas, done.ok, answers)));
    return mergeAll((await quorum).ok.values());
  }

  /** Quorum write. Rejects with `KV_QUORUM_NOT_MET` when fewer than W replicas stored it in time. */
  async write(key: KeyRef | Uint8Array, write: WriteRequest, options: CoordinatorCallOptions): Promise<void> {
    throwIfAborted(options.signal);
    const ref = toKeyRef(key, this.#tokenOf);
    const replicaSet = ReplicaSet.forToken(this.#o.ring(), ref.token, this.#o.n);
    // Strict quorum: the primaries, whatever the failure detector says.
    const targets = replicaSet.primaries;
    if (replicaSet.isPrimary(this.#o.self)) return this.#coordinateLocally(ref, targets, write, options);
    return this.#forward(ref, targets, write, options);
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
        { value, tombstone, overwrite, context, w, timestamp },
        { deadline: this.#o.clock.now() + timeout, signal: this.#stopping.signal },
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
    this.#stopping.abort();
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

  /** A replica's record, decoded (empty when it has none). */
  #readFrom(
    node: NodeInfo,
    ref: KeyRef,
    answers: ReadAnswers,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<SiblingSet<Uint8Array>> {
    if (node.id === this.#o.self) {
      return this.#o.replica.readEncoded(ref).then((bytes) => answers.decode(ref.bytes, bytes, true));
    }
    return this.#request(node, { type: 'kv.read', cluster: this.#o.cluster, key: ref.bytes }, deadline, signal).then((answer) => {
      if (answer.type !== 'kv.record') throw new KvError(ErrorCodes.INVALID_MESSAGE, `unexpected answer ${answer.type}`);
      return answers.decode(ref.bytes, readOptionalBytes(answer, 'record', MAX_WIRE_RECORD), false);
    });
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
    return this.#request(node, { type: 'kv.apply', cluster: this.#o.cluster, key: ref.bytes, record }, deadline, signal).then(
      expectApplied,
    );
  }

  async #coordinateLocally(
    ref: KeyRef,
    targets: readonly NodeInfo[],
    write: WriteRequest,
    options: CoordinatorCallOptions,
  ): Promise<void> {
    const { set, encoded } = await this.#o.replica.coordinateWrite(ref, write);
    const self = this.#o.self;
    const others: NodeInfo[] = [];
    for (const node of targets) if (node.id !== self) others.push(node);
    const { quorum, all } = gather(others, (node, signal) => this.#applyTo(node, ref, set, encoded, options.deadline, signal), {
      operation: 'write',
      required: Math.min(write.w, targets.length),
      counted: 1,
      deadline: options.deadline,
      // Every call is a request whose timeout is this deadline.
      timer: false,
      signal: options.signal,
      clock: this.#o.clock,
    });
    this.#track(all);
    await quorum;
  }

  async #forward(ref: KeyRef, targets: readonly NodeInfo[], write: WriteRequest, options: CoordinatorCallOptions): Promise<void> {
    // Targets the failure detector believes up first, in preference order.
    const order = this.#upFirst(targets);
    const failures: ReplicaFailure[] = [];
    const context = write.context.size === 0 ? null : encodeClock(write.context);
    for (const node of order) {
      const timeout = options.deadline - this.#o.clock.now();
      if (timeout <= 0) {
        // Out of time before this target could be asked: it is the one that timed out.
        failures.push({ node: node.id, code: ErrorCodes.TIMEOUT });
        break;
      }
      const message: WireMessage = {
        type: 'kv.coordinate',
        cluster: this.#o.cluster,
        key: ref.bytes,
        value: write.value ?? null,
        tombstone: write.tombstone,
        overwrite: write.overwrite,
        context,
        w: write.w,
        // Leave the forwarder a little time to hear the answer.
        timeout: Math.max(0, Math.floor(timeout * 0.9)),
        timestamp: write.timestamp ?? null,
      };
      let answer: WireMessage;
      try {
        answer = await this.#request(node, message, options.deadline, options.signal);
      } catch (err) {
        const e = toKvError(err);
        // A replica that refused the write itself (too many siblings: nothing stored) answers for all.
        if (e.code === ErrorCodes.ABORTED || e.code === ErrorCodes.TOO_MANY_SIBLINGS) throw e;
        failures.push({ node: node.id, code: e.code });
        // Only a peer that certainly did nothing may be replaced by the next one;
        // after a timeout the write may have happened, so a retry could duplicate it.
        if (e.code === ErrorCodes.UNREACHABLE || e.code === ErrorCodes.NOT_STARTED || e.code === ErrorCodes.UNKNOWN_PEER) continue;
        break;
      }
      if (answer.type === 'kv.written') return;
      if (answer.type === 'kv.write-failed') {
        throw new QuorumNotMetError(
          'write',
          readInt(answer, 'required', 0, 1_000),
          readInt(answer, 'acknowledged', 0, 1_000),
          failuresFromWire(answer['failures']),
        );
      }
      throw new KvError(ErrorCodes.INVALID_MESSAGE, `unexpected answer ${answer.type}`);
    }
    throw new QuorumNotMetError('write', Math.min(write.w, targets.length), 0, failures);
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

  #upFirst(targets: readonly NodeInfo[]): readonly NodeInfo[] {
    const status = this.#status;
    let down: NodeInfo[] | undefined;
    let up: NodeInfo[] | undefined;
    for (let i = 0; i < targets.length; i++) {
      const node = targets[i]!;
      if (status(node.id) === 'down') {
        if (down === undefined) {
          down = [];
          up = targets.slice(0, i);
        }
        down.push(node);
      } else up?.push(node);
    }
    return down === undefined ? targets : [...up!, ...down];
  }

  /** Keeps `p` (which never rejects, or whose rejection nobody needs) until it settles; `stop()` waits for it. */
  #track(p: Promise<unknown>): void {
    this.#background++;
    p.then(this.#untrack, this.#untrack);
  }
}
