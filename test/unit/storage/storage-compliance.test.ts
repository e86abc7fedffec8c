import { describe, expect, it } from 'vitest';
import {
  AbstractStorage,
  MemoryStorage,
  tokenInRange,
  type StorageCapabilities,
  type StorageIterable,
  type StoredEntry,
  type StoredHint,
  type TokenRangeQuery,
} from '../../../src/storage/index.js';
import { storageCompliance, type StorageComplianceOptions } from '../../../src/testing/storage-compliance.js';
import type { ComplianceTestApi } from '../../../src/testing/test-api.js';

type Fn = () => unknown;
interface Frame {
  readonly befores: Fn[];
  readonly afters: Fn[];
}
interface Case {
  readonly name: string;
  readonly fn: Fn;
  readonly skipped: boolean;
  readonly frames: readonly Frame[];
}
interface Outcome {
  readonly name: string;
  readonly status: 'passed' | 'failed' | 'skipped';
  readonly error?: unknown;
}

/** A ComplianceTestApi that records the cases, and runs them (with vitest's expect) on demand. */
function recordingApi(): { api: ComplianceTestApi; cases: Case[]; run: () => Promise<Outcome[]> } {
  const cases: Case[] = [];
  const frames: Frame[] = [{ befores: [], afters: [] }];
  const names: string[] = [];
  const register = (skipped: boolean) => (name: string, fn: Fn) => {
    cases.push({ name: [...names, name].join(' > '), fn, skipped, frames: [...frames] });
  };
  const itFn = Object.assign(register(false), { skip: register(true) });
  const api = {
    describe(name: string, fn: () => void) {
      names.push(name);
      frames.push({ befores: [], afters: [] });
      fn();
      frames.pop();
      names.pop();
    },
    it: itFn,
    beforeEach(fn: Fn) {
      (frames[frames.length - 1] as Frame).befores.push(fn);
    },
    afterEach(fn: Fn) {
      (frames[frames.length - 1] as Frame).afters.push(fn);
    },
    expect,
  } as unknown as ComplianceTestApi;
  const run = async (): Promise<Outcome[]> => {
    const out: Outcome[] = [];
    for (const c of cases) {
      if (c.skipped) {
        out.push({ name: c.name, status: 'skipped' });
        continue;
      }
      let error: unknown;
      try {
        for (const f of c.frames) for (const b of f.befores) await b();
        await c.fn();
      } catch (e) {
        error = e;
      }
      for (const f of [...c.frames].reverse()) {
        for (const a of f.afters) {
          try {
            await a();
          } catch (e) {
            error ??= e;
          }
        }
      }
      out.push({ name: c.name, status: error === undefined ? 'passed' : 'failed', error });
    }
    return out;
  };
  return { api, cases, run };
}

/** Where a {@link LocationStorage} keeps its data: survives the adapter object, like a directory. */
interface Location {
  rows: Map<string, StoredEntry>;
  hints: Map<string, { hint: StoredHint; seq: number }>;
  meta: Map<string, Uint8Array>;
  seq: number;
  /** Adapters opened over it right now (a real engine would hold a lock). */
  holders: number;
}
const newLocation = (): Location => ({ rows: new Map(), hints: new Map(), meta: new Map(), seq: 0, holders: 0 });
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const copy = (b: Uint8Array): Uint8Array => Uint8Array.from(b);

/** A small "durable" adapter: its data lives in a Location that outlives the object. Unordered scans. */
class LocationStorage extends AbstractStorage {
  readonly capabilities: StorageCapabilities = { durable: true, orderedScan: false };
  constructor(readonly location: Location) {
    super();
  }
  protected override async _open(): Promise<void> {
    if (this.location.holders > 0) throw new Error('location is locked');
    this.location.holders++;
  }
  protected override async _close(): Promise<void> {
    this.location.holders--;
  }
  protected async _get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const e = this.location.rows.get(hex(key));
    return e && copy(e.record);
  }
  protected async _put(key: Uint8Array, token: number, record: Uint8Array): Promise<void> {
    this.location.rows.set(hex(key), { key: copy(key), token, record: copy(record) });
  }
  protected async _delete(key: Uint8Array): Promise<void> {
    this.location.rows.delete(hex(key));
  }
  protected async *_scan(range: TokenRangeQuery): AsyncIterable<StoredEntry> {
    // Unordered (newest first), to show the suite does not assume order without orderedScan.
    const rows = [...this.location.rows.values()].reverse().filter((e) => tokenInRange(e.token, range));
    for (const e of rows) yield { key: copy(e.key), token: e.token, record: copy(e.record) };
  }
  protected async _putHint(hint: StoredHint): Promise<void> {
    const seq = this.location.hints.get(hint.id)?.seq ?? this.location.seq++;
    this.location.hints.set(hint.id, { hint: { ...hint, key: copy(hint.key), record: copy(hint.record) }, seq });
  }
  protected _hints(target: string | undefined): StorageIterable<StoredHint> {
    return [...this.location.hints.values()]
      .filter((h) => target === undefined || h.hint.target === target)
      .sort((a, b) => a.hint.createdAt - b.hint.createdAt || a.seq - b.seq)
      .map(({ hint }) => ({ ...hint, key: copy(hint.key), record: copy(hint.record) }));
  }
  protected async _deleteHint(id: string): Promise<void> {
    this.location.hints.delete(id);
  }
  protected async _getMeta(name: string): Promise<Uint8Array | undefined> {
    const v = this.location.meta.get(name);
    return v && copy(v);
  }
  protected async _setMeta(name: string, value: Uint8Array): Promise<void> {
    this.location.meta.set(name, copy(value));
  }
}

const statuses = (outcomes: Outcome[], status: Outcome['status']): string[] =>
  outcomes.filter((o) => o.status === status).map((o) => o.name.replace(/^StorageAdapter compliance: [^>]+> /, ''));

function failuresOf(outcomes: Outcome[]): string {
  return outcomes
    .filter((o) => o.status === 'failed')
    .map((o) => `${o.name}: ${String(o.error)}`)
    .join('\n');
}

describe('storageCompliance', () => {
  it('reads capabilities from the first adapter, registers unsupported cases as skipped, and passes MemoryStorage', async () => {
    const { api, run } = recordingApi();
    let made = 0;
    storageCompliance({
      name: 'MemoryStorage',
      setup: () => {
        made++;
        return new MemoryStorage();
      },
      test: api,
    });
    expect(made).toBe(1); // the registering adapter serves the first case
    const outcomes = await run();
    expect(failuresOf(outcomes)).toBe('');
    expect(statuses(outcomes, 'skipped')).toEqual([
      'lifecycle > durable: a new adapter object over the same location keeps everything',
      'lifecycle > durable: data written just before close() survives a new adapter object',
    ]);
    expect(statuses(outcomes, 'passed').length).toBeGreaterThan(35);
    expect(statuses(outcomes, 'passed')).toContain(
      'when open > records > getSharedNow, when the adapter has it, answers what get answers, and bytes it handed out never change',
    );
    expect(made).toBe(outcomes.length - 2);
  });

  it('runs the durable cases through reopen and tears each location down once per case', async () => {
    const { api, run } = recordingApi();
    const torn: LocationStorage[] = [];
    storageCompliance({
      name: 'LocationStorage',
      setup: () => new LocationStorage(newLocation()),
      reopen: (previous) => new LocationStorage(previous.location),
      teardown: (storage) => {
        expect(storage.status).toBe('closed');
        torn.push(storage);
      },
      test: api,
    });
    const outcomes = await run();
    expect(failuresOf(outcomes)).toBe('');
    expect(statuses(outcomes, 'passed')).toContain(
      'lifecycle > durable: a new adapter object over the same location keeps everything',
    );
    // LocationStorage has getNow/putNow (from AbstractStorage) but no getSharedNow: that case is skipped, not passed.
    expect(statuses(outcomes, 'skipped')).toEqual([
      'when open > records > getSharedNow, when the adapter has it, answers what get answers, and bytes it handed out never change',
      'when open > scan > orderedScan: orders by token, then key bytes',
      'when open > scan > orderedScan: a wrapping range comes in ascending token order',
    ]);
    expect(statuses(outcomes, 'passed')).toContain(
      'when open > records > getNow/putNow, when the adapter has them, agree with get/put (a value or a promise of it; copies; the same refusals)',
    );
    expect(torn.length).toBe(outcomes.length - 3);
    expect(new Set(torn.map((s) => s.location)).size).toBe(torn.length);
    expect(torn.every((s) => s.location.holders === 0)).toBe(true);
  });

  it('fails an adapter that claims durability but loses its data on reopen', async () => {
    const { api, run } = recordingApi();
    storageCompliance({
      name: 'Forgetful',
      setup: () => new LocationStorage(newLocation()),
      reopen: () => new LocationStorage(newLocation()),
      test: api,
    });
    const failed = statuses(await run(), 'failed');
    expect(failed).toEqual([
      'lifecycle > durable: a new adapter object over the same location keeps everything',
      'lifecycle > durable: data written just before close() survives a new adapter object',
      'under a Store (quorumkv writes its sibling sets through the adapter) > keeps tombstones and concurrent versions across a restart',
      'under a Store (quorumkv writes its sibling sets through the adapter) > keeps the node identity and its records in the adapter across a restart',
    ]);
  });

  it('fails an adapter that claims orderedScan but yields out of order', async () => {
    class Unordered extends MemoryStorage {
      protected override _scan(range: TokenRangeQuery): StorageIterable<StoredEntry> {
        return [...(super._scan(range) as Iterable<StoredEntry>)].reverse();
      }
    }
    const { api, run } = recordingApi();
    storageCompliance({ name: 'Unordered', setup: () => new Unordered(), test: api });
    expect(statuses(await run(), 'failed')).toEqual([
      'when open > scan > orderedScan: orders by token, then key bytes',
      'when open > scan > orderedScan: a wrapping range comes in ascending token order',
    ]);
  });

  it('fails an adapter whose getSharedNow hands out bytes it later writes over', async () => {
    // One reused buffer per key: each put writes the new record into the bytes handed out before.
    class Reusing extends MemoryStorage {
      readonly #buffers = new Map<string, Uint8Array>();
      override getSharedNow(key: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined> {
        const got = this.getNow(key);
        if (!(got instanceof Uint8Array)) return got;
        const id = Buffer.from(key).toString('latin1');
        let buffer = this.#buffers.get(id);
        if (buffer === undefined || buffer.length < got.length) this.#buffers.set(id, (buffer = new Uint8Array(64 * 1024)));
        buffer.set(got);
        return buffer.subarray(0, got.length);
      }
    }
    const { api, run } = recordingApi();
    storageCompliance({ name: 'Reusing', setup: () => new Reusing(), test: api });
    expect(statuses(await run(), 'failed')).toEqual([
      'when open > records > getSharedNow, when the adapter has it, answers what get answers, and bytes it handed out never change',
    ]);
  });

  it('fails an adapter whose capabilities differ from the ones given', async () => {
    const { api, run } = recordingApi();
    storageCompliance({
      name: 'Mismatch',
      setup: async () => new MemoryStorage(),
      capabilities: { durable: false, orderedScan: false },
      test: api,
    });
    expect(statuses(await run(), 'failed')).toEqual(['declares the capabilities the suite was registered with']);
  });

  it('needs capabilities when setup is asynchronous, and reopen when the adapter is durable', () => {
    const { api } = recordingApi();
    expect(() => storageCompliance({ name: 'A', setup: async () => new MemoryStorage(), test: api })).toThrow(
      /`setup` returned a promise while the suite was registering its cases/,
    );
    expect(() => storageCompliance({ name: 'D', setup: () => new LocationStorage(newLocation()), test: api })).toThrow(
      'storageCompliance: Expected `reopen` to be a function (a new adapter over the same location) when the adapter declares `durable: true`, got undefined',
    );
    let called = false;
    storageCompliance({
      name: 'Given',
      setup: () => {
        called = true;
        return new MemoryStorage();
      },
      capabilities: { durable: false, orderedScan: true },
      test: api,
    });
    expect(called).toBe(false);
  });

  it('rejects malformed options with precise TypeErrors', () => {
    const { api } = recordingApi();
    const call = (o: unknown) => () => storageCompliance(o as StorageComplianceOptions);
    expect(call('MemoryStorage')).toThrow(
      'storageCompliance: Expected `options` to be an object { name, setup, reopen?, teardown?, test? }, got string MemoryStorage',
    );
    expect(call({ name: '', setup: () => new MemoryStorage(), test: api })).toThrow(
      'storageCompliance: Expected `name` to be a non-empty string, got string ',
    );
    expect(call({ name: 'x', test: api })).toThrow('storageCompliance: Expected `setup` to be a function, got undefined');
    expect(call({ name: 'x', setup: () => new MemoryStorage(), teardown: 1, test: api })).toThrow(
      'storageCompliance: Expected `teardown` to be a function or undefined, got number 1',
    );
    expect(call({ name: 'x', setup: () => new MemoryStorage(), capabilities: { durable: 'no' }, test: api })).toThrow(
      'storageCompliance: Expected `capabilities` to be { durable: boolean, orderedScan: boolean }, got an object',
    );
  });
});
