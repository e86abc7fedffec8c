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
