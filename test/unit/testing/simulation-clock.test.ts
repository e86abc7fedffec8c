import { describe, expect, it } from 'vitest';
import { SIMULATION_EPOCH, SimulatedClock } from 'quorumkv/testing';

describe('SimulatedClock', () => {
  it('starts at the simulation epoch or at `start`, and validates its options', () => {
    expect(new SimulatedClock().now()).toBe(SIMULATION_EPOCH);
    expect(new SimulatedClock({ start: 5 }).now()).toBe(5);
    expect(() => new SimulatedClock({ seed: 1.5 })).toThrow(new TypeError('Expected `seed` to be an integer, got 1.5'));
    expect(() => new SimulatedClock({ start: Number.NaN })).toThrow(TypeError);
  });

  it('fires timers in time order, jumping virtual time to each', async () => {
    const clock = new SimulatedClock({ start: 0 });
    const fired: [string, number][] = [];
    clock.setTimeout(() => fired.push(['c', clock.now()]), 300);
    clock.setTimeout(() => fired.push(['a', clock.now()]), 100);
    clock.setTimeout(() => fired.push(['b', clock.now()]), 200);
    expect(clock.pending).toBe(3);
    await clock.advance(1_000);
    expect(fired).toEqual([['a', 100], ['b', 200], ['c', 300]]);
    expect(clock.now()).toBe(1_000);
    expect(clock.pending).toBe(0);
    expect(clock.steps).toBe(3);
  });

  it('runs timers due at the same instant in an order drawn from the seed: the same seed, the same order', async () => {
    const orderOf = async (seed: number): Promise<number[]> => {
      const clock = new SimulatedClock({ seed });
      const order: number[] = [];
      for (let i = 0; i < 20; i++) clock.setTimeout(() => order.push(i), 10);
      await clock.advance(10);
      return order;
    };
    const a = await orderOf(1);
    expect(a).toHaveLength(20);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(await orderOf(1)).toEqual(a);
    expect(await orderOf(2)).not.toEqual(a);
  });

  it('cleared timers never fire (due now or later), and many cleared timers do not disturb the others', async () => {
    const clock = new SimulatedClock({ start: 0 });
    const fired: number[] = [];
    const now = clock.setTimeout(() => fired.push(-1), 0);
    clock.clearTimeout(now);
    const handles = Array.from({ length: 3000 }, (_, i) => clock.setTimeout(() => fired.push(i), 1 + i));
    for (let i = 0; i < 3000; i++) if (i % 3 !== 0) clock.clearTimeout(handles[i]!);
    clock.clearTimeout(handles[1]!); // twice: a no-op
    expect(clock.pending).toBe(1000);
    await clock.advance(5_000);
    expect(fired).toEqual(Array.from({ length: 1000 }, (_, i) => i * 3));
  });

  it('never fires a timer of Infinity ms and does not count it as pending', async () => {
    const clock = new SimulatedClock();
    const h = clock.setTimeout(() => expect.fail('fired'), Infinity);
    expect(clock.pending).toBe(0);
    expect(clock.nextDue()).toBeUndefined();
    clock.clearTimeout(h);
  });

  it('run() lets every promise continuation finish between two timer callbacks', async () => {
    const clock = new SimulatedClock({ start: 0 });
    let chain = 0;
    const seen: number[] = [];
    clock.setTimeout(() => {
      void (async () => {
        for (let i = 0; i < 50; i++) {
          await Promise.resolve();
          chain++;
        }
      })();
    }, 10);
    clock.setTimeout(() => seen.push(chain), 11);
    await clock.run(clock.sleep(20));
    expect(seen).toEqual([50]);
  });

  it('run() drives virtual time until the work settles: an hour of sleeps in real milliseconds', async () => {
    const clock = new SimulatedClock({ start: 0 });
    const started = performance.now();
    const value = await clock.run(async () => {
      for (let i = 0; i < 60; i++) await clock.sleep(60_000);
      return clock.now();
    });
    expect(value).toBe(3_600_000);
    expect(performance.now() - started).toBeLessThan(2_000);
    await expect(clock.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(clock.run(() => { throw new Error('sync boom'); })).rejects.toThrow('sync boom');
  });

  it('run() rejects with KV_TIMEOUT when nothing is scheduled and the work cannot settle (a deadlock)', async () => {
    const clock = new SimulatedClock();
    await expect(clock.run(new Promise<void>(() => {}))).rejects.toMatchObject({ code: 'KV_TIMEOUT', message: expect.stringContaining('stalled') });
  });

  it('run() rejects with KV_TIMEOUT past its virtual timeout or step budget', async () => {
    const clock = new SimulatedClock({ start: 0 });
    await expect(clock.run(clock.sleep(10_000), { timeout: 1_000 })).rejects.toMatchObject({ code: 'KV_TIMEOUT' });
    expect(clock.now()).toBe(1_000);
    const spin = new SimulatedClock();
    const loop = (): void => {
      spin.setTimeout(loop, 0);
    };
    loop();
    await expect(spin.run(new Promise<void>(() => {}), { maxSteps: 100 })).rejects.toMatchObject({ code: 'KV_TIMEOUT' });
    expect(spin.steps).toBe(100);
    await expect(clock.run(Promise.resolve(), { timeout: -1 })).rejects.toThrow(RangeError);
  });
});
