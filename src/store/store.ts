import { Decoder, Encoder, decode, encode } from '@msgpack/msgpack';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { ErrorCodes, KvError } from '../errors/index.js';
import { systemClock, type Clock } from '../internal/clock.js';
import { Defaults } from '../internal/defaults.js';
import { throwIfAborted } from '../internal/signals.js';
import { QuorumCoordinator, ReplicaServer } from '../replication/index.js';
import { Membership, type Member } from '../membership/index.js';
import { Ring, defaultTokens, keyBytes, packTokens, unpackTokens } from '../ring/index.js';
import { MemoryStorage, type StorageAdapter } from '../storage/index.js';
import type { Transport, WireMessage } from '../transport/index.js';
import { SiblingSet, VectorClock, actorId, type Version } from '../versioning/index.js';
import type {
  CallOptions,
  ConflictPolicy,
  ConsistencyLevel,
  DeleteOptions,
  GetOptions,
  GetResult,
  Key,
  LocalRecord,
  PutOptions,
  StoreEvents,
  StoreOptions,
} from './types.js';

const META_INCARNATION = 'quorumkv.incarnation';
const META_GENERATION = 'quorumkv.generation';
const META_TOKENS = 'quorumkv.tokens';

// Shared msgpack codecs for user values (per-call construction was a measured hot spot).
const valueEncoder = new Encoder();
const valueDecoder = new Decoder();

const PROTO_KEY = Buffer.from('__proto__');

type Lifecycle = 'stopped' | 'starting' | 'started' | 'stopping';

function positiveInt(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`Expected \`${name}\` to be a positive integer, got ${String(value)}`);
  }
  return value;
}

function nonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`Expected \`${name}\` to be a non-negative number, got ${String(value)}`);
  }
  return value;
}

/**
 * One node of a quorumkv cluster: it joins through its seeds, owns a share
 * of the ring, stores replicas, and coordinates reads and writes for any key.
 *
 * @example
 * ```ts
 * const net = new MemoryNetwork();
 * const a = new Store({ id: 'a', transport: net.transport('a'), replication: { n: 1, r: 1, w: 1 } });
 * await a.start();
 * await a.put('user:1', { name: 'Ada' });
 * const r = await a.get('user:1');          // { values: [{ name: 'Ada' }], context }
 * await a.put('user:1', { name: 'Ada L.' }, { context: r?.context });
 * await a.stop();
 * ```
 */
export class Store<V = unknown> extends EventEmitter<StoreEvents> {
  readonly id: string;
  readonly cluster: string;
  readonly transport: Transport;
  readonly storage: StorageAdapter;
  readonly n: number;
  readonly r: number;
  readonly w: number;
  readonly #options: StoreOptions<V>;
  readonly #clock: Clock;
  readonly #conflict: ConflictPolicy<V>;
  readonly #timeout: number;
  readonly #maxKeyBytes: number;
  readonly #maxValueBytes: number;
  #state: Lifecycle = 'stopped';
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #membership: Membership | undefined;
  #replica: ReplicaServer | undefined;
  #coordinator: QuorumCoordinator | undefined;
  #incarnation: string | undefined;

  constructor(options: StoreOptions<V>) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('Expected `options` to be an object');
    }
    if (typeof options.id !== 'string' || options.id.length === 0 || options.id.length > 256) {
      throw new TypeError(`Expected \`id\` to be a non-empty string of at most 256 characters, got ${String(options.id)}`);
    }
    if (!options.transport || typeof options.transport.request !== 'function') {
      throw new TypeError('Expected `transport` to be a Transport');
    }
    this.#options = options;
    this.id = options.id;
    this.cluster = options.cluster ?? Defaults.cluster;
    if (typeof this.cluster !== 'string' || this.cluster.length === 0) {
      throw new TypeError('Expected `cluster` to be a non-empty string');
    }
    this.transport = options.transport;
    this.storage = options.storage ?? new MemoryStorage();
    this.n = positiveInt('replication.n', options.replication?.n ?? Defaults.n);
    this.r = positiveInt('replication.r', options.replication?.r ?? Math.min(Defaults.r, this.n));
    this.w = positiveInt('replication.w', options.replication?.w ?? Math.min(Defaults.w, this.n));
    if (this.r > this.n || this.w > this.n) {
      throw new RangeError(`Expected R and W to be at most N=${this.n}, got R=${this.r} W=${this.w}`);
    }
    const conflict = options.conflict ?? 'siblings';
    if (conflict !== 'siblings' && conflict !== 'lww' && typeof conflict !== 'function') {
      throw new TypeError(`Expected \`conflict\` to be 'siblings', 'lww' or a function, got ${String(conflict)}`);
    }
    this.#conflict = conflict;
    this.#clock = options.clock ?? systemClock;
    this.#timeout = nonNegative('timeout', options.timeout ?? Defaults.timeout);
    this.#maxKeyBytes = positiveInt('maxKeyBytes', options.maxKeyBytes ?? Defaults.maxKeyBytes);
    this.#maxValueBytes = positiveInt('maxValueBytes', options.maxValueBytes ?? Defaults.maxValueBytes);
    if (options.weight !== undefined && (!Number.isFinite(options.weight) || options.weight <= 0)) {
      throw new RangeError(`Expected \`weight\` to be a positive number, got ${String(options.weight)}`);
    }
  }

  // ---- lifecycle ------------------------------------------------------------------------

  /** True between `start()` resolving and `stop()` being called. */
  get started(): boolean {
    return this.#state === 'started';
  }

  /** The actor id (node id + incarnation) this node's writes carry; set by `start()`. */
  get actor(): string | undefined {
    return this.#replica?.actor;
  }

  /** This node's incarnation (new whenever it starts on empty storage). */
  get incarnation(): string | undefined {
    return this.#incarnation;
  }

  /**
   * Opens the storage, starts the transport and begins gossiping. Resolves
   * once listening; joining through the seeds goes on in the background
   * (see {@link Store.waitForMembers}). Idempotent.
   */
  start(): Promise<void> {
    if (this.#state === 'started') return Promise.resolve();
    if (this.#state === 'starting' && this.#starting) return this.#starting;
    if (this.#state === 'stopping') {
      return Promise.reject(new KvError(ErrorCodes.NOT_STARTED, `store ${this.id} is stopping`));
    }
    this.#state = 'starting';
    this.#starting = this.#doStart().then(
      () => {
        this.#state = 'started';
      },
      async (err: unknown) => {
        this.#state = 'stopped';
        await this.#teardown().catch(() => {});
        throw err;
      },
    );
    return this.#starting;
  }

  async #doStart(): Promise<void> {
    const o = this.#options;
    await this.storage.open();
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    // Incarnation: kept while the storage keeps its data; a node on empty storage
    // is a new actor, so it never reissues an old dot (riak_kv#679).
    const storedIncarnation = await this.storage.getMeta(META_INCARNATION);
    let incarnation = storedIncarnation ? dec.decode(storedIncarnation) : undefined;
    if (!incarnation || !/^[0-9a-z]{1,32}$/.test(incarnation)) {
      incarnation = randomBytes(8).readBigUInt64BE().toString(36);
      await this.storage.setMeta(META_INCARNATION, enc.encode(incarnation));
    }
    this.#incarnation = incarnation;
    // Generation: grows at every start, even on empty storage (peers remember the old one).
    const storedGeneration = await this.storage.getMeta(META_GENERATION);
    const previous = storedGeneration ? Number(decode(storedGeneration)) : 0;
    const generation = Math.max(Number.isSafeInteger(previous) ? previous + 1 : 1, this.#clock.now());
    await this.storage.setMeta(META_GENERATION, encode(generation));
    // Tokens: explicit, else the stored ones, else derived from the id.
    const weight = o.weight ?? 1;
    let tokens: readonly number[];
    if (o.tokens) tokens = o.tokens;
    else {
      const stored = await this.storage.getMeta(META_TOKENS);
      tokens = stored && stored.length > 0 ? unpackTokens(stored) : defaultTokens(this.id, weight, Defaults.tokensPerWeight);
    }
    await this.storage.setMeta(META_TOKENS, packTokens(tokens));
    // Validate the node (tokens, weight) the way every peer will.
    const self = Ring.from([{ id: this.id, address: this.transport.address, ...(o.zone === undefined ? {} : { zone: o.zone }), weight, tokens }]).node(this.id);
    if (!self) throw new Error('internal: node missing from its own ring');

    const membership = new Membership({
      self,
      generation,
      cluster: this.cluster,
      n: this.n,
      transport: this.transport,
      seeds: o.seeds ?? [],
      clock: this.#clock,
      interval: o.gossip?.interval ?? Defaults.gossipInterval,
      suspectAfterRounds: o.gossip?.suspectAfterRounds ?? Defaults.suspectAfterRounds,
      downAfterRounds: o.gossip?.downAfterRounds ?? Defaults.downAfterRounds,
      gossipTimeout: o.gossip?.timeout ?? Defaults.gossipTimeout,
      maxKeyBytes: this.#maxKeyBytes,
    });
    for (const name of [
      'member:joined',
      'member:suspected',
      'member:down',
      'member:up',
      'member:left',
      'member:refused',
      'ring:changed',
    ] as const) {
      const emit = this.emit.bind(this) as (event: string, payload: unknown) => boolean;
      membership.on(name, (payload: unknown) => emit(name, payload));
    }
    const ring = (): Ring => membership.ring;
    const replica = new ReplicaServer({
      storage: this.storage,
      actor: actorId(this.id, incarnation),
      ring,
      maxClockEntries: o.maxClockEntries ?? Defaults.maxClockEntries,
    });
    await replica.open();
    const coordinator = new QuorumCoordinator({
      self: this.id,
      cluster: this.cluster,
      n: this.n,
      transport: this.transport,
      replica,
      ring,
      status: (id) => membership.statusOf(id),
      clock: this.#clock,
      onRepair: (e) => this.emit('repair:completed', e),
    });
    this.#membership = membership;
    this.#replica = replica;
    this.#coordinator = coordinator;
    await this.transport.start((message, from) => this.#dispatch(message, from));
    membership.start();
  }

  /**
   * Announces to the peers that this node is going down, stops gossip and
   * background work, stops the transport and closes the storage. The node
   * keeps its place on the ring. Idempotent.
   */
  stop(): Promise<void> {
    if (this.#state === 'stopped') return this.#stopping ?? Promise.resolve();
    if (this.#state === 'stopping' && this.#stopping) return this.#stopping;
    const starting = this.#starting;
    this.#state = 'stopping';
    this.#stopping = (async () => {
      await starting?.catch(() => {});
      await this.#teardown();
    })().finally(() => {
      this.#state = 'stopped';
    });
    return this.#stopping;
  }

  async #teardown(): Promise<void> {
    // Announce first (needs the transport), then stop the transport, which fails
    // in-flight requests at once, so background replication and repair end now
    // rather than at their deadlines; then wait for them before closing storage.
    await this.#membership?.stop();
    if (this.transport.started) await this.transport.stop();
    await this.#coordinator?.stop();
    await this.storage.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ---- membership ---------------------------------------------------------------------------

  /** Every known member, this node included (empty before `start()`). */
  members(): Member[] {
    return this.#membership?.members() ?? [];
  }

  /** The current ring snapshot (immutable; a membership change gives a new one). */
  get ring(): Ring {
    return this.#membership?.ring ?? Ring.empty({ maxKeyBytes: this.#maxKeyBytes });
  }

  /**
   * Resolves once gossip shows `count` live members (this one included).
   * Rejects with the peer's error if a seed refused this node
   * (`KV_CLUSTER_MISMATCH`, `KV_REPLICATION_MISMATCH`, `KV_DUPLICATE_NODE`),
   * with `KV_TIMEOUT` after `timeout` (default 30 s) and `KV_ABORTED`.
   */
  waitForMembers(count: number, options: CallOptions = {}): Promise<void> {
    const m = this.#requireStarted();
    return m.waitForMembers(count, options);
  }

  // ---- data -----------------------------------------------------------------------------------

  /**
   * Reads a key with quorum R. Resolves with the live values and a context,
   * or `undefined` when no replica has a live version.
   */
  async get(key: Key, options: GetOptions = {}): Promise<GetResult<V> | undefined> {
    const { coordinator } = this.#components();
    const bytes = keyBytes(key, this.#maxKeyBytes);
    const r = this.#level('r', options.r, options.consistency, this.r);
    throwIfAborted(options.signal);
    const set = await coordinator.read(bytes, r, this.#call(options));
    return this.#present(set);
  }

  /**
   * Writes a value with quorum W. With `context` (from a `get`), the write
   * supersedes exactly the versions that read returned; without, it is a
   * blind write, concurrent with what is stored (a sibling), except in
   * `'lww'` mode where it overwrites.
   */
  async put(key: Key, value: V, options: PutOptions = {}): Promise<void> {
    const { coordinator } = this.#components();
    const bytes = keyBytes(key, this.#maxKeyBytes);
    const encoded = this.#encodeValue(value);
    const w = this.#level('w', options.w, options.consistency, this.w);
    const context = this.#context(options.context);
    throwIfAborted(options.signal);
    await coordinator.write(
      bytes,
      { value: encoded, tombstone: false, context, overwrite: this.#conflict === 'lww' && options.context === undefined, w },
      this.#call(options),
    );
  }

  /**
   * Deletes a key by writing a tombstone (a version like any other). With
   * `context`, it supersedes exactly what that read returned; without, the
   * store first reads with R and supersedes what that read finds. A write
   * concurrent with the delete survives as a sibling.
   */
  async delete(key: Key, options: DeleteOptions = {}): Promise<void> {
    const { coordinator } = this.#components();
    const bytes = keyBytes(key, this.#maxKeyBytes);
    const w = this.#level('w', options.w, options.consistency, this.w);
    let context = this.#context(options.context);
    throwIfAborted(options.signal);
    const call = this.#call(options);
    if (options.context === undefined) {
      const r = this.#level('r', options.r, options.consistency, this.r);
      const found = await coordinator.read(bytes, r, call);
      if (found.size === 0) return;
      context = found.clock();
    }
    await coordinator.write(bytes, { value: undefined, tombstone: true, context, overwrite: false, w }, call);
  }

  /** This node's own record of `key` (owned data only), without asking anyone. */
  async localGet(key: Key): Promise<LocalRecord<V> | undefined> {
    const { replica } = this.#components();
    const set = await replica.read(keyBytes(key, this.#maxKeyBytes));
    if (set.size === 0) return undefined;
    const presented = this.#present(set);
    return {
      values: presented?.values ?? [],
      context: set.clock().encode(),
      siblings: set.versions.map((v) => ({
        value: v.value === undefined ? undefined : this.#decodeValue(v.value),
        tombstone: v.tombstone,
        clock: v.past.merge(VectorClock.from([[v.dot.actor, v.dot.counter]])).encode(),
        timestamp: v.timestamp,
      })),
    };
  }

  // ---- internals -----------------------------------------------------------------------------

  #requireStarted(): Membership {
    if (this.#state !== 'started' || !this.#membership) {
      throw new KvError(ErrorCodes.NOT_STARTED, `store ${this.id} is not started`);
    }
    return this.#membership;
  }

  #components(): { coordinator: QuorumCoordinator; replica: ReplicaServer; membership: Membership } {
    const membership = this.#requireStarted();
    if (!this.#coordinator || !this.#replica) throw new KvError(ErrorCodes.NOT_STARTED, `store ${this.id} is not started`);
    return { coordinator: this.#coordinator, replica: this.#replica, membership };
  }

  #call(options: CallOptions): { deadline: number; signal: AbortSignal | undefined } {
    const timeout = options.timeout === undefined ? this.#timeout : nonNegative('timeout', options.timeout);
    return { deadline: this.#clock.now() + timeout, signal: options.signal };
  }

  #level(name: 'r' | 'w', explicit: number | undefined, level: ConsistencyLevel | undefined, fallback: number): number {
    if (explicit !== undefined && level !== undefined) {
      throw new TypeError(`Pass either \`${name}\` or \`consistency\`, not both`);
    }
    if (explicit !== undefined) {
      const v = positiveInt(name, explicit);
      if (v > this.n) throw new RangeError(`Expected \`${name}\` to be at most N=${this.n}, got ${v}`);
      return v;
    }
    switch (level) {
      case undefined:
        return fallback;
      case 'one':
        return 1;
      case 'quorum':
        return Math.floor(this.n / 2) + 1;
      case 'all':
        return this.n;
      default:
        throw new TypeError(`Expected \`consistency\` to be 'one', 'quorum' or 'all', got ${String(level)}`);
    }
  }

  #context(context: string | undefined): VectorClock {
    if (context === undefined) return VectorClock.EMPTY;
    if (typeof context !== 'string') throw new TypeError('Expected `context` to be the string a get returned');
    return VectorClock.decode(context);
  }

  #encodeValue(value: V): Uint8Array {
    if (value === undefined) throw new TypeError('Expected a value; to remove a key use delete()');
    let bytes: Uint8Array;
    try {
      bytes = valueEncoder.encode(value);
      // A value msgpack writes but cannot read back (an own `__proto__` key) would be
      // stored and then unreadable: refuse it now. Only bytes holding that string
      // can fail, so the decode check runs only then.
      if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(PROTO_KEY)) valueDecoder.decode(bytes);
    } catch (err) {
      throw new TypeError(`Expected \`value\` to be msgpack-encodable: ${(err as Error).message}`, { cause: err });
    }
    if (bytes.length > this.#maxValueBytes) {
      throw new KvError(
        ErrorCodes.VALUE_TOO_LARGE,
        `value is ${bytes.length} bytes encoded, over maxValueBytes=${this.#maxValueBytes}`,
      );
    }
    return bytes;
  }

  #decodeValue(bytes: Uint8Array): V {
    return valueDecoder.decode(bytes) as V;
  }

  #present(set: SiblingSet<Uint8Array>): GetResult<V> | undefined {
    const context = (): string => set.clock().encode();
    if (this.#conflict === 'lww') {
      let best: Version<Uint8Array> | undefined;
      for (const v of set.versions) {
        if (!best || v.timestamp > best.timestamp || (v.timestamp === best.timestamp && v.dot.actor > best.dot.actor)) best = v;
      }
      if (!best || best.value === undefined) return undefined;
      return { values: [this.#decodeValue(best.value)], context: context() };
    }
    const live = set.live();
    if (live.length === 0) return undefined;
    const values = live.map((v) => this.#decodeValue(v.value as Uint8Array));
    if (typeof this.#conflict === 'function' && values.length > 1) {
      return { values: [this.#conflict(values)], context: context() };
    }
    return { values, context: context() };
  }

  async #dispatch(message: WireMessage, from: string): Promise<WireMessage> {
    const membership = this.#membership;
    const replica = this.#replica;
    const coordinator = this.#coordinator;
    if (!membership || !replica || !coordinator || this.#state === 'stopped') {
      throw new KvError(ErrorCodes.NOT_STARTED, `store ${this.id} is not started`);
    }
    if (message.type.startsWith('gossip.')) return membership.handle(message, from);
    if (message['cluster'] !== this.cluster) {
      throw new KvError(ErrorCodes.CLUSTER_MISMATCH, `request for cluster ${String(message['cluster'])} reached cluster ${this.cluster}`);
    }
    if (!membership.knowsAddress(from)) {
      throw new KvError(ErrorCodes.UNKNOWN_PEER, `${from} is not a member known to ${this.id}`);
    }
    if (message.type === 'kv.coordinate') return coordinator.handle(message);
    return replica.handle(message);
  }
}
