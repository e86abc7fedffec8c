/**
 * Ring suite: lookup speed vs the `hashring` package, balance, and data movement on join.
 *
 * @module
 */
import { createRequire } from 'node:module';
import murmur from 'murmurhash3js-revisited';
import { Ring, hashKey } from '../src/ring/index.js';
import { fmtOps, fmtPct, fmtRatio, measure, type Row } from './harness.js';

interface HashRingLike {
  range(key: string, size: number, unique?: boolean): string[];
  add(servers: string | string[]): HashRingLike;
  ring: { value: number; server: string }[];
}
const require = createRequire(import.meta.url);
const HashRing = require('hashring') as new (servers: string[]) => HashRingLike;

const SUITE = 'ring';
const NODE_IDS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
const KEY_COUNT = 100_000;
const TWO_32 = 2 ** 32;

/** Deterministic pseudo-random keys (mulberry32), so runs are comparable. */
function makeKeys(count: number, seed = 42): string[] {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_32;
  };
  return Array.from({ length: count }, () => `user:${Math.floor(rand() * 1e12).toString(36)}:${Math.floor(rand() * 1e6)}`);
}

function cv(values: readonly number[]): number {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return Math.sqrt(variance) / mean;
}

/** Primary ownership of a hashring instance, from its sorted points. */
function hashringOwnership(ring: HashRingLike): number[] {
  const owned = new Map<string, number>();
  const points = ring.ring;
  for (let i = 0; i < points.length; i++) {
    const prev = i === 0 ? points[points.length - 1]!.value - TWO_32 : points[i - 1]!.value;
    const p = points[i]!;
    owned.set(p.server, (owned.get(p.server) ?? 0) + (p.value - prev) / TWO_32);
  }
  return [...owned.values()];
}

const goal = (ok: boolean, text: string): string => `${text} ${ok ? 'PASS' : 'FAIL'}`;

/** Runs the ring suite. */
export async function ringBench(): Promise<Row[]> {
  const rows: Row[] = [];
  const keys = makeKeys(KEY_COUNT);
  const mask = KEY_COUNT; // cycle with a modulo (KEY_COUNT is not a power of 2)

  // (1) lookups: preferenceList(key, 3) vs hashring range(key, 3), same nodes, same keys.
  const ring = Ring.from(NODE_IDS.map((id) => ({ id })));
  const hr = new HashRing(NODE_IDS);
  const ours = measure('Ring#preferenceList(key, 3)', (i) => ring.preferenceList(keys[i % mask]!, 3));
  const theirs = measure('hashring#range(key, 3)', (i) => hr.range(keys[i % mask]!, 3));
  rows.push({
    suite: SUITE,
    metric: 'preferenceList(key, 3), 10 nodes, 100k keys',
    value: fmtOps(ours),
    baseline: `hashring range(key, 3): ${fmtOps(theirs)}`,
    ratio: fmtRatio(ours, theirs),
    goal: goal(ours / theirs >= 8, '>= 8x'),
  });

  // Key hashing without allocation vs a TextEncoder.encode per call.
  const encoder = new TextEncoder();
  const hashed = measure('hashKey(key)', (i) => hashKey(keys[i % mask]!));
  const naive = measure('hash32(encode(key))', (i) => murmur.x86.hash32(encoder.encode(keys[i % mask]!), 0));
  rows.push({
    suite: SUITE,
    metric: 'hashKey(key) (validated, no allocation)',
    value: fmtOps(hashed),
    baseline: `hash32(TextEncoder.encode(key)): ${fmtOps(naive)}`,
    ratio: fmtRatio(hashed, naive),
    goal: goal(hashed / naive >= 1, '>= 1x'),
  });

  // (2) balance: ownership coefficient of variation over 10 equal nodes.
  const ownCv = cv([...ring.ownership().values()]);
  const hrCv = cv(hashringOwnership(hr));
  rows.push({
    suite: SUITE,
    metric: 'ownership CV, 10 nodes, default tokens (ideal 0)',
    value: fmtPct(ownCv),
    baseline: `hashring (160 pts/node): ${fmtPct(hrCv)}`,
    ratio: fmtRatio(ownCv, hrCv),
    goal: goal(ownCv <= 0.07, '<= 7% (peers: 7-8%)'),
  });

  // (3) movement when an 11th node joins.
  const joined = ring.withNode({ id: 'k' });
  let movedPrimary = 0;
  let movedBetweenOld = 0;
  let changedSets = 0;
  let replicaMovesBetweenOld = 0;
  for (const key of keys) {
    const b1 = ring.preferenceList(key, 1)[0]!.id;
    const a1 = joined.preferenceList(key, 1)[0]!.id;
    if (a1 !== b1) {
      movedPrimary++;
      if (a1 !== 'k') movedBetweenOld++;
    }
    const b3 = ring.preferenceList(key, 3).map((n) => n.id);
    const a3 = joined.preferenceList(key, 3).map((n) => n.id);
    const gained = a3.filter((id) => !b3.includes(id));
    if (gained.length > 0) changedSets++;
    replicaMovesBetweenOld += gained.filter((id) => id !== 'k').length;
  }
  const hrJoined = new HashRing([...NODE_IDS, 'k']);
  let hrMoved = 0;
  for (const key of keys) if (hr.range(key, 1)[0] !== hrJoined.range(key, 1)[0]) hrMoved++;

  const ideal1 = 1 / 11;
  const moved1 = movedPrimary / KEY_COUNT;
  rows.push({
    suite: SUITE,
    metric: 'keys moved on 11th join, n=1 (100k keys)',
    value: fmtPct(moved1),
    baseline: `ideal 1/11: ${fmtPct(ideal1)} (hashring ${fmtPct(hrMoved / KEY_COUNT)})`,
    ratio: fmtRatio(moved1, ideal1),
    goal: goal(moved1 <= ideal1 * 1.25, '<= 1.25x ideal'),
  });
  rows.push({
    suite: SUITE,
    metric: 'keys moved between old nodes, n=1',
    value: String(movedBetweenOld),
    baseline: 'ideal 0',
    ratio: movedBetweenOld === 0 ? '1.00x' : 'n/a',
    goal: goal(movedBetweenOld === 0, '= 0'),
  });
  const ideal3 = 3 / 11;
  const moved3 = changedSets / KEY_COUNT;
  rows.push({
    suite: SUITE,
    metric: 'replica sets changed on 11th join, n=3',
    value: fmtPct(moved3),
    baseline: `ideal 3/11: ${fmtPct(ideal3)}`,
    ratio: fmtRatio(moved3, ideal3),
    goal: goal(moved3 <= ideal3 * 1.25, '<= 1.25x ideal'),
  });
  rows.push({
    suite: SUITE,
    metric: 'replicas moved between old nodes, n=3',
    value: String(replicaMovesBetweenOld),
    baseline: 'ideal 0',
    ratio: replicaMovesBetweenOld === 0 ? '1.00x' : 'n/a',
    goal: goal(replicaMovesBetweenOld === 0, '= 0'),
  });

  // Ring.diff (exact, over token space) against the sample above.
  const diffShare = Ring.diff(ring, joined, 3).reduce(
    (s, r) => s + (r.start === r.end ? TWO_32 : (r.end - r.start + TWO_32) % TWO_32) / TWO_32,
    0,
  );
  rows.push({
    suite: SUITE,
    metric: 'Ring.diff(n=3) token-space share on join',
    value: fmtPct(diffShare),
    baseline: `sampled: ${fmtPct(moved3)}`,
    ratio: fmtRatio(diffShare, moved3),
    goal: goal(Math.abs(diffShare - moved3) < 0.01, '~1x (+-1pt)'),
  });
  return rows;
}
