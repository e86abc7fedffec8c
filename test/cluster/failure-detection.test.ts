import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Defaults, MemoryNetwork, Store, type Clock, type GossipOptions, type MemberStatus } from 'quorumkv';
import { createTestCluster, seededRandom, type TestCluster } from 'quorumkv/testing';
import { until } from '../helpers/until.js';

/** Clock-level timer handle of {@link StallClock}. */
type Handle = ReturnType<Clock['setTimeout']>;

/**
 * A manual clock whose event loop can stall: during {@link StallClock.stall}
 * time passes and nothing runs; afterwards every overdue timer fires at once,
 * late, as after a blocked Node.js event loop (in-process nodes share one).
 */
class StallClock implements Clock {
  #now: number;
  #next = 1;
  #timers: { id: number; at: number; fn: () => void }[] = [];

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): Handle {
    const timer = { id: this.#next++, at: this.#now + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id as unknown as Handle;
  }

  clearTimeout(handle: Handle): void {
    const id = handle as unknown as number;
    this.#timers = this.#timers.filter((t) => t.id !== id);
  }

  /** Time passes with the event loop blocked: no timer fires. */
  stall(ms: number): void {
    this.#now += ms;
  }

  /** Fires the timers due by `now + ms` in order (overdue ones at the current time), then sets the time. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let due: { id: number; at: number; fn: () => void } | undefined;
      for (const t of this.#timers) if (t.at <= target && (!due || t.at < due.at || (t.at === due.at && t.id < due.id))) due = t;
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = target;
  }
}

interface MemberEvent {
  at: number;
  observer: string;
  event: 'member:suspected' | 'member:down' | 'member:up';
  member: string;
}

/**
 * Five stores with the real defaults (250 ms rounds, phi detector) on one
 * {@link StallClock} and a MemoryNetwork on that clock. Time moves in 10 ms
 * steps, each followed by a few turns of the event loop (in-process messages
 * are delivered on the next turn), so a run is deterministic.
 */
class DeterministicCluster {
  readonly clock = new StallClock(1_700_000_000_000);
  readonly network = new MemoryNetwork({ clock: this.clock, seed: 11 });
  readonly stores: Store[] = [];
  readonly events: MemberEvent[] = [];
  /** Stall `stall` ms every `every` ms of clock time while set. */
  stalls: { every: number; stall: number; next: number } | undefined;

  async start(ids: readonly string[], gossip: (id: string) => GossipOptions | undefined = () => undefined): Promise<void> {
    for (const id of ids) {
      const g = gossip(id);
      const store = new Store({
        id,
        cluster: 'fd',
        transport: this.network.transport(id),
        seeds: [ids[0]!],
        clock: this.clock,
        ...(g ? { gossip: g } : {}),
      });
      for (const event of ['member:suspected', 'member:down', 'member:up'] as const) {
        store.on(event, (e) => this.events.push({ at: this.clock.now(), observer: id, event, member: e.member.id }));
      }
      this.stores.push(store);
    }
    await Promise.all(this.stores.map((s) => s.start()));
    await this.until(() => this.stores.every((s) => this.aliveSeen(s) === ids.length), 10_000, 'the cluster to form');
  }

  aliveSeen(s: Store): number {
    return s.members().filter((m) => m.status === 'alive').length;
  }

  status(observer: string, member: string): MemberStatus | undefined {
    return this.store(observer).members().find((m) => m.id === member)?.status;
  }

  store(id: string): Store {
    const s = this.stores.find((x) => x.id === id);
    if (!s) throw new Error(`no store ${id}`);
    return s;
  }

  async step(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.clock.advance(10);
      for (let i = 0; i < 8; i++) await new Promise<void>((r) => setImmediate(r));
      const s = this.stalls;
      if (s && this.clock.now() >= s.next) {
        this.clock.stall(s.stall);
        s.next = this.clock.now() + s.every;
      }
    }
  }

  /** Steps until `predicate` holds; returns the clock time it took. Throws after `limit` ms of clock time. */
  async until(predicate: () => boolean, limit: number, what: string): Promise<number> {
    const start = this.clock.now();
    while (!predicate()) {
      if (this.clock.now() - start > limit) throw new Error(`timed out (clock) after ${limit} ms waiting for ${what}`);
      await this.step(10);
    }
    return this.clock.now() - start;
  }

  async stop(): Promise<void> {
    this.network.heal();
    const stopping = Promise.all(this.stores.map((s) => s.stop()));
    // Shutdown announcements wait on the clock at most `shutdownTimeout`.
    for (let i = 0; i < 100; i++) await this.step(10);
    await stopping;
  }
}

const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];


describe('failure detection with the default phi detector (deterministic clock, real defaults)', () => {
  let c: DeterministicCluster | undefined;
  beforeEach(() => {
    // Gossip picks its peers with Math.random: seeded, every run is the same run.
    vi.spyOn(Math, 'random').mockImplementation(seededRandom(5));
  });
  afterEach(async () => {
    await c?.stop();
    c = undefined;
    vi.restoreAllMocks();
  });

  it('a crashed node is down everywhere about 2 s after the crash (1.5-2.7 s), suspected first, and up again once back', async () => {
    expect(Defaults.gossipInterval).toBe(250);
    c = new DeterministicCluster();
    await c.start(IDS);
    await c.step(50_000); // fill the detectors' windows (200 samples at about one per round)
    expect(c.events.filter((e) => e.event !== 'member:up')).toEqual([]);
    const cluster = c;
    const detection: number[] = [];

    // Crash n3 (no shutdown announcement) and n5 later, at other phases of the gossip round.
    for (const [victim, phase] of [['n3', 0], ['n5', 130]] as const) {
      await cluster.step(phase);
      const crashAt = cluster.clock.now();
      cluster.network.isolate(victim);
      const others = IDS.filter((id) => id !== victim);
      await cluster.until(() => others.every((o) => cluster.status(o, victim) === 'down'), 5_000, `${victim} down everywhere`);
      const ofVictim = cluster.events.filter((e) => e.member === victim && e.at >= crashAt && others.includes(e.observer));
      for (const o of others) {
        const suspected = ofVictim.find((e) => e.observer === o && e.event === 'member:suspected');
        const down = ofVictim.find((e) => e.observer === o && e.event === 'member:down');
        expect(suspected, `${o} suspected ${victim}`).toBeDefined();
        expect(down, `${o} saw ${victim} down`).toBeDefined();
        expect(suspected!.at).toBeLessThan(down!.at);
        // The bound: mean news gap (300-400 ms, more when the window holds a past
        // crash) + 500 + 5.22 × 200 ms after the last news, plus up to a round until
        // the observer looks.
        expect(down!.at - crashAt).toBeGreaterThanOrEqual(1_500);
        expect(down!.at - crashAt).toBeLessThanOrEqual(2_700);
        detection.push(down!.at - crashAt);
      }
      // Nobody else was suspected meanwhile.
      expect(cluster.events.filter((e) => e.at >= crashAt && e.member !== victim && e.observer !== victim && e.event !== 'member:up')).toEqual([]);

      // It comes back (the partition heals): member:up everywhere within two rounds.
      const backAt = cluster.clock.now();
      cluster.network.heal();
      await cluster.until(() => cluster.stores.every((s) => cluster.aliveSeen(s) === IDS.length), 1_000, 'everyone alive again');
      for (const o of others) {
        expect(cluster.events.some((e) => e.observer === o && e.member === victim && e.event === 'member:up' && e.at >= backAt)).toBe(true);
      }
      // The isolated node saw everyone else down, and sees them up again.
      expect(others.every((o) => cluster.events.some((e) => e.observer === victim && e.member === o && e.event === 'member:up' && e.at >= backAt))).toBe(true);
      await cluster.step(5_000);
    }
    // About 2 s: the median of the eight observations.
    detection.sort((a, b) => a - b);
    expect((detection[3]! + detection[4]!) / 2).toBeLessThanOrEqual(2_100);
  });

  it('after a partition heals, the split views merge: everyone alive everywhere, one ring', async () => {
    c = new DeterministicCluster();
    await c.start(IDS);
    await c.step(20_000);
    const cluster = c;
    const left = ['n1', 'n2'];
    const right = ['n3', 'n4', 'n5'];
    cluster.network.partition(left, right);
    const splitSeen = (): boolean =>
      left.every((l) => right.every((r) => cluster.status(l, r) === 'down' && cluster.status(r, l) === 'down')) &&
      left.every((a) => left.every((b) => cluster.status(a, b) === 'alive')) &&
      right.every((a) => right.every((b) => cluster.status(a, b) === 'alive'));
    await cluster.until(splitSeen, 5_000, 'each side to see the other down');
    await cluster.step(10_000);
    expect(splitSeen()).toBe(true);
    cluster.network.heal();
    const took = await cluster.until(() => cluster.stores.every((s) => cluster.aliveSeen(s) === IDS.length), 5_000, 'the views to merge');
    expect(took).toBeLessThanOrEqual(1_000);
    const rings = cluster.stores.map((s) => JSON.stringify(s.ring.toJSON()));
    expect(new Set(rings).size).toBe(1);
  });

  it('each store uses the detector its options choose', async () => {
    c = new DeterministicCluster();
    const gossip: Record<string, GossipOptions> = {
      n1: { detector: 'timeout', suspectAfterRounds: 2, downAfterRounds: 4 }, // down after 1 s of silence
      n2: { phi: { acceptableHeartbeatPause: 4_000 } }, // down after about 5.5 s
    };
    await c.start(['n1', 'n2', 'n3'], (id) => gossip[id]);
    await c.step(20_000);
    const cluster = c;
    const crashAt = cluster.clock.now();
    cluster.network.isolate('n3');
    const downAt = (observer: string): number | undefined =>
      cluster.events.find((e) => e.observer === observer && e.member === 'n3' && e.event === 'member:down' && e.at >= crashAt)?.at;
    await cluster.until(() => downAt('n1') !== undefined && downAt('n2') !== undefined, 10_000, 'n3 down at n1 and n2');
    // Timeout detector: 4 rounds after the last heartbeat, seen at n1's next round.
    expect(downAt('n1')! - crashAt).toBeGreaterThanOrEqual(1_000 - 250);
    expect(downAt('n1')! - crashAt).toBeLessThanOrEqual(1_000 + 250);
    expect(downAt('n2')! - crashAt).toBeGreaterThanOrEqual(4_000 + 1_000);
  });

  it('event loop stalls of 300 ms every second (and single ones up to 1 s) raise no suspicion; a 2.5 s stall does', async () => {
    c = new DeterministicCluster();
    await c.start(IDS);
    await c.step(20_000);
    const cluster = c;
    const from = cluster.events.length;
    cluster.stalls = { every: 1_000, stall: 300, next: cluster.clock.now() };
    await cluster.step(30_000);
    cluster.stalls = undefined;
    await cluster.step(5_000);
    for (const stall of [600, 800, 1_000]) {
      cluster.clock.stall(stall);
      await cluster.step(5_000);
    }
    expect(cluster.events.slice(from)).toEqual([]);
    // The detector is not blind: a stall past the bound is seen as silence (and healed at once).
    cluster.clock.stall(2_500);
    await cluster.step(2_000);
    expect(cluster.events.slice(from).some((e) => e.event === 'member:down')).toBe(true);
    expect(cluster.stores.every((s) => cluster.aliveSeen(s) === IDS.length)).toBe(true);
  });
});

describe('failure detection on the real clock (5 nodes in one process, default 250 ms rounds)', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('a busy event loop (300 ms blocked every second) causes no false suspicion; a crash is detected and healed', async () => {
    cluster = await createTestCluster({ nodes: 5, gossip: { interval: Defaults.gossipInterval } });
    const events: string[] = [];
    for (const s of cluster.stores) {
      for (const event of ['member:suspected', 'member:down'] as const) {
        s.on(event, (e) => events.push(`${s.id} ${event} ${e.member.id}`));
      }
    }
    // Let every detector learn some real inter-arrival times first.
    await new Promise((r) => setTimeout(r, 1_000));
    for (let i = 0; i < 5; i++) {
      const end = Date.now() + 300;
      while (Date.now() < end) {
        // busy: the whole process (all five nodes) is blocked
      }
      await new Promise((r) => setTimeout(r, 700));
    }
    expect(events).toEqual([]);

    // A crash (no shutdown announcement) is still detected, and the node is welcomed back.
    cluster.network.isolate('n4');
    const others = cluster.stores.filter((s) => s.id !== 'n4');
    const statusOf = (s: Store, id: string): MemberStatus | undefined => s.members().find((m) => m.id === id)?.status;
    await until('n4 down everywhere', () => others.every((s) => statusOf(s, 'n4') === 'down'), 10_000);
    expect(events.filter((e) => !e.endsWith(' n4') && !e.startsWith('n4 '))).toEqual([]);
    const ups: string[] = [];
    for (const s of others) s.on('member:up', (e) => ups.push(`${s.id} ${e.member.id}`));
    cluster.network.heal();
    await cluster.converged(10_000);
    expect(ups.filter((u) => u.endsWith(' n4')).length).toBe(4);
  });
});
