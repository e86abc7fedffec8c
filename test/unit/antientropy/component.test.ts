import { describe, expect, it, vi } from 'vitest';
import { AntiEntropy, type AntiEntropyConfig } from '../../../src/node/anti-entropy.js';
import { KvError } from '../../../src/errors/index.js';
import { noopLogger, type Metrics } from '../../../src/observability/index.js';
import { Ring } from '../../../src/ring/index.js';
import { resolveAntiEntropy } from '../../../src/store/options.js';
import { ManualClock } from '../../../src/testing/manual-clock.js';
import type { Transport } from '../../../src/transport/index.js';

/** A node alone on its ring: a round has no peer, so it only counts itself. */
function component(config: Partial<AntiEntropyConfig>, options: { random?: () => number; hints?: (signal: AbortSignal) => Promise<number> } = {}) {
  const clock = new ManualClock(1_000_000);
  let rounds = 0;
  const metrics: Metrics = {
    increment: (name) => {
      if (name === 'quorumkv_antientropy_rounds_total') rounds++;
    },
    gauge: () => {},
    observe: () => {},
  };
  const transport = { address: 'a', request: () => Promise.reject(new Error('no peers')) } as unknown as Transport;
  const ring = Ring.from([{ id: 'a' }]);
  const ae = new AntiEntropy({
    self: 'a',
    cluster: 'c',
    n: 3,
    transport,
    replica: {
      scan: async function* () {},
      read: async () => undefined,
      merge: async () => {},
      purgeTombstone: async () => false,
    },
    ring: () => ring,
    status: () => 'alive',
    clock,
    random: options.random ?? (() => 0.5),
    config: { ...resolveAntiEntropy({ interval: 1_000 }), ...config },
    maxRecordBytes: 1 << 20,
    logger: noopLogger,
    metrics,
    deliverHints: options.hints,
  });
  return { ae, clock, rounds: () => rounds };
}

async function rejection(p: Promise<unknown>): Promise<KvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvError);
  return err as KvError;
}

describe('AntiEntropy component', () => {
  it('runs background rounds on its clock, interval ± jitter apart, the next armed when one ends', async () => {
    const { ae, clock, rounds } = component({ interval: 1_000, jitter: 0.2 }, { random: () => 0 });
    ae.start();
    expect(clock.pending).toBe(1);
    clock.advance(799); // 1000 × (1 − 0.2)
    expect(rounds()).toBe(0);
    clock.advance(1);
    await vi.waitFor(() => expect(rounds()).toBe(1), { timeout: 2_000 });
    await vi.waitFor(() => expect(clock.pending).toBe(1), { timeout: 2_000 });
    clock.advance(800);
    await vi.waitFor(() => expect(rounds()).toBe(2), { timeout: 2_000 });
    await ae.stop();
    expect(clock.pending).toBe(0);
  });

  it('the jitter moves the wait up to interval × (1 + jitter)', async () => {
    const { ae, clock, rounds } = component({ interval: 1_000, jitter: 0.2 }, { random: () => 0.999999 });
    ae.start();
    clock.advance(1_199);
    expect(rounds()).toBe(0);
    clock.advance(1);
    await vi.waitFor(() => expect(rounds()).toBe(1), { timeout: 2_000 });
    await ae.stop();
  });

  it('interval false: no timer; repair() still runs', async () => {
    const { ae, clock, rounds } = component({ interval: false });
    ae.start();
    expect(clock.pending).toBe(0);
    const r = await ae.repair();
    expect(r).toEqual({
      rangesCompared: 0,
      keysExchanged: 0,
      bytesSent: 0,
      bytesReceived: 0,
      hintsDelivered: 0,
      peersSkipped: 0,
      tombstonesPurged: 0,
    });
    expect(rounds()).toBe(1);
    await ae.stop();
  });

  it('repair() delivers hints first and reports them; the hook gets the round signal', async () => {
    const order: string[] = [];
    let seen: AbortSignal | undefined;
    const { ae } = component(
      { interval: false },
      {
        hints: async (signal) => {
          seen = signal;
          order.push('hints');
          return 3;
        },
      },
    );
    ae.start();
    const r = await ae.repair();
    expect(r.hintsDelivered).toBe(3);
    expect(order).toEqual(['hints']);
    expect(seen).toBeInstanceOf(AbortSignal);
    await ae.stop();
  });

  it('stop() fails a running repair with KV_NOT_STARTED; repair() on a stopped component rejects; a fired signal rejects with KV_ABORTED', async () => {
    let release: (() => void) | undefined;
    const { ae, clock } = component(
      { interval: 1_000 },
      {
        hints: (signal) =>
          new Promise<number>((resolve, reject) => {
            release = () => resolve(0);
            signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          }),
      },
    );
    ae.start();
    const running = ae.repair();
    await vi.waitFor(() => expect(release).toBeDefined(), { timeout: 2_000 });
    const stopped = ae.stop();
    expect((await rejection(running)).code).toBe('KV_NOT_STARTED');
    await stopped;
    expect(clock.pending).toBe(0);
    expect((await rejection(ae.repair())).code).toBe('KV_NOT_STARTED');

    ae.start();
    const aborted = await rejection(ae.repair({ signal: AbortSignal.abort() }));
    expect(aborted.code).toBe('KV_ABORTED');
    expect(aborted.name).toBe('AbortError');
    await ae.stop();
  });

  it('timeout: a round past its deadline rejects with KV_TIMEOUT and clears its timer', async () => {
    const { ae, clock } = component(
      { interval: false },
      { hints: (signal) => new Promise<number>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })) },
    );
    ae.start();
    const p = ae.repair({ timeout: 50 });
    await vi.waitFor(() => expect(clock.pending).toBe(1), { timeout: 2_000 });
    clock.advance(50);
    expect((await rejection(p)).code).toBe('KV_TIMEOUT');
    expect(clock.pending).toBe(0);
    await ae.stop();
  });
});

describe('resolveAntiEntropy', () => {
  it('applies the defaults, and false turns off the background rounds only', () => {
    expect(resolveAntiEntropy(undefined)).toMatchObject({ interval: 600_000, jitter: 0.1, tombstoneGrace: 864_000_000, timeout: 10_000 });
    expect(resolveAntiEntropy(false)).toMatchObject({ interval: false, tombstoneGrace: 864_000_000 });
    expect(resolveAntiEntropy({ interval: false, tombstoneGrace: Infinity })).toMatchObject({ interval: false, tombstoneGrace: Infinity });
  });

  it('names the option, the range and the value on a mistake', () => {
    expect(() => resolveAntiEntropy({ interval: 10 })).toThrow('Expected `antiEntropy.interval` to be a finite number of milliseconds >= 1000, got 10');
    expect(() => resolveAntiEntropy({ jitter: 2 })).toThrow('Expected `antiEntropy.jitter` to be a number from 0 to 1, got 2');
    expect(() => resolveAntiEntropy({ tombstoneGrace: 0 })).toThrow(RangeError);
    expect(() => resolveAntiEntropy({ timeout: -1 })).toThrow(RangeError);
    expect(() => resolveAntiEntropy('daily')).toThrow(TypeError);
  });
});
