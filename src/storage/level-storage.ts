import { KvError } from '../errors/index.js';
import { latin1Of } from '../internal/bytes.js';
import { KeyLock } from '../internal/key-lock.js';
import { AbstractStorage } from './abstract-storage.js';
import {
  GroupCommit,
  loadEngine,
  prepareDirectory,
  resolveDurableOptions,
  storageFailure,
  type BatchOp,
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
import type { StorageCapabilities, StoredEntry, StoredHint, TokenRangeQuery } from './types.js';

/** A LevelDB key iterator, as `classic-level` makes them (the part LevelStorage uses). */
export interface LevelEngineIterator {
  /** Up to `size` next keys; an empty array at the end. */
  nextv(size: number): Promise<Uint8Array[]>;
  close(): Promise<void>;
}

/** A `classic-level` database (the part LevelStorage uses), with `view` key and value encodings. */
export interface LevelEngineDatabase {
  open(options?: { createIfMissing?: boolean }): Promise<void>;
  close(): Promise<void>;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  batch(operations: BatchOp[], options: { sync: boolean }): Promise<void>;
  keys(options: { gte: Uint8Array; lt: Uint8Array; limit?: number }): LevelEngineIterator;
}

/** What LevelStorage needs from the `classic-level` package. */
export interface LevelEngineModule {
  readonly ClassicLevel: new (
    location: string,
    options: { keyEncoding: 'view'; valueEncoding: 'view' },
  ) => LevelEngineDatabase;
}

/** Options of {@link LevelStorage}. */
export interface LevelStorageOptions extends DurableStorageOptions {
  /**
   * Loads the engine package. For bundlers that must see the import, and
   * for tests that inject a failing or faulty engine.
   * @default () => import('classic-level')
   */
  readonly loadEngine?: () => Promise<LevelEngineModule>;
}

const ENGINE = 'classic-level';
const CAPABILITIES: StorageCapabilities = Object.freeze({ durable: true, orderedScan: true });
const EMPTY = new Uint8Array(0);
const RESOLVED: Promise<void> = Promise.resolve();
/** A key as a map key (latin1: one char a byte). */
const keyId = (key: Uint8Array): string => latin1Of(key);
/** Keys fetched per step of a scan (records then read with one getMany). */
const SCAN_CHUNK = 128;
const defaultLoader = async (): Promise<LevelEngineModule> =>
  (await import('classic-level')) as unknown as LevelEngineModule;

/** `bytes` as a plain Uint8Array view (not a Buffer), from `offset`. */
const view = (bytes: Uint8Array, offset = 0): Uint8Array =>
  new Uint8Array(bytes.buffer, bytes.byteOffset + offset, bytes.byteLength - offset);

/** A stored record value's record (a view past its token), or undefined; throws if it cannot hold a token. */
function recordOf(value: Uint8Array | undefined): Uint8Array | undefined {
  if (value === undefined) return undefined;
  if (value.length < 4) throw new CorruptEntryError(`the stored record is damaged (${value.length} bytes)`);
  return view(value, 4);
}

/** The engine error's code, looking through `cause`s (classic-level wraps open failures). */
function engineCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'LEVEL_LOCKED' || code === 'LEVEL_CORRUPTION' || code === 'LEVEL_IO_ERROR') return code;
  }
  return undefined;
}

/**
 * A durable {@link StorageAdapter} on LevelDB (the optional peer package
 * `classic-level`): a write-ahead log, a memtable, sorted tables with bloom
 * filters and compaction, so a node holds more than its heap and a restart
 * finds everything it acknowledged.
 *
 * `durability: 'sync'` (the default) acknowledges a write once LevelDB has
 * synced its log; writes that arrive while a batch is being written share
 * the next batch and its one fsync (group commit). `'async'` acknowledges
 * once the write is in the OS's page cache: a crash of the process loses
 * nothing, a power loss may lose the last moments.
 *
 * The engine is loaded by `open()`: without `classic-level` installed,
 * `open()` rejects with `KV_ENGINE_MISSING` (`npm install classic-level`).
 * A directory locked by another process, damaged or foreign files reject
 * `open()` with `KV_STORAGE_FAILURE`; a failing write rejects that write.
 * Key layout: see docs/storage.md.
 *
 * @example
 * ```ts
 * import { LevelStorage, Store } from 'quorumkv';
 * const store = new Store({ id: 'a', transport, storage: new LevelStorage({ path: './data/a' }) });
 * ```
 */
export class LevelStorage extends AbstractStorage {
  /** `{ durable: true, orderedScan: true }` */
  readonly capabilities: StorageCapabilities = CAPABILITIES;
  /** The data directory. */
  readonly path: string;
  /** When writes are acknowledged. */
  readonly durability: Durability;
  readonly #load: () => Promise<LevelEngineModule>;
  #db: LevelEngineDatabase | undefined;
  #commit: GroupCommit | undefined;
  readonly #hintLocks = new KeyLock();
  #hintSeq = 0;
  /** Per key with a delete in flight: its latest write; the key's next writes queue behind it. */
  readonly #ordered = new Map<string, Promise<void>>();

  /**
   * @throws TypeError for a missing or malformed `path`, `durability` or `loadEngine`
   */
  constructor(options: LevelStorageOptions) {
    super();
    const { path, durability } = resolveDurableOptions('LevelStorage', options);
    const load = options.loadEngine;
    if (load !== undefined && typeof load !== 'function') {
      throw new TypeError(`LevelStorage: Expected \`options.loadEngine\` to be a function, got ${typeof load}`);
    }
    this.path = path;
    this.durability = durability;
    this.#load = load ?? defaultLoader;
  }

  protected override async _open(): Promise<void> {
    const engine = await loadEngine('LevelStorage', ENGINE, this.#load);
    await prepareDirectory('LevelStorage', this.path, ['CURRENT', 'LOCK']);
    let db: LevelEngineDatabase;
    try {
      db = new engine.ClassicLevel(this.path, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open({ createIfMissing: true });
    } catch (error) {
      throw this.#openFailure(error);
    }
    try {
      await this.#checkFormat(db);
      this.#hintSeq = decodeCounter(await db.get(HINT_SEQ_KEY));
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error instanceof KvError ? error : this.#openFailure(error);
    }
    const sync = this.durability === 'sync';
    this.#db = db;
    this.#commit = new GroupCommit((ops) => db.batch(ops, { sync }));
  }

  protected override async _close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    this.#commit = undefined;
    if (db !== undefined) await db.close();
  }

  protected _get(key: Uint8Array): Promise<Uint8Array | undefined> {
    // A reaction, not an `async` function: one promise less per read.
    return (this.#db as LevelEngineDatabase).get(recordKey(key)).then(recordOf);
  }

  protected _put(key: Uint8Array, token: number, record: Uint8Array): Promise<void> {
    const commit = this.#commit as GroupCommit;
    const ops: BatchOp[] = [
      { type: 'put', key: tokenKey(token, key), value: EMPTY },
      { type: 'put', key: recordKey(key), value: recordValue(token, record) },
    ];
    // Writes are applied in call order by the group commit, except behind a
    // delete of the same key, which reads before it writes: they wait for it.
    if (this.#ordered.size > 0) {
      const id = keyId(key);
      const previous = this.#ordered.get(id);
      if (previous !== undefined) return this.#after(id, previous, () => commit.submit(ops));
    }
    return commit.submit(ops);
  }

  protected _delete(key: Uint8Array): Promise<void> {
    const db = this.#db as LevelEngineDatabase;
    const commit = this.#commit as GroupCommit;
    const id = keyId(key);
    const k = recordKey(key);
    return this.#after(id, this.#ordered.get(id) ?? RESOLVED, async () => {
      // The read sees committed writes only: the record is removed whether
      // found or not (after any put of it still queued, as called), and the
      // index entry of the committed record with it. A queued put's index
      // entry is left behind; scans skip an entry whose record is gone.
      const value = await db.get(k);
      const ops: BatchOp[] = [{ type: 'del', key: k }];
      const token = value === undefined ? -1 : tokenOfRecordValue(value);
      if (token >= 0) ops.push({ type: 'del', key: tokenKey(token, key) });
      await commit.submit(ops);
    });
  }

  /**
   * Runs `write` once `previous` has settled, as the key's latest ordered
   * write (later writes of the key queue behind it) until it settles.
   */
  #after(id: string, previous: Promise<unknown>, write: () => Promise<void>): Promise<void> {
    const next = previous.then(write, write);
    this.#ordered.set(id, next);
    const clear = (): void => {
      if (this.#ordered.get(id) === next) this.#ordered.delete(id);
    };
    next.then(clear, clear);
    return next;
  }

  protected _scan(range: TokenRangeQuery): AsyncIterable<StoredEntry> {
    return scanRecords(this.#db as LevelEngineDatabase, range);
  }

  protected _putHint(hint: StoredHint): Promise<void> {
    return this.#hintLocks.run(hint.id, async () => {
      const db = this.#db as LevelEngineDatabase;
      const idKey = hintIdKey(hint.id);
      const existing = await db.get(idKey);
      const ops: BatchOp[] = [];
      let seq: number;
      if (existing !== undefined) {
        const old = parseHintIdValue(existing);
        seq = Number(Buffer.from(old.order.buffer, old.order.byteOffset + 8, 8).readBigUInt64BE(0));
        ops.push({ type: 'del', key: hintKey(old.order) }, { type: 'del', key: hintTargetKey(old.target, old.order) });
      } else {
        seq = ++this.#hintSeq;
        ops.push({ type: 'put', key: HINT_SEQ_KEY, value: encodeCounter(seq) });
      }
      const order = hintOrder(hint.createdAt, seq);
      ops.push(
        { type: 'put', key: hintKey(order), value: encodeHint(hint) },
        { type: 'put', key: hintTargetKey(hint.target, order), value: EMPTY },
        { type: 'put', key: idKey, value: hintIdValue(order, hint.target) },
      );
      await (this.#commit as GroupCommit).submit(ops);
    });
  }

  protected _hints(target: string | undefined): AsyncIterable<StoredHint> {
    return scanHints(this.#db as LevelEngineDatabase, target);
  }

  protected _deleteHint(id: string): Promise<void> {
    return this.#hintLocks.run(id, async () => {
      const idKey = hintIdKey(id);
      const existing = await (this.#db as LevelEngineDatabase).get(idKey);
      if (existing === undefined) return;
      const { order, target } = parseHintIdValue(existing);
      await (this.#commit as GroupCommit).submit([
        { type: 'del', key: hintKey(order) },
        { type: 'del', key: hintTargetKey(target, order) },
        { type: 'del', key: idKey },
      ]);
    });
  }

  protected async _getMeta(name: string): Promise<Uint8Array | undefined> {
    const value = await (this.#db as LevelEngineDatabase).get(metaKey(name));
    return value === undefined ? undefined : view(value);
  }

  protected _setMeta(name: string, value: Uint8Array): Promise<void> {
    return (this.#commit as GroupCommit).submit([{ type: 'put', key: metaKey(name), value: Buffer.from(value) }]);
  }

  /** Writes the format marker into a new database; refuses one that is not ours. */
  async #checkFormat(db: LevelEngineDatabase): Promise<void> {
    const marker = await db.get(FORMAT_KEY);
    if (marker !== undefined) {
      const problem = markerProblem(marker, 'level');
      if (problem !== undefined) throw storageFailure('LevelStorage', this.path, `cannot use this database: ${problem}`);
      return;
    }
    const it = db.keys({ gte: Uint8Array.of(0), lt: Uint8Array.of(0xff, 0xff), limit: 1 });
    let first: Uint8Array[];
    try {
      first = await it.nextv(1);
    } finally {
      await it.close();
    }
    if (first.length > 0) {
      throw storageFailure(
        'LevelStorage',
        this.path,
        'the LevelDB database there was not written by quorumkv (it has data but no format marker)',
      );
    }
    await db.batch([{ type: 'put', key: FORMAT_KEY, value: encodeMarker('level') }], { sync: true });
  }

  #openFailure(error: unknown): Error {
    switch (engineCode(error)) {
      case 'LEVEL_LOCKED':
        return storageFailure(
          'LevelStorage',
          this.path,
          'the directory is locked by another process (or another open LevelStorage in this one)',
          error,
        );
      case 'LEVEL_CORRUPTION':
        return storageFailure('LevelStorage', this.path, 'the database files are damaged', error);
      case 'LEVEL_IO_ERROR':
        return storageFailure('LevelStorage', this.path, 'cannot open the database files (I/O error)', error);
      default:
        return storageFailure('LevelStorage', this.path, 'cannot open the database', error);
    }
  }
}

/** Streams the records whose token is in `range`, in token order, `SCAN_CHUNK` keys at a time. */
async function* scanRecords(db: LevelEngineDatabase, range: TokenRangeQuery): AsyncGenerator<StoredEntry, void, undefined> {
  for (const { gte, lt } of tokenIntervals(range.start, range.end)) {
    const it = db.keys({ gte, lt });
    try {
      for (;;) {
        const indexKeys = await it.nextv(SCAN_CHUNK);
        if (indexKeys.length === 0) break;
        const values = await db.getMany(indexKeys.map(recordKeyOfTokenKey));
        for (let i = 0; i < indexKeys.length; i++) {
          const value = values[i];
          const indexKey = indexKeys[i] as Uint8Array;
          const token = tokenOfTokenKey(indexKey);
          // A record that is gone, or lives under another token now, is not in this range.
          if (value === undefined || tokenOfRecordValue(value) !== token) continue;
          yield { key: view(indexKey, 5), token, record: view(value, 4) };
        }
      }
    } finally {
      await it.close();
    }
  }
}

/** Streams hints (only `target`'s if given), oldest first. */
async function* scanHints(db: LevelEngineDatabase, target: string | undefined): AsyncGenerator<StoredHint, void, undefined> {
  if (target === undefined) {
    const it = db.keys({ gte: Uint8Array.of(Space.hint), lt: Uint8Array.of(Space.hint + 1) });
    try {
      for (;;) {
        const keys = await it.nextv(SCAN_CHUNK);
        if (keys.length === 0) break;
        for (const value of await db.getMany(keys)) if (value !== undefined) yield decodeHint(value);
      }
    } finally {
      await it.close();
    }
    return;
  }
  const prefix = hintTargetPrefix(target);
  const it = db.keys({ gte: prefix, lt: prefixEnd(prefix) });
  try {
    for (;;) {
      const keys = await it.nextv(SCAN_CHUNK);
      if (keys.length === 0) break;
      const values = await db.getMany(keys.map((k) => hintKey(k.subarray(prefix.length))));
      for (const value of values) if (value !== undefined) yield decodeHint(value);
    }
  } finally {
    await it.close();
  }
}
