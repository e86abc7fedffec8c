import { describe, expect, it } from 'vitest';
import { ErrorCodes, KvError } from '../../../src/errors/index.js';
import { Ring, defaultTokens, hashKey } from '../../../src/ring/index.js';

const ids = (list: readonly { id: string }[]): string[] => list.map((n) => n.id);

describe('Ring.from / normalization', () => {
  it('normalizes specs: weight 1, address = id, default tokens, sorted by id', () => {
    const ring = Ring.from([{ id: 'b' }, { id: 'a', address: '10.0.0.1:7000', zone: 'dc1', weight: 2 }]);
    expect(ids(ring.nodes)).toEqual(['a', 'b']);
    const b = ring.node('b')!;
    expect(b.address).toBe('b');
    expect(b.weight).toBe(1);
    expect(b.zone).toBeUndefined();
    expect(b.tokens).toEqual(defaultTokens('b'));
    const a = ring.node('a')!;
    expect(a.address).toBe('10.0.0.1:7000');
    expect(a.zone).toBe('dc1');
    expect(a.tokens).toEqual(defaultTokens('a', 2));
    expect(ring.size).toBe(2);
    expect(ring.has('a')).toBe(true);
    expect(ring.has('z')).toBe(false);
    expect(ring.node('z')).toBeUndefined();
    expect(ring.maxKeyBytes).toBe(1024);
  });

  it('sorts and de-duplicates explicit tokens', () => {
    const ring = Ring.from([{ id: 'a', tokens: [30, 10, 20, 10] }]);
    expect(ring.node('a')!.tokens).toEqual([10, 20, 30]);
  });

  it('freezes what it exposes', () => {
    const ring = Ring.from([{ id: 'a' }]);
    expect(Object.isFrozen(ring)).toBe(true);
    expect(Object.isFrozen(ring.nodes)).toBe(true);
    expect(Object.isFrozen(ring.nodes[0])).toBe(true);
    expect(Object.isFrozen(ring.nodes[0]!.tokens)).toBe(true);
    expect(Object.isFrozen(ring.preferenceList('k', 1))).toBe(true);
    expect(Object.isFrozen(ring.ranges())).toBe(true);
  });

  it('rejects bad input precisely', () => {
    expect(() => Ring.from([{ id: 'a' }, { id: 'a' }])).toThrow(/Duplicate node id "a"/);
    expect(() => Ring.from([{ id: '' }])).toThrow(TypeError);
    expect(() => Ring.from([{ id: 1 as unknown as string }])).toThrow(TypeError);
    expect(() => Ring.from([null as unknown as { id: string }])).toThrow(TypeError);
    expect(() => Ring.from({} as unknown as [])).toThrow(TypeError);
    expect(() => Ring.from([{ id: 'a', weight: 0 }])).toThrow(RangeError);
    expect(() => Ring.from([{ id: 'a', weight: -1 }])).toThrow(/weight.*"a".*> 0/);
    expect(() => Ring.from([{ id: 'a', weight: Number.POSITIVE_INFINITY }])).toThrow(RangeError);
    expect(() => Ring.from([{ id: 'a', tokens: [] }])).toThrow(RangeError);
    expect(() => Ring.from([{ id: 'a', tokens: [1.5] }])).toThrow(/tokens\[0\].*unsigned 32-bit/);
    expect(() => Ring.from([{ id: 'a', tokens: [2 ** 32] }])).toThrow(RangeError);
    expect(() => Ring.from([{ id: 'a', tokens: [-1] }])).toThrow(RangeError);
    expect(() => Ring.from([{ id: 'a', zone: 5 as unknown as string }])).toThrow(TypeError);
    expect(() => Ring.from([{ id: 'a' }], { maxKeyBytes: 0 })).toThrow(RangeError);
  });
});

describe('withNode / withoutNode', () => {
  it('returns new rings and leaves the original intact', () => {
    const r1 = Ring.from([{ id: 'a' }, { id: 'b' }]);
    const r2 = r1.withNode({ id: 'c' });
    expect(ids(r1.nodes)).toEqual(['a', 'b']);
    expect(ids(r2.nodes)).toEqual(['a', 'b', 'c']);
    const r3 = r2.withoutNode('a');
    expect(ids(r3.nodes)).toEqual(['b', 'c']);
    expect(r3.withoutNode('nope')).toBe(r3);
  });

  it('replaces a node with the same id', () => {
    const r = Ring.from([{ id: 'a' }, { id: 'b' }]).withNode({ id: 'a', weight: 2, zone: 'z' });
    expect(r.size).toBe(2);
    expect(r.node('a')!.weight).toBe(2);
    expect(r.node('a')!.zone).toBe('z');
  });

  it('keeps maxKeyBytes', () => {
    const r = Ring.from([{ id: 'a' }], { maxKeyBytes: 8 }).withNode({ id: 'b' });
    expect(r.maxKeyBytes).toBe(8);
    expect(() => r.token('123456789')).toThrow(KvError);
  });
});

describe('lookups', () => {
  const ring = Ring.from(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id })));

  it('token() is hashKey', () => {
    expect(ring.token('user:1')).toBe(hashKey('user:1'));
  });

  it('preferenceList returns n distinct nodes, primary first', () => {
    for (let i = 0; i < 200; i++) {
      const list = ring.preferenceList(`key-${i}`, 3);
      expect(list).toHaveLength(3);
      expect(new Set(ids(list)).size).toBe(3);
      // The primary owns the range that holds the token.
      const t = ring.token(`key-${i}`);
      const range = ring.ranges().find((r) => (r.start < r.end ? t > r.start && t <= r.end : t > r.start || t <= r.end));
      expect(range!.node).toBe(list[0]!.id);
    }
  });

  it('preferenceList is a prefix-consistent walk (n=2 is a prefix of n=3)', () => {
    for (let i = 0; i < 100; i++) {
      expect(ids(ring.preferenceList(`k${i}`, 2))).toEqual(ids(ring.preferenceList(`k${i}`, 3)).slice(0, 2));
    }
  });

  it('returns the same cached array for the same vnode', () => {
    expect(ring.preferenceList('x', 3)).toBe(ring.preferenceList('x', 3));
  });

  it('n > size returns all nodes', () => {
    expect(ring.preferenceList('x', 99)).toHaveLength(5);
    expect(new Set(ids(ring.preferenceList('x', 99))).size).toBe(5);
  });

  it('rejects bad n and bad keys', () => {
    expect(() => ring.preferenceList('x', 0)).toThrow(RangeError);
    expect(() => ring.preferenceList('x', 1.5)).toThrow(RangeError);
    expect(() => ring.preferenceList('x', Number.NaN)).toThrow(RangeError);
    try {
      ring.preferenceList('', 3);
      expect.unreachable();
    } catch (err) {
      expect((err as KvError).code).toBe(ErrorCodes.INVALID_KEY);
    }
    expect(() => ring.preferenceListForToken(-1, 1)).toThrow(RangeError);
    expect(() => ring.preferenceListForToken(2 ** 32, 1)).toThrow(RangeError);
  });

  it('empty ring returns []', () => {
    const empty = Ring.empty();
    expect(empty.size).toBe(0);
    expect(empty.preferenceList('x', 3)).toEqual([]);
    expect(empty.preferenceListForToken(5, 3)).toEqual([]);
    expect(empty.successors(5)).toEqual([]);
    expect(empty.ranges()).toEqual([]);
    expect(empty.ownership().size).toBe(0);
    expect(empty.replicaSet('x', 3).primaries).toEqual([]);
  });

  it('wraps: a token past the last vnode goes to the first', () => {
    const r = Ring.from([{ id: 'a', tokens: [100] }, { id: 'b', tokens: [200] }]);
    expect(ids(r.preferenceListForToken(50, 2))).toEqual(['a', 'b']);
    expect(ids(r.preferenceListForToken(100, 2))).toEqual(['a', 'b']);
    expect(ids(r.preferenceListForToken(101, 2))).toEqual(['b', 'a']);
    expect(ids(r.preferenceListForToken(201, 2))).toEqual(['a', 'b']);
    expect(ids(r.preferenceListForToken(2 ** 32 - 1, 1))).toEqual(['a']);
  });

  it('breaks token collisions by node id, whatever the insertion order', () => {
    const r1 = Ring.from([{ id: 'b', tokens: [100] }, { id: 'a', tokens: [100] }]);
    const r2 = Ring.from([{ id: 'a', tokens: [100] }, { id: 'b', tokens: [100] }]);
    expect(ids(r1.preferenceListForToken(50, 2))).toEqual(['a', 'b']);
    expect(ids(r2.preferenceListForToken(50, 2))).toEqual(['a', 'b']);
    expect(r1.ranges()).toEqual([{ start: 100, end: 100, node: 'a' }]);
    expect(r1.ownership().get('a')).toBe(1);
    expect(r1.ownership().get('b')).toBe(0);
  });
});

describe('zones', () => {
  const ring = Ring.from([
    { id: 'a1', zone: 'A' }, { id: 'a2', zone: 'A' }, { id: 'a3', zone: 'A' },
    { id: 'b1', zone: 'B' }, { id: 'b2', zone: 'B' },
    { id: 'c1', zone: 'C' },
  ]);

  it('spreads replicas over distinct zones first', () => {
    for (let i = 0; i < 300; i++) {
      const list = ring.preferenceList(`key-${i}`, 3);
      expect(new Set(list.map((n) => n.zone)).size).toBe(3);
    }
  });

  it('fills with the remaining nodes once every zone is used', () => {
    for (let i = 0; i < 100; i++) {
      const list = ring.preferenceList(`key-${i}`, 5);
      expect(new Set(ids(list)).size).toBe(5);
      expect(new Set(list.slice(0, 3).map((n) => n.zone)).size).toBe(3);
      // the primary is still the clockwise owner
      expect(list[0]!.id).toBe(ring.successors(ring.token(`key-${i}`))[0]!.id);
    }
  });

  it('with more replicas than zones, still distinct nodes', () => {
    const two = Ring.from([{ id: 'x', zone: 'A' }, { id: 'y', zone: 'A' }, { id: 'z', zone: 'B' }]);
    const list = two.preferenceList('k', 3);
    expect(new Set(ids(list)).size).toBe(3);
    expect(new Set(list.slice(0, 2).map((n) => n.zone)).size).toBe(2);
  });
});

describe('ranges / ownership', () => {
  it('ranges cover the ring once, ownership sums to 1', () => {
    const ring = Ring.from([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const ranges = ring.ranges();
    expect(ranges.length).toBe(ring.nodes.reduce((s, n) => s + n.tokens.length, 0));
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.start).toBe(ranges[i - 1]!.end);
    expect(ranges[0]!.start).toBe(ranges[ranges.length - 1]!.end);
    const total = [...ring.ownership().values()].reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(1, 9);
    expect(ring.rangesOf('a').every((r) => r.node === 'a')).toBe(true);
    expect(ring.rangesOf('a').length).toBe(ring.node('a')!.tokens.length);
  });

  it('computes exact ownership', () => {
    const ring = Ring.from([{ id: 'a', tokens: [0] }, { id: 'b', tokens: [2 ** 30] }]);
    expect(ring.ownership().get('b')).toBe(0.25);
    expect(ring.ownership().get('a')).toBe(0.75);
  });
});

describe('Ring.diff', () => {
  it('is empty for identical rings', () => {
    const r = Ring.from([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    expect(Ring.diff(r, Ring.from([{ id: 'c' }, { id: 'b' }, { id: 'a' }]), 3)).toEqual([]);
  });

  it('reports exact changed ranges on a small ring', () => {
    const before = Ring.from([{ id: 'a', tokens: [100] }, { id: 'b', tokens: [200] }]);
    const after = before.withNode({ id: 'c', tokens: [150] });
    expect(Ring.diff(before, after, 1)).toEqual([{ start: 100, end: 150, before: ['b'], after: ['c'] }]);
    const d2 = Ring.diff(before, after, 2);
    // (200,100]: [a,b] -> [a,c]; (100,150]: [b,a] -> [c,b]; (150,200]: [b,a] unchanged
    expect(d2).toEqual([
      { start: 200, end: 100, before: ['a', 'b'], after: ['a', 'c'] },
      { start: 100, end: 150, before: ['b', 'a'], after: ['c', 'b'] },
    ]);
    // At n=3 every range gains c.
    const d3 = Ring.diff(before, after, 3);
    expect(d3.map((r) => [r.start, r.end])).toEqual([[200, 100], [100, 150], [150, 200]]);
    expect(d3.every((r) => r.after.includes('c') && !r.before.includes('c'))).toBe(true);
  });

  it('merges adjacent ranges with the same change', () => {
    const before = Ring.from([{ id: 'a', tokens: [100] }, { id: 'b', tokens: [400] }]);
    const after = before.withNode({ id: 'c', tokens: [200, 300] });
    expect(Ring.diff(before, after, 1)).toEqual([{ start: 100, end: 300, before: ['b'], after: ['c'] }]);
  });

  it('handles empty rings', () => {
    const r = Ring.from([{ id: 'a', tokens: [10] }]);
    expect(Ring.diff(Ring.empty(), Ring.empty(), 3)).toEqual([]);
    expect(Ring.diff(Ring.empty(), r, 3)).toEqual([{ start: 10, end: 10, before: [], after: ['a'] }]);
    expect(() => Ring.diff(r, r, 0)).toThrow(RangeError);
  });
});

describe('JSON', () => {
  it('round trips', () => {
    const ring = Ring.from([{ id: 'a', zone: 'z1', weight: 2 }, { id: 'b', address: 'h:1' }], { maxKeyBytes: 64 });
    const json = JSON.parse(JSON.stringify(ring)) as unknown;
    const back = Ring.fromJSON(json);
    expect(back.toJSON()).toEqual(ring.toJSON());
    expect(back.maxKeyBytes).toBe(64);
    expect(back.node('b')!.address).toBe('h:1');
    expect(back.node('b')!.zone).toBeUndefined();
    expect('zone' in ring.toJSON().nodes[1]!).toBe(false);
    for (let i = 0; i < 50; i++) expect(ids(back.preferenceList(`k${i}`, 2))).toEqual(ids(ring.preferenceList(`k${i}`, 2)));
  });

  it('rejects garbage with TypeError', () => {
    const good = Ring.from([{ id: 'a' }]).toJSON();
    const bad: unknown[] = [
      null, 1, 'x', [], {},
      { ...good, version: 2 },
      { ...good, nodes: 'no' },
      { ...good, nodes: [null] },
      { ...good, nodes: [{ ...good.nodes[0], id: 5 }] },
      { ...good, nodes: [{ ...good.nodes[0], tokens: 'x' }] },
      { ...good, nodes: [{ ...good.nodes[0], tokens: [-5] }] },
      { ...good, nodes: [{ ...good.nodes[0], weight: -1 }] },
      { ...good, nodes: [good.nodes[0], good.nodes[0]] },
      { ...good, maxKeyBytes: 'big' },
      { ...good, maxKeyBytes: 0 },
    ];
    for (const b of bad) expect(() => Ring.fromJSON(b), JSON.stringify(b)?.slice(0, 80)).toThrow(TypeError);
  });
});
