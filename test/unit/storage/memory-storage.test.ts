import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStorage, tokenInRange, type StoredEntry } from '../../../src/storage/index.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe('tokenInRange', () => {
  it('property: matches the definition of (start, end] with wrap-around', () => {
    fc.assert(
      fc.property(u32, u32, u32, (token, start, end) => {
        const expected =
          start === end ? true : start < end ? token > start && token <= end : token > start || token <= end;
        expect(tokenInRange(token, { start, end })).toBe(expected);
      }),
    );
  });

  it('property: (s, m] and (m, e] split (s, e] exactly when m lies inside it', () => {
    fc.assert(
      fc.property(u32, u32, u32, u32, (token, s, m, e) => {
        fc.pre(s !== e && tokenInRange(m, { start: s, end: e }) && m !== e);
        const whole = tokenInRange(token, { start: s, end: e });
        const parts = tokenInRange(token, { start: s, end: m }) || tokenInRange(token, { start: m, end: e });
        expect(parts).toBe(whole);
      }),
    );
  });
});

describe('MemoryStorage', () => {
  it('goes through opening/open/closing/closed', async () => {
    const s = new MemoryStorage();
    expect(s.status).toBe('closed');
    const opening = s.open();
    expect(s.status).toBe('opening');
    await opening;
    expect(s.status).toBe('open');
    const closing = s.close();
    expect(s.status).toBe('closing');
    await closing;
    expect(s.status).toBe('closed');
    expect(s.capabilities).toEqual({ durable: false, orderedScan: true });
  });

  it('rejects ill-typed arguments with TypeError/RangeError', async () => {
    const s = new MemoryStorage();
    await s.open();
    await expect(s.put('k' as never, 1, new Uint8Array())).rejects.toThrow(TypeError);
    await expect(s.put(new Uint8Array([1]), -1, new Uint8Array())).rejects.toThrow(RangeError);
    await expect(s.put(new Uint8Array([1]), 2 ** 32, new Uint8Array())).rejects.toThrow(RangeError);
    const it = s.scan({ start: 1.5, end: 2 })[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toThrow(RangeError);
  });

  it('preallocate: checked at construction, reserved at the first open, used by records, kept across close/open', async () => {
    expect(() => new MemoryStorage(null as never)).toThrow(/Expected `options` to be an object \{ preallocate\?, expectedKeys\? \}, got null/);
    expect(() => new MemoryStorage({ preallocate: '1GiB' as never })).toThrow(TypeError);
    for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
      expect(() => new MemoryStorage({ preallocate: bad })).toThrow(RangeError);
    }
    expect(() => new MemoryStorage({ preallocate: Number.MAX_SAFE_INTEGER })).toThrow(/at most the machine's memory \(\d+ bytes\), got 9007199254740991/);
    expect(new MemoryStorage({}).preallocatedBytesLeft).toBe(0);

    const s = new MemoryStorage({ preallocate: 1024 * 1024 });
    expect(s.preallocatedBytesLeft).toBe(0); // nothing until it opens
    await s.open();
    expect(s.preallocatedBytesLeft).toBe(1024 * 1024);
    const key = (i: number): Uint8Array => new TextEncoder().encode(`key-${i}`);
    const filled = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) & 0xff);
    // 2 MiB of records: the reservation, then memory allocated as needed.
    for (let i = 0; i < 512; i++) {
      await s.put(key(i), i, filled(4000, i));
      if (i === 200) expect(s.preallocatedBytesLeft).toBeLessThan(1024 * 1024);
    }
    expect(s.preallocatedBytesLeft).toBe(0);
    await s.close();
    await s.open(); // not reserved again: the data (and the memory it fills) is still here
    expect(s.preallocatedBytesLeft).toBe(0);
    for (let i = 0; i < 512; i++) expect(Buffer.compare((await s.get(key(i)))!, filled(4000, i))).toBe(0);
  });

  it('expectedKeys: checked at construction, room made at the first open, no growth of the index until that many keys, grows past it', async () => {
    expect(() => new MemoryStorage({ expectedKeys: '1M' as never })).toThrow(TypeError);
    for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 28 + 1]) {
      expect(() => new MemoryStorage({ expectedKeys: bad })).toThrow(RangeError);
    }
    expect(() => new MemoryStorage({ expectedKeys: -1 })).toThrow(/whole number of keys from 0 to 268435456, got number -1/);
    const plain = new MemoryStorage();
    await plain.open();
    const small = plain.keyCapacity;
    expect(small).toBeLessThan(100);

    const s = new MemoryStorage({ expectedKeys: 20_000 });
    expect(s.keyCapacity).toBe(small); // nothing until it opens
    expect(s.rowCapacity).toBe(plain.rowCapacity);
    await s.open();
    const room = s.keyCapacity;
    expect(room).toBeGreaterThanOrEqual(20_000);
    const rows = s.rowCapacity; // the row columns too
    expect(rows).toBeGreaterThanOrEqual(20_000);
    expect(plain.rowCapacity).toBeLessThan(100);
    const key = (i: number): Uint8Array => new TextEncoder().encode(`key-${i}`);
    const record = (i: number): Uint8Array => Uint8Array.of(i & 0xff, (i >> 8) & 0xff, 7);
    for (let i = 0; i < 20_000; i++) {
      s.putNow(key(i), (i * 2654435761) >>> 0, record(i));
      plain.putNow(key(i), (i * 2654435761) >>> 0, record(i));
    }
    expect(s.keyCapacity).toBe(room); // 20k keys: not one resize
    expect(s.rowCapacity).toBe(rows);
    expect(plain.keyCapacity).toBeGreaterThanOrEqual(20_000); // the same keys grew the plain one's index
    expect(plain.rowCapacity).toBeGreaterThanOrEqual(20_000);
    await s.close();
    await s.open(); // not done again, nothing lost
    expect(s.keyCapacity).toBe(room);
    expect(s.rowCapacity).toBe(rows);
    for (let i = 0; i < 20_000; i += 997) expect([...(await s.get(key(i)))!]).toEqual([...record(i)]);
    let scanned = 0;
    for await (const _ of s.scan({ start: 0, end: 0 })) scanned++;
    expect(scanned).toBe(20_000);
    // Past it, the index grows as it would have.
    for (let i = 20_000; i < room + 1; i++) s.putNow(key(i), i >>> 0, record(i));
    expect(s.keyCapacity).toBeGreaterThan(room);
    expect([...(await s.get(key(room)))!]).toEqual([...record(room)]);
    await s.close();
    await plain.close();
  });

  it('model test: matches a Map under random operations, scans interleaved', async () => {
    const KEYS = 8;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            // Few keys and few tokens: overwrites under the same token (the usual case: a
            // key's token is its hash), token changes and token ties are all common.
            {
              weight: 6,
              arbitrary: fc.record({
                op: fc.constant('put' as const),
                k: fc.nat(KEYS),
                t: fc.oneof(fc.constant('own' as const), fc.constant('own' as const), fc.nat(8), u32),
                v: fc.uint8Array({ maxLength: 4 }),
              }),
            },
            { weight: 3, arbitrary: fc.record({ op: fc.constant('del' as const), k: fc.nat(KEYS) }) },
            {
              weight: 1,
              arbitrary: fc.record({
                op: fc.constant('scan' as const),
                start: fc.oneof(fc.nat(8), u32),
                end: fc.oneof(fc.nat(8), u32),
              }),
            },
            { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
          ),
          { maxLength: 80, size: 'max' },
        ),
        async (ops) => {
          const s = new MemoryStorage();
          await s.open();
          const model = new Map<number, { t: number; v: Uint8Array }>();
          const check = async (start: number, end: number): Promise<void> => {
            const got: [number, number, number[]][] = [];
            for await (const e of s.scan({ start, end })) got.push([e.token, e.key[0]!, [...e.record]]);
            const want = [...model]
              .filter(([, r]) => tokenInRange(r.t, { start, end }))
              .map(([k, r]): [number, number, number[]] => [r.t, k, [...r.v]])
              .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
            expect(got).toEqual(want);
          };
          for (const o of ops) {
            if (o.op === 'put') {
              const t = o.t === 'own' ? o.k * 3 : o.t;
              await s.put(Uint8Array.of(o.k), t, o.v);
              model.set(o.k, { t, v: o.v });
            } else if (o.op === 'del') {
              await s.delete(Uint8Array.of(o.k));
              model.delete(o.k);
            } else if (o.op === 'scan') {
              await check(o.start, o.end);
            } else {
              await s.close();
              await s.open();
            }
          }
          for (let k = 0; k <= KEYS; k++) expect(await s.get(Uint8Array.of(k))).toEqual(model.get(k)?.v);
          await check(0, 0);
          await s.close();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('model test at scale: index merges (past 1024 pending or dead rows) keep scans exact', async () => {
    const KEYS = 3000;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            { weight: 40, arbitrary: fc.record({ op: fc.constant('put' as const), k: fc.nat(KEYS), own: fc.boolean(), v: fc.nat(255) }) },
            { weight: 25, arbitrary: fc.record({ op: fc.constant('del' as const), k: fc.nat(KEYS) }) },
            { weight: 1, arbitrary: fc.record({ op: fc.constant('scan' as const), start: u32, end: u32 }) },
          ),
          { minLength: 3000, maxLength: 6000 },
        ),
        async (ops) => {
          const s = new MemoryStorage();
          await s.open();
          const key = (k: number): Uint8Array => Uint8Array.of(k >> 8, k & 0xff);
          const model = new Map<number, { t: number; v: number }>();
          const check = async (start: number, end: number): Promise<void> => {
            const got: number[] = [];
            for await (const e of s.scan({ start, end })) got.push(e.token, (e.key[0]! << 8) | e.key[1]!, e.record[0]!);
            const want = [...model]
              .filter(([, r]) => tokenInRange(r.t, { start, end }))
              .sort((x, y) => x[1].t - y[1].t || x[0] - y[0])
              .flatMap(([k, r]) => [r.t, k, r.v]);
            expect(got).toEqual(want);
          };
          for (const o of ops) {
            if (o.op === 'put') {
              // own: the key's fixed token (an overwrite in place); else a fresh token (a move)
              const t = o.own ? (Math.imul(o.k + 1, 2654435761) >>> 0) : (Math.imul(o.v + 7, o.k + 13) >>> 0);
              await s.put(key(o.k), t, Uint8Array.of(o.v));
              model.set(o.k, { t, v: o.v });
            } else if (o.op === 'del') {
              await s.delete(key(o.k));
              model.delete(o.k);
            } else {
              await check(o.start, o.end);
            }
          }
          await check(0, 0);
        },
      ),
      // No shrinking: a counterexample of thousands of operations would take minutes to shrink.
      { numRuns: 6, endOnFailure: true },
    );
  });

  it('rows past several column chunks (16,384 rows each): gets, scans, id reuse and compaction stay exact', async () => {
    // 40,000 keys cross two chunk boundaries; deletes free ids that new keys reuse,
    // moves to new tokens leave dead rows, and same-token overwrites with larger
    // records make the arena compact (moving every live row's bytes).
    const s = new MemoryStorage();
    await s.open();
    const key = (k: number): Uint8Array => Uint8Array.of(k >> 16, (k >> 8) & 0xff, k & 0xff);
    const tokenOf = (k: number, round: number): number => Math.imul(k + 1 + round * 7919, 2654435761) >>> 0;
    const model = new Map<number, { t: number; v: Uint8Array }>();
    const put = (k: number, round: number, size: number): void => {
      const v = new Uint8Array(size).fill((k + round) & 0xff);
      const t = tokenOf(k, round);
      s.putNow(key(k), t, v);
      model.set(k, { t, v });
    };
    for (let k = 0; k < 40_000; k++) put(k, 0, 4);
    for (let k = 0; k < 40_000; k += 3) {
      await s.delete(key(k));
      model.delete(k);
    }
    for (let k = 40_000; k < 46_000; k++) put(k, 0, 4); // reuse freed ids
    for (let k = 1; k < 46_000; k += 5) if (model.has(k)) put(k, 1, 4); // a new token: the old row dies in the index
    // Same token, larger, four times over: the garbage passes the live bytes and the arena compacts.
    for (let pass = 0; pass < 4; pass++) {
      for (let k = 2; k < 46_000; k += 7) if (model.has(k)) put(k, model.get(k)!.t === tokenOf(k, 0) ? 0 : 1, 600 + pass);
    }
    for (const [k, { v }] of model) expect(Buffer.compare((await s.get(key(k)))!, v)).toBe(0);
    for (let k = 0; k < 40_000; k += 3) expect(await s.get(key(k))).toBeUndefined();
    const got: number[] = [];
    for await (const e of s.scan({ start: 0, end: 0 })) {
      const k = (e.key[0]! << 16) | (e.key[1]! << 8) | e.key[2]!;
      expect(e.token).toBe(model.get(k)?.t);
      expect(Buffer.compare(e.record, model.get(k)!.v)).toBe(0);
      got.push(k);
    }
    const want = [...model].sort((x, y) => x[1].t - y[1].t || x[0] - y[0]).map(([k]) => k);
    expect(got).toEqual(want);
  });

  it('rows name their slab by number: a slab is let go once no row is left in it (overwrites, deletes, compaction, large records)', async () => {
    const s = new MemoryStorage();
    await s.open();
    const key = (k: number): Uint8Array => Uint8Array.of(k >> 8, k & 0xff, 7);
    expect(s.rowSlabs).toBe(0);
    // ~1 KB rows: a 256 KiB slab holds ~250 of them; 2,000 rows fill ~8 slabs.
    for (let k = 0; k < 2_000; k++) s.putNow(key(k), k, new Uint8Array(1_000).fill(k & 0xff));
    const filled = s.rowSlabs;
    expect(filled).toBeGreaterThanOrEqual(7);
    expect(filled).toBeLessThanOrEqual(9);
    // Large records (over 32 KiB) get a buffer each, counted as a slab of their own.
    for (let k = 2_000; k < 2_005; k++) s.putNow(key(k), k, new Uint8Array(40_000).fill(1));
    expect(s.rowSlabs).toBe(filled + 5);
    for (let k = 2_000; k < 2_005; k++) await s.delete(key(k));
    expect(s.rowSlabs).toBe(filled);
    // Same-token overwrites move rows to the newest slabs and the arena compacts: old slabs are let go
    // (three rounds wrote 4x the bytes; without letting go, 4x the slabs would be named).
    for (let round = 0; round < 3; round++) for (let k = 0; k < 2_000; k++) s.putNow(key(k), k, new Uint8Array(1_000).fill((k + round) & 0xff));
    expect(s.rowSlabs).toBeLessThanOrEqual(2 * filled + 1);
    for (let k = 0; k < 2_000; k++) expect((await s.get(key(k)))![0]).toBe((k + 2) & 0xff);
    for (let k = 0; k < 2_000; k++) await s.delete(key(k));
    expect(s.rowSlabs).toBe(0);
    s.putNow(key(1), 1, new Uint8Array(10).fill(3));
    expect(s.rowSlabs).toBe(1);
    expect([...(await s.get(key(1)))!]).toEqual(new Array(10).fill(3));
  });

  it('scans correctly after many deletes without a scan in between (dead rows merged away)', async () => {
    const s = new MemoryStorage();
    await s.open();
    const key = (i: number): Uint8Array => new TextEncoder().encode(`k${i}`);
    for (let i = 0; i < 3000; i++) await s.put(key(i), (i * 2654435761) >>> 0, Uint8Array.of(i & 0xff));
    let n = 0;
    for await (const _ of s.scan()) n++;
    expect(n).toBe(3000);
    for (let i = 0; i < 2500; i++) await s.delete(key(i));
    for (let i = 0; i < 100; i++) await s.put(key(i), i, Uint8Array.of(1));
    const tokens: number[] = [];
    for await (const e of s.scan()) tokens.push(e.token);
    expect(tokens.length).toBe(600);
    expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
    expect(tokens.slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('scans keys under one token in key-byte order, a key before the longer keys it starts', async () => {
    const s = new MemoryStorage();
    await s.open();
    const names = ['abc', 'b', 'ab', 'a', 'abd', 'aa'];
    for (const name of names) await s.put(new TextEncoder().encode(name), 7, Uint8Array.of(name.length));
    const seen: string[] = [];
    for await (const e of s.scan({ start: 0, end: 100 })) seen.push(new TextDecoder().decode(e.key));
    expect(seen).toEqual(['a', 'aa', 'ab', 'abc', 'abd', 'b']);
  });

  it('property: thousands of new keys (sorted by token with a radix sort) scan in (token, key bytes) order, tokens shared or not', async () => {
    // Tokens over the whole 32-bit range (both radix passes matter) or from a
    // few values (long runs of one token, ordered by key bytes); several
    // scans, so later keys merge into an index that already holds rows.
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 4 }), fc.oneof(fc.nat({ max: 0xffff_ffff }), fc.constantFrom(0, 1, 0x1_0000, 0xffff_ffff))), {
          minLength: 600,
          maxLength: 3000,
        }),
        fc.integer({ min: 1, max: 3 }),
        async (entries, scans) => {
          const s = new MemoryStorage();
          await s.open();
          const model = new Map<string, { key: Uint8Array; token: number }>();
          const per = Math.ceil(entries.length / scans);
          for (let i = 0; i < entries.length; i++) {
            const [key, token] = entries[i]!;
            s.putNow(key, token, Uint8Array.of(i & 0xff));
            model.set(Buffer.from(key).toString('hex'), { key, token });
            if ((i + 1) % per === 0 || i === entries.length - 1) {
              const got: string[] = [];
              for await (const e of s.scan({ start: 0, end: 0 })) got.push(`${e.token}/${Buffer.from(e.key).toString('hex')}`);
              const want = [...model.values()]
                .sort((a, b) => a.token - b.token || Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)))
                .map((e) => `${e.token}/${Buffer.from(e.key).toString('hex')}`);
              expect(got).toEqual(want);
            }
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('scans a snapshot taken at the first step', async () => {
    const s = new MemoryStorage();
    await s.open();
    const k = (name: string): Uint8Array => new TextEncoder().encode(name);
    await s.put(k('a'), 10, Uint8Array.of(1));
    await s.put(k('b'), 20, Uint8Array.of(1));
    await s.put(k('c'), 30, Uint8Array.of(1));
    const it = s.scan({ start: 0, end: 100 });
    expect((await it.next()).value?.token).toBe(10);
    await s.put(k('b'), 20, Uint8Array.of(2)); // overwritten in place in the index
    await s.delete(k('c'));
    await s.put(k('d'), 25, Uint8Array.of(1));
    const rest: [number, number][] = [];
    for await (const e of it) rest.push([e.token, e.record[0]!]);
    expect(rest).toEqual([
      [20, 1],
      [30, 1],
    ]);
    const now: [number, number][] = [];
    for await (const e of s.scan({ start: 0, end: 100 })) now.push([e.token, e.record[0]!]);
    expect(now).toEqual([
      [10, 1],
      [20, 2],
      [25, 1],
    ]);
  });
});

describe('MemoryStorage: scans left open while rows move, die and are reborn', () => {
  // Rows live in columns indexed by id; a deleted row's id is reused, the
  // arena compacts, the sorted index merges (dropping dead rows). A scan
  // open across all of that must still give exactly what was stored when it
  // took its first step.
  type Step =
    | { op: 'put'; k: number; move: boolean; size: number; fill: number }
    | { op: 'del'; k: number }
    | { op: 'open'; start: number; end: number }
    | { op: 'step'; which: number };

  /** Runs `steps`; returns how many scans were checked. */
  async function run(keys: number, maxSize: number, steps: Step[]): Promise<number> {
    let checked = 0;
    const s = new MemoryStorage();
    await s.open();
    const key = (k: number): Uint8Array => Uint8Array.of(k >> 8, k & 0xff);
    const model = new Map<number, { t: number; size: number; fill: number }>();
    const record = (size: number, fill: number): Uint8Array => new Uint8Array(size).fill(fill);
    type Open = { it: AsyncIterator<StoredEntry> | Iterator<StoredEntry>; want: string[]; got: string[]; done: boolean };
    const open: Open[] = [];
    const describe = (token: number, k: number, rec: { length: number; fill: number }): string => `${token}/${k}/${rec.length}/${rec.fill}`;
    const stepOnce = async (o: Open): Promise<void> => {
      if (o.done) return;
      const r = await o.it.next();
      if (r.done) {
        o.done = true;
        return;
      }
      const e = r.value;
      const fill = e.record.length === 0 ? 0 : e.record[0]!;
      // A record is one byte repeated: any torn or moved-over byte shows.
      expect(e.record.every((b) => b === fill)).toBe(true);
      o.got.push(describe(e.token, (e.key[0]! << 8) | e.key[1]!, { length: e.record.length, fill }));
    };
    let version = 0;
    for (const st of steps) {
      if (st.op === 'put') {
        const k = st.k % keys;
        const old = model.get(k);
        const t = st.move || old === undefined ? (Math.imul(++version, 2654435761) >>> 0) : old.t;
        await s.put(key(k), t, record(st.size % (maxSize + 1), st.fill));
        model.set(k, { t, size: st.size % (maxSize + 1), fill: st.size % (maxSize + 1) === 0 ? 0 : st.fill });
      } else if (st.op === 'del') {
        await s.delete(key(st.k % keys));
        model.delete(st.k % keys);
      }
      if (st.op === 'put' || st.op === 'del') {
        // The key index agrees (a stale entry left by a re-put or a delete would show on a later get).
        const k = st.k % keys;
        const got = s.getNow(key(k)) as Uint8Array | undefined;
        expect(got?.length).toBe(model.get(k)?.size);
      } else if (st.op === 'open') {
        if (open.length >= 4) {
          // Finish and check the oldest to make room: scans keep being opened (each one may merge the index).
          const oldest = open.shift()!;
          while (!oldest.done) await stepOnce(oldest);
          expect(oldest.got).toEqual(oldest.want);
          checked++;
        }
        const range = { start: st.start, end: st.end };
        const it = s.scan(range)[Symbol.asyncIterator]();
        const want = [...model]
          .filter(([, r]) => tokenInRange(r.t, range))
          .sort((x, y) => x[1].t - y[1].t || x[0] - y[0])
          .map(([k, r]) => describe(r.t, k, { length: r.size, fill: r.fill }));
        const o: Open = { it, want, got: [], done: false };
        open.push(o);
        await stepOnce(o); // the snapshot is taken here
      } else if (open.length > 0) {
        await stepOnce(open[st.which % open.length]!);
      }
    }
    for (const o of open) {
      while (!o.done) await stepOnce(o);
      expect(o.got).toEqual(o.want);
      checked++;
    }
    for (let k = 0; k < keys; k++) {
      const got = s.getNow(key(k)) as Uint8Array | undefined;
      const want = model.get(k);
      expect(got === undefined ? undefined : [got.length, got[0] ?? 0]).toEqual(want === undefined ? undefined : [want.size, want.fill]);
    }
    await s.close();
    return checked;
  }

  const stepArb = (keys: number, maxSize: number): fc.Arbitrary<Step> =>
    fc.oneof(
      {
        weight: 30,
        arbitrary: fc.record({
          op: fc.constant('put' as const),
          k: fc.nat(keys),
          move: fc.boolean(),
          size: fc.nat(maxSize),
          fill: fc.integer({ min: 1, max: 255 }),
        }),
      },
      { weight: 12, arbitrary: fc.record({ op: fc.constant('del' as const), k: fc.nat(keys) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('open' as const), start: u32, end: u32 }) },
      { weight: 6, arbitrary: fc.record({ op: fc.constant('step' as const), which: fc.nat(3) }) },
    );

  it('property: records of up to 40 KB (in shared slabs, and over 32 KiB in buffers of their own; the arena compacts many times) under open scans', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb(40, 40_000), { minLength: 200, maxLength: 400 }), async (steps) => {
        await run(40, 40_000, steps);
      }),
      { numRuns: 15, endOnFailure: true },
    );
  });

  it('property: thousands of keys (ids reused, the index merged with its dead rows dropped) under open scans', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb(2500, 8), { minLength: 4000, maxLength: 6000 }), async (steps) => {
        await run(2500, 8, steps);
      }),
      // No shrinking: a counterexample of thousands of operations would take minutes to shrink.
      { numRuns: 4, endOnFailure: true },
    );
  });
});

describe('MemoryStorage: one key array reused for other keys', () => {
  it('finds the key the array holds at each call (ids are never reused across different bytes)', async () => {
    const s = new MemoryStorage();
    await s.open();
    const key = new TextEncoder().encode('key:1');
    await s.put(key, 1, Uint8Array.of(1));
    expect(s.getNow(key)).toEqual(Uint8Array.of(1));
    key[4] = 0x32; // now 'key:2'
    expect(s.getNow(key)).toBeUndefined();
    s.putNow(key, 2, Uint8Array.of(2));
    key[4] = 0x31;
    expect(s.getNow(key)).toEqual(Uint8Array.of(1));
    const shorter = key.subarray(0, 4);
    expect(await s.get(shorter)).toBeUndefined();
    expect(await s.get(new TextEncoder().encode('key:2'))).toEqual(Uint8Array.of(2));
  });

  it('property: a reused array behaves as fresh arrays holding the same bytes would', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 12 }), fc.boolean()), { maxLength: 40 }), async (steps) => {
        const s = new MemoryStorage();
        await s.open();
        const model = new Map<string, number>();
        const reused = new Uint8Array(12);
        steps.forEach(([bytes, write], i) => {
          const k = reused.subarray(0, bytes.length);
          k.set(bytes);
          const id = Buffer.from(bytes).toString('hex');
          if (write) {
            s.putNow(k, 0, Uint8Array.of(i & 0xff));
            model.set(id, i & 0xff);
          }
          const got = s.getNow(k) as Uint8Array | undefined;
          expect(got === undefined ? undefined : got[0]).toBe(model.get(id));
        });
      }),
    );
  });
});

describe('MemoryStorage.getSharedNow (the stored bytes, not a copy)', () => {
  const k = (s: string): Uint8Array => new TextEncoder().encode(s);
  const filled = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

  it('answers what getNow answers, without copying, and undefined for a missing key', async () => {
    const s = new MemoryStorage();
    await s.open();
    await s.put(k('a'), 1, filled(300, 7));
    const shared = s.getSharedNow(k('a')) as Uint8Array;
    expect(shared).toEqual(s.getNow(k('a')));
    // Two reads give views of the same bytes (a copy per read would be two buffers).
    expect((s.getSharedNow(k('a')) as Uint8Array).buffer).toBe(shared.buffer);
    expect(s.getSharedNow(k('missing'))).toBeUndefined();
    await s.close();
  });

  it('bytes handed out never change: not by overwrites, deletes, or the compaction that moves every record', async () => {
    const s = new MemoryStorage();
    await s.open();
    await s.put(k('stays'), 5, filled(100, 1));
    const held: { bytes: Uint8Array; want: Uint8Array }[] = [];
    const stays = s.getSharedNow(k('stays')) as Uint8Array;
    held.push({ bytes: stays, want: stays.slice() });
    // 3,000 overwrites of 2 KiB records under 8 keys: megabytes of garbage, so the arena compacts.
    for (let i = 0; i < 3_000; i++) {
      const key = k(`churn:${i % 8}`);
      if (i % 97 === 0) await s.delete(key);
      else await s.put(key, i % 8, filled(2_048, i & 0xff));
      if (i % 50 === 0) {
        const got = s.getSharedNow(key);
        if (got instanceof Uint8Array) held.push({ bytes: got, want: got.slice() });
      }
    }
    for (const h of held) expect(h.bytes).toEqual(h.want);
    // The unchanged record was moved by a compaction (a new slab), and the old view still reads it.
    const moved = s.getSharedNow(k('stays')) as Uint8Array;
    expect(moved.buffer).not.toBe(stays.buffer);
    expect(moved).toEqual(filled(100, 1));
    expect(stays).toEqual(filled(100, 1));
    await s.close();
  });

  it('refuses as getNow does: a closed storage (KV_NOT_STARTED), an empty key (TypeError)', async () => {
    const s = new MemoryStorage();
    expect(() => s.getSharedNow(k('a'))).toThrow(expect.objectContaining({ code: 'KV_NOT_STARTED' }));
    await s.open();
    expect(() => s.getSharedNow(new Uint8Array(0))).toThrow(TypeError);
    expect(() => s.getSharedNow('a' as unknown as Uint8Array)).toThrow(TypeError);
    await s.close();
  });

  it('a subclass that overrides getNow, get or _get is served through its override', async () => {
    class Counting extends MemoryStorage {
      gets = 0;
      override get(key: Uint8Array): Promise<Uint8Array | undefined> {
        this.gets++;
        return super.get(key);
      }
    }
    class Failing extends MemoryStorage {
      protected override _get(): Uint8Array | undefined {
        throw new Error('disk on fire');
      }
    }
    const counting = new Counting();
    await counting.open();
    await counting.put(k('a'), 1, filled(10, 3));
    await expect(counting.getSharedNow(k('a'))).resolves.toEqual(filled(10, 3));
    expect(counting.gets).toBe(1);
    class SlowNow extends MemoryStorage {
      override getNow(key: Uint8Array): Promise<Uint8Array | undefined> {
        return Promise.resolve(super.getNow(key));
      }
    }
    const slow = new SlowNow();
    await slow.open();
    await slow.put(k('a'), 1, filled(10, 4));
    const viaOverride = slow.getSharedNow(k('a'));
    expect(viaOverride).toBeInstanceOf(Promise);
    await expect(viaOverride).resolves.toEqual(filled(10, 4));
    await slow.close();
    const failing = new Failing();
    await failing.open();
    expect(() => failing.getSharedNow(k('a'))).toThrow(expect.objectContaining({ code: 'KV_STORAGE_FAILURE' }));
    await counting.close();
    await failing.close();
  });
});
