import { describe, expect, it } from 'vitest';
import { ReplicaSet } from '../../../src/ring/index.js';
import { Ring } from '../../../src/ring/index.js';

const ids = (list: readonly { id: string }[]): string[] => list.map((n) => n.id);

describe('ReplicaSet', () => {
  // Tokens chosen so the clockwise order from token 0 is a, b, c, d, e.
  const ring = Ring.from([
    { id: 'a', tokens: [100], zone: 'z1' },
    { id: 'b', tokens: [200], zone: 'z2' },
    { id: 'c', tokens: [300], zone: 'z3' },
    { id: 'd', tokens: [400], zone: 'z1' },
    { id: 'e', tokens: [500] },
  ]);
  const rs = ReplicaSet.forToken(ring, 0, 3);

  it('has primaries, fallbacks, zones', () => {
    expect(rs.token).toBe(0);
    expect(rs.n).toBe(3);
    expect(ids(rs.primaries)).toEqual(['a', 'b', 'c']);
    expect(ids(rs.fallbacks)).toEqual(['d', 'e']);
    expect(rs.zones).toEqual(['z1', 'z2', 'z3']);
    expect(rs.zoneOf('d')).toBe('z1');
    expect(rs.zoneOf('e')).toBeUndefined();
    expect(rs.zoneOf('zz')).toBeUndefined();
    expect(rs.isPrimary('b')).toBe(true);
    expect(rs.isPrimary('d')).toBe(false);
    expect(Object.isFrozen(rs)).toBe(true);
    expect(Object.isFrozen(rs.primaries)).toBe(true);
    expect(Object.isFrozen(rs.fallbacks)).toBe(true);
    // Built by hand from unfrozen lists: frozen copies (the caller's arrays stay theirs).
    const primaries = [...rs.primaries];
    const own = new ReplicaSet({ token: 1, n: 3, primaries, successors: [...rs.primaries, ...rs.fallbacks] });
    expect(Object.isFrozen(own.primaries)).toBe(true);
    expect(own.primaries).not.toBe(primaries);
    expect(Object.isFrozen(primaries)).toBe(false);
    expect(ids(own.fallbacks)).toEqual(['d', 'e']);
  });

  it('fallbacks are clockwise from the token', () => {
    const r = ReplicaSet.forToken(ring, 250, 2);
    expect(ids(r.primaries)).toEqual(['c', 'd']);
    // successors clockwise from 250: c, d, e, a, b
    expect(ids(r.fallbacks)).toEqual(['e', 'a', 'b']);
  });

  it('select: all available -> the primaries', () => {
    expect(rs.select(() => true)).toEqual(rs.primaries.map((node) => ({ node })));
  });

  it('select: stand-ins are paired in order with unavailable primaries', () => {
    const down = new Set(['a', 'c']);
    const sel = rs.select((n) => !down.has(n.id));
    expect(sel.map((s) => [s.node.id, s.standInFor])).toEqual([
      ['b', undefined],
      ['d', 'a'],
      ['e', 'c'],
    ]);
    expect('standInFor' in sel[0]!).toBe(false);
  });

  it('select: skips unavailable fallbacks and returns fewer when short', () => {
    const down = new Set(['a', 'd']);
    expect(rs.select((n) => !down.has(n.id)).map((s) => [s.node.id, s.standInFor])).toEqual([
      ['b', undefined],
      ['c', undefined],
      ['e', 'a'],
    ]);
    const few = new Set(['a', 'b', 'c', 'd']);
    expect(rs.select((n) => !few.has(n.id)).map((s) => [s.node.id, s.standInFor])).toEqual([['e', 'a']]);
    expect(rs.select(() => false)).toEqual([]);
  });

  it('calls isAvailable at most once per node', () => {
    const calls: string[] = [];
    rs.select((n) => {
      calls.push(n.id);
      return n.id !== 'a';
    });
    expect(new Set(calls).size).toBe(calls.length);
  });

  it('ring.replicaSet(key, n) matches the preference list', () => {
    for (let i = 0; i < 20; i++) {
      const set = ring.replicaSet(`k${i}`, 2);
      expect(set.primaries).toBe(ring.preferenceList(`k${i}`, 2));
      expect(set.token).toBe(ring.token(`k${i}`));
      expect(set.primaries.length + set.fallbacks.length).toBe(5);
    }
  });

  it('n > size: all primaries, no fallbacks', () => {
    const r = ReplicaSet.forToken(ring, 0, 9);
    expect(r.primaries).toHaveLength(5);
    expect(r.fallbacks).toHaveLength(0);
    expect(() => ReplicaSet.forToken(ring, 0, 0)).toThrow(RangeError);
  });
});
