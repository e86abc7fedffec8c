import { describe, expect, it } from 'vitest';
import { KvError, MemoryStorage } from 'quorumkv';
import type { MemberRecord } from '../../../src/membership/index.js';
import {
  Lifecycle,
  MessageRouter,
  MetaNames,
  MetadataWriter,
  decodePeers,
  encodePeers,
  loadIdentity,
} from '../../../src/node/index.js';
import { ManualClock } from 'quorumkv/testing';

const peer = (id: string, generation = 1): MemberRecord => ({
  id,
  address: `${id}:1`,
  zone: id === 'b' ? 'z1' : undefined,
  weight: 1.5,
  tokens: [1, 2, 0xffffffff],
  generation,
  heartbeat: 42,
  state: 'normal',
  shutdown: true,
});

describe('Lifecycle', () => {
  it('stops the started components in reverse order, all of them even if one fails', async () => {
    const log: string[] = [];
    const life = new Lifecycle();
    const part = (name: string, failStop = false) => ({
      name,
      start: () => void log.push(`start ${name}`),
      stop: () => {
        log.push(`stop ${name}`);
        if (failStop) throw new Error(`stop ${name} failed`);
      },
    });
    await life.start(part('storage'));
    await life.start(part('replica', true));
    await life.start(part('transport'));
    await expect(life.stop()).rejects.toThrow('stop replica failed');
    expect(log).toEqual(['start storage', 'start replica', 'start transport', 'stop transport', 'stop replica', 'stop storage']);
    await life.stop(); // nothing left
    expect(log).toHaveLength(6);
  });

  it('a component that fails to start is not stopped', async () => {
    const life = new Lifecycle();
    let stopped = false;
    await expect(
      life.start({ name: 'x', start: () => Promise.reject(new Error('no')), stop: () => void (stopped = true) }),
    ).rejects.toThrow('no');
    await life.stop();
    expect(stopped).toBe(false);
  });
});

describe('MessageRouter', () => {
  const router = (known: string[]) =>
    new MessageRouter({ self: 'a', cluster: 'c1', knows: (addr) => known.includes(addr) });

  it('routes by type and applies member admission', async () => {
    const r = router(['b']);
    r.register('kv.read', 'member', () => ({ type: 'kv.record' }));
    r.register('gossip.syn', 'open', (_m, from) => ({ type: 'gossip.ack', from }));
    expect(() => r.handle({ type: 'kv.read', cluster: 'c1' }, 'b')).toThrow(KvError); // not open yet
    r.open();
    expect(await r.handle({ type: 'kv.read', cluster: 'c1' }, 'b')).toEqual({ type: 'kv.record' });
    expect(await r.handle({ type: 'gossip.syn' }, 'stranger')).toEqual({ type: 'gossip.ack', from: 'stranger' });
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (err) {
        return (err as KvError).code;
      }
      return 'none';
    };
    expect(code(() => r.handle({ type: 'kv.read', cluster: 'c2' }, 'b'))).toBe('KV_CLUSTER_MISMATCH');
    expect(code(() => r.handle({ type: 'kv.read', cluster: 'c1' }, 'stranger'))).toBe('KV_UNKNOWN_PEER');
    expect(code(() => r.handle({ type: 'kv.nope', cluster: 'c1' }, 'b'))).toBe('KV_INVALID_MESSAGE');
    r.close();
    expect(code(() => r.handle({ type: 'kv.read', cluster: 'c1' }, 'b'))).toBe('KV_NOT_STARTED');
    expect(() => r.register('kv.read', 'open', () => ({ type: 'x' }))).toThrow(/already has a handler/);
  });
});

describe('stored peers', () => {
  it('round-trip without heartbeats or the shutdown flag', () => {
    const peers = decodePeers(encodePeers([peer('b', 7), peer('c', 9)]));
    expect(peers).toEqual([
      { ...peer('b', 7), heartbeat: 0, shutdown: false },
      { ...peer('c', 9), heartbeat: 0, shutdown: false },
    ]);
  });

  it('a corrupt slot is KV_STORAGE_FAILURE, never an empty list', () => {
    for (const bad of [new Uint8Array([0xc1]), encodePeers([]).slice(0, 1), new TextEncoder().encode('peers')]) {
      let err: unknown;
      try {
        decodePeers(bad);
      } catch (e) {
        err = e;
      }
      expect((err as KvError).code).toBe('KV_STORAGE_FAILURE');
    }
  });
});

describe('identity', () => {
  it('keeps the incarnation, raises the generation at every start and loads stored peers', async () => {
    const storage = new MemoryStorage();
    await storage.open();
    const clock = new ManualClock(1_000);
    const init = { id: 'a', weight: 1, tokens: undefined, tokensPerWeight: 4, clock };
    const first = await loadIdentity(storage, init);
    expect(first.generation).toBe(1_000);
    expect(first.peers).toEqual([]);
    expect(first.tokens).toHaveLength(4);
    await storage.setMeta(MetaNames.peers, encodePeers([peer('a'), peer('b')]));
    const second = await loadIdentity(storage, init); // same clock reading: still higher
    expect(second.incarnation).toBe(first.incarnation);
    expect(second.generation).toBe(1_001);
    expect(second.tokens).toEqual(first.tokens);
    expect(second.peers.map((p) => p.id)).toEqual(['b']); // never itself
    await storage.close();
  });

  it('MetadataWriter coalesces bursts, keeps the latest value and flushes', async () => {
    const storage = new MemoryStorage();
    await storage.open();
    let writes = 0;
    const setMeta = storage.setMeta.bind(storage);
    storage.setMeta = (name, value) => {
      writes++;
      return setMeta(name, value);
    };
    const errors: string[] = [];
    const w = new MetadataWriter(storage, (name) => errors.push(name));
    for (let g = 1; g <= 50; g++) w.generation(g);
    await w.flush();
    expect(writes).toBeLessThanOrEqual(2);
    const stored = await storage.getMeta(MetaNames.generation);
    expect(stored).toBeDefined();
    const { decode } = await import('@msgpack/msgpack');
    expect(decode(stored!)).toBe(50);
    await storage.close();
    w.peers([peer('b')]);
    await w.flush();
    expect(errors).toEqual([MetaNames.peers]); // reported, not thrown
  });

  it('MetadataWriter encodes a burst of stored-peer lists once: only the list still queued when written', async () => {
    const { encodePeers } = await import('../../../src/node/metadata.js');
    const storage = new MemoryStorage();
    await storage.open();
    let encodings = 0;
    const w = new MetadataWriter(storage, () => undefined);
    const lists = Array.from({ length: 20 }, (_, i) => [peer(`p${i}`)]);
    for (const list of lists) {
      w.write(MetaNames.peers, () => {
        encodings++;
        return encodePeers(list);
      });
    }
    await w.flush();
    // The first is written at once; the 19 queued behind it replace one another.
    expect(encodings).toBe(2);
    const { decodePeers } = await import('../../../src/node/metadata.js');
    expect(decodePeers((await storage.getMeta(MetaNames.peers))!).map((p) => p.id)).toEqual(['p19']);
    await storage.close();
  });
});

describe('presentKey', () => {
  it('gives valid UTF-8 as a string and anything else as a copy of the bytes', async () => {
    const { presentKey } = await import('../../../src/internal/bytes.js');
    expect(presentKey(new TextEncoder().encode('user:1 ✓'))).toBe('user:1 ✓');
    const raw = new Uint8Array([0xff, 0x00, 0x80]);
    const shown = presentKey(raw);
    expect(shown).toEqual(raw);
    expect(shown).not.toBe(raw);
  });
});
