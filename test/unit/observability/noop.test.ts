import { describe, expect, it } from 'vitest';
import {
  noopLogger,
  noopMetrics,
  type MetricLabels,
  type Metrics,
} from '../../../src/observability/index.js';

/** An object that throws on any use: proves a no-op never reads, copies or enumerates what it is given. */
const untouchable = <T extends object>(): T =>
  new Proxy({} as T, {
    get: () => {
      throw new Error('read');
    },
    has: () => {
      throw new Error('has');
    },
    ownKeys: () => {
      throw new Error('ownKeys');
    },
    getOwnPropertyDescriptor: () => {
      throw new Error('descriptor');
    },
    getPrototypeOf: () => {
      throw new Error('prototype');
    },
  });

describe('noopMetrics', () => {
  it('is callable with and without labels, returns nothing and never touches its arguments', () => {
    const labels = untouchable<MetricLabels>();
    expect(noopMetrics.increment('quorumkv_requests_total')).toBeUndefined();
    expect(noopMetrics.increment('quorumkv_requests_total', labels, 3)).toBeUndefined();
    expect(noopMetrics.gauge('quorumkv_members_alive', 3)).toBeUndefined();
    expect(noopMetrics.gauge('quorumkv_members_alive', 3, labels)).toBeUndefined();
    expect(noopMetrics.observe('quorumkv_request_duration_seconds', 0.002)).toBeUndefined();
    expect(noopMetrics.observe('quorumkv_request_duration_seconds', 0.002, labels)).toBeUndefined();
  });

  it('is a frozen singleton whose methods are one shared function (no per-call or per-method closures)', () => {
    expect(Object.isFrozen(noopMetrics)).toBe(true);
    expect(() => {
      (noopMetrics as { increment: unknown }).increment = () => {};
    }).toThrow(TypeError);
    expect(noopMetrics.increment).toBe(noopMetrics.gauge);
    expect(noopMetrics.gauge).toBe(noopMetrics.observe);
    expect(noopMetrics.increment.length).toBe(0);
  });

  it('stays the same object across calls, so `metrics === noopMetrics` can skip work', () => {
    const pick = (m?: Metrics): Metrics => m ?? noopMetrics;
    expect(pick()).toBe(noopMetrics);
    for (let i = 0; i < 1000; i++) noopMetrics.increment('x', undefined, i);
    expect(pick()).toBe(noopMetrics);
  });
});

describe('noopLogger', () => {
  it('is callable at every level, returns nothing and never touches its fields', () => {
    const fields = untouchable<Record<string, unknown>>();
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      expect(noopLogger[level]('message')).toBeUndefined();
      expect(noopLogger[level]('message', fields)).toBeUndefined();
    }
  });

  it('is a frozen singleton sharing the metrics no-op function', () => {
    expect(Object.isFrozen(noopLogger)).toBe(true);
    expect(new Set([noopLogger.debug, noopLogger.info, noopLogger.warn, noopLogger.error, noopMetrics.increment]).size).toBe(1);
  });
});
