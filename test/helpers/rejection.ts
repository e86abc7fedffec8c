import { expect } from 'vitest';
import { KvError } from 'quorumkv';

/** Awaits `p`, expects it to reject with a `KvError`, and returns that error. */
export async function rejection(p: Promise<unknown>): Promise<KvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvError);
  return err as KvError;
}
