import { describe, expect, it } from 'vitest';
import { MemoryNetwork } from 'quorumkv';
import { Nemesis, NEMESIS_FAULTS, SimulatedClock, seededRandom, type NemesisEvent, type NemesisTarget } from 'quorumkv/testing';

const NODES = ['n1', 'n2', 'n3', 'n4', 'n5'];

function target(seed: number): NemesisTarget & { restarts: { id: string; emptyStorage: boolean }[]; lines: string[]; clock: SimulatedClock } {
  const clock = new SimulatedClock({ seed, start: 0 });
  const network = new MemoryNetwork({ seed, clock, deliverOnClock: true });
  const restarts: { id: string; emptyStorage: boolean }[] = [];
  const lines: string[] = [];
  return {
    nodes: NODES,
    network,
    clock,
    restarts,
    lines,
    async restart(id, options) {
      restarts.push({ id, emptyStorage: options.emptyStorage ?? false });
      await clock.sleep(options.downtime ?? 0);
    },
    trace: (line) => lines.push(line),
  };
}

async function runFor(seed: number, ms: number, options: Partial<ConstructorParameters<typeof Nemesis>[1]> = {}) {
  const t = target(seed);
  const nemesis = new Nemesis(t, { random: seededRandom(seed), ...options });
  let midway: { connectedEverywhere: boolean } = { connectedEverywhere: true };
  await t.clock.run(async () => {
    nemesis.start();
    nemesis.start(); // idempotent
    for (let i = 0; i < ms / 100; i++) {
      await t.clock.sleep(100);
      if (NODES.some((a) => NODES.some((b) => !t.network.connected(a, b)))) midway = { connectedEverywhere: false };
    }
    await nemesis.stop();
  });
  return { t, nemesis, midway };
}

describe('Nemesis', () => {
  it('injects every kind of fault, drawn from its seed: the same seed, the same faults at the same times', async () => {
    const a = await runFor(3, 300_000);
    const kinds = new Set(a.nemesis.events.map((e: NemesisEvent) => e.fault));
    expect([...kinds].sort()).toEqual([...NEMESIS_FAULTS].sort());
    expect(a.midway.connectedEverywhere).toBe(false);
    const b = await runFor(3, 300_000);
    expect(b.nemesis.events).toEqual(a.nemesis.events);
    expect(b.t.lines).toEqual(a.t.lines);
    const c = await runFor(4, 300_000);
    expect(c.nemesis.events).not.toEqual(a.nemesis.events);
  });

  it('stop() heals everything it did: links, loss and slowed links', async () => {
    const { t, nemesis } = await runFor(11, 120_000);
    expect(nemesis.running).toBe(false);
    for (const x of NODES) for (const y of NODES) expect(t.network.connected(x, y)).toBe(true);
    // No loss and no latency left: a request is answered at once, in virtual time.
    const [a, b] = [t.network.transport('n1'), t.network.transport('n2')];
    await b.start(() => ({ type: 'ok' }));
    await a.start(() => ({ type: 'ok' }));
    const before = t.clock.now();
    for (let i = 0; i < 20; i++) await t.clock.run(a.request('n2', { type: 'ping' }));
    expect(t.clock.now()).toBe(before);
  });

  it('restarts crashed nodes over their storage and wipes at most `maxWipes` nodes', async () => {
    const { t } = await runFor(5, 600_000, { faults: ['crash', 'wipe'], maxWipes: 2 });
    expect(t.restarts.filter((r) => r.emptyStorage)).toHaveLength(2);
    expect(t.restarts.filter((r) => !r.emptyStorage).length).toBeGreaterThan(5);
    const none = await runFor(5, 100_000, { faults: ['wipe'], maxWipes: 0 });
    expect(none.t.restarts).toEqual([]);
  });

  it('only draws from the faults it is given', async () => {
    const { nemesis } = await runFor(9, 100_000, { faults: ['partition', 'loss'] });
    expect(nemesis.events.length).toBeGreaterThan(5);
    expect(nemesis.events.every((e) => e.fault === 'partition' || e.fault === 'loss')).toBe(true);
  });

  it('refuses malformed options precisely', () => {
    const t = target(1);
    expect(() => new Nemesis(t, {} as never)).toThrow(new TypeError('Expected `options.random` to be a function returning numbers in [0, 1), got undefined'));
    expect(() => new Nemesis(t, { random: Math.random, faults: ['flood' as never] })).toThrow(TypeError);
    expect(() => new Nemesis(t, { random: Math.random, faults: [] })).toThrow(TypeError);
    expect(() => new Nemesis(t, { random: Math.random, lossRate: 2 })).toThrow(new RangeError('Expected `lossRate` to be a number between 0 and 1, got 2'));
    expect(() => new Nemesis(t, { random: Math.random, hold: { min: 5, max: 1 } })).toThrow(RangeError);
    expect(() => new Nemesis(t, { random: Math.random, maxWipes: -1 })).toThrow(RangeError);
    expect(() => new Nemesis({} as never, { random: Math.random })).toThrow(TypeError);
  });
});
