import { MemoryNetwork, type MemoryNetworkOptions } from '../transport/index.js';
import { MemoryStorage, type StorageAdapter } from '../storage/index.js';
import { Store } from '../store/index.js';
import type { ConflictPolicy, GossipOptions, ReplicationOptions, StoreOptions } from '../store/index.js';
import { TimeoutError } from '../errors/index.js';

/** Options of {@link createTestCluster}. */
export interface TestClusterOptions<V = unknown> {
  /** Number of nodes (ids `n1`, `n2`, ...) or explicit ids. @default 3 */
  nodes?: number | readonly string[];
  /** @default { n: 3, r: 2, w: 2 } (N capped at the node count) */
  replication?: ReplicationOptions;
  conflict?: ConflictPolicy<V>;
  /** Zones assigned round-robin to the nodes. */
  zones?: readonly string[];
  /** Options of the MemoryNetwork (codec, seed, ...). */
  network?: MemoryNetworkOptions;
  /** Gossip settings. @default { interval: 50, suspectAfterRounds: 10, downAfterRounds: 20, timeout: 500 } */
  gossip?: GossipOptions;
  /** Per-call deadline of every store, ms. @default 2000 */
  timeout?: number;
  /** Cluster name. @default 'test' */
  cluster?: string;
  /** Storage of each node. @default a new MemoryStorage */
  storage?: (id: string) => StorageAdapter;
  /** Extra options for every store. */
  store?: Partial<Omit<StoreOptions<V>, 'id' | 'transport' | 'storage' | 'seeds'>>;
  /** How long to wait for convergence, ms. @default 10000 */
  convergeTimeout?: number;
}

/** A running in-process cluster. */
export interface TestCluster<V = unknown> {
  readonly network: MemoryNetwork;
  /** The stores, in node order (a restart replaces the entry). */
  readonly stores: Store<V>[];
  /** The store with this id. */
  store(id: string): Store<V>;
  /** The storage object of a node (kept across restarts). */
  storage(id: string): StorageAdapter;
  /**
   * Stops a node and starts a new Store over the same storage (a crash and
   * restart), or over new empty storage with `{ emptyStorage: true }`; waits
   * until every running node sees it alive again.
   */
  restart(id: string, options?: { emptyStorage?: boolean }): Promise<Store<V>>;
  /** Resolves once every running node sees every running node alive on a full ring. */
  converged(timeout?: number): Promise<void>;
  /** Stops every store. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts an in-process cluster over a {@link MemoryNetwork} and resolves once
 * it has converged (every node sees every other alive, with the same ring).
 * For testing services that embed quorumkv.
 *
 * @example
 * ```ts
 * const cluster = await createTestCluster({ nodes: 5 });
 * await cluster.stores[0].put('k', 1);
 * cluster.network.isolate(cluster.stores[4].transport.address);
 * await cluster.stop();
 * ```
 */
export async function createTestCluster<V = unknown>(options: TestClusterOptions<V> = {}): Promise<TestCluster<V>> {
  const ids =
    typeof options.nodes === 'object'
      ? [...options.nodes]
      : Array.from({ length: options.nodes ?? 3 }, (_, i) => `n${i + 1}`);
  if (ids.length === 0) throw new RangeError('Expected at least one node');
  const network = new MemoryNetwork(options.network);
  const n = Math.min(options.replication?.n ?? 3, ids.length);
  const replication: ReplicationOptions = {
    n,
    r: Math.min(options.replication?.r ?? Math.floor(n / 2) + 1, n),
    w: Math.min(options.replication?.w ?? Math.floor(n / 2) + 1, n),
  };
  const gossip: GossipOptions = { interval: 50, suspectAfterRounds: 10, downAfterRounds: 20, timeout: 500, ...options.gossip };
  const storages = new Map<string, StorageAdapter>();
  // Everyone joins through the first node; the first node (e.g. when it restarts) through the second.
  const seedsOf = (id: string): string[] => [(id === ids[0] ? ids[1] : ids[0]) as string].filter((s) => s !== undefined);

  const make = (id: string, index: number): Store<V> => {
    let storage = storages.get(id);
    if (!storage) {
      storage = options.storage?.(id) ?? new MemoryStorage();
      storages.set(id, storage);
    }
    const zone = options.zones?.[index % options.zones.length];
    return new Store<V>({
      ...options.store,
      id,
      cluster: options.cluster ?? 'test',
      transport: network.transport(id),
      storage,
      seeds: seedsOf(id),
      replication,
      gossip,
      timeout: options.timeout ?? 2_000,
      ...(options.conflict === undefined ? {} : { conflict: options.conflict }),
      ...(zone === undefined ? {} : { zone }),
    });
  };

  const stores = ids.map((id, i) => make(id, i));
  const running = (): Store<V>[] => stores.filter((s) => s.started);
  const converged = (timeout = options.convergeTimeout ?? 10_000): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const check = (): void => {
        const live = running();
        const ok = live.every((s) => {
          const alive = new Set(s.members().filter((m) => m.status === 'alive').map((m) => m.id));
          return live.every((o) => alive.has(o.id)) && s.ring.size === ids.length;
        });
        if (ok) return resolve();
        if (Date.now() - started > timeout) {
          const view = live.map((s) => `${s.id}: ${s.members().filter((m) => m.status === 'alive').map((m) => m.id).join(',')}`);
          return reject(new TimeoutError(`test cluster did not converge within ${timeout} ms (${view.join('; ')})`));
        }
        setTimeout(check, 5);
      };
      check();
    });

  const cluster: TestCluster<V> = {
    network,
    stores,
    store(id) {
      const s = stores.find((x) => x.id === id);
      if (!s) throw new RangeError(`No node ${id} in this cluster`);
      return s;
    },
    storage(id) {
      const s = storages.get(id);
      if (!s) throw new RangeError(`No node ${id} in this cluster`);
      return s;
    },
    async restart(id, restartOptions = {}) {
      const index = ids.indexOf(id);
      if (index < 0) throw new RangeError(`No node ${id} in this cluster`);
      await stores[index]?.stop();
      if (restartOptions.emptyStorage) storages.set(id, options.storage?.(id) ?? new MemoryStorage());
      const fresh = make(id, index);
      stores[index] = fresh;
      await fresh.start();
      await converged();
      return fresh;
    },
    converged,
    async stop() {
      await Promise.all(stores.map((s) => s.stop()));
    },
    async [Symbol.asyncDispose]() {
      await cluster.stop();
    },
  };
  try {
    await Promise.all(stores.map((s) => s.start()));
    await converged();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
