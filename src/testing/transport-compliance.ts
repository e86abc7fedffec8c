import { resolveTestApi, type ComplianceTestApi } from './test-api.js';
import { KvError, isErrorCode } from '../errors/index.js';
import type { RequestHandler, Transport, WireMessage } from '../transport/types.js';

/** What a transport compliance `setup` returns: two unstarted transports that can reach each other. */
export interface TransportComplianceSetup {
  a: Transport;
  b: Transport;
  /** Runs after both transports are stopped. */
  cleanup?: () => Promise<void>;
}

async function rejection(p: Promise<unknown>, expect: ComplianceTestApi['expect']): Promise<KvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the request to reject').toBeInstanceOf(KvError);
  return err as KvError;
}

/**
 * Registers the `Transport` compliance suite (with the test framework's `describe`/`it`: see {@link ComplianceTestApi}) for an
 * implementation. `setup` runs before each case and returns two transports,
 * not started, that can reach each other by `address` once started; the
 * suite starts them with its own handler and stops them after each case,
 * then calls `cleanup`.
 *
 * The suite's handler understands messages of type `echo`, `whoami`, `fail`
 * (throws a `KvError` with the given code), `crash` (throws a plain Error)
 * and `hang` (never answers until the case ends).
 *
 * @example
 * ```ts
 * import { transportCompliance } from 'quorumkv/testing';
 * transportCompliance('MyTransport', () => ({ a: new MyTransport(...), b: new MyTransport(...) }));
 * ```
 */
export function transportCompliance(
  name: string,
  setup: () => TransportComplianceSetup | Promise<TransportComplianceSetup>,
  api?: ComplianceTestApi,
): void {
  const { describe, it, beforeEach, afterEach, expect } = resolveTestApi(api, 'transportCompliance');
  const failure = (p: Promise<unknown>): Promise<KvError> => rejection(p, expect);
  describe(`Transport compliance: ${name}`, () => {
    let a: Transport;
    let b: Transport;
    let cleanup: (() => Promise<void>) | undefined;
    let hanging: (() => void)[] = [];
    const received: { message: WireMessage; from: string }[] = [];

    const handler: RequestHandler = (message, from) => {
      received.push({ message, from });
      switch (message.type) {
        case 'echo':
          return { type: 'echo', payload: message.payload };
        case 'whoami':
          return { type: 'you-are', from };
        case 'fail':
          throw new KvError(message.code as never, String(message.text));
        case 'crash':
          throw new Error('handler bug');
        case 'hang':
          return new Promise<WireMessage>((resolve) => hanging.push(() => resolve({ type: 'late' })));
        default:
          return { type: 'unknown' };
      }
    };

    beforeEach(async () => {
      received.length = 0;
      hanging = [];
      const s = await setup();
      a = s.a;
      b = s.b;
      cleanup = s.cleanup;
      await a.start(handler);
      await b.start(handler);
    });
    afterEach(async () => {
      await a.stop();
      await b.stop();
      for (const release of hanging) release();
      if (cleanup) await cleanup();
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

      it('declares its capabilities', () => {
        expect(typeof a.capabilities.encodes).toBe('boolean');
        expect(typeof a.capabilities.faultInjection).toBe('boolean');
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

      it('turns a non-KvError thrown by the handler into a coded KvError', async () => {
        const err = await failure(a.request(b.address, { type: 'crash' }));
        expect(isErrorCode(err.code)).toBe(true);
        expect(err.message).toContain('handler bug');
      });

      it('handles 100 parallel requests', async () => {
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
      });
    });

    describe('cancellation and failures', () => {
      it('rejects a pre-aborted request with KV_ABORTED without sending it', async () => {
        const err = await failure(a.request(b.address, { type: 'echo' }, { signal: AbortSignal.abort() }));
        expect(err.code).toBe('KV_ABORTED');
        expect(err.name).toBe('AbortError');
        expect(received).toHaveLength(0);
      });

      it('rejects with KV_ABORTED when aborted mid-flight', async () => {
        const ac = new AbortController();
        const p = a.request(b.address, { type: 'hang' }, { signal: ac.signal, timeout: 10_000 });
        setTimeout(() => ac.abort(), 20);
        const err = await failure(p);
        expect(err.code).toBe('KV_ABORTED');
        expect(err.name).toBe('AbortError');
      });

      it('rejects with KV_TIMEOUT when the handler never answers', async () => {
        const started = Date.now();
        const err = await failure(a.request(b.address, { type: 'hang' }, { timeout: 100 }));
        expect(err.code).toBe('KV_TIMEOUT');
        expect(Date.now() - started).toBeGreaterThanOrEqual(90);
      });

      it('rejects quickly with KV_UNREACHABLE when the peer is stopped', async () => {
        const address = b.address;
        await b.stop();
        const started = Date.now();
        const err = await failure(a.request(address, { type: 'echo' }, { timeout: 10_000 }));
        expect(err.code).toBe('KV_UNREACHABLE');
        expect(Date.now() - started).toBeLessThan(2000);
      });

      it('rejects its in-flight requests with KV_CONNECTION_CLOSED on stop', async () => {
        const pending = Array.from({ length: 5 }, () => failure(a.request(b.address, { type: 'hang' }, { timeout: 10_000 })));
        await new Promise((r) => setTimeout(r, 20));
        await a.stop();
        for (const err of await Promise.all(pending)) expect(err.code).toBe('KV_CONNECTION_CLOSED');
      });

      it('does not leave callers hanging when the peer stops mid-request', async () => {
        const started = Date.now();
        const p = failure(a.request(b.address, { type: 'hang' }, { timeout: 10_000 }));
        await new Promise((r) => setTimeout(r, 20));
        await b.stop();
        const err = await p;
        expect(['KV_CONNECTION_CLOSED', 'KV_UNREACHABLE']).toContain(err.code);
        expect(Date.now() - started).toBeLessThan(5000);
      });
    });
  });
}
