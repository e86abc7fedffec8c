import { resolveTestApi, type ComplianceTestApi } from './test-api.js';
import type { StorageAdapter, StoredEntry, StoredHint } from '../storage/types.js';

const enc = new TextEncoder();
const bytes = (s: string): Uint8Array => enc.encode(s);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: string, expect: ComplianceTestApi['expect']): Promise<unknown> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a rejection with ${code}`).toBeInstanceOf(Error);
  expect((err as { code?: unknown }).code).toBe(code);
  return err;
}

function hint(id: string, target: string, createdAt: number): StoredHint {
  return { id, target, key: bytes(`hk-${id}`), token: 7, record: bytes(`hr-${id}`), createdAt };
}

/**
 * Registers the `StorageAdapter` compliance suite (with the test framework's `describe`/`it`: see {@link ComplianceTestApi})
 * for an implementation. `setup` returns a fresh, unopened adapter for each
 * case; the suite opens it. `teardown` runs after each case (the suite has
 * already closed the adapter).
 *
 * @example
 * ```ts
 * import { storageCompliance } from 'quorumkv/testing';
 * storageCompliance('MyStorage', () => new MyStorage({ path: tmp() }));
 * ```
 */
export function storageCompliance(
  name: string,
  setup: () => StorageAdapter | Promise<StorageAdapter>,
  teardown?: (storage: StorageAdapter) => Promise<void>,
  api?: ComplianceTestApi,
): void {
  const { describe, it, beforeEach, afterEach, expect } = resolveTestApi(api, 'storageCompliance');
  const expectCode = (p: Promise<unknown>, code: string): Promise<unknown> => rejectsWith(p, code, expect);
  describe(`StorageAdapter compliance: ${name}`, () => {
    let s: StorageAdapter;
    beforeEach(async () => {
      s = await setup();
      await s.open();
    });
    afterEach(async () => {
      await s.close();
      if (teardown) await teardown(s);
    });

    describe('lifecycle', () => {
      it('open and close are idempotent and report status', async () => {
        expect(s.status).toBe('open');
        await s.open();
        expect(s.status).toBe('open');
        await Promise.all([s.close(), s.close()]);
        expect(s.status).toBe('closed');
        await s.close();
        await s.open();
        expect(s.status).toBe('open');
      });

      it('rejects every call after close with KV_NOT_STARTED', async () => {
        await s.close();
        const k = bytes('k');
        await expectCode(s.get(k), 'KV_NOT_STARTED');
        await expectCode(s.put(k, 1, k), 'KV_NOT_STARTED');
        await expectCode(s.delete(k), 'KV_NOT_STARTED');
        await expectCode(collect(s.scan()), 'KV_NOT_STARTED');
        await expectCode(s.putHint(hint('h', 't', 1)), 'KV_NOT_STARTED');
        await expectCode(collect(s.hints()), 'KV_NOT_STARTED');
        await expectCode(s.deleteHint('h'), 'KV_NOT_STARTED');
        await expectCode(s.getMeta('m'), 'KV_NOT_STARTED');
        await expectCode(s.setMeta('m', k), 'KV_NOT_STARTED');
      });

      it('keeps its data across close and open', async () => {
        await s.put(bytes('a'), 5, bytes('ra'));
        await s.putHint(hint('h1', 'n1', 10));
        await s.setMeta('incarnation', bytes('3'));
        await s.close();
        await s.open();
        expect(await s.get(bytes('a'))).toEqual(bytes('ra'));
        expect((await collect(s.hints())).map((h) => h.id)).toEqual(['h1']);
        expect(await s.getMeta('incarnation')).toEqual(bytes('3'));
      });
    });

    describe('records', () => {
      it('gets, puts, replaces and deletes', async () => {
        const k = bytes('key');
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

      it('treats keys as bytes (no string coercion)', async () => {
        await s.put(new Uint8Array([0]), 1, bytes('zero'));
        await s.put(new Uint8Array([0, 0]), 1, bytes('zerozero'));
        await s.put(new Uint8Array([0xff, 0xfe]), 1, bytes('high'));
        expect(await s.get(new Uint8Array([0]))).toEqual(bytes('zero'));
        expect(await s.get(new Uint8Array([0, 0]))).toEqual(bytes('zerozero'));
        expect(await s.get(new Uint8Array([0xff, 0xfe]))).toEqual(bytes('high'));
        expect(await s.get(new Uint8Array([0xff]))).toBeUndefined();
      });

      it('copies bytes on the way in and out', async () => {
        const key = bytes('k');
        const record = bytes('record');
        await s.put(key, 1, record);
        record[0] = 0;
        key[0] = 0;
        const got = (await s.get(bytes('k')))!;
        expect(got).toEqual(bytes('record'));
        got[0] = 0;
        expect(await s.get(bytes('k'))).toEqual(bytes('record'));
        const [entry] = await collect(s.scan());
        entry!.record[0] = 0;
        entry!.key[0] = 0;
        expect(await s.get(bytes('k'))).toEqual(bytes('record'));
        const meta = bytes('m');
        await s.setMeta('m', meta);
        meta[0] = 0;
        expect(await s.getMeta('m')).toEqual(bytes('m'));
      });

      it('stores a large value (1 MB)', async () => {
        const big = new Uint8Array(1024 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
        await s.put(bytes('big'), 9, big);
        const got = await s.get(bytes('big'));
        expect(got).toBeInstanceOf(Uint8Array);
        expect(Buffer.compare(got!, big), 'large value differs').toBe(0);
      });

      it('handles 100 parallel puts then gets', async () => {
        await Promise.all(Array.from({ length: 100 }, (_, i) => s.put(bytes(`k${i}`), i * 1000, bytes(`v${i}`))));
        const got = await Promise.all(Array.from({ length: 100 }, (_, i) => s.get(bytes(`k${i}`))));
        got.forEach((v, i) => expect(v).toEqual(bytes(`v${i}`)));
        expect((await collect(s.scan())).length).toBe(100);
      });
    });

    describe('scan', () => {
      const tokens = [0, 1, 100, 200, 300, 0xffffffff];
      beforeEach(async () => {
        for (const t of tokens) await s.put(bytes(`t${t}`), t, bytes(`r${t}`));
      });
      const tokensOf = (es: StoredEntry[]): number[] => es.map((e) => e.token);

      it('yields entries with key, token and record', async () => {
        const all = await collect(s.scan());
        const e = all.find((x) => x.token === 100)!;
        expect(e.key).toEqual(bytes('t100'));
        expect(e.record).toEqual(bytes('r100'));
      });

      it('orders by token, then key bytes (if orderedScan)', async () => {
        if (!s.capabilities.orderedScan) return;
        await s.put(bytes('b-same'), 150, bytes('x'));
        await s.put(bytes('a-same'), 150, bytes('x'));
        const all = await collect(s.scan());
        expect(tokensOf(all)).toEqual([0, 1, 100, 150, 150, 200, 300, 0xffffffff]);
        const same = all.filter((e) => e.token === 150).map((e) => new TextDecoder().decode(e.key));
        expect(same).toEqual(['a-same', 'b-same']);
      });

      const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
      it('uses half-open ranges (start, end]', async () => {
        expect(sorted(tokensOf(await collect(s.scan({ start: 1, end: 200 }))))).toEqual([100, 200]);
        expect(sorted(tokensOf(await collect(s.scan({ start: 0, end: 1 }))))).toEqual([1]);
        expect(sorted(tokensOf(await collect(s.scan({ start: 100, end: 101 }))))).toEqual([]);
      });

      it('wraps around when start > end', async () => {
        expect(sorted(tokensOf(await collect(s.scan({ start: 200, end: 1 }))))).toEqual([0, 1, 300, 0xffffffff]);
        expect(sorted(tokensOf(await collect(s.scan({ start: 0xffffffff, end: 0 }))))).toEqual([0]);
      });

      it('treats start === end as the whole ring', async () => {
        expect(sorted(tokensOf(await collect(s.scan({ start: 100, end: 100 }))))).toEqual(tokens);
        expect(sorted(tokensOf(await collect(s.scan({ start: 0, end: 0 }))))).toEqual(tokens);
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
        expect(all[0]!.record).toEqual(bytes('replaced'));
        expect(all[0]!.target).toBe('b');
      });
    });

    describe('meta', () => {
      it('gets and sets named values', async () => {
        expect(await s.getMeta('tokens')).toBeUndefined();
        await s.setMeta('tokens', bytes('1,2,3'));
        await s.setMeta('incarnation', bytes('7'));
        expect(await s.getMeta('tokens')).toEqual(bytes('1,2,3'));
        await s.setMeta('tokens', bytes('4'));
        expect(await s.getMeta('tokens')).toEqual(bytes('4'));
        expect(await s.getMeta('incarnation')).toEqual(bytes('7'));
      });
    });

    describe('abort', () => {
      it('rejects pre-aborted calls with KV_ABORTED (name AbortError)', async () => {
        const signal = AbortSignal.abort();
        const k = bytes('k');
        const err = await expectCode(s.get(k, { signal }), 'KV_ABORTED');
        expect((err as Error).name).toBe('AbortError');
        await expectCode(s.put(k, 1, k, { signal }), 'KV_ABORTED');
        await expectCode(s.delete(k, { signal }), 'KV_ABORTED');
        await expectCode(collect(s.scan(undefined, { signal })), 'KV_ABORTED');
        await expectCode(s.putHint(hint('h', 't', 1), { signal }), 'KV_ABORTED');
        await expectCode(collect(s.hints(undefined, { signal })), 'KV_ABORTED');
        await expectCode(s.deleteHint('h', { signal }), 'KV_ABORTED');
        await expectCode(s.getMeta('m', { signal }), 'KV_ABORTED');
        await expectCode(s.setMeta('m', k, { signal }), 'KV_ABORTED');
        expect(await s.get(k)).toBeUndefined(); // the aborted put did nothing
      });

      it('stops a scan when the signal fires mid-iteration', async () => {
        for (let i = 0; i < 10; i++) await s.put(bytes(`k${i}`), i, bytes('v'));
        const ac = new AbortController();
        let n = 0;
        await expectCode(
          (async () => {
            for await (const _ of s.scan(undefined, { signal: ac.signal })) {
              if (++n === 3) ac.abort();
            }
          })(),
          'KV_ABORTED',
        );
        expect(n).toBe(3);
      });
    });
  });
}
