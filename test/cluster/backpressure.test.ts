import { describe, expect, it } from 'vitest';
import { createTestCluster } from 'quorumkv/testing';

describe('a caller that never waits for I/O', () => {
  it('a loop of W=1 puts through their primaries lets the event loop turn, and loses no replica copy', async () => {
    // Each put resolves without waiting for any I/O (the coordinator is a replica,
    // memory storage answers synchronously, W = 1), so before calls in progress
    // were bounded this loop ran to its end with no timer firing, and the
    // replication it left behind overflowed the transport's in-flight bound
    // (10,000 requests): copies were lost.
    const cluster = await createTestCluster<number>({ nodes: 5, timeout: 10_000 });
    try {
      const stores = cluster.stores;
      const byId = new Map(stores.map((s) => [s.id, s]));
      const ring = stores[0]!.ring;
      const PUTS = 12_000;
      let timerTurns = 0;
      const tick = setInterval(() => timerTurns++, 1);
      let next = 0;
      try {
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            while (next < PUTS) {
              const i = next++;
              await byId.get(ring.preferenceList(`k:${i}`, 3)[0]!.id)!.put(`k:${i}`, i, { w: 1 });
            }
          }),
        );
      } finally {
        clearInterval(tick);
      }
      expect(timerTurns).toBeGreaterThan(0);
      // Every replica of every key holds it once replication settled (a deadline, not a sleep).
      const until = Date.now() + 10_000;
      let missing: string[] = [];
      do {
        missing = [];
        for (let i = 0; i < PUTS; i += 11) {
          for (const node of ring.preferenceList(`k:${i}`, 3)) {
            if ((await byId.get(node.id)!.localGet(`k:${i}`)) === undefined) missing.push(`k:${i}@${node.id}`);
          }
        }
        if (missing.length === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      } while (Date.now() < until);
      expect(missing).toEqual([]);
    } finally {
      await cluster.stop();
    }
  });
});
