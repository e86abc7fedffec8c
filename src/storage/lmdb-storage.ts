import { join } from 'node:path';
import { KvError } from '../errors/index.js';
import { KeyLock } from '../internal/key-lock.js';
import { AbstractStorage } from './abstract-storage.js';
import {
  loadEngine,
  prepareDirectory,
  resolveDurableOptions,
  storageFailure,
  type DurableStorageOptions,
  type Durability,
} from './engine-common.js';
import { decodeCounter, encodeCounter, encodeMarker, markerProblem } from './engine-format.js';
import {
  CorruptEntryError,
  FORMAT_KEY,
  HINT_SEQ_KEY,
  Space,
  decodeHint,
  encodeHint,
  hintIdKey,
  hintIdValue,
  hintKey,
  hintOrder,
  hintTargetKey,
  hintTargetPrefix,
  metaKey,
  parseHintIdValue,
  prefixEnd,
  recordKey,
  recordKeyOfTokenKey,
  recordValue,
  tokenIntervals,
  tokenKey,
  tokenOfRecordValue,
  tokenOfTokenKey,
} from './engine-layout.js';
import { lmdbFileProblem } from './engine-lmdb-file.js';
import { LOCK_FILE, lockDirectory } from './engine-lock.js';
import type { StorageCapabilities, StoredEntry, StoredHint, TokenRangeQuery } from './types.js';

/** An `lmdb` root database (the part LmdbStorage uses), opened with binary keys and values. */
export interface LmdbEngineDatabase {
  get(key: Uint8Array): Uint8Array | undefined;
  /**
   * The value in a buffer the engine reuses (valid until its next read; its
   * `length` is the value's, its `subarray` must be given the end), or
   * undefined.
   */
  getBinaryFast(key: Uint8Array): Uint8Array | undefined;
  put(key: Uint8Array, value: Uint8Array): Promise<boolean>;
  remove(key: Uint8Array): Promise<boolean>;
  /** Keys in `[start, end)`, in order, read lazily. */
  getKeys(options: { start: Uint8Array; end: Uint8Array }): Iterable<Uint8Array>;
  /** Resolves once every commit so far is on disk. */
  readonly flushed: PromiseLike<unknown>;
  close(): Promise<void>;
}

/** The options LmdbStorage opens its environment with. */
export interface LmdbEngineOpenOptions {
  path: string;
  keyEncoding: 'binary';
  encoding: 'binary';
  compression: false;
  overlappingSync: true;
  /** The page size of a new data file (an existing file keeps its own); LmdbStorage passes 8192. */
  pageSize?: number;
  /** The size of the address range mapped for the file (not of the file); LmdbStorage passes 256 GiB on 64-bit. */
  mapSize?: number;
}

/** What LmdbStorage needs from the `lmdb` package. */
export interface LmdbEngineModule {
  open(options: LmdbEngineOpenOptions): LmdbEngineDatabase;
}

/** Options of {@link LmdbStorage}. */
export interface LmdbStorageOptions extends DurableStorageOptions {
  /**
   * Loads the engine package. For bundlers that must see the import, and
   * for tests that inject a failing or faulty engine.
   * @default () => import('lmdb')
   */
  readonly loadEngine?: () => Promise<LmdbEngineModule>;
}

const ENGINE = 'lmdb';
/** The data file inside the directory (LMDB adds `data.mdb-lock`). */
const DATA_FILE = 'data.mdb';
const CAPABILITIES: StorageCapabilities = Object.freeze({ durable: true, orderedScan: true });
const EMPTY = new Uint8Array(0);
const NOTHING = (): void => undefined;
/**
 * The page size of a new data file. With LMDB's default 4 KB pages a leaf
 * holds at most three records of ~1 KB and a split leaves two, so 1 KB
 * values filled pages about half (measured: the file 1.9x the data at 200k
 * keys); 8 KB pages hold seven, and the file is 1.5x the data, with reads
 * and loads no slower. 16 KB measured worse (1.7x). It also raises LMDB's
 * key limit from 1,978 to 4,026 bytes.
 */
const PAGE_SIZE = 8192;
/**
 * The address range mapped for the data file, reserved once (the file
 * itself grows only as pages are written). lmdb's default starts at 128 KB
 * and doubles as the file grows, keeping every earlier mapping: each held
 * its own resident pages of the same file, so RSS ran ~1.3x the file (11
 * mappings at 200k keys of 1 KB). 256 GiB of address space is one mapping
 * up to a 256 GiB database (lmdb grows it past that), and leaves room for
 * hundreds of open adapters in a 64-bit process. 32-bit processes keep
 * lmdb's default.
 */
const MAP_SIZE = process.arch === 'ia32' || process.arch === 'arm' ? undefined : 2 ** 38;
const defaultLoader = async (): Promise<LmdbEngineModule> => (await import('lmdb')) as unknown as LmdbEngineModule;

const view = (bytes: Uint8Array, offset = 0): Uint8Array =>
  new Uint8Array(bytes.buffer, bytes.byteOffset + offset, bytes.byteLength - offset);

/**
 * A durable {@link StorageAdapter} on LMDB (the optional peer package
 * `lmdb`): a memory-mapped B+tree with synchronous, lock-free reads, for
 * read-heavy nodes (reads cost no I/O round trip; writes are batched into
 * transactions by the engine).
 *
 * `durability: 'sync'` (the default) acknowledges a write once the
 * transaction holding it is synced to disk; writes made in the same turn
 * or while a commit is under way share a transaction and its sync (group
 * commit). `'async'` acknowledges at commit, before the sync: a crash of the
 * process loses nothing, a power loss may lose the last moments (LMDB then
 * opens at the last synced transaction, never a torn one).
 *
 * The engine is loaded by `open()`: without `lmdb` installed, `open()`
 * rejects with `KV_ENGINE_MISSING` (`npm install lmdb`). The directory is
 * locked for this adapter (a `quorumkv.lock` file holding the pid; LMDB
 * itself would let several processes share it). The data file is checked
 * before it is mapped: LMDB trusts its file, and a foreign, damaged or
 * truncated one would crash the process, so those reject `open()` with
 * `KV_STORAGE_FAILURE` instead. LMDB keeps no checksums: damage inside a
 * sound-looking file is not detected.
 *
 * Keys up to 4,021 bytes (LMDB's key limit with the 8 KB pages of a new
 * data file, less the layout's prefix; 1,973 in a file made with 4 KB
 * pages); a longer key is refused with `KV_STORAGE_FAILURE` (quorumkv's
 * default key limit is 1 KB).
 *
 * @example
 * ```ts
 * import { LmdbStorage, Store } from 'quorumkv';
 * const store = new Store({ id: 'a', transport, storage: new LmdbStorage({ path: './data/a' }) });
 * ```
 */
export class LmdbStorage extends AbstractStorage {
  /** `{ durable: true, orderedScan: true }` */
  readonly capabilities: StorageCapabilities = CAPABILITIES;
  /** The data directory. */
  readonly path: string;
  /** When writes are acknowledged. */
  readonly durability: Durability;
  readonly #load: () => Promise<LmdbEngineModule>;
  #db: LmdbEngineDatabase | undefined;
  #unlock: (() => Promise<void>) | undefined;
  readonly #hintLocks = new KeyLock();
  #hintSeq = 0;
  readonly #sync: boolean;
  /** Deletes queued and not yet committed (or failed). */
  #deleting = 0;

  /**
   * @throws TypeError for a missing or malformed `path`, `durability` or `loadEngine`
   */
  constructor(options: LmdbStorageOptions) {
    super();
    const { path, durability } = resolveDurableOptions('LmdbStorage', options);
    const load = options.loadEngine;
    if (load !== undefined && typeof load !== 'function') {
      throw new TypeError(`LmdbStorage: Expected \`options.loadEngine\` to be a function, got ${typeof load}`);
    }
    this.path = path;
    this.durability = durability;
    this.#sync = durability === 'sync';
    this.#load = load ?? defaultLoader;
  }

  protected override async _open(): Promise<void> {
    const engine = await loadEngine('LmdbStorage', ENGINE, this.#load);
    await prepareDirectory('LmdbStorage', this.path, [DATA_FILE, LOCK_FILE]);
    const unlock = await lockDirectory('LmdbStorage', this.path);
    let db: LmdbEngineDatabase | undefined;
    try {
      const problem = await lmdbFileProblem(join(this.path, DATA_FILE));
      if (problem !== undefined) throw storageFailure('LmdbStorage', this.path, `cannot open the database: ${problem}`);
      try {
        db = engine.open({
          path: join(this.path, DATA_FILE),
          keyEncoding: 'binary',
          encoding: 'binary',
          compression: false,
          overlappingSync: true,
          // For a new file (an existing one keeps its own): see PAGE_SIZE.
          pageSize: PAGE_SIZE,
          ...(MAP_SIZE === undefined ? {} : { mapSize: MAP_SIZE }),
        });
      } catch (error) {
        throw storageFailure('LmdbStorage', this.path, 'cannot open the database', error);
      }
      await this.#checkFormat(db);
      this.#hintSeq = decodeCounter(db.get(HINT_SEQ_KEY));
    } catch (error) {
      if (db !== undefined) await db.close().catch(() => undefined);
      await unlock();
      throw error instanceof KvError ? error : storageFailure('LmdbStorage', this.path, 'cannot open the database', error);
    }
    this.#db = db;
    this.#unlock = unlock;
  }

  protected override async _close(): Promise<void> {
    const db = this.#db;
    const unlock = this.#unlock;
    this.#db = undefined;
    this.#unlock = undefined;
    try {
      if (db !== undefined) await db.close();
    } finally {
      if (unlock !== undefined) await unlock();
    }
  }

  protected _get(key: Uint8Array): Uint8Array | undefined {
    // Read into the engine's reused buffer, then copy the record alone: one
    // copy, as a plain `get` makes of the whole value.
    const value = (this.#db as LmdbEngineDatabase).getBinaryFast(recordKey(key));
    if (value === undefined) return undefined;
    const length = value.length;
    if (length < 4) throw new CorruptEntryError(`the stored record is damaged (${length} bytes)`);
    return new Uint8Array(value.subarray(4, length));
  }

  protected _put(key: Uint8Array, token: number, record: Uint8Array): Promise<void> {
    const db = this.#db as LmdbEngineDatabase;
    const k = recordKey(key);
    // One event turn, one transaction (lmdb batches a turn's writes). The
    // index entry goes first: were the record's put refused, an index entry
    // without its record is skipped by scans.
    //
    // A re-put of a key (the common write) finds its index entry in place:
    // the committed record carries the same token, and only a delete removes
    // an index entry, together with its record. Writing it again would dirty
    // a second B+tree leaf per put (measured: half the write throughput), so
    // it is skipped, unless a delete is still uncommitted (reads see
    // committed data only; lmdb renews its read snapshot at each commit).
    let indexed: Promise<boolean> | undefined;
    if (this.#deleting > 0) indexed = db.put(tokenKey(token, key), EMPTY);
    else {
      const current = db.getBinaryFast(k);
      if (current === undefined || tokenOfRecordValue(current) !== token) indexed = db.put(tokenKey(token, key), EMPTY);
    }
    const stored = db.put(k, recordValue(token, record));
    // lmdb hands every write of a transaction the same promise: await it once.
    return this.#durable(indexed === undefined || indexed === stored ? stored : Promise.all([indexed, stored]));
  }

  protected _delete(key: Uint8Array): Promise<void> {
    const db = this.#db as LmdbEngineDatabase;
    const k = recordKey(key);
    // Reads see committed data only: a put of this key still queued is not
    // seen, so the record is removed whether found or not (after that put,
    // in the same order as the calls). Its index entry, when the committed
    // record names one, goes with it; a queued put's is left behind, and
    // scans skip an entry whose record is gone.
    const value = db.getBinaryFast(k);
    const token = value === undefined ? -1 : tokenOfRecordValue(value); // `length` is the value's
    const removed = db.remove(k);
    const unindexed = token < 0 ? removed : db.remove(tokenKey(token, key));
    const committed = removed === unindexed ? removed : Promise.all([removed, unindexed]);
    // Until it commits, puts write their index entry (see _put).
    this.#deleting++;
    const done = (): void => {
      this.#deleting--;
    };
    committed.then(done, done);
    return this.#durable(committed);
  }

  protected _scan(range: TokenRangeQuery): Iterable<StoredEntry> {
    return scanRecords(this.#db as LmdbEngineDatabase, range);
  }

  protected _putHint(hint: StoredHint): Promise<void> {
    return this.#hintLocks.run(hint.id, () => {
      const db = this.#db as LmdbEngineDatabase;
      const idKey = hintIdKey(hint.id);
      const existing = db.get(idKey);
      const writes: Promise<boolean>[] = [];
      let seq: number;
      if (existing !== undefined) {
        const old = parseHintIdValue(existing);
        seq = Number(Buffer.from(old.order.buffer, old.order.byteOffset + 8, 8).readBigUInt64BE(0));
        writes.push(db.remove(hintKey(old.order)), db.remove(hintTargetKey(old.target, old.order)));
      } else {
        seq = ++this.#hintSeq;
        writes.push(db.put(HINT_SEQ_KEY, encodeCounter(seq)));
      }
      const order = hintOrder(hint.createdAt, seq);
      writes.push(
        db.put(hintKey(order), encodeHint(hint)),
        db.put(hintTargetKey(hint.target, order), EMPTY),
        db.put(idKey, hintIdValue(order, hint.target)),
      );
      return this.#durable(Promise.all(writes));
    });
  }

  protected _hints(target: string | undefined): Iterable<StoredHint> {
    return scanHints(this.#db as LmdbEngineDatabase, target);
  }

  protected _deleteHint(id: string): Promise<void> {
    return this.#hintLocks.run(id, async () => {
      const db = this.#db as LmdbEngineDatabase;
      const idKey = hintIdKey(id);
      const existing = db.get(idKey);
      if (existing === undefined) return;
      const { order, target } = parseHintIdValue(existing);
      await this.#durable(
        Promise.all([db.remove(hintKey(order)), db.remove(hintTargetKey(target, order)), db.remove(idKey)]),
      );
    });
  }

  protected _getMeta(name: string): Uint8Array | undefined {
    const value = (this.#db as LmdbEngineDatabase).get(metaKey(name));
    return value === undefined ? undefined : view(value);
  }

  protected _setMeta(name: string, value: Uint8Array): Promise<void> {
    return this.#durable((this.#db as LmdbEngineDatabase).put(metaKey(name), value));
  }

  /**
   * Resolves once `committed` has committed and, in `'sync'` mode, is on
   * disk. Reactions rather than an `async` function: a put's hot path.
   */
  #durable(committed: Promise<unknown>): Promise<void> {
    const db = this.#db as LmdbEngineDatabase;
    return this.#sync ? committed.then(() => db.flushed).then(NOTHING) : committed.then(NOTHING);
  }

  async #checkFormat(db: LmdbEngineDatabase): Promise<void> {
    const marker = db.get(FORMAT_KEY);
    if (marker !== undefined) {
      const problem = markerProblem(marker, 'lmdb');
      if (problem !== undefined) throw storageFailure('LmdbStorage', this.path, `cannot use this database: ${problem}`);
      return;
    }
    for (const _ of db.getKeys({ start: Uint8Array.of(0), end: Uint8Array.of(0xff, 0xff) })) {
      throw storageFailure(
        'LmdbStorage',
        this.path,
        'the LMDB database there was not written by quorumkv (it has data but no format marker)',
      );
    }
    await db.put(FORMAT_KEY, encodeMarker('lmdb'));
    await db.flushed;
  }
}

/** The records whose token is in `range`, in token order, read lazily from the token index. */
function* scanRecords(db: LmdbEngineDatabase, range: TokenRangeQuery): Generator<StoredEntry, void, undefined> {
  for (const { gte, lt } of tokenIntervals(range.start, range.end)) {
    for (const indexKey of db.getKeys({ start: gte, end: lt })) {
      const value = db.get(recordKeyOfTokenKey(indexKey));
      const token = tokenOfTokenKey(indexKey);
      // A record that is gone, or lives under another token now, is not in this range.
      if (value === undefined || tokenOfRecordValue(value) !== token) continue;
      yield { key: new Uint8Array(indexKey.subarray(5)), token, record: view(value, 4) };
    }
  }
}

/** Hints (only `target`'s if given), oldest first. */
function* scanHints(db: LmdbEngineDatabase, target: string | undefined): Generator<StoredHint, void, undefined> {
  if (target === undefined) {
    for (const key of db.getKeys({ start: Uint8Array.of(Space.hint), end: Uint8Array.of(Space.hint + 1) })) {
      const value = db.get(key);
      if (value !== undefined) yield decodeHint(value);
    }
    return;
  }
  const prefix = hintTargetPrefix(target);
  for (const key of db.getKeys({ start: prefix, end: prefixEnd(prefix) })) {
    const value = db.get(hintKey(key.subarray(prefix.length)));
    if (value !== undefined) yield decodeHint(value);
  }
}
