import { describe, expect, it } from 'vitest';
import { KvError } from '../../../src/errors/index.js';
import {
  Ring,
  formatZoneReplication,
  normalizeZoneReplication,
  sameZoneReplication,
  zoneReplicationTotal,
} from '../../../src/ring/index.js';

const ids = (list: readonly { id: string }[]): string[] => list.map((n) => n.id);

/** The KvError `fn` throws. */
function kvError(fn: () => unknown): KvError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    return err as KvError;
  }
  throw new Error('expected a KvError, nothing was thrown');
}

// Clockwise from token 0: a(dc1) b(dc2) c(dc1) d(dc1) e(dc2) f(none) g(dc3).
const nodes = [
  { id: 'a', tokens: [100], zone: 'dc1' },
  { id: 'b', tokens: [200], zone: 'dc2' },
  { id: 'c', tokens: [300], zone: 'dc1' },
  { id: 'd', tokens: [400], zone: 'dc1' },
  { id: 'e', tokens: [500], zone: 'dc2' },
  { id: 'f', tokens: [600] },
  { id: 'g', tokens: [700], zone: 'dc3' },
];

describe('zone maps', () => {
  it('normalizes: zones sorted by name, frozen; the sum is the replication factor', () => {
    const z = normalizeZoneReplication({ dc2: 1, dc1: 2 });
    expect(Object.keys(z)).toEqual(['dc1', 'dc2']);
    expect(Object.isFrozen(z)).toBe(true);
    expect(zoneReplicationTotal(z)).toBe(3);
    expect(sameZoneReplication(z, { dc1: 2, dc2: 1 })).toBe(true);
    expect(sameZoneReplication(z, { dc1: 2, dc2: 2 })).toBe(false);
    expect(sameZoneReplication(z, { dc1: 2 })).toBe(false);
    expect(sameZoneReplication(z, { dc1: 2, dc3: 1 })).toBe(false);
    expect(sameZoneReplication(z, undefined)).toBe(false);
    expect(sameZoneReplication(undefined, undefined)).toBe(true);
    expect(formatZoneReplication(z)).toBe('{ "dc1": 2, "dc2": 1 }');
  });

  it('refuses malformed maps with precise errors', () => {
    expect(() => normalizeZoneReplication(null)).toThrow(new TypeError('Expected `zones` to be an object of replicas per zone, got null'));
    expect(() => normalizeZoneReplication([1])).toThrow(TypeError);
    expect(() => normalizeZoneReplication({})).toThrow(new TypeError('Expected `zones` to name at least one zone, got an empty object'));
    expect(() => normalizeZoneReplication({ '': 1 })).toThrow(TypeError);
    expect(() => normalizeZoneReplication({ dc1: 0 })).toThrow(new RangeError('Expected `zones.dc1` to be a positive integer, got 0'));
    expect(() => normalizeZoneReplication({ dc1: 1.5 })).toThrow(RangeError);
    expect(() => normalizeZoneReplication({ dc1: '2' }, 'replication.zones')).toThrow(
      new RangeError('Expected `replication.zones.dc1` to be a positive integer, got "2"'),
    );
    expect(() => Ring.from(nodes, { zones: { dc1: -1 } })).toThrow(RangeError);
    expect(() => Ring.fromJSON({ ...Ring.from(nodes).toJSON(), zones: { dc1: 'x' } })).toThrow(TypeError);
  });
});

describe('Ring with a zone map', () => {
  const ring = Ring.from(nodes, { zones: { dc1: 2, dc2: 1 } });

  it('places per zone: the first `count` nodes of each zone clockwise, in clockwise order', () => {
    expect(ids(ring.preferenceListForToken(0, 3))).toEqual(['a', 'b', 'c']);
    // From 350: d(dc1) e(dc2) then a(dc1) after the wrap; f and g are not in the map.
    expect(ids(ring.preferenceListForToken(350, 3))).toEqual(['d', 'e', 'a']);
    // A zone with fewer nodes than its count gives all it has.
    const wide = ring.withZones({ dc1: 2, dc3: 2 });
    expect(ids(wide.preferenceListForToken(0, 4))).toEqual(['a', 'c', 'g']);
    // A zone of the map without nodes gives none.
    expect(ids(ring.withZones({ dc1: 1, dc9: 2 }).preferenceListForToken(0, 3))).toEqual(['a']);
  });

  it('returns the cached frozen list; the key and token forms agree', () => {
    const list = ring.preferenceList('user:1', 3);
    expect(Object.isFrozen(list)).toBe(true);
    expect(ring.preferenceList('user:1', 3)).toBe(list);
    expect(ring.preferenceListForToken(ring.token('user:1'), 3)).toBe(list);
  });

  it('requires n to be the sum of the map', () => {
    expect(() => ring.preferenceList('k', 2)).toThrow(
      new RangeError('Expected `n` to be 3, the sum of the ring\'s zone map { "dc1": 2, "dc2": 1 }, got 2'),
    );
    expect(() => ring.replicaSet('k', 4)).toThrow(RangeError);
    expect(() => Ring.diff(ring, ring, 2)).toThrow(RangeError);
    expect(() => ring.preferenceList('k', 0)).toThrow(new RangeError('Expected `n` to be a positive integer, got 0'));
  });

  it('keeps the spread placement without a map (withZones(undefined) drops it)', () => {
    const plain = Ring.from(nodes);
    expect(plain.zones).toBeUndefined();
    // Spread: one node per zone first (a dc1, b dc2, f none), clockwise.
    expect(ids(plain.preferenceListForToken(0, 3))).toEqual(['a', 'b', 'f']);
    expect(ids(ring.withZones(undefined).preferenceListForToken(0, 3))).toEqual(['a', 'b', 'f']);
    expect(plain.toJSON()).not.toHaveProperty('zones');
    expect(ring.toJSON().zones).toEqual({ dc1: 2, dc2: 1 });
  });

  it('Ring.diff between a plain ring and its zone-map form lists what a migration moves', () => {
    const plain = Ring.from(nodes);
    const changes = Ring.diff(plain, ring, 3);
    expect(changes.length).toBeGreaterThan(0);
    for (const c of changes) {
      expect(c.before).toEqual(ids(plain.preferenceListForToken(c.end, 3)));
      expect(c.after).toEqual(ids(ring.preferenceListForToken(c.end, 3)));
    }
    // From 0: a b f (spread) became a b c (map): f hands over to c.
    expect(changes.find((c) => c.end === 100)).toMatchObject({ before: ['a', 'b', 'f'], after: ['a', 'b', 'c'] });
  });

  it('fallbacks are every other node clockwise, zone or not', () => {
    const rs = ring.replicaSet('k', 3);
    expect(rs.zoneReplication).toEqual({ dc1: 2, dc2: 1 });
    expect(ids(rs.fallbacks).sort()).toEqual(
      ids(nodes)
        .filter((id) => !rs.isPrimary(id))
        .sort(),
    );
  });
});

describe('ReplicaSet.zoneQuorum', () => {
  const ring = Ring.from(nodes, { zones: { dc1: 3, dc2: 2 } });
  const rs = ring.replicaSet('k', 5);

  it('local_quorum: a quorum of the coordinator zone’s replicas', () => {
    expect([...rs.zoneQuorum('local_quorum', 'dc1')]).toEqual([['dc1', 2]]);
    expect([...rs.zoneQuorum('local_quorum', 'dc2')]).toEqual([['dc2', 2]]);
    // One replica in a zone: a quorum of one.
    const small = Ring.from(nodes, { zones: { dc1: 1, dc2: 1 } }).replicaSet('k', 2);
    expect([...small.zoneQuorum('local_quorum', 'dc2')]).toEqual([['dc2', 1]]);
  });

  it('each_quorum: a quorum in every zone of the map', () => {
    expect([...rs.zoneQuorum('each_quorum', undefined)]).toEqual([
      ['dc1', 2],
      ['dc2', 2],
    ]);
    // Counted over the replicas the zone really holds (dc3 has one node).
    const r2 = Ring.from(nodes, { zones: { dc1: 2, dc3: 3 } }).replicaSet('k', 5);
    expect([...r2.zoneQuorum('each_quorum', 'dc1')]).toEqual([
      ['dc1', 2],
      ['dc3', 1],
    ]);
  });

  it('levels the configuration cannot meet throw KV_UNAVAILABLE_CONSISTENCY', () => {
    const codes = [
      kvError(() => rs.zoneQuorum('local_quorum', undefined)),
      kvError(() => rs.zoneQuorum('local_quorum', 'dc3')),
      kvError(() => Ring.from(nodes).replicaSet('k', 3).zoneQuorum('each_quorum', 'dc1')),
      kvError(() => Ring.from(nodes).replicaSet('k', 3).zoneQuorum('local_quorum', 'dc1')),
      kvError(() => Ring.from(nodes, { zones: { dc1: 1, dc9: 1 } }).replicaSet('k', 2).zoneQuorum('each_quorum', 'dc1')),
    ];
    expect(codes.map((e) => e.code)).toEqual(codes.map(() => 'KV_UNAVAILABLE_CONSISTENCY'));
    expect(codes[0]!.message).toBe("consistency 'local_quorum' cannot be met: this node has no zone");
    expect(codes[1]!.message).toContain('zone "dc3" of this node has no replicas in the zone map { "dc1": 3, "dc2": 2 }');
    expect(codes[2]!.message).toContain('the cluster has no zone map');
    expect(codes[4]!.message).toContain('zone "dc9" of the zone map has no node on the ring');
  });
});
