import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from 'quorumkv';
import { createTestCluster, type TestCluster } from 'quorumkv/testing';

/**
 * Model-based test: a healthy 5-node cluster (N3 R2 W2) against a Map. Every
 * write is a read-modify-write with the read's context, through a random node;
 * since W+R>N, every read through any node must equal the model.
 */
type Model = Map<string, number>;
interface Real {
  cluster: TestCluster<number>;
  prefix: string;
}

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f'];

class PutCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly key: string,
    readonly value: number,
    readonly via: number,
    readonly readVia: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const stores = real.cluster.stores;
    const key = real.prefix + this.key;
    const read = await stores[this.readVia]!.get(key);
    await stores[this.via]!.put(key, this.value, read ? { context: read.context } : {});
    model.set(this.key, this.value);
  }
  toString(): string {
    return `put(${this.key}, ${this.value}) via n${this.via + 1} after read via n${this.readVia + 1}`;
  }
}

class DeleteCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly key: string,
    readonly via: number,
    readonly withContext: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const store = real.cluster.stores[this.via]!;
    const key = real.prefix + this.key;
    if (this.withContext) {
      const read = await store.get(key);
      await store.delete(key, read ? { context: read.context } : {});
    } else {
      await store.delete(key);
    }
    model.delete(this.key);
  }
  toString(): string {
    return `delete(${this.key}${this.withContext ? ', with context' : ''}) via n${this.via + 1}`;
  }
}

class GetCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly key: string,
    readonly via: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const result = await real.cluster.stores[this.via]!.get(real.prefix + this.key);
    const expected = model.get(this.key);
    if (expected === undefined) expect(result).toBeUndefined();
    else expect(result?.values).toEqual([expected]);
  }
  toString(): string {
    return `get(${this.key}) via n${this.via + 1}`;
  }
}

describe('Store against a Map model (5 nodes, N3 R2 W2)', () => {
  let cluster: TestCluster<number>;
  beforeAll(async () => {
    cluster = await createTestCluster<number>({ nodes: 5 });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('every read through any node equals the model', async () => {
    const node = fc.integer({ min: 0, max: 4 });
    const key = fc.constantFrom(...KEYS);
    const commands = [
      fc.tuple(key, fc.integer(), node, node).map(([k, v, via, readVia]) => new PutCommand(k, v, via, readVia)),
      fc.tuple(key, node, fc.boolean()).map(([k, via, ctx]) => new DeleteCommand(k, via, ctx)),
      fc.tuple(key, node).map(([k, via]) => new GetCommand(k, via)),
    ];
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40 }), async (cmds) => {
        const real: Real = { cluster, prefix: `run${run++}:` };
        await fc.asyncModelRun(() => ({ model: new Map(), real }), cmds);
      }),
      { numRuns: 100 },
    );
  });

  it('keeps every replica of every key in agreement after a quiet period', async () => {
    const stores: Store<number>[] = cluster.stores;
    for (const [i, k] of KEYS.entries()) await stores[i % 5]!.put(`quiet:${k}`, i, { consistency: 'all' });
    for (const k of KEYS) {
      const replicas = stores[0]!.ring.preferenceList(`quiet:${k}`, 3).map((n) => cluster.store(n.id));
      const locals = await Promise.all(replicas.map((s) => s.localGet(`quiet:${k}`)));
      expect(new Set(locals.map((l) => JSON.stringify(l?.values))).size).toBe(1);
    }
  });
});
