import { getEventListeners } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import type { Clock } from '../../../src/internal/clock.js';
import { ManualClock } from '../../../src/testing/manual-clock.js';
import { DEFAULT_MAX_PENDING, PendingRequests } from '../../../src/transport/pending-requests.js';
import { rejection } from '../../helpers/rejection.js';

/** The error a synchronous call throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

const listeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

function table(options: { maxPending?: number } = {}): { clock: ManualClock; pending: PendingRequests<string> } {
  const clock = new ManualClock(1_000);
  return { clock, pending: new PendingRequests<string>({ clock, ...options }) };
}

describe('PendingRequests', () => {
  it('gives each request a fresh id and resolves it by id, once', async () => {
    const { pending } = table();
    const r1 = pending.open({ timeout: 100 });
    const r2 = pending.open({ timeout: 100 });
    expect([r1.id, r2.id]).toEqual([1, 2]);
    expect(pending.size).toBe(2);
    expect(pending.has(1)).toBe(true);
    expect(pending.resolve(r2.id, 'two')).toBe(true);
    expect(pending.resolve(r2.id, 'again')).toBe(false);
    expect(pending.reject(r2.id, new Error('late'))).toBe(false);
    expect(pending.has(r2.id)).toBe(false);
    expect(pending.size).toBe(1);
    await expect(r2.promise).resolves.toBe('two');
    const err = new KvError('KV_OVERLOADED', 'busy');
    expect(pending.reject(r1.id, err)).toBe(true);
    await expect(r1.promise).rejects.toBe(err);
    expect(pending.size).toBe(0);
    expect(pending.resolve(999, 'unknown id')).toBe(false);
  });

  it('times out through the injected clock with KV_TIMEOUT, and ignores a late answer', async () => {
    const { clock, pending } = table();
    const { id, promise } = pending.open({ timeout: 100, label: 'kv.read to n2' });
    expect(clock.pending).toBe(1);
    clock.advance(99);
    expect(pending.has(id)).toBe(true);
    clock.advance(1);
    expect(pending.has(id)).toBe(false);
    expect(pending.resolve(id, 'too late')).toBe(false);
    const err = await rejection(promise);
    expect([err.code, err.name]).toEqual(['KV_TIMEOUT', 'TimeoutError']);
    expect(err.message).toBe('kv.read to n2 timed out after 100 ms');
    expect(clock.pending).toBe(0);
  });

  it('releases the timer when a request settles another way', () => {
    const { clock, pending } = table();
    const a = pending.open({ timeout: 100 });
    const b = pending.open({ timeout: 100 });
    expect(clock.pending).toBe(1); // one timer for the whole table
    pending.resolve(a.id, 'x');
    pending.reject(b.id, new Error('y'));
    b.promise.catch(() => {});
    expect(clock.pending).toBe(0);
  });

  it('times out each request at its own deadline with one timer, whatever the opening order and settling', async () => {
    const { clock, pending } = table(); // starts at t=1000
    const timedOut: string[] = [];
    const errors: string[] = [];
    const open = (label: string, timeout: number) => {
      // onSettled runs synchronously, at the clock's time of the settling.
      const r = pending.open({ timeout, label, onSettled: () => label !== 'a' && timedOut.push(`${label}@${clock.now()}`) });
      r.promise.then(
        () => {},
        (err: KvError) => errors.push(`${err.code} ${err.message}`),
      );
      return r;
    };
    const a = open('a', 100); // due 1100
    clock.advance(30);
    open('b', 100); // due 1130
    clock.advance(30);
    open('c', 20); // due 1080: earlier than the armed timer
    open('d', 20); // due 1080 too: after c (opening order)
    const e = open('e', 500); // due 1560
    expect(clock.pending).toBe(1);
    pending.resolve(a.id, 'answered'); // the armed earliest is settled: b still times out on time
    open('f', 40); // due 1100
    clock.advance(19); // t=1079
    await Promise.resolve();
    expect(timedOut).toEqual([]);
    clock.advance(1); // t=1080
    await new Promise((r) => setImmediate(r));
    expect(timedOut).toEqual(['c@1080', 'd@1080']);
    clock.advance(49); // t=1129: f at 1100
    await new Promise((r) => setImmediate(r));
    expect(timedOut).toEqual(['c@1080', 'd@1080', 'f@1100']);
    expect(pending.has(e.id)).toBe(true);
    clock.advance(1); // t=1130
    await new Promise((r) => setImmediate(r));
    expect(timedOut.at(-1)).toBe('b@1130');
    expect(pending.size).toBe(1);
    expect(clock.pending).toBe(1);
    clock.advance(429); // t=1559
    expect(pending.has(e.id)).toBe(true);
    clock.advance(1);
    expect(pending.has(e.id)).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(timedOut.at(-1)).toBe('e@1560');
    expect(clock.pending).toBe(0);
    expect(errors).toEqual(
      ['c 20', 'd 20', 'f 40', 'b 100', 'e 500'].map((x) => `KV_TIMEOUT ${x.split(' ')[0]} timed out after ${x.split(' ')[1]} ms`),
    );
  });

  it('keeps deadlines exact across many settled requests (heap compaction) and re-entrant opens', async () => {
    const { clock, pending } = table();
    const live: { id: number; due: number }[] = [];
    for (let i = 0; i < 2_000; i++) {
      const timeout = 1 + ((i * 7919) % 997);
      const r = pending.open({ timeout });
      r.promise.catch(() => {});
      if (i % 10 === 0) live.push({ id: r.id, due: 1_000 + timeout });
      else pending.resolve(r.id, 'x'); // most settle: the heap must drop them
    }
    // A request opened from a timeout's onSettled is timed out on time too.
    let reopened = -1;
    const first = pending.open({
      timeout: 5,
      onSettled: () => {
        const r = pending.open({ timeout: 10 });
        r.promise.catch(() => {});
        reopened = r.id;
        pending.open({ timeout: 2_000 }).promise.catch(() => {});
      },
    });
    first.promise.catch(() => {});
    expect(clock.pending).toBe(1);
    for (let t = 1; t <= 1_000; t++) {
      clock.advance(1);
      for (const { id, due } of live) expect(pending.has(id)).toBe(1_000 + t < due);
      if (t < 5) expect(pending.has(first.id)).toBe(true);
      if (t === 5) expect(pending.has(first.id)).toBe(false);
      if (t >= 5 && t < 15) expect(pending.has(reopened)).toBe(true);
      if (t >= 15) expect(pending.has(reopened)).toBe(false);
    }
    expect(pending.size).toBe(1); // the 2000 ms one
    expect(clock.pending).toBe(1);
    pending.rejectAll(new Error('stop'));
    expect(clock.pending).toBe(0);
  });

  it('sets no timer for an Infinity timeout, and clamps one past the system timer range', () => {
    const set = vi.fn();
    const clock: Clock = { now: () => 0, setTimeout: set, clearTimeout: () => {} };
    const pending = new PendingRequests<string>({ clock });
    pending.open({ timeout: Infinity });
    expect(set).not.toHaveBeenCalled();
    pending.open({ timeout: 2 ** 40 });
    expect(set).toHaveBeenCalledWith(expect.any(Function), 2_147_483_647);
  });

  it('fails a request whose deadline already passed (timeout 0) with KV_TIMEOUT, registering nothing', () => {
    const { clock, pending } = table();
    const onSettled = vi.fn();
    const err = thrown(() => pending.open({ timeout: 0, label: 'kv.apply to n3', onSettled }));
    expect(err).toMatchObject({ code: 'KV_TIMEOUT', name: 'TimeoutError' });
    expect((err as Error).message).toContain('kv.apply to n3');
    expect(pending.size).toBe(0);
    expect(clock.pending).toBe(0);
    expect(onSettled).not.toHaveBeenCalled();
  });

  it('treats a negative, NaN or non-number timeout as a programmer mistake (RangeError)', () => {
    const { pending } = table();
    expect(() => pending.open({ timeout: -1 })).toThrow(
      new RangeError('Expected `timeout` to be a number of milliseconds >= 0 (or Infinity), got -1'),
    );
    expect(() => pending.open({ timeout: NaN })).toThrow(RangeError);
    expect(() => pending.open({ timeout: '5' as never })).toThrow(/got string/);
    expect(pending.size).toBe(0);
  });

  it('fails a pre-aborted request with KV_ABORTED, registering nothing (abort wins over timeout 0)', () => {
    const { pending } = table();
    const reason = new Error('user');
    const signal = AbortSignal.abort(reason);
    for (const timeout of [100, 0]) {
      expect(thrown(() => pending.open({ timeout, signal }))).toMatchObject({ code: 'KV_ABORTED', name: 'AbortError', cause: reason });
    }
    expect(pending.size).toBe(0);
    expect(listeners(signal)).toBe(0);
  });

  it('rejects with KV_ABORTED when aborted in flight, releasing timer and listener', async () => {
    const { clock, pending } = table();
    const ac = new AbortController();
    const { id, promise } = pending.open({ timeout: 100, signal: ac.signal });
    expect(listeners(ac.signal)).toBe(1);
    const reason = new Error('gave up');
    ac.abort(reason);
    expect(pending.has(id)).toBe(false);
    const err = await rejection(promise);
    expect([err.code, err.name, err.cause]).toEqual(['KV_ABORTED', 'AbortError', reason]);
    expect(clock.pending).toBe(0);
    expect(listeners(ac.signal)).toBe(0);
  });

  it('shares one abort listener among all requests on one signal, and removes it once they settle', async () => {
    const { pending } = table();
    const ac = new AbortController();
    const opened = Array.from({ length: 100 }, () => pending.open({ timeout: 100, signal: ac.signal }));
    expect(listeners(ac.signal)).toBe(1);
    for (const r of opened.slice(0, 50)) pending.resolve(r.id, 'ok');
    expect(listeners(ac.signal)).toBe(1);
    ac.abort();
    expect(pending.size).toBe(0);
    expect(listeners(ac.signal)).toBe(0);
    const outcomes = await Promise.all(opened.map((r) => r.promise.then((v) => v, (e: KvError) => e.code)));
    expect(outcomes).toEqual([...Array<string>(50).fill('ok'), ...Array<string>(50).fill('KV_ABORTED')]);
  });

  it('refuses requests past maxPending with KV_OVERLOADED, until one settles', () => {
    const { pending } = table({ maxPending: 2 });
    expect(pending.maxPending).toBe(2);
    const a = pending.open({ timeout: 100 });
    pending.open({ timeout: 100 });
    const err = thrown(() => pending.open({ timeout: 100, label: 'kv.read to n2' }));
    expect(err).toBeInstanceOf(KvError);
    expect((err as KvError).code).toBe('KV_OVERLOADED');
    expect((err as KvError).message).toContain('kv.read to n2');
    expect(pending.size).toBe(2);
    pending.resolve(a.id, 'x');
    expect(() => pending.open({ timeout: 100 })).not.toThrow();
  });

  it('validates maxPending (default 10000, Infinity for no bound)', () => {
    expect(new PendingRequests().maxPending).toBe(DEFAULT_MAX_PENDING);
    expect(DEFAULT_MAX_PENDING).toBe(10_000);
    expect(new PendingRequests({ maxPending: Infinity }).maxPending).toBe(Infinity);
    for (const bad of [0, -1, 1.5, NaN]) {
      expect(() => new PendingRequests({ maxPending: bad })).toThrow(/Expected `maxPending` to be a positive integer or Infinity/);
    }
  });

  it('rejectAll fails every request in flight, with one error or one per id, and counts them', async () => {
    const { clock, pending } = table();
    const ac = new AbortController();
    const opened = Array.from({ length: 3 }, () => pending.open({ timeout: 100, signal: ac.signal }));
    expect(pending.rejectAll((id) => new KvError('KV_CONNECTION_CLOSED', `closed ${id}`))).toBe(3);
    expect(pending.size).toBe(0);
    expect(clock.pending).toBe(0);
    expect(listeners(ac.signal)).toBe(0);
    const errors = await Promise.all(opened.map((r) => rejection(r.promise)));
    expect(errors.map((e) => [e.code, e.message])).toEqual(opened.map((r) => ['KV_CONNECTION_CLOSED', `closed ${r.id}`]));
    expect(pending.rejectAll(new KvError('KV_CONNECTION_CLOSED', 'again'))).toBe(0);
    const late = pending.open({ timeout: 100 });
    const closed = new KvError('KV_CONNECTION_CLOSED', 'connection lost');
    expect(pending.rejectAll(closed)).toBe(1);
    await expect(late.promise).rejects.toBe(closed);
  });

  it('runs onSettled exactly once, whichever way the request settles', async () => {
    const { clock, pending } = table();
    const ac = new AbortController();
    const counts = [0, 0, 0, 0, 0];
    const open = (i: number, signal?: AbortSignal): { id: number; promise: Promise<string> } => {
      const r = pending.open({ timeout: i === 2 ? 50 : 10_000, signal, onSettled: () => counts[i]!++ });
      r.promise.catch(() => {});
      return r;
    };
    const answered = open(0);
    const failed = open(1);
    open(2); // times out
    open(3, ac.signal); // aborted
    const cut = open(4); // cut by rejectAll
    pending.resolve(answered.id, 'x');
    pending.reject(failed.id, new Error('no'));
    clock.advance(50);
    ac.abort();
    expect(pending.size).toBe(1);
    pending.rejectAll(new Error('stop'));
    clock.advance(20_000);
    pending.resolve(answered.id, 'twice');
    pending.reject(cut.id, new Error('twice'));
    pending.rejectAll(new Error('twice'));
    expect(counts).toEqual([1, 1, 1, 1, 1]);
    expect(pending.size).toBe(0);
  });

  it('takes a caller-chosen id, refuses a pending or malformed one, and skips taken ids when choosing', () => {
    const { pending } = table();
    expect(pending.open({ timeout: 100, id: 2 }).id).toBe(2);
    expect(() => pending.open({ timeout: 100, id: 2 })).toThrow(new RangeError('Expected `id` to be free, got 2, which is still pending'));
    for (const bad of [-1, 1.5, 2 ** 53, NaN]) {
      expect(() => pending.open({ timeout: 100, id: bad })).toThrow(/Expected `id` to be a non-negative safe integer/);
    }
    expect([pending.open({ timeout: 100 }).id, pending.open({ timeout: 100 }).id]).toEqual([1, 3]);
    expect(pending.open({ timeout: 100, id: 0 }).id).toBe(0);
    expect(pending.size).toBe(4);
  });

  it('uses the system clock by default', async () => {
    const pending = new PendingRequests<string>();
    const { promise } = pending.open({ timeout: 1 });
    expect((await rejection(promise)).code).toBe('KV_TIMEOUT');
  });
});

describe('PendingRequests.openFor (a receiver instead of a promise)', () => {
  /** A receiver that records its calls as `tag:answer` or `tag:CODE`. */
  function recorder() {
    const calls: string[] = [];
    return {
      calls,
      answered: (tag: number, value: string) => void calls.push(`${tag}:${value}`),
      failed: (tag: number, error: Error) => void calls.push(`${tag}:${error instanceof KvError ? error.code : error.name}`),
    };
  }

  it('settles each request once through the receiver, synchronously, by answer, error, timeout, abort and rejectAll', () => {
    const clock = new ManualClock();
    const pending = new PendingRequests<string>({ clock });
    const r = recorder();
    const settled: number[] = [];
    const answered = pending.openFor({ timeout: 100, onSettled: () => settled.push(1) }, r, 1);
    const failed = pending.openFor({ timeout: 100 }, r, 2);
    pending.openFor({ timeout: 50 }, r, 3);
    const ac = new AbortController();
    pending.openFor({ timeout: 100, signal: ac.signal }, r, 4);
    pending.openFor({ timeout: Infinity }, r, 5);
    expect(pending.resolve(answered, 'a')).toBe(true);
    expect(r.calls).toEqual(['1:a']);
    expect(settled).toEqual([1]);
    expect(pending.resolve(answered, 'again')).toBe(false);
    pending.reject(failed, new KvError('KV_OVERLOADED', 'busy'));
    clock.advance(50);
    ac.abort();
    expect(listeners(ac.signal)).toBe(0);
    expect(pending.rejectAll(new KvError('KV_CONNECTION_CLOSED', 'closed'))).toBe(1);
    expect(r.calls).toEqual(['1:a', '2:KV_OVERLOADED', '3:KV_TIMEOUT', '4:KV_ABORTED', '5:KV_CONNECTION_CLOSED']);
    expect(pending.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('refuses as open does (a throw, nothing registered, the receiver not called), and mixes with promise requests', async () => {
    const pending = new PendingRequests<string>({ clock: new ManualClock(), maxPending: 2 });
    const r = recorder();
    expect((thrown(() => pending.openFor({ timeout: 0 }, r, 1)) as KvError).code).toBe('KV_TIMEOUT');
    expect((thrown(() => pending.openFor({ timeout: 10, signal: AbortSignal.abort() }, r, 1)) as KvError).code).toBe('KV_ABORTED');
    expect(thrown(() => pending.openFor({ timeout: -1 }, r, 1))).toBeInstanceOf(RangeError);
    const { id, promise } = pending.open({ timeout: 10 });
    const viaReceiver = pending.openFor({ timeout: 10 }, r, 9);
    expect((thrown(() => pending.openFor({ timeout: 10 }, r, 1)) as KvError).code).toBe('KV_OVERLOADED');
    expect(r.calls).toEqual([]);
    pending.resolve(viaReceiver, 'x');
    pending.resolve(id, 'y');
    expect(await promise).toBe('y');
    expect(r.calls).toEqual(['9:x']);
  });
});

describe('PendingRequests.openFor: order of settling', () => {
  it('runs onSettled before the receiver (the transport lets go of the request first)', () => {
    const pending = new PendingRequests<string>({ clock: new ManualClock() });
    const order: string[] = [];
    const receiver = { answered: () => void order.push('answered'), failed: () => void order.push('failed') };
    const a = pending.openFor({ timeout: 10, onSettled: () => order.push('settled a') }, receiver, 1);
    const b = pending.openFor({ timeout: 10, onSettled: () => order.push('settled b') }, receiver, 2);
    pending.resolve(a, 'x');
    pending.reject(b, new Error('no'));
    expect(order).toEqual(['settled a', 'answered', 'settled b', 'failed']);
  });
});

describe('PendingRequests: a settled request keeps nothing alive', () => {
  /** A full collection, the way a test can ask for one (the flag is set for this isolate, then `gc` read from a fresh context). */
  function collect(): void {
    v8.setFlagsFromString('--expose-gc');
    (vm.runInNewContext('gc') as () => void)();
  }
  /** One macrotask: a WeakRef's target is kept until the job that dereferenced it ends. */
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it('lets go of receivers, promise functions and onSettled callbacks once settled, though the deadline heap still holds the entries', async () => {
    const pending = new PendingRequests<string>({ clock: new ManualClock() });
    const refs: WeakRef<object>[] = [];
    const ids: number[] = [];
    const promises: Promise<string>[] = [];
    // One request stays open: the table keeps its deadline heap (with the settled entries in it) instead of clearing it.
    const keep = pending.open({ timeout: 1_000 });
    // Opened in a function of its own: nothing of the last one stays in this frame.
    const openTwo = (i: number): void => {
      // What a batch's receiver holds in the transport: everything its operations still refer to.
      const receiver = { payload: new Uint8Array(1024), answered: (): void => {}, failed: (): void => {} };
      refs.push(new WeakRef(receiver));
      ids.push(pending.openFor({ timeout: 1_000 }, receiver, i));
      const callback = { payload: new Uint8Array(1024) };
      refs.push(new WeakRef(callback));
      const p = pending.open({ timeout: 1_000 + i, onSettled: () => void callback.payload.fill(1) });
      promises.push(p.promise.catch(() => 'failed'));
      ids.push(p.id);
    };
    for (let i = 0; i < 40; i++) openTwo(i);
    ids.forEach((id, i) => (i % 4 === 3 ? pending.reject(id, new Error('no')) : pending.resolve(id, 'ok')));
    await Promise.all(promises);
    await turn();
    collect();
    await turn();
    expect(refs.map((r, i) => (r.deref() === undefined ? -1 : i)).filter((i) => i >= 0)).toEqual([]);
    pending.resolve(keep.id, 'done');
    await keep.promise;
  });
});
