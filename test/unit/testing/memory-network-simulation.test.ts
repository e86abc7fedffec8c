import { describe, expect, it } from 'vitest';
import { MemoryNetwork, type WireMessage } from 'quorumkv';
import { SimulatedClock } from 'quorumkv/testing';

async function pair(net: MemoryNetwork, ids: readonly string[]) {
  const ts = ids.map((id) => net.transport(id));
  await Promise.all(ts.map((t) => t.start((m: WireMessage) => ({ type: 'echo', at: (m as { at?: number }).at ?? 0 }))));
  return ts;
}

describe('MemoryNetwork in virtual time (deliverOnClock, per-link latency, bridge)', () => {
  it('with deliverOnClock, messages move only when the clock runs, and a round trip takes twice the link latency', async () => {
    const clock = new SimulatedClock({ start: 0 });
    const net = new MemoryNetwork({ seed: 1, clock, deliverOnClock: true });
    expect(net.deliverOnClock).toBe(true);
    const [a] = await pair(net, ['a', 'b', 'c']);
    let answered = false;
    const p = a!.request('b', { type: 'ping' }).then(() => (answered = true));
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false); // no real turn of the event loop delivers it
    await clock.run(p);
    expect(clock.now()).toBe(0); // no latency: due at once, still through the clock
    net.setLinkLatency('a', 'b', 40);
    await clock.run(a!.request('b', { type: 'ping' }));
    expect(clock.now()).toBe(80);
    const t = clock.now();
    await clock.run(a!.request('c', { type: 'ping' })); // other links keep the network's latency (0)
    expect(clock.now()).toBe(t);
    net.setLinkLatency('b', 'a', undefined); // links are symmetric
    await clock.run(a!.request('b', { type: 'ping' }));
    expect(clock.now()).toBe(t);
  });

  it('interleaves simultaneous messages in an order drawn from the clock seed', async () => {
    const arrivals = async (seed: number): Promise<string[]> => {
      const clock = new SimulatedClock({ seed });
      const net = new MemoryNetwork({ seed: 7, clock, deliverOnClock: true });
      const order: string[] = [];
      const senders = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => net.transport(id));
      const sink = net.transport('sink');
      await sink.start((_m, from) => {
        order.push(from);
        return { type: 'ok' };
      });
      await Promise.all(senders.map((t) => t.start(() => ({ type: 'ok' }))));
      await clock.run(Promise.all(senders.map((t) => t.request('sink', { type: 'hi' }))));
      return order;
    };
    const one = await arrivals(1);
    expect([...one].sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(await arrivals(1)).toEqual(one);
    const others = await Promise.all([2, 3, 4, 5].map(arrivals));
    expect(others.some((o) => o.join() !== one.join())).toBe(true);
  });

  it('bridge(): the halves reach each other only through the middle node; heal() removes it', async () => {
    const net = new MemoryNetwork({ seed: 1 });
    net.bridge(['a', 'b'], 'c', ['d', 'e']);
    expect(net.connected('a', 'd')).toBe(false);
    expect(net.connected('b', 'e')).toBe(false);
    expect(net.connected('a', 'b')).toBe(true);
    expect(net.connected('a', 'c')).toBe(true);
    expect(net.connected('c', 'e')).toBe(true);
    net.heal();
    expect(net.connected('a', 'd')).toBe(true);
    expect(() => net.bridge(['a', 'c'], 'c', ['d'])).toThrow(new RangeError('Expected `via` to be in neither group of the bridge, got "c" inside one'));
    expect(() => net.bridge(['a'], '', ['d'])).toThrow(TypeError);
  });

  it('reconnect() ends one isolation and keeps partitions; reset() restores everything', async () => {
    const clock = new SimulatedClock({ start: 0 });
    const net = new MemoryNetwork({ seed: 1, clock, deliverOnClock: true });
    const [a] = await pair(net, ['a', 'b']);
    net.isolate('a');
    net.isolate('b');
    net.partition(['a'], ['x']);
    expect(net.isolated('a')).toBe(true);
    net.reconnect('a');
    expect(net.isolated('a')).toBe(false);
    expect(net.isolated('b')).toBe(true);
    expect(net.connected('a', 'x')).toBe(false);
    net.setLatency(30);
    net.setLinkLatency('a', 'b', 500);
    net.setDropRate(1);
    net.reset();
    expect(net.isolated('b')).toBe(false);
    expect(net.connected('a', 'x')).toBe(true);
    await clock.run(a!.request('b', { type: 'ping' }));
    expect(clock.now()).toBe(0);
    expect(net.stats().dropped).toBe(0);
  });

  it('validates the new options and arguments precisely', () => {
    expect(() => new MemoryNetwork({ deliverOnClock: 'yes' as unknown as boolean })).toThrow(
      new TypeError('Expected `deliverOnClock` to be a boolean, got string'),
    );
    const net = new MemoryNetwork();
    expect(net.deliverOnClock).toBe(false);
    expect(() => net.setLinkLatency('a', 'b', -1)).toThrow(RangeError);
    expect(() => net.setLinkLatency('a', 'b', { min: 5, max: 1 })).toThrow(RangeError);
    expect(() => net.setLinkLatency('a', 1 as unknown as string, 1)).toThrow(TypeError);
  });
});
