import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNetwork, Ring, defaultTokens, type NodeInfo } from 'quorumkv';
import { Membership } from 'quorumkv/internals';
import { ManualClock } from 'quorumkv/testing';

const INTERVAL = 100;

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function node(id: string): NodeInfo {
  return Ring.from([{ id, tokens: defaultTokens(id, 1, 16) }]).node(id)!;
}

interface Harness {
  clock: ManualClock;
  net: MemoryNetwork;
  members: Map<string, Membership>;
  events: string[];
  add(id: string, options?: { seeds?: string[]; generation?: number; cluster?: string; n?: number }): Promise<Membership>;
  tick(ms: number): Promise<void>;
  stopTransport(id: string): Promise<void>;
  stop(): Promise<void>;
}

function harness(): Harness {
  const clock = new ManualClock(1_000_000);
  const net = new MemoryNetwork({ clock, seed: 7 });
  const members = new Map<string, Membership>();
  const transports = new Map<string, { stop(): Promise<void> }>();
  const events: string[] = [];
  const h: Harness = {
    clock,
    net,
    members,
    events,
    async add(id, options = {}) {
      const transport = net.transport(id);
      transports.set(id, transport);
      let i = 0;
      const m = new Membership({
        self: node(id),
        generation: options.generation ?? 1,
        cluster: options.cluster ?? 'c',
        n: options.n ?? 3,
        transport,
        seeds: options.seeds ?? [],
        clock,
        interval: INTERVAL,
        suspectAfterRounds: 3,
        downAfterRounds: 6,
        gossipTimeout: 50,
        random: () => ((i++ * 0.618) % 1),
      });
      for (const name of ['member:joined', 'member:suspected', 'member:down', 'member:up'] as const) {
        m.on(name, (e: { member: { id: string } }) => events.push(`${id} ${name} ${e.member.id}`));
      }
      await transport.start((message, from) => m.handle(message, from));
      m.start();
      members.set(id, m);
      return m;
    },
    async tick(ms) {
      for (let t = 0; t < ms; t += 10) {
        clock.advance(10);
        await flush();
      }
    },
    async stopTransport(id) {
      await transports.get(id)?.stop();
    },
    async stop() {
      const stopping = [...members.values()].map((m) => m.stop());
      // Shutdown announcements to isolated peers wait for their timeout on the manual clock.
      await h.tick(100);
      await Promise.all(stopping);
      for (const t of transports.values()) await t.stop();
    },
  };
  return h;
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const status = (m: Membership, id: string): string | undefined => m.members().find((x) => x.id === id)?.status;

describe('Membership (manual clock)', () => {
  it('joins through a seed and spreads members and tokens to everyone', async () => {
    h = harness();
    const a = await h.add('a');
    const b = await h.add('b', { seeds: ['a'] });
    const c = await h.add('c', { seeds: ['a'] });
    await h.tick(5 * INTERVAL);
    for (const m of [a, b, c]) {
      expect(m.members().map((x) => `${x.id}:${x.status}`)).toEqual(['a:alive', 'b:alive', 'c:alive']);
      expect(m.ring.toJSON()).toEqual(Ring.from([node('a'), node('b'), node('c')]).toJSON());
    }
  });

  it('suspects, then declares down, a silent member on the clock, and brings it back up', async () => {
    h = harness();
    const a = await h.add('a');
    await h.add('b', { seeds: ['a'] });
    await h.tick(3 * INTERVAL);
    expect(status(a, 'b')).toBe('alive');
    h.net.isolate('b');
    await h.tick(2 * INTERVAL);
    expect(status(a, 'b')).toBe('alive');
    await h.tick(2 * INTERVAL);
    expect(status(a, 'b')).toBe('suspect');
    await h.tick(3 * INTERVAL);
    expect(status(a, 'b')).toBe('down');
    expect(a.ring.has('b')).toBe(true); // down is not gone
    h.net.heal();
    await h.tick(10 * INTERVAL);
    expect(status(a, 'b')).toBe('alive');
    expect(h.events.filter((e) => e.startsWith('a ') && e.endsWith(' b'))).toEqual([
      'a member:joined b',
      'a member:suspected b',
      'a member:down b',
      'a member:up b',
    ]);
  });

  it('a stopping member is down at once; its restart (higher generation) is up', async () => {
    h = harness();
    const a = await h.add('a');
    const b = await h.add('b', { seeds: ['a'] });
    await h.tick(3 * INTERVAL);
    const downs: string[] = [];
    a.on('member:down', (e) => downs.push(`${e.member.id}:${e.reason}`));
    await b.stop();
    await flush();
    expect(downs).toEqual(['b:shutdown']);
    expect(status(a, 'b')).toBe('down');
    h.members.delete('b');
    await h.stopTransport('b');
    const b2 = await h.add('b', { seeds: ['a'], generation: 2 });
    await h.tick(3 * INTERVAL);
    expect(status(a, 'b')).toBe('alive');
    expect(a.members().find((x) => x.id === 'b')?.generation).toBe(2);
    expect(status(b2, 'a')).toBe('alive');
  });

  it('waitForMembers resolves on the clock and times out on it', async () => {
    h = harness();
    const a = await h.add('a');
    const lonely = a.waitForMembers(2, { timeout: 300 });
    const failed = lonely.catch((e: { code: string }) => e.code);
    await h.tick(400);
    expect(await failed).toBe('KV_TIMEOUT');
    const waiting = a.waitForMembers(2, { timeout: 10_000 });
    await h.add('b', { seeds: ['a'] });
    await h.tick(2 * INTERVAL);
    await waiting;
  });
});
