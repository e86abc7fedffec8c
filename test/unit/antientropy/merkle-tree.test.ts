import { describe, expect, it } from 'vitest';
import { MAX_MERKLE_SEGMENTS, MerkleTree, entryHash, recordDigest } from '../../../src/antientropy/index.js';

const ZERO = '0'.repeat(16);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const WRAP = { start: 0xfffffff0, end: 0x10 };

/** Every node hash, as `level:index -> hash`. */
function snapshot(tree: MerkleTree): Map<string, string> {
  const out = new Map<string, string>();
  for (let level = 0; level <= tree.depth; level++) {
    for (let i = 0; i < tree.nodesAt(level); i++) out.set(`${level}:${i}`, tree.nodeHash(level, i));
  }
  return out;
}
function changed(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...a.keys()].filter((k) => a.get(k) !== b.get(k));
}
function path(tree: MerkleTree, segment: number): string[] {
  const out: string[] = [];
  for (let level = 0; level <= tree.depth; level++) out.push(`${level}:${Math.floor(segment / tree.fanout ** (tree.depth - level))}`);
  return out;
}

describe('MerkleTree', () => {
  it('has the default shape 16^3 and documented constants', () => {
    const tree = new MerkleTree({ start: 0, end: 1000 });
    expect([tree.fanout, tree.depth, tree.segments]).toEqual([16, 3, 4096]);
    expect(MAX_MERKLE_SEGMENTS).toBe(1 << 20);
  });

  it('empty trees of the same shape are equal, with a zero root', () => {
    const a = new MerkleTree(WRAP);
    const b = new MerkleTree(WRAP);
    expect(a.root).toBe(ZERO);
    expect(a.size).toBe(0);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(new MerkleTree(WRAP, { depth: 2 }))).toBe(false);
    expect(a.equals(new MerkleTree({ start: 0xfffffff0, end: 0x11 }))).toBe(false);
  });

  it('one insert changes the root and exactly the nodes on its segment path', () => {
    for (const options of [{}, { fanout: 2, depth: 5 }, { fanout: 256, depth: 1 }]) {
      const tree = new MerkleTree({ start: 0, end: 0x10000 }, options);
      tree.insert(enc('other'), 17, enc('r0'));
      const before = snapshot(tree);
      const token = 0x9abc;
      tree.insert(enc('key'), token, enc('record'));
      expect(changed(before, snapshot(tree)).sort()).toEqual(path(tree, tree.segmentOf(token)).sort());
      expect(tree.root).not.toBe(before.get('0:0'));
    }
  });

  it('remove and update restore the previous hashes', () => {
    const tree = new MerkleTree(WRAP, { fanout: 4, depth: 2 });
    tree.insert(enc('a'), 0xfffffff5, enc('1'));
    tree.insert(enc('b'), 3, enc('tombstone'));
    const before = snapshot(tree);
    tree.insert(enc('c'), 0, enc('x'));
    expect(tree.size).toBe(3);
    tree.remove(enc('c'), 0, enc('x'));
    expect(snapshot(tree)).toEqual(before);
    tree.update(enc('a'), 0xfffffff5, enc('1'), enc('2'));
    expect(tree.root).not.toBe(before.get('0:0'));
    tree.update(enc('a'), 0xfffffff5, enc('2'), enc('1'));
    expect(snapshot(tree)).toEqual(before);
    expect(tree.size).toBe(2);
  });

  it('the same key with another record, or another key with the same record, is another entry', () => {
    const d = recordDigest(enc('record'));
    expect(entryHash(enc('k'), d)).not.toEqual(entryHash(enc('k'), recordDigest(enc('record2'))));
    expect(entryHash(enc('k1'), d)).not.toEqual(entryHash(enc('k2'), d));
    // The key's length is hashed: ("ab", "c") is not ("a", "bc").
    expect(entryHash(enc('ab'), enc('c'))).not.toEqual(entryHash(enc('a'), enc('bc')));
  });

  it('clone is an independent snapshot', () => {
    const tree = new MerkleTree(WRAP);
    tree.insert(enc('a'), 1, enc('1'));
    const copy = tree.clone();
    expect(copy.equals(tree)).toBe(true);
    expect(copy.size).toBe(1);
    tree.insert(enc('b'), 2, enc('1'));
    expect(copy.equals(tree)).toBe(false);
    expect(copy.size).toBe(1);
    copy.insert(enc('b'), 2, enc('1'));
    expect(copy.equals(tree)).toBe(true);
  });

  it('fromEntries equals inserting one by one, in any order', () => {
    const entries = Array.from({ length: 500 }, (_, i) => ({
      key: enc(`key-${i}`),
      token: (WRAP.start + 1 + ((i * 7) % 32)) % 2 ** 32,
      digest: recordDigest(enc(`v${i}`)),
    }));
    const built = MerkleTree.fromEntries(WRAP, entries);
    const incremental = new MerkleTree(WRAP);
    for (const e of [...entries].reverse()) incremental.insert(e.key, e.token, e.digest);
    expect(built.equals(incremental)).toBe(true);
    expect(built.size).toBe(500);
  });

  it('maps a wrapping range onto segments in ring order, start excluded and end included', () => {
    const tree = new MerkleTree(WRAP, { fanout: 2, depth: 5 }); // 32 tokens, 32 segments
    const tokens = [...Array.from({ length: 15 }, (_, i) => 0xfffffff1 + i), ...Array.from({ length: 17 }, (_, i) => i)];
    expect(tokens.map((t) => tree.segmentOf(t))).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(tree.segmentRange(0)).toEqual({ start: 0xfffffff0, end: 0xfffffff1 });
    expect(tree.segmentRange(15)).toEqual({ start: 0xffffffff, end: 0 });
    expect(tree.segmentRange(31)).toEqual({ start: 0xf, end: 0x10 });
    expect(tree.nodeRange(0, 0)).toEqual(WRAP);
    expect(tree.nodeRange(1, 1)).toEqual({ start: 0, end: 0x10 });
    expect(() => tree.segmentOf(0xfffffff0)).toThrow(new RangeError("Expected `token` 4294967280 to lie in the tree's range (4294967280, 16]"));
    expect(() => tree.segmentOf(0x11)).toThrow(RangeError);
  });

  it('covers the whole ring when start === end', () => {
    const tree = new MerkleTree({ start: 5, end: 5 }, { fanout: 16, depth: 1 });
    expect(tree.segmentOf(6)).toBe(0);
    expect(tree.segmentOf(5)).toBe(15);
    expect(tree.segmentOf(4)).toBe(15);
    expect(tree.segmentRange(0)).toEqual({ start: 5, end: 5 + 2 ** 28 });
    expect(tree.segmentRange(15)).toEqual({ start: 5 + 15 * 2 ** 28, end: 5 });
  });

  it('a range narrower than its segments leaves some segments empty', () => {
    const tree = new MerkleTree({ start: 100, end: 103 }, { fanout: 4, depth: 1 });
    expect([101, 102, 103].map((t) => tree.segmentOf(t))).toEqual([0, 1, 2]);
    expect(tree.segmentRange(3)).toBeUndefined();
    expect(tree.segmentRange(2)).toEqual({ start: 102, end: 103 });
  });

  it('rejects bad shapes, ranges and arguments with precise errors', () => {
    expect(() => new MerkleTree(null as never)).toThrow(new TypeError('Expected `range` to be an object { start, end }, got null'));
    expect(() => new MerkleTree({ start: -1, end: 3 })).toThrow(
      new RangeError('Expected `range.start` to be an unsigned 32-bit integer, got -1'),
    );
    expect(() => new MerkleTree({ start: 0, end: 2 ** 32 })).toThrow(/`range.end`/);
    expect(() => new MerkleTree(WRAP, { fanout: 3 })).toThrow(new RangeError('Expected `fanout` to be a power of two from 2 to 256, got 3'));
    expect(() => new MerkleTree(WRAP, { depth: 0 })).toThrow(new RangeError('Expected `depth` to be an integer >= 1, got 0'));
    expect(() => new MerkleTree(WRAP, { fanout: 16, depth: 6 })).toThrow(
      new RangeError('Expected `fanout ^ depth` to be at most 1048576 segments, got 16 ^ 6 = 16777216'),
    );
    const tree = new MerkleTree(WRAP);
    expect(() => tree.insert('k' as never, 0, enc('r'))).toThrow(new TypeError('Expected `key` to be a Uint8Array, got string'));
    expect(() => tree.insert(enc('k'), 0, [1] as never)).toThrow(new TypeError('Expected `digest` to be a Uint8Array, got an array'));
    expect(() => tree.update(enc('k'), 0, null as never, enc('r'))).toThrow(
      new TypeError('Expected `previousDigest` to be a Uint8Array, got null'),
    );
    expect(() => tree.insert(enc('k'), 1.5, enc('r'))).toThrow(new RangeError('Expected `token` to be an unsigned 32-bit integer, got 1.5'));
    expect(() => tree.remove(enc('k'), 0, enc('r'))).toThrow(new RangeError('Cannot remove an entry from an empty MerkleTree'));
    expect(() => tree.nodeHash(4, 0)).toThrow(new RangeError('Expected `level` to be an integer from 0 to 3, got 4'));
    expect(() => tree.segmentRange(4096)).toThrow(new RangeError('Expected `index` to be an integer from 0 to 4095 at level 3, got 4096'));
    expect(tree.size).toBe(0);
    expect(tree.root).toBe(ZERO);
  });
});
