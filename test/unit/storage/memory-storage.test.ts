import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStorage, tokenInRange } from '../../../src/storage/index.js';

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

  it('model test: matches a Map under random operations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('put' as const), k: fc.nat(20), t: u32, v: fc.uint8Array({ maxLength: 4 }) }),
            fc.record({ op: fc.constant('del' as const), k: fc.nat(20) }),
            fc.record({ op: fc.constant('reopen' as const) }),
          ),
          { maxLength: 40 },
        ),
        u32,
        u32,
        async (ops, start, end) => {
          const s = new MemoryStorage();
          await s.open();
          const model = new Map<number, { t: number; v: Uint8Array }>();
          for (const o of ops) {
            if (o.op === 'put') {
              await s.put(Uint8Array.of(o.k), o.t, o.v);
              model.set(o.k, { t: o.t, v: o.v });
            } else if (o.op === 'del') {
              await s.delete(Uint8Array.of(o.k));
              model.delete(o.k);
            } else {
              await s.close();
              await s.open();
            }
          }
          for (let k = 0; k <= 20; k++) expect(await s.get(Uint8Array.of(k))).toEqual(model.get(k)?.v);
          const got: [number, number][] = [];
          for await (const e of s.scan({ start, end })) got.push([e.token, e.key[0]!]);
          const want = [...model]
            .filter(([, r]) => tokenInRange(r.t, { start, end }))
            .map(([k, r]): [number, number] => [r.t, k])
            .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
          expect(got).toEqual(want);
          await s.close();
        },
      ),
      { numRuns: 200 },
    );
  });
});
