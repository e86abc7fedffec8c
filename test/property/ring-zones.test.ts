import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ring, type NodeInfo, type NodeSpec, type ZoneReplication } from '../../src/ring/index.js';

// Small token counts keep every run fast; explicit tokens exercise collisions too.
const token = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const smallTokens = fc.uniqueArray(token, { minLength: 1, maxLength: 16 });
const ZONES = ['dc1', 'dc2', 'dc3'] as const;
/** A node's zone: one of three, or none (never a replica under a zone map). */
const zoneOf = fc.constantFrom<string | undefined>(...ZONES, undefined);
const nodeIds = (min: number, max: number) =>
  fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), { minLength: min, maxLength: max });
const specs = (min: number, max: number): fc.Arbitrary<NodeSpec[]> =>
  nodeIds(min, max).chain((ids) =>
    fc.tuple(
      ...ids.map((id) =>
        fc.tuple(smallTokens, zoneOf).map(([tokens, zone]): NodeSpec => (zone === undefined ? { id, tokens } : { id, tokens, zone })),
      ),
    ),
  );
/** A zone map over dc1..dc4 (dc4 never has nodes): 1 to 4 zones, 1 to 4 replicas each. */
const zoneMaps: fc.Arbitrary<ZoneReplication> = fc
  .uniqueArray(fc.constantFrom('dc1', 'dc2', 'dc3', 'dc4'), { minLength: 1, maxLength: 4 })
  .chain((zones) => fc.tuple(...zones.map((z) => fc.integer({ min: 1, max: 4 }).map((c) => [z, c] as const))))
  .map((entries) => Object.fromEntries(entries));
const total = (zones: ZoneReplication): number => Object.values(zones).reduce((a, b) => a + b, 0);
const ids = (list: readonly { id: string }[]): string[] => list.map((n) => n.id);
const RUNS = { numRuns: 150 };

/** The reference placement: per zone of the map, its first `count` nodes in the clockwise walk. */
function model(ring: Ring, zones: ZoneReplication, t: number): string[] {
  const left = new Map(Object.entries(zones));
  const out: string[] = [];
  for (const node of ring.successors(t)) {
    const l = node.zone === undefined ? undefined : left.get(node.zone);
    if (l !== undefined && l > 0) {
      left.set(node.zone!, l - 1);
      out.push(node.id);
    }
  }
  return out;
}

function inZone(list: readonly NodeInfo[], zone: string): string[] {
  return list.filter((n) => n.zone === zone).map((n) => n.id);
}

describe('Ring zone-map placement properties', () => {
  it('each zone of the map holds exactly min(count, nodes of the zone) distinct replicas, other nodes none', () => {
    fc.assert(
      fc.property(specs(1, 10), zoneMaps, fc.array(token, { minLength: 1, maxLength: 20 }), (nodes, zones, probes) => {
        const ring = Ring.from(nodes, { zones });
        const n = total(zones);
        for (const t of probes) {
          const list = ring.preferenceListForToken(t, n);
          expect(new Set(ids(list)).size).toBe(list.length);
          for (const [zone, count] of Object.entries(zones)) {
            const available = ring.nodes.filter((x) => x.zone === zone).length;
            expect(inZone(list, zone).length).toBe(Math.min(count, available));
          }
          for (const node of list) expect(node.zone !== undefined && Object.hasOwn(zones, node.zone)).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('the replicas are each zone’s first nodes clockwise, in clockwise order overall', () => {
    fc.assert(
      fc.property(specs(1, 10), zoneMaps, fc.array(token, { minLength: 1, maxLength: 20 }), (nodes, zones, probes) => {
        const ring = Ring.from(nodes, { zones });
        for (const t of probes) expect(ids(ring.preferenceListForToken(t, total(zones)))).toEqual(model(ring, zones, t));
      }),
      RUNS,
    );
  });

  it('every key token agrees with its token lookup and the replica set (cached lists stay right)', () => {
    fc.assert(
      fc.property(specs(1, 8), zoneMaps, fc.array(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 20 }), (nodes, zones, keys) => {
        const ring = Ring.from(nodes, { zones });
        const n = total(zones);
        for (const k of [...keys, ...keys]) {
          const list = ring.preferenceList(k, n);
          expect(list).toBe(ring.preferenceListForToken(ring.token(k), n));
          const rs = ring.replicaSet(k, n);
          expect(rs.primaries).toBe(list);
          expect(rs.zoneReplication).toEqual(ring.zones);
          // Fallbacks are every other node, none a primary.
          expect(new Set([...ids(rs.primaries), ...ids(rs.fallbacks)]).size).toBe(ring.size);
        }
      }),
      RUNS,
    );
  });

  it('adding a node to one zone changes only that zone’s replicas, and only to let the new node in', () => {
    fc.assert(
      fc.property(
        specs(2, 10).filter((nodes) => nodes.some((x) => x.zone !== undefined)),
        zoneMaps,
        fc.array(token, { minLength: 20, maxLength: 60 }),
        ([first, ...rest], zones, probes) => {
          // The added node always has a zone (the first node with one, moved to the end).
          const all = [first!, ...rest];
          const added = all.find((x) => x.zone !== undefined)!;
          const before = Ring.from(all.filter((x) => x !== added), { zones });
          const after = before.withNode(added);
          const n = total(zones);
          for (const t of probes) {
            const x = before.preferenceListForToken(t, n);
            const y = after.preferenceListForToken(t, n);
            for (const zone of Object.keys(zones)) {
              if (zone === added.zone) {
                // Either unchanged, or the new node replaced (or joined) that zone's replicas.
                const was = new Set(inZone(x, zone));
                const now = inZone(y, zone);
                for (const id of now) if (id !== added.id) expect(was.has(id)).toBe(true);
                if (!now.includes(added.id)) expect(now).toEqual([...was]);
              } else {
                expect(inZone(y, zone)).toEqual(inZone(x, zone));
              }
            }
          }
          // What Ring.diff reports to stream goes to the new node only.
          for (const change of Ring.diff(before, after, n)) {
            expect(change.after).toContain(added.id);
            expect(change.after.filter((id) => !change.before.includes(id))).toEqual([added.id]);
          }
        },
      ),
      RUNS,
    );
  });

  it('the map survives JSON, withNode and withoutNode; the same nodes in any order give the same placement', () => {
    fc.assert(
      fc.property(
        specs(1, 8).chain((nodes) => fc.tuple(fc.constant(nodes), fc.shuffledSubarray(nodes, { minLength: nodes.length }))),
        zoneMaps,
        token,
        ([nodes, shuffled], zones, t) => {
          const a = Ring.from(nodes, { zones });
          const b = shuffled.reduce((ring, node) => ring.withNode(node), Ring.empty({ zones }));
          const c = Ring.fromJSON(JSON.parse(JSON.stringify(a)));
          const n = total(zones);
          expect(b.zones).toEqual(a.zones);
          expect(c.zones).toEqual(a.zones);
          expect(ids(b.preferenceListForToken(t, n))).toEqual(ids(a.preferenceListForToken(t, n)));
          expect(ids(c.preferenceListForToken(t, n))).toEqual(ids(a.preferenceListForToken(t, n)));
          expect(a.withoutNode(nodes[0]!.id).zones).toEqual(a.zones);
        },
      ),
      RUNS,
    );
  });

  it('switching a ring whose nodes all sit in zones of the map strands no range (old and new replicas always share a node)', () => {
    fc.assert(
      fc.property(specs(1, 10), zoneMaps, (nodes, zones) => {
        // Every node in a zone of the map.
        const names = Object.keys(zones);
        const placed = nodes.map((x, i) => ({ ...x, zone: names[i % names.length]! }));
        const n = total(zones);
        const before = Ring.from(placed);
        const after = before.withZones(zones);
        for (const change of Ring.diff(before, after, n)) {
          expect(change.after.some((id) => change.before.includes(id))).toBe(true);
        }
      }),
      RUNS,
    );
  });
});
