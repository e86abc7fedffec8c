import { describe, expect, it } from 'vitest';
import {
  MerkleTree,
  childNodes,
  differingChildren,
  exchangeLocally,
  fromBitmap,
  keysToExchange,
  leafEntries,
  levelHashes,
  recordDigest,
  toBitmap,
  type MerkleEntry,
} from '../../../src/antientropy/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const RANGE = { start: 0, end: 1600 };
const OPTS = { fanout: 4, depth: 2 }; // 16 segments of 100 tokens

function entry(key: string, token: number, value: string): MerkleEntry {
  return { key: enc(key), token, digest: recordDigest(enc(value)) };
}

describe('diff steps', () => {
  it('levelHashes lists 8-byte hashes in the order asked; differingChildren finds the positions that differ', () => {
    const a = MerkleTree.fromEntries(RANGE, [entry('x', 50, '1'), entry('y', 950, '1')], OPTS);
    const b = MerkleTree.fromEntries(RANGE, [entry('x', 50, '1'), entry('y', 950, '2')], OPTS);
    expect(Buffer.from(levelHashes(a, 0, [0])).toString('hex')).toBe(a.root);
    const nodes = [3, 2, 1, 0];
    expect(differingChildren(levelHashes(a, 1, nodes), levelHashes(b, 1, nodes))).toEqual([1]); // token 950 -> level-1 node 2
    expect(childNodes(a, 1, nodes, [1])).toEqual([8, 9, 10, 11]);
    expect(differingChildren(levelHashes(a, 2, [8, 9, 10, 11]), levelHashes(b, 2, [8, 9, 10, 11]))).toEqual([1]);
  });

  it('rejects bad node lists and hash lists', () => {
    const a = new MerkleTree(RANGE, OPTS);
    expect(() => levelHashes(a, 1, [4])).toThrow(new RangeError('Expected `nodes[0]` to be a node index from 0 to 3 at level 1, got 4'));
    expect(() => differingChildren(new Uint8Array(8), new Uint8Array(16))).toThrow(
      new RangeError('Expected hash lists of equal length, got 8 and 16 bytes'),
    );
    expect(() => differingChildren(new Uint8Array(7), new Uint8Array(7))).toThrow(
      new RangeError('Expected `mine` to hold whole 8-byte hashes, got 7 bytes'),
    );
    expect(() => childNodes(a, 2, [0], [0])).toThrow(new RangeError('Expected `level` to be above the leaves (< 2), got 2'));
    expect(() => childNodes(a, 0, [0], [1])).toThrow(new RangeError('Expected a position from 0 to 0, got 1'));
  });

  it('bitmaps round-trip and reject stray bits', () => {
    expect(toBitmap([0, 3, 9], 10)).toEqual(Uint8Array.of(0b1001, 0b10));
    expect(fromBitmap(Uint8Array.of(0b1001, 0b10), 10)).toEqual([0, 3, 9]);
    expect(toBitmap([], 0)).toEqual(new Uint8Array(0));
    expect(() => fromBitmap(Uint8Array.of(0, 0b100), 10)).toThrow(new RangeError('Expected no bit set at or past position 10, got bit 10'));
    expect(() => fromBitmap(new Uint8Array(1), 10)).toThrow(new RangeError('Expected a bitmap of 2 bytes for 10 positions, got 1'));
    expect(() => toBitmap([10], 10)).toThrow(new RangeError('Expected a position from 0 to 9, got 10'));
  });

  it('leafEntries sorts entry hashes; keysToExchange sends what the other lacks and asks for what it lacks', () => {
    const tree = new MerkleTree(RANGE, OPTS);
    const mine = leafEntries(tree, 1, [entry('same', 101, 'v'), entry('mine-only', 150, 'v'), entry('both', 199, 'v1')]);
    const theirs = leafEntries(tree, 1, [entry('same', 101, 'v'), entry('theirs-only', 120, 'v'), entry('both', 199, 'v2')]);
    for (const l of [mine, theirs]) {
      const words = Array.from({ length: 3 }, (_, i) => Buffer.from(l.hashes.subarray(8 * i, 8 * i + 8)).toString('hex'));
      expect(words).toEqual([...words].sort());
    }
    const ab = keysToExchange(mine, theirs.hashes);
    expect(ab.send.map(dec).sort()).toEqual(['both', 'mine-only']);
    expect(ab.request.map((p) => dec(theirs.keys[p]!)).sort()).toEqual(['both', 'theirs-only']);
    expect(keysToExchange(mine, mine.hashes)).toEqual({ send: [], request: [] });
  });

  it('leafEntries sorts small and large leaves alike, and the XOR of its hashes is the leaf hash', () => {
    for (const n of [0, 1, 47, 48, 49, 300]) {
      const entries = Array.from({ length: n }, (_, i) => entry(`key-${i}`, 101 + (i % 100), `v${i}`));
      const tree = MerkleTree.fromEntries(RANGE, entries, OPTS);
      const l = leafEntries(tree, 1, entries);
      const words = Array.from({ length: n }, (_, i) => Buffer.from(l.hashes.subarray(8 * i, 8 * i + 8)).toString('hex'));
      expect(words).toEqual([...words].sort());
      expect(new Set(words).size).toBe(n);
      let xor = 0n;
      for (const w of words) xor ^= BigInt(`0x${w}`);
      expect(xor.toString(16).padStart(16, '0')).toBe(tree.nodeHash(2, 1));
      expect(l.keys.map(dec).sort()).toEqual(entries.map((e) => dec(e.key)).sort());
    }
  });

  it('leafEntries and keysToExchange reject entries outside the segment, duplicates and unsorted lists', () => {
    const tree = new MerkleTree(RANGE, OPTS);
    expect(() => leafEntries(tree, 1, [entry('k', 250, 'v')])).toThrow(
      new RangeError('Expected entries of segment 1, got token 250 of segment 2'),
    );
    expect(() => leafEntries(tree, 1, [entry('k', 150, 'v'), entry('k', 150, 'v')])).toThrow(
      new RangeError('Expected each entry once in segment 1, got a duplicate'),
    );
    const l = leafEntries(tree, 1, [entry('a', 150, 'v'), entry('b', 150, 'v')]);
    const reversed = new Uint8Array(16);
    reversed.set(l.hashes.subarray(8), 0);
    reversed.set(l.hashes.subarray(0, 8), 8);
    expect(() => keysToExchange(l, reversed)).toThrow(new RangeError('Expected `theirs` in strictly ascending order, got hash 1 not above hash 0'));
  });
});

describe('exchangeLocally', () => {
  const scan = (all: MerkleEntry[], tree: MerkleTree) => (segment: number) => all.filter((e) => tree.segmentOf(e.token) === segment);

  it('descends one level a message and ends with the request', () => {
    const a = [entry('k1', 10, 'v'), entry('k2', 700, 'v'), entry('tomb', 1500, 'tombstone')];
    const b = [entry('k1', 10, 'v'), entry('k2', 700, 'v2')];
    const ta = MerkleTree.fromEntries(RANGE, a, OPTS);
    const tb = MerkleTree.fromEntries(RANGE, b, OPTS);
    const out = exchangeLocally({ tree: ta, entries: scan(a, ta) }, { tree: tb, entries: scan(b, tb) });
    expect(out.messages.map((m) => m.type)).toEqual(['ae.start', 'ae.hashes', 'ae.hashes', 'ae.entries', 'ae.request']);
    expect(out.messages.filter((m) => m.type === 'ae.hashes').map((m) => m.level)).toEqual([1, 2]);
    expect(out.differingSegments).toEqual([6, 14]); // (600, 700] and (1400, 1500]
    expect(out.initiatorSends.map(dec).sort()).toEqual(['k2', 'tomb']);
    expect(out.responderSends.map(dec)).toEqual(['k2']);
  });

  it('ends after the root when the trees are equal, and refuses trees of another shape', () => {
    const t = new MerkleTree(RANGE, OPTS);
    const out = exchangeLocally({ tree: t, entries: () => [] }, { tree: new MerkleTree(RANGE, OPTS), entries: () => [] });
    expect(out.messages.map((m) => m.type)).toEqual(['ae.start', 'ae.done']);
    expect(() => exchangeLocally({ tree: t, entries: () => [] }, { tree: new MerkleTree(RANGE), entries: () => [] })).toThrow(
      new RangeError('Expected trees of the same range and shape, got (0, 1600] 4^2 and (0, 1600] 16^3'),
    );
  });
});
