import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecordArena, readPlaced, type Placed } from '../../../src/storage/record-arena.js';
import { MemoryStorage } from '../../../src/storage/index.js';

const alloc = (n: number): Uint8Array => new Uint8Array(n);
const filled = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) & 0xff);
const placed = (bytes: Uint8Array): Placed => ({ slab: bytes, offset: 0, length: bytes.byteLength });

describe('RecordArena (MemoryStorage record bytes)', () => {
  it('property: every live record reads back as placed, through frees and compactions', () => {
    // Sizes: empty, small (byte loop), large enough for set(), and over the shared limit (own buffer).
    const size = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 65, max: 3000 }), fc.constant(40_000));
    const op = fc.oneof(
      fc.record({ kind: fc.constant('place' as const), size, seed: fc.nat() }),
      fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('compact' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const arena = new RecordArena();
        const live: { p: Placed; bytes: Uint8Array }[] = [];
        const freed: { p: Placed; bytes: Uint8Array }[] = [];
        for (const o of ops) {
          if (o.kind === 'place') {
            const bytes = filled(o.size, o.seed);
            const p = placed(new Uint8Array(o.size));
            arena.place(p, bytes);
            bytes[0] = bytes[0]! ^ 0xff; // the arena holds a copy: changing the caller's bytes changes nothing
            bytes[0] = bytes[0]! ^ 0xff;
            live.push({ p, bytes });
          } else if (o.kind === 'free' && live.length > 0) {
            const [gone] = live.splice(o.pick % live.length, 1);
            arena.free(gone!.p);
            freed.push(gone!);
          } else if (o.kind === 'compact') {
            arena.compact(live.map((l) => l.p));
          }
          const shared = live.reduce((sum, l) => sum + (l.p.length <= 32 * 1024 ? l.p.length : 0), 0);
          expect(arena.liveBytes).toBe(shared);
        }
        for (const l of live) expect(readPlaced(l.p, alloc)).toEqual(l.bytes);
        // A freed record still reads what it held (a scan's snapshot may still point there).
        for (const f of freed) expect(readPlaced(f.p, alloc)).toEqual(f.bytes);
      }),
      { numRuns: 200 },
    );
  });

  it('asks for compaction only once the garbage outweighs the live bytes (and is over 1 MiB)', () => {
    const arena = new RecordArena();
    const rows = Array.from({ length: 600 }, (_, i) => {
      const p = placed(new Uint8Array(4096));
      arena.place(p, filled(4096, i));
      return p;
    });
    expect(arena.liveBytes).toBe(600 * 4096);
    for (let i = 0; i < 299; i++) arena.free(rows[i]!);
    expect(arena.shouldCompact).toBe(false); // 299 freed < 301 live
    arena.free(rows[299]!);
    arena.free(rows[300]!);
    expect(arena.shouldCompact).toBe(true);
    const live = rows.slice(301);
    arena.compact(live);
    expect(arena.garbageBytes).toBe(0);
    expect(arena.liveBytes).toBe(299 * 4096);
    live.forEach((p, i) => expect(readPlaced(p, alloc)).toEqual(filled(4096, 301 + i)));
  });

  it('refuses to place bytes of another length than the target says', () => {
    const arena = new RecordArena();
    expect(() => arena.place(placed(new Uint8Array(3)), new Uint8Array(4))).toThrow(RangeError);
  });
});

describe('RecordArena.preallocate (slabs mapped ahead of need)', () => {
  const SLAB = 256 * 1024;

  // Byte-for-byte, without toEqual's element-by-element walk (thousands of 16 KB records).
  const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

  it('rounds up to whole 256 KiB slabs, fills them before allocating any, and keeps every record through compactions', () => {
    const arena = new RecordArena();
    arena.preallocate(0);
    expect(arena.spareBytes).toBe(0);
    arena.preallocate(1);
    expect(arena.spareBytes).toBe(SLAB);
    // 65 more slabs: a 16 MiB block of 64, and a block of 1.
    arena.preallocate(64 * SLAB + 1);
    expect(arena.spareBytes).toBe(66 * SLAB);
    const parents: ArrayBufferLike[] = [];
    const rows: { p: Placed; bytes: Uint8Array }[] = [];
    const place = (i: number): void => {
      const bytes = filled(16_000, i);
      const p = placed(new Uint8Array(16_000));
      arena.place(p, bytes);
      rows.push({ p, bytes });
      if (!parents.includes(p.slab.buffer)) parents.push(p.slab.buffer);
    };
    // 16 records fill one slab (16 * 16,000 < 256 KiB < 17 * 16,000).
    for (let i = 0; i < 16 * 66; i++) {
      place(i);
      expect(arena.spareBytes).toBe((66 - Math.floor(i / 16) - 1) * SLAB);
    }
    // All 66 slabs came out of the reservation's three blocks, in the order reserved; none was allocated.
    expect(parents.map((b) => b.byteLength)).toEqual([SLAB, 64 * SLAB, SLAB]);
    // Past the reservation, slabs are allocated as needed.
    place(16 * 66);
    expect(parents).toHaveLength(4);
    expect(parents[3]!.byteLength).toBe(SLAB);
    for (const r of rows) expect(same(readPlaced(r.p, alloc), r.bytes)).toBe(true);
    // A compaction draws on a new reservation too; every record still reads back.
    arena.preallocate(100 * SLAB);
    for (let i = 0; i < rows.length; i += 2) arena.free(rows[i]!.p);
    const live = rows.filter((_, i) => i % 2 === 1);
    arena.compact(live.map((r) => r.p));
    expect(arena.spareBytes).toBe((100 - Math.ceil(live.length / 16)) * SLAB);
    for (const r of live) expect(same(readPlaced(r.p, alloc), r.bytes)).toBe(true);
  });

  it('touches the pages up front: filling the reservation with records takes few page faults', () => {
    // 32 MiB of records: 8,192 pages of 4 KiB, each a fault at its first write
    // unless it was touched before (with transparent huge pages, fewer).
    const arena = new RecordArena();
    arena.preallocate(128 * SLAB);
    const bytes = filled(16_000, 7);
    const target = placed(new Uint8Array(16_000));
    const faults0 = process.resourceUsage().minorPageFault;
    for (let i = 0; i < 128 * 16; i++) arena.place(target, bytes);
    const faults = process.resourceUsage().minorPageFault - faults0;
    expect(arena.spareBytes).toBe(0); // every record went into the reservation
    expect(faults).toBeLessThan(8192 / 4);
  });
});

describe('MemoryStorage over its arena', () => {
  it('overwrites that trigger compactions keep every record and an open scan exact', async () => {
    const s = new MemoryStorage();
    await s.open();
    const key = (i: number): Uint8Array => new TextEncoder().encode(`k${i}`);
    const KEYS = 200;
    for (let i = 0; i < KEYS; i++) await s.put(key(i), i, filled(2000, i));
    const scan = s.scan({ start: 0, end: 0 });
    const first = await scan.next();
    expect(first.value?.token).toBe(0);
    // 20 rounds of overwrites, 8 MB of garbage: several compactions while the scan is open.
    for (let round = 1; round <= 20; round++) {
      for (let i = 0; i < KEYS; i++) await s.put(key(i), i, filled(2000, i + round * 1000));
    }
    for (let i = 0; i < KEYS; i += 2) await s.delete(key(i));
    // The scan reads its snapshot: the records as they were when it started.
    let n = 1;
    for await (const e of scan) {
      expect(e.record).toEqual(filled(2000, e.token));
      n++;
    }
    expect(n).toBe(KEYS);
    for (let i = 0; i < KEYS; i++) {
      expect(await s.get(key(i))).toEqual(i % 2 === 0 ? undefined : filled(2000, i + 20_000));
    }
  });

  it('hints live in the arena too: compactions keep them, and an open hints() snapshot reads what it saw', async () => {
    const s = new MemoryStorage();
    await s.open();
    const key = (i: number): Uint8Array => new TextEncoder().encode(`h${i}`);
    for (let i = 0; i < 100; i++) {
      await s.putHint({ id: `hint-${i}`, target: i % 2 === 0 ? 'n1' : 'n2', key: key(i), token: i, record: filled(3000, i), createdAt: 1000 + i });
    }
    const snapshot = s.hints('n1');
    const first = await snapshot.next();
    expect(first.value?.id).toBe('hint-0');
    // Replace half the hints, delete the others, and write enough rows to compact several times.
    for (let i = 0; i < 100; i += 2) {
      await s.putHint({ id: `hint-${i}`, target: 'n1', key: key(i), token: i, record: filled(3000, i + 500), createdAt: 1000 + i });
    }
    for (let i = 1; i < 100; i += 2) await s.deleteHint(`hint-${i}`);
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 100; i++) await s.put(key(1000 + i), i, filled(3000, round * 100 + i));
    }
    // The snapshot: the n1 hints as they were when it started.
    let n = 1;
    for await (const h of snapshot) {
      expect(h.record).toEqual(filled(3000, h.token));
      expect(h.key).toEqual(key(h.token));
      n++;
    }
    expect(n).toBe(50);
    // Now: the replaced n1 hints, in createdAt order; the deleted n2 hints are gone.
    const now = [];
    for await (const h of s.hints()) now.push(h);
    expect(now.map((h) => h.id)).toEqual(Array.from({ length: 50 }, (_, k) => `hint-${2 * k}`));
    for (const h of now) expect(h.record).toEqual(filled(3000, h.token + 500));
  });
});
