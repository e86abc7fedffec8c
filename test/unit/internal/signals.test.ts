import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { onAbort, throwIfAborted } from '../../../src/internal/signals.js';

const listeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('onAbort', () => {
  it('puts one listener on a signal however many callbacks wait on it, and removes it with the last', () => {
    const ac = new AbortController();
    const offs = Array.from({ length: 1000 }, () => onAbort(ac.signal, () => {}));
    expect(listeners(ac.signal)).toBe(1);
    for (const off of offs.slice(0, 999)) off();
    expect(listeners(ac.signal)).toBe(1);
    offs[999]!();
    expect(listeners(ac.signal)).toBe(0);
    // A later subscription adds the listener again.
    const off = onAbort(ac.signal, () => {});
    expect(listeners(ac.signal)).toBe(1);
    off();
    expect(listeners(ac.signal)).toBe(0);
  });

  it('emits no MaxListenersExceededWarning for 100 callbacks on one signal', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const ac = new AbortController();
      const offs = Array.from({ length: 100 }, () => onAbort(ac.signal, () => {}));
      await new Promise((resolve) => setImmediate(resolve));
      for (const off of offs) off();
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('runs every callback once, in registration order, then forgets the signal', () => {
    const ac = new AbortController();
    const calls: number[] = [];
    for (let i = 0; i < 5; i++) onAbort(ac.signal, () => calls.push(i));
    ac.abort();
    ac.abort();
    expect(calls).toEqual([0, 1, 2, 3, 4]);
    expect(listeners(ac.signal)).toBe(0);
  });

  it('property: after any interleaving of registrations and removals, exactly the registered ones run, in order', () => {
    // Removals from the front, the back and the middle of the list, and re-registrations
    // after the list emptied (the listener is removed and added again).
    const step = fc.oneof(fc.constant({ add: true as const, pick: 0 }), fc.record({ add: fc.constant(false as const), pick: fc.nat() }));
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const ac = new AbortController();
        const ran: number[] = [];
        const live: { n: number; off: () => void }[] = [];
        let n = 0;
        for (const s of steps) {
          if (s.add) {
            const k = n++;
            live.push({ n: k, off: onAbort(ac.signal, () => ran.push(k)) });
          } else if (live.length > 0) {
            live.splice(s.pick % live.length, 1)[0]!.off();
          }
          expect(listeners(ac.signal)).toBe(live.length > 0 ? 1 : 0);
        }
        ac.abort();
        expect(ran).toEqual(live.map((l) => l.n));
        expect(listeners(ac.signal)).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps registrations of the same function apart', () => {
    const ac = new AbortController();
    const fn = vi.fn();
    const off1 = onAbort(ac.signal, fn);
    onAbort(ac.signal, fn);
    off1();
    ac.abort();
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('does not run a removed callback, even when an earlier callback removes it', () => {
    const ac = new AbortController();
    const removed = vi.fn();
    const later = vi.fn();
    onAbort(ac.signal, removed)();
    let offLater: () => void = () => {};
    onAbort(ac.signal, () => offLater());
    offLater = onAbort(ac.signal, later);
    ac.abort();
    expect(removed).not.toHaveBeenCalled();
    expect(later).not.toHaveBeenCalled();
  });

  it('unsubscribing is idempotent and harmless after the abort', () => {
    const ac = new AbortController();
    const fn = vi.fn();
    const off = onAbort(ac.signal, fn);
    const other = onAbort(ac.signal, () => {});
    off();
    off();
    expect(listeners(ac.signal)).toBe(1);
    ac.abort();
    other();
    other();
    expect(fn).not.toHaveBeenCalled();
    expect(listeners(ac.signal)).toBe(0);
  });

  it('does nothing for a signal that has already aborted (like addEventListener)', () => {
    const signal = AbortSignal.abort();
    const fn = vi.fn();
    const off = onAbort(signal, fn);
    expect(fn).not.toHaveBeenCalled();
    expect(listeners(signal)).toBe(0);
    off();
  });

  it('a callback registered while the signal dispatches does not run (the abort is past)', () => {
    const ac = new AbortController();
    const late = vi.fn();
    onAbort(ac.signal, () => onAbort(ac.signal, late));
    ac.abort();
    expect(late).not.toHaveBeenCalled();
  });

  it('a throwing callback does not stop the others; its error is rethrown asynchronously', () => {
    const queued: (() => void)[] = [];
    vi.stubGlobal('queueMicrotask', (fn: () => void) => queued.push(fn));
    const ac = new AbortController();
    const after = vi.fn();
    onAbort(ac.signal, () => {
      throw new Error('boom');
    });
    onAbort(ac.signal, after);
    ac.abort();
    expect(after).toHaveBeenCalledTimes(1);
    expect(queued).toHaveLength(1);
    expect(() => queued[0]!()).toThrow('boom');
  });

  it('keeps signals apart', () => {
    const a = new AbortController();
    const b = new AbortController();
    const fa = vi.fn();
    const fb = vi.fn();
    onAbort(a.signal, fa);
    onAbort(b.signal, fb);
    a.abort();
    expect(fa).toHaveBeenCalledTimes(1);
    expect(fb).not.toHaveBeenCalled();
    expect(listeners(b.signal)).toBe(1);
  });

  it('rejects what is not a signal or not a function with a TypeError', () => {
    expect(() => onAbort(undefined as never, () => {})).toThrow(/Expected `signal` to be an AbortSignal, got undefined/);
    expect(() => onAbort(new AbortController().signal, 'x' as never)).toThrow(/Expected `callback` to be a function, got string/);
  });
});

describe('throwIfAborted', () => {
  it('throws KV_ABORTED with the reason as cause, only once aborted', () => {
    expect(() => throwIfAborted(undefined)).not.toThrow();
    const ac = new AbortController();
    expect(() => throwIfAborted(ac.signal)).not.toThrow();
    const reason = new Error('stop');
    ac.abort(reason);
    expect(() => throwIfAborted(ac.signal)).toThrow(expect.objectContaining({ code: 'KV_ABORTED', name: 'AbortError', cause: reason }));
  });
});
