import { bytesKey } from '../internal/bytes.js';
import { ErrorCodes, KvError } from '../errors/index.js';
import { throwIfAborted } from '../internal/signals.js';
import type {
  StorageAdapter,
  StorageCallOptions,
  StorageCapabilities,
  StoredEntry,
  StoredHint,
  TokenRangeQuery,
} from './types.js';

interface Row {
  key: Uint8Array;
  token: number;
  record: Uint8Array;
}

interface HintRow {
  hint: StoredHint;
  seq: number;
}

// One char per byte: a cheap, exact map key for bytes.
const hex = bytesKey;
// A real copy (Buffer#slice would alias), by memcpy.
const copy = (b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(b.byteLength);
  out.set(b);
  return out;
};

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** True if `token` lies in the half-open ring range `(start, end]` (wrapping; start === end is the whole ring). */
export function tokenInRange(token: number, range: TokenRangeQuery): boolean {
  const { start, end } = range;
  if (start < end) return token > start && token <= end;
  if (start === end) return true;
  return token > start || token <= end;
}

function checkBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`Expected \`${what}\` to be a Uint8Array, got ${typeof value}`);
}

function checkToken(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Expected \`${what}\` to be an unsigned 32-bit integer, got ${String(value)}`);
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
 * @example
 * ```ts
 * const storage = new MemoryStorage();
 * await storage.open();
 * await storage.put(key, token, record);
 * ```
 */
export class MemoryStorage implements StorageAdapter {
  /** `{ durable: false, orderedScan: true }` */
  readonly capabilities: StorageCapabilities = Object.freeze({ durable: false, orderedScan: true });
  #status: StorageAdapter['status'] = 'closed';
  readonly #rows = new Map<string, Row>();
  readonly #hints = new Map<string, HintRow>();
  readonly #meta = new Map<string, Uint8Array>();
  #hintSeq = 0;

  /** `'opening' | 'open' | 'closing' | 'closed'`; starts `'closed'`. */
  get status(): StorageAdapter['status'] {
    return this.#status;
  }

  /** Opens (idempotent). The data held before a `close()` is still there. */
  async open(): Promise<void> {
    if (this.#status === 'open' || this.#status === 'opening') return;
    this.#status = 'opening';
    await Promise.resolve();
    this.#status = 'open';
  }

  /** Closes (idempotent). Calls made afterwards reject with `KV_NOT_STARTED`. */
  async close(): Promise<void> {
    if (this.#status === 'closed' || this.#status === 'closing') return;
    this.#status = 'closing';
    await Promise.resolve();
    this.#status = 'closed';
  }

  /** Same as {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #check(options: StorageCallOptions | undefined): void {
    throwIfAborted(options?.signal);
    if (this.#status !== 'open') {
      throw new KvError(ErrorCodes.NOT_STARTED, `MemoryStorage is not open (status: ${this.#status})`);
    }
  }

  async get(key: Uint8Array, options?: StorageCallOptions): Promise<Uint8Array | undefined> {
    this.#check(options);
    checkBytes(key, 'key');
    const row = this.#rows.get(hex(key));
    return row ? copy(row.record) : undefined;
  }

  async put(key: Uint8Array, token: number, record: Uint8Array, options?: StorageCallOptions): Promise<void> {
    this.#check(options);
    checkBytes(key, 'key');
    checkToken(token, 'token');
    checkBytes(record, 'record');
    this.#rows.set(hex(key), { key: copy(key), token, record: copy(record) });
  }

  async delete(key: Uint8Array, options?: StorageCallOptions): Promise<void> {
    this.#check(options);
    checkBytes(key, 'key');
    this.#rows.delete(hex(key));
  }

  /**
   * Entries whose token is in `range` (every entry without one), in
   * ascending token order, then key bytes. Iterates a snapshot.
   */
  async *scan(range?: TokenRangeQuery, options?: StorageCallOptions): AsyncIterable<StoredEntry> {
    this.#check(options);
    if (range) {
      checkToken(range.start, 'range.start');
      checkToken(range.end, 'range.end');
    }
    const rows = [...this.#rows.values()].filter((r) => !range || tokenInRange(r.token, range));
    rows.sort((a, b) => a.token - b.token || compareBytes(a.key, b.key));
    for (const row of rows) {
      this.#check(options);
      yield { key: copy(row.key), token: row.token, record: copy(row.record) };
    }
  }

  async putHint(hint: StoredHint, options?: StorageCallOptions): Promise<void> {
    this.#check(options);
    if (typeof hint?.id !== 'string') throw new TypeError('Expected `hint.id` to be a string');
    if (typeof hint.target !== 'string') throw new TypeError('Expected `hint.target` to be a string');
    checkBytes(hint.key, 'hint.key');
    checkToken(hint.token, 'hint.token');
    checkBytes(hint.record, 'hint.record');
    if (typeof hint.createdAt !== 'number' || !Number.isFinite(hint.createdAt)) {
      throw new TypeError('Expected `hint.createdAt` to be a finite number');
    }
    const stored: StoredHint = {
      id: hint.id,
      target: hint.target,
      key: copy(hint.key),
      token: hint.token,
      record: copy(hint.record),
      createdAt: hint.createdAt,
    };
    // Replacing keeps the hint's place in insertion order.
    const seq = this.#hints.get(hint.id)?.seq ?? this.#hintSeq++;
    this.#hints.set(hint.id, { hint: stored, seq });
  }

  /** Hints (only those for `target` if given), oldest `createdAt` first, then insertion order. Iterates a snapshot. */
  async *hints(target?: string, options?: StorageCallOptions): AsyncIterable<StoredHint> {
    this.#check(options);
    const rows = [...this.#hints.values()].filter((r) => target === undefined || r.hint.target === target);
    rows.sort((a, b) => a.hint.createdAt - b.hint.createdAt || a.seq - b.seq);
    for (const { hint } of rows) {
      this.#check(options);
      yield { ...hint, key: copy(hint.key), record: copy(hint.record) };
    }
  }

  async deleteHint(id: string, options?: StorageCallOptions): Promise<void> {
    this.#check(options);
    this.#hints.delete(id);
  }

  async getMeta(name: string, options?: StorageCallOptions): Promise<Uint8Array | undefined> {
    this.#check(options);
    const v = this.#meta.get(name);
    return v ? copy(v) : undefined;
  }

  async setMeta(name: string, value: Uint8Array, options?: StorageCallOptions): Promise<void> {
    this.#check(options);
    if (typeof name !== 'string') throw new TypeError(`Expected \`name\` to be a string, got ${typeof name}`);
    checkBytes(value, 'value');
    this.#meta.set(name, copy(value));
  }
}
