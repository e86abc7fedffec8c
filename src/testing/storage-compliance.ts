import { resolveTestApi, type ComplianceTestApi } from './test-api.js';
import { MemoryNetwork } from '../transport/index.js';
import { Store } from '../store/index.js';
import { MetaNames } from '../node/index.js';
import type { StorageAdapter, StorageCapabilities, StoredEntry, StoredHint } from '../storage/types.js';

/**
 * Options of {@link storageCompliance}.
 *
 * @typeParam S - the adapter type, so that `reopen` and `teardown` see its
 * own properties (such as a `path`)
 */
export interface StorageComplianceOptions<S extends StorageAdapter = StorageAdapter> {
  /** Shown in the suite's title: `StorageAdapter compliance: <name>`. */
  readonly name: string;
  /**
   * Returns a new, unopened adapter over a new, empty location. Called
   * before every case, and once while registering (unless `capabilities`
   * is given) to read the adapter's `capabilities`: that first adapter then
   * serves the first case. Return the adapter synchronously (constructors
   * should do no I/O; `open()` does) or pass `capabilities`.
   */
  setup(): S | Promise<S>;
  /**
   * Returns a new, unopened adapter object over the same location as
   * `previous` (which the suite has closed), e.g.
   * `(previous) => new LevelStorage({ path: previous.path })`. Required
   * when `capabilities.durable` is true: the `durable` cases use it.
   */
  reopen?(previous: S): S | Promise<S>;
  /**
   * Runs after each case, once per location, with the last adapter the case
   * used (after a `reopen`, the new object), already closed: remove the
   * location here.
   */
  teardown?(storage: S): void | Promise<void>;
  /**
   * The capabilities to register cases for. By default the suite reads them
   * from the adapter `setup()` returns while registering; needed only when
   * `setup` is asynchronous. Either way a case checks that every adapter
   * declares exactly these.
   */
  readonly capabilities?: StorageCapabilities;
  /**
   * The test framework's functions (e.g. `import * as vitest from 'vitest'`).
   * @default the global `describe`, `it`, `beforeEach`, `afterEach`, `expect`
   */
  readonly test?: ComplianceTestApi;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string): Uint8Array => enc.encode(s);
const text = (b: Uint8Array): string => dec.decode(b);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function failure(p: Promise<unknown>, expect: ComplianceTestApi['expect'], what: string): Promise<unknown> {
  const outcome = await p.then(
    () => ({ rejected: false, error: undefined as unknown }),
    (error: unknown) => ({ rejected: true, error }),
  );
  expect(outcome.rejected, `expected ${what} to reject`).toBe(true);
  expect(outcome.error, `expected ${what} to reject with an Error`).toBeInstanceOf(Error);
  return outcome.error;
}

function hint(id: string, target: string, createdAt: number): StoredHint {
  return { id, target, key: bytes(`hk-${id}`), token: 7, record: bytes(`hr-${id}`), createdAt };
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function checkOptions(options: unknown): asserts options is StorageComplianceOptions<StorageAdapter> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `storageCompliance: Expected \`options\` to be an object { name, setup, reopen?, teardown?, test? }, got ${describeValue(options)}`,
    );
  }
  const o = options as Partial<Record<keyof StorageComplianceOptions, unknown>>;
  if (typeof o.name !== 'string' || o.name.length === 0) {
    throw new TypeError(`storageCompliance: Expected \`name\` to be a non-empty string, got ${describeValue(o.name)}`);
  }
  for (const fn of ['setup', 'reopen', 'teardown'] as const) {
    if (fn === 'setup' ? typeof o[fn] !== 'function' : o[fn] !== undefined && typeof o[fn] !== 'function') {
      throw new TypeError(
        `storageCompliance: Expected \`${fn}\` to be a function${fn === 'setup' ? '' : ' or undefined'}, got ${describeValue(o[fn])}`,
      );
    }
  }
}

function checkCapabilities(value: unknown, source: string): StorageCapabilities {
  const c = value as Partial<StorageCapabilities> | null | undefined;
  if (typeof c !== 'object' || c === null || typeof c.durable !== 'boolean' || typeof c.orderedScan !== 'boolean') {
    throw new TypeError(
      `storageCompliance: Expected ${source} to be { durable: boolean, orderedScan: boolean }, got ${describeValue(value)}`,
    );
  }
  return { durable: c.durable, orderedScan: c.orderedScan };
}

/**
 * Registers the `StorageAdapter` compliance suite (with the test framework's
 * `describe`/`it`: see {@link ComplianceTestApi}) for an implementation, as
 * abstract-level's suite does for Level stores. Every built-in adapter runs
 * it; run it in your adapter's tests.
 *
 * `setup` returns a new, unopened adapter over a new location for each
 * case. Cases for a capability the adapter does not declare (`durable`:
 * a new adapter object over the same location keeps the data;
 * `orderedScan`) are registered with `it.skip`: reported as skipped, never
 * as passed.
 *
 * What the suite holds an adapter to: idempotent, concurrent `open`/`close`
 * taking effect in call order; `KV_NOT_STARTED` before open and after close;
 * `close()` lets started calls finish and ends open iterators (their next
 * step rejects with `KV_NOT_STARTED`); `TypeError`/`RangeError` for
 * malformed arguments (empty keys, tokens outside unsigned 32-bit, …);
 * `KV_ABORTED` for a signal that has fired (before the call, or between
 * scan steps); bytes copied in and out; the optional fast paths, when the
 * adapter has them (`getNow`/`putNow` agree with `get`/`put`;
 * `getSharedNow` agrees with `get`, and bytes it handed out never change
 * through later writes; a case for methods the adapter lacks is skipped);
 * half-open token ranges with
 * wrap-around; iterators released by `break`; hints per target, oldest
 * first, replaced by id; metadata apart from records; 100 parallel calls;
 * a streamed scan over 2,000 entries. Under a one-node `Store` (quorumkv's
 * own read-merge-write of sibling sets through the adapter): a write with a
 * read's context replaces what it read (dominated versions dropped),
 * concurrent writes stay siblings, tombstones and siblings survive a
 * restart (over a new adapter object when `durable`), a value at the size
 * limit is stored and one over it is refused with `KV_VALUE_TOO_LARGE`
 * storing nothing, and the node's identity (incarnation, tokens) is kept.
 * Adapters that extend `AbstractStorage` get the state, argument and abort
 * checks from the base.
 *
 * @example
 * ```ts
 * import * as vitest from 'vitest';
 * import { storageCompliance } from 'quorumkv/testing';
 *
 * storageCompliance({
 *   name: 'MyStorage',
 *   setup: () => new MyStorage({ path: tmpDir() }),
 *   reopen: (previous) => new MyStorage({ path: previous.path }),
 *   teardown: (storage) => rm(storage.path, { recursive: true }),
 *   test: vitest,
 * });
 * ```
 */
export function storageCompliance<S extends StorageAdapter>(options: StorageComplianceOptions<S>): void {
  checkOptions(options);
  const { name, reopen, teardown } = options;
  const { describe, it, beforeEach, afterEach, expect } = resolveTestApi(options.test, 'storageCompliance');

  // Capabilities decide which cases are registered as skipped, so they are
  // needed now: from the option, or from a first adapter (which then serves
  // the first case, so that no location is made in vain).
  let spare: S | undefined;
  let capabilities: StorageCapabilities;
  if (options.capabilities !== undefined) {
    capabilities = checkCapabilities(options.capabilities, '`capabilities`');
  } else {
    const made = options.setup();
    if (isPromiseLike(made)) {
      throw new TypeError(
        'storageCompliance: `setup` returned a promise while the suite was registering its cases; ' +
          'return the adapter synchronously, or pass `capabilities` so the suite knows which cases apply',
      );
    }
    spare = made;
    capabilities = checkCapabilities(made.capabilities, 'the capabilities of the adapter `setup` returned');
  }
  if (capabilities.durable && reopen === undefined) {
    throw new TypeError(
      'storageCompliance: Expected `reopen` to be a function (a new adapter over the same location) ' +
        'when the adapter declares `durable: true`, got undefined',
    );
  }

  const when = (supported: boolean): typeof it => (supported ? it : (it.skip as typeof it));
  // Optional fast paths (getNow/putNow, getSharedNow): known from the first adapter when the
  // suite made one, and a case for methods it lacks is registered skipped. With `capabilities`
  // given no adapter exists yet: the case is registered and passes vacuously without them.
  const hasMethods = (...names: ('getNow' | 'putNow' | 'getSharedNow')[]): boolean =>
    spare === undefined || names.every((n) => typeof spare![n] === 'function');
  const rejects = (p: Promise<unknown>, what: string): Promise<unknown> => failure(p, expect, what);
  /** What a fast path refuses with: thrown synchronously or a rejected promise (undefined if it did not refuse). */
  const refusal = async (call: () => unknown): Promise<unknown> => {
    try {
      await call();
    } catch (err) {
      return err;
    }
    return undefined;
  };
  const rejectsCode = async (p: Promise<unknown>, code: string, what = 'the call'): Promise<unknown> => {
    const error = await rejects(p, what);
    expect((error as { code?: unknown }).code, `${what}: error code`).toBe(code);
    return error;
  };
  const rejectsType = async (
    p: Promise<unknown>,
    type: typeof TypeError | typeof RangeError,
    what: string,
  ): Promise<void> => {
    expect(await rejects(p, what), `${what}: error class`).toBeInstanceOf(type);
  };

  describe(`StorageAdapter compliance: ${name}`, () => {
    /** The adapter of the current case (the latest, after a reopen). */
    let s: S;

    beforeEach(async () => {
      if (spare !== undefined) {
        s = spare;
        spare = undefined;
      } else {
        s = await options.setup();
      }
    });
    afterEach(async () => {
      await s.close();
      if (teardown !== undefined) await teardown(s);
    });

    /** Closes the case's adapter and replaces it by a new object over the same location. */
    const reopenNew = async (): Promise<S> => {
      await s.close();
      s = await (reopen as (previous: S) => S | Promise<S>)(s);
      return s;
    };

    it('declares the capabilities the suite was registered with', () => {
      expect({ durable: s.capabilities.durable, orderedScan: s.capabilities.orderedScan }).toEqual(capabilities);
    });

    describe('lifecycle', () => {
      it('starts closed; open and close are idempotent and report status', async () => {
        expect(s.status).toBe('closed');
        await s.close();
        expect(s.status).toBe('closed');
        await s.open();
        expect(s.status).toBe('open');
        await s.open();
        expect(s.status).toBe('open');
        await s.close();
        expect(s.status).toBe('closed');
        await s.close();
        expect(s.status).toBe('closed');
        await s.open();
        expect(s.status).toBe('open');
      });

      it('settles concurrent open and close calls in call order', async () => {
        await Promise.all([s.open(), s.open()]);
        expect(s.status).toBe('open');
        await Promise.all([s.close(), s.close()]);
        expect(s.status).toBe('closed');
        // close while opening, open while closing: the last request wins.
        await Promise.all([s.open(), s.close()]);
        expect(s.status).toBe('closed');
        await Promise.all([s.open(), s.close(), s.open()]);
        expect(s.status).toBe('open');
        await s.put(bytes('k'), 1, bytes('v'));
        expect(await s.get(bytes('k'))).toEqual(bytes('v'));
      });

      it('rejects every call before open with KV_NOT_STARTED', async () => {
        const k = bytes('k');
        await rejectsCode(s.get(k), 'KV_NOT_STARTED', 'get');
        await rejectsCode(s.put(k, 1, k), 'KV_NOT_STARTED', 'put');
        await rejectsCode(collect(s.scan()), 'KV_NOT_STARTED', 'scan');
        await rejectsCode(s.getMeta('m'), 'KV_NOT_STARTED', 'getMeta');
      });

      it('rejects every call after close with KV_NOT_STARTED', async () => {
        await s.open();
        await s.close();
        const k = bytes('k');
        await rejectsCode(s.get(k), 'KV_NOT_STARTED', 'get');
        await rejectsCode(s.put(k, 1, k), 'KV_NOT_STARTED', 'put');
        await rejectsCode(s.delete(k), 'KV_NOT_STARTED', 'delete');
        await rejectsCode(collect(s.scan()), 'KV_NOT_STARTED', 'scan');
        await rejectsCode(s.putHint(hint('h', 't', 1)), 'KV_NOT_STARTED', 'putHint');
        await rejectsCode(collect(s.hints()), 'KV_NOT_STARTED', 'hints');
        await rejectsCode(s.deleteHint('h'), 'KV_NOT_STARTED', 'deleteHint');
        await rejectsCode(s.getMeta('m'), 'KV_NOT_STARTED', 'getMeta');
        await rejectsCode(s.setMeta('m', k), 'KV_NOT_STARTED', 'setMeta');
      });

      it('lets calls already started finish when close() is called', async () => {
        await s.open();
        const writes = Array.from({ length: 20 }, (_, i) => s.put(bytes(`k${i}`), i, bytes(`v${i}`)));
        const meta = s.setMeta('m', bytes('meta'));
        const closing = s.close();
        await Promise.all([...writes, meta]);
        await closing;
        expect(s.status).toBe('closed');
        await s.open();
        for (let i = 0; i < 20; i++) expect(await s.get(bytes(`k${i}`))).toEqual(bytes(`v${i}`));
        expect(await s.getMeta('m')).toEqual(bytes('meta'));
      });

      it('ends a scan or hints iterator open during close() with KV_NOT_STARTED', async () => {
        await s.open();
        for (let i = 0; i < 5; i++) await s.put(bytes(`k${i}`), i, bytes('v'));
        for (let i = 0; i < 5; i++) await s.putHint(hint(`h${i}`, 'n', i));
        const entries = s.scan()[Symbol.asyncIterator]();
        const hints = s.hints()[Symbol.asyncIterator]();
        expect((await entries.next()).done).toBe(false);
        expect((await hints.next()).done).toBe(false);
        await s.close(); // must not wait for the iterators to be drained
        await rejectsCode(entries.next(), 'KV_NOT_STARTED', 'a scan step after close');
        await rejectsCode(hints.next(), 'KV_NOT_STARTED', 'a hints step after close');
        await s.open();
        expect((await collect(s.scan())).length).toBe(5);
      });

      it('keeps its data across close and open of the same object', async () => {
        await s.open();
        await s.put(bytes('a'), 5, bytes('ra'));
        await s.putHint(hint('h1', 'n1', 10));
        await s.setMeta('incarnation', bytes('3'));
        await s.close();
        await s.open();
        expect(await s.get(bytes('a'))).toEqual(bytes('ra'));
        expect((await collect(s.hints())).map((h) => h.id)).toEqual(['h1']);
        expect(await s.getMeta('incarnation')).toEqual(bytes('3'));
      });

      when(capabilities.durable)('durable: a new adapter object over the same location keeps everything', async () => {
        await s.open();
        await s.put(bytes('a'), 5, bytes('ra'));
        await s.put(bytes('b'), 0xffffffff, bytes('rb'));
        await s.delete(bytes('b'));
        await s.putHint(hint('h1', 'n1', 10));
        await s.putHint(hint('h2', 'n2', 5));
        await s.deleteHint('h2');
        await s.setMeta('incarnation', bytes('3'));
        const before = s;
        await reopenNew();
        expect(s === before, 'reopen must return a new adapter object').toBe(false);
        expect(s.status).toBe('closed');
        await s.open();
        expect(await s.get(bytes('a'))).toEqual(bytes('ra'));
        expect(await s.get(bytes('b'))).toBeUndefined();
        expect((await collect(s.scan())).map((e) => [text(e.key), e.token])).toEqual([['a', 5]]);
        expect((await collect(s.hints())).map((h) => h.id)).toEqual(['h1']);
        expect(await s.getMeta('incarnation')).toEqual(bytes('3'));
      });

      when(capabilities.durable)('durable: data written just before close() survives a new adapter object', async () => {
        await s.open();
        const writes = Array.from({ length: 50 }, (_, i) => s.put(bytes(`k${i}`), i * 1000, bytes(`v${i}`)));
        const closing = s.close();
        await Promise.all(writes);
        await closing;
        await reopenNew();
        await s.open();
        expect((await collect(s.scan())).length).toBe(50);
        expect(await s.get(bytes('k49'))).toEqual(bytes('v49'));
      });
    });

    describe('under a Store (quorumkv writes its sibling sets through the adapter)', () => {
      const LIMIT = 4096;
      let net: MemoryNetwork;
      let store: Store<unknown> | undefined;
      const startStore = async (): Promise<Store<unknown>> => {
        const made = new Store<unknown>({
          id: 'node',
          cluster: 'compliance',
          transport: net.transport('node'),
          storage: s,
          replication: { n: 1, r: 1, w: 1 },
          maxValueBytes: LIMIT,
        });
        store = made;
        await made.start();
        return made;
      };
      /** Stops the store (closing the adapter) and starts a new one: over a new adapter object when durable. */
      const restart = async (): Promise<Store<unknown>> => {
        await (store as Store<unknown>).stop();
        store = undefined;
        if (capabilities.durable) await reopenNew();
        return startStore();
      };
      beforeEach(() => {
        net = new MemoryNetwork();
      });
      afterEach(async () => {
        if (store !== undefined) await store.stop();
        store = undefined;
      });

      it('a write with the context of a read replaces what it read; writes without one stay as siblings', async () => {
        const st = await startStore();
        await st.put('k', 'v1');
        const first = await st.get('k');
        await st.put('k', 'v2', { context: first?.context });
        expect((await st.get('k'))?.values).toEqual(['v2']);
        await st.put('k', 'x');
        await st.put('k', 'y');
        const siblings = await st.get('k');
        expect([...(siblings?.values ?? [])].sort()).toEqual(['v2', 'x', 'y']);
        await st.put('k', 'merged', { context: siblings?.context });
        expect((await st.get('k'))?.values).toEqual(['merged']);
        const local = await st.localGet('k');
        expect(local?.siblings.length).toBe(1);
      });

      it('keeps tombstones and concurrent versions across a restart', async () => {
        let st = await startStore();
        await st.put('gone', 'v');
        const read = await st.get('gone');
        await st.delete('gone', { context: read?.context });
        await st.put('both', 1);
        await st.put('both', 2);
        await st.put('plain', { nested: [1, 'two', null] });
        st = await restart();
        expect(await st.get('gone')).toBeUndefined();
        const tomb = await st.localGet('gone');
        expect(tomb?.siblings.map((x) => x.tombstone)).toEqual([true]);
        expect([...((await st.get('both'))?.values ?? [])].sort()).toEqual([1, 2]);
        expect((await st.get('plain'))?.values).toEqual([{ nested: [1, 'two', null] }]);
        // The restarted node goes on with the key's history: a write with the read's context collapses the siblings.
        const both = await st.get('both');
        await st.put('both', 3, { context: both?.context });
        expect((await st.get('both'))?.values).toEqual([3]);
      });

      it('stores a value at the size limit and refuses one over it (KV_VALUE_TOO_LARGE), storing nothing', async () => {
        const st = await startStore();
        // A binary value of n bytes (256 <= n < 65536) encodes to n + 3 bytes.
        const at = new Uint8Array(LIMIT - 3).fill(7);
        await st.put('at', at);
        const got = (await st.get('at'))?.values[0] as Uint8Array;
        expect(got.length).toBe(at.length);
        expect(Buffer.compare(got, at)).toBe(0);
        await rejectsCode(st.put('over', new Uint8Array(LIMIT - 2)), 'KV_VALUE_TOO_LARGE', 'a put over the limit');
        expect(await st.get('over')).toBeUndefined();
        expect(await s.get(bytes('over'))).toBeUndefined();
      });

      it('keeps the node identity and its records in the adapter across a restart', async () => {
        let st = await startStore();
        for (let i = 0; i < 50; i++) await st.put(`k${i}`, i);
        const incarnation = await s.getMeta(MetaNames.incarnation);
        const tokens = await s.getMeta(MetaNames.tokens);
        expect(incarnation, 'the node keeps its incarnation as metadata').not.toBeUndefined();
        st = await restart();
        for (let i = 0; i < 50; i++) expect((await st.get(`k${i}`))?.values).toEqual([i]);
        expect(await s.getMeta(MetaNames.incarnation)).toEqual(incarnation);
        expect(await s.getMeta(MetaNames.tokens)).toEqual(tokens);
      });
    });

    describe('when open', () => {
      beforeEach(async () => {
        await s.open();
      });

      describe('records', () => {
        it('gets, puts, replaces and deletes', async () => {
          const k = bytes('key');
          expect(await collect(s.scan())).toEqual([]);
          expect(await s.get(k)).toBeUndefined();
          await s.put(k, 42, bytes('v1'));
          expect(await s.get(k)).toEqual(bytes('v1'));
          await s.put(k, 42, bytes('v2'));
          expect(await s.get(k)).toEqual(bytes('v2'));
          await s.delete(k);
          expect(await s.get(k)).toBeUndefined();
          await s.delete(k); // deleting a missing key is fine
          expect(await collect(s.scan())).toEqual([]);
        });

        when(hasMethods('getNow', 'putNow'))('getNow/putNow, when the adapter has them, agree with get/put (a value or a promise of it; copies; the same refusals)', async () => {
          const getNow = s.getNow?.bind(s);
          const putNow = s.putNow?.bind(s);
          if (getNow === undefined || putNow === undefined) {
            expect(getNow === undefined && putNow === undefined).toBe(true);
            return;
          }
          const record = bytes('now');
          await putNow(bytes('n'), 5, record);
          record[0] = 0;
          expect(await s.get(bytes('n'))).toEqual(bytes('now'));
          const got = (await getNow(bytes('n'))) as Uint8Array;
          expect(got).toEqual(bytes('now'));
          got[0] = 0;
          expect(await getNow(bytes('n'))).toEqual(bytes('now'));
          expect(await getNow(bytes('missing'))).toBeUndefined();
          await s.put(bytes('n'), 6, bytes('later'));
          expect(await getNow(bytes('n'))).toEqual(bytes('later'));
          const all = await collect(s.scan());
          expect(all.map((e) => [text(e.key), e.token])).toEqual([['n', 6]]);
          // Refusals: thrown synchronously, or a rejected promise; never a stored record.
          expect(await refusal(() => getNow(new Uint8Array(0)))).toBeInstanceOf(TypeError);
          expect(await refusal(() => putNow(bytes('bad'), -1, bytes('r')))).toBeInstanceOf(RangeError);
          expect(await s.get(bytes('bad'))).toBeUndefined();
        });

        when(hasMethods('getSharedNow'))(
          'getSharedNow, when the adapter has it, answers what get answers, and bytes it handed out never change',
          async () => {
            const getSharedNow = s.getSharedNow?.bind(s);
            if (getSharedNow === undefined) return;
            await s.put(bytes('k'), 5, bytes('first'));
            const first = (await getSharedNow(bytes('k'))) as Uint8Array;
            expect(first).toEqual(bytes('first'));
            expect(await getSharedNow(bytes('missing'))).toBeUndefined();
            await s.put(bytes('k'), 5, bytes('second value'));
            expect(await getSharedNow(bytes('k'))).toEqual(bytes('second value'));
            await s.delete(bytes('k'));
            expect(await getSharedNow(bytes('k'))).toBeUndefined();
            // Writes enough to make an adapter reclaim space: the first answer still reads the same.
            for (let i = 0; i < 300; i++) await s.put(bytes(`x${i % 10}`), i, new Uint8Array(4096).fill(i & 0xff));
            expect(first).toEqual(bytes('first'));
            expect(await refusal(() => getSharedNow(new Uint8Array(0)))).toBeInstanceOf(TypeError);
          },
        );

        it('keeps the token of the latest put', async () => {
          await s.put(bytes('k'), 10, bytes('v1'));
          await s.put(bytes('k'), 20, bytes('v2'));
          const all = await collect(s.scan());
          expect(all.map((e) => [text(e.key), e.token, text(e.record)])).toEqual([['k', 20, 'v2']]);
          expect(await collect(s.scan({ start: 0, end: 10 }))).toEqual([]);
        });

        it('stores an empty record', async () => {
          await s.put(bytes('k'), 1, new Uint8Array(0));
          expect(await s.get(bytes('k'))).toEqual(new Uint8Array(0));
        });

        it('treats keys as bytes (no string coercion)', async () => {
          await s.put(new Uint8Array([0]), 1, bytes('zero'));
          await s.put(new Uint8Array([0, 0]), 1, bytes('zerozero'));
          await s.put(new Uint8Array([0xff, 0xfe]), 1, bytes('high'));
          expect(await s.get(new Uint8Array([0]))).toEqual(bytes('zero'));
          expect(await s.get(new Uint8Array([0, 0]))).toEqual(bytes('zerozero'));
          expect(await s.get(new Uint8Array([0xff, 0xfe]))).toEqual(bytes('high'));
          expect(await s.get(new Uint8Array([0xff]))).toBeUndefined();
        });

        it('accepts keys that are views into a larger buffer', async () => {
          const buffer = bytes('xxkeyxx');
          await s.put(buffer.subarray(2, 5), 1, bytes('v'));
          expect(await s.get(bytes('key'))).toEqual(bytes('v'));
          const [entry] = await collect(s.scan());
          expect(entry?.key).toEqual(bytes('key'));
        });

        it('copies bytes on the way in and out', async () => {
          const key = bytes('k');
          const record = bytes('record');
          await s.put(key, 1, record);
          record[0] = 0;
          key[0] = 0;
          const got = (await s.get(bytes('k'))) as Uint8Array;
          expect(got).toEqual(bytes('record'));
          got[0] = 0;
          expect(await s.get(bytes('k'))).toEqual(bytes('record'));
          const [entry] = await collect(s.scan());
          (entry as StoredEntry).record[0] = 0;
          (entry as StoredEntry).key[0] = 0;
          expect(await s.get(bytes('k'))).toEqual(bytes('record'));
          const meta = bytes('m');
          await s.setMeta('m', meta);
          meta[0] = 0;
          const gotMeta = (await s.getMeta('m')) as Uint8Array;
          expect(gotMeta).toEqual(bytes('m'));
          gotMeta[0] = 0;
          expect(await s.getMeta('m')).toEqual(bytes('m'));
          const h = hint('h', 'n', 1);
          await s.putHint(h);
          h.key[0] = 0;
          h.record[0] = 0;
          expect(await collect(s.hints())).toEqual([hint('h', 'n', 1)]);
        });

        it('stores a large value (1 MB)', async () => {
          const big = new Uint8Array(1024 * 1024);
          for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
          await s.put(bytes('big'), 9, big);
          const got = await s.get(bytes('big'));
          expect(got).toBeInstanceOf(Uint8Array);
          expect(got?.length).toBe(big.length);
          expect(Buffer.compare(got as Uint8Array, big), 'large value differs').toBe(0);
        });

        it('rejects malformed keys, tokens and records with TypeError/RangeError and stores nothing', async () => {
          const v = bytes('v');
          await rejectsType(s.put('k' as never, 1, v), TypeError, 'put with a string key');
          await rejectsType(s.put(new Uint8Array(0), 1, v), TypeError, 'put with an empty key');
          await rejectsType(s.put(bytes('k'), -1, v), RangeError, 'put with token -1');
          await rejectsType(s.put(bytes('k'), 1.5, v), RangeError, 'put with token 1.5');
          await rejectsType(s.put(bytes('k'), 2 ** 32, v), RangeError, 'put with token 2^32');
          await rejectsType(s.put(bytes('k'), Number.NaN, v), RangeError, 'put with token NaN');
          await rejectsType(s.put(bytes('k'), '1' as never, v), TypeError, 'put with token "1"');
          await rejectsType(s.put(bytes('k'), 1, 'v' as never), TypeError, 'put with a string record');
          await rejectsType(s.get(new Uint8Array(0)), TypeError, 'get with an empty key');
          await rejectsType(s.get([1, 2] as never), TypeError, 'get with an array key');
          await rejectsType(s.delete(undefined as never), TypeError, 'delete without a key');
          expect(await collect(s.scan())).toEqual([]);
        });
      });

      describe('parallel calls', () => {
        it('handles 100 parallel puts then 100 parallel gets', async () => {
          await Promise.all(Array.from({ length: 100 }, (_, i) => s.put(bytes(`k${i}`), i * 1000, bytes(`v${i}`))));
          const got = await Promise.all(Array.from({ length: 100 }, (_, i) => s.get(bytes(`k${i}`))));
          got.forEach((v, i) => expect(v).toEqual(bytes(`v${i}`)));
          expect((await collect(s.scan())).length).toBe(100);
        });

        it('streams a scan over 2,000 entries: every one once, in range, and stops early on break', async () => {
          const count = 2000;
          const tokenOf = (i: number): number => (Math.imul(i + 1, 0x9e3779b1) >>> 0);
          for (let i = 0; i < count; i += 100) {
            await Promise.all(
              Array.from({ length: 100 }, (_, j) => s.put(bytes(`big${i + j}`), tokenOf(i + j), bytes(`r${i + j}`))),
            );
          }
          // Counted as they stream (order is the orderedScan cases' business).
          let n = 0;
          const seen = new Set<string>();
          for await (const e of s.scan()) {
            n++;
            seen.add(text(e.key));
          }
          expect(n).toBe(count);
          expect(seen.size).toBe(count);
          const range = { start: 0x40000000, end: 0x10000000 }; // wraps: three quarters of the ring
          const want = Array.from({ length: count }, (_, i) => tokenOf(i)).filter((t) => t > range.start || t <= range.end);
          const got = (await collect(s.scan(range))).map((e) => e.token);
          expect(got.length).toBe(want.length);
          expect(got.every((t) => t > range.start || t <= range.end)).toBe(true);
          let taken = 0;
          for await (const _ of s.scan()) if (++taken === 10) break;
          expect(taken).toBe(10);
        });

        it('handles 100 parallel mixed calls', async () => {
          for (let i = 0; i < 50; i++) await s.put(bytes(`old${i}`), i, bytes('old'));
          const calls: Promise<unknown>[] = [];
          for (let i = 0; i < 20; i++) {
            calls.push(s.put(bytes(`new${i}`), 1000 + i, bytes(`n${i}`)));
            calls.push(s.delete(bytes(`old${i}`)));
            calls.push(s.get(bytes(`old${i + 20}`)));
            calls.push(i % 2 === 0 ? s.setMeta(`m${i}`, bytes(`${i}`)) : s.putHint(hint(`h${i}`, 'n', i)));
            calls.push(collect(s.scan({ start: 0, end: 2000 })));
          }
          await Promise.all(calls);
          const keys = (await collect(s.scan())).map((e) => text(e.key)).sort();
          const want = [
            ...Array.from({ length: 20 }, (_, i) => `new${i}`),
            ...Array.from({ length: 30 }, (_, i) => `old${i + 20}`),
          ].sort();
          expect(keys).toEqual(want);
          expect((await collect(s.hints())).length).toBe(10);
          expect(await s.getMeta('m18')).toEqual(bytes('18'));
        });
      });

      describe('scan', () => {
        const tokens = [0, 1, 100, 200, 300, 0xffffffff];
        beforeEach(async () => {
          for (const t of tokens) await s.put(bytes(`t${t}`), t, bytes(`r${t}`));
        });
        const tokensOf = (es: StoredEntry[]): number[] => es.map((e) => e.token);
        const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
        const scanned = async (start: number, end: number): Promise<number[]> =>
          sorted(tokensOf(await collect(s.scan({ start, end }))));

        it('yields entries with key, token and record', async () => {
          const all = await collect(s.scan());
          expect(all.length).toBe(tokens.length);
          const e = all.find((x) => x.token === 100) as StoredEntry;
          expect(e.key).toEqual(bytes('t100'));
          expect(e.record).toEqual(bytes('r100'));
        });

        when(capabilities.orderedScan)('orderedScan: orders by token, then key bytes', async () => {
          await s.put(bytes('b-same'), 150, bytes('x'));
          await s.put(bytes('a-same'), 150, bytes('x'));
          await s.put(new Uint8Array([0x61]), 150, bytes('x')); // 'a', a prefix of 'a-same'
          await s.delete(bytes('t200'));
          await s.put(bytes('t200'), 200, bytes('back'));
          const all = await collect(s.scan());
          expect(tokensOf(all)).toEqual([0, 1, 100, 150, 150, 150, 200, 300, 0xffffffff]);
          const same = all.filter((e) => e.token === 150).map((e) => text(e.key));
          expect(same).toEqual(['a', 'a-same', 'b-same']);
        });

        when(capabilities.orderedScan)('orderedScan: a wrapping range comes in ascending token order', async () => {
          expect(tokensOf(await collect(s.scan({ start: 200, end: 1 })))).toEqual([0, 1, 300, 0xffffffff]);
          expect(tokensOf(await collect(s.scan({ start: 1, end: 300 })))).toEqual([100, 200, 300]);
        });

        it('uses half-open ranges (start, end]', async () => {
          expect(await scanned(1, 200)).toEqual([100, 200]);
          expect(await scanned(0, 1)).toEqual([1]);
          expect(await scanned(100, 101)).toEqual([]);
          expect(await scanned(99, 100)).toEqual([100]);
          expect(await scanned(0, 0xffffffff)).toEqual([1, 100, 200, 300, 0xffffffff]);
          expect(await scanned(0xfffffffe, 0xffffffff)).toEqual([0xffffffff]);
        });

        it('wraps around when start > end', async () => {
          expect(await scanned(200, 1)).toEqual([0, 1, 300, 0xffffffff]);
          expect(await scanned(0xffffffff, 0)).toEqual([0]);
          expect(await scanned(300, 0)).toEqual([0, 0xffffffff]);
          expect(await scanned(0xffffffff, 99)).toEqual([0, 1]);
        });

        it('treats start === end as the whole ring', async () => {
          expect(await scanned(100, 100)).toEqual(tokens);
          expect(await scanned(0, 0)).toEqual(tokens);
          expect(await scanned(0xffffffff, 0xffffffff)).toEqual(tokens);
        });

        it('splits the ring exactly: adjacent ranges see every entry once', async () => {
          const bounds = [0, 50, 200, 0xfffffff0];
          const seen: number[] = [];
          for (let i = 0; i < bounds.length; i++) {
            const start = bounds[i] as number;
            const end = bounds[(i + 1) % bounds.length] as number;
            seen.push(...tokensOf(await collect(s.scan({ start, end }))));
          }
          expect(sorted(seen)).toEqual(tokens);
        });

        it('rejects a malformed range with TypeError/RangeError', async () => {
          await rejectsType(collect(s.scan({ start: 1.5, end: 2 })), RangeError, 'scan from 1.5');
          await rejectsType(collect(s.scan({ start: 0, end: 2 ** 32 })), RangeError, 'scan to 2^32');
          await rejectsType(collect(s.scan({ start: -1, end: 2 })), RangeError, 'scan from -1');
          await rejectsType(collect(s.scan({ start: 0 } as never)), TypeError, 'scan without an end');
          await rejectsType(collect(s.scan(7 as never)), TypeError, 'scan over a number');
        });

        it('streams: breaking out of for await releases the iterator', async () => {
          let n = 0;
          for await (const _ of s.scan()) {
            if (++n === 2) break;
          }
          expect(n).toBe(2);
          const it = s.scan()[Symbol.asyncIterator]();
          expect((await it.next()).done).toBe(false);
          expect(typeof it.return, 'scan iterators must have return() (for await calls it on break)').toBe('function');
          expect((await (it.return as () => Promise<IteratorResult<StoredEntry>>)()).done).toBe(true);
          expect((await it.next()).done, 'a returned iterator stays done').toBe(true);
          // Released iterators neither block writes nor close().
          await s.put(bytes('after'), 5, bytes('x'));
          await s.close();
          await s.open();
          expect((await collect(s.scan())).length).toBe(tokens.length + 1);
        });

        it('tolerates writes and deletes during iteration', async () => {
          const seen: number[] = [];
          let i = 0;
          for await (const e of s.scan()) {
            seen.push(e.token);
            await s.put(bytes(`new${i}`), 50 + i, bytes('n'));
            await s.delete(bytes(`t${tokens[tokens.length - 1 - i]}`));
            i++;
          }
          // every entry present for the whole scan was seen exactly once
          expect(new Set(seen).size).toBe(seen.length);
          expect(seen).toContain(0);
          expect(await s.get(bytes('new0'))).toEqual(bytes('n'));
        });
      });

      describe('hints', () => {
        it('puts, lists by target and deletes', async () => {
          await s.putHint(hint('h1', 'a', 10));
          await s.putHint(hint('h2', 'b', 11));
          await s.putHint(hint('h3', 'a', 12));
          const all = await collect(s.hints());
          expect(all.map((h) => h.id)).toEqual(['h1', 'h2', 'h3']);
          expect(all[0]).toEqual(hint('h1', 'a', 10));
          expect((await collect(s.hints('a'))).map((h) => h.id)).toEqual(['h1', 'h3']);
          expect(await collect(s.hints('nobody'))).toEqual([]);
          await s.deleteHint('h1');
          await s.deleteHint('missing');
          expect((await collect(s.hints('a'))).map((h) => h.id)).toEqual(['h3']);
        });

        it('lists oldest first (createdAt, then insertion order) and replaces by id', async () => {
          await s.putHint(hint('late', 'a', 30));
          await s.putHint(hint('early', 'a', 10));
          await s.putHint(hint('tie1', 'a', 20));
          await s.putHint(hint('tie2', 'a', 20));
          expect((await collect(s.hints())).map((h) => h.id)).toEqual(['early', 'tie1', 'tie2', 'late']);
          await s.putHint({ ...hint('late', 'b', 5), record: bytes('replaced') });
          const all = await collect(s.hints());
          expect(all.map((h) => h.id)).toEqual(['late', 'early', 'tie1', 'tie2']);
          expect(all[0]?.record).toEqual(bytes('replaced'));
          expect(all[0]?.target).toBe('b');
          expect((await collect(s.hints('a'))).map((h) => h.id)).toEqual(['early', 'tie1', 'tie2']);
          expect((await collect(s.hints('b'))).map((h) => h.id)).toEqual(['late']);
        });

        it('keeps hints apart from records', async () => {
          await s.putHint(hint('h', 'n', 1));
          expect(await collect(s.scan())).toEqual([]);
          expect(await s.get(bytes('hk-h'))).toBeUndefined();
          await s.put(bytes('hk-h'), 7, bytes('own'));
          await s.delete(bytes('hk-h'));
          expect((await collect(s.hints())).map((h) => h.id)).toEqual(['h']);
        });

        it('rejects malformed hints, targets and ids with TypeError/RangeError', async () => {
          const good = hint('h', 'n', 1);
          await rejectsType(s.putHint(undefined as never), TypeError, 'putHint without a hint');
          await rejectsType(s.putHint({ ...good, id: '' }), TypeError, 'putHint with an empty id');
          await rejectsType(s.putHint({ ...good, id: 7 as never }), TypeError, 'putHint with a numeric id');
          await rejectsType(s.putHint({ ...good, target: '' }), TypeError, 'putHint with an empty target');
          await rejectsType(s.putHint({ ...good, key: new Uint8Array(0) }), TypeError, 'putHint with an empty key');
          await rejectsType(s.putHint({ ...good, token: -5 }), RangeError, 'putHint with token -5');
          await rejectsType(s.putHint({ ...good, record: 'r' as never }), TypeError, 'putHint with a string record');
          await rejectsType(s.putHint({ ...good, createdAt: Number.NaN }), RangeError, 'putHint with createdAt NaN');
          await rejectsType(collect(s.hints('')), TypeError, 'hints for an empty target');
          await rejectsType(s.deleteHint('' as never), TypeError, 'deleteHint with an empty id');
          expect(await collect(s.hints())).toEqual([]);
        });
      });

      describe('metadata', () => {
        it('gets and sets named values', async () => {
          expect(await s.getMeta('tokens')).toBeUndefined();
          await s.setMeta('tokens', bytes('1,2,3'));
          await s.setMeta('incarnation', bytes('7'));
          expect(await s.getMeta('tokens')).toEqual(bytes('1,2,3'));
          await s.setMeta('tokens', bytes('4'));
          expect(await s.getMeta('tokens')).toEqual(bytes('4'));
          expect(await s.getMeta('incarnation')).toEqual(bytes('7'));
          await s.setMeta('empty', new Uint8Array(0));
          expect(await s.getMeta('empty')).toEqual(new Uint8Array(0));
        });

        it('keeps metadata apart from records and hints', async () => {
          await s.setMeta('k', bytes('meta'));
          expect(await s.get(bytes('k'))).toBeUndefined();
          expect(await collect(s.scan())).toEqual([]);
          expect(await collect(s.hints())).toEqual([]);
          await s.put(bytes('k'), 1, bytes('record'));
          expect(await s.getMeta('k')).toEqual(bytes('meta'));
        });

        it('rejects malformed names and values with TypeError', async () => {
          await rejectsType(s.getMeta('' as never), TypeError, 'getMeta with an empty name');
          await rejectsType(s.getMeta(1 as never), TypeError, 'getMeta with a numeric name');
          await rejectsType(s.setMeta('', bytes('v')), TypeError, 'setMeta with an empty name');
          await rejectsType(s.setMeta('m', 'v' as never), TypeError, 'setMeta with a string value');
          expect(await s.getMeta('m')).toBeUndefined();
        });
      });

      describe('abort', () => {
        it('rejects pre-aborted calls with KV_ABORTED (name AbortError) and does nothing', async () => {
          const signal = AbortSignal.abort();
          const k = bytes('k');
          const err = await rejectsCode(s.get(k, { signal }), 'KV_ABORTED', 'get');
          expect((err as Error).name).toBe('AbortError');
          await rejectsCode(s.put(k, 1, k, { signal }), 'KV_ABORTED', 'put');
          await rejectsCode(s.delete(k, { signal }), 'KV_ABORTED', 'delete');
          await rejectsCode(collect(s.scan(undefined, { signal })), 'KV_ABORTED', 'scan');
          await rejectsCode(s.putHint(hint('h', 't', 1), { signal }), 'KV_ABORTED', 'putHint');
          await rejectsCode(collect(s.hints(undefined, { signal })), 'KV_ABORTED', 'hints');
          await rejectsCode(s.deleteHint('h', { signal }), 'KV_ABORTED', 'deleteHint');
          await rejectsCode(s.getMeta('m', { signal }), 'KV_ABORTED', 'getMeta');
          await rejectsCode(s.setMeta('m', k, { signal }), 'KV_ABORTED', 'setMeta');
          expect(await s.get(k)).toBeUndefined(); // the aborted put did nothing
          expect(await collect(s.hints())).toEqual([]);
          expect(await s.getMeta('m')).toBeUndefined();
        });

        it('serves calls whose signal has not fired', async () => {
          const { signal } = new AbortController();
          await s.put(bytes('k'), 1, bytes('v'), { signal });
          expect(await s.get(bytes('k'), { signal })).toEqual(bytes('v'));
          expect((await collect(s.scan(undefined, { signal }))).length).toBe(1);
        });

        it('stops a scan when the signal fires mid-iteration', async () => {
          for (let i = 0; i < 10; i++) await s.put(bytes(`k${i}`), i, bytes('v'));
          const ac = new AbortController();
          let n = 0;
          await rejectsCode(
            (async () => {
              for await (const _ of s.scan(undefined, { signal: ac.signal })) {
                if (++n === 3) ac.abort();
              }
            })(),
            'KV_ABORTED',
            'an aborted scan',
          );
          expect(n).toBe(3);
        });

        it('stops a hints iteration when the signal fires mid-iteration', async () => {
          for (let i = 0; i < 10; i++) await s.putHint(hint(`h${i}`, 'n', i));
          const ac = new AbortController();
          let n = 0;
          await rejectsCode(
            (async () => {
              for await (const _ of s.hints('n', { signal: ac.signal })) {
                if (++n === 2) ac.abort();
              }
            })(),
            'KV_ABORTED',
            'an aborted hints iteration',
          );
          expect(n).toBe(2);
        });
      });
    });
  });
}
