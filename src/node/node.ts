import { ErrorCodes, KvError } from '../errors/index.js';
import { presentKey } from '../internal/bytes.js';
import { Defaults } from '../internal/defaults.js';
import { Membership, PhiAccrualFailureDetector, TimeoutFailureDetector } from '../membership/index.js';
import { HintedHandoff, QuorumCoordinator, ReplicaServer, metadataCounterLease } from '../replication/index.js';
import { Ring } from '../ring/index.js';
import { actorId } from '../versioning/index.js';
import { loadIdentity, MetadataWriter, type NodeIdentity } from './identity.js';
import { AE_REQUEST_TYPES } from '../antientropy/index.js';
import { AntiEntropy, antiEntropyReplica } from './anti-entropy.js';
import { Lifecycle } from './lifecycle.js';
import { MetaNames } from './metadata.js';
import { MessageRouter } from './router.js';
import type { RequestHandler } from '../transport/index.js';
import type { NodeConfig, NodeEvents } from './types.js';

/** Emits a node event (the Store forwards them to its listeners). */
export type NodeEventSink = <K extends keyof NodeEvents>(name: K, payload: Parameters<NodeEvents[K]>[0]) => void;

/** The parts of a started node. */
export interface NodeComponents {
  readonly identity: NodeIdentity;
  readonly membership: Membership;
  readonly replica: ReplicaServer;
  readonly coordinator: QuorumCoordinator;
  /** Hinted handoff: hints this node keeps as a stand-in, and their delivery (`deliverPending`). */
  readonly handoff: HintedHandoff;
  readonly router: MessageRouter;
  /** Anti-entropy: background rounds, `repair()`, the responder of peers' rounds. */
  readonly antiEntropy: AntiEntropy;
}

const STATUS_LABELS = {
  alive: Object.freeze({ status: 'alive' }),
  suspect: Object.freeze({ status: 'suspect' }),
  down: Object.freeze({ status: 'down' }),
} as const;

const MEMBERSHIP_EVENTS = [
  'member:joined',
  'member:suspected',
  'member:down',
  'member:up',
  'member:left',
  'member:refused',
  'ring:changed',
] as const;

/**
 * The composition root of one node: it builds every component once, starts
 * them in dependency order (storage → identity → replica → coordinator →
 * router and transport → gossip) and stops them in reverse. A feature adds
 * its component here and registers its message types with the router; the
 * `Store` stays the API facade.
 */
export class Node {
  readonly config: NodeConfig;
  readonly #emit: NodeEventSink;
  #lifecycle = new Lifecycle();
  #components: NodeComponents | undefined;

  constructor(config: NodeConfig, emit: NodeEventSink) {
    this.config = config;
    this.#emit = emit;
  }

  /** The started node's parts, or `KV_NOT_STARTED`. */
  get components(): NodeComponents {
    const c = this.#components;
    if (!c) throw new KvError(ErrorCodes.NOT_STARTED, `node ${this.config.id} is not started`);
    return c;
  }

  /** The parts, or undefined before start / after stop. */
  get current(): NodeComponents | undefined {
    return this.#components;
  }

  /** The node's ring (an empty ring while stopped). */
  get ring(): Ring {
    return this.#components?.membership.ring ?? Ring.empty({ maxKeyBytes: this.config.maxKeyBytes, zones: this.config.zones });
  }

  /** Builds and starts every component; on failure, stops what started and rethrows. */
  async start(): Promise<void> {
    const c = this.config;
    const life = new Lifecycle();
    this.#lifecycle = life;
    try {
      await life.start({ name: 'storage', start: () => c.storage.open(), stop: () => c.storage.close() });
      const identity = await loadIdentity(c.storage, {
        id: c.id,
        weight: c.weight,
        tokens: c.tokens,
        tokensPerWeight: Defaults.tokensPerWeight,
        clock: c.clock,
        random: c.random,
      });
      // A lost peers/generation write only costs a slower restart (the next change
      // rewrites it), so it is logged, not thrown.
      const metadata = new MetadataWriter(c.storage, (name, error) =>
        c.logger.warn('quorumkv: could not persist node metadata', { node: c.id, name, error }),
      );
      await life.start({ name: 'metadata', start: () => {}, stop: () => metadata.flush() });
      // Listen before anything reads the transport's address: a transport on
      // port 0 (TcpTransport) knows it only once listening. Requests that come
      // before the router is built and open are refused with KV_NOT_STARTED.
      let route: RequestHandler | undefined;
      await life.start({
        name: 'listener',
        start: () =>
          c.transport.start(
            (m, from) => {
              if (!route) throw new KvError(ErrorCodes.NOT_STARTED, `node ${c.id} is not started`);
              return route(m, from);
            },
            { nodeId: c.id, cluster: c.cluster },
          ),
        stop: async () => {
          if (c.transport.started) await c.transport.stop();
        },
      });
      // Validate this node (tokens, weight, zone) the way every peer will.
      const self = Ring.from([{ id: c.id, address: c.transport.address, zone: c.zone, weight: c.weight, tokens: identity.tokens }]).node(c.id);
      if (!self) throw new KvError(ErrorCodes.INTERNAL, 'node missing from its own ring');

      const membership = new Membership({
        self,
        generation: identity.generation,
        cluster: c.cluster,
        n: c.n,
        zones: c.zones,
        transport: c.transport,
        seeds: c.seeds,
        clock: c.clock,
        ...(c.random === undefined ? {} : { random: c.random }),
        interval: c.gossip.interval,
        suspectAfterRounds: c.gossip.suspectAfterRounds,
        downAfterRounds: c.gossip.downAfterRounds,
        gossipTimeout: c.gossip.timeout,
        shutdownTimeout: c.gossip.shutdownTimeout,
        maxKeyBytes: c.maxKeyBytes,
        failureDetector:
          c.gossip.detector === 'phi'
            ? new PhiAccrualFailureDetector(c.gossip.phi)
            : new TimeoutFailureDetector({
                interval: c.gossip.interval,
                suspectAfterRounds: c.gossip.suspectAfterRounds,
                downAfterRounds: c.gossip.downAfterRounds,
              }),
        peers: identity.peers,
        onPeersChanged: (peers) => metadata.peers(peers),
        onGenerationChanged: (generation) => metadata.generation(generation),
      });
      const forward = this.#emit as (name: string, payload: unknown) => void;
      for (const name of MEMBERSHIP_EVENTS) membership.on(name, (payload: unknown) => forward(name, payload));
      this.#observeMembership(membership);
      const ring = (): Ring => membership.ring;
      const replica = new ReplicaServer({
        storage: c.storage,
        actor: actorId(c.id, identity.incarnation),
        ring,
        lease: metadataCounterLease(c.storage, MetaNames.counter),
        clock: c.clock,
        maxClockEntries: c.maxClockEntries,
        maxSiblings: c.maxSiblings,
        siblingWarning: c.siblingWarning,
        onSiblings: (e) => {
          const key = presentKey(e.key);
          c.logger.warn('quorumkv: key passed the sibling warning level', { node: c.id, key, siblings: e.siblings, threshold: e.threshold });
          c.metrics.increment('quorumkv_sibling_warnings_total');
          this.#emit('siblings:exceeded', { key, siblings: e.siblings, threshold: e.threshold });
        },
      });
      await life.start({ name: 'replica', start: () => replica.open(), stop: () => {} });
      const handoff = new HintedHandoff({
        self: c.id,
        cluster: c.cluster,
        storage: c.storage,
        transport: c.transport,
        ring,
        status: (id) => membership.statusOf(id),
        clock: c.clock,
        generation: identity.generation,
        applyLocal: (key, set, record) => replica.apply(key, set, record),
        ttl: c.hints.ttl,
        maxInFlight: c.hints.maxInFlight,
        interval: c.hints.interval,
        onStored: (e) => {
          c.metrics.increment('quorumkv_hints_stored_total');
          this.#emit('hint:stored', { target: e.target, key: presentKey(e.key) });
        },
        onDelivered: (e) => {
          c.metrics.increment('quorumkv_hints_delivered_total');
          this.#emit('hint:delivered', { target: e.target, key: presentKey(e.key) });
        },
        onExpired: (e) => {
          c.metrics.increment('quorumkv_hints_expired_total');
          c.logger.warn('quorumkv: hint expired undelivered', { node: c.id, target: e.target, key: presentKey(e.key) });
        },
        onError: (error) => c.logger.warn('quorumkv: hint delivery pass failed', { node: c.id, code: error.code, error }),
      });
      membership.on('member:up', ({ member }) => handoff.wake(member.id));
      const coordinator = new QuorumCoordinator({
        self: c.id,
        cluster: c.cluster,
        n: c.n,
        transport: c.transport,
        replica,
        ring,
        status: (id) => membership.statusOf(id),
        clock: c.clock,
        onRepair: (e) => this.#emit('repair:completed', { key: presentKey(e.key), nodes: e.nodes }),
        sloppyQuorum: c.sloppyQuorum,
        hopTimeout: c.hopTimeout,
        hints: handoff,
      });
      await life.start({ name: 'coordinator', start: () => {}, stop: () => coordinator.stop() });
      await life.start({ name: 'hinted-handoff', start: () => handoff.start(), stop: () => handoff.stop() });

      const antiEntropy = new AntiEntropy({
        self: c.id,
        cluster: c.cluster,
        n: c.n,
        transport: c.transport,
        replica: antiEntropyReplica(c.storage, replica),
        ring,
        status: (id) => membership.statusOf(id),
        clock: c.clock,
        random: c.random,
        config: c.antiEntropy,
        maxRecordBytes: c.transport.capabilities.maxFrameBytes ?? 64 * 1024 * 1024,
        logger: c.logger,
        metrics: c.metrics,
        // repair() hands this node's pending hints to their owners first.
        deliverHints: (signal) => handoff.deliverPending(signal),
      });
      const router = new MessageRouter({ self: c.id, cluster: c.cluster, knows: (a) => membership.knowsAddress(a) });
      router.register('gossip.syn', 'open', (m, from) => membership.handle(m, from));
      router.register('gossip.push', 'open', (m, from) => membership.handle(m, from));
      router.register('kv.read', 'member', (m) => replica.handle(m));
      router.register('kv.apply', 'member', (m) => replica.handle(m));
      router.register('kv.apply-batch', 'member', (m) => replica.handle(m));
      router.register('kv.read-batch', 'member', (m) => replica.handle(m));
      router.register('kv.coordinate', 'member', (m) => coordinator.handle(m));
      router.register('kv.version', 'member', (m) => replica.handle(m));
      router.register('kv.hint', 'member', (m) => handoff.handle(m));
      for (const type of AE_REQUEST_TYPES) router.register(type, 'member', antiEntropy.handle);
      await life.start({
        name: 'transport',
        start: () => {
          route = router.handle;
          router.open();
        },
        stop: async () => {
          router.close();
          if (c.transport.started) await c.transport.stop();
        },
      });
      this.#components = { identity, membership, replica, coordinator, handoff, router, antiEntropy };
      // Last: gossip announces the node. Stopping it first announces the shutdown
      // while the transport still runs; stopping the transport next fails
      // in-flight requests at once, so background work ends before storage closes.
      await life.start({ name: 'membership', start: () => membership.start(), stop: () => membership.stop() });
      // After gossip (rounds need peers); stopped first, so a running round ends before gossip and the transport.
      await life.start(antiEntropy);
    } catch (err) {
      this.#components = undefined;
      await life.stop().catch(() => {});
      throw err;
    }
  }

  /** Logs membership changes and keeps the member gauges current. */
  #observeMembership(membership: Membership): void {
    const { logger, metrics, id } = this.config;
    const gauges = (): void => {
      const counts = { alive: 0, suspect: 0, down: 0 };
      for (const m of membership.members()) counts[m.status]++;
      for (const status of ['alive', 'suspect', 'down'] as const) {
        metrics.gauge('quorumkv_members', counts[status], STATUS_LABELS[status]);
      }
    };
    membership.on('member:joined', ({ member }) => {
      logger.info('quorumkv: member joined', { node: id, member: member.id, address: member.address });
      gauges();
    });
    membership.on('member:suspected', ({ member }) => {
      logger.warn('quorumkv: member suspected', { node: id, member: member.id });
      gauges();
    });
    membership.on('member:down', ({ member, reason }) => {
      logger.warn('quorumkv: member down', { node: id, member: member.id, reason });
      gauges();
    });
    membership.on('member:up', ({ member }) => {
      logger.info('quorumkv: member up', { node: id, member: member.id });
      gauges();
    });
    membership.on('member:refused', ({ address, error, by }) => {
      logger.error('quorumkv: join refused', { node: id, peer: address, by, code: error.code, error });
      metrics.increment('quorumkv_refusals_total', { code: error.code });
    });
  }

  /** Stops every component in reverse order. */
  async stop(): Promise<void> {
    try {
      await this.#lifecycle.stop();
    } finally {
      this.#components = undefined;
    }
  }

  /**
   * The admission check of a data call: resolves (or returns undefined at
   * once, the common case) when this node may coordinate. A node refused by
   * its peers fails with the refusal's code; a node that has not joined its
   * cluster waits for the join until `deadline`, then fails with `KV_NOT_JOINED`.
   */
  admit(deadline: number, signal: AbortSignal | undefined): Promise<void> | undefined {
    const { membership } = this.components;
    const refusal = membership.refusal;
    if (refusal) throw refused(this.config.id, refusal);
    if (membership.joined) return undefined;
    const timeout = Math.max(0, deadline - this.config.clock.now());
    return membership
      .waitFor(() => membership.joined, 'the join', signal ? { timeout, signal } : { timeout })
      .catch((err: unknown) => {
        if (err instanceof KvError && err.code === ErrorCodes.TIMEOUT) {
          throw new KvError(
            ErrorCodes.NOT_JOINED,
            `node ${this.config.id} has not joined its cluster: none of its seeds (${this.config.seeds.join(', ')}) answered within ${timeout} ms`,
          );
        }
        if (err instanceof KvError && isRefusal(err.code)) throw refused(this.config.id, err);
        throw err;
      });
  }
}

function isRefusal(code: string): boolean {
  return (
    code === ErrorCodes.CLUSTER_MISMATCH ||
    code === ErrorCodes.REPLICATION_MISMATCH ||
    code === ErrorCodes.DUPLICATE_NODE ||
    code === ErrorCodes.AUTH_FAILED ||
    code === ErrorCodes.PROTOCOL_MISMATCH
  );
}

function refused(id: string, cause: KvError): KvError {
  return new KvError(cause.code, `node ${id} was refused by its peers and serves no data call: ${cause.message}`, { cause });
}
