import { describe, expect, it } from 'vitest';
import { KeyLock } from '../../../src/internal/key-lock.js';

describe('KeyLock', () => {
  it('runs work on one key one at a time, in order, and other keys in parallel', async () => {
    const lock = new KeyLock();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = lock.run('k', async () => {
      log.push('k1 start');
      await gate;
      log.push('k1 end');
      return 1;
    });
    const second = lock.run('k', async () => {
      log.push('k2');
      return 2;
    });
    const other = lock.run('x', async () => {
      log.push('x');
      return 3;
    });
    expect(await other).toBe(3);
    expect(log).toEqual(['k1 start', 'x']);
    release();
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(log).toEqual(['k1 start', 'x', 'k1 end', 'k2']);
    await new Promise((r) => setImmediate(r));
    expect(lock.size).toBe(0);
  });

  it('a failure releases the key and reaches only its caller', async () => {
    const lock = new KeyLock();
    const failing = lock.run('k', async () => {
      throw new Error('boom');
    });
    const next = lock.run('k', async () => 'ok');
    await expect(failing).rejects.toThrow('boom');
    expect(await next).toBe('ok');
  });
});

describe('KeyLock.runNow', () => {
  it('runs synchronous work at once and leaves the key free, with no promise', () => {
    const lock = new KeyLock();
    const out = lock.runNow('k', () => 42);
    expect(out).toBe(42);
    expect(lock.size).toBe(0);
    expect(() => lock.runNow('k', () => {
      throw new Error('boom');
    })).toThrow('boom');
    expect(lock.size).toBe(0);
  });

  it('waits its turn behind work holding the key, in call order with run()', async () => {
    const lock = new KeyLock();
    const order: string[] = [];
    let release!: () => void;
    const first = lock.run('k', () => new Promise<void>((r) => (release = () => (order.push('first'), r()))));
    const second = lock.runNow('k', () => {
      order.push('second');
      return 2;
    });
    const third = lock.run('k', async () => {
      order.push('third');
    });
    expect(second).toBeInstanceOf(Promise);
    expect(lock.size).toBe(1);
    release();
    await Promise.all([first, second, third]);
    expect(await second).toBe(2);
    expect(order).toEqual(['first', 'second', 'third']);
    expect(lock.size).toBe(0);
  });

  it('work that turns asynchronous holds the key until it settles, and others queue behind it', async () => {
    const lock = new KeyLock();
    const order: string[] = [];
    let finish!: () => void;
    const slow = lock.runNow('k', () => new Promise<string>((r) => (finish = () => (order.push('slow'), r('s')))));
    const next = lock.runNow('k', () => (order.push('next'), 'n'));
    expect(lock.size).toBe(1);
    finish();
    expect(await slow).toBe('s');
    expect(await next).toBe('n');
    expect(order).toEqual(['slow', 'next']);
    expect(lock.size).toBe(0);
  });
});

describe('KeyLock.runNow: re-entrant calls', () => {
  it('a call for the same key made inside synchronous work waits until that work is done, then runs', async () => {
    const lock = new KeyLock();
    const order: string[] = [];
    let inner: Promise<unknown> | undefined;
    let nested: unknown;
    lock.runNow('k', () => {
      order.push('outer start');
      inner = lock.run('k', async () => {
        order.push('inner');
      });
      nested = lock.runNow('other', () => {
        order.push('other key');
        // The outer key is still held by the work that is running.
        return lock.runNow('k', () => order.push('inner now'));
      });
      order.push('outer end');
      return 1;
    });
    expect(nested).toBeInstanceOf(Promise);
    await inner;
    await nested;
    expect(order).toEqual(['outer start', 'other key', 'outer end', 'inner', 'inner now']);
    expect(lock.size).toBe(0);
  });

  it('a re-entrant waiter still runs when the synchronous work throws, or turns asynchronous', async () => {
    const lock = new KeyLock();
    const order: string[] = [];
    let waiter: Promise<unknown> | undefined;
    expect(() =>
      lock.runNow('k', () => {
        waiter = lock.run('k', async () => order.push('after throw'));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    await waiter;
    let finish!: () => void;
    const slow = lock.runNow('k', () => {
      waiter = lock.run('k', async () => order.push('after async'));
      return new Promise<void>((r) => (finish = r));
    });
    await Promise.resolve();
    expect(order).toEqual(['after throw']);
    finish();
    await slow;
    await waiter;
    expect(order).toEqual(['after throw', 'after async']);
    expect(lock.size).toBe(0);
  });

  it('a key given as bytes is the same key as its latin1 string, whichever form holds it', async () => {
    const lock = new KeyLock();
    const order: string[] = [];
    const bytes = Uint8Array.of(0x6b, 0xe9, 0x31); // 'ké1' in latin1
    const id = String.fromCharCode(...bytes);
    let nested: Promise<unknown> | undefined;
    let nestedBytes: unknown;
    // Bytes hold the key: a string call (and a bytes call) for it queue behind.
    lock.runNow(bytes, () => {
      nested = lock.run(id, async () => order.push('string waited'));
      nestedBytes = lock.runNow(Uint8Array.of(0x6b, 0xe9, 0x31), () => order.push('bytes waited'));
      expect(lock.runNow(Uint8Array.of(0x6b, 0xe9, 0x32), () => 'other key')).toBe('other key');
      order.push('bytes held');
    });
    expect(nestedBytes).toBeInstanceOf(Promise);
    await nested;
    await nestedBytes;
    expect(order).toEqual(['bytes held', 'string waited', 'bytes waited']);
    // A string holds the key asynchronously: a bytes call queues behind it.
    let finish!: () => void;
    const slow = lock.run(id, () => new Promise<void>((r) => (finish = r)));
    const behind = lock.runNow(bytes, () => order.push('bytes after async'));
    expect(behind).toBeInstanceOf(Promise);
    finish();
    await slow;
    await behind;
    expect(order.at(-1)).toBe('bytes after async');
    // Bytes work that turns asynchronous holds the key under its string.
    let finish2!: () => void;
    const slow2 = lock.runNow(bytes, () => new Promise<void>((r) => (finish2 = r)));
    expect(lock.size).toBe(1);
    const behind2 = lock.runNow(id, () => order.push('string after bytes'));
    expect(behind2).toBeInstanceOf(Promise);
    finish2();
    await slow2;
    await behind2;
    expect(order.at(-1)).toBe('string after bytes');
    expect(lock.size).toBe(0);
  });
});

describe('KeyLock.runNowWith', () => {
  const join = (a: string, b: number, c: boolean, inTurn: number | undefined): string => `${a}/${b}/${c}/${String(inTurn)}`;

  it('passes its arguments, and `inTurn` when the work runs within the call', () => {
    const lock = new KeyLock();
    expect(lock.runNowWith('k', join, 'a', 1, true, 42)).toBe('a/1/true/42');
    expect(lock.size).toBe(0);
  });

  it('work that waits its turn gets its arguments but not `inTurn` (a reading valid only in the caller turn)', async () => {
    const lock = new KeyLock();
    let release!: () => void;
    const first = lock.run('k', () => new Promise<void>((r) => (release = r)));
    const waiting = lock.runNowWith('k', join, 'b', 2, false, 42);
    expect(waiting).toBeInstanceOf(Promise);
    release();
    await first;
    expect(await waiting).toBe('b/2/false/undefined');
    expect(lock.size).toBe(0);
  });

  it('a re-entrant call for the held key waits too, and gets no `inTurn`', async () => {
    const lock = new KeyLock();
    let inner: string | Promise<string> | undefined;
    const outer = lock.runNowWith(
      'k',
      (a: string, _b: number, _c: boolean, inTurn: number | undefined) => {
        inner = lock.runNowWith('k', join, 'inner', 3, true, 7);
        return `${a}/${String(inTurn)}`;
      },
      'outer',
      0,
      false,
      5,
    );
    expect(outer).toBe('outer/5');
    expect(inner).toBeInstanceOf(Promise);
    expect(await inner).toBe('inner/3/true/undefined');
    expect(lock.size).toBe(0);
  });
});
