/**
 * What the durable adapters share: option checks, loading the optional
 * engine package, the data directory's checks and the group commit.
 *
 * @internal
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { ErrorCodes, KvError } from '../errors/index.js';
import { describeValue } from './validation.js';

/**
 * When a durable adapter acknowledges a write.
 * - `'sync'`: once it is on disk (fsync); concurrent writes share one sync
 *   (group commit). Nothing acknowledged is lost, even on power loss.
 * - `'async'`: once the engine has it (in the OS's page cache); the last
 *   moments of writes may be lost on power loss or an OS crash, never on a
 *   crash of the process alone.
 */
export type Durability = 'sync' | 'async';

/** Options every durable adapter takes. */
export interface DurableStorageOptions {
  /** The data directory (created if missing). */
  readonly path: string;
  /**
   * When a write is acknowledged: see {@link Durability}.
   * @default 'sync'
   */
  readonly durability?: Durability;
}

/** Checked options. */
export interface ResolvedDurableOptions {
  readonly path: string;
  readonly durability: Durability;
}

/** Checks `{ path, durability }`, with precise `TypeError`s naming the adapter. */
export function resolveDurableOptions(adapter: string, options: unknown): ResolvedDurableOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${adapter}: Expected \`options\` to be an object { path, durability? }, got ${describeValue(options)}`);
  }
  const { path, durability } = options as { path?: unknown; durability?: unknown };
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw new TypeError(`${adapter}: Expected \`options.path\` to be a non-empty string (a directory), got ${describeValue(path)}`);
  }
  if (durability !== undefined && durability !== 'sync' && durability !== 'async') {
    throw new TypeError(
      `${adapter}: Expected \`options.durability\` to be 'sync' or 'async', got ${describeValue(durability)}`,
    );
  }
  return { path, durability: durability ?? 'sync' };
}

/**
 * Loads the engine package through `loader`; any failure becomes
 * `KV_ENGINE_MISSING` naming the package to install (its `cause` is the
 * loader's error).
 */
export async function loadEngine<M>(adapter: string, pkg: string, loader: () => Promise<M>): Promise<M> {
  try {
    return await loader();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    const reason = error instanceof Error ? error.message : describeValue(error);
    throw new KvError(
      ErrorCodes.ENGINE_MISSING,
      notFound
        ? `${adapter} needs the optional package \`${pkg}\`, which is not installed: run \`npm install ${pkg}\``
        : `${adapter} could not load its engine, the package \`${pkg}\` (${reason}): reinstall it with \`npm install ${pkg}\``,
      { cause: error },
    );
  }
}

/** The message of the innermost `cause` (engines wrap the telling error in a generic one). */
function innermostMessage(error: unknown): string {
  let message = error instanceof Error ? error.message : describeValue(error);
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.message.length > 0) message = e.message;
  }
  return message;
}

/** A `KV_STORAGE_FAILURE` naming the adapter and its directory. */
export function storageFailure(adapter: string, path: string, what: string, cause?: unknown): KvError {
  const reason = cause === undefined ? '' : `: ${innermostMessage(cause)}`;
  return new KvError(ErrorCodes.STORAGE_FAILURE, `${adapter} at ${JSON.stringify(path)}: ${what}${reason}`, {
    cause,
  });
}

/**
 * Makes sure `path` is a directory this adapter may use: creates it if
 * missing; refuses a file, and a non-empty directory without any of the
 * engine's `signatures` (someone else's files, or the other engine's).
 */
export async function prepareDirectory(adapter: string, path: string, signatures: readonly string[]): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw storageFailure(adapter, path, 'cannot read the data directory', error);
    try {
      await mkdir(path, { recursive: true });
    } catch (mkdirError) {
      throw storageFailure(adapter, path, 'cannot create the data directory', mkdirError);
    }
    return;
  }
  if (!info.isDirectory()) throw storageFailure(adapter, path, 'the path is not a directory');
  let names: string[];
  try {
    names = await readdir(path);
  } catch (error) {
    throw storageFailure(adapter, path, 'cannot list the data directory', error);
  }
  const ours = names.filter((name) => !name.startsWith('.'));
  if (ours.length > 0 && !signatures.some((s) => ours.includes(s))) {
    const shown = ours.slice(0, 5).join(', ') + (ours.length > 5 ? ', …' : '');
    throw storageFailure(
      adapter,
      path,
      `the directory holds files that are not ${adapter} data (${shown}); point \`path\` at an empty or ${adapter} directory`,
    );
  }
}

/** One write of a group: a put (`value` set) or a delete of `key`. */
export interface BatchOp {
  readonly type: 'put' | 'del';
  readonly key: Uint8Array;
  readonly value?: Uint8Array;
}

/**
 * Group commit: writes queued while a batch is being written go into the
 * next batch, so concurrent writers share one engine call (and, in
 * `'sync'` mode, one fsync). Each write's promise settles with its batch.
 */
export class GroupCommit {
  readonly #write: (ops: BatchOp[]) => Promise<void>;
  readonly #maxOps: number;
  /** Queued submissions, oldest first. */
  #queue: Submission[] = [];
  #writing = false;

  /**
   * @param write - writes one batch atomically (and durably, in `'sync'` mode)
   * @param maxOps - a batch takes whole submissions until it holds at least this many writes
   */
  constructor(write: (ops: BatchOp[]) => Promise<void>, maxOps = 4096) {
    this.#write = write;
    this.#maxOps = maxOps;
  }

  /** Queues `ops` (applied atomically, in order, after earlier submissions); resolves once their batch is written. */
  submit(ops: BatchOp[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ ops, resolve, reject });
      if (!this.#writing) this.#flush();
    });
  }

  #flush(): void {
    if (this.#queue.length === 0) {
      this.#writing = false;
      return;
    }
    this.#writing = true;
    let taken = 0;
    let count = 0;
    while (taken < this.#queue.length && count < this.#maxOps) count += (this.#queue[taken++] as Submission).ops.length;
    const group = taken === this.#queue.length ? this.#queue : this.#queue.slice(0, taken);
    this.#queue = taken === this.#queue.length ? [] : this.#queue.slice(taken);
    const ops = group.length === 1 ? (group[0] as Submission).ops : group.flatMap((s) => s.ops);
    let written: Promise<void>;
    try {
      written = this.#write(ops);
    } catch (error) {
      written = Promise.reject(error);
    }
    written.then(
      () => {
        for (const s of group) s.resolve();
        this.#flush();
      },
      (error: unknown) => {
        for (const s of group) s.reject(error);
        this.#flush();
      },
    );
  }
}

interface Submission {
  readonly ops: BatchOp[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}
