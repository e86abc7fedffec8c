import { describe, expect, it } from 'vitest';
import {
  SiblingSet,
  VectorClock,
  actorId,
  parseActorId,
  type Version,
} from '../../../src/versioning/index.js';

const vc = (...entries: [string, number][]) => VectorClock.from(entries);

const TOMB = Symbol('tombstone');
function ver(actor: string, counter: number, past: VectorClock = VectorClock.EMPTY, given: string | typeof TOMB = `${actor}${counter}`, timestamp = counter): Version<string> {
  const value = given === TOMB ? undefined : given;
  return { dot: { actor, counter }, past, value, tombstone: value === undefined, timestamp };
}

const dots = (s: SiblingSet<unknown>) => s.versions.map((v) => `${v.dot.actor}:${v.dot.counter}`);

describe('actorId / parseActorId', () => {
  it('joins node id and incarnation', () => {
    expect(actorId('node-a', 'k3')).toBe('node-a~k3');
    expect(parseActorId('node-a~k3')).toEqual({ nodeId: 'node-a', incarnation: 'k3' });
  });

  it('is injective even when node ids contain the separator', () => {
    const a = actorId('a~b', 'c');
    const b = actorId('a', 'bc');
    expect(a).not.toBe(b);
    expect(parseActorId(a)).toEqual({ nodeId: 'a~b', incarnation: 'c' });
    expect(actorId('__proto__', '0')).toBe('__proto__~0');
  });

  it('rejects bad input', () => {
    expect(() => actorId('', 'a')).toThrow(TypeError);
    expect(() => actorId('n', '')).toThrow(TypeError);
    expect(() => actorId('n', 'A')).toThrow(TypeError);
    expect(() => actorId('n', 'a~b')).toThrow(TypeError);
    expect(() => actorId('n', 'a-b')).toThrow(TypeError);
    expect(parseActorId('plain')).toBeUndefined();
    expect(parseActorId('~abc')).toBeUndefined();
    expect(parseActorId('n~A')).toBeUndefined();
  });
});

describe('SiblingSet basics', () => {
  it('empty', () => {
    const e = SiblingSet.empty<string>();
    expect(e.size).toBe(0);
    expect(e.isEmpty).toBe(true);
    expect(e.hasOnlyTombstones).toBe(false);
    expect(e.values()).toEqual([]);
    expect(e.clock().size).toBe(0);
  });

  it('of() dedupes, drops obsoleted and sorts by actor then counter', () => {
    const s = SiblingSet.of([
      ver('b', 1),
      ver('a', 2, vc(['b', 0 + 1])), // obsoletes b:1
      ver('a', 1),
      ver('a', 1, VectorClock.EMPTY, 'other'), // duplicate dot: first wins
      ver('c', 1),
    ]);
    expect(dots(s)).toEqual(['a:1', 'a:2', 'c:1']);
    expect(s.versions.find((v) => v.dot.actor === 'a' && v.dot.counter === 1)!.value).toBe('a1');
    expect(Object.isFrozen(s.versions)).toBe(true);
  });

  it('of() keeps both versions if their pasts cover each other (forged contexts)', () => {
    const s = SiblingSet.of([ver('a', 1, vc(['b', 1])), ver('b', 1, vc(['a', 1]))]);
    expect(dots(s)).toEqual(['a:1', 'b:1']);
  });

  it('of() validates versions', () => {
    expect(() => SiblingSet.of([{ ...ver('a', 1), dot: { actor: '', counter: 1 } }])).toThrow(TypeError);
    expect(() => SiblingSet.of([{ ...ver('a', 1), dot: { actor: 'a', counter: 0 } }])).toThrow(TypeError);
    expect(() => SiblingSet.of([{ ...ver('a', 1), past: {} as never }])).toThrow(TypeError);
    expect(() => SiblingSet.of([{ ...ver('a', 1), tombstone: true }])).toThrow(TypeError);
    expect(() => SiblingSet.of([{ ...ver('a', 1), timestamp: Number.NaN }])).toThrow(TypeError);
    expect(() => SiblingSet.of([null as never])).toThrow(TypeError);
  });

  it('clock() joins dots and pasts and is cached', () => {
    const s = SiblingSet.of([ver('a', 3, vc(['c', 7])), ver('b', 2, vc(['a', 1], ['d', 1]))]);
    expect(s.clock().entries().map(([a, c]) => [a, c])).toEqual([
      ['a', 3],
      ['b', 2],
      ['c', 7],
      ['d', 1],
    ]);
    expect(s.clock()).toBe(s.clock());
  });

  it('clock() entry times come from version timestamps', () => {
    const s = SiblingSet.of([ver('a', 1, VectorClock.EMPTY, 'x', 1234)]);
    expect(s.clock().timeOf('a')).toBe(1234);
  });

  it('live / values / hasOnlyTombstones', () => {
    const s = SiblingSet.of([ver('a', 1), ver('b', 1, VectorClock.EMPTY, TOMB)]);
    expect(s.live().map((v) => v.value)).toEqual(['a1']);
    expect(s.values()).toEqual(['a1']);
    expect(s.hasOnlyTombstones).toBe(false);
    const t = SiblingSet.of([ver('b', 1, VectorClock.EMPTY, TOMB)]);
    expect(t.hasOnlyTombstones).toBe(true);
    expect(t.isEmpty).toBe(false);
    expect(t.values()).toEqual([]);
  });

  it('handles __proto__ / valueOf / constructor actors', () => {
    let s = SiblingSet.empty<string>();
    for (const actor of ['__proto__', 'valueOf', 'constructor']) {
      s = s.write(actor, VectorClock.EMPTY, { value: actor, timestamp: 1 }).set;
    }
    expect(s.values().sort()).toEqual(['__proto__', 'constructor', 'valueOf']);
    s = s.write('__proto__', s.clock(), { value: 'all', timestamp: 2 }).set;
    expect(s.values()).toEqual(['all']);
    expect(s.versions[0]!.dot).toEqual({ actor: '__proto__', counter: 2 });
  });
});

describe('add / merge / descends / equals', () => {
  const a1 = ver('a', 1);
  const b1 = ver('b', 1);
  const a2 = ver('a', 2, vc(['a', 1], ['b', 1])); // obsoletes a1 and b1

  it('add drops what the new version obsoletes', () => {
    const s = SiblingSet.of([a1, b1]).add(a2);
    expect(dots(s)).toEqual(['a:2']);
  });

  it('add ignores duplicates and obsoleted versions', () => {
    const s = SiblingSet.of([a2]);
    expect(s.add(a1)).toBe(s);
    expect(s.add(ver('a', 2, VectorClock.EMPTY, 'dup'))).toBe(s);
    expect(() => s.add({ ...a1, value: undefined })).toThrow(TypeError);
  });

  it('merge unions concurrent versions and drops obsoleted ones', () => {
    const x = SiblingSet.of([a1]);
    const y = SiblingSet.of([b1]);
    expect(dots(x.merge(y))).toEqual(['a:1', 'b:1']);
    expect(dots(x.merge(y).merge(SiblingSet.of([a2])))).toEqual(['a:2']);
    expect(x.merge(x)).toBe(x);
    expect(x.merge(SiblingSet.empty())).toBe(x);
    expect(SiblingSet.empty<string>().merge(x)).toBe(x);
    expect(x.merge(y).equals(y.merge(x))).toBe(true);
  });

  it('descends', () => {
    const x = SiblingSet.of([a1]);
    const xy = SiblingSet.of([a1, b1]);
    const z = SiblingSet.of([a2]);
    expect(xy.descends(x)).toBe(true);
    expect(x.descends(xy)).toBe(false);
    expect(z.descends(xy)).toBe(true);
    expect(xy.descends(z)).toBe(false);
    expect(x.descends(SiblingSet.empty())).toBe(true);
    expect(SiblingSet.empty<string>().descends(x)).toBe(false);
  });

  it('equals compares dots only', () => {
    expect(SiblingSet.of([a1]).equals(SiblingSet.of([ver('a', 1, VectorClock.EMPTY, 'other')]))).toBe(true);
    expect(SiblingSet.of([a1]).equals(SiblingSet.of([b1]))).toBe(false);
    expect(SiblingSet.of([a1]).equals(SiblingSet.of([a1, b1]))).toBe(false);
  });

  it('map transforms live values and keeps tombstones and dots', () => {
    const s = SiblingSet.of([a1, ver('b', 1, VectorClock.EMPTY, TOMB)]);
    const m = s.map((v) => v.length);
    expect(m.values()).toEqual([2]);
    expect(m.equals(s as never)).toBe(true);
    expect(m.versions[1]!.tombstone).toBe(true);
    expect(m.versions[1]!.value).toBeUndefined();
  });
});

describe('write', () => {
  const A = actorId('a', '1');
  const B = actorId('b', '1');

  it('issues counter = local clock + 1 and keeps uncovered versions as siblings', () => {
    let s = SiblingSet.empty<string>();
    const r1 = s.write(A, VectorClock.EMPTY, { value: 'v1', timestamp: 10 });
    expect(r1.version.dot).toEqual({ actor: A, counter: 1 });
    expect(r1.version.timestamp).toBe(10);
    s = r1.set;
    const r2 = s.write(B, VectorClock.EMPTY, { value: 'v2', timestamp: 11 });
    expect(r2.version.dot).toEqual({ actor: B, counter: 1 });
    expect(r2.set.values()).toEqual(['v1', 'v2']);
    const r3 = r2.set.write(A, r2.set.clock(), { value: 'v3', timestamp: 12 });
    expect(r3.version.dot).toEqual({ actor: A, counter: 2 });
    expect(r3.set.values()).toEqual(['v3']);
  });

  it('a write whose context covers some siblings keeps the others, sorted, and leaves the old set as it was', () => {
    const C = actorId('c', '1');
    const s = SiblingSet.of([ver(A, 1), ver(B, 1), ver(C, 1)]);
    // Covers a's and c's versions only: b's survives as a sibling of the new one.
    const r = s.write(A, vc([A, 1], [C, 1]), { value: 'new', timestamp: 5 });
    expect(dots(r.set)).toEqual([`${A}:2`, `${B}:1`]);
    expect(dots(s)).toEqual([`${A}:1`, `${B}:1`, `${C}:1`]);
    // Covering none keeps all three next to it; covering all leaves it alone.
    expect(dots(s.write(C, VectorClock.EMPTY, { value: 'x', timestamp: 6 }).set)).toEqual([`${A}:1`, `${B}:1`, `${C}:1`, `${C}:2`]);
    expect(dots(s.write(B, s.clock(), { value: 'y', timestamp: 7 }).set)).toEqual([`${B}:2`]);
    expect(dots(s.add(ver(B, 2, vc([B, 1]))))).toEqual([`${A}:1`, `${B}:2`, `${C}:1`]);
  });

  it('two writes through the same actor with the same stale context both survive', () => {
    const base = SiblingSet.empty<string>().write(A, VectorClock.EMPTY, { value: 'v0', timestamp: 1 }).set;
    const ctx = base.clock();
    const s1 = base.write(A, ctx, { value: 'x', timestamp: 2 }).set;
    const s2 = s1.write(A, ctx, { value: 'y', timestamp: 3 });
    expect(s2.version.dot.counter).toBe(3);
    expect(s2.set.values()).toEqual(['x', 'y']);
  });

  it('a counter is never derived from the context alone', () => {
    const s = SiblingSet.of([ver(A, 5)]);
    const r = s.write(A, VectorClock.EMPTY, { value: 'n', timestamp: 1 });
    expect(r.version.dot.counter).toBe(6);
    expect(r.set.size).toBe(2);
  });

  it('a context claiming more of the actor than the set knows never makes a version cover itself', () => {
    const s = SiblingSet.of([ver(A, 1)]);
    const r = s.write(A, vc([A, 9]), { value: 'n', timestamp: 1 });
    expect(r.version.dot.counter).toBe(10);
    expect(r.version.past.covers(r.version.dot)).toBe(false);
    expect(r.set.values()).toEqual(['n']);
    expect(r.set.clock().descends(vc([A, 9]))).toBe(true);
  });

  it('a delete is a tombstone version; a concurrent write survives it', () => {
    const base = SiblingSet.empty<string>().write(A, VectorClock.EMPTY, { value: 'v', timestamp: 1 }).set;
    const ctx = base.clock();
    const del = base.write(A, ctx, { tombstone: true, timestamp: 2 });
    expect(del.version.tombstone).toBe(true);
    expect(del.version.value).toBeUndefined();
    expect(del.set.hasOnlyTombstones).toBe(true);
    const other = base.merge(SiblingSet.empty<string>()).write(B, ctx, { value: 'w', timestamp: 3 }).set;
    const merged = del.set.merge(other);
    expect(merged.size).toBe(2);
    expect(merged.values()).toEqual(['w']);
    expect(merged.hasOnlyTombstones).toBe(false);
  });

  it('prunes the past only when it is over maxClockEntries', () => {
    const big = VectorClock.from(Array.from({ length: 12 }, (_, i) => [`x${i}`, 1, i] as const));
    const r = SiblingSet.empty<string>().write(A, big, { value: 'v', timestamp: 1 });
    expect(r.version.past.size).toBe(10);
    expect(r.version.past.get('x0')).toBe(0);
    expect(r.version.past.get('x11')).toBe(1);
    const r2 = SiblingSet.empty<string>().write(A, big, { value: 'v', timestamp: 1, maxClockEntries: 12 });
    expect(r2.version.past).toBe(big);
    const r3 = SiblingSet.empty<string>().write(A, big, { value: 'v', timestamp: 1, maxClockEntries: 3 });
    expect(r3.version.past.size).toBe(3);
  });

  it('counterFloor lifts the new counter above a node-wide high-water mark', () => {
    const s = SiblingSet.of([ver(A, 2)]);
    expect(s.write(A, VectorClock.EMPTY, { value: 'n', timestamp: 1, counterFloor: 40 }).version.dot.counter).toBe(41);
    expect(s.write(A, VectorClock.EMPTY, { value: 'n', timestamp: 1, counterFloor: 1 }).version.dot.counter).toBe(3);
    expect(() => s.write(A, VectorClock.EMPTY, { value: 'n', timestamp: 1, counterFloor: -1 })).toThrow(RangeError);
    expect(() => s.write(A, VectorClock.EMPTY, { value: 'n', timestamp: 1, counterFloor: 1.5 })).toThrow(RangeError);
  });

  it('validates its arguments', () => {
    const s = SiblingSet.empty<string>();
    expect(() => s.write('', VectorClock.EMPTY, { value: 'v', timestamp: 1 })).toThrow(TypeError);
    expect(() => s.write(A, {} as never, { value: 'v', timestamp: 1 })).toThrow(TypeError);
    expect(() => s.write(A, VectorClock.EMPTY, { timestamp: 1 })).toThrow(TypeError);
    expect(() => s.write(A, VectorClock.EMPTY, { value: 'v', tombstone: true, timestamp: 1 })).toThrow(TypeError);
    expect(() => s.write(A, VectorClock.EMPTY, { value: 'v', timestamp: Number.NaN })).toThrow(TypeError);
    expect(() => s.write(A, VectorClock.EMPTY, { value: 'v', timestamp: 1, maxClockEntries: 0 })).toThrow(RangeError);
    expect(() => s.write(A, VectorClock.EMPTY, null as never)).toThrow(TypeError);
  });
});
