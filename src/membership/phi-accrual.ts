import { Defaults } from '../internal/defaults.js';
import type { FailureDetector } from './failure-detector.js';
import type { MemberStatus } from './types.js';

/**
 * Options of {@link PhiAccrualFailureDetector}; durations are clock
 * milliseconds. The defaults fit the default gossip interval (250 ms), where
 * news of a member reaches a node about every 300–400 ms (second-hand, with
 * a standard deviation of about 150 ms in a 5-node cluster). Phi then
 * reaches `suspectThreshold` after about `mean + 500 + 3.64 × 200` ≈ 1.6 s
 * of silence and `threshold` after about `mean + 500 + 5.22 × 200` ≈ 1.9 s.
 * Measured on a deterministic clock with 5 in-process nodes:
 *
 * | situation | outcome |
 * |---|---|
 * | crash → `down` at every peer | 1.9–2.0 s median, 1.6–2.7 s range (the next round notices) |
 * | crash → `suspect` | one gossip round before `down` |
 * | event-loop stalls of 300 ms every second | no suspicion (phi stays under 2) |
 * | one stall of up to 1.0 s | no suspicion |
 * | one stall of 1.1–1.4 s | some peers briefly `suspect` |
 * | one stall of 1.5 s / 2 s | some / most peers briefly `down`, `up` within a round |
 */
export interface PhiAccrualFailureDetectorOptions {
  /**
   * Phi at which a member is `down` (Cassandra's `phi_convict_threshold`,
   * Akka cluster's `threshold`): the odds that news is merely late are then
   * 1 in 10^threshold under the fitted distribution. Near 8, each +1 adds
   * about 0.3 standard deviations (at least `minStdDeviation`: 60 ms at the
   * default) to the detection time.
   * @default 8
   */
  readonly threshold?: number;
  /**
   * Phi at which a member is `suspect` (at most `threshold`). Half the
   * threshold puts suspicion `1.6 × minStdDeviation` (320 ms) before `down`,
   * more than a gossip round, so every node sees `suspect` before `down`.
   * @default threshold / 2
   */
  readonly suspectThreshold?: number;
  /** Inter-arrival times kept per member (a sliding window; at most 100000). @default 200 */
  readonly maxSampleSize?: number;
  /**
   * Floor of the standard deviation used for phi, ms. Without it regular
   * news (an idle in-process cluster) makes phi jump at the first late
   * round; at the default it is most of the margin between the usual gap
   * and `down` (`5.2 × 200` ms at phi 8), so the detection time hardly
   * depends on how regular gossip happens to be.
   * @default 200
   */
  readonly minStdDeviation?: number;
  /**
   * Silence beyond the usual accepted before suspicion rises, ms: added to
   * the mean inter-arrival time, as Akka's `acceptable-heartbeat-pause`.
   * It covers what delays news without anything having failed: an event
   * loop blocked by a burst of work (in-process nodes share one), a GC
   * pause, a lost gossip exchange.
   * @default 500
   */
  readonly acceptableHeartbeatPause?: number;
  /**
   * Expected inter-arrival time before any is measured, ms: a member's
   * window starts as two samples, this estimate ± a quarter of it, so a
   * member heard from once is still detected when it falls silent. Twice
   * the gossip interval, as Cassandra seeds its window: news right after a
   * join comes less regularly than later.
   * @default 500 (twice the default gossip interval; the Store uses twice its `gossip.interval`)
   */
  readonly firstHeartbeatEstimate?: number;
}

/** Per-member history: the last arrival and a ring buffer of inter-arrival times with running sums. */
interface History {
  last: number;
  readonly samples: Float64Array;
  /** Samples held (≤ capacity). */
  count: number;
  /** Slot the next sample goes to. */
  next: number;
  sum: number;
  sumOfSquares: number;
}

/** Largest `maxSampleSize`: 100 000 samples are 800 KB per member. */
const MAX_SAMPLE_SIZE = 100_000;

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function number(name: string, value: unknown, min: number, inclusive: boolean, unit: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (inclusive ? value < min : value <= min)) {
    throw new RangeError(`Expected \`${name}\` to be a finite ${unit} ${inclusive ? '>=' : '>'} ${min}, got ${describe(value)}`);
  }
  return value;
}

/**
 * Validates phi detector options and applies the defaults. Error messages
 * name each option with `prefix` (the Store passes `'gossip.phi.'`).
 * @throws TypeError when `options` is not an object; RangeError naming the first option out of range.
 */
export function resolvePhiOptions(options: PhiAccrualFailureDetectorOptions, prefix = ''): Required<PhiAccrualFailureDetectorOptions> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected \`${prefix === '' ? 'options' : prefix.slice(0, -1)}\` to be an object, got ${describe(options)}`);
  }
  const threshold = number(`${prefix}threshold`, options.threshold ?? Defaults.phiThreshold, 0, false, 'number');
  const suspectThreshold = number(
    `${prefix}suspectThreshold`,
    options.suspectThreshold ?? threshold * Defaults.phiSuspectShare,
    0,
    false,
    'number',
  );
  if (suspectThreshold > threshold) {
    throw new RangeError(
      `Expected \`${prefix}suspectThreshold\` (${suspectThreshold}) to be at most \`${prefix}threshold\` (${threshold})`,
    );
  }
  const maxSampleSize: unknown = options.maxSampleSize ?? Defaults.phiMaxSampleSize;
  if (typeof maxSampleSize !== 'number' || !Number.isSafeInteger(maxSampleSize) || maxSampleSize < 2 || maxSampleSize > MAX_SAMPLE_SIZE) {
    throw new RangeError(`Expected \`${prefix}maxSampleSize\` to be an integer from 2 to ${MAX_SAMPLE_SIZE}, got ${describe(maxSampleSize)}`);
  }
  const ms = 'number of milliseconds';
  return {
    threshold,
    suspectThreshold,
    maxSampleSize,
    minStdDeviation: number(`${prefix}minStdDeviation`, options.minStdDeviation ?? Defaults.phiMinStdDeviation, 0, false, ms),
    acceptableHeartbeatPause: number(
      `${prefix}acceptableHeartbeatPause`,
      options.acceptableHeartbeatPause ?? Defaults.phiAcceptableHeartbeatPause,
      0,
      true,
      ms,
    ),
    firstHeartbeatEstimate: number(
      `${prefix}firstHeartbeatEstimate`,
      options.firstHeartbeatEstimate ?? 2 * Defaults.gossipInterval,
      0,
      false,
      ms,
    ),
  };
}

/**
 * Phi for a silence of `elapsed` ms given the mean and standard deviation of
 * the inter-arrival times: `-log10(P(next arrival later than elapsed))`
 * under a normal distribution, with the logistic approximation of its CDF
 * (`1 / (1 + e^-z)`, `z = y(1.5976 + 0.070566 y²)`, `y = (elapsed - mean) / sd`;
 * error below 1.4e-4 of probability). Computed as `log10(1 + e^z)` in a form
 * that neither overflows nor rounds to Infinity: finite for any finite input.
 */
export function phiOf(elapsed: number, mean: number, stdDeviation: number): number {
  const y = (elapsed - mean) / stdDeviation;
  const z = y * (1.5976 + 0.070566 * y * y);
  const softplus = z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
  return softplus / Math.LN10;
}

/**
 * The phi accrual failure detector (Hayashibara et al., 2004) as Akka
 * implements it: for each member, the inter-arrival times of its news form a
 * bounded sliding window; phi, the suspicion level after `t` ms of silence,
 * is `-log10` of the probability that news would still come later than `t`
 * under a normal distribution with the window's mean plus
 * `acceptableHeartbeatPause` and the window's standard deviation (at least
 * `minStdDeviation`). Phi is 0 right after news and grows with the silence;
 * a member is `suspect` from `suspectThreshold` and `down` from `threshold`.
 *
 * With gossip, news of a member reaches a node second-hand, so its
 * inter-arrival times are those of the news (about one gossip interval with
 * jitter), not of direct pings; the detector adapts to whatever they are.
 * A silence long enough to be `down` is not added to the window (as Akka),
 * so a restart or a healed partition does not teach it to wait longer.
 * Unlike Cassandra's exponential model, the normal model with a floor on the
 * deviation keeps a regular stream of news from producing suspicions at the
 * first late round.
 *
 * Pure bookkeeping: no timers, O(1) per heartbeat (running sums over a ring
 * buffer, recomputed each time the buffer wraps so rounding cannot drift)
 * and per query.
 *
 * @example
 * ```ts
 * const fd = new PhiAccrualFailureDetector();      // threshold 8
 * fd.heartbeat('n2', 0);
 * fd.heartbeat('n2', 250);
 * fd.phi('n2', 250);     // 0
 * fd.status('n2', 1000); // 'alive'
 * fd.status('n2', 3000); // 'down'
 * ```
 */
export class PhiAccrualFailureDetector implements FailureDetector {
  /** Phi at which a member is `down`. */
  readonly threshold: number;
  /** Phi at which a member is `suspect`. */
  readonly suspectThreshold: number;
  /** Most inter-arrival times kept per member. */
  readonly maxSampleSize: number;
  /** Floor of the standard deviation, ms. */
  readonly minStdDeviation: number;
  /** Silence beyond the mean accepted without suspicion, ms. */
  readonly acceptableHeartbeatPause: number;
  /** Inter-arrival time assumed before any is measured, ms. */
  readonly firstHeartbeatEstimate: number;
  readonly #histories = new Map<string, History>();

  /** @throws RangeError naming the option when one is out of range; TypeError when `options` is not an object. */
  constructor(options: PhiAccrualFailureDetectorOptions = {}) {
    const o = resolvePhiOptions(options);
    this.threshold = o.threshold;
    this.suspectThreshold = o.suspectThreshold;
    this.maxSampleSize = o.maxSampleSize;
    this.minStdDeviation = o.minStdDeviation;
    this.acceptableHeartbeatPause = o.acceptableHeartbeatPause;
    this.firstHeartbeatEstimate = o.firstHeartbeatEstimate;
  }

  /**
   * News of `id` arrived at `now`. The time since the previous news joins
   * the window unless the member was already `down` by then (a restart, a
   * healed partition: such a gap says nothing about the usual rhythm).
   * The first news of a member seeds its window with `firstHeartbeatEstimate`.
   * @throws RangeError when `now` is not a finite number.
   */
  heartbeat(id: string, now: number): void {
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new RangeError(`Expected \`now\` to be a finite number of milliseconds, got ${String(now)}`);
    }
    const h = this.#histories.get(id);
    if (h === undefined) {
      this.#histories.set(id, this.#seed(now));
      return;
    }
    if (now <= h.last) return; // same instant (or a clock step back): nothing to learn
    if (this.#phi(h, now) < this.threshold) this.#add(h, now - h.last);
    h.last = now;
  }

  /**
   * The suspicion level of `id` at `now`: 0 right after news, non-decreasing
   * while silent, `Infinity` for a member never heard from (or removed).
   */
  phi(id: string, now: number): number {
    const h = this.#histories.get(id);
    return h === undefined ? Number.POSITIVE_INFINITY : this.#phi(h, now);
  }

  /** `down` from `threshold` (and for a member never heard from), `suspect` from `suspectThreshold`, else `alive`. */
  status(id: string, now: number): MemberStatus {
    const phi = this.phi(id, now);
    if (phi >= this.threshold) return 'down';
    if (phi >= this.suspectThreshold) return 'suspect';
    return 'alive';
  }

  /** Forgets `id` and its history. */
  remove(id: string): void {
    this.#histories.delete(id);
  }

  #seed(now: number): History {
    const h: History = {
      last: now,
      samples: new Float64Array(this.maxSampleSize),
      count: 0,
      next: 0,
      sum: 0,
      sumOfSquares: 0,
    };
    const estimate = this.firstHeartbeatEstimate;
    this.#add(h, estimate - estimate / 4);
    this.#add(h, estimate + estimate / 4);
    return h;
  }

  #add(h: History, interval: number): void {
    const slot = h.next;
    if (h.count === this.maxSampleSize) {
      const old = h.samples[slot]!;
      h.sum -= old;
      h.sumOfSquares -= old * old;
    } else {
      h.count++;
    }
    h.samples[slot] = interval;
    h.sum += interval;
    h.sumOfSquares += interval * interval;
    h.next = slot + 1 === this.maxSampleSize ? 0 : slot + 1;
    // Once per lap of the buffer (amortised O(1)), sum afresh so that
    // subtracting old samples cannot accumulate rounding error.
    if (h.next === 0) {
      let sum = 0;
      let squares = 0;
      for (let i = 0; i < h.count; i++) {
        const s = h.samples[i]!;
        sum += s;
        squares += s * s;
      }
      h.sum = sum;
      h.sumOfSquares = squares;
    }
  }

  #phi(h: History, now: number): number {
    const elapsed = now - h.last;
    if (elapsed <= 0) return 0;
    const mean = h.sum / h.count;
    const variance = Math.max(0, h.sumOfSquares / h.count - mean * mean);
    const sd = Math.max(Math.sqrt(variance), this.minStdDeviation);
    return phiOf(elapsed, mean + this.acceptableHeartbeatPause, sd);
  }
}
