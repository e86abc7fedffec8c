import { MemoryNetwork, type MemoryNetworkOptions } from '../transport/index.js';
import { MemoryStorage, type StorageAdapter } from '../storage/index.js';
import { Store } from '../store/index.js';
import type { ConflictPolicy, GossipOptions, ReplicationOptions, StoreOptions } from '../store/index.js';
import { ErrorCodes, KvError, TimeoutError } from '../errors/index.js';

/**
 * The gossip settings of {@link createTestCluster} unless `gossip` overrides
 * them: 50 ms rounds and 200 ms per gossip exchange, with the default
 * phi-accrual detector and its default settings.
 *
 * Why these numbers: at 50 ms rounds news of a member arrives about every
 * 60 ms, so the phi defaults (`acceptableHeartbeatPause` 500 ms,
 * `minStdDeviation` 200 ms, thresholds 4 and 8) suspect a silent member
 * after about 1.3 s and declare it down after about 1.6 s, as fast as at
 * the production interval less its longer gaps. How long a healthy
 * member's news can seem silent is one round plus the rounds gossip takes
 * to carry it around: at most about 250 ms measured in a 5-node cluster
 * with one node isolated, about 620 ms when the test process also blocks
 * its event loop for 200 ms every 300 ms (and the detector then widens its
 * window). The 1.3 s covers both. The exchange timeout is well under that,
 * so even a gossip loop that waited for an exchange with an isolated peer
 * could not delay news into it. An in-process exchange takes well under a
 * millisecond; a test that injects more than about 80 ms of one-way latency
 * for longer than a second should raise `timeout` (e.g. `gossip: { timeout: 1000 }`).
 *
 * The phi detector has no round counts: a test that passes
 * `suspectAfterRounds`/`downAfterRounds` gets the timeout detector with
 * those counts (see `GossipOptions.detector`).
 */
export const TEST_CLUSTER_GOSSIP: Readonly<Required<Pick<GossipOptions, 'interval' | 'timeout'>>> = Object.freeze({
  interval: 50,
  timeout: 200,
});

/** Store options a test cluster lets callers set (it sets the rest itself). */
export type TestClusterStoreOptions<V = unknown> = Partial<Omit<StoreOptions<V>, 'id' | 'transport' | 'storage' | 'seeds'>>;

/** Options of {@link createTestCluster}. */
export interface TestClusterOptions<V = unknown> {
  /** Number of nodes (ids `n1`, `n2`, ...) or explicit ids. @default 3 */
  nodes?: number | readonly string[];
  /**
   * Replication settings. N is fixed when the cluster is created (it is
   * cluster-wide) and applies to nodes added later.
   * @default { n: 3, r: 2, w: 2 } (N capped at the node count, or with `zones` their sum; R and W at a majority of N)
   */
  replication?: ReplicationOptions;
  /** Conflict policy of every store. @default 'siblings' */
  conflict?: ConflictPolicy<V>;
  /** Zones assigned round-robin to the nodes, in the order they are made (added nodes included). @default no zones */
  zones?: readonly string[];
  /** Options of the MemoryNetwork (codec, seed, ...). @default {} */
  network?: MemoryNetworkOptions;
  /** Gossip settings, over {@link TEST_CLUSTER_GOSSIP}. @default TEST_CLUSTER_GOSSIP */
  gossip?: GossipOptions;
  /** Per-call deadline of every store, ms. @default 2000 */
  timeout?: number;
  /** Cluster name. @default 'test' */
  cluster?: string;
  /** Storage of each node. @default a new MemoryStorage */
  storage?: (id: string) => StorageAdapter;
  /** Extra options for every store (`replication`, `gossip`, `timeout`, `conflict` and `cluster` above take precedence). @default {} */
  store?: TestClusterStoreOptions<V>;
  /** How long `createTestCluster`, `converged()`, `restart()` and `add()` wait for convergence, ms. @default 10000 */
  convergeTimeout?: number;
}

/** Options of {@link TestCluster.add}. */
export interface TestClusterAddOptions<V = unknown> {
  /** Id (and network address) of the new node. @default the first free `n{k}`, counting from the number of nodes + 1 */
  id?: string;
  /** Zone of the new node. @default the next of the cluster's `zones`, round-robin */
  zone?: string;
  /** Storage of the new node. @default the cluster's `storage(id)`, else a new MemoryStorage */
  storage?: StorageAdapter;
  /**
   * Store options of this node only, over the cluster's (they may override
   * `replication`, `gossip`, `timeout`, ...: a node with another N is refused
   * by its peers, so `add()` then rejects with `KV_TIMEOUT`).
   * @default {}
   */
  store?: TestClusterStoreOptions<V>;
  /** How long to wait for convergence, ms. @default the cluster's `convergeTimeout` */
  timeout?: number;
}

/** A running in-process cluster made by {@link createTestCluster}. */
export interface TestCluster<V = unknown> {
  /** The network every node of the cluster is on (inject faults here). */
  readonly network: MemoryNetwork;
  /** The stores, in the order the nodes were made; a restart replaces its entry, `add()` appends. */
  readonly stores: Store<V>[];
  /**
   * The store with this id.
   * @throws RangeError when no node of the cluster has this id.
   */
  store(id: string): Store<V>;
  /**
   * The storage object of a node (kept across restarts).
   * @throws RangeError when no node of the cluster has this id.
   */
  storage(id: string): StorageAdapter;
  /**
   * Stops a node and starts a new Store over the same storage (a crash and
   * restart), or over new empty storage with `{ emptyStorage: true }`; then
   * waits until the restarted node and every running node it can reach
   * (see {@link TestCluster.converged}) have converged. Nodes isolated or
   * partitioned away from it are not waited for.
   * Rejects with `KV_TIMEOUT` after the cluster's `convergeTimeout`
   * (the restarted node stays in the cluster).
   */
  restart(id: string, options?: { emptyStorage?: boolean }): Promise<Store<V>>;
  /**
   * Starts a new node, seeded with every node of the cluster, waits until it
   * and every running node it can reach have converged, and resolves with
   * its Store. The node then belongs to the cluster like the others
   * (`stores`, `store(id)`, `storage(id)`, `restart`, `stop`). If it fails to
   * start it is removed again; if it does not converge in time the call
   * rejects with `KV_TIMEOUT` and the node stays (running) in the cluster.
   *
   * @throws TypeError on malformed options; RangeError when `id` is already a node of the cluster.
   */
  add(options?: TestClusterAddOptions<V>): Promise<Store<V>>;
  /**
   * Resolves once the running nodes have converged: split the running nodes
   * of the cluster into groups that can reach one another (links up as
   * {@link MemoryNetwork.connected} says, directly or through other nodes);
   * within each group, every node sees every node of its group `alive`, and
   * all of them have the same ring. An isolated node is a group of its own.
   *
   * Nodes the helper did not make (a `Store` you started on
   * `cluster.network` yourself) are not waited for: they need not be alive
   * or reachable. Once gossip has spread them they are on every ring like
   * any member, which the same-ring condition waits for.
   *
   * Polls every 5 ms. Rejects with `KV_TIMEOUT` (saying what each node
   * sees) after `timeout` ms, with `KV_NOT_STARTED` if the cluster is
   * stopped meanwhile, and with a RangeError for a bad `timeout`. Leaves no
   * timer behind once settled.
   *
   * @param timeout ms. @default the cluster's `convergeTimeout` (10000)
   */
  converged(timeout?: number): Promise<void>;
  /** Stops every store; pending `converged()` waits reject with `KV_NOT_STARTED`. */
  stop(): Promise<void>;
  /** Same as {@link TestCluster.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** What the helper remembers of a node across restarts. */
interface NodeSpec<V> {
  readonly id: string;
  readonly zone: string | undefined;
  readonly store: TestClusterStoreOptions<V> | undefined;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value);
}

function checkTimeout(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value > 0)) {
    throw new RangeError(`Expected \`${what}\` to be a positive number of milliseconds, got ${describe(value)}`);
  }
  return value;
}

function checkId(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`Expected \`${what}\` to be a non-empty string, got ${describe(value)}`);
  }
  return value;
}

/**
 * Starts an in-process cluster over a {@link MemoryNetwork} and resolves once
 * it has converged (every node sees every other alive, with the same ring).
 * For testing services that embed quorumkv. Node ids are also their network
 * addresses, so `cluster.network.isolate('n3')` cuts off node `n3`.
 *
 * @example
 * ```ts
 * const cluster = await createTestCluster({ nodes: 5 });   // N3 R2 W2 by default
 * await cluster.stores[0].put('k', 1);
 * cluster.network.isolate('n3');                           // fault injection
 * await cluster.restart('n2');                             // crash + restart over the same storage
 * await cluster.restart('n4', { emptyStorage: true });     // ... or after losing its disk
 * const n6 = await cluster.add();                          // grow the cluster
 * await cluster.stop();
 * ```
 */
export async function createTestCluster<V = unknown>(options: TestClusterOptions<V> = {}): Promise<TestCluster<V>> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
  }
  let ids: string[];
  if (options.nodes === undefined || typeof options.nodes === 'number') {
    const count = options.nodes ?? 3;
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new RangeError(`Expected \`nodes\` to be a positive integer or a non-empty array of ids, got ${describe(count)}`);
    }
    ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  } else if (Array.isArray(options.nodes)) {
    ids = options.nodes.map((id, i) => checkId(id, `nodes[${i}]`));
    if (ids.length === 0) throw new RangeError('Expected `nodes` to be a positive integer or a non-empty array of ids, got []');
    const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
    if (duplicate !== undefined) throw new RangeError(`Expected the ids in \`nodes\` to be distinct, got ${JSON.stringify(duplicate)} twice`);
  } else {
    throw new TypeError(`Expected \`nodes\` to be a positive integer or an array of ids, got ${describe(options.nodes)}`);
  }
  const convergeTimeout = checkTimeout(options.convergeTimeout ?? 10_000, 'convergeTimeout');
  const network = new MemoryNetwork(options.network);
  // A zone map fixes N (its sum; the placement caps each zone at its nodes).
  const zoneMap = options.replication?.zones;
  const n =
    zoneMap === undefined
      ? Math.min(options.replication?.n ?? 3, ids.length)
      : (options.replication?.n ?? Object.values(zoneMap).reduce((a, b) => a + b, 0));
  const replication: ReplicationOptions = {
    n,
    r: Math.min(options.replication?.r ?? Math.floor(n / 2) + 1, n),
    w: Math.min(options.replication?.w ?? Math.floor(n / 2) + 1, n),
    ...(zoneMap === undefined ? {} : { zones: zoneMap }),
  };
  const gossip: GossipOptions = { ...TEST_CLUSTER_GOSSIP, ...options.gossip };
  const specs = new Map<string, NodeSpec<V>>();
  const storages = new Map<string, StorageAdapter>();
  const stores: Store<V>[] = [];
  /** Rejecters of pending convergence waits (stop() calls them). */
  const waits = new Set<(err: KvError) => void>();
  let made = 0;

  const remember = (id: string, zone: string | undefined, store: TestClusterStoreOptions<V> | undefined): void => {
    const index = made++;
    specs.set(id, { id, zone: zone ?? options.zones?.[index % options.zones.length], store });
  };
  const freshStorage = (id: string): StorageAdapter => options.storage?.(id) ?? new MemoryStorage();
  const known = (): string => [...specs.keys()].join(', ');
  const specOf = (id: string): NodeSpec<V> => {
    const spec = typeof id === 'string' ? specs.get(id) : undefined;
    if (!spec) throw new RangeError(`Expected \`id\` to be a node of this cluster (${known()}), got ${describe(id)}`);
    return spec;
  };

  /** A new Store for node `id`, over its current storage, seeded with every other node of the cluster. */
  const make = (id: string): Store<V> => {
    const spec = specOf(id);
    let storage = storages.get(id);
    if (!storage) {
      storage = freshStorage(id);
      storages.set(id, storage);
    }
    return new Store<V>({
      ...options.store,
      cluster: options.cluster ?? 'test',
      replication,
      gossip,
      timeout: options.timeout ?? 2_000,
      ...(options.conflict === undefined ? {} : { conflict: options.conflict }),
      ...(spec.zone === undefined ? {} : { zone: spec.zone }),
      ...spec.store,
      id,
      transport: network.transport(id),
      storage,
      seeds: [...specs.keys()].filter((s) => s !== id),
    });
  };

  const running = (): Store<V>[] => stores.filter((s) => s.started);

  /** The running nodes `from` can reach, directly or through other running nodes (itself included). */
  const reachable = (from: Store<V>, live: readonly Store<V>[]): Store<V>[] => {
    const group = [from];
    const seen = new Set([from]);
    for (let i = 0; i < group.length; i++) {
      const a = group[i]!;
      for (const b of live) {
        if (!seen.has(b) && network.connected(a.transport.address, b.transport.address)) {
          seen.add(b);
          group.push(b);
        }
      }
    }
    return group;
  };

  const ringOf = (s: Store<V>): string => s.ring.nodes.map((node) => node.id).join(',');
  const aliveIn = (s: Store<V>): Set<string> => new Set(s.members().filter((m) => m.status === 'alive').map((m) => m.id));

  /** Checks the groups of the running nodes in `scope()`; returns undefined when converged, else what each node sees. */
  const lagging = (scope: (live: Store<V>[]) => Store<V>[]): string | undefined => {
    const live = running();
    const problems: string[] = [];
    const done = new Set<Store<V>>();
    for (const s of scope(live)) {
      if (done.has(s)) continue;
      const group = reachable(s, live);
      for (const g of group) done.add(g);
      const ring = ringOf(group[0]!);
      const ok = group.every((g) => {
        const alive = aliveIn(g);
        return ringOf(g) === ring && group.every((o) => alive.has(o.id));
      });
      if (!ok) {
        const views = group.map((g) => `${g.id} sees alive ${[...aliveIn(g)].join(',')} on ring ${ringOf(g)}`);
        problems.push(`group ${group.map((g) => g.id).join(',')}: ${views.join('; ')}`);
      }
    }
    return problems.length === 0 ? undefined : problems.join(' | ');
  };

  const waitConverged = (timeout: number, scope: (live: Store<V>[]) => Store<V>[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const started = Date.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (err?: KvError): void => {
        waits.delete(settle);
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        if (err) reject(err);
        else resolve();
      };
      const check = (): void => {
        timer = undefined;
        const problem = lagging(scope);
        if (problem === undefined) return settle();
        if (Date.now() - started >= timeout) {
          return settle(new TimeoutError(`test cluster did not converge within ${timeout} ms (${problem})`));
        }
        timer = setTimeout(check, 5);
      };
      waits.add(settle);
      check();
    });

  const converged = (timeout: number = convergeTimeout): Promise<void> => {
    try {
      checkTimeout(timeout, 'timeout');
    } catch (err) {
      return Promise.reject(err);
    }
    return waitConverged(timeout, (live) => live);
  };

  /** Waits for `node` and every running node it can reach. */
  const convergedAround = (node: Store<V>, timeout: number): Promise<void> =>
    waitConverged(timeout, (live) => (live.includes(node) ? [node] : []));

  const nextId = (): string => {
    for (let k = specs.size + 1; ; k++) if (!specs.has(`n${k}`)) return `n${k}`;
  };

  const cluster: TestCluster<V> = {
    network,
    stores,
    store(id) {
      specOf(id);
      const s = stores.find((x) => x.id === id);
      if (!s) throw new RangeError(`Expected \`id\` to be a node of this cluster (${known()}), got ${describe(id)}`);
      return s;
    },
    storage(id) {
      specOf(id);
      const s = storages.get(id);
      if (!s) throw new RangeError(`Expected \`id\` to be a node of this cluster (${known()}), got ${describe(id)}`);
      return s;
    },
    async restart(id, restartOptions = {}) {
      specOf(id);
      if (typeof restartOptions !== 'object' || restartOptions === null) {
        throw new TypeError(`Expected \`options\` to be an object, got ${describe(restartOptions)}`);
      }
      const index = stores.findIndex((s) => s.id === id);
      await stores[index]?.stop();
      if (restartOptions.emptyStorage) storages.set(id, freshStorage(id));
      const fresh = make(id);
      if (index >= 0) stores[index] = fresh;
      else stores.push(fresh);
      await fresh.start();
      await convergedAround(fresh, convergeTimeout);
      return fresh;
    },
    async add(addOptions = {}) {
      if (typeof addOptions !== 'object' || addOptions === null) {
        throw new TypeError(`Expected \`options\` to be an object, got ${describe(addOptions)}`);
      }
      const id = addOptions.id === undefined ? nextId() : checkId(addOptions.id, 'id');
      if (specs.has(id)) throw new RangeError(`Expected \`id\` to be an id not in use in this cluster (${known()}), got ${describe(id)}`);
      if (addOptions.zone !== undefined) checkId(addOptions.zone, 'zone');
      if (addOptions.store !== undefined && (typeof addOptions.store !== 'object' || addOptions.store === null)) {
        throw new TypeError(`Expected \`store\` to be an object of Store options, got ${describe(addOptions.store)}`);
      }
      const timeout = checkTimeout(addOptions.timeout ?? convergeTimeout, 'timeout');
      remember(id, addOptions.zone, addOptions.store);
      if (addOptions.storage !== undefined) storages.set(id, addOptions.storage);
      let node: Store<V>;
      try {
        node = make(id);
        stores.push(node);
        await node.start();
      } catch (err) {
        const at = stores.findIndex((s) => s.id === id);
        if (at >= 0) stores.splice(at, 1);
        specs.delete(id);
        storages.delete(id);
        throw err;
      }
      await convergedAround(node, timeout);
      return node;
    },
    converged,
    async stop() {
      for (const settle of [...waits]) settle(new KvError(ErrorCodes.NOT_STARTED, 'test cluster stopped while waiting for convergence'));
      await Promise.all(stores.map((s) => s.stop()));
    },
    async [Symbol.asyncDispose]() {
      await cluster.stop();
    },
  };

  for (const id of ids) remember(id, undefined, undefined);
  try {
    for (const id of ids) stores.push(make(id));
    await Promise.all(stores.map((s) => s.start()));
    await converged();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
