/**
 * The responder's side of anti-entropy: answers the `ae.*` requests of a
 * peer running a round (see `./protocol.ts`). An exchange is a session
 * (the peer's tree shape, this node's tree of the same range, the exchange
 * state and the records owed to the peer) that ends when the peer has
 * pulled them, or expires `sessionTimeout` ms after its last message.
 *
 * @module
 */
import { ErrorCodes, KvError } from '../errors/index.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import type { Ring } from '../ring/index.js';
import type { WireMessage } from '../transport/index.js';
import { decodeSiblingSet } from '../versioning/index.js';
import { toBitmap } from './diff.js';
import { MerkleExchange, type ExchangeMessage, type ExchangeStep } from './exchange.js';
import { recordDigest } from './hash64.js';
import { buildTree, scanLeaves } from './local-tree.js';
import type { MerkleTree } from './merkle-tree.js';
import {
  RECORD_BATCH_BYTES,
  RECORD_BATCH_COUNT,
  digestAt,
  invalidMessage,
  readKeyDigests,
  readRecords,
  readSession,
} from './protocol.js';
import { emptyCounters, mergeRecords, ownsKey } from './session.js';
import { isExpiredTombstone } from './tombstones.js';
import type { AntiEntropyReplica } from './types.js';

/**
 * Most leaf segments of a tree a peer may ask this node to build (16^4).
 * @default 65536
 */
export const MAX_RESPONDER_SEGMENTS = 65_536;

/**
 * Sessions one responder keeps at once; past it `ae.start` is refused with `KV_OVERLOADED`.
 * @default 64
 */
export const MAX_RESPONDER_SESSIONS = 64;

/** Options of {@link AntiEntropyResponder}. */
export interface AntiEntropyResponderOptions {
  /** This node's id. */
  readonly self: string;
  /** Replication factor N. */
  readonly n: number;
  readonly replica: AntiEntropyReplica;
  readonly ring: () => Ring;
  readonly clock: Clock;
  /** A session with no message for this long is dropped, ms. */
  readonly sessionTimeout: number;
  /** Tombstones younger than this are never confirmed for purging, ms. */
  readonly tombstoneGrace: number;
  /** Largest record accepted from a peer, bytes. */
  readonly maxRecordBytes: number;
}

interface Session {
  readonly id: string;
  readonly tree: MerkleTree;
  readonly exchange: MerkleExchange;
  /** Keys whose records the peer pulls. */
  outbox: Uint8Array[];
  timer: TimerHandle | undefined;
}

/**
 * Answers anti-entropy requests from peers. `handle` is registered with the
 * node's router for every type of `AE_REQUEST_TYPES` (members only).
 * `close()` drops every session and its timer; later requests reject with
 * `KV_NOT_STARTED`.
 */
export class AntiEntropyResponder {
  readonly #o: AntiEntropyResponderOptions;
  readonly #sessions = new Map<string, Session>();
  /** Sessions whose tree is being built (they count against the limit). */
  #building = 0;
  #closed = false;

  constructor(options: AntiEntropyResponderOptions) {
    this.#o = options;
  }

  /** Open sessions (for tests and metrics). */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Drops every session and timer. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const s of this.#sessions.values()) this.#clearTimer(s);
    this.#sessions.clear();
  }

  /** Handles one `ae.*` request from `from`. */
  readonly handle = async (message: WireMessage, from: string): Promise<WireMessage> => {
    if (this.#closed) throw new KvError(ErrorCodes.NOT_STARTED, `anti-entropy of node ${this.#o.self} is stopped`);
    switch (message.type) {
      case 'ae.start':
        return this.#start(message, from);
      case 'ae.hashes':
      case 'ae.entries':
      case 'ae.request':
      case 'ae.done':
        return this.#step(message, from);
      case 'ae.pull':
        return this.#pull(message, from);
      case 'ae.push':
        return this.#push(message);
      case 'ae.confirm':
        return this.#confirm(message);
      case 'ae.purge':
        return this.#purge(message);
      default:
        throw new KvError(ErrorCodes.INVALID_MESSAGE, `unknown anti-entropy message type ${JSON.stringify(message.type)}`);
    }
  };

  async #start(m: WireMessage, from: string): Promise<WireMessage> {
    const id = `${from}\u0000${readSession(m)}`;
    if (this.#sessions.has(id)) throw invalidMessage(m.type, 'session already open');
    if (this.#sessions.size + this.#building >= MAX_RESPONDER_SESSIONS) {
      throw new KvError(ErrorCodes.OVERLOADED, `node ${this.#o.self} has ${MAX_RESPONDER_SESSIONS} anti-entropy sessions open`);
    }
    const { start, end, fanout, depth } = m;
    if (typeof fanout !== 'number' || typeof depth !== 'number' || !(fanout ** depth <= MAX_RESPONDER_SEGMENTS)) {
      throw invalidMessage(m.type, `tree shape ${String(fanout)}^${String(depth)}`);
    }
    let built: MerkleTree;
    this.#building++;
    try {
      try {
        built = (await buildTree(this.#o.replica, { start: start as number, end: end as number }, { fanout, depth })).tree;
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError) throw invalidMessage(m.type, err.message, err);
        throw err;
      }
    } finally {
      this.#building--;
    }
    if (this.#closed) throw new KvError(ErrorCodes.NOT_STARTED, `anti-entropy of node ${this.#o.self} is stopped`);
    const session: Session = { id, tree: built, exchange: new MerkleExchange(built), outbox: [], timer: undefined };
    this.#sessions.set(id, session);
    return this.#advance(session, () => session.exchange.receive(m as unknown as ExchangeMessage), m.type);
  }

  async #step(m: WireMessage, from: string): Promise<WireMessage> {
    const session = this.#session(m, from);
    return this.#advance(session, () => session.exchange.receive(m as unknown as ExchangeMessage), m.type);
  }

  /** Runs one step of the session's exchange and answers with its message (or an ack). */
  async #advance(session: Session, first: () => ExchangeStep, type: string): Promise<WireMessage> {
    let step: ExchangeStep;
    try {
      step = first();
      while (step.needEntries) {
        const leaves = await scanLeaves(this.#o.replica, session.tree, step.needEntries);
        step = session.exchange.provideEntries(leaves);
      }
    } catch (err) {
      this.#end(session);
      if (err instanceof TypeError || err instanceof RangeError) throw invalidMessage(type, err.message, err);
      throw err;
    }
    if (step.send) session.outbox.push(...step.send);
    const pending = session.outbox.length;
    if (step.done && pending === 0) this.#end(session);
    else this.#touch(session);
    return step.message ? ({ ...step.message, pending } as unknown as WireMessage) : { type: 'ae.ack', pending };
  }

  async #pull(m: WireMessage, from: string): Promise<WireMessage> {
    const session = this.#session(m, from);
    const keys: Uint8Array[] = [];
    const records: Uint8Array[] = [];
    let bytes = 0;
    let taken = 0;
    const outbox = session.outbox;
    while (taken < outbox.length && keys.length < RECORD_BATCH_COUNT) {
      const key = outbox[taken]!;
      const record = await this.#o.replica.read(key);
      if (record !== undefined) {
        if (keys.length > 0 && bytes + key.length + record.length > RECORD_BATCH_BYTES) break;
        keys.push(key);
        records.push(record);
        bytes += key.length + record.length;
      }
      taken++;
    }
    session.outbox = outbox.slice(taken);
    const pending = session.outbox.length;
    if (pending === 0 && session.exchange.done) this.#end(session);
    else this.#touch(session);
    return { type: 'ae.records', keys, records, pending };
  }

  async #push(m: WireMessage): Promise<WireMessage> {
    const { keys, records } = readRecords(m, this.#o.maxRecordBytes);
    // Every record is validated before any is merged: a bad batch stores nothing.
    for (const r of records) decodeSiblingSet(r);
    const counters = emptyCounters();
    await mergeRecords(this.#o, keys, records, undefined, counters);
    return { type: 'ae.ack', merged: counters.keysReceived, ignored: counters.keysIgnored };
  }

  /** Phase 1 of tombstone GC: which of these keys hold exactly this record, an expired tombstone. */
  async #confirm(m: WireMessage): Promise<WireMessage> {
    const { keys, digests } = readKeyDigests(m);
    const held: number[] = [];
    const horizon = this.#o.clock.now() - this.#o.tombstoneGrace;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (!ownsKey(this.#o, key, undefined)) continue;
      const record = await this.#o.replica.read(key);
      if (record === undefined || !digestAt(recordDigest(record), digests, i * 8)) continue;
      if (isExpiredTombstone(record, horizon)) held.push(i);
    }
    return { type: 'ae.confirmed', held: toBitmap(held, keys.length) };
  }

  /** Phase 2 of tombstone GC: removes each key whose record is still the confirmed tombstone. */
  async #purge(m: WireMessage): Promise<WireMessage> {
    const { keys, digests } = readKeyDigests(m);
    const horizon = this.#o.clock.now() - this.#o.tombstoneGrace;
    let purged = 0;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (!ownsKey(this.#o, key, undefined)) continue;
      const at = i * 8;
      const removed = await this.#o.replica.purgeTombstone(
        key,
        (record) => digestAt(recordDigest(record), digests, at) && isExpiredTombstone(record, horizon),
      );
      if (removed) purged++;
    }
    return { type: 'ae.purged', purged };
  }

  #session(m: WireMessage, from: string): Session {
    const session = this.#sessions.get(`${from}\u0000${readSession(m)}`);
    if (!session) throw invalidMessage(m.type, 'no such session (expired, or ended)');
    return session;
  }

  #touch(session: Session): void {
    this.#clearTimer(session);
    session.timer = this.#o.clock.setTimeout(() => {
      session.timer = undefined;
      if (this.#sessions.get(session.id) === session) this.#sessions.delete(session.id);
    }, this.#o.sessionTimeout);
  }

  #end(session: Session): void {
    this.#clearTimer(session);
    if (this.#sessions.get(session.id) === session) this.#sessions.delete(session.id);
  }

  #clearTimer(session: Session): void {
    if (session.timer !== undefined) {
      this.#o.clock.clearTimeout(session.timer);
      session.timer = undefined;
    }
  }
}
