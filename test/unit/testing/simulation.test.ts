import { describe, expect, it, vi } from 'vitest';
import { Store, MemoryNetwork } from 'quorumkv';
import { MemoryTransport } from 'quorumkv/internals';
import {
  SimulationError,
  checkRegisterWorkload,
  checkSetWorkload,
  runRegisterWorkload,
  runSetWorkload,
  seededRandom,
  simulate,
} from 'quorumkv/testing';

const quiet = { log: false } as const;

describe('simulate()', () => {
  it('prints its seed, runs the body in virtual time and resolves with its value, trace and hash', async () => {
    const lines: string[] = [];
    const result = await simulate<number, string>({ seed: 12, nodes: 3, log: (l) => lines.push(l) }, async (sim) => {
      await sim.store('n1').put('k', 1);
      await sim.sleep(600_000);
      const read = await sim.store('n3').get('k');
      sim.trace(`read ${JSON.stringify(read?.values)}`);
      return `read ${JSON.stringify(read?.values)}`;
    });
    expect(lines[0]).toBe('simulation seed: 12');
    expect(result.seed).toBe(12);
    expect(result.value).toBe('read [1]');
    expect(result.virtualMs).toBeGreaterThanOrEqual(600_000);
    expect(result.history.some((l) => l.endsWith('read [1]'))).toBe(true);
    expect(result.traceHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives every node its randomness from the seed (Store `random`): the same seed, the same actors', async () => {
    const actors = async (seed: number): Promise<string[]> =>
      (await simulate({ seed, nodes: 3, ...quiet }, async (sim) => sim.stores().map((s) => s.actor ?? ''))).value;
    const a = await actors(5);
    expect(await actors(5)).toEqual(a);
    expect(await actors(6)).not.toEqual(a);
  });

  it('restart(): over the same storage keeps the actor; with empty storage the node is a new incarnation', async () => {
    await simulate<number>({ seed: 3, ...quiet }, async (sim) => {
      const before = sim.store('n2').actor;
      await sim.restart('n2');
      expect(sim.store('n2').actor).toBe(before);
      await sim.restart('n2', { emptyStorage: true, downtime: 1_000 });
      expect(sim.store('n2').actor).not.toBe(before);
      await sim.converged();
    });
  });

  it('a throwing body rejects with a SimulationError carrying the seed and the trace', async () => {
    const run = simulate({ seed: 77, nodes: 2, ...quiet }, async (sim) => {
      sim.trace('about to fail');
      throw new Error('checker says no');
    });
    await expect(run).rejects.toBeInstanceOf(SimulationError);
    await run.catch((err: SimulationError) => {
      expect(err.seed).toBe(77);
      expect(err.message).toContain('simulation seed 77 failed');
      expect(err.message).toContain('checker says no');
      expect(err.history.some((l) => l.endsWith('about to fail'))).toBe(true);
    });
  });

  it('a body that waits on something that never comes fails fast instead of hanging', async () => {
    await expect(simulate({ seed: 1, nodes: 1, ...quiet, maxVirtualTime: 5_000 }, () => new Promise(() => {}))).rejects.toThrow(/did not settle within 5000 virtual ms/);
  });

  it('refuses malformed options precisely', async () => {
    await expect(simulate({ seed: 1.5 }, async () => {})).rejects.toThrow(new TypeError('Expected `seed` to be an integer, got 1.5'));
    await expect(simulate({ nodes: 0 }, async () => {})).rejects.toThrow(RangeError);
    await expect(simulate({ nodes: ['a', 'a'] }, async () => {})).rejects.toThrow(RangeError);
    await expect(simulate({}, 'x' as never)).rejects.toThrow(TypeError);
  });
});

describe('Store option `random`', () => {
  it('is validated', () => {
    const net = new MemoryNetwork();
    expect(() => new Store({ id: 'a', transport: net.transport('a'), random: 5 as never })).toThrow(
      new TypeError('Expected `random` to be a function returning numbers in [0, 1), got 5'),
    );
  });

  it('draws the incarnation of a node on empty storage', async () => {
    const actorOf = async (seed: number): Promise<string | undefined> => {
      const net = new MemoryNetwork();
      const s = new Store({ id: 'a', transport: net.transport('a'), random: seededRandom(seed) });
      await s.start();
      const actor = s.actor;
      await s.stop();
      return actor;
    };
    expect(await actorOf(1)).toBe(await actorOf(1));
    expect(await actorOf(1)).not.toBe(await actorOf(2));
  });
});

describe('the set workload', () => {
  it("burst steps read and write every key at once: a turn's requests to a replica travel as batches, and the checker passes", async () => {
    const types = new Map<string, number>();
    const send = MemoryTransport.prototype.send;
    const spy = vi.spyOn(MemoryTransport.prototype, 'send').mockImplementation(function (this: MemoryTransport, to, message, options, receiver, tag) {
      types.set(message.type, (types.get(message.type) ?? 0) + 1);
      return send.call(this, to, message, options, receiver, tag);
    });
    try {
      await simulate<string[]>({ seed: 31, ...quiet }, async (sim) => {
        const history = await runSetWorkload(sim, { duration: 2_000, keys: 4, burst: 1 });
        expect(history.acked).toBeGreaterThan(20);
        await sim.repairAll();
        expect((await checkSetWorkload(sim, history)).ok).toBe(true);
      });
    } finally {
      spy.mockRestore();
    }
    expect(types.get('kv.apply-batch') ?? 0).toBeGreaterThan(0);
    expect(types.get('kv.read-batch') ?? 0).toBeGreaterThan(0);
  });

  it('refuses a burst share outside 0 to 1', async () => {
    await simulate<string[]>({ seed: 32, ...quiet }, async (sim) => {
      for (const burst of [-0.1, 1.5, Number.NaN]) {
        await expect(runSetWorkload(sim, { duration: 10, burst })).rejects.toThrow(RangeError);
      }
    });
  });
});

describe('workload checkers can fail', () => {
  it('the set checker reports acknowledged elements lost when every owner of a key lost its disk', async () => {
    await simulate<string[]>({ seed: 21, ...quiet }, async (sim) => {
      const history = await runSetWorkload(sim, { duration: 3_000, keys: 1 });
      expect(history.acked).toBeGreaterThan(5);
      const owners = sim.store('n1').ring.preferenceList('set:0', 3).map((n) => n.id);
      for (const id of owners) await sim.restart(id, { emptyStorage: true });
      await sim.converged();
      const check = await checkSetWorkload(sim, history);
      expect(check.ok).toBe(false);
      expect(check.lost).toHaveLength(history.acked);
      expect(check.lost[0]!.missingOn).toEqual(owners);
    });
  });

  it('the set checker reports owners that diverge', async () => {
    await simulate<string[]>({ seed: 22, ...quiet }, async (sim) => {
      const history = await runSetWorkload(sim, { duration: 2_000, keys: 1 });
      await sim.repairAll();
      const owners = sim.store('n1').ring.preferenceList('set:0', 3).map((n) => n.id);
      // One owner alone takes a write (the others are cut off): it now holds a version they do not.
      sim.network.isolate(owners[0]!);
      await sim.store(owners[0]!).put('set:0', ['extra'], { w: 1 }).catch(() => {});
      sim.network.heal();
      const check = await checkSetWorkload(sim, history);
      expect(check.divergent.map((d) => d.key)).toEqual(['set:0']);
    });
  });

  it('the register checker reports stale reads when every owner of a key lost its disk', async () => {
    await simulate<string>({ seed: 23, ...quiet }, async (sim) => {
      const history = await runRegisterWorkload(sim, { duration: 3_000, keys: 1 });
      expect(history.acked).toBeGreaterThan(5);
      expect(history.stale).toEqual([]);
      const owners = sim.store('n1').ring.preferenceList('reg:0', 3).map((n) => n.id);
      for (const id of owners) await sim.restart(id, { emptyStorage: true });
      await sim.converged();
      const check = await checkRegisterWorkload(sim, history);
      expect(check.ok).toBe(false);
      expect(check.stale.length).toBeGreaterThan(0);
      expect(check.stale[0]!.values).toEqual([]);
    });
  });
});
