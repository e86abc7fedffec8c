import { setMaxListeners } from 'node:events';
import {
  ErrorCodes,
  KvError,
  QuorumNotMetError,
  toKvError,
  type ReplicaFailure,
} from '../errors/index.js';
import type { Clock } from '../internal/clock.js';
import { throwIfAborted } from '../internal/signals.js';
import type { NodeInfo, Ring } from '../ring/index.js';
import type { Transport, WireMessage } from '../transport/index.js';
import { SiblingSet, VectorClock, decodeSiblingSet, encodeSiblingSet } from '../versioning/index.js';
import { gather } from './gather.js';
import {
  MAX_WIRE_KEY,
  failuresFromWire,
  failuresToWire,
  readBoolean,
  readBytes,
  readInt,
  readOptionalBytes,
  readOptionalString,
} from './messages.js';
import { sameBytes } from '../internal/bytes.js';
import type { ReplicaServer } from './replica-server.js';

/** Decoded replica records, keyed by their bytes (encodings are canonical). */
type DecodeCache = { bytes: Uint8Array; set: SiblingSet<Uint8Array> }[];

/**
 * Decodes replica answers once per distinct encoding — in the steady state
 * every replica returns the same bytes, and the read and its repair share one
 * cache — and merges them. `decoded[i]` is the set of the i-th answer (empty
 * if it had none); `distinct` counts distinct answers, "none" included.
 */
function decodeAndMerge(
  answers: Iterable<Uint8Array | undefined>,
  cache: DecodeCache = [],
): { merged: SiblingSet<Uint8Array>; decoded: SiblingSet<Uint8Array>[]; distinct: number } {
  const decoded: SiblingSet<Uint8Array>[] = [];
  const used = new Set<SiblingSet<Uint8Array>>();
  let missing = false;
  let merged = SiblingSet.empty<Uint8Array>();
  for (const bytes of answers) {
    if (bytes === undefined) {
      missing = true;
      decoded.push(SiblingSet.empty<Uint8Array>());
      continue;
    }
    let hit = cache.find((c) => sameBytes(c.bytes, bytes));
    if (!hit) {
      hit = { bytes, set: decodeSiblingSet(bytes) };
      cache.push(hit);
    }
    if (!used.has(hit.set)) {
      used.add(hit.set);
      merged = merged.merge(hit.set);
    }
    decoded.push(hit.set);
  }
  return { merged, decoded, distinct: used.size + (missing ? 1 : 0) };
}

/** Health of a node as the failure detector sees it. */
export type NodeStatus = 'alive' | 'suspect' | 'down';

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
  /** Failure-detector view; forwarded writes skip nodes known down. @default every node alive */
  readonly status?: (id: string) => NodeStatus;
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

/** A write to coordinate. */
export interface CoordinatedWrite {
  readonly value: Uint8Array | undefined;
  readonly tombstone: boolean;
  readonly context: VectorClock;
  /** Supersede whatever the coordinating replica holds (LWW mode). */
  readonly overwrite: boolean;
  readonly w: number;
}

/**
 * Runs quorum reads and writes for any key, from any node.
 *
 * - Read: ask the key's N replicas, answer with the merge of the first R
 *   distinct answers, then — once every replica answered or the deadline
 *   passed — send the merge of all answers to the replicas that were stale or
 *   missing (read repair; it merges, it never creates a version).
 * - Write: the coordinator must be a replica (Dynamo §4.5): if this node is
 *   among the key's N it creates the version, stores it and replicates its
 *   whole sibling set to the others, counting itself toward W; otherwise it
 *   forwards the write to the first reachable replica.
 */
export class QuorumCoordinator {
  readonly #o: QuorumCoordinatorOptions;
  readonly #background = new Set<Promise<unknown>>();
  readonly #stopping = new AbortController();

  constructor(options: QuorumCoordinatorOptions) {
    this.#o = options;
    // Every background request listens on this signal; many may be in flight.
    setMaxListeners(0, this.#stopping.signal);
  }

  /** Quorum read; resolves with the merged sibling set (empty if no replica has the key). */
  async read(key: Uint8Array, r: number, options: CoordinatorCallOptions): Promise<SiblingSet<Uint8Array>> {
    throwIfAborted(options.signal);
    const replicas = this.#replicas(key);
    const required = Math.min(r, replicas.length);
    const { quorum, all } = gather(
      replicas.map((n) => n.id),
      (node, signal) => this.#readFrom(node, key, options.deadline, signal),
      { operation: 'read', required, deadline: options.deadline, signal: options.signal, clock: this.#o.clock },
    );
    const cache: DecodeCache = [];
    this.#track(all.then((answers) => this.#repair(key, answers.ok, cache)));
    const answers = await quorum;
    return decodeAndMerge(answers.ok.values(), cache).merged;
  }

  /** Quorum write. Rejects with `KV_QUORUM_NOT_MET` when fewer than W replicas stored it in time. */
  async write(key: Uint8Array, write: CoordinatedWrite, options: CoordinatorCallOptions): Promise<void> {
    throwIfAborted(options.signal);
    const replicas = this.#replicas(key);
    if (replicas.some((n) => n.id === this.#o.self)) {
      return this.#coordinateLocally(key, replicas, write, options);
    }
    return this.#forward(key, replicas, write, options);
  }

  /** Handles `kv.coordinate` (a write forwarded by a node that is not a replica). */
  async handle(message: WireMessage): Promise<WireMessage> {
    if (message.type !== 'kv.coordinate') {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, `unknown coordinator message type ${message.type}`);
    }
    const key = readBytes(message, 'key', MAX_WIRE_KEY);
    const value = readOptionalBytes(message, 'value', 64 * 1024 * 1024);
    const tombstone = readBoolean(message, 'tombstone');
    const overwrite = readBoolean(message, 'overwrite');
    const contextString = readOptionalString(message, 'context', 1024 * 1024);
    const w = readInt(message, 'w', 1, this.#o.n);
    const timeout = readInt(message, 'timeout', 0, 24 * 3600 * 1000);
    if (tombstone === (value !== undefined)) {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, 'malformed kv.coordinate: exactly one of value and tombstone');
    }
    const context = contextString === undefined ? VectorClock.EMPTY : VectorClock.decode(contextString);
    const replicas = this.#replicas(key);
    if (!replicas.some((n) => n.id === this.#o.self)) {
      throw new KvError(ErrorCodes.UNKNOWN_PEER, `node ${this.#o.self} is not a replica of this key`);
    }
    try {
      await this.#coordinateLocally(
        key,
        replicas,
        { value, tombstone, overwrite, context, w },
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
    await Promise.allSettled([...this.#background]);
  }

  // ---- internals ---------------------------------------------------------------------------

  #replicas(key: Uint8Array): readonly NodeInfo[] {
    return this.#o.ring().preferenceList(key, this.#o.n);
  }

  #address(id: string): string {
    const node = this.#o.ring().node(id);
    if (!node) throw new KvError(ErrorCodes.UNKNOWN_PEER, `node ${id} is not on the ring`);
    return node.address;
  }

  #request(id: string, message: WireMessage, deadline: number, signal: AbortSignal | undefined): Promise<WireMessage> {
    const timeout = Math.max(0, deadline - this.#o.clock.now());
    return this.#o.transport.request(this.#address(id), message, signal ? { timeout, signal } : { timeout });
  }

  /** A replica's encoded record (undefined when it has none); decoded later, once per distinct encoding. */
  async #readFrom(node: string, key: Uint8Array, deadline: number, signal: AbortSignal | undefined): Promise<Uint8Array | undefined> {
    if (node === this.#o.self) return this.#o.replica.readEncoded(key);
    const answer = await this.#request(node, { type: 'kv.read', cluster: this.#o.cluster, key }, deadline, signal);
    if (answer.type !== 'kv.record') throw new KvError(ErrorCodes.INVALID_MESSAGE, `unexpected answer ${answer.type}`);
    return readOptionalBytes(answer, 'record', 64 * 1024 * 1024);
  }

  async #applyTo(
    node: string,
    key: Uint8Array,
    set: SiblingSet<Uint8Array>,
    record: Uint8Array,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (node === this.#o.self) {
      await this.#o.replica.apply(key, set, record);
      return;
    }
    const answer = await this.#request(node, { type: 'kv.apply', cluster: this.#o.cluster, key, record }, deadline, signal);
    if (answer.type !== 'kv.applied') throw new KvError(ErrorCodes.INVALID_MESSAGE, `unexpected answer ${answer.type}`);
  }

  async #coordinateLocally(
    key: Uint8Array,
    replicas: readonly NodeInfo[],
    write: CoordinatedWrite,
    options: CoordinatorCallOptions,
  ): Promise<void> {
    const { set, encoded: record } = await this.#o.replica.coordinateWrite(key, {
      value: write.value,
      tombstone: write.tombstone,
      context: write.context,
      overwrite: write.overwrite,
      timestamp: this.#o.clock.now(),
    });
    const others = replicas.filter((n) => n.id !== this.#o.self).map((n) => n.id);
    const required = Math.min(write.w, replicas.length);
    const { quorum, all } = gather(
      others,
      (node, signal) => this.#applyTo(node, key, set, record, options.deadline, signal),
      {
        operation: 'write',
        required,
        counted: 1,
        deadline: options.deadline,
        signal: options.signal,
        clock: this.#o.clock,
      },
    );
    this.#track(all);
    await quorum;
  }

  async #forward(
    key: Uint8Array,
    replicas: readonly NodeInfo[],
    write: CoordinatedWrite,
    options: CoordinatorCallOptions,
  ): Promise<void> {
    const status = this.#o.status ?? (() => 'alive' as const);
    // Replicas the failure detector believes up first, in preference order.
    const order = [...replicas.filter((n) => status(n.id) !== 'down'), ...replicas.filter((n) => status(n.id) === 'down')];
    const failures: ReplicaFailure[] = [];
    for (const node of order) {
      const timeout = options.deadline - this.#o.clock.now();
      if (timeout <= 0) break;
      const message: WireMessage = {
        type: 'kv.coordinate',
        cluster: this.#o.cluster,
        key,
        value: write.value ?? null,
        tombstone: write.tombstone,
        overwrite: write.overwrite,
        context: write.context.size === 0 ? null : write.context.encode(),
        w: write.w,
        // Leave the forwarder a little time to hear the answer.
        timeout: Math.max(0, Math.floor(timeout * 0.9)),
      };
      let answer: WireMessage;
      try {
        answer = await this.#request(node.id, message, options.deadline, options.signal);
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
    throw new QuorumNotMetError('write', Math.min(write.w, replicas.length), 0, failures);
  }

  async #repair(key: Uint8Array, answers: ReadonlyMap<string, Uint8Array | undefined>, cache: DecodeCache): Promise<void> {
    if (answers.size < 2 || this.#stopping.signal.aborted) return;
    const { merged, decoded, distinct } = decodeAndMerge(answers.values(), cache);
    if (distinct <= 1) return; // every replica answered the same
    const nodes = [...answers.keys()];
    const stale = nodes.filter((_, i) => !(decoded[i] as SiblingSet<Uint8Array>).descends(merged));
    if (stale.length === 0) return;
    const record = encodeSiblingSet(merged);
    const deadline = this.#o.clock.now() + 5_000;
    const done = await Promise.allSettled(
      stale.map((node) => this.#applyTo(node, key, merged, record, deadline, this.#stopping.signal)),
    );
    const repaired = stale.filter((_, i) => done[i]?.status === 'fulfilled');
    if (repaired.length > 0) this.#o.onRepair?.({ key, nodes: repaired });
  }

  #track(p: Promise<unknown>): void {
    const tracked = p.catch(() => {}).finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }
}
