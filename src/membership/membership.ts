import { setMaxListeners } from 'node:events';
import { EventEmitter } from 'eventemitter3';
import { ErrorCodes, KvError, TimeoutError, AbortError, toKvError } from '../errors/index.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import { Defaults } from '../internal/defaults.js';
import { onAbort } from '../internal/signals.js';
import {
  Ring,
  formatZoneReplication,
  normalizeZoneReplication,
  sameZoneReplication,
  type NodeInfo,
  type ZoneReplication,
} from '../ring/index.js';
import type { Transport, WireMessage } from '../transport/index.js';
import {
  type MembershipEvents,
  type Member,
  type MemberRecord,
  type MemberStatus,
  toNodeInfo,
} from './types.js';
import { TimeoutFailureDetector, type FailureDetector } from './failure-detector.js';
import {
  parseAck,
  parsePush,
  parseSyn,
  recordToWire,
  type DecodedRecord,
  type Digest,
  type AckMessage,
  type PushMessage,
  type SynMessage,
  zonesToWire,
} from './wire.js';

/** Options of {@link Membership}. */
export interface MembershipOptions {
  /** This node as it joins the ring. */
  readonly self: NodeInfo;
  /** Restart counter of this node: must grow at every start. */
  readonly generation: number;
  readonly cluster: string;
  /** Cluster-wide replication factor; peers with another N are refused. */
  readonly n: number;
  /**
   * Cluster-wide per-zone replication: the ring places replicas by it, and
   * peers with another map (or none) are refused like peers with another N.
   * @default undefined (no zone map)
   */
  readonly zones?: ZoneReplication | undefined;
  readonly transport: Transport;
  /** Addresses to join through. */
  readonly seeds: readonly string[];
  readonly clock: Clock;
  /** @default 1000 */
  readonly interval?: number;
  /** @default 5 */
  readonly suspectAfterRounds?: number;
  /** @default 10 */
  readonly downAfterRounds?: number;
  /** @default 1000 */
  readonly gossipTimeout?: number;
  /** Used to build rings. @default 1024 */
  readonly maxKeyBytes?: number;
  /** Random source for peer choice. @default Math.random */
  readonly random?: () => number;
  /**
   * Members this node knew before it stopped (its stored peers). They are on
   * the ring from the start, `down` until gossip hears from them, and gossip
   * tries them like seeds. A node with stored peers has joined its cluster.
   * @default []
   */
  readonly peers?: readonly MemberRecord[];
  /** @default a {@link TimeoutFailureDetector} from `interval` and the round counts */
  readonly failureDetector?: FailureDetector;
  /** Bound on the shutdown announcement `stop()` sends, ms. @default 500 */
  readonly shutdownTimeout?: number;
  /**
   * Called (synchronously) whenever the set of members or one's address,
   * tokens or generation changed, with every member but this one: persist
   * them so a restart rebuilds the ring (stored peers).
   */
  readonly onPeersChanged?: (peers: MemberRecord[]) => void;
  /** Called when this node had to move its generation past one a peer remembers: persist it. */
  readonly onGenerationChanged?: (generation: number) => void;
}

interface Entry {
  record: MemberRecord;
  status: MemberStatus;
}

function newer(a: { generation: number; heartbeat: number }, b: { generation: number; heartbeat: number }): boolean {
  return a.generation > b.generation || (a.generation === b.generation && a.heartbeat > b.heartbeat);
}

function sameNode(a: NodeInfo, b: NodeInfo): boolean {
  if (a.id !== b.id || a.address !== b.address || a.zone !== b.zone || a.weight !== b.weight) return false;
  if (a.tokens.length !== b.tokens.length) return false;
  for (let i = 0; i < a.tokens.length; i++) if (a.tokens[i] !== b.tokens[i]) return false;
  return true;
}

/**
 * Gossip membership: a push-pull anti-entropy of member records (heartbeat
 * counters within a generation), a timeout failure detector, seeds to join
 * through, and the ring built from everything known. Every node ends up with
 * every member's tokens, so it routes in zero hops.
 *
 * Protocol (Cassandra-style, three messages): `gossip.syn` carries the
 * sender's own record and a digest `(id, generation, heartbeat)` of every
 * member it knows; the `gossip.ack` returns the records the receiver has newer
 * (tokens only when the generation differs) and the ids it wants; a
 * `gossip.push` sends those. A node of another cluster, with another N or
 * zone map, or reusing a live node's id is refused with a coded error on both sides.
 */
export class Membership extends EventEmitter<MembershipEvents> {
  readonly #opts: Required<Omit<MembershipOptions, 'self' | 'peers' | 'zones' | 'failureDetector' | 'onPeersChanged' | 'onGenerationChanged'>> &
    Pick<MembershipOptions, 'onPeersChanged' | 'onGenerationChanged'> & { self: NodeInfo };
  readonly #detector: FailureDetector;
  /** The zone map (normalized), refused when a peer's differs. */
  readonly #zones: ZoneReplication | undefined;
  readonly #entries = new Map<string, Entry>();
  /** {@link Membership.knowsAddress}'s cache: address → the entry last found there. */
  readonly #byAddress = new Map<string, Entry>();
  #self: MemberRecord;
  #ring: Ring;
  #timer: TimerHandle | undefined;
  #running = false;
  /** Gossip exchanges in flight, by target address (a round never waits for them). */
  readonly #inflight = new Map<string, Promise<void>>();
  /** The start's announcements still in flight (stop waits for them). */
  readonly #announcing = new Set<Promise<undefined>>();
  /** Aborts in-flight exchanges on stop. */
  #exchanges = new AbortController();
  #refusals = new Map<string, string>();
  #lastRefusal: KvError | undefined;
  #joined: boolean;
  readonly #waiters = new Set<() => void>();

  constructor(options: MembershipOptions) {
    super();
    this.#opts = {
      interval: Defaults.gossipInterval,
      suspectAfterRounds: Defaults.suspectAfterRounds,
      downAfterRounds: Defaults.downAfterRounds,
      gossipTimeout: Defaults.gossipTimeout,
      shutdownTimeout: Defaults.shutdownTimeout,
      maxKeyBytes: Defaults.maxKeyBytes,
      random: Math.random,
      ...options,
    };
    this.#zones = options.zones === undefined ? undefined : normalizeZoneReplication(options.zones);
    this.#detector =
      options.failureDetector ??
      new TimeoutFailureDetector({
        interval: this.#opts.interval,
        suspectAfterRounds: this.#opts.suspectAfterRounds,
        downAfterRounds: this.#opts.downAfterRounds,
      });
    const s = options.self;
    this.#self = {
      id: s.id,
      address: s.address,
      zone: s.zone,
      weight: s.weight,
      tokens: s.tokens,
      generation: options.generation,
      heartbeat: 0,
      state: 'normal',
      shutdown: false,
    };
    this.#entries.set(s.id, { record: this.#self, status: 'alive' });
    for (const peer of options.peers ?? []) {
      if (peer.id === s.id || peer.state === 'left') continue;
      this.#entries.set(peer.id, { record: { ...peer, heartbeat: 0, shutdown: false }, status: 'down' });
    }
    const seeds = this.#opts.seeds.filter((a) => a !== s.address);
    // A node alone by design (no seeds, no stored peers) has nothing to join.
    this.#joined = seeds.length === 0 || this.#entries.size > 1;
    this.#ring = this.#buildRing();
  }

  /**
   * True once this node knows its cluster: it had stored peers, or has no
   * seeds (a cluster of its own), or exchanged gossip with a peer. Until
   * then its ring is a ring of itself, which must not be used to place data.
   */
  get joined(): boolean {
    return this.#joined;
  }

  /** The current ring snapshot (immutable). */
  get ring(): Ring {
    return this.#ring;
  }

  /** This node's id. */
  get selfId(): string {
    return this.#self.id;
  }

  /** The last refusal this node received from a peer, if no exchange succeeded since. */
  get refusal(): KvError | undefined {
    return this.#lastRefusal;
  }

  /**
   * Begins gossiping (first round at once), after telling every member it
   * knows (its stored peers, on a restart) its record. Idempotent.
   */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#exchanges = new AbortController();
    // Every exchange of this run listens on this one signal.
    setMaxListeners(0, this.#exchanges.signal);
    this.#announce();
    this.#schedule(0);
  }

  /**
   * Pushes this node's record to every member it knows, at once and
   * without waiting (best effort, within `gossipTimeout`). A node back at
   * a new address (a new ephemeral port, a new container) is then known
   * there before its first request: the push leaves first on each
   * connection, and peers admit `kv.*` requests only from a member's
   * address. Without it, every call through the restarted node failed
   * with `KV_UNKNOWN_PEER` until gossip had spread its address.
   */
  #announce(): void {
    // With the tokens: a record of a new generation is taken only whole.
    const push: PushMessage = { type: 'gossip.push', cluster: this.#opts.cluster, records: [recordToWire(this.#self, true)] };
    for (const e of this.#entries.values()) {
      if (e.record.id === this.#self.id) continue;
      const sent = this.#opts.transport
        .request(e.record.address, push, { timeout: this.#opts.gossipTimeout, signal: this.#exchanges.signal })
        .then(
          () => undefined,
          () => undefined,
        );
      this.#announcing.add(sent);
      void sent.finally(() => this.#announcing.delete(sent));
    }
  }

  /**
   * Stops gossiping (in-flight exchanges are aborted), announces the
   * shutdown to every member not known down (best effort, bounded by
   * `shutdownTimeout`), and leaves no timer. The node keeps its place on the ring.
   */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer !== undefined) this.#opts.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#exchanges.abort();
    await Promise.allSettled([...this.#inflight.values(), ...this.#announcing]);
    this.#self = { ...this.#self, heartbeat: this.#self.heartbeat + 1, shutdown: true };
    this.#entry(this.#self.id).record = this.#self;
    const push: PushMessage = {
      type: 'gossip.push',
      cluster: this.#opts.cluster,
      records: [recordToWire(this.#self, false)],
    };
    const targets = [...this.#entries.values()].filter(
      (e) => e.record.id !== this.#self.id && e.status !== 'down',
    );
    await Promise.allSettled(
      targets.map((e) =>
        this.#opts.transport.request(e.record.address, push, {
          timeout: Math.min(this.#opts.gossipTimeout, this.#opts.shutdownTimeout),
        }),
      ),
    );
    for (const wake of [...this.#waiters]) wake();
  }

  /** Every known member, this node included, sorted by id. */
  members(): Member[] {
    return [...this.#entries.values()]
      .map((e) => this.#toMember(e))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Health of a member as this node sees it (`down` if unknown). */
  statusOf(id: string): MemberStatus {
    return this.#entries.get(id)?.status ?? 'down';
  }

  /** Whether `address` belongs to a known member. */
  knowsAddress(address: string): boolean {
    // Asked for every message a peer sends (the router's admission check): a
    // cache of the entries found by address, each checked to be still current
    // and still at that address, so no change to the entries can make it lie.
    const cached = this.#byAddress.get(address);
    if (cached !== undefined && cached.record.address === address && this.#entries.get(cached.record.id) === cached) return true;
    for (const e of this.#entries.values()) {
      if (e.record.address !== address) continue;
      // Addresses of nodes that moved stay behind: start over past twice the members.
      if (this.#byAddress.size > 2 * this.#entries.size + 8) this.#byAddress.clear();
      this.#byAddress.set(address, e);
      return true;
    }
    return false;
  }

  /** Resolves once `count` members (this one included) are alive; a bad `count` rejects with a RangeError. */
  waitForMembers(count: number, options: { timeout?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (!Number.isInteger(count) || count < 1) {
      return Promise.reject(new RangeError(`Expected \`count\` to be a positive integer, got ${String(count)}`));
    }
    return this.waitFor(() => this.#aliveCount() >= count, `${count} live members`, options);
  }

  /** Resolves once `predicate` holds after a membership change; rejects on refusal, timeout or abort. */
  waitFor(
    predicate: () => boolean,
    what: string,
    options: { timeout?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    const timeout = options.timeout ?? 30_000;
    return new Promise<void>((resolve, reject) => {
      let timer: TimerHandle | undefined;
      let offAbort = (): void => {};
      const done = (err?: KvError): void => {
        this.#waiters.delete(check);
        if (timer !== undefined) this.#opts.clock.clearTimeout(timer);
        offAbort();
        if (err) reject(err);
        else resolve();
      };
      const check = (): void => {
        if (predicate()) return done();
        if (this.#lastRefusal) return done(this.#lastRefusal);
        if (!this.#running) {
          done(new KvError(ErrorCodes.NOT_STARTED, `stopped while waiting for ${what}`));
        }
      };
      const aborted = (): void => done(new AbortError(undefined, { cause: options.signal?.reason }));
      if (options.signal?.aborted) return aborted();
      if (options.signal) offAbort = onAbort(options.signal, aborted);
      timer = this.#opts.clock.setTimeout(() => {
        done(new TimeoutError(`timed out after ${timeout} ms waiting for ${what} (have ${this.#aliveCount()})`));
      }, timeout);
      this.#waiters.add(check);
      check();
    });
  }

  /** Handles `gossip.*` messages from the transport. */
  handle(message: WireMessage, from: string): WireMessage {
    switch (message.type) {
      case 'gossip.syn':
        return this.#onSyn(message, from);
      case 'gossip.push': {
        const { cluster, records } = parsePush(message);
        if (cluster !== this.#opts.cluster) {
          throw this.#refuse(from, undefined, this.#clusterMismatch(cluster));
        }
        this.#mergeRecords(records);
        this.#markJoined();
        return { type: 'gossip.ok' };
      }
      default:
        throw new KvError(ErrorCodes.INVALID_MESSAGE, `unknown gossip message type ${message.type}`);
    }
  }

  // ---- protocol -------------------------------------------------------------------------

  #clusterMismatch(other: string): KvError {
    return new KvError(
      ErrorCodes.CLUSTER_MISMATCH,
      `node ${this.#self.id} belongs to cluster "${this.#opts.cluster}", peer belongs to "${other}"`,
    );
  }

  #onSyn(message: WireMessage, from: string): AckMessage {
    const syn = parseSyn(message);
    const peer = syn.from;
    if (syn.cluster !== this.#opts.cluster) throw this.#refuse(from, peer.id, this.#clusterMismatch(syn.cluster));
    if (syn.n !== this.#opts.n) {
      throw this.#refuse(
        from,
        peer.id,
        new KvError(
          ErrorCodes.REPLICATION_MISMATCH,
          `node ${this.#self.id} uses replication factor N=${this.#opts.n}, peer ${peer.id} uses N=${syn.n}; N is cluster-wide`,
        ),
      );
    }
    if (!sameZoneReplication(syn.zones, this.#zones)) {
      throw this.#refuse(
        from,
        peer.id,
        new KvError(
          ErrorCodes.REPLICATION_MISMATCH,
          `node ${this.#self.id} uses zone map ${formatZoneReplication(this.#zones)}, peer ${peer.id} uses ${formatZoneReplication(syn.zones)}; the zone map is cluster-wide`,
        ),
      );
    }
    const known = this.#entries.get(peer.id);
    // Another live node claiming a known id at another address is refused, unless
    // it is that node restarted at a new address (a new port or container): its
    // generation is higher, and it is accepted at once, not after the old
    // address times out.
    const duplicate =
      peer.id === this.#self.id ||
      (known !== undefined &&
        known.record.address !== peer.address &&
        known.status !== 'down' &&
        !known.record.shutdown &&
        peer.generation <= known.record.generation);
    if (duplicate) {
      const where = peer.id === this.#self.id ? this.#self.address : known?.record.address;
      throw this.#refuse(
        from,
        peer.id,
        new KvError(
          ErrorCodes.DUPLICATE_NODE,
          `node id "${peer.id}" is already in use by a live node at ${where}; ${peer.address} was refused`,
        ),
      );
    }
    this.#refusals.delete(from);
    // The peer restarted with a generation below the one remembered (its clock
    // stepped back and its storage was wiped): tell it, so it moves past it.
    const remembered = known !== undefined && known.record.generation > peer.generation ? known.record.generation : null;
    this.#mergeRecords([peer]);
    this.#markJoined();
    const theirs = new Map<string, Digest>(syn.digests.map((d) => [d[0], d]));
    const records = [];
    const want: string[] = [];
    for (const entry of this.#entries.values()) {
      const r = entry.record;
      if (r.id === peer.id) continue;
      const d = theirs.get(r.id);
      if (!d || newer(r, { generation: d[1], heartbeat: d[2] })) {
        records.push(recordToWire(r, !d || d[1] !== r.generation));
      }
    }
    for (const d of syn.digests) {
      const mine = this.#entries.get(d[0]);
      if (d[0] === this.#self.id) continue;
      if (!mine || newer({ generation: d[1], heartbeat: d[2] }, mine.record)) want.push(d[0]);
    }
    return { type: 'gossip.ack', records, want, generation: remembered };
  }

  /** This node refuses the peer at `address`; returns the error to send back. */
  #refuse(address: string, id: string | undefined, error: KvError): KvError {
    this.#noteRefusal(address, id, error, 'self');
    return error;
  }

  /** Emits `member:refused` once per address and code (gossip retries every round). */
  #noteRefusal(address: string, id: string | undefined, error: KvError, by: 'self' | 'peer'): void {
    if (this.#refusals.get(address) === error.code) return;
    this.#refusals.set(address, error.code);
    this.emit('member:refused', { address, id, error, by });
  }

  async #gossipTo(address: string): Promise<void> {
    const syn: SynMessage = {
      type: 'gossip.syn',
      cluster: this.#opts.cluster,
      n: this.#opts.n,
      ...(this.#zones === undefined ? {} : { zones: zonesToWire(this.#zones) }),
      from: recordToWire(this.#self, true),
      digests: [...this.#entries.values()].map((e) => [e.record.id, e.record.generation, e.record.heartbeat] as const),
    };
    let ack: { records: DecodedRecord[]; want: string[]; generation: number | undefined };
    const signal = this.#exchanges.signal;
    try {
      ack = parseAck(await this.#opts.transport.request(address, syn, { timeout: this.#opts.gossipTimeout, signal }));
    } catch (err) {
      const e = toKvError(err, ErrorCodes.INVALID_MESSAGE);
      if (
        e.code === ErrorCodes.CLUSTER_MISMATCH ||
        e.code === ErrorCodes.REPLICATION_MISMATCH ||
        e.code === ErrorCodes.DUPLICATE_NODE ||
        // A transport that authenticates (TcpTransport) refuses a wrong secret or
        // certificate, or a protocol version it cannot speak, before gossip runs.
        e.code === ErrorCodes.AUTH_FAILED ||
        e.code === ErrorCodes.PROTOCOL_MISMATCH
      ) {
        this.#lastRefusal = e;
        this.#noteRefusal(address, undefined, e, 'peer');
        this.#notify();
      }
      return;
    }
    if (!this.#running) return;
    this.#lastRefusal = undefined;
    this.#refusals.delete(address);
    if (ack.generation !== undefined && ack.generation >= this.#self.generation) this.#moveGenerationPast(ack.generation);
    this.#mergeRecords(ack.records);
    this.#markJoined();
    if (ack.want.length > 0) {
      const wanted = new Set(ack.want);
      const push: PushMessage = {
        type: 'gossip.push',
        cluster: this.#opts.cluster,
        records: [...this.#entries.values()]
          .filter((e) => wanted.has(e.record.id))
          .map((e) => recordToWire(e.record, true)),
      };
      await this.#opts.transport.request(address, push, { timeout: this.#opts.gossipTimeout, signal }).catch(() => {});
    }
  }

  #markJoined(): void {
    if (this.#joined) return;
    this.#joined = true;
    this.#notify();
  }

  /** Takes a generation above `past` (which a peer remembers for this node) and persists it. */
  #moveGenerationPast(past: number): void {
    const generation = Math.max(this.#self.generation, past) + 1;
    this.#self = { ...this.#self, generation, heartbeat: 0 };
    this.#entry(this.#self.id).record = this.#self;
    this.#opts.onGenerationChanged?.(generation);
  }

  #mergeRecords(records: readonly DecodedRecord[]): void {
    const now = this.#opts.clock.now();
    let changedNodes = false;
    let changedPeers = false;
    for (const incoming of records) {
      if (incoming.id === this.#self.id) {
        // An earlier life of this node (same address) with a higher generation.
        if (incoming.address === this.#self.address && incoming.generation > this.#self.generation) {
          this.#moveGenerationPast(incoming.generation);
        }
        continue;
      }
      const entry = this.#entries.get(incoming.id);
      if (!entry) {
        if (incoming.tokens === undefined) continue; // we will ask for it with our digest
        const record: MemberRecord = { ...incoming, tokens: incoming.tokens };
        const fresh: Entry = { record, status: 'alive' };
        this.#entries.set(record.id, fresh);
        this.#detector.heartbeat(record.id, now);
        fresh.status = this.#computeStatus(fresh, now);
        changedNodes = true;
        this.emit('member:joined', { member: this.#toMember(fresh) });
        continue;
      }
      if (!newer(incoming, entry.record)) continue;
      const generationChanged = incoming.generation !== entry.record.generation;
      if (generationChanged && incoming.tokens === undefined) continue;
      const tokens = incoming.tokens ?? entry.record.tokens;
      const record: MemberRecord = { ...incoming, tokens };
      if (!sameNode(toNodeInfo(record), toNodeInfo(entry.record))) changedNodes = true;
      if (generationChanged) changedPeers = true;
      entry.record = record;
      this.#detector.heartbeat(record.id, now);
      this.#updateStatus(entry, now);
    }
    if (changedNodes) this.#rebuildRing();
    if (changedNodes || changedPeers) this.#persistPeers();
    this.#notify();
  }

  #persistPeers(): void {
    const save = this.#opts.onPeersChanged;
    if (!save) return;
    const peers: MemberRecord[] = [];
    for (const e of this.#entries.values()) if (e.record.id !== this.#self.id) peers.push(e.record);
    save(peers);
  }

  // ---- failure detection -------------------------------------------------------------------

  #computeStatus(entry: Entry, now: number): MemberStatus {
    if (entry.record.id === this.#self.id) return 'alive';
    if (entry.record.shutdown) return 'down';
    return this.#detector.status(entry.record.id, now);
  }

  #updateStatus(entry: Entry, now: number): void {
    const next = this.#computeStatus(entry, now);
    const prev = entry.status;
    if (next === prev) return;
    entry.status = next;
    const member = this.#toMember(entry);
    if (next === 'alive') this.emit('member:up', { member });
    else if (next === 'suspect') this.emit('member:suspected', { member });
    else this.emit('member:down', { member, reason: entry.record.shutdown ? 'shutdown' : 'timeout' });
  }

  // ---- rounds -----------------------------------------------------------------------------------

  #schedule(delay: number): void {
    if (!this.#running) return;
    this.#timer = this.#opts.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#tick();
      this.#schedule(this.#opts.interval);
    }, delay);
  }

  /**
   * One round: beat, update every member's health, start exchanges. The
   * round does not wait for them: an exchange with a silent peer (up to the
   * gossip timeout) must not delay this node's own heartbeat, or healthy
   * peers would suspect it. At most one exchange per target is in flight.
   */
  #tick(): void {
    const now = this.#opts.clock.now();
    this.#self = { ...this.#self, heartbeat: this.#self.heartbeat + 1 };
    const selfEntry = this.#entry(this.#self.id);
    selfEntry.record = this.#self;
    for (const entry of this.#entries.values()) this.#updateStatus(entry, now);
    this.#notify();

    const peers = [...this.#entries.values()].filter((e) => e.record.id !== this.#self.id);
    const live = peers.filter((e) => e.status !== 'down');
    // Down members (shut down ones too: they may have restarted) are tried now and
    // then, so a restarted node with no seeds is found again.
    const down = peers.filter((e) => e.status === 'down');
    const targets = new Set<string>();
    const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(this.#opts.random() * xs.length)];
    const liveTarget = pick(live);
    if (liveTarget) targets.add(liveTarget.record.address);
    if (down.length > 0 && this.#opts.random() < down.length / (live.length + 1)) {
      const d = pick(down);
      if (d) targets.add(d.record.address);
    }
    const seeds = this.#opts.seeds.filter((s) => s !== this.#self.address);
    if (live.length === 0) for (const s of seeds) targets.add(s);
    else if (seeds.length > 0 && this.#opts.random() < 1 / (live.length + 1)) {
      const s = pick(seeds);
      if (s) targets.add(s);
    }
    for (const target of targets) {
      if (this.#inflight.has(target)) continue;
      const exchange = this.#gossipTo(target)
        .catch(() => {})
        .finally(() => this.#inflight.delete(target));
      this.#inflight.set(target, exchange);
    }
  }

  // ---- helpers ----------------------------------------------------------------------------

  #entry(id: string): Entry {
    const e = this.#entries.get(id);
    if (!e) throw new Error(`internal: no entry for ${id}`);
    return e;
  }

  #aliveCount(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.status === 'alive') n++;
    return n;
  }

  #notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  #buildRing(): Ring {
    const nodes = [...this.#entries.values()]
      .filter((e) => e.record.state !== 'left')
      .map((e) => toNodeInfo(e.record));
    return Ring.from(nodes, { maxKeyBytes: this.#opts.maxKeyBytes, zones: this.#zones });
  }

  #rebuildRing(): void {
    const previous = this.#ring;
    this.#ring = this.#buildRing();
    this.emit('ring:changed', { ring: this.#ring, previous });
  }

  #toMember(e: Entry): Member {
    const r = e.record;
    return {
      id: r.id,
      address: r.address,
      zone: r.zone,
      weight: r.weight,
      status: e.status,
      state: r.state,
      generation: r.generation,
      heartbeat: r.heartbeat,
    };
  }
}
