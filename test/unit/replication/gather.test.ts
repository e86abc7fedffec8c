import { describe, expect, it } from 'vitest';
import { ManualClock } from 'quorumkv/testing';
import { KvError, type NodeInfo } from 'quorumkv';
import type { AnswerReceiver } from 'quorumkv';
import { Gather, SENT, gather, type GatherPolicy } from '../../../src/replication/gather.js';

const nodes = (n: number): NodeInfo[] => Array.from({ length: n }, (_, i) => ({ id: `n${i}`, address: `n${i}`, weight: 1, tokens: [i] }));

/** A call per node whose outcome the test decides. */
function controlled() {
  const calls = new Map<string, { resolve: (v: string) => void; reject: (e: unknown) => void }>();
  const call = (node: NodeInfo): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      calls.set(node.id, { resolve, reject });
    });
  return { calls, call };
}

const settle = () => new Promise((r) => setImmediate(r));

/** A gather its caller made, begun as gather() begins its own. */
function begun<T, C>(g: Gather<T, C>, now: number | undefined): Gather<T, C> {
  g.begin(now);
  return g;
}

describe('gather', () => {
  it('resolves at the quorum with the answers so far, and `all` once every call settled', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    const g = gather(nodes(3), call, { operation: 'read', required: 2, deadline: clock.now() + 100, clock });
    calls.get('n1')!.resolve('b');
    calls.get('n0')!.reject(new KvError('KV_UNREACHABLE', 'gone'));
    calls.get('n2')!.resolve('c');
    const q = await g.quorum;
    expect([...q.ok]).toEqual([
      ['n1', 'b'],
      ['n2', 'c'],
    ]);
    expect(q.failures).toEqual([{ node: 'n0', code: 'KV_UNREACHABLE' }]);
    expect(clock.pending).toBe(0); // every call settled: the timer went with them
    const all = await g.all;
    expect(all.ok.size).toBe(2);
  });

  it('a gathering whose quorum nobody reads fails without an unhandled rejection (quorum out of reach, deadline, abort)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const clock = new ManualClock();
      const { calls, call } = controlled();
      const failed = gather(nodes(3), call, { operation: 'write', required: 3, deadline: clock.now() + 100, clock });
      calls.get('n0')!.reject(new KvError('KV_UNREACHABLE', 'gone'));
      const late = gather(nodes(2), controlled().call, { operation: 'read', required: 2, deadline: clock.now() + 100, clock });
      clock.advance(100);
      const controller = new AbortController();
      const aborted = gather(nodes(2), controlled().call, { operation: 'read', required: 1, deadline: clock.now() + 100, clock, signal: controller.signal });
      controller.abort();
      await settle();
      await settle();
      expect(unhandled).toEqual([]);
      // Read later, each still gives its failure.
      await expect(failed.quorum).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' });
      await expect(late.quorum).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' });
      await expect(aborted.quorum).rejects.toMatchObject({ code: 'KV_ABORTED' });
      calls.get('n1')!.resolve('ok');
      calls.get('n2')!.resolve('ok');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('counts each node once and fails as soon as the quorum is out of reach, beyond 31 nodes too', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    const g = gather(nodes(40), call, { operation: 'write', required: 38, counted: 1, deadline: clock.now() + 100, clock });
    for (let i = 0; i < 34; i++) calls.get(`n${i}`)!.resolve('ok');
    for (let i = 34; i < 38; i++) calls.get(`n${i}`)!.reject(new Error('bug'));
    calls.get('n0')!.reject(new Error('late duplicate'));
    await settle();
    await expect(g.quorum).rejects.toMatchObject({
      code: 'KV_QUORUM_NOT_MET',
      required: 38,
      acknowledged: 35,
      failures: [
        { node: 'n34', code: 'KV_INTERNAL' },
        { node: 'n35', code: 'KV_INTERNAL' },
        { node: 'n36', code: 'KV_INTERNAL' },
        { node: 'n37', code: 'KV_INTERNAL' },
      ],
    });
    calls.get('n38')!.resolve('ok');
    calls.get('n39')!.resolve('ok');
    expect((await g.all).ok.size).toBe(36);
  });

  it('gives up on pending nodes at the deadline (KV_TIMEOUT), unless told the calls carry it themselves', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    const g = gather(nodes(3), call, { operation: 'read', required: 2, deadline: clock.now() + 100, clock });
    calls.get('n0')!.resolve('a');
    await settle();
    clock.advance(100);
    await expect(g.quorum).rejects.toMatchObject({
      code: 'KV_QUORUM_NOT_MET',
      acknowledged: 1,
      failures: [
        { node: 'n1', code: 'KV_TIMEOUT' },
        { node: 'n2', code: 'KV_TIMEOUT' },
      ],
    });
    const untimed = controlled();
    const h = gather(nodes(2), untimed.call, { operation: 'write', required: 2, deadline: clock.now() + 100, timer: false, clock });
    expect(clock.pending).toBe(0);
    untimed.calls.get('n0')!.resolve('a');
    untimed.calls.get('n1')!.resolve('b');
    expect((await h.quorum).ok.size).toBe(2);
  });

  it('rejects with KV_ABORTED when the signal fires, and releases its listener', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    const controller = new AbortController();
    const g = gather(nodes(2), call, { operation: 'read', required: 2, deadline: clock.now() + 100, signal: controller.signal, clock });
    controller.abort();
    await expect(g.quorum).rejects.toMatchObject({ code: 'KV_ABORTED', name: 'AbortError' });
    calls.get('n0')!.resolve('a');
    calls.get('n1')!.resolve('b');
    await g.all;
    expect(clock.pending).toBe(0);
    const pre = gather(nodes(1), call, { operation: 'read', required: 1, deadline: clock.now() + 100, signal: controller.signal, clock });
    await expect(pre.quorum).rejects.toMatchObject({ code: 'KV_ABORTED' });
  });

  it('with nothing to ask, settles at once from what is already counted', async () => {
    const clock = new ManualClock();
    const g = gather<string>([], () => Promise.resolve('x'), { operation: 'write', required: 1, counted: 1, deadline: clock.now() + 100, clock });
    expect((await g.quorum).ok.size).toBe(0);
    await g.all;
    expect(clock.pending).toBe(0);
  });

  it("answers: 'count' counts answers toward the quorum without keeping them; failures and the error's numbers are as with 'keep'", async () => {
    const clock = new ManualClock();
    for (const answers of ['keep', 'count'] as const) {
      // Reaches its quorum (1 counted + 1 answer), the last answer comes after it.
      const { calls, call } = controlled();
      const alls: number[] = [];
      const g = gather(nodes(3), call, {
        operation: 'write',
        required: 2,
        counted: 1,
        deadline: clock.now() + 100,
        clock,
        answers,
        onAll: (done) => alls.push(done.ok.size),
      });
      calls.get('n0')!.reject(new KvError('KV_UNREACHABLE', 'gone'));
      calls.get('n1')!.resolve('a');
      const q = await g.quorum;
      expect(q.failures).toEqual([{ node: 'n0', code: 'KV_UNREACHABLE' }]);
      calls.get('n2')!.resolve('b');
      await g.all;
      expect(alls).toEqual([answers === 'keep' ? 2 : 0]);
      // Out of reach: the error counts what answered, kept or not.
      const other = controlled();
      const failed = gather(nodes(3), other.call, { operation: 'write', required: 3, counted: 1, deadline: clock.now() + 100, clock, answers });
      other.calls.get('n0')!.resolve('a');
      other.calls.get('n1')!.reject(new KvError('KV_TIMEOUT', 'slow'));
      other.calls.get('n2')!.reject(new KvError('KV_UNREACHABLE', 'gone'));
      await expect(failed.quorum).rejects.toMatchObject({
        code: 'KV_QUORUM_NOT_MET',
        required: 3,
        acknowledged: 2,
        failures: [
          { node: 'n1', code: 'KV_TIMEOUT' },
          { node: 'n2', code: 'KV_UNREACHABLE' },
        ],
      });
      // A gathering with no failure reports none.
      const clean = controlled();
      const ok = gather(nodes(1), clean.call, { operation: 'write', required: 1, deadline: clock.now() + 100, clock, answers });
      clean.calls.get('n0')!.resolve('a');
      expect((await ok.quorum).failures).toEqual([]);
    }
  });
});

describe('gather: onAll and a lazy `all`', () => {
  it('calls onAll once, after the last call settled (not at the quorum), with every answer and failure', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    const seen: { ok: [string, string][]; failures: number }[] = [];
    const g = gather(nodes(3), call, {
      operation: 'read',
      required: 1,
      deadline: clock.now() + 100,
      clock,
      onAll: (done) => seen.push({ ok: [...done.ok], failures: done.failures.length }),
    });
    calls.get('n0')!.resolve('a');
    await g.quorum;
    expect(seen).toEqual([]);
    calls.get('n2')!.reject(new KvError('KV_UNREACHABLE', 'gone'));
    calls.get('n1')!.resolve('b');
    await settle();
    expect(seen).toEqual([{ ok: [['n0', 'a'], ['n1', 'b']], failures: 1 }]);
    // `all` made after the fact resolves at once with the same view.
    expect((await g.all).ok.size).toBe(2);
    expect(seen).toHaveLength(1);
  });

  it('calls onAll at the deadline for calls that never answer (with the timer), and with no nodes at once', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    let done = 0;
    const g = gather(nodes(2), call, { operation: 'write', required: 2, deadline: clock.now() + 50, clock, onAll: () => done++ });
    calls.get('n0')!.resolve('x');
    await settle();
    expect(done).toBe(0);
    clock.advance(50);
    await expect(g.quorum).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' });
    expect(done).toBe(0); // the silent call itself has not settled yet
    calls.get('n1')!.reject(new KvError('KV_TIMEOUT', 'late'));
    await settle();
    expect(done).toBe(1);
    let empty = 0;
    gather([], call, { operation: 'read', required: 0, deadline: clock.now() + 50, clock, onAll: () => empty++ });
    expect(empty).toBe(1);
  });
});

describe('gather: calls that answer synchronously', () => {
  it('counts a synchronous answer at once; onAll comes once, after begin, when every call answered synchronously', async () => {
    const clock = new ManualClock();
    let all = 0;
    const g = gather(nodes(3), (node) => `v-${node.id}`, {
      operation: 'read',
      required: 2,
      deadline: clock.now() + 100,
      clock,
      onAll: () => all++,
    });
    expect(all).toBe(1);
    expect(clock.pending).toBe(0); // nothing left to wait for: no timer
    const q = await g.quorum;
    expect([...q.ok.keys()]).toEqual(['n0', 'n1', 'n2']);
    expect(all).toBe(1);
  });

  it('mixes synchronous and asynchronous answers (a local read and remote ones), and a synchronous throw is that node failing', async () => {
    const clock = new ManualClock();
    const { calls, call } = controlled();
    let all = 0;
    const g = gather(
      nodes(3),
      (node) => {
        if (node.id === 'n0') return 'local';
        if (node.id === 'n1') throw new KvError('KV_STORAGE_FAILURE', 'disk');
        return call(node);
      },
      { operation: 'read', required: 2, deadline: clock.now() + 100, clock, onAll: () => all++ },
    );
    expect(all).toBe(0);
    calls.get('n2')!.resolve('remote');
    const q = await g.quorum;
    expect([...q.ok]).toEqual([
      ['n0', 'local'],
      ['n2', 'remote'],
    ]);
    await settle();
    expect(q.failures).toEqual([{ node: 'n1', code: 'KV_STORAGE_FAILURE' }]);
    expect(all).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('settle turns asynchronous answers into answers (a throw is that node failing); synchronous answers skip it', async () => {
    const clock = new ManualClock();
    const seen: string[] = [];
    const g = gather<number>(
      nodes(4),
      (node) => (node.id === 'n0' ? 7 : (Promise.resolve(node.id === 'n3' ? 'bad' : `${node.id.length}`) as Promise<unknown> as Promise<number>)),
      {
        operation: 'read',
        required: 3,
        deadline: clock.now() + 100,
        clock,
        settle: (value, node) => {
          seen.push(node.id);
          if (value === 'bad') throw new KvError('KV_INVALID_MESSAGE', 'not an answer');
          return Number(value) * 10;
        },
      },
    );
    const all = await g.all;
    expect([...all.ok].sort()).toEqual([
      ['n0', 7],
      ['n1', 20],
      ['n2', 20],
    ]);
    expect(all.failures).toEqual([{ node: 'n3', code: 'KV_INVALID_MESSAGE' }]);
    expect(seen.sort()).toEqual(['n1', 'n2', 'n3']);
  });
});

describe('gather: calls that send with the gather as receiver (SENT)', () => {
  /** A call per node that hands the gather's receiver and tag out, as a transport's send would keep them. */
  function sending() {
    const sent = new Map<string, { receiver: AnswerReceiver<unknown>; tag: number }>();
    const call = (node: NodeInfo, _s: AbortSignal | undefined, _f: string | undefined, receiver: AnswerReceiver<unknown>, tag: number): typeof SENT => {
      sent.set(node.id, { receiver, tag });
      return SENT;
    };
    return { sent, call };
  }

  it('counts answers and failures given to the receiver, through settle, each node once', async () => {
    const clock = new ManualClock();
    const { sent, call } = sending();
    const seen: string[] = [];
    const g = gather<string>(nodes(3), call, {
      operation: 'read',
      required: 2,
      deadline: clock.now() + 100,
      clock,
      settle: (value, node) => {
        seen.push(node.id);
        if (value === 'bad') throw new KvError('KV_INVALID_MESSAGE', 'bad answer');
        return `${String(value)}!`;
      },
      onAll: (done) => seen.push(`all:${done.ok.size}/${done.failures.length}`),
    });
    expect([...sent.values()].map((s) => s.tag)).toEqual([0, 1, 2]);
    const at = (id: string) => sent.get(id)!;
    at('n2').receiver.failed(at('n2').tag, new KvError('KV_UNREACHABLE', 'gone'));
    at('n0').receiver.answered(at('n0').tag, 'bad');
    at('n1').receiver.answered(at('n1').tag, 'b');
    await expect(g.quorum).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET', acknowledged: 0 });
    const all = await g.all;
    expect([...all.ok]).toEqual([['n1', 'b!']]);
    expect(all.failures).toEqual([
      { node: 'n2', code: 'KV_UNREACHABLE' },
      { node: 'n0', code: 'KV_INVALID_MESSAGE' },
    ]);
    expect(seen).toEqual(['n0', 'n1', 'all:1/2']);
  });

  it('takes outcomes given before the call returned (a send that fails or answers at once), with onAll once after begin', async () => {
    const clock = new ManualClock();
    const events: string[] = [];
    const call = (node: NodeInfo, _s: AbortSignal | undefined, _f: string | undefined, receiver: AnswerReceiver<unknown>, tag: number): typeof SENT => {
      if (node.id === 'n0') receiver.failed(tag, new KvError('KV_NOT_STARTED', 'stopped'));
      else receiver.answered(tag, node.id);
      return SENT;
    };
    const g = gather<string>(nodes(3), call, {
      operation: 'write',
      required: 2,
      deadline: clock.now() + 100,
      clock,
      onAll: (done) => events.push(`all:${done.ok.size}/${done.failures.length}`),
    });
    events.push('begun');
    expect(events).toEqual(['all:2/1', 'begun']);
    await expect(g.quorum).resolves.toMatchObject({ failures: [{ node: 'n0', code: 'KV_NOT_STARTED' }] });
    expect(clock.pending).toBe(0);
  });
});

describe('gather: a context for calls made once, and a result computed at the quorum', () => {
  interface Ctx {
    readonly prefix: string;
    readonly seen: string[];
  }

  it('hands the same context to every call, to settle and to onAll; quorum resolves with result(context)', async () => {
    const clock = new ManualClock();
    const pending = new Map<string, (v: string) => void>();
    const call = (node: NodeInfo, _s: AbortSignal | undefined, _f: string | undefined, _r: AnswerReceiver<unknown>, _t: number, ctx: Ctx) =>
      new Promise<string>((resolve) => pending.set(node.id, (v) => resolve(`${ctx.prefix}${v}`)));
    const context: Ctx = { prefix: 'p:', seen: [] };
    let allWith: Ctx | undefined;
    const g = gather(nodes(3), call, {
      operation: 'read',
      required: 2,
      deadline: clock.now() + 100,
      clock,
      context,
      settle: (value, node, ctx) => (ctx.seen.push(node.id), String(value)),
      onAll: (_gathered, ctx) => {
        allWith = ctx;
      },
      // Computed as the second answer is counted: what was seen by then.
      result: (ctx) => ctx.seen.join(','),
    });
    pending.get('n2')!('x');
    pending.get('n0')!('y');
    expect(await g.quorum).toBe('n2,n0');
    expect(allWith).toBeUndefined();
    pending.get('n1')!('z');
    await g.all;
    expect(allWith).toBe(context);
    expect(context.seen).toEqual(['n2', 'n0', 'n1']);
  });

  it('a result that throws rejects quorum with what it threw; a quorum out of reach never calls it', async () => {
    const clock = new ManualClock();
    const boom = new Error('present failed');
    let calls = 0;
    const ok = gather(nodes(2), () => 'v', {
      operation: 'read',
      required: 1,
      deadline: clock.now() + 100,
      clock,
      result: () => {
        calls++;
        throw boom;
      },
    });
    await expect(ok.quorum).rejects.toBe(boom);
    const { calls: pendingCalls, call } = controlled();
    const failed = gather(nodes(2), call, {
      operation: 'read',
      required: 2,
      deadline: clock.now() + 100,
      clock,
      result: () => {
        calls++;
        return 'never';
      },
    });
    pendingCalls.get('n0')!.reject(new KvError('KV_UNREACHABLE', 'gone'));
    await expect(failed.quorum).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET' });
    expect(calls).toBe(1);
  });
});

describe('Gather made by its caller: one policy shared by many gathers, what differs in arguments', () => {
  it('keeps each gather\'s required, counted, deadline, signal and context its own while they interleave on one policy', async () => {
    const clock = new ManualClock();
    type Ctx = { name: string; settled: string[]; all: number };
    const policy: GatherPolicy<string, Ctx> = {
      operation: 'write',
      clock,
      settle: (value, node, ctx) => {
        ctx.settled.push(node.id);
        return `${ctx.name}:${String(value)}`;
      },
      onAll: (done, ctx) => {
        ctx.all = done.ok.size;
      },
      result: (ctx) => ctx.name,
    };
    const a: Ctx = { name: 'a', settled: [], all: -1 };
    const b: Ctx = { name: 'b', settled: [], all: -1 };
    const first = controlled();
    const second = controlled();
    const controller = new AbortController();
    // a: two of three, one counted already (needs one answer); b: all three, with a signal.
    const ga = begun(new Gather(nodes(3), first.call, policy, 2, 1, clock.now() + 100, undefined, a, undefined, undefined), clock.now());
    const gb = begun(new Gather(nodes(3), second.call, policy, 3, 0, clock.now() + 50, controller.signal, b, undefined, undefined), clock.now());
    second.calls.get('n0')!.resolve('x');
    first.calls.get('n2')!.resolve('y');
    await expect(ga.quorum).resolves.toBe('a');
    await settle();
    expect(a.settled).toEqual(['n2']);
    expect(b.settled).toEqual(['n0']);
    // b's own deadline, not a's: its two silent nodes time out at 50 ms.
    clock.advance(50);
    await expect(gb.quorum).rejects.toMatchObject({ code: 'KV_QUORUM_NOT_MET', required: 3, acknowledged: 1 });
    expect(b.all).toBe(-1); // its calls are still pending (they carry no timeout of their own here)
    second.calls.get('n1')!.resolve('z');
    second.calls.get('n2')!.reject(new KvError('KV_UNREACHABLE', 'gone'));
    await settle();
    expect(b.all).toBe(1); // the late answer came after the deadline closed its node: not counted
    first.calls.get('n0')!.resolve('p');
    first.calls.get('n1')!.resolve('q');
    await settle();
    expect(a.all).toBe(3);
    expect(a.settled).toEqual(['n2', 'n0', 'n1']);
    expect(clock.pending).toBe(0);
  });

  it('takes a per-zone quorum and a signal as arguments; an aborted signal ends that gather only', async () => {
    const clock = new ManualClock();
    const zoned: NodeInfo[] = nodes(4).map((n, i) => ({ ...n, zone: i < 2 ? 'east' : 'west' }));
    const policy: GatherPolicy<string> = { operation: 'write', clock, timer: false };
    const one = controlled();
    const zones = new Map([
      ['east', 2],
      ['west', 1],
    ]);
    const g = begun(new Gather(zoned, one.call, policy, 3, 0, clock.now() + 100, undefined, undefined, zones, undefined), undefined);
    let met = false;
    void g.quorum.then(() => (met = true));
    one.calls.get('n2')!.resolve('w');
    one.calls.get('n0')!.resolve('e');
    await settle();
    expect(met).toBe(false); // east still needs its second answer
    one.calls.get('n1')!.resolve('e');
    await settle();
    expect(met).toBe(true);
    const controller = new AbortController();
    const other = begun(new Gather(nodes(2), controlled().call, policy, 1, 0, clock.now() + 100, controller.signal, undefined, undefined, undefined), undefined);
    controller.abort();
    await expect(other.quorum).rejects.toMatchObject({ code: 'KV_ABORTED' });
  });
});
