import { createHash } from 'node:crypto';
import { TimeoutError, KvError } from '../errors/index.js';
import { seededRandom } from '../internal/random.js';
import { MemoryStorage, type StorageAdapter } from '../storage/index.js';
import { Store } from '../store/index.js';
import type { ConflictPolicy, GossipOptions, ReplicationOptions } from '../store/index.js';
import { MemoryNetwork, type MemoryLatency } from '../transport/index.js';
import type { TestClusterStoreOptions } from './cluster.js';
import { SIMULATION_EPOCH, SimulatedClock } from './simulation-clock.js';

/** Options of {@link simulate} and {@link Simulation}. */
export interface SimulationOptions<V = unknown> {
  /**
   * The run's seed: the network, the scheduler, every node's randomness and
   * the workloads draw from it, so the same seed replays the same run.
   * @default a random 32-bit seed (printed, and in the result)
   */
  seed?: number;
  /** Number of nodes (ids `n1`, `n2`, ...) or explicit ids. @default 5 */
  nodes?: number | readonly string[];
  /** Replication settings of every store. @default { n: 3, r: 2, w: 2 } (N capped at the node count) */
  replication?: ReplicationOptions;
  /** Whole-call deadline of every store operation, virtual ms. @default 1000 */
  timeout?: number;
  /** Gossip settings of every store. @default the Store defaults (250 ms rounds, phi-accrual detector) */
  gossip?: GossipOptions;
  /** Conflict policy of every store. @default 'siblings' */
  conflict?: ConflictPolicy<V>;
  /**
   * One-way latency of every message, virtual ms, drawn from the seed (a
   * nemesis may change it for a while).
   * @default { min: 0, max: 3 }
   */
  latency?: MemoryLatency;
  /** Extra options of every store (e.g. `sloppyQuorum`); the settings above take precedence. @default {} */
  store?: TestClusterStoreOptions<V>;
  /** Storage of a node, called at the first start and at every restart with empty storage. @default a new MemoryStorage */
  storage?: (id: string) => StorageAdapter;
  /**
   * Where the run prints its seed (once, at the start) and its summary;
   * `false` for silence.
   * @default console.log
   */
  log?: ((line: string) => void) | false;
  /** Virtual time at the start, ms since the epoch. @default SIMULATION_EPOCH (2024-01-01) */
  start?: number;
  /** How long {@link simulate} lets the run take, virtual ms, before it fails with `KV_TIMEOUT`. @default 6 hours */
  maxVirtualTime?: number;
}

/** Options of {@link Simulation.restart}. */
export interface SimulationRestartOptions {
  /** Start over new, empty storage (a node that lost its disk). @default false */
  emptyStorage?: boolean;
  /** Stop without announcing it to the peers (a crash: its links are cut while it stops). @default true */
  crash?: boolean;
  /** Virtual ms between the stop and the new start. @default 0 */
  downtime?: number;
}

/** What {@link simulate} resolves with. */
export interface SimulationResult<T> {
  /** The seed of the run (replay it with the same options and this seed). */
  readonly seed: number;
  /** What the body returned. */
  readonly value: T;
  /** The trace: one line per recorded event, prefixed with its virtual time. */
  readonly history: readonly string[];
  /** SHA-256 (hex) of the trace and of the final counters: equal for two runs of the same seed. */
  readonly traceHash: string;
  /** Virtual time the run took, ms. */
  readonly virtualMs: number;
  /** Timer callbacks the scheduler ran. */
  readonly steps: number;
  /** Real time the run took, ms. */
  readonly realMs: number;
}

/**
 * A simulation failed: the body threw (a checker found a violation, or an
 * operation failed unexpectedly). Carries the seed and the trace up to the
 * failure; its `cause` is the original error.
 */
export class SimulationError extends Error {
  override readonly name = 'SimulationError';
  /** The seed that replays the failure. */
  readonly seed: number;
  /** The trace up to the failure. */
  readonly history: readonly string[];
  /** Virtual ms from the start of the run to the failure. */
  readonly virtualMs: number;

  constructor(message: string, init: { seed: number; history: readonly string[]; virtualMs: number; cause: unknown }) {
    super(message, { cause: init.cause });
    this.seed = init.seed;
    this.history = init.history;
    this.virtualMs = init.virtualMs;
  }
}

/** 32-bit hash of a seed and a label, for independent PRNG streams of one seed. */
export function deriveSeed(seed: number, label: string): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value);
}

function nodeIds(nodes: SimulationOptions['nodes']): string[] {
  if (nodes === undefined || typeof nodes === 'number') {
    const count = nodes ?? 5;
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new RangeError(`Expected \`nodes\` to be a positive integer or a non-empty array of ids, got ${describe(count)}`);
    }
    return Array.from({ length: count }, (_, i) => `n${i + 1}`);
  }
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new TypeError(`Expected \`nodes\` to be a positive integer or a non-empty array of ids, got ${describe(nodes)}`);
  }
  const ids = nodes.map((id: unknown, i) => {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`Expected \`nodes[${i}]\` to be a non-empty string, got ${describe(id)}`);
    return id;
  });
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate !== undefined) throw new RangeError(`Expected the ids in \`nodes\` to be distinct, got ${JSON.stringify(duplicate)} twice`);
  return ids;
}

/**
 * An in-process cluster in virtual time: every store, the network and every
 * timer run on one {@link SimulatedClock}, messages are delivered in an
 * order drawn from the seed, and each node's randomness (gossip peers,
 * incarnations) comes from the seed too. Make one with {@link simulate},
 * which drives the clock while your body runs; every `await` inside the
 * body then advances virtual time only as far as the work needs.
 *
 * Node ids are their network addresses (`sim.network.isolate('n3')`).
 */
export class Simulation<V = unknown> {
  /** The run's seed. */
  readonly seed: number;
  /** The virtual clock every part runs on. */
  readonly clock: SimulatedClock;
  /** The network (seeded, every message delivered by a clock timer). */
  readonly network: MemoryNetwork;
  /** Node ids, in order. */
  readonly nodes: readonly string[];
  /** Replication settings every store uses. */
  readonly replication: Readonly<Required<Pick<ReplicationOptions, 'n' | 'r' | 'w'>>>;
  readonly #options: SimulationOptions<V>;
  readonly #start: number;
  readonly #stores = new Map<string, Store<V>>();
  readonly #storages = new Map<string, StorageAdapter>();
  /** Starts of each node so far (each gets its own PRNG stream). */
  readonly #starts = new Map<string, number>();
  readonly #history: string[] = [];
  readonly #hash = createHash('sha256');

  /**
   * Builds the nodes (not started: {@link Simulation.startAll}). Prefer
   * {@link simulate}, which also drives the clock.
   *
   * @throws TypeError / RangeError on malformed options.
   */
  constructor(options: SimulationOptions<V> = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
    if (typeof seed !== 'number' || !Number.isInteger(seed)) throw new TypeError(`Expected \`seed\` to be an integer, got ${describe(seed)}`);
    this.seed = seed >>> 0;
    this.#options = options;
    this.nodes = Object.freeze(nodeIds(options.nodes));
    this.#start = options.start ?? SIMULATION_EPOCH;
    this.clock = new SimulatedClock({ seed: deriveSeed(this.seed, 'scheduler'), start: this.#start });
    // Batching on, as over TCP: the workloads' bursts then meet the faults as batches.
    this.network = new MemoryNetwork({ seed: deriveSeed(this.seed, 'network'), clock: this.clock, deliverOnClock: true, batching: true });
    this.network.setLatency(options.latency ?? { min: 0, max: 3 });
    const n = Math.min(options.replication?.n ?? 3, this.nodes.length);
    this.replication = Object.freeze({
      n,
      r: Math.min(options.replication?.r ?? Math.floor(n / 2) + 1, n),
      w: Math.min(options.replication?.w ?? Math.floor(n / 2) + 1, n),
    });
    for (const id of this.nodes) this.#make(id);
  }

  /** Virtual ms since the start of the run. */
  get elapsed(): number {
    return this.clock.now() - this.#start;
  }

  /** The trace so far. */
  get history(): readonly string[] {
    return this.#history;
  }

  /**
   * An independent PRNG stream of this run's seed: the same `label` gives
   * the same numbers in every replay, whatever other streams draw.
   */
  random(label: string): () => number {
    if (typeof label !== 'string') throw new TypeError(`Expected \`label\` to be a string, got ${describe(label)}`);
    return seededRandom(deriveSeed(this.seed, `user:${label}`));
  }

  /**
   * Appends an event to the trace, prefixed with the virtual time; the
   * trace hash covers it. Record what the run did (operations and their
   * outcomes, faults), so two runs of one seed can be compared.
   */
  trace(event: string): void {
    const line = `${this.elapsed} ${event}`;
    this.#history.push(line);
    this.#hash.update(line).update('\n');
  }

  /** The current store of node `id` (a stopped one while the node is down). */
  store(id: string): Store<V> {
    const s = this.#stores.get(id);
    if (!s) throw new RangeError(`Expected \`id\` to be a node of this simulation (${this.nodes.join(', ')}), got ${describe(id)}`);
    return s;
  }

  /** The current stores, in node order. */
  stores(): Store<V>[] {
    return this.nodes.map((id) => this.store(id));
  }

  /** The storage of node `id` (kept across restarts unless restarted with empty storage). */
  storage(id: string): StorageAdapter {
    this.store(id);
    return this.#storages.get(id)!;
  }

  /** True while node `id`'s current store is started. */
  running(id: string): boolean {
    return this.store(id).started;
  }

  /** A promise resolved after `ms` virtual ms. */
  sleep(ms: number): Promise<void> {
    return this.clock.sleep(ms);
  }

  /**
   * Resolves once `predicate()` is true, checking every `interval` virtual
   * ms; rejects with `KV_TIMEOUT` after `timeout` virtual ms.
   */
  async waitFor(predicate: () => boolean, options: { timeout?: number; interval?: number; what?: string } = {}): Promise<void> {
    const timeout = options.timeout ?? 60_000;
    const interval = options.interval ?? 50;
    const until = this.clock.now() + timeout;
    while (!predicate()) {
      if (this.clock.now() >= until) {
        throw new TimeoutError(`${options.what ?? 'condition'} not reached within ${timeout} virtual ms`);
      }
      await this.clock.sleep(interval);
    }
  }

  /** Starts every node that is not running and waits until they converge. */
  async startAll(options: { timeout?: number } = {}): Promise<void> {
    await Promise.all(this.nodes.filter((id) => !this.running(id)).map((id) => this.#startNode(id)));
    await this.converged(options);
  }

  /**
   * Resolves once every running node sees every running node it can reach
   * `alive`, and the nodes that reach one another share one ring. Rejects
   * with `KV_TIMEOUT` (saying what each node sees) after `timeout` virtual ms.
   */
  async converged(options: { timeout?: number } = {}): Promise<void> {
    const timeout = options.timeout ?? 60_000;
    try {
      await this.waitFor(() => this.#lagging() === undefined, { timeout, what: 'convergence' });
    } catch (err) {
      if (err instanceof KvError) throw new TimeoutError(`cluster did not converge within ${timeout} virtual ms (${this.#lagging() ?? 'now converged'})`);
      throw err;
    }
  }

  /**
   * Stops node `id`: as a crash by default (its links are cut while it
   * stops, so its peers hear no goodbye and must detect it), or gracefully
   * with `{ crash: false }`. Its storage object is kept. A no-op for a
   * stopped node.
   */
  async stop(id: string, options: { crash?: boolean } = {}): Promise<void> {
    const store = this.store(id);
    if (!store.started) return;
    const crash = options.crash ?? true;
    this.trace(`node ${id} ${crash ? 'crashed' : 'stopped'}`);
    const wasIsolated = this.network.isolated(id);
    if (crash) this.network.isolate(id);
    try {
      await store.stop();
    } finally {
      if (crash && !wasIsolated) this.network.reconnect(id);
    }
  }

  /**
   * Stops node `id` (see {@link Simulation.stop}) and starts a new Store
   * over the same storage, or over empty storage with `{ emptyStorage: true }`.
   * Resolves once the new store's `start()` resolved, without waiting for
   * the cluster: callers may use it at once.
   */
  async restart(id: string, options: SimulationRestartOptions = {}): Promise<Store<V>> {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
    await this.stop(id, { crash: options.crash ?? true });
    if (options.downtime) await this.sleep(options.downtime);
    if (options.emptyStorage) {
      this.#storages.set(id, this.#options.storage?.(id) ?? new MemoryStorage());
    }
    this.#make(id);
    await this.#startNode(id, options.emptyStorage ? 'empty storage' : 'same storage');
    return this.store(id);
  }

  /** Stops every running node gracefully. */
  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((id) => this.stop(id, { crash: false })));
  }

  /**
   * Brings the replicas together after faults: runs `store.repair()` (hint
   * delivery, then one anti-entropy round over every range the node holds)
   * on every running node in turn, retrying a node whose repair fails until
   * `timeout` virtual ms, then lets background work settle for `settle`
   * virtual ms.
   */
  async repairAll(options: { timeout?: number; settle?: number } = {}): Promise<void> {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
    const timeout = options.timeout ?? 120_000;
    const until = this.clock.now() + timeout;
    const running = this.nodes.filter((id) => this.running(id));
    for (const id of running) {
      for (;;) {
        try {
          const r = await this.store(id).repair();
          this.trace(`repair on ${id}: ${r.rangesCompared} ranges, ${r.keysExchanged} keys, ${r.hintsDelivered} hints`);
          break;
        } catch (err) {
          if (this.clock.now() >= until) throw err;
          this.trace(`repair on ${id} failed: ${err instanceof KvError ? err.code : String(err)}`);
          await this.sleep(500);
        }
      }
    }
    await this.sleep(options.settle ?? 5_000);
  }

  /** @internal Folds the final counters into the hash and returns the hex digest (once). */
  digest(): string {
    const s = this.network.stats();
    this.#hash.update(`end ${this.elapsed} steps ${this.clock.steps} sent ${s.sent} delivered ${s.delivered} dropped ${s.dropped} bytes ${s.bytes}\n`);
    return this.#hash.digest('hex');
  }

  #make(id: string): void {
    let storage = this.#storages.get(id);
    if (!storage) {
      storage = this.#options.storage?.(id) ?? new MemoryStorage();
      this.#storages.set(id, storage);
    }
    const o = this.#options;
    const starts = this.#starts.get(id) ?? 0;
    this.#starts.set(id, starts + 1);
    const store = new Store<V>({
      ...o.store,
      cluster: o.store?.cluster ?? 'simulation',
      replication: this.replication,
      timeout: o.timeout ?? 1_000,
      ...(o.gossip === undefined ? {} : { gossip: o.gossip }),
      ...(o.conflict === undefined ? {} : { conflict: o.conflict }),
      clock: this.clock,
      random: seededRandom(deriveSeed(this.seed, `node:${id}:${starts}`)),
      id,
      transport: this.network.transport(id),
      storage,
      seeds: this.nodes.filter((s) => s !== id),
    });
    this.#stores.set(id, store);
  }

  async #startNode(id: string, how?: string): Promise<void> {
    const store = this.store(id);
    await store.start();
    this.trace(`node ${id} started${how ? ` (${how})` : ''} as ${store.actor ?? '?'}`);
  }

  #lagging(): string | undefined {
    const live = this.nodes.filter((id) => this.running(id));
    const problems: string[] = [];
    for (const a of live) {
      const s = this.store(a);
      const alive = new Set(s.members().filter((m) => m.status === 'alive').map((m) => m.id));
      const ring = s.ring.nodes.map((x) => x.id).join(',');
      for (const b of live) {
        if (!this.#reaches(a, b, live)) continue;
        if (!alive.has(b)) problems.push(`${a} does not see ${b} alive`);
        const other = this.store(b).ring.nodes.map((x) => x.id).join(',');
        if (other !== ring) problems.push(`${a} and ${b} differ on the ring`);
      }
    }
    return problems.length === 0 ? undefined : problems.slice(0, 6).join('; ');
  }

  /** Whether `a` reaches `b` over up links, directly or through other running nodes. */
  #reaches(a: string, b: string, live: readonly string[]): boolean {
    const seen = new Set([a]);
    const queue = [a];
    while (queue.length > 0) {
      const x = queue.pop()!;
      if (x === b) return true;
      for (const y of live) {
        if (!seen.has(y) && this.network.connected(x, y)) {
          seen.add(y);
          queue.push(y);
        }
      }
    }
    return false;
  }
}

/**
 * Runs `body` against a fresh {@link Simulation} in virtual time: starts
 * every node, waits until they converge, runs the body while driving the
 * clock, stops every node and resolves with the body's value, the trace and
 * its hash. The seed is printed first (`options.log`), so a failing run can
 * be replayed: the same options and seed give the same trace hash.
 *
 * A body that throws (or a run past `maxVirtualTime`) rejects with a
 * {@link SimulationError} carrying the seed and the trace.
 *
 * @example
 * ```ts
 * const { traceHash } = await simulate({ seed: 42, nodes: 5 }, async (sim) => {
 *   await sim.store('n1').put('k', 1);
 *   sim.network.isolate('n1');
 *   await sim.sleep(10_000);           // ten virtual seconds: n1 is declared down
 *   sim.network.heal();
 *   await sim.converged();
 * });
 * ```
 */
export async function simulate<V = unknown, T = void>(
  options: SimulationOptions<V>,
  body: (sim: Simulation<V>) => Promise<T>,
): Promise<SimulationResult<T>> {
  if (typeof body !== 'function') throw new TypeError(`Expected \`body\` to be a function, got ${describe(body)}`);
  const sim = new Simulation<V>(options);
  const log = options.log === false ? undefined : (options.log ?? ((line: string) => console.log(line)));
  if (log !== undefined && typeof log !== 'function') throw new TypeError(`Expected \`log\` to be a function or false, got ${describe(log)}`);
  log?.(`simulation seed: ${sim.seed}`);
  const realStart = performance.now();
  const maxVirtualTime = options.maxVirtualTime ?? 6 * 3_600_000;
  let value: T;
  try {
    value = await sim.clock.run(
      async () => {
        try {
          await sim.startAll();
          sim.trace('cluster converged');
          return await body(sim);
        } finally {
          await sim.stopAll();
        }
      },
      { timeout: maxVirtualTime },
    );
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log?.(`simulation seed ${sim.seed} FAILED at virtual ${sim.elapsed} ms: ${message}`);
    throw new SimulationError(`simulation seed ${sim.seed} failed at virtual ${sim.elapsed} ms: ${message}`, {
      seed: sim.seed,
      history: [...sim.history],
      virtualMs: sim.elapsed,
      cause: err,
    });
  }
  const virtualMs = sim.elapsed;
  const steps = sim.clock.steps;
  const traceHash = sim.digest();
  const realMs = performance.now() - realStart;
  log?.(`simulation seed ${sim.seed}: ${(virtualMs / 1000).toFixed(1)} virtual s in ${(realMs / 1000).toFixed(2)} s, ${steps} steps, trace ${traceHash.slice(0, 16)}`);
  return { seed: sim.seed, value, history: [...sim.history], traceHash, virtualMs, steps, realMs };
}
