import { describe, expect, it } from 'vitest';
import { MemoryNetwork, Store, type Logger, type MetricLabels, type Metrics } from 'quorumkv';

function recorders(): { logger: Logger; metrics: Metrics; lines: { level: string; message: string; fields: Record<string, unknown> }[]; gauges: Map<string, number>; counters: Map<string, number> } {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const gauges = new Map<string, number>();
  const counters = new Map<string, number>();
  const key = (name: string, labels?: MetricLabels): string => `${name}${labels ? JSON.stringify(labels) : ''}`;
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, fields: fields ?? {} });
  return {
    lines,
    gauges,
    counters,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    metrics: {
      increment: (name, labels, by = 1) => void counters.set(key(name, labels), (counters.get(key(name, labels)) ?? 0) + by),
      gauge: (name, value, labels) => void gauges.set(key(name, labels), value),
      observe: () => {},
    },
  };
}

const gossip = { interval: 20, suspectAfterRounds: 20, downAfterRounds: 40, timeout: 200, shutdownTimeout: 100 };

describe('observability: the logger and metrics a Store is given', () => {
  it('logs joins and refusals and keeps member gauges', async () => {
    const net = new MemoryNetwork();
    const rec = recorders();
    const a = new Store({ id: 'a', cluster: 'c1', transport: net.transport('a'), replication: { n: 1, r: 1, w: 1 }, gossip, logger: rec.logger, metrics: rec.metrics });
    const b = new Store({ id: 'b', cluster: 'c1', transport: net.transport('b'), seeds: ['a'], replication: { n: 1, r: 1, w: 1 }, gossip });
    const stranger = new Store({ id: 'x', cluster: 'c2', transport: net.transport('x'), seeds: ['a'], replication: { n: 1, r: 1, w: 1 }, gossip });
    await Promise.all([a.start(), b.start(), stranger.start()]);
    try {
      await a.waitForMembers(2);
      await expect(stranger.waitForMembers(2)).rejects.toMatchObject({ code: 'KV_CLUSTER_MISMATCH' });
      expect(rec.lines).toContainEqual(expect.objectContaining({ level: 'info', message: 'quorumkv: member joined', fields: expect.objectContaining({ node: 'a', member: 'b' }) }));
      expect(rec.lines).toContainEqual(expect.objectContaining({ level: 'error', message: 'quorumkv: join refused', fields: expect.objectContaining({ code: 'KV_CLUSTER_MISMATCH' }) }));
      expect(rec.counters.get('quorumkv_refusals_total{"code":"KV_CLUSTER_MISMATCH"}')).toBeGreaterThanOrEqual(1);
      expect(rec.gauges.get('quorumkv_members{"status":"alive"}')).toBe(2);
      await b.stop();
      const until = Date.now() + 5_000;
      while (rec.gauges.get('quorumkv_members{"status":"down"}') !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      expect(rec.gauges.get('quorumkv_members{"status":"down"}')).toBe(1);
      expect(rec.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: 'quorumkv: member down', fields: expect.objectContaining({ member: 'b', reason: 'shutdown' }) }));
    } finally {
      await Promise.all([a.stop(), b.stop(), stranger.stop()]);
    }
  });

  it('logs a key passing the sibling warning level', async () => {
    const net = new MemoryNetwork();
    const rec = recorders();
    const a = new Store({ id: 'a', transport: net.transport('a'), replication: { n: 1, r: 1, w: 1 }, siblingWarning: 2, logger: rec.logger, metrics: rec.metrics });
    await a.start();
    try {
      for (let i = 0; i < 4; i++) await a.put('k', i);
      expect(rec.lines.filter((l) => l.message === 'quorumkv: key passed the sibling warning level')).toEqual([
        { level: 'warn', message: 'quorumkv: key passed the sibling warning level', fields: { node: 'a', key: 'k', siblings: 3, threshold: 2 } },
      ]);
      expect(rec.counters.get('quorumkv_sibling_warnings_total')).toBe(1);
    } finally {
      await a.stop();
    }
  });

  it('refuses a logger or metrics object that lacks a method', () => {
    const net = new MemoryNetwork();
    expect(() => new Store({ id: 'a', transport: net.transport('a'), logger: { info() {} } as unknown as Logger })).toThrow(/`logger` to implement Logger/);
    expect(() => new Store({ id: 'a', transport: net.transport('a'), metrics: {} as Metrics })).toThrow(/`metrics` to implement Metrics/);
  });
});
