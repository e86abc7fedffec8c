import { getEventListeners } from 'node:events';
import { resolveTestApi, type ComplianceTestApi } from './test-api.js';
import { KvError } from '../errors/index.js';
import type { AnswerReceiver, RequestHandler, RequestOptions, Transport, TransportCapabilities, WireMessage } from '../transport/types.js';

/** What a transport compliance `setup` returns for each case. */
export interface TransportPair {
  /** An unstarted transport that can reach `b` by its `address` once both are started. */
  readonly a: Transport;
  /** An unstarted transport that can reach `a` by its `address` once both are started. */
  readonly b: Transport;
  /**
   * Returns a new, unstarted transport at the address of `stopped` (which
   * the suite has stopped): a peer restart. Without it the peer-restart
   * case is reported as skipped.
   */
  readonly reopen?: (stopped: Transport) => Transport;
}

/** Options of {@link transportCompliance}. */
export interface TransportComplianceOptions<P extends TransportPair = TransportPair> {
  /** Names the suite: `Transport compliance: <name>`. */
  name: string;
  /**
   * Returns a fresh pair of unstarted transports for each case. The suite
   * starts them with its own handler and stops them after the case.
   *
   * It is also called once while the cases are registered, only to read
   * `a.capabilities` (and whether `reopen` exists) so that unsupported
   * cases are registered as skipped; that pair is never started and never
   * given to `teardown`. So `setup` is synchronous and should acquire
   * nothing that a transport does not acquire in `start()`.
   */
  setup: () => P;
  /** Runs after each case, once every transport of the case is stopped. */
  teardown?: (pair: P) => void | Promise<void>;
  /**
   * The test framework's functions (`import * as vitest from 'vitest'`, or
   * jest's globals).
   * @default the global `describe`, `it`, `beforeEach`, `afterEach`, `expect`
   */
  test?: ComplianceTestApi;
}

/** How long the suite waits for the handler to see requests before failing the case (ms). */
const ARRIVAL_DEADLINE = 10_000;

function checkOptions(options: unknown): asserts options is TransportComplianceOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `Expected \`options\` to be an object { name, setup, teardown?, test? }, got ${options === null ? 'null' : typeof options}`,
    );
  }
  const o = options as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name.length === 0) {
    throw new TypeError(`Expected \`name\` to be a non-empty string, got ${typeof o.name}`);
  }
  if (typeof o.setup !== 'function') throw new TypeError(`Expected \`setup\` to be a function, got ${typeof o.setup}`);
  if (o.teardown !== undefined && typeof o.teardown !== 'function') {
    throw new TypeError(`Expected \`teardown\` to be a function, got ${typeof o.teardown}`);
  }
}

function checkPair(pair: unknown): asserts pair is TransportPair {
  const p = pair as Partial<TransportPair> | null | undefined;
  if (typeof p !== 'object' || p === null || typeof (p as { then?: unknown }).then === 'function') {
    throw new TypeError(
      `transportCompliance: expected \`setup()\` to return { a, b } synchronously, got ${
        p === null ? 'null' : typeof (p as { then?: unknown } | undefined)?.then === 'function' ? 'a promise' : typeof p
      }`,
    );
  }
  if (typeof p.a?.request !== 'function' || typeof p.b?.request !== 'function') {
    throw new TypeError('transportCompliance: expected `setup()` to return two transports as `a` and `b`');
  }
}

/**
 * Registers the `Transport` compliance suite for an implementation, the way
 * libp2p's interface tests and abstract-level's suite are shared by every
 * implementation. `setup` runs before each case and returns two unstarted
 * transports that can reach each other by `address` once started; the suite
 * starts them with its own handler and stops them after each case, then
 * calls `teardown`.
 *
 * Cases a transport cannot support are registered with `it.skip`, so they
 * show as skipped, never as passed: the oversized-frame case needs
 * `capabilities.maxFrameBytes`, the copy-isolation case needs
 * `capabilities.encodes`, the peer-restart case needs the pair's `reopen`,
 * the `send` cases need the optional `Transport.send`.
 *
 * Covered: lifecycle (idempotent start/stop, `KV_NOT_STARTED` after stop),
 * request/response in both directions, the sender's address, handler
 * errors (`KvError` codes kept, anything else `KV_INTERNAL`), 100 parallel
 * requests, a ~1 MB payload, oversized requests and answers
 * (`KV_INVALID_MESSAGE`), timeouts (`KV_TIMEOUT`, also for `timeout: 0`;
 * `RangeError` for a negative one), pre-aborted and mid-flight aborts
 * (`KV_ABORTED`), one AbortSignal shared by 100 requests (no
 * `MaxListenersExceededWarning`, no listener left), an unreachable peer
 * (`KV_UNREACHABLE`), a peer restart at the same address, and stop with
 * requests in flight (`KV_CONNECTION_CLOSED`). A transport with `send`
 * also runs its cases: the same outcomes reach the receiver, each exactly
 * once, with the request's tag, and `send` never throws.
 *
 * The suite's handler understands messages of type `echo`, `whoami`, `fail`
 * (throws a `KvError` with the given code), `crash` (throws a plain Error),
 * `mutate` (changes the request it got, then echoes it), `big` (answers
 * with `size` bytes) and `hang` (never answers until the case ends).
 *
 * @example
 * ```ts
 * import * as vitest from 'vitest';
 * import { transportCompliance } from 'quorumkv/testing';
 *
 * transportCompliance({
 *   name: 'MyTransport',
 *   setup: () => ({ a: new MyTransport({ port: 0 }), b: new MyTransport({ port: 0 }) }),
 *   test: vitest,
 * });
 * ```
 */
export function transportCompliance<P extends TransportPair>(options: TransportComplianceOptions<P>): void {
  checkOptions(options);
  const { name, setup, teardown } = options;
  const { describe, it, beforeEach, afterEach, expect } = resolveTestApi(options.test, 'transportCompliance');

  // Read what the implementation supports from a pair that is never started.
  const probe = setup();
  checkPair(probe);
  const capabilities: TransportCapabilities = probe.a.capabilities;
  const maxFrameBytes = capabilities.maxFrameBytes;
  const canReopen = typeof probe.reopen === 'function';
  const canSend = typeof probe.a.send === 'function';
  /** `it` when `supported`, else `it.skip` (reported as skipped, never as passed). */
  const itIf = (supported: boolean): typeof it.skip => (supported ? it : it.skip.bind(it));

  const failure = async (p: Promise<unknown>): Promise<KvError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'expected the request to reject with a KvError').toBeInstanceOf(KvError);
    return err as KvError;
  };
  /** Any error (not only KvErrors) a promise rejects with. */
  const anyError = async (p: Promise<unknown>): Promise<unknown> =>
    p.then(
      () => undefined,
      (e: unknown) => e,
    );

  describe(`Transport compliance: ${name}`, () => {
    let pair: P;
    let a: Transport;
    let b: Transport;
    /** Transports opened by a case (reopened peers), stopped after it. */
    let extra: Transport[] = [];
    let hanging: (() => void)[] = [];
    let waiters: (() => void)[] = [];
    const received: { message: WireMessage; from: string }[] = [];

    const handler: RequestHandler = (message, from) => {
      received.push({ message, from });
      for (const w of waiters) w();
      switch (message.type) {
        case 'echo':
          return { type: 'echo', payload: message.payload };
        case 'whoami':
          return { type: 'you-are', from };
        case 'fail':
          throw new KvError(message.code as never, String(message.text));
        case 'crash':
          throw new Error('handler bug');
        case 'mutate': {
          const payload = message.payload as { list: number[] };
          payload.list.push(99);
          return { type: 'echo', payload };
        }
        case 'big':
          return { type: 'big', payload: new Uint8Array(Number(message.size)) };
        case 'hang':
          return new Promise<WireMessage>((resolve) => hanging.push(() => resolve({ type: 'late' })));
        default:
          return { type: 'unknown' };
      }
    };

    /** Resolves once the handler has seen `count` requests of type `type` (no fixed sleeps). */
    const arrived = (count: number, type: string): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (received.filter((r) => r.message.type === type).length < count) return;
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== check);
          reject(new Error(`the handler saw fewer than ${count} ${type} requests within ${ARRIVAL_DEADLINE} ms`));
        }, ARRIVAL_DEADLINE);
        waiters.push(check);
        check();
      });

    /** MaxListenersExceededWarnings emitted while `fn` runs (and the turn after, when Node emits them). */
    const listenerWarnings = async (fn: () => Promise<void>): Promise<string[]> => {
      const warnings: string[] = [];
      const onWarning = (w: Error): void => {
        if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message);
      };
      process.on('warning', onWarning);
      try {
        await fn();
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off('warning', onWarning);
      }
      return warnings;
    };

    beforeEach(async () => {
      received.length = 0;
      hanging = [];
      waiters = [];
      extra = [];
      pair = setup();
      checkPair(pair);
      a = pair.a;
      b = pair.b;
      await a.start(handler);
      await b.start(handler);
    });
    afterEach(async () => {
      await a.stop();
      await b.stop();
      for (const t of extra) await t.stop();
      for (const release of hanging) release();
      if (teardown) await teardown(pair);
    });

    describe('lifecycle', () => {
      it('start and stop are idempotent', async () => {
        expect(a.started).toBe(true);
        await a.start(handler);
        expect(a.started).toBe(true);
        await Promise.all([a.stop(), a.stop()]);
        expect(a.started).toBe(false);
        await a.stop();
        expect(a.started).toBe(false);
      });

      it('declares its capabilities and a distinct address', () => {
        expect(typeof a.capabilities.encodes).toBe('boolean');
        expect(typeof a.capabilities.faultInjection).toBe('boolean');
        const max = a.capabilities.maxFrameBytes;
        if (max !== undefined) expect(Number.isSafeInteger(max) && max > 0, 'maxFrameBytes is a positive integer').toBe(true);
        expect(typeof a.address).toBe('string');
        expect(a.address).not.toBe(b.address);
      });

      it('rejects requests after stop with KV_NOT_STARTED', async () => {
        await a.stop();
        expect((await failure(a.request(b.address, { type: 'echo' }))).code).toBe('KV_NOT_STARTED');
      });
    });

    describe('messaging', () => {
      it('round-trips nested values and bytes, in both directions', async () => {
        const payload = {
          s: 'héllo ✓ 𝄞',
          n: [0, -1, 1.5, 2 ** 40, -(2 ** 31), Number.MAX_SAFE_INTEGER],
          t: true,
          f: false,
          z: null,
          bin: new Uint8Array([0, 1, 2, 254, 255]),
          empty: new Uint8Array(0),
          nested: { deep: [{ x: [new Uint8Array([9])] }], e: {}, ea: [] },
        };
        const res = await a.request(b.address, { type: 'echo', payload });
        expect(res).toEqual({ type: 'echo', payload });
        expect((res.payload as { bin: unknown }).bin).toBeInstanceOf(Uint8Array);
        const back = await b.request(a.address, { type: 'echo', payload: 'x' });
        expect(back).toEqual({ type: 'echo', payload: 'x' });
      });

      it('passes the sender address to the handler', async () => {
        const res = await a.request(b.address, { type: 'whoami' });
        expect(res).toEqual({ type: 'you-are', from: a.address });
      });

      it('propagates a KvError thrown by the handler as its code', async () => {
        const err = await failure(a.request(b.address, { type: 'fail', code: 'KV_OVERLOADED', text: 'too busy' }));
        expect(err.code).toBe('KV_OVERLOADED');
        expect(err.message).toContain('too busy');
      });

      it('reports anything else the handler throws as KV_INTERNAL', async () => {
        const err = await failure(a.request(b.address, { type: 'crash' }));
        expect(err.code).toBe('KV_INTERNAL');
        expect(err.message).toContain('handler bug');
      });

      it('refuses a body that is not a wire value with KV_INVALID_MESSAGE', async () => {
        const err = await failure(a.request(b.address, { type: 'echo', payload: new Date() as never }));
        expect(err.code).toBe('KV_INVALID_MESSAGE');
      });

      it('handles 100 parallel requests, each answered with its own answer', async () => {
        const res = await Promise.all(
          Array.from({ length: 100 }, (_, i) => a.request(b.address, { type: 'echo', payload: i })),
        );
        expect(res.map((r) => r.payload)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      });

      it('carries a large message (~1 MB) both ways', async () => {
        const big = new Uint8Array(1024 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
        const res = await a.request(b.address, { type: 'echo', payload: big }, { timeout: 20_000 });
        const got = res.payload as Uint8Array;
        expect(got).toBeInstanceOf(Uint8Array);
        expect(Buffer.compare(got, big), 'large payload differs').toBe(0);
      }, 30_000);

      itIf(maxFrameBytes !== undefined)(
        'refuses an oversized request and an oversized answer with KV_INVALID_MESSAGE (needs capabilities.maxFrameBytes)',
        async () => {
          const max = maxFrameBytes!;
          const err = await failure(a.request(b.address, { type: 'echo', payload: new Uint8Array(max) }, { timeout: 20_000 }));
          expect(err.code).toBe('KV_INVALID_MESSAGE');
          expect(received.filter((r) => r.message.type === 'echo')).toHaveLength(0);
          const answer = await failure(a.request(b.address, { type: 'big', size: max }, { timeout: 20_000 }));
          expect(answer.code).toBe('KV_INVALID_MESSAGE');
          // Both sides still work.
          expect(await a.request(b.address, { type: 'echo', payload: 1 })).toEqual({ type: 'echo', payload: 1 });
        },
      );

      itIf(capabilities.encodes)(
        'copies messages through the wire: neither side sees the other change its objects (needs capabilities.encodes)',
        async () => {
          const payload = { list: [1, 2] };
          const res = await a.request(b.address, { type: 'mutate', payload });
          expect(payload).toEqual({ list: [1, 2] });
          expect(res.payload).toEqual({ list: [1, 2, 99] });
          expect(res.payload).not.toBe(payload);
        },
      );
    });

    describe('timeouts and cancellation', () => {
      it('rejects with KV_TIMEOUT when the handler never answers', async () => {
        const started = Date.now();
        const err = await failure(a.request(b.address, { type: 'hang' }, { timeout: 100 }));
        expect(err.code).toBe('KV_TIMEOUT');
        expect(Date.now() - started).toBeGreaterThanOrEqual(90);
      });

      it('rejects a request whose deadline has passed (timeout: 0) with KV_TIMEOUT', async () => {
        const err = await failure(a.request(b.address, { type: 'echo' }, { timeout: 0 }));
        expect(err.code).toBe('KV_TIMEOUT');
        // The transport still works afterwards.
        expect(await a.request(b.address, { type: 'echo', payload: 2 })).toEqual({ type: 'echo', payload: 2 });
      });

      it('treats a negative timeout as a programmer mistake (RangeError)', async () => {
        expect(await anyError(a.request(b.address, { type: 'echo' }, { timeout: -1 }))).toBeInstanceOf(RangeError);
      });

      it('rejects a pre-aborted request with KV_ABORTED without sending it', async () => {
        const err = await failure(a.request(b.address, { type: 'echo' }, { signal: AbortSignal.abort() }));
        expect(err.code).toBe('KV_ABORTED');
        expect(err.name).toBe('AbortError');
        expect(received).toHaveLength(0);
      });

      it('rejects with KV_ABORTED when aborted mid-flight, and leaves no listener on the signal', async () => {
        const ac = new AbortController();
        const p = failure(a.request(b.address, { type: 'hang' }, { signal: ac.signal, timeout: 10_000 }));
        await arrived(1, 'hang');
        ac.abort();
        const err = await p;
        expect(err.code).toBe('KV_ABORTED');
        expect(err.name).toBe('AbortError');
        expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      });

      it('shares one AbortSignal among 100 requests without MaxListenersExceededWarning or leftover listeners', async () => {
        const ac = new AbortController();
        const warnings = await listenerWarnings(async () => {
          const answered = await Promise.all(
            Array.from({ length: 100 }, (_, i) => a.request(b.address, { type: 'echo', payload: i }, { signal: ac.signal })),
          );
          expect(answered.map((r) => r.payload)).toEqual(Array.from({ length: 100 }, (_, i) => i));
          expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
          const inFlight = Array.from({ length: 100 }, () =>
            failure(a.request(b.address, { type: 'hang' }, { signal: ac.signal, timeout: 10_000 })),
          );
          await arrived(100, 'hang');
          ac.abort();
          for (const err of await Promise.all(inFlight)) expect(err.code).toBe('KV_ABORTED');
        });
        expect(warnings).toEqual([]);
        expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      });
    });

    describe('send (requests without a promise)', () => {
      /** What a receiver got for one tag: its calls in order. */
      type Outcome = { kind: 'answered'; answer: WireMessage } | { kind: 'failed'; error: Error };
      /**
       * Sends through `t.send` with a receiver that records every call; resolves
       * with the first outcome of `tag`, once one more turn showed no second call.
       */
      const sent = (t: Transport, to: string, message: WireMessage, options: RequestOptions | undefined, tag = 7): Promise<Outcome> =>
        new Promise<Outcome>((resolve, reject) => {
          const calls: Outcome[] = [];
          let tagSeen = tag;
          const settle = (outcome: Outcome, got: number): void => {
            calls.push(outcome);
            tagSeen = got;
            if (calls.length > 1) return;
            // Another call must not follow: check after the answer's turn and the next.
            setTimeout(() => {
              if (calls.length !== 1) reject(new Error(`the receiver was called ${calls.length} times for one request`));
              else if (tagSeen !== tag) reject(new Error(`the receiver got tag ${tagSeen}, sent with ${tag}`));
              else resolve(outcome);
            }, 20);
          };
          const receiver: AnswerReceiver = {
            answered: (got, answer) => settle({ kind: 'answered', answer }, got),
            failed: (got, error) => settle({ kind: 'failed', error }, got),
          };
          try {
            t.send!(to, message, options, receiver, tag);
          } catch (err) {
            reject(new Error(`send threw instead of calling the receiver: ${String(err)}`));
          }
        });
      const answerOf = (o: Outcome): WireMessage => {
        if (o.kind !== 'answered') throw new Error(`expected an answer, got ${o.error.name}: ${o.error.message}`);
        return o.answer;
      };
      const codeOf = (o: Outcome): string => {
        if (o.kind !== 'failed') throw new Error(`expected a failure, got the answer ${JSON.stringify(o.answer.type)}`);
        expect(o.error).toBeInstanceOf(KvError);
        return (o.error as KvError).code;
      };

      itIf(canSend)('answers through the receiver, with the request\'s tag', async () => {
        expect(answerOf(await sent(a, b.address, { type: 'echo', payload: { n: 1, list: [1, 2] } }, undefined, 3))).toEqual({
          type: 'echo',
          payload: { n: 1, list: [1, 2] },
        });
        expect(answerOf(await sent(b, a.address, { type: 'whoami' }, { timeout: 5000 }, 0))).toEqual({ type: 'you-are', from: b.address });
      });

      itIf(canSend)('serves 100 parallel requests through one receiver, each tag answered once with its own answer', async () => {
        const got = new Map<number, unknown[]>();
        await new Promise<void>((resolve, reject) => {
          const receiver: AnswerReceiver = {
            answered: (tag, answer) => {
              got.set(tag, [...(got.get(tag) ?? []), answer.payload]);
              if (got.size === 100) resolve();
            },
            failed: (tag, error) => reject(new Error(`request ${tag} failed: ${error.message}`)),
          };
          for (let i = 0; i < 100; i++) a.send!(b.address, { type: 'echo', payload: i * 10 }, undefined, receiver, i);
        });
        await new Promise((resolve) => setTimeout(resolve, 20));
        for (let i = 0; i < 100; i++) expect(got.get(i)).toEqual([i * 10]);
      });

      itIf(canSend)('reports handler errors, timeouts and bad options to the receiver (send never throws)', async () => {
        expect(codeOf(await sent(a, b.address, { type: 'fail', code: 'KV_OVERLOADED', text: 'busy' }, undefined))).toBe('KV_OVERLOADED');
        expect(codeOf(await sent(a, b.address, { type: 'crash' }, undefined))).toBe('KV_INTERNAL');
        expect(codeOf(await sent(a, b.address, { type: 'hang' }, { timeout: 50 }))).toBe('KV_TIMEOUT');
        expect(codeOf(await sent(a, b.address, { type: 'echo' }, { timeout: 0 }))).toBe('KV_TIMEOUT');
        const negative = await sent(a, b.address, { type: 'echo' }, { timeout: -1 });
        expect(negative.kind === 'failed' && negative.error).toBeInstanceOf(RangeError);
        const bad = await sent(a, b.address, { type: 'echo', payload: (() => 1) as unknown as WireMessage }, undefined);
        expect(codeOf(bad)).toBe('KV_INVALID_MESSAGE');
        // The transport still works afterwards.
        expect(answerOf(await sent(a, b.address, { type: 'echo', payload: 5 }, undefined))).toEqual({ type: 'echo', payload: 5 });
      });

      itIf(canSend)('reports aborts before and during the request, leaving no listener', async () => {
        const pre = await sent(a, b.address, { type: 'echo' }, { signal: AbortSignal.abort() });
        expect(codeOf(pre)).toBe('KV_ABORTED');
        expect(received).toHaveLength(0);
        const ac = new AbortController();
        const during = sent(a, b.address, { type: 'hang' }, { signal: ac.signal, timeout: 10_000 });
        await arrived(1, 'hang');
        ac.abort();
        const outcome = await during;
        expect(codeOf(outcome)).toBe('KV_ABORTED');
        expect(outcome.kind === 'failed' && outcome.error.name).toBe('AbortError');
        expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      });

      itIf(canSend)('reports an unreachable peer, a stop with the request in flight, and a stopped transport', async () => {
        const inFlight = sent(a, b.address, { type: 'hang' }, { timeout: 10_000 });
        await arrived(1, 'hang');
        const address = b.address;
        await b.stop();
        expect(['KV_CONNECTION_CLOSED', 'KV_UNREACHABLE']).toContain(codeOf(await inFlight));
        expect(codeOf(await sent(a, address, { type: 'echo' }, { timeout: 10_000 }))).toBe('KV_UNREACHABLE');
        const closing = sent(a, address, { type: 'echo' }, { timeout: 10_000 });
        await a.stop();
        expect(['KV_CONNECTION_CLOSED', 'KV_UNREACHABLE']).toContain(codeOf(await closing));
        expect(codeOf(await sent(a, address, { type: 'echo' }, undefined))).toBe('KV_NOT_STARTED');
      });
    });

    describe('peers and shutdown', () => {
      it('rejects quickly with KV_UNREACHABLE when the peer is stopped', async () => {
        const address = b.address;
        await b.stop();
        const started = Date.now();
        const err = await failure(a.request(address, { type: 'echo' }, { timeout: 10_000 }));
        expect(err.code).toBe('KV_UNREACHABLE');
        expect(Date.now() - started).toBeLessThan(2000);
      });

      itIf(canReopen)('reaches a peer restarted at the same address (needs the pair\'s reopen)', async () => {
        expect(await a.request(b.address, { type: 'whoami' })).toEqual({ type: 'you-are', from: a.address });
        const address = b.address;
        await b.stop();
        const b2 = pair.reopen!(b);
        extra.push(b2);
        await b2.start(handler);
        expect(b2.address).toBe(address);
        received.length = 0;
        expect(await a.request(address, { type: 'whoami' }, { timeout: 10_000 })).toEqual({ type: 'you-are', from: a.address });
        expect(received).toHaveLength(1);
        expect(await b2.request(a.address, { type: 'echo', payload: 'back' })).toEqual({ type: 'echo', payload: 'back' });
        expect((await failure(b.request(a.address, { type: 'echo' }))).code).toBe('KV_NOT_STARTED');
      });

      it('rejects its in-flight requests with KV_CONNECTION_CLOSED on stop, leaving no listener behind', async () => {
        const ac = new AbortController();
        const pending = Array.from({ length: 5 }, () =>
          failure(a.request(b.address, { type: 'hang' }, { timeout: 10_000, signal: ac.signal })),
        );
        await arrived(5, 'hang');
        await a.stop();
        for (const err of await Promise.all(pending)) expect(err.code).toBe('KV_CONNECTION_CLOSED');
        expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      });

      it('does not leave callers hanging when the peer stops mid-request', async () => {
        const started = Date.now();
        const p = failure(a.request(b.address, { type: 'hang' }, { timeout: 10_000 }));
        await arrived(1, 'hang');
        await b.stop();
        const err = await p;
        expect(['KV_CONNECTION_CLOSED', 'KV_UNREACHABLE']).toContain(err.code);
        expect(Date.now() - started).toBeLessThan(5000);
      });
    });
  });
}
