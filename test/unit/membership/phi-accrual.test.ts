import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Defaults, MemoryNetwork, type StoreOptions } from 'quorumkv';
import {
  PhiAccrualFailureDetector,
  phiOf,
  resolvePhiOptions,
  resolveStoreOptions,
  type PhiAccrualFailureDetectorOptions,
} from 'quorumkv/internals';

type Status = 'alive' | 'suspect' | 'down';

/** Feeds `gaps` (ms between consecutive news) after a first heartbeat at `start`; returns the last arrival. */
function feed(fd: PhiAccrualFailureDetector, gaps: readonly number[], start = 0, id = 'n2'): number {
  let t = start;
  fd.heartbeat(id, t);
  for (const g of gaps) {
    t += g;
    fd.heartbeat(id, t);
  }
  return t;
}

/** The first whole millisecond of silence after `last` at which `id` has `status` (scanning up to `limit`). */
function silenceUntil(fd: PhiAccrualFailureDetector, last: number, status: Status, limit = 100_000, id = 'n2'): number {
  for (let t = 1; t <= limit; t++) if (fd.status(id, last + t) === status) return t;
  throw new Error(`not ${status} within ${limit} ms`);
}

/** Reference phi: mean and population deviation computed afresh over the window. */
function referencePhi(window: readonly number[], elapsed: number, o: Required<PhiAccrualFailureDetectorOptions>): number {
  const mean = window.reduce((a, b) => a + b, 0) / window.length;
  const variance = window.reduce((a, b) => a + (b - mean) ** 2, 0) / window.length;
  return phiOf(elapsed, mean + o.acceptableHeartbeatPause, Math.max(Math.sqrt(variance), o.minStdDeviation));
}

describe('phiOf', () => {
  it('is -log10 of the logistic tail: log10(2) at the mean, about 8 at 5.22 deviations, about 4 at 3.64', () => {
    expect(phiOf(1_000, 1_000, 200)).toBeCloseTo(Math.log10(2), 12);
    expect(phiOf(1_000 + 5.22 * 200, 1_000, 200)).toBeCloseTo(8, 1);
    expect(phiOf(1_000 + 3.64 * 200, 1_000, 200)).toBeCloseTo(4, 1);
    // Against the textbook form where it does not under/overflow.
    for (const y of [-3, -1, 0.5, 2, 4]) {
      const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
      const textbook = y > 0 ? -Math.log10(e / (1 + e)) : -Math.log10(1 - 1 / (1 + e));
      expect(phiOf(100 + y * 10, 100, 10)).toBeCloseTo(textbook, 9);
    }
  });

  it('stays finite and positive far in the tails (no Infinity, no 0 from rounding)', () => {
    expect(phiOf(1e12, 500, 100)).toBeGreaterThan(1e20);
    expect(Number.isFinite(phiOf(1e12, 500, 100))).toBe(true);
    expect(phiOf(0, 1e6, 1)).toBeGreaterThanOrEqual(0);
  });
});

describe('PhiAccrualFailureDetector', () => {
  it('has the documented defaults, from Defaults', () => {
    const fd = new PhiAccrualFailureDetector();
    expect({
      threshold: fd.threshold,
      suspectThreshold: fd.suspectThreshold,
      maxSampleSize: fd.maxSampleSize,
      minStdDeviation: fd.minStdDeviation,
      acceptableHeartbeatPause: fd.acceptableHeartbeatPause,
      firstHeartbeatEstimate: fd.firstHeartbeatEstimate,
    }).toEqual({
      threshold: 8,
      suspectThreshold: 4,
      maxSampleSize: 200,
      minStdDeviation: 200,
      acceptableHeartbeatPause: 500,
      firstHeartbeatEstimate: 500,
    });
    expect(Defaults.gossipInterval).toBe(250);
    expect(new PhiAccrualFailureDetector({ threshold: 12 }).suspectThreshold).toBe(6);
  });

  it('calls a member never heard from (or removed) down, with phi Infinity', () => {
    const fd = new PhiAccrualFailureDetector();
    expect(fd.phi('n2', 0)).toBe(Number.POSITIVE_INFINITY);
    expect(fd.status('n2', 0)).toBe('down');
    fd.heartbeat('n2', 10);
    expect(fd.status('n2', 10)).toBe('alive');
    fd.remove('n2');
    expect(fd.status('n2', 10)).toBe('down');
    fd.remove('never-known'); // no-op
  });

  it('keeps a separate history per member', () => {
    const fd = new PhiAccrualFailureDetector();
    feed(fd, Array(50).fill(250), 0, 'a');
    feed(fd, Array(50).fill(250), 0, 'b');
    fd.heartbeat('a', 20_000);
    expect(fd.status('a', 20_000)).toBe('alive');
    expect(fd.status('b', 20_000)).toBe('down');
  });

  it('is 0 right after news and alive; suspect and down after the silences the defaults promise', () => {
    // Steady regular news every 250 ms (an idle in-process cluster at the default interval):
    // suspect after 250 + 500 + 3.64 × 200 ms, down after 250 + 500 + 5.22 × 200 ms.
    const fd = new PhiAccrualFailureDetector();
    const last = feed(fd, Array(300).fill(250));
    expect(fd.phi('n2', last)).toBe(0);
    expect(fd.status('n2', last)).toBe('alive');
    expect(silenceUntil(fd, last, 'suspect')).toBe(1_478);
    expect(silenceUntil(fd, last, 'down')).toBe(1_796);
    // Suspicion comes more than one default gossip round before down.
    expect(1_796 - 1_478).toBeGreaterThan(Defaults.gossipInterval);
  });

  it('a member heard from once is judged on firstHeartbeatEstimate (375 and 625 ms samples)', () => {
    const fd = new PhiAccrualFailureDetector();
    fd.heartbeat('n2', 1_000);
    // mean 500 + pause 500, deviation 125 floored to 200.
    expect(fd.phi('n2', 2_000)).toBeCloseTo(Math.log10(2), 12);
    expect(silenceUntil(fd, 1_000, 'down')).toBe(2_046);
    // Samples 1500 and 2500: mean 2000 + pause 500, deviation 500 (above the floor): 2500 + 5.22 × 500.
    const later = new PhiAccrualFailureDetector({ firstHeartbeatEstimate: 2_000 });
    later.heartbeat('n2', 1_000);
    expect(silenceUntil(later, 1_000, 'down')).toBe(5_113);
  });

  it('adapts: irregular news widens the window, so the same silence raises less suspicion', () => {
    const regular = new PhiAccrualFailureDetector();
    const a = feed(regular, Array(200).fill(300));
    const irregular = new PhiAccrualFailureDetector();
    const b = feed(irregular, Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? 100 : 500))); // mean 300, sd 200
    const wild = new PhiAccrualFailureDetector();
    const c = feed(wild, Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? 50 : 550))); // mean 300, sd 250
    expect(irregular.phi('n2', b + 1_500)).toBeCloseTo(regular.phi('n2', a + 1_500), 9); // at the 200 ms floor alike
    expect(wild.phi('n2', c + 1_500)).toBeLessThan(regular.phi('n2', a + 1_500));
    expect(silenceUntil(wild, c, 'down')).toBe(silenceUntil(regular, a, 'down') + Math.round(5.2 * 50 + 1)); // ≈ 0.3 × sd per phi
  });

  it('keeps only the last maxSampleSize intervals', () => {
    const o = { maxSampleSize: 50 };
    const old = new PhiAccrualFailureDetector(o);
    const a = feed(old, [...Array(120).fill(100), ...Array(50).fill(900)]);
    const fresh = new PhiAccrualFailureDetector(o);
    const b = feed(fresh, Array(50).fill(900));
    for (const silence of [500, 1_500, 2_500, 3_000]) {
      expect(old.phi('n2', a + silence)).toBeCloseTo(fresh.phi('n2', b + silence), 9);
    }
  });

  it('does not learn from a silence that reached down (a restart or a healed partition)', () => {
    const fd = new PhiAccrualFailureDetector();
    let last = feed(fd, Array(300).fill(250));
    const before = silenceUntil(fd, last, 'down');
    last += 60_000; // crashed and restarted, or partitioned away for a minute
    fd.heartbeat('n2', last);
    expect(fd.status('n2', last)).toBe('alive');
    expect(silenceUntil(fd, last, 'down')).toBe(before);
  });

  it('does learn from a long gap that stayed below the threshold', () => {
    const fd = new PhiAccrualFailureDetector();
    let last = feed(fd, Array(300).fill(250));
    const before = silenceUntil(fd, last, 'down');
    last += 1_600; // suspect, not down
    expect(fd.status('n2', last)).toBe('suspect');
    fd.heartbeat('n2', last);
    expect(silenceUntil(fd, last, 'down')).toBeGreaterThan(before);
  });

  it('ignores news at or before the last arrival (same instant, clock stepped back)', () => {
    const fd = new PhiAccrualFailureDetector();
    const last = feed(fd, Array(300).fill(250), 10_000);
    const until = silenceUntil(fd, last, 'down');
    fd.heartbeat('n2', last);
    fd.heartbeat('n2', last - 5_000);
    expect(fd.phi('n2', last - 5_000)).toBe(0);
    expect(silenceUntil(fd, last, 'down')).toBe(until);
  });

  it('suspicion at suspectThreshold, down at threshold, whatever the history', () => {
    const fd = new PhiAccrualFailureDetector({ threshold: 10, suspectThreshold: 1 });
    const last = feed(fd, Array(300).fill(250));
    for (let t = last; t < last + 4_000; t += 7) {
      const phi = fd.phi('n2', t);
      const expected: Status = phi >= 10 ? 'down' : phi >= 1 ? 'suspect' : 'alive';
      expect(fd.status('n2', t)).toBe(expected);
    }
    // suspectThreshold equal to threshold: never suspect, straight to down.
    const direct = new PhiAccrualFailureDetector({ threshold: 8, suspectThreshold: 8 });
    const l2 = feed(direct, Array(300).fill(250));
    expect(silenceUntil(direct, l2, 'down')).toBe(1_796);
    for (let t = l2; t < l2 + 3_000; t++) expect(direct.status('n2', t)).not.toBe('suspect');
  });

  it('validates options with precise errors', () => {
    const cases: [PhiAccrualFailureDetectorOptions | null, ErrorConstructor, RegExp][] = [
      [null, TypeError, /Expected `options` to be an object, got null/],
      [{ threshold: 0 }, RangeError, /`threshold` to be a finite number > 0, got 0/],
      [{ threshold: Number.NaN }, RangeError, /`threshold`.*got NaN/],
      [{ threshold: Infinity }, RangeError, /`threshold`.*got Infinity/],
      [{ suspectThreshold: -1 }, RangeError, /`suspectThreshold` to be a finite number > 0, got -1/],
      [{ threshold: 5, suspectThreshold: 6 }, RangeError, /`suspectThreshold` \(6\) to be at most `threshold` \(5\)/],
      [{ maxSampleSize: 1 }, RangeError, /`maxSampleSize` to be an integer from 2 to 100000, got 1/],
      [{ maxSampleSize: 2.5 }, RangeError, /`maxSampleSize`.*got 2.5/],
      [{ maxSampleSize: 100_001 }, RangeError, /`maxSampleSize`/],
      [{ minStdDeviation: 0 }, RangeError, /`minStdDeviation` to be a finite number of milliseconds > 0, got 0/],
      [{ acceptableHeartbeatPause: -1 }, RangeError, /`acceptableHeartbeatPause` to be a finite number of milliseconds >= 0, got -1/],
      [{ firstHeartbeatEstimate: 0 }, RangeError, /`firstHeartbeatEstimate` to be a finite number of milliseconds > 0, got 0/],
      [{ threshold: '8' as unknown as number }, RangeError, /`threshold`.*got "8"/],
    ];
    for (const [options, type, message] of cases) {
      expect(() => new PhiAccrualFailureDetector(options as PhiAccrualFailureDetectorOptions), JSON.stringify(options)).toThrow(type);
      expect(() => new PhiAccrualFailureDetector(options as PhiAccrualFailureDetectorOptions)).toThrow(message);
    }
    expect(() => resolvePhiOptions({ threshold: -2 }, 'gossip.phi.')).toThrow(/`gossip\.phi\.threshold`/);
    expect(() => resolvePhiOptions('x' as unknown as PhiAccrualFailureDetectorOptions, 'gossip.phi.')).toThrow(
      /Expected `gossip\.phi` to be an object, got "x"/,
    );
    expect(new PhiAccrualFailureDetector({ acceptableHeartbeatPause: 0 }).acceptableHeartbeatPause).toBe(0);
    const fd = new PhiAccrualFailureDetector();
    expect(() => fd.heartbeat('n2', Number.NaN)).toThrow(/Expected `now` to be a finite number of milliseconds, got NaN/);
  });
});

describe('PhiAccrualFailureDetector properties', () => {
  const gaps = (min: number, max: number, minLength = 1, maxLength = 400) =>
    fc.array(fc.integer({ min, max }), { minLength, maxLength });

  it('phi is 0 right after news and never decreases while silent', () => {
    fc.assert(
      fc.property(gaps(0, 5_000), fc.array(fc.integer({ min: 0, max: 20_000 }), { maxLength: 30 }), (history, probes) => {
        const fd = new PhiAccrualFailureDetector();
        const last = feed(fd, history);
        expect(fd.phi('n2', last)).toBe(0);
        let previous = 0;
        for (const t of [...probes].sort((a, b) => a - b)) {
          const phi = fd.phi('n2', last + t);
          expect(phi).toBeGreaterThanOrEqual(previous);
          expect(Number.isFinite(phi)).toBe(true);
          previous = phi;
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a higher threshold never declares down earlier', () => {
    fc.assert(
      fc.property(
        gaps(10, 2_000, 1, 100),
        fc.double({ min: 0.5, max: 16, noNaN: true }),
        fc.double({ min: 0.5, max: 16, noNaN: true }),
        (history, x, y) => {
          const [low, high] = x <= y ? [x, y] : [y, x];
          const a = new PhiAccrualFailureDetector({ threshold: low, suspectThreshold: low });
          const b = new PhiAccrualFailureDetector({ threshold: high, suspectThreshold: high });
          const last = feed(a, history);
          feed(b, history);
          expect(silenceUntil(b, last, 'down', 200_000)).toBeGreaterThanOrEqual(silenceUntil(a, last, 'down', 200_000));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('running sums over the ring buffer equal mean and deviation computed afresh (no drift)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 64 }),
        // Gaps between news of a member: 1 ms to a minute.
        fc.array(fc.double({ min: 1, max: 60_000, noNaN: true }), { minLength: 1, maxLength: 600 }),
        fc.integer({ min: 1, max: 10_000 }),
        (maxSampleSize, history, silence) => {
          // No pause and a tiny floor: phi follows the window's own statistics closely. A threshold
          // out of reach, so that every interval joins the window (none counts as a silence that was down).
          // A 10 ms floor (production uses 200) keeps phi's sensitivity to the last bits of the
          // variance within what doubles hold: with a 1 µs floor and gaps from 1 µs to 1e6 ms, running
          // sums and a fresh two-pass computation differed in the 5th digit after a huge gap left the
          // window — rounding in the sum of squares, not drift.
          const o = resolvePhiOptions({ maxSampleSize, minStdDeviation: 10, acceptableHeartbeatPause: 0, threshold: 1e300 });
          const fd = new PhiAccrualFailureDetector(o);
          const last = feed(fd, history);
          const seeds = [o.firstHeartbeatEstimate * 0.75, o.firstHeartbeatEstimate * 1.25];
          const window = [...seeds, ...history].slice(-maxSampleSize);
          const expected = referencePhi(window, silence, o);
          // Drift would grow with the number of heartbeats past the window; rounding stays near 1e-9.
          expect(Math.abs(fd.phi('n2', last + silence) - expected)).toBeLessThanOrEqual(1e-6 * Math.max(1, expected));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('regular news with jitter (and stalls up to 700 ms) at the default interval never raises suspicion', () => {
    // 250 ms rounds, each arrival up to ±150 ms off, one in ten delayed by a stall of up to 700 ms more.
    const arrival = fc.tuple(fc.integer({ min: -150, max: 150 }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 700 }));
    fc.assert(
      fc.property(fc.array(arrival, { minLength: 1, maxLength: 400 }), (arrivals) => {
        const fd = new PhiAccrualFailureDetector();
        let t = 0;
        fd.heartbeat('n2', t);
        for (const [jitter, dice, stall] of arrivals) {
          const next = t + 250 + jitter + (dice === 0 ? stall : 0);
          // The worst moment is just before the news arrives.
          expect(fd.status('n2', next - 1)).toBe('alive');
          fd.heartbeat('n2', next);
          t = next;
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a member that stops is down within 1.95 s of its last news, never before 1.6 s (news every 100–400 ms)', () => {
    // Gaps in [100, 400]: mean at most 400, deviation at most 150 (under the 200 ms floor), so
    // down comes at mean + 500 + 5.22 × 200 ms: between 1644 and 1944 ms.
    fc.assert(
      fc.property(gaps(100, 400, 200, 400), (history) => {
        const fd = new PhiAccrualFailureDetector();
        const last = feed(fd, history);
        const down = silenceUntil(fd, last, 'down', 3_000);
        expect(down).toBeGreaterThanOrEqual(1_600);
        expect(down).toBeLessThanOrEqual(1_950);
        expect(silenceUntil(fd, last, 'suspect')).toBeLessThanOrEqual(down - 300);
      }),
      { numRuns: 200 },
    );
  });
});

describe('Store gossip.detector and gossip.phi', () => {
  const net = new MemoryNetwork();
  const resolve = (gossip: unknown) =>
    resolveStoreOptions({ id: 'a', transport: net.transport('a'), gossip } as StoreOptions).gossip;

  it('defaults to the phi detector with its defaults, estimating the first gap at twice the interval', () => {
    expect(resolve(undefined)).toMatchObject({
      interval: 250,
      detector: 'phi',
      phi: {
        threshold: 8,
        suspectThreshold: 4,
        maxSampleSize: 200,
        minStdDeviation: 200,
        acceptableHeartbeatPause: 500,
        firstHeartbeatEstimate: 500,
      },
    });
    expect(resolve({ interval: 50 }).phi.firstHeartbeatEstimate).toBe(100);
    expect(resolve({ interval: 50, phi: { firstHeartbeatEstimate: 30, threshold: 10 } }).phi).toMatchObject({
      firstHeartbeatEstimate: 30,
      threshold: 10,
      suspectThreshold: 5,
    });
    expect(resolve({ phi: {} }).detector).toBe('phi');
  });

  it('round counts alone select the timeout detector (configurations from before keep their timing)', () => {
    expect(resolve({ suspectAfterRounds: 3, downAfterRounds: 6 })).toMatchObject({ detector: 'timeout', suspectAfterRounds: 3, downAfterRounds: 6 });
    expect(resolve({ downAfterRounds: 20 }).detector).toBe('timeout');
    expect(resolve({ detector: 'timeout' })).toMatchObject({ detector: 'timeout', suspectAfterRounds: 5, downAfterRounds: 10 });
  });

  it.each([
    [{ detector: 'gossip' }, TypeError, /Expected `gossip\.detector` to be 'phi' or 'timeout', got "gossip"/],
    [{ detector: 'phi', suspectAfterRounds: 3 }, TypeError, /`gossip\.suspectAfterRounds` and `gossip\.downAfterRounds` configure the timeout detector/],
    [{ phi: { threshold: 9 }, downAfterRounds: 30 }, TypeError, /`gossip\.phi` configures the phi detector/],
    [{ detector: 'timeout', phi: {} }, TypeError, /`gossip\.phi` configures the phi detector/],
    [{ phi: 'fast' }, TypeError, /Expected `gossip\.phi` to be an object, got "fast"/],
    [{ phi: { threshold: 0 } }, RangeError, /Expected `gossip\.phi\.threshold` to be a finite number > 0, got 0/],
    [{ phi: { threshold: 4, suspectThreshold: 5 } }, RangeError, /`gossip\.phi\.suspectThreshold` \(5\) to be at most `gossip\.phi\.threshold` \(4\)/],
    [{ phi: { minStdDeviation: -1 } }, RangeError, /`gossip\.phi\.minStdDeviation` to be a finite number of milliseconds > 0, got -1/],
    [{ phi: { acceptableHeartbeatPause: Number.NaN } }, RangeError, /`gossip\.phi\.acceptableHeartbeatPause`.*got NaN/],
    [{ phi: { firstHeartbeatEstimate: 0 } }, RangeError, /`gossip\.phi\.firstHeartbeatEstimate`/],
    [{ phi: { maxSampleSize: 1 } }, RangeError, /`gossip\.phi\.maxSampleSize` to be an integer from 2 to 100000, got 1/],
  ])('gossip %j is refused', (gossip, type, message) => {
    expect(() => resolve(gossip)).toThrow(type);
    expect(() => resolve(gossip)).toThrow(message);
  });
});
