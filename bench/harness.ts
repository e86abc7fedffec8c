/**
 * Tiny benchmark harness: every figure is reported next to a baseline measured
 * in the same run, as a ratio.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';

/** One line of the results table. */
export interface Row {
  /** Suite name, e.g. `ring`. */
  suite: string;
  /** What is measured. */
  metric: string;
  /** Our figure, formatted. */
  value: string;
  /** The baseline figure (measured in the same run, or an ideal), formatted. */
  baseline: string;
  /** value / baseline, formatted (e.g. `12.3x`). */
  ratio: string;
  /** The goal, and whether it is met. */
  goal?: string;
}

/** Options of {@link measure}. */
export interface MeasureOptions {
  /**
   * Minimum duration of one timed run, in ms.
   * @default 300
   */
  minMs?: number;
  /**
   * Timed runs; the median is reported.
   * @default 3
   */
  repeats?: number;
}

/** Keeps results alive so the JIT cannot drop the measured work. */
export let sink: unknown;

function runLoop(fn: (i: number) => unknown, iterations: number): number {
  let last: unknown;
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) last = fn(i);
  const elapsed = performance.now() - t0;
  sink = last;
  return elapsed;
}

/**
 * Operations per second of `fn` (one call = one operation; `i` is the iteration
 * index, handy to cycle through pre-generated inputs). Warms up, calibrates an
 * iteration count that takes at least `minMs`, then takes the median of `repeats` runs.
 */
export function measure(name: string, fn: (i: number) => unknown, options: MeasureOptions = {}): number {
  const minMs = options.minMs ?? 300;
  const repeats = options.repeats ?? 3;
  // Warm-up and calibration: double until one run lasts >= minMs.
  let iterations = 1_000;
  let elapsed = runLoop(fn, iterations);
  while (elapsed < minMs) {
    iterations = elapsed <= 0 ? iterations * 10 : Math.max(iterations * 2, Math.ceil((iterations * minMs * 1.1) / elapsed));
    elapsed = runLoop(fn, iterations);
  }
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) rates.push((iterations / runLoop(fn, iterations)) * 1000);
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)]!;
  if (process.env.BENCH_VERBOSE) console.error(`  ${name}: ${fmtOps(median)} (runs: ${rates.map(fmtOps).join(', ')})`);
  return median;
}

/** `1234567` -> `1.23M ops/s`. */
export function fmtOps(opsPerSec: number): string {
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)}M ops/s`;
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(1)}k ops/s`;
  return `${opsPerSec.toFixed(0)} ops/s`;
}

/** `0.0612` -> `6.12%`. */
export function fmtPct(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** The middle value of `xs` (the mean of the two middle ones for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `a / b` as `12.3x` (or `n/a` when b is 0). */
export function fmtRatio(a: number, b: number): string {
  return b === 0 ? 'n/a' : `${(a / b).toFixed(2)}x`;
}

/** Prints rows as an aligned text table. */
export function printTable(rows: readonly Row[]): void {
  const headers = ['suite', 'metric', 'value', 'baseline', 'ratio', 'goal'] as const;
  const cells = rows.map((r) => [r.suite, r.metric, r.value, r.baseline, r.ratio, r.goal ?? '']);
  const widths = headers.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c]!.length)));
  const line = (values: readonly string[]): string => values.map((v, c) => v.padEnd(widths[c]!)).join(' | ').trimEnd();
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of cells) console.log(line(row));
}

/**
 * What one minor page fault costs on this machine: µs per first touch of a
 * fresh 4 KiB page (64 MiB touched once, best of three), divided by the
 * faults the touches really took (64 MiB is above glibc's largest mmap
 * threshold, so the buffer is a fresh mapping, but the count is read rather
 * than assumed). Cheap on bare metal; several µs in some VMs, where a store
 * that keeps its data pays it for every page its data grows by and the
 * echo, which keeps nothing, does not. NaN if no touch faulted.
 */
export function pageFaultUs(): number {
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const bytes = new Uint8Array(64 * 1024 * 1024);
    const faults0 = process.resourceUsage().minorPageFault;
    const t0 = performance.now();
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 1;
    const us = (performance.now() - t0) * 1000;
    const faults = process.resourceUsage().minorPageFault - faults0;
    if (faults > 0) best = Math.min(best, us / faults);
  }
  return best === Infinity ? NaN : best;
}
