import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import type { Clock, TimerHandle } from '../../../src/internal/clock.js';
import { ManualClock } from '../../../src/testing/manual-clock.js';
import { MemoryNetwork, type MemoryTransport } from '../../../src/transport/index.js';
import type { WireMessage } from '../../../src/transport/types.js';

const echo = (m: WireMessage, from: string): WireMessage => ({ type: 'echo', payload: m.payload, from });

async function failure(p: Promise<unknown>): Promise<KvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvError);
  return err as KvError;
}

/** A clock that counts live timers, to prove nothing is left behind. */
function countingClock(): Clock & { live: () => number } {
  const live = new Set<unknown>();
  return {
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const h = setTimeout(() => {
        live.delete(h);
        fn();
      }, ms);
      live.add(h);
      return h as unknown as TimerHandle;
    },
    clearTimeout(handle) {
      live.delete(handle);
      clearTimeout(handle as unknown as ReturnType<typeof setTimeout>);
    },
    live: () => live.size,
  };
}

let toStop: MemoryTransport[] = [];
async function cluster(net: MemoryNetwork, ...ids: string[]): Promise<MemoryTransport[]> {
  const ts = ids.map((id) => net.transport(id));
  for (const t of ts) await t.start(echo);
  toStop.push(...ts);
  return ts;
}
afterEach(async () => {
  for (const t of toStop) await t.stop();
  toStop = [];
});

describe('MemoryNetwork', () => {
  it('exposes its seed (given or random)', () => {
    expect(new MemoryNetwork({ seed: 42 }).seed).toBe(42);
    expect(Number.isInteger(new MemoryNetwork().seed)).toBe(true);
  });

  it('delivers asynchronously, never inside request()', async () => {
    const net = new MemoryNetwork();
    const [a] = await cluster(net, 'a');
    const b = net.transport('b');
    let called = false;
    await b.start((m) => {
      called = true;
      return m;
    });
    toStop.push(b);
    const p = a!.request('b', { type: 'x' });
    expect(called).toBe(false);
    await p;
    expect(called).toBe(true);
  });

  it('rejects at once with KV_UNREACHABLE for unknown addresses', async () => {
    const net = new MemoryNetwork();
    const [a] = await cluster(net, 'a');
    const started = Date.now();
    expect((await failure(a!.request('nobody', { type: 'x' }))).code).toBe('KV_UNREACHABLE');
    expect(Date.now() - started).toBeLessThan(100);
  });

  it('drops messages across a partition (KV_TIMEOUT) and heals', async () => {
    const net = new MemoryNetwork({ defaultTimeout: 50 });
    const [a, b, c] = await cluster(net, 'a', 'b', 'c');
    net.partition(['a', 'b'], ['c']);
    expect((await a!.request('b', { type: 'x', payload: 1 })).payload).toBe(1);
    expect((await failure(a!.request('c', { type: 'x' }))).code).toBe('KV_TIMEOUT');
    expect((await failure(c!.request('b', { type: 'x' }))).code).toBe('KV_TIMEOUT');
    const d = (await cluster(net, 'd'))[0]!; // in no group: unaffected
    expect((await d.request('c', { type: 'x', payload: 2 })).payload).toBe(2);
    expect((await d.request('a', { type: 'x', payload: 3 })).payload).toBe(3);
    net.heal();
    expect((await a!.request('c', { type: 'x', payload: 4 })).payload).toBe(4);
    expect((await c!.request('b', { type: 'x', payload: 5 })).payload).toBe(5);
    void b;
  });

  it('adds cuts when partition is called again', async () => {
    const net = new MemoryNetwork({ defaultTimeout: 50 });
    const [a] = await cluster(net, 'a', 'b', 'c');
    net.partition(['a'], ['b']);
    net.partition(['a'], ['c']);
    expect((await failure(a!.request('b', { type: 'x' }))).code).toBe('KV_TIMEOUT');
    expect((await failure(a!.request('c', { type: 'x' }))).code).toBe('KV_TIMEOUT');
  });

  it('isolates one address both ways until heal', async () => {
    const net = new MemoryNetwork({ defaultTimeout: 50 });
    const [a, b, c] = await cluster(net, 'a', 'b', 'c');
    net.isolate('c');
    expect((await failure(a!.request('c', { type: 'x' }))).code).toBe('KV_TIMEOUT');
    expect((await failure(c!.request('a', { type: 'x' }))).code).toBe('KV_TIMEOUT');
    expect((await a!.request('b', { type: 'x', payload: 1 })).payload).toBe(1);
    net.heal();
    expect((await c!.request('a', { type: 'x', payload: 2 })).payload).toBe(2);
    void b;
  });

  it('applies latency in each direction', async () => {
    const net = new MemoryNetwork({ seed: 7 });
    const [a] = await cluster(net, 'a', 'b');
    net.setLatency(30);
    let started = Date.now();
    await a!.request('b', { type: 'x' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    net.setLatency({ min: 5, max: 15 });
    started = Date.now();
    await a!.request('b', { type: 'x' });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(9);
    expect(took).toBeLessThan(200);
    expect(() => net.setLatency({ min: 5, max: 1 })).toThrow(RangeError);
    expect(() => net.setLatency(-1)).toThrow(RangeError);
  });

  it('drops messages deterministically for a given seed', async () => {
    const outcomes = async (seed: number): Promise<string> => {
      // Timeouts on a manual clock: a delivered request is answered within a few
      // event-loop turns however loaded the machine is; only then does the clock
      // move past the timeout, so only dropped requests time out.
      const clock = new ManualClock(0);
      const net = new MemoryNetwork({ seed, defaultTimeout: 30, clock });
      const [a] = await cluster(net, `a`, `b`);
      net.setDropRate(0.3);
      let out = '';
      for (let i = 0; i < 40; i++) {
        const outcome = a!.request('b', { type: 'x' }).then(
          () => '.',
          (e: KvError) => (e.code === 'KV_TIMEOUT' ? 'x' : '?'),
        );
        for (let turn = 0; turn < 10; turn++) await new Promise<void>((r) => setImmediate(r));
        clock.advance(30);
        out += await outcome;
      }
      for (const t of toStop) await t.stop();
      toStop = [];
      return out;
    };
    const first = await outcomes(1234);
    expect(await outcomes(1234)).toBe(first);
    expect(first).toContain('x');
    expect(first).toContain('.');
    expect(first).not.toContain('?');
    expect(() => new MemoryNetwork().setDropRate(1.5)).toThrow(RangeError);
  }, 20_000);

  it('drops everything at rate 1 and nothing at rate 0', async () => {
    const net = new MemoryNetwork({ defaultTimeout: 30 });
    const [a] = await cluster(net, 'a', 'b');
    net.setDropRate(1);
    expect((await failure(a!.request('b', { type: 'x' }))).code).toBe('KV_TIMEOUT');
    net.setDropRate(0);
    await a!.request('b', { type: 'x' });
  });

  it('restarts an address with transport(id) again, and throws while it is started', async () => {
    const net = new MemoryNetwork();
    const [a, b] = await cluster(net, 'a', 'b');
    expect(() => net.transport('b')).toThrow(/already in use/);
    expect(net.addresses().sort()).toEqual(['a', 'b']);
    await b!.stop();
    expect(net.addresses()).toEqual(['a']);
    expect((await failure(a!.request('b', { type: 'x' }))).code).toBe('KV_UNREACHABLE');
    const b2 = net.transport('b');
    await b2.start(() => ({ type: 'second-life' }));
    toStop.push(b2);
    expect(await a!.request('b', { type: 'x' })).toEqual({ type: 'second-life' });
    expect((await failure(b!.request('a', { type: 'x' }))).code).toBe('KV_NOT_STARTED');
    await expect(b!.start(echo)).rejects.toThrow(/already in use/);
  });

  it('counts sent, delivered, dropped and bytes', async () => {
    const net = new MemoryNetwork({ defaultTimeout: 30 });
    const [a] = await cluster(net, 'a', 'b', 'c');
    await a!.request('b', { type: 'x' });
    expect(net.stats()).toMatchObject({ sent: 2, delivered: 2, dropped: 0 });
    expect(net.stats().bytes).toBeGreaterThan(0);
    net.isolate('c');
    await failure(a!.request('c', { type: 'x' }));
    expect(net.stats()).toMatchObject({ sent: 3, delivered: 2, dropped: 1 });
    const plain = new MemoryNetwork({ codec: false });
    const [p] = await cluster(plain, 'p', 'q');
    await p!.request('q', { type: 'x' });
    expect(plain.stats()).toEqual({ sent: 2, delivered: 2, dropped: 0, bytes: 0 });
  });

  it('sends handler errors back: KvError keeps its code, others become KV_INTERNAL', async () => {
    const net = new MemoryNetwork();
    const [a] = await cluster(net, 'a');
    const b = net.transport('b');
    await b.start((m) => {
      if (m.type === 'kv') throw new KvError('KV_OVERLOADED', 'slow down');
      throw new TypeError('boom');
    });
    toStop.push(b);
    const e1 = await failure(a!.request('b', { type: 'kv' }));
    expect([e1.code, e1.message]).toEqual(['KV_OVERLOADED', 'slow down']);
    const e2 = await failure(a!.request('b', { type: 'other' }));
    expect(e2.code).toBe('KV_INTERNAL');
    expect(e2.message).toContain('boom');
  });

  it('rejects bodies that cannot be encoded, with codec on or off', async () => {
    for (const codec of [true, false]) {
      const net = new MemoryNetwork({ codec });
      const [a, b] = await cluster(net, 'a', 'b');
      const e = await failure(a!.request('b', { type: 'x', when: new Date() as never }));
      expect(e.code).toBe('KV_INVALID_MESSAGE');
      // an answer that cannot be encoded comes back as KV_INVALID_MESSAGE
      await b!.stop();
      const b2 = net.transport('b');
      await b2.start(() => ({ type: 'bad', f: (() => 1) as never }));
      toStop.push(b2);
      expect((await failure(a!.request('b', { type: 'x' }))).code).toBe('KV_INVALID_MESSAGE');
    }
  });

  it('copies messages through the codec (no shared references)', async () => {
    const net = new MemoryNetwork();
    const [a] = await cluster(net, 'a', 'b');
    const payload = { list: [1, 2], bin: new Uint8Array([1]) };
    const res = await a!.request('b', { type: 'x', payload });
    expect(res.payload).toEqual(payload);
    expect(res.payload).not.toBe(payload);
  });

  it('validates timeouts and handlers', async () => {
    const net = new MemoryNetwork();
    const [a] = await cluster(net, 'a', 'b');
    await expect(a!.request('b', { type: 'x' }, { timeout: -1 })).rejects.toThrow(
      new RangeError('Expected `timeout` to be a number of milliseconds >= 0 (or Infinity), got -1'),
    );
    await expect(a!.request('b', { type: 'x' }, { timeout: NaN })).rejects.toThrow(RangeError);
    await expect(net.transport('z').start(undefined as never)).rejects.toThrow(TypeError);
    expect(() => new MemoryNetwork({ defaultTimeout: 0 })).toThrow(RangeError);
    expect(() => new MemoryNetwork({ maxPending: 0 })).toThrow(RangeError);
    expect(() => new MemoryNetwork().transport('y', { maxPending: 1.5 })).toThrow(RangeError);
  });

  it('fails a request whose deadline has passed (timeout 0) with KV_TIMEOUT, without sending it', async () => {
    const net = new MemoryNetwork();
    const [a] = await cluster(net, 'a', 'b');
    const err = await failure(a!.request('b', { type: 'x' }, { timeout: 0 }));
    expect([err.code, err.name]).toEqual(['KV_TIMEOUT', 'TimeoutError']);
    expect(err.message).toContain('request x to b');
    expect(net.stats().sent).toBe(0);
    expect(a!.pendingRequests).toBe(0);
  });

  it('times out on the injected clock, and a late answer changes nothing', async () => {
    const clock = new ManualClock();
    const net = new MemoryNetwork({ clock });
    net.setLatency(10);
    const [a] = await cluster(net, 'a', 'b');
    const p = failure(a!.request('b', { type: 'x' }, { timeout: 15 }));
    clock.advance(10); // the request arrives, the answer is on its way back
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(5);
    const err = await p;
    expect(err.code).toBe('KV_TIMEOUT');
    expect(err.message).toBe('request x to b timed out after 15 ms');
    expect(clock.pending).toBe(0); // the answer's delivery timer went with the request
    expect(a!.pendingRequests).toBe(0);
    expect(net.stats()).toMatchObject({ sent: 2, delivered: 1 });
  });

  it('refuses requests past maxPending with KV_OVERLOADED, without sending them', async () => {
    const net = new MemoryNetwork({ maxPending: 3 });
    const a = net.transport('a', { maxPending: 2 });
    await a.start(echo);
    toStop.push(a);
    const [b] = await cluster(net, 'b');
    expect([a.maxPending, b!.maxPending]).toEqual([2, 3]);
    net.isolate('b');
    const hanging = [failure(a.request('b', { type: 'x' }, { timeout: 10_000 })), failure(a.request('b', { type: 'x' }, { timeout: 10_000 }))];
    expect(a.pendingRequests).toBe(2);
    const sent = net.stats().sent;
    const err = await failure(a.request('b', { type: 'x' }));
    expect(err.code).toBe('KV_OVERLOADED');
    expect(net.stats().sent).toBe(sent);
    net.heal();
    await a.stop();
    for (const e of await Promise.all(hanging)) expect(e.code).toBe('KV_CONNECTION_CLOSED');
    expect(a.pendingRequests).toBe(0);
  });

  it('puts one abort listener on a signal shared by 100 requests, and none once they settle', async () => {
    const net = new MemoryNetwork();
    const [a] = await cluster(net, 'a', 'b');
    const ac = new AbortController();
    const pending = Array.from({ length: 100 }, (_, i) => a!.request('b', { type: 'x', payload: i }, { signal: ac.signal }));
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    expect((await Promise.all(pending)).map((r) => r.payload)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    net.isolate('b');
    const cut = Array.from({ length: 100 }, () => failure(a!.request('b', { type: 'x' }, { signal: ac.signal })));
    ac.abort();
    for (const e of await Promise.all(cut)) expect(e.code).toBe('KV_ABORTED');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    expect(a!.pendingRequests).toBe(0);
  });

  it('uses the per-transport default timeout, overridable per request', async () => {
    const net = new MemoryNetwork();
    const a = net.transport('a', { defaultTimeout: 40 });
    await a.start(echo);
    toStop.push(a);
    await cluster(net, 'b');
    net.isolate('b');
    let started = Date.now();
    await failure(a.request('b', { type: 'x' }));
    expect(Date.now() - started).toBeLessThan(1000);
    started = Date.now();
    await failure(a.request('b', { type: 'x' }, { timeout: 120 }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('leaves no timers behind after stop, with latency and pending requests', async () => {
    const clock = countingClock();
    const net = new MemoryNetwork({ clock, seed: 3 });
    net.setLatency({ min: 50, max: 100 });
    const [a, b] = await cluster(net, 'a', 'b');
    const pending = Array.from({ length: 10 }, () => failure(a!.request('b', { type: 'x' })));
    net.isolate('b');
    pending.push(failure(a!.request('b', { type: 'x' })));
    expect(clock.live()).toBeGreaterThan(0);
    await a!.stop();
    await b!.stop();
    for (const e of await Promise.all(pending)) expect(e.code).toBe('KV_CONNECTION_CLOSED');
    expect(clock.live()).toBe(0);
  });

  it('fails requests being handled by a peer that stops with KV_CONNECTION_CLOSED', async () => {
    const net = new MemoryNetwork();
    const [a] = await cluster(net, 'a');
    const b = net.transport('b');
    let release!: () => void;
    const handled = new Promise<void>((r) => (release = r));
    await b.start(async () => {
      release();
      await new Promise(() => {});
      return { type: 'never' };
    });
    const p = failure(a!.request('b', { type: 'x' }, { timeout: 10_000 }));
    await handled;
    await b.stop();
    expect((await p).code).toBe('KV_CONNECTION_CLOSED');
  });

  it('removes abort listeners when a request settles', async () => {
    const net = new MemoryNetwork();
    const [a] = await cluster(net, 'a', 'b');
    const ac = new AbortController();
    let added = 0;
    let removed = 0;
    const { signal } = ac;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added++;
      add(...args);
    }) as typeof add;
    signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      removed++;
      remove(...args);
    }) as typeof remove;
    for (let i = 0; i < 5; i++) await a!.request('b', { type: 'x' }, { signal });
    expect(added).toBe(5);
    expect(removed).toBe(5);
  });
});
