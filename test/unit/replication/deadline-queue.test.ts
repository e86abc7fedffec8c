import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeadlineQueue, type DeadlineWaiter } from '../../../src/replication/deadline-queue.js';
import { ManualClock } from '../../../src/testing/index.js';

function recorder(log: string[], name: string, then?: () => void): DeadlineWaiter {
  return {
    deadlineDue: () => {
      log.push(name);
      then?.();
    },
  };
}

describe('DeadlineQueue', () => {
  it('calls each waiter once its deadline passed, in deadline order (equal deadlines in queue order)', () => {
    const clock = new ManualClock(1_000);
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    q.push(recorder(log, 'c'), 1_300);
    q.push(recorder(log, 'a'), 1_100);
    q.push(recorder(log, 'b1'), 1_200);
    q.push(recorder(log, 'b2'), 1_200);
    expect(clock.pending).toBe(1);
    clock.advance(99);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual(['a']);
    clock.advance(100);
    expect(log).toEqual(['a', 'b1', 'b2']);
    clock.advance(1_000);
    expect(log).toEqual(['a', 'b1', 'b2', 'c']);
    expect(q.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('a cancelled waiter is never called, and cancelling the last one clears the timer', () => {
    const clock = new ManualClock(0);
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    const a = q.push(recorder(log, 'a'), 100);
    const b = q.push(recorder(log, 'b'), 200);
    q.cancel(a);
    q.cancel(a); // twice: no effect
    expect(q.size).toBe(1);
    clock.advance(150);
    expect(log).toEqual([]);
    q.cancel(b);
    expect(q.size).toBe(0);
    expect(clock.pending).toBe(0);
    clock.advance(1_000);
    expect(log).toEqual([]);
  });

  it('an earlier deadline pushed later re-arms the timer for it', () => {
    const clock = new ManualClock(0);
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    q.push(recorder(log, 'late'), 10_000);
    q.push(recorder(log, 'early'), 50);
    clock.advance(50);
    expect(log).toEqual(['early']);
    expect(clock.pending).toBe(1);
    clock.advance(9_950);
    expect(log).toEqual(['early', 'late']);
  });

  it('a deadline already passed is called at the next timer turn, not synchronously', () => {
    const clock = new ManualClock(500);
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    q.push(recorder(log, 'past'), 100);
    expect(log).toEqual([]);
    clock.advance(0);
    expect(log).toEqual(['past']);
  });

  it('a waiter may push and cancel from its callback', () => {
    const clock = new ManualClock(0);
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    const other = q.push(recorder(log, 'other'), 100);
    q.push(
      recorder(log, 'first', () => {
        q.cancel(other);
        q.push(recorder(log, 'pushed'), 150);
      }),
      100 - 1,
    );
    clock.advance(100);
    expect(log).toEqual(['first']);
    clock.advance(50);
    expect(log).toEqual(['first', 'pushed']);
    expect(clock.pending).toBe(0);
  });

  it('keeps at most about twice the live entries while calls settle long before their deadline', () => {
    const clock = new ManualClock(0);
    const q = new DeadlineQueue(clock);
    const inFlight: ReturnType<DeadlineQueue['push']>[] = [];
    const log: string[] = [];
    let most = 0;
    for (let i = 0; i < 100_000; i++) {
      inFlight.push(q.push(recorder(log, 'x'), 10_000 + i));
      if (inFlight.length > 64) q.cancel(inFlight.shift()!);
      most = Math.max(most, q.held);
    }
    expect(q.size).toBe(64);
    expect(most).toBeLessThanOrEqual(2 * 65 + 1);
    expect(log).toEqual([]);
    for (const e of inFlight) q.cancel(e);
    expect(clock.pending).toBe(0);
  });

  it('stop() forgets every entry and later pushes are inert', () => {
    const clock = new ManualClock(0);
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    q.push(recorder(log, 'a'), 100);
    q.stop();
    expect(clock.pending).toBe(0);
    const late = q.push(recorder(log, 'b'), 50);
    q.cancel(late);
    clock.advance(1_000);
    expect(log).toEqual([]);
    expect(q.size).toBe(0);
  });

  it('property: calls exactly the waiters not cancelled, each at its deadline, in (deadline, push) order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 500 }), cancelAt: fc.option(fc.integer({ min: 0, max: 600 })) }), {
          maxLength: 200,
        }),
        (specs) => {
          const clock = new ManualClock(0);
          const q = new DeadlineQueue(clock);
          const calls: { i: number; time: number }[] = [];
          const handles = specs.map((s, i) => q.push({ deadlineDue: () => calls.push({ i, time: clock.now() }) }, s.at));
          for (let t = 0; t <= 600; t++) {
            specs.forEach((s, i) => {
              if (s.cancelAt === t) q.cancel(handles[i]!);
            });
            clock.advance(t === 0 ? 0 : 1);
          }
          // Expected: those whose deadline came before (or at the same turn as, but ahead of) their cancel.
          const expected = specs
            .map((s, i) => ({ i, at: s.at, cancelAt: s.cancelAt }))
            .filter((s) => s.cancelAt === null || s.cancelAt > s.at)
            .sort((a, b) => a.at - b.at || a.i - b.i);
          expect(calls.map((c) => c.i)).toEqual(expected.map((e) => e.i));
          for (const c of calls) expect(c.time).toBe(specs[c.i]!.at);
          expect(clock.pending).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });
});
