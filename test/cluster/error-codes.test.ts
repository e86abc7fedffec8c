import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KvError, QuorumNotMetError, type RequestHandler } from 'quorumkv';
import { MemoryTransport } from 'quorumkv/internals';
import { createTestCluster, type TestCluster } from 'quorumkv/testing';
import { ErrorCodes, toKvError } from '../../src/errors/index.js';
import { rejection } from '../helpers/rejection.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await cluster?.stop();
  cluster = undefined;
});

/** A `KV_QUORUM_NOT_MET` whose every replica failure has code `code`. */
async function quorumFailure(p: Promise<unknown>, code: string): Promise<QuorumNotMetError> {
  const err = await rejection(p);
  expect(err.code).toBe('KV_QUORUM_NOT_MET');
  const q = err as QuorumNotMetError;
  expect(q.failures.length).toBeGreaterThan(0);
  expect(q.failures.map((f) => f.code)).toEqual(q.failures.map(() => code));
  return q;
}

/** Collects `MaxListenersExceededWarning`s emitted while `fn` runs (and the turn after). */
async function maxListenerWarnings(fn: () => Promise<void>): Promise<string[]> {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message);
  };
  process.on('warning', onWarning);
  try {
    await fn();
    // process.emitWarning emits on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  return warnings;
}

describe('error codes', () => {
  it('a call with timeout 0 reports KV_TIMEOUT for each replica it could not ask, never a storage failure', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const store = cluster.stores[0]!;
    await store.put('k', 1);
    const read = await quorumFailure(store.get('k', { timeout: 0 }), 'KV_TIMEOUT');
    expect(read.failures.map((f) => f.node).sort()).toEqual(['n2', 'n3']);
    const write = await quorumFailure(store.put('k', 2, { timeout: 0 }), 'KV_TIMEOUT');
    expect([write.required, write.acknowledged]).toEqual([2, 1]); // the coordinator's own replica stored it
    expect(write.failures.map((f) => f.node).sort()).toEqual(['n2', 'n3']);
    await quorumFailure(store.delete('k', { timeout: 0 }), 'KV_TIMEOUT');
  });

  it('a call whose 1 ms deadline runs out before the answers arrive reports KV_TIMEOUT per replica', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const store = cluster.stores[0]!;
    await store.put('k', 1);
    // Every message now takes 20 ms: no answer can beat a 1 ms deadline.
    cluster.network.setLatency(20);
    await quorumFailure(store.get('k', { timeout: 1 }), 'KV_TIMEOUT');
    await quorumFailure(store.put('k', 2, { timeout: 1 }), 'KV_TIMEOUT');
  });

  it('a remote handler throwing a plain Error surfaces as KV_INTERNAL, not as a storage failure', async () => {
    // Wrap the handler the stores give their transports: n2 and n3 crash on replica messages once `broken`.
    let broken = false;
    const start = MemoryTransport.prototype.start;
    vi.spyOn(MemoryTransport.prototype, 'start').mockImplementation(function (this: MemoryTransport, handler: RequestHandler) {
      const address = this.address;
      return start.call(this, (message, from) => {
        if (broken && address !== 'n1' && (message.type === 'kv.read' || message.type === 'kv.apply')) {
          throw new Error(`bug in ${address}`);
        }
        return handler(message, from);
      });
    });
    cluster = await createTestCluster({ nodes: 3 });
    const store = cluster.stores[0]!;
    await store.put('k', 1);
    broken = true;
    const read = await quorumFailure(store.get('k'), 'KV_INTERNAL');
    expect(read.failures.map((f) => f.node).sort()).toEqual(['n2', 'n3']);
    await quorumFailure(store.put('k', 2), 'KV_INTERNAL');
  });

  it('toKvError files an unexpected error under KV_INTERNAL unless told otherwise', () => {
    expect(toKvError(new Error('x')).code).toBe('KV_INTERNAL');
    expect(toKvError('not even an Error').code).toBe('KV_INTERNAL');
    expect(toKvError(new Error('disk'), ErrorCodes.STORAGE_FAILURE).code).toBe('KV_STORAGE_FAILURE');
    const coded = new KvError('KV_OVERLOADED', 'busy');
    expect(toKvError(coded)).toBe(coded);
  });
});

describe('one AbortSignal shared by many calls', () => {
  it('100 concurrent gets sharing a signal add no MaxListenersExceededWarning and leave no listener', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const store = cluster.stores[0]!;
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.put(`k${i}`, i)));
    const ac = new AbortController();
    const warnings = await maxListenerWarnings(async () => {
      const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => store.get(`k${i % 10}`, { signal: ac.signal })));
      expect(answers.map((a) => a?.values)).toEqual(Array.from({ length: 100 }, (_, i) => [i % 10]));
    });
    expect(warnings).toEqual([]);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('aborting a signal shared by 100 calls in flight rejects each with KV_ABORTED, without warnings or leftovers', async () => {
    cluster = await createTestCluster({ nodes: 3 });
    const store = cluster.stores[0]!;
    await store.put('k', 1);
    cluster.network.setLatency(50);
    const ac = new AbortController();
    const warnings = await maxListenerWarnings(async () => {
      const calls = Array.from({ length: 100 }, (_, i) =>
        rejection(i % 2 === 0 ? store.get('k', { signal: ac.signal }) : store.put(`w${i}`, i, { signal: ac.signal })),
      );
      ac.abort(new Error('user gave up'));
      for (const err of await Promise.all(calls)) {
        expect(err.code).toBe('KV_ABORTED');
        expect(err.name).toBe('AbortError');
      }
    });
    expect(warnings).toEqual([]);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});
