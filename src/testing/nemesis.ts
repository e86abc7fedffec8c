import type { Clock, TimerHandle } from '../internal/clock.js';
import type { MemoryNetwork } from '../transport/index.js';

/**
 * The faults a {@link Nemesis} injects:
 * - `partition`: the nodes split into two random groups;
 * - `isolate`: one node reaches nobody;
 * - `bridge`: two halves that reach each other only through one node;
 * - `loss`: a share of every message is lost (`lossRate`);
 * - `latency`: the links of one node slow down (`latencySpike`);
 * - `crash`: a node crashes and restarts over the same storage after a
 *   short downtime, and is used the moment it is back (no waiting for the
 *   cluster);
 * - `wipe`: a node crashes and restarts with empty storage (a lost disk; at
 *   most `maxWipes` per run, since two wiped replicas of one key legitimately lose it).
 */
export type NemesisFault = 'partition' | 'isolate' | 'bridge' | 'loss' | 'latency' | 'crash' | 'wipe';

/** Every fault a {@link Nemesis} knows, in a fixed order. */
export const NEMESIS_FAULTS: readonly NemesisFault[] = Object.freeze(['partition', 'isolate', 'bridge', 'loss', 'latency', 'crash', 'wipe']);

/**
 * What a {@link Nemesis} acts on. A {@link Simulation} is one; so is a
 * harness of your own over a `MemoryNetwork` (give it `restart` for the
 * `crash` and `wipe` faults).
 */
export interface NemesisTarget {
  /** The node ids, which are also their network addresses. */
  readonly nodes: readonly string[];
  /** The network to cut, slow down and make lossy. */
  readonly network: MemoryNetwork;
  /** The clock the nemesis waits on (a `SimulatedClock` for virtual time). */
  readonly clock: Clock;
  /**
   * Crashes node `id` and starts it again (over empty storage with
   * `emptyStorage`), `downtime` ms later; resolves once it is started.
   * Without it, the `crash` and `wipe` faults are skipped.
   */
  restart?(id: string, options: { emptyStorage?: boolean; downtime?: number }): Promise<unknown>;
  /** Receives one line per fault injected and healed. */
  trace?(event: string): void;
}

/** A range of virtual (or real) milliseconds, drawn uniformly. */
export interface NemesisRange {
  readonly min: number;
  readonly max: number;
}

/** Options of {@link Nemesis}. */
export interface NemesisOptions {
  /** Source of the nemesis' choices: a seeded PRNG (e.g. `sim.random('nemesis')`) makes them replay. */
  random: () => number;
  /** Faults to draw from. @default NEMESIS_FAULTS (all) */
  faults?: readonly NemesisFault[];
  /** Calm between two faults, ms. @default { min: 200, max: 2000 } */
  calm?: NemesisRange;
  /** How long a fault lasts (and a crashed node's downtime is drawn below it), ms. @default { min: 500, max: 5000 } */
  hold?: NemesisRange;
  /** Share of messages lost during a `loss` fault. @default 0.2 */
  lossRate?: number;
  /** One-way latency of a slowed node's links during a `latency` fault, ms. @default { min: 50, max: 500 } */
  latencySpike?: NemesisRange;
  /** Most `wipe` faults in one run. @default 1 */
  maxWipes?: number;
}

/** One fault, as the nemesis recorded it. */
export interface NemesisEvent {
  /** Clock time when it was injected. */
  readonly at: number;
  readonly fault: NemesisFault;
  /** What exactly, e.g. `n1,n4 | n2,n3,n5`. */
  readonly detail: string;
}

function checkRange(range: unknown, what: string): NemesisRange {
  const r = range as NemesisRange | null;
  if (typeof r !== 'object' || r === null || !Number.isFinite(r.min) || !Number.isFinite(r.max) || r.min < 0 || r.max < r.min) {
    throw new RangeError(`Expected \`${what}\` to be { min, max } with 0 <= min <= max, got ${JSON.stringify(range)}`);
  }
  return { min: r.min, max: r.max };
}

/**
 * A seeded source of faults, in the manner of Jepsen's nemeses: until
 * stopped, it waits a calm spell, injects one fault drawn from `faults`,
 * holds it, heals it, and again. Every choice (which fault, which nodes,
 * for how long) comes from `random`, and every wait from the target's
 * clock, so in a {@link Simulation} the same seed injects the same faults
 * at the same virtual times.
 *
 * @example
 * ```ts
 * await simulate({ seed }, async (sim) => {
 *   const nemesis = new Nemesis(sim, { random: sim.random('nemesis') });
 *   nemesis.start();
 *   await myWorkload(sim);          // runs while faults come and go
 *   await nemesis.stop();           // heals everything
 * });
 * ```
 */
export class Nemesis {
  readonly #target: NemesisTarget;
  readonly #random: () => number;
  readonly #faults: readonly NemesisFault[];
  readonly #calm: NemesisRange;
  readonly #hold: NemesisRange;
  readonly #lossRate: number;
  readonly #spike: NemesisRange;
  readonly #maxWipes: number;
  readonly #events: NemesisEvent[] = [];
  #wipes = 0;
  #running: Promise<void> | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;
  /** Links slowed by the current `latency` fault. */
  #slowed: [string, string][] = [];

  /** @throws TypeError / RangeError on malformed options. */
  constructor(target: NemesisTarget, options: NemesisOptions) {
    if (typeof target !== 'object' || target === null || !Array.isArray(target.nodes) || typeof target.network !== 'object' || typeof target.clock !== 'object') {
      throw new TypeError('Expected `target` to be a NemesisTarget ({ nodes, network, clock, restart?, trace? })');
    }
    if (typeof options !== 'object' || options === null || typeof options.random !== 'function') {
      throw new TypeError(`Expected \`options.random\` to be a function returning numbers in [0, 1), got ${options === null || typeof options !== 'object' ? String(options) : typeof options.random}`);
    }
    const faults = options.faults ?? NEMESIS_FAULTS;
    if (!Array.isArray(faults) || faults.length === 0 || faults.some((f) => !NEMESIS_FAULTS.includes(f))) {
      throw new TypeError(`Expected \`faults\` to be a non-empty array of ${NEMESIS_FAULTS.join(', ')}, got ${JSON.stringify(faults)}`);
    }
    const lossRate = options.lossRate ?? 0.2;
    if (typeof lossRate !== 'number' || !(lossRate >= 0 && lossRate <= 1)) {
      throw new RangeError(`Expected \`lossRate\` to be a number between 0 and 1, got ${String(lossRate)}`);
    }
    const maxWipes = options.maxWipes ?? 1;
    if (!Number.isSafeInteger(maxWipes) || maxWipes < 0) {
      throw new RangeError(`Expected \`maxWipes\` to be an integer >= 0, got ${String(maxWipes)}`);
    }
    this.#target = target;
    this.#random = options.random;
    this.#faults = [...faults];
    this.#calm = checkRange(options.calm ?? { min: 200, max: 2000 }, 'calm');
    this.#hold = checkRange(options.hold ?? { min: 500, max: 5000 }, 'hold');
    this.#lossRate = lossRate;
    this.#spike = checkRange(options.latencySpike ?? { min: 50, max: 500 }, 'latencySpike');
    this.#maxWipes = maxWipes;
  }

  /** The faults injected so far, in order. */
  get events(): readonly NemesisEvent[] {
    return this.#events;
  }

  /** True between {@link start} and the end of {@link stop}. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /** Starts injecting faults in the background. Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#stopping = false;
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
  }

  /**
   * Stops injecting: the fault in place is healed (a node being restarted
   * is waited for), then every partition, isolation, loss and slowed link
   * it made is removed. Rejects if a restart failed. Idempotent.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      await this.#wait(this.#draw(this.#calm));
      if (this.#stopping) break;
      await this.#inject(this.#pick(this.#faults));
    }
  }

  async #inject(fault: NemesisFault): Promise<void> {
    const { network, nodes } = this.#target;
    const hold = this.#draw(this.#hold);
    switch (fault) {
      case 'partition': {
        const shuffled = this.#shuffle(nodes);
        const cut = 1 + Math.floor(this.#random() * Math.max(1, shuffled.length - 1));
        const left = shuffled.slice(0, cut);
        const right = shuffled.slice(cut);
        network.partition(left, right);
        this.#record(fault, `${left.join(',')} | ${right.join(',')}`);
        await this.#wait(hold);
        network.heal();
        break;
      }
      case 'isolate': {
        const id = this.#pick(nodes);
        network.isolate(id);
        this.#record(fault, id);
        await this.#wait(hold);
        network.heal();
        break;
      }
      case 'bridge': {
        if (nodes.length < 3) return;
        const shuffled = this.#shuffle(nodes);
        const via = shuffled.pop()!;
        const cut = Math.floor(shuffled.length / 2);
        const left = shuffled.slice(0, cut);
        const right = shuffled.slice(cut);
        network.bridge(left, via, right);
        this.#record(fault, `${left.join(',')} | ${via} | ${right.join(',')}`);
        await this.#wait(hold);
        network.heal();
        break;
      }
      case 'loss': {
        network.setDropRate(this.#lossRate);
        this.#record(fault, `${this.#lossRate}`);
        await this.#wait(hold);
        network.setDropRate(0);
        break;
      }
      case 'latency': {
        const id = this.#pick(nodes);
        const min = this.#draw(this.#spike);
        const latency = { min, max: Math.max(min, this.#draw(this.#spike)) };
        this.#slowed = nodes.filter((o) => o !== id).map((o) => [id, o]);
        for (const [a, b] of this.#slowed) network.setLinkLatency(a, b, latency);
        this.#record(fault, `${id} ${Math.round(latency.min)}..${Math.round(latency.max)} ms`);
        await this.#wait(hold);
        this.#unslow();
        break;
      }
      case 'crash':
      case 'wipe': {
        const restart = this.#target.restart;
        if (!restart) return;
        if (fault === 'wipe' && this.#wipes >= this.#maxWipes) return;
        if (fault === 'wipe') this.#wipes++;
        const id = this.#pick(nodes);
        const downtime = Math.floor(this.#random() * this.#hold.min);
        this.#record(fault, `${id} down ${downtime} ms`);
        await restart.call(this.#target, id, { emptyStorage: fault === 'wipe', downtime });
        break;
      }
    }
    this.#target.trace?.(`nemesis: healed ${fault}`);
  }

  #unslow(): void {
    for (const [a, b] of this.#slowed) this.#target.network.setLinkLatency(a, b, undefined);
    this.#slowed = [];
  }

  #record(fault: NemesisFault, detail: string): void {
    this.#events.push({ at: this.#target.clock.now(), fault, detail });
    this.#target.trace?.(`nemesis: ${fault} ${detail}`);
  }

  /** Waits `ms` on the target's clock, or less if stop() is called. */
  #wait(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const clock = this.#target.clock;
      let handle: TimerHandle | undefined = undefined;
      const done = (): void => {
        if (handle !== undefined) clock.clearTimeout(handle);
        handle = undefined;
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
      handle = clock.setTimeout(() => {
        handle = undefined;
        done();
      }, ms);
    });
  }

  #draw(range: NemesisRange): number {
    return Math.floor(range.min + this.#random() * (range.max - range.min));
  }

  #pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.#random() * xs.length)]!;
  }

  #shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}
