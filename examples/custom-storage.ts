/**
 * Writing your own StorageAdapter: `LogFileStorage`, a durable adapter that
 * keeps its data in memory and every change in an append-only log file (one
 * JSON line per change), replayed on `open()` and compacted on `close()`.
 * It extends `AbstractStorage`, which checks state, arguments and abort
 * signals and wraps engine errors, so the class implements only the
 * `_open`/`_close`/`_get`/… hooks. It passes quorumkv's storage compliance
 * suite (test/compliance/custom-storage-example.test.ts), durable cases
 * included, and a Store runs on it below.
 *
 * How it works:
 * - A write appends its line and resolves once the file is synced
 *   (`FileHandle#datasync`): writes that arrive during a sync share the
 *   next one (group commit), as the built-in adapters do.
 * - `open()` replays the log; a torn last line (a crash in mid-append)
 *   was never acknowledged and is dropped; damage anywhere else rejects
 *   `open()` (AbstractStorage turns the error into `KV_STORAGE_FAILURE`).
 * - `close()` rewrites the log as one line per live entry (to a temporary
 *   file, synced, then renamed over the log), so it does not grow for ever.
 * - Everything lives in memory too: fine for an example or a small node;
 *   use LevelStorage or LmdbStorage for data larger than memory.
 *
 * Run the demo with `npx tsx examples/custom-storage.ts`.
 */
import { mkdtempSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AbstractStorage,
  MemoryNetwork,
  Store,
  tokenInRange,
  type StorageCapabilities,
  type StoredEntry,
  type StoredHint,
  type TokenRangeQuery,
} from 'quorumkv';

/** One line of the log. Bytes are base64; `h` is a hint, `m` a metadata value. */
type Line =
  | { op: 'put'; k: string; t: number; r: string }
  | { op: 'del'; k: string }
  | { op: 'hint'; id: string; to: string; k: string; t: number; r: string; at: number; seq: number }
  | { op: 'unhint'; id: string }
  | { op: 'meta'; name: string; v: string };

interface Row {
  readonly token: number;
  readonly record: string;
}
interface HintRow {
  readonly line: Extract<Line, { op: 'hint' }>;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

/** Options of {@link LogFileStorage}. */
export interface LogFileStorageOptions {
  /** The directory holding `log.jsonl` (created if missing). */
  readonly path: string;
}

/** A durable adapter: data in memory, changes in an fsynced append-only log. */
export class LogFileStorage extends AbstractStorage {
  readonly capabilities: StorageCapabilities = { durable: true, orderedScan: true };
  readonly path: string;
  readonly #rows = new Map<string, Row>();
  readonly #hints = new Map<string, HintRow>();
  readonly #meta = new Map<string, string>();
  #hintSeq = 0;
  #file: FileHandle | undefined;
  #queue: { line: string; done: (error?: unknown) => void }[] = [];
  #writing = false;

  constructor(options: LogFileStorageOptions) {
    super();
    if (typeof options?.path !== 'string' || options.path.length === 0) {
      throw new TypeError(`Expected \`options.path\` to be a non-empty string, got ${typeof options?.path}`);
    }
    this.path = options.path;
  }

  get #log(): string {
    return join(this.path, 'log.jsonl');
  }

  protected override async _open(): Promise<void> {
    await mkdir(this.path, { recursive: true });
    this.#rows.clear();
    this.#hints.clear();
    this.#meta.clear();
    this.#hintSeq = 0;
    const text = await readFile(this.#log, 'utf8').catch((error: { code?: string }) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const lines = text.split('\n');
    lines.pop(); // after the final newline: '' unless an append was torn (never acknowledged)
    lines.forEach((line, i) => {
      try {
        this.#apply(JSON.parse(line) as Line);
      } catch (error) {
        throw new Error(`${this.#log} is damaged at line ${i + 1}`, { cause: error });
      }
    });
    this.#file = await open(this.#log, 'a');
  }

  protected override async _close(): Promise<void> {
    await this.#file?.close();
    this.#file = undefined;
    // Compaction: the live entries only, written aside and renamed over the log.
    const lines: Line[] = [];
    for (const [k, row] of this.#rows) lines.push({ op: 'put', k, t: row.token, r: row.record });
    for (const { line } of this.#hints.values()) lines.push(line);
    for (const [name, v] of this.#meta) lines.push({ op: 'meta', name, v });
    const tmp = `${this.#log}.tmp`;
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
      await file.datasync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.#log);
  }

  protected _get(key: Uint8Array): Uint8Array | undefined {
    const row = this.#rows.get(b64(key));
    return row === undefined ? undefined : unb64(row.record);
  }

  protected _put(key: Uint8Array, token: number, record: Uint8Array): Promise<void> {
    return this.#write({ op: 'put', k: b64(key), t: token, r: b64(record) });
  }

  protected _delete(key: Uint8Array): Promise<void> | undefined {
    const k = b64(key);
    return this.#rows.has(k) ? this.#write({ op: 'del', k }) : undefined;
  }

  protected _scan(range: TokenRangeQuery): Iterable<StoredEntry> {
    const rows = [...this.#rows].filter(([, row]) => tokenInRange(row.token, range));
    // Ascending token order, then key bytes; a wrapping range starts after 0.
    const keyed = rows.map(([k, row]) => ({ key: unb64(k), token: row.token, record: row.record }));
    keyed.sort((a, b) => a.token - b.token || Buffer.compare(a.key, b.key));
    return keyed.map((e) => ({ key: e.key, token: e.token, record: unb64(e.record) }));
  }

  protected _putHint(hint: StoredHint): Promise<void> {
    const seq = this.#hints.get(hint.id)?.line.seq ?? ++this.#hintSeq;
    return this.#write({
      op: 'hint',
      id: hint.id,
      to: hint.target,
      k: b64(hint.key),
      t: hint.token,
      r: b64(hint.record),
      at: hint.createdAt,
      seq,
    });
  }

  protected _hints(target: string | undefined): Iterable<StoredHint> {
    const rows = [...this.#hints.values()].filter((h) => target === undefined || h.line.to === target);
    rows.sort((a, b) => a.line.at - b.line.at || a.line.seq - b.line.seq);
    return rows.map(({ line }) => ({
      id: line.id,
      target: line.to,
      key: unb64(line.k),
      token: line.t,
      record: unb64(line.r),
      createdAt: line.at,
    }));
  }

  protected _deleteHint(id: string): Promise<void> | undefined {
    return this.#hints.has(id) ? this.#write({ op: 'unhint', id }) : undefined;
  }

  protected _getMeta(name: string): Uint8Array | undefined {
    const v = this.#meta.get(name);
    return v === undefined ? undefined : unb64(v);
  }

  protected _setMeta(name: string, value: Uint8Array): Promise<void> {
    return this.#write({ op: 'meta', name, v: b64(value) });
  }

  #apply(line: Line): void {
    switch (line.op) {
      case 'put':
        this.#rows.set(line.k, { token: line.t, record: line.r });
        break;
      case 'del':
        this.#rows.delete(line.k);
        break;
      case 'hint':
        this.#hints.set(line.id, { line });
        this.#hintSeq = Math.max(this.#hintSeq, line.seq);
        break;
      case 'unhint':
        this.#hints.delete(line.id);
        break;
      case 'meta':
        this.#meta.set(line.name, line.v);
        break;
      default:
        throw new Error(`unknown log line ${JSON.stringify(line)}`);
    }
  }

  /**
   * Applies `line` in memory at once (so concurrent calls see each other in
   * call order) and resolves once it is in the synced log (group commit).
   * A failed append rejects the write, but memory already shows it: a real
   * adapter would refuse further calls until reopened.
   */
  #write(line: Line): Promise<void> {
    this.#apply(line);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ line: `${JSON.stringify(line)}\n`, done: (error) => (error === undefined ? resolve() : reject(error)) });
      if (!this.#writing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    while (this.#queue.length > 0) {
      const group = this.#queue;
      this.#queue = [];
      try {
        const file = this.#file as FileHandle;
        await file.appendFile(group.map((g) => g.line).join(''));
        await file.datasync();
        for (const g of group) g.done();
      } catch (error) {
        for (const g of group) g.done(error);
      }
    }
    this.#writing = false;
  }
}

async function demo(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'quorumkv-logfile-'));
  const net = new MemoryNetwork();
  const start = async (): Promise<Store> => {
    const store = new Store({
      id: 'solo',
      transport: net.transport('solo'),
      storage: new LogFileStorage({ path: dir }),
      replication: { n: 1, r: 1, w: 1 },
    });
    await store.start();
    return store;
  };
  let store = await start();
  await store.put('greeting', 'hello');
  await store.put('visits', 1);
  await store.stop();
  console.log('stopped; starting a new Store over the same log file');
  store = await start();
  const greeting = await store.get('greeting');
  const visits = await store.get('visits');
  console.log('greeting:', greeting?.values, 'visits:', visits?.values);
  if (greeting?.values[0] !== 'hello' || visits?.values[0] !== 1) console.log('BUG: the log lost data');
  await store.stop();
  await rm(dir, { recursive: true, force: true });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  demo().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
