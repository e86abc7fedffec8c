import { afterEach, describe, expect, it } from 'vitest';
import { KvError, VectorClock, type Store } from 'quorumkv';
import { createTestCluster, type TestCluster } from 'quorumkv/testing';
import { SiblingSet, decodeSiblingSet, encodeSiblingSet, encodeValue } from 'quorumkv/internals';
import type { Clock, TimerHandle } from '../../src/internal/clock.js';

/**
 * Issue 8, anti-entropy: replicas that diverged converge through
 * `repair()` alone (no read touches the keys), siblings survive, tombstones
 * travel and are collected only after the grace once every replica holds them.
 */
let cluster: TestCluster<unknown> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const enc = new TextEncoder();
const DAY = 86_400_000;

/** A record of one version of `actor` (value msgpack-encoded as the Store does), optionally superseding `context`. */
function record(actor: string, value: unknown, options: { context?: VectorClock; timestamp?: number } = {}): Uint8Array {
  const { set } = SiblingSet.empty<Uint8Array>().write(actor, options.context ?? VectorClock.EMPTY, {
    value: encodeValue(value, 1 << 20),
    timestamp: options.timestamp ?? 1,
  });
  return encodeSiblingSet(set);
}

/** Writes `bytes` straight into a node's storage, as if that replica alone had received the write. */
async function plant(c: TestCluster<unknown>, id: string, key: string, bytes: Uint8Array): Promise<void> {
  const store = c.store(id);
  await c.storage(id).put(enc.encode(key), store.ring.token(key), bytes);
}

async function values(store: Store<unknown>, key: string): Promise<unknown[] | undefined> {
  const r = await store.localGet(key);
  if (r === undefined) return undefined;
  return r.values.map((v) => JSON.stringify(v)).sort();
}

/** A real-time clock whose `now()` can be moved forward (timers keep real time). */
class ShiftedClock implements Clock {
  offset = 0;
  readonly #live = new Set<ReturnType<typeof setTimeout>>();
  now(): number {
    return Date.now() + this.offset;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(() => {
      this.#live.delete(t);
      fn();
    }, ms);
    this.#live.add(t);
    return t as unknown as TimerHandle;
  }
  clearTimeout(handle: TimerHandle): void {
    const t = handle as unknown as ReturnType<typeof setTimeout>;
    clearTimeout(t);
    this.#live.delete(t);
  }
  /** Timers set and neither fired nor cleared. */
  get live(): number {
    return this.#live.size;
  }
}

/** Calls `hook` (once) when `store` sends its first request of type `type`, after sending it. */
function onFirstRequest(store: Store<unknown>, type: string, hook: () => void): void {
  const transport = store.transport;
  const original = transport.request.bind(transport);
  let fired = false;
  transport.request = (to, message, options) => {
    const sent = original(to, message, options);
    if (!fired && message.type === type) {
      fired = true;
      hook();
    }
    return sent;
  };
}

async function rejection(p: Promise<unknown>): Promise<KvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvError);
  return err as KvError;
}

describe('anti-entropy: store.repair()', () => {
  it('divergent replicas converge without a read; siblings survive; the counters are exact', async () => {
    cluster = await createTestCluster({ nodes: 3, store: { antiEntropy: false } });
    const [n1, n2, n3] = cluster.stores as [Store<unknown>, Store<unknown>, Store<unknown>];
    // n1 alone has k-a; n2 and n3 have k-b; k-sib holds concurrent versions: X on n1, Y on n2 and n3.
    await plant(cluster, 'n1', 'k-a', record('x', 'a'));
    await plant(cluster, 'n2', 'k-b', record('y', 'b'));
    await plant(cluster, 'n3', 'k-b', record('y', 'b'));
    await plant(cluster, 'n1', 'k-sib', record('x', 'X'));
    await plant(cluster, 'n2', 'k-sib', record('y', 'Y'));
    await plant(cluster, 'n3', 'k-sib', record('y', 'Y'));

    const result = await n1.repair();
    // One range (N = nodes: every node holds the whole ring) against two peers, in either order:
    // the first peer gets k-a and X and sends k-b and Y (4); the second gets k-a and the merged
    // k-sib and sends its Y (3); the first, compared again, now equals n1 (0).
    expect(result).toMatchObject({ rangesCompared: 2, keysExchanged: 7, peersSkipped: 0, hintsDelivered: 0, tombstonesPurged: 0 });
    expect(result.bytesSent).toBeGreaterThan(0);
    expect(result.bytesReceived).toBeGreaterThan(0);

    for (const s of [n1, n2, n3]) {
      expect(await values(s, 'k-a')).toEqual(['"a"']);
      expect(await values(s, 'k-b')).toEqual(['"b"']);
      // Merged, not overwritten: both concurrent versions on every replica.
      expect(await values(s, 'k-sib')).toEqual(['"X"', '"Y"']);
    }
    // The replicas now hold byte-identical records.
    const bytes = await Promise.all(['n1', 'n2', 'n3'].map((id) => cluster!.storage(id).get(enc.encode('k-sib'))));
    expect(bytes[1]).toEqual(bytes[0]);
    expect(bytes[2]).toEqual(bytes[0]);

    // A second round finds nothing to do and sends only the roots.
    const again = await n2.repair();
    expect(again).toMatchObject({ rangesCompared: 2, keysExchanged: 0, peersSkipped: 0 });
    expect(again.bytesSent).toBeLessThan(result.bytesSent);
  });

  it('the bytes it reports are what went over the network for its requests and answers', async () => {
    cluster = await createTestCluster({ nodes: 2, replication: { n: 2, r: 1, w: 1 }, store: { antiEntropy: false } });
    for (let i = 0; i < 50; i++) await plant(cluster, 'n1', `key-${i}`, record('x', 'v'.repeat(100 + i)));
    const before = cluster.network.stats().bytes;
    const r = await cluster.store('n1').repair();
    const after = cluster.network.stats().bytes;
    expect(r.keysExchanged).toBe(50);
    // Gossip adds its own bytes to the network's count meanwhile; the round's own are a part of it.
    expect(r.bytesSent + r.bytesReceived).toBeLessThanOrEqual(after - before);
    // At least the 50 records went over.
    expect(r.bytesSent).toBeGreaterThan(50 * 100);
  });

  it('a deleted key: the tombstone reaches the replica that missed the delete', async () => {
    cluster = await createTestCluster({ nodes: 3, store: { antiEntropy: false } });
    const [n1, , n3] = cluster.stores as [Store<unknown>, Store<unknown>, Store<unknown>];
    await n1.put('doomed', 'v', { consistency: 'all' });
    cluster.network.isolate('n3');
    await n1.delete('doomed');
    cluster.network.reconnect('n3');
    await cluster.converged();
    expect(await values(n3, 'doomed')).toEqual(['"v"']);

    const r = await n1.repair();
    expect(r.peersSkipped).toBe(0);
    // n1 sends its tombstone, n3 its older value (merged into n1's tombstone, which supersedes it).
    expect(r.keysExchanged).toBe(2);
    const local = await n3.localGet('doomed');
    expect(local?.values).toEqual([]);
    expect(local?.siblings.map((s) => s.tombstone)).toEqual([true]);
  });

  it('a down replica is skipped and counted; the others are still compared', async () => {
    cluster = await createTestCluster({ nodes: 3, store: { antiEntropy: false } });
    await plant(cluster, 'n1', 'k', record('x', 1));
    await cluster.store('n3').stop();
    const r = await cluster.store('n1').repair();
    expect(r).toMatchObject({ rangesCompared: 1, peersSkipped: 1, keysExchanged: 1 });
    expect(await values(cluster.store('n2'), 'k')).toEqual(['1']);
  });

  it('rejects with KV_ABORTED when its signal fires, before or during the round', async () => {
    cluster = await createTestCluster({ nodes: 3, store: { antiEntropy: false } });
    const n1 = cluster.store('n1');
    const pre = await rejection(n1.repair({ signal: AbortSignal.abort() }));
    expect(pre.code).toBe('KV_ABORTED');
    expect(pre.name).toBe('AbortError');

    await plant(cluster, 'n2', 'k', record('y', 1));
    const controller = new AbortController();
    onFirstRequest(n1, 'ae.start', () => controller.abort());
    const mid = await rejection(n1.repair({ signal: controller.signal }));
    expect(mid.code).toBe('KV_ABORTED');
    // Nothing reached n1 (the abort came before any record moved); the next round still works:
    // n1 gets k from n2 and hands it to n3 (whichever it compares first).
    expect(await n1.localGet('k')).toBeUndefined();
    const r = await n1.repair();
    expect(r).toMatchObject({ rangesCompared: 2, keysExchanged: 2 });
    expect(await values(cluster.store('n3'), 'k')).toEqual(['1']);
  });

  it('rejects with KV_NOT_STARTED on a stopped store, and when the store stops during the round', async () => {
    const clock = new ShiftedClock();
    cluster = await createTestCluster({ nodes: 3, store: { antiEntropy: { interval: 1_000 }, clock } });
    const n1 = cluster.store('n1');
    onFirstRequest(n1, 'ae.start', () => void n1.stop());
    const during = await rejection(n1.repair());
    expect(during.code).toBe('KV_NOT_STARTED');
    await n1.stop();
    const after = await rejection(n1.repair());
    expect(after.code).toBe('KV_NOT_STARTED');
    await cluster.stop();
    cluster = undefined;
    // Background timers, request deadlines, responder sessions: nothing is left on the clock.
    expect(clock.live).toBe(0);
  });
});

describe('anti-entropy: tombstone GC', () => {
  const GRACE = 10 * DAY;

  it('purges a tombstone only once every replica holds it and the grace has passed; an away replica cannot resurrect the value', async () => {
    const clock = new ShiftedClock();
    cluster = await createTestCluster({ nodes: 3, store: { antiEntropy: { interval: false, tombstoneGrace: GRACE }, clock } });
    const n1 = cluster.store('n1');
    await n1.put('gone', 'old value', { consistency: 'all' });
    await cluster.store('n3').stop(); // n3 is away and keeps the old value
    await n1.delete('gone');

    // Before the grace: held by every live replica, but too young.
    let r = await n1.repair();
    expect(r).toMatchObject({ peersSkipped: 1, tombstonesPurged: 0 });

    // Past the grace, but n3 does not hold the tombstone (it is away): 2 of 3 is not enough.
    clock.offset += GRACE + DAY;
    await cluster.converged(); // the jump in time makes the failure detectors doubt everyone for a moment
    r = await n1.repair();
    expect(r).toMatchObject({ peersSkipped: 1, tombstonesPurged: 0 });
    for (const id of ['n1', 'n2']) {
      const local = await cluster.store(id).localGet('gone');
      expect(local?.siblings.map((s) => s.tombstone)).toEqual([true]);
    }

    // n3 comes back with the old value: the tombstone still wins.
    const n3 = await cluster.restart('n3');
    expect(await values(n3, 'gone')).toEqual(['"old value"']);
    r = await n1.repair();
    // The exchange hands n3 the tombstone; then all three hold it and it is purged everywhere.
    expect(r).toMatchObject({ peersSkipped: 0, tombstonesPurged: 1 });
    for (const id of ['n1', 'n2', 'n3']) {
      expect(await cluster.storage(id).get(enc.encode('gone'))).toBeUndefined();
      expect(await cluster.store(id).get('gone')).toBeUndefined();
    }
    // And nothing brings it back.
    r = await cluster.store('n3').repair();
    expect(r.keysExchanged).toBe(0);
    expect(await cluster.store('n2').get('gone', { consistency: 'all' })).toBeUndefined();
  });

  it('a tombstone newer than the grace on any replica is kept', async () => {
    const clock = new ShiftedClock();
    cluster = await createTestCluster({ nodes: 3, store: { antiEntropy: { interval: false, tombstoneGrace: GRACE }, clock } });
    const n1 = cluster.store('n1');
    await n1.put('k', 1, { consistency: 'all' });
    await n1.delete('k', { consistency: 'all' });
    clock.offset += GRACE - DAY;
    await cluster.converged();
    const r = await n1.repair();
    expect(r).toMatchObject({ peersSkipped: 0, tombstonesPurged: 0 });
    const stored = await cluster.storage('n2').get(enc.encode('k'));
    expect(stored && decodeSiblingSet(stored).hasOnlyTombstones).toBe(true);
  });
});
