import { allocBytes } from '../internal/bytes.js';
import { KeyIndex, keyHash } from './key-index.js';
import { AbstractStorage } from './abstract-storage.js';
import { RecordArena, readPlaced, type Placed } from './record-arena.js';
import type { StorageIterable } from './storage-iterator.js';
import { tokenInRange } from './token-range.js';
import type { StorageCapabilities, StoredEntry, StoredHint, TokenRangeQuery } from './types.js';

/**
 * A key and its record, one after the other in the storage's
 * {@link RecordArena}, outside the JS heap: `slab[offset, offset +
 * keyLength)` is the key, the rest up to `offset + length` the record (a
 * compaction may move them, never change them).
 */
interface KeyAndRecord extends Placed {
  readonly keyLength: number;
}

/**
 * One record, the one object the heap holds per stored key. Its key, token
 * and record never change (a put makes a new row), so a scan's snapshot of
 * rows stays exact; `sorted`, `slot` and `dead` say where the row sits in
 * the scan index.
 */
interface Row extends KeyAndRecord {
  readonly token: number;
  /** In `#sorted` (true) or `#pending` (false)? */
  sorted: boolean;
  /** Index in that array. */
  slot: number;
  /** Deleted or replaced under another token while in `#sorted`; dropped at the next merge. */
  dead: boolean;
}

/** A stored hint: its key and record lie in the arena, as a row's do. */
interface HintRow extends KeyAndRecord {
  readonly id: string;
  readonly target: string;
  readonly token: number;
  readonly createdAt: number;
  /** Insertion order (kept by a replacement). */
  readonly seq: number;
}

/** Pending (or dead) rows are merged into the index once there are this many… */
const MERGE_AT = 1024;
/** …and they are at least 1/MERGE_SHARE of the index. */
const MERGE_SHARE = 16;

const CAPABILITIES: StorageCapabilities = Object.freeze({ durable: false, orderedScan: true });

// A real copy (Buffer#slice would alias), by memcpy.
const copy = (b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(b.byteLength);
  out.set(b);
  return out;
};

/** Token, then key bytes (a shorter key before the longer one it starts). */
function compareRows(a: Row, b: Row): number {
  if (a.token !== b.token) return a.token - b.token;
  const n = Math.min(a.keyLength, b.keyLength);
  const x = a.slab;
  const y = b.slab;
  for (let i = 0; i < n; i++) {
    const d = x[a.offset + i]! - y[b.offset + i]!;
    if (d !== 0) return d;
  }
  return a.keyLength - b.keyLength;
}

/** The first index in `rows` (sorted) whose token is greater than `token`. */
function firstAbove(rows: readonly Row[], token: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((rows[mid] as Row).token <= token) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const alive = (row: Row): boolean => !row.dead;

/** Merges two (token, key)-sorted row lists; drops dead rows of `a` if asked. */
function mergeRows(a: readonly Row[], b: readonly Row[], dropDead = false): Row[] {
  const out: Row[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    if (dropDead && x !== undefined && x.dead) {
      i++;
      continue;
    }
    const y = b[j];
    if (y === undefined || (x !== undefined && compareRows(x, y) <= 0)) {
      out.push(x as Row);
      i++;
    } else {
      out.push(y);
      j++;
    }
  }
  return out;
}

function* entries(rows: readonly Row[]): Generator<StoredEntry, void, undefined> {
  for (const row of rows) {
    yield { key: readPlaced(row, allocBytes, 0, row.keyLength), token: row.token, record: readPlaced(row, allocBytes, row.keyLength) };
  }
}

function* hintCopies(rows: readonly HintRow[]): Generator<StoredHint, void, undefined> {
  for (const row of rows) {
    yield {
      id: row.id,
      target: row.target,
      key: readPlaced(row, allocBytes, 0, row.keyLength),
      token: row.token,
      record: readPlaced(row, allocBytes, row.keyLength),
      createdAt: row.createdAt,
    };
  }
}

/**
 * The in-memory {@link StorageAdapter}: the reference implementation that
 * runs the storage compliance suite.
 *
 * Data lives as long as the object: `close()` then `open()` on the same
 * object finds everything again (a restart of a node over the same storage
 * object is a real restart); nothing survives the process. Keys, records,
 * hints and meta values are copied on the way in and out. `scan()` and
 * `hints()` iterate a snapshot taken at their first step, so writes during
 * iteration neither break nor show up in the iteration.
 *
 * `scan()` keeps a token-sorted index up to date lazily: a write of a new
 * key appends it to a pending list, an overwrite under the same token
 * replaces the row where it sits, a delete marks it dead. A scan binary-
 * searches the index and adds the pending rows in its range: O(log n + m +
 * k) for m entries in range and k pending rows. Pending and dead rows are
 * merged into the index (O(n)) once they reach 1/16 of it.
 *
 * @example
 * ```ts
 * const storage = new MemoryStorage();
 * await storage.open();
 * await storage.put(key, token, record);
 * ```
 */
export class MemoryStorage extends AbstractStorage {
  /** `{ durable: false, orderedScan: true }` */
  readonly capabilities: StorageCapabilities = CAPABILITIES;
  /** Key bytes → row (no string is made to look a key up). */
  readonly #rows = new KeyIndex<Row>();
  /** The records' bytes. */
  readonly #arena = new RecordArena();
  /** Rows in (token, key) order, some possibly dead. */
  #sorted: Row[] = [];
  /** Rows written under a new key (or a new token) since the last merge, unordered. */
  #pending: Row[] = [];
  #deadInSorted = 0;
  readonly #hints = new Map<string, HintRow>();
  readonly #meta = new Map<string, Uint8Array>();
  #hintSeq = 0;

  protected _get(key: Uint8Array): Uint8Array | undefined {
    const row = this.#rows.get(key, keyHash(key));
    // The caller's copy comes from a shared slab (no off-heap allocation per read).
    return row === undefined ? undefined : readPlaced(row, allocBytes, row.keyLength);
  }

  protected _put(key: Uint8Array, token: number, record: Uint8Array): void {
    const hash = keyHash(key);
    const old = this.#rows.get(key, hash);
    if (old !== undefined && old.token === token) {
      // Same place in the index: replace the row where it sits (no re-sort).
      const row = this.#row(key, token, record, old.sorted, old.slot);
      (old.sorted ? this.#sorted : this.#pending)[old.slot] = row;
      this.#rows.set(row, key, hash);
      this.#free(old);
      return;
    }
    if (old !== undefined) this.#unindex(old);
    const row = this.#row(key, token, record, false, this.#pending.length);
    this.#pending.push(row);
    this.#rows.set(row, key, hash);
    if (old !== undefined) this.#free(old);
  }

  protected _delete(key: Uint8Array): void {
    const old = this.#rows.delete(key, keyHash(key));
    if (old !== undefined) {
      this.#unindex(old);
      this.#free(old);
    }
  }

  /** A new row, its key and record copied into the arena. */
  #row(key: Uint8Array, token: number, record: Uint8Array, sorted: boolean, slot: number): Row {
    const keyLength = key.byteLength;
    const row: Row = { token, slab: record, offset: 0, keyLength, length: keyLength + record.byteLength, sorted, slot, dead: false };
    this.#arena.place(row, key, record);
    return row;
  }

  /** `row` (or a hint) left the store: its bytes are garbage; compacts the arena once that pays. */
  #free(row: Placed): void {
    this.#arena.free(row);
    if (this.#arena.shouldCompact) this.#arena.compact(this.#liveRows());
  }

  /** Everything placed in the arena and still stored (rows and hints), once each. */
  *#liveRows(): Generator<Placed, void, undefined> {
    for (const row of this.#sorted) if (!row.dead) yield row;
    yield* this.#pending;
    yield* this.#hints.values();
  }

  /** Entries in `range`, in ascending token order, then key bytes; a snapshot of the range. */
  protected _scan(range: TokenRangeQuery): StorageIterable<StoredEntry> {
    // Merge pending rows into the index only once they are a sizeable share
    // of it (amortised O(1) per new key); until then each scan picks out the
    // few pending rows in its range, so a new key between scans costs O(k), not O(n).
    const pending = this.#pending;
    if (pending.length >= MERGE_AT && pending.length * MERGE_SHARE >= this.#sorted.length) this.#merge();
    const sorted = this.#sorted;
    const { start, end } = range;
    let rows: Row[];
    if (start === end) rows = sorted.slice();
    else {
      const from = firstAbove(sorted, start);
      const to = firstAbove(sorted, end);
      // Wrapping (start > end): [0, end] then (start, max], still in ascending token order.
      rows = start < end ? sorted.slice(from, to) : sorted.slice(0, to).concat(sorted.slice(from));
    }
    if (this.#deadInSorted > 0) rows = rows.filter(alive);
    if (this.#pending.length > 0) {
      const extra = this.#pending.filter((row) => tokenInRange(row.token, range));
      if (extra.length > 0) rows = mergeRows(rows, extra.sort(compareRows));
    }
    return entries(rows);
  }

  protected _putHint(hint: StoredHint): void {
    const old = this.#hints.get(hint.id);
    const keyLength = hint.key.byteLength;
    const row: HintRow = {
      id: hint.id,
      target: hint.target,
      token: hint.token,
      createdAt: hint.createdAt,
      // Replacing keeps the hint's place in insertion order.
      seq: old?.seq ?? this.#hintSeq++,
      slab: hint.record,
      offset: 0,
      keyLength,
      length: keyLength + hint.record.byteLength,
    };
    this.#arena.place(row, hint.key, hint.record);
    this.#hints.set(hint.id, row);
    if (old !== undefined) this.#free(old);
  }

  /** Hints (only those for `target` if given), oldest `createdAt` first, then insertion order; a snapshot. */
  protected _hints(target: string | undefined): StorageIterable<StoredHint> {
    const rows = [...this.#hints.values()].filter((r) => target === undefined || r.target === target);
    rows.sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq);
    return hintCopies(rows);
  }

  protected _deleteHint(id: string): void {
    const old = this.#hints.get(id);
    if (old === undefined) return;
    this.#hints.delete(id);
    this.#free(old);
  }

  protected _getMeta(name: string): Uint8Array | undefined {
    const value = this.#meta.get(name);
    return value === undefined ? undefined : copy(value);
  }

  protected _setMeta(name: string, value: Uint8Array): void {
    this.#meta.set(name, copy(value));
  }

  /** Takes a row that is leaving (deleted, or re-put under another token) out of the index. */
  #unindex(row: Row): void {
    if (row.sorted) {
      row.dead = true;
      this.#deadInSorted++;
      // Bound the memory dead rows hold when no scan comes to merge them away.
      if (this.#deadInSorted > MERGE_AT && this.#deadInSorted * 2 > this.#sorted.length) this.#merge();
      return;
    }
    const last = this.#pending.pop() as Row;
    if (last !== row) {
      this.#pending[row.slot] = last;
      last.slot = row.slot;
    }
  }

  /** Merges the pending rows into the sorted index and drops its dead rows. */
  #merge(): void {
    const merged = mergeRows(this.#sorted, this.#pending.sort(compareRows), true);
    for (let i = 0; i < merged.length; i++) {
      const row = merged[i] as Row;
      row.sorted = true;
      row.slot = i;
    }
    this.#sorted = merged;
    this.#pending = [];
    this.#deadInSorted = 0;
  }
}
