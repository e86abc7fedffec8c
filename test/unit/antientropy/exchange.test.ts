import { describe, expect, it } from 'vitest';
import {
  MerkleExchange,
  MerkleTree,
  leafEntries,
  recordDigest,
  type AeHashesMessage,
  type ExchangeMessage,
  type MerkleEntry,
} from '../../../src/antientropy/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const RANGE = { start: 0, end: 1600 };
const OPTS = { fanout: 4, depth: 2 };
const entry = (key: string, token: number, value: string): MerkleEntry => ({ key: enc(key), token, digest: recordDigest(enc(value)) });

function pair() {
  const a = [entry('k1', 10, 'v'), entry('only-a', 700, 'v')];
  const b = [entry('k1', 10, 'v2')];
  const ta = MerkleTree.fromEntries(RANGE, a, OPTS);
  const tb = MerkleTree.fromEntries(RANGE, b, OPTS);
  const scan = (all: MerkleEntry[], t: MerkleTree) => (s: number) =>
    leafEntries(
      t,
      s,
      all.filter((e) => t.segmentOf(e.token) === s),
    );
  return { A: new MerkleExchange(ta), B: new MerkleExchange(tb), scanA: scan(a, ta), scanB: scan(b, tb) };
}

describe('MerkleExchange', () => {
  it('walks both sides through the steps, asking for entries when it reaches the leaves', () => {
    const { A, B, scanA, scanB } = pair();
    const start = A.start();
    expect(start).toMatchObject({ type: 'ae.start', start: 0, end: 1600, fanout: 4, depth: 2 });
    const s1 = B.receive(start);
    expect(s1.message?.type).toBe('ae.hashes');
    const s2 = A.receive(s1.message!);
    expect(s2.message).toMatchObject({ type: 'ae.hashes', level: 2 });
    const s3 = B.receive(s2.message!);
    expect(s3).toEqual({ needEntries: [0, 6], done: false });
    const s4 = B.provideEntries(s3.needEntries!.map(scanB));
    expect(s4.message?.type).toBe('ae.entries');
    const s5 = A.receive(s4.message!);
    expect(s5.needEntries).toEqual([0, 6]);
    const s6 = A.provideEntries(s5.needEntries!.map(scanA));
    expect(s6.message?.type).toBe('ae.request');
    expect(s6.send!.map(dec).sort()).toEqual(['k1', 'only-a']);
    expect(s6.done).toBe(true);
    const s7 = B.receive(s6.message!);
    expect(s7.send!.map(dec)).toEqual(['k1']);
    expect([A.done, B.done]).toEqual([true, true]);
    expect(A.differingSegments).toEqual([0, 6]);
  });

  it('refuses messages out of step, for another shape, or malformed', () => {
    const { A, B } = pair();
    expect(() => A.receive({ type: 'ae.request', request: new Uint8Array(0) })).toThrow(new RangeError('Unexpected ae.request in phase idle'));
    const start = A.start();
    expect(() => A.start()).toThrow(new RangeError('Unexpected start() in phase awaiting-hashes'));
    expect(() => new MerkleExchange(new MerkleTree(RANGE)).receive(start)).toThrow(
      new RangeError('Expected an exchange of (0, 1600] 16^3, got (0, 1600] 4^2'),
    );
    expect(() => new MerkleExchange(B.tree).receive({ ...start, root: new Uint8Array(4) })).toThrow(
      new RangeError('Expected `root` to be 8 bytes, got 4'),
    );
    expect(() => new MerkleExchange(B.tree).receive({ ...start, root: 'x' } as unknown as ExchangeMessage)).toThrow(
      new TypeError('Expected `root` to be a Uint8Array, got string'),
    );
    expect(() => B.receive({ type: 'ae.nope' } as unknown as ExchangeMessage)).toThrow(new RangeError('Unknown exchange message type "ae.nope"'));
    expect(() => B.receive(null as unknown as ExchangeMessage)).toThrow(new TypeError('Expected `message` to be an object, got null'));

    const hashes = B.receive(start).message as AeHashesMessage;
    expect(() => A.receive({ ...hashes, level: 2 })).toThrow(new RangeError('Expected hashes of level 1, got level 2'));
    expect(() => A.receive({ ...hashes, hashes: hashes.hashes.subarray(8) })).toThrow(
      new RangeError('Expected 4 hashes (32 bytes), got 24 bytes'),
    );
    expect(() => A.receive({ ...hashes, differing: Uint8Array.of(0) })).toThrow(
      new RangeError('Expected ae.hashes to mark at least one differing node'),
    );
    expect(() => A.receive({ ...hashes, differing: Uint8Array.of(0b10) })).toThrow(
      new RangeError('Expected no bit set at or past position 1, got bit 1'),
    );
    expect(() => A.receive({ type: 'ae.entries', differing: Uint8Array.of(1), counts: [0], hashes: new Uint8Array(0) })).toThrow(
      new RangeError('Unexpected ae.entries at level 0, above the leaves'),
    );
    expect(() => A.provideEntries([])).toThrow(new RangeError('Unexpected provideEntries() in phase awaiting-hashes'));
  });

  it('checks entry counts against the hashes, and the leaves given against the segments asked for', () => {
    const { A, B, scanA, scanB } = pair();
    const s1 = B.receive(A.start());
    const s2 = A.receive(s1.message!);
    const s3 = B.receive(s2.message!);
    expect(() => B.provideEntries([scanB(6), scanB(0)])).toThrow(new RangeError('Expected the entries of segments [0, 6] in that order'));
    const entries = B.provideEntries(s3.needEntries!.map(scanB)).message!;
    if (entries.type !== 'ae.entries') throw new Error('expected ae.entries');
    const a2 = pair();
    const t1 = a2.B.receive(a2.A.start());
    a2.A.receive(t1.message!);
    expect(() => a2.A.receive({ ...entries, counts: [1] })).toThrow(new RangeError('Expected `counts` to hold 2 counts, got an array'));
    expect(() => a2.A.receive({ ...entries, counts: [1, -1] })).toThrow(new RangeError('Expected each count to be an integer >= 0, got -1'));
    expect(() => a2.A.receive({ ...entries, counts: [1, 1] })).toThrow(new RangeError('Expected 2 entry hashes (16 bytes), got 8 bytes'));
    expect(A.receive(entries).needEntries).toEqual([0, 6]);
    expect(() => A.provideEntries([scanA(0)])).toThrow(RangeError);
  });

  it('ends with ae.done after the root when nothing differs', () => {
    const t = MerkleTree.fromEntries(RANGE, [entry('k', 5, 'v')], OPTS);
    const A = new MerkleExchange(t);
    const B = new MerkleExchange(MerkleTree.fromEntries(RANGE, [entry('k', 5, 'v')], OPTS));
    const step = B.receive(A.start());
    expect(step).toEqual({ message: { type: 'ae.done' }, done: true });
    expect(A.receive(step.message!)).toEqual({ done: true });
    expect([A.done, B.done]).toEqual([true, true]);
  });
});
