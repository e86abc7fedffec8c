import { ErrorCodes, KvError, TimeoutError, TooManySiblingsError, toKvError } from '../errors/index.js';
import { bytesKey, sameBytes } from '../internal/bytes.js';
import { systemClock, type Clock } from '../internal/clock.js';
import { Defaults } from '../internal/defaults.js';
import { KeyLock } from '../internal/key-lock.js';
import type { Ring } from '../ring/index.js';
import type { StorageAdapter } from '../storage/index.js';
import { ownBody } from '../transport/codec.js';
import type { WireMessage, WireValue } from '../transport/index.js';
import { MAX_WIRE_BATCH_ITEMS, batchFailure } from './apply-batcher.js';
import { SiblingSet, VectorClock, decodeClock, decodeSiblingSet, decodeTombstones, encodeSiblingSet, type WriteChange, type WriteResult } from '../versioning/index.js';
import { checkSiblingSet, mergeShortcut } from '../versioning/codec.js';
import { toKeyRef } from './key-ref.js';
import {
  MAX_WIRE_CLOCK,
  MAX_WIRE_KEY,
  MAX_WIRE_RECORD,
  readBoolean,
  checkBytes,
  readBytes,
  readOptionalBytes,
  readOptionalNumber,
} from './messages.js';
import { DEFAULT_MAX_SIBLINGS, DEFAULT_SIBLING_WARNING } from './record-limits.js';
import type { CounterLease, KeyRef, WriteRequest } from './types.js';

/** What {@link ReplicaServerOptions.onSiblings} receives. */
export interface SiblingsEvent {
  /** The key (UTF-8 bytes). */
  readonly key: Uint8Array;
  /** Versions (tombstones included) the key holds on this replica after the write. */
  readonly siblings: number;
  /** The `siblingWarning` level it passed. */
  readonly threshold: number;
}

/** Options of {@link ReplicaServer}. */
export interface ReplicaServerOptions {
  /** This node's storage (opened and closed by its owner). */
  readonly storage: StorageAdapter;
  /** This node's actor id (node id + incarnation) for new dots. */
  readonly actor: string;
  /** The current ring (for the tokens of keys that come without one). */
  readonly ring: () => Ring;
  /**
   * Where the high-water mark of this actor's dot counters is leased
   * durably (the node passes `metadataCounterLease(storage, MetaNames.counter)`).
   */
  readonly lease: CounterLease;
  /**
   * Source of the timestamps of new versions (last-writer-wins), unless a
   * write brings its own.
   * @default systemClock
   */
  readonly clock?: Clock;
  /** Bound on a new version's past. @default 10 */
  readonly maxClockEntries?: number;
  /**
   * Most versions (tombstones included: they take space too) a coordinated
   * write may leave on this replica: a write that would leave more, and more
   * than the key holds now, is refused with `KV_TOO_MANY_SIBLINGS` and
   * stores nothing. A write with the context of a read supersedes what it
   * read, so it is never refused; merges of replicated records never are.
   * The bound is this replica's: a key written concurrently through its N
   * replicas can merge to N × `maxSiblings` versions.
   * @default 100
   */
  readonly maxSiblings?: number;
  /**
   * Versions of one key above which {@link ReplicaServerOptions.onSiblings}
   * is called. At or above `maxSiblings` it never fires.
   * @default 25
   */
  readonly siblingWarning?: number;
  /**
   * Called when a coordinated write leaves its key with more than
   * `siblingWarning` versions where it had at most that many before (once
   * per crossing, not on every write past it). Called after the write is
   * stored, outside the key's lock; what it throws is ignored, since the
   * write must still be replicated.
   */
  readonly onSiblings?: (event: SiblingsEvent) => void;
}

/** What {@link ReplicaServer.coordinateWrite} returns. */
export interface CoordinatedVersion {
  /** The replica's whole new sibling set (replicate this, not only the new version). */
  readonly set: SiblingSet<Uint8Array>;
  /** Its encoding, as stored. */
  readonly encoded: Uint8Array;
}

/** Counters leased per lease extension. */
const COUNTER_LEASE = 10_000;

const EMPTY = SiblingSet.empty<Uint8Array>();

/** The answer to every `kv.apply` (the transport only reads answers). */
const APPLIED: WireMessage = Object.freeze({ type: 'kv.applied' });
const appliedAnswer = (): WireMessage => APPLIED;
/** The answer to a `kv.apply-batch` whose every item was applied. */
const NO_FAILURES = Object.freeze([]) as readonly WireValue[];
const BATCH_APPLIED: WireMessage = Object.freeze({ type: 'kv.applied-batch', failures: NO_FAILURES });

/** An item of a batch that was not applied or read: `[index, code, message]`. */
type ItemFailure = [number, string, string];

/**
 * Runs `item(i)` for each of `n` items of a batch: a throw or a rejection is
 * that item's failure, the other items go on. Returns the failures in index
 * order, synchronously when every item was done synchronously.
 */
function eachItem(n: number, item: (i: number) => void | Promise<void>): ItemFailure[] | Promise<ItemFailure[]> {
  const failures: ItemFailure[] = [];
  let waits: Promise<void>[] | undefined;
  for (let i = 0; i < n; i++) {
    try {
      const done = item(i);
      if (done instanceof Promise) (waits ??= []).push(done.then(undefined, (err: unknown) => void failures.push(batchFailure(i, toKvError(err)))));
    } catch (err) {
      failures.push(batchFailure(i, toKvError(err)));
    }
  }
  const sorted = (): ItemFailure[] => failures.sort((a, b) => a[0] - b[0]);
  return waits === undefined ? sorted() : Promise.all(waits).then(sorted);
}
/**
 * Records decoded here are this node's own bytes (a storage read, a
 * message's own copy) and their sets live for one merge: values stay views.
 */
const VIEWS = Object.freeze({ copyValues: false });

/** `value` as a promise (a sync throw of `run` becomes a rejection). */
function settled<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    const value = run();
    return value instanceof Promise ? value : Promise.resolve(value);
  } catch (err) {
    return Promise.reject(err);
  }
}
const recordAnswer = (record: Uint8Array | undefined): WireMessage => ownBody({ type: 'kv.record', record: record ?? null });
const versionedAnswer = (v: CoordinatedVersion): WireMessage => ownBody({ type: 'kv.versioned', record: v.encoded });

/** A key for messages: quoted UTF-8 when printable, else hex (both cut at 64 bytes). */
export function describeKey(key: Uint8Array): string {
  const head = key.subarray(0, 64);
  const more = key.length > head.length ? '…' : '';
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(head);
    if (!/[\u0000-\u001f\u007f]/.test(text)) return JSON.stringify(text + more);
  } catch {
    // not UTF-8 (or cut inside a character): hex below
  }
  return `0x${Buffer.from(head).toString('hex')}${more}`;
}

/**
 * The error for a record of this node's own storage that does not decode:
 * a storage failure (`KV_STORAGE_FAILURE` naming the key), not a protocol
 * error — only a record that came off the wire is `KV_INVALID_MESSAGE`.
 */
export function corruptStoredRecord(key: Uint8Array, err: unknown): KvError {
  const reason = err instanceof Error ? err.message : String(err);
  return new KvError(ErrorCodes.STORAGE_FAILURE, `stored record of key ${describeKey(key)} is corrupt: ${reason}`, {
    cause: err,
  });
}

/** A storage adapter's own failure (not a `KvError`) is `KV_STORAGE_FAILURE`; a `KvError` passes unchanged. */
function storageFailure(err: unknown): KvError {
  return toKvError(err, ErrorCodes.STORAGE_FAILURE);
}

/** Rejection handler: {@link storageFailure}. */
const rethrowStorageFailure = (err: unknown): never => {
  throw storageFailure(err);
};

function checkCount(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`Expected \`${name}\` to be a positive integer, got ${value === null ? 'null' : typeof value}`);
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Expected \`${name}\` to be a positive integer, got ${value}`);
  }
  return value;
}

function checkLease(lease: unknown): CounterLease {
  const l = lease as Partial<CounterLease> | null | undefined;
  if (l === null || typeof l !== 'object' || typeof l.load !== 'function' || typeof l.extend !== 'function') {
    throw new TypeError(
      `Expected \`lease\` to be an object with load() and extend(to) methods, got ${l === null ? 'null' : typeof l}`,
    );
  }
  return l as CounterLease;
}

/**
 * The replica side of the protocol: reads, merges and coordinated writes on
 * this node's storage. Writes to one key are serialised (read-merge-write
 * under a per-key lock), and a merge never creates a version — only
 * `coordinateWrite` does, with a fresh dot of this replica's actor whose
 * counter follows everything this replica has seen for the key.
 *
 * Keys come as a {@link KeyRef} (bytes and token, computed once per call by
 * the Store) or as raw bytes, whose token the replica computes. Messages
 * from other nodes carry the key's bytes only: the replica hashes them
 * itself, since the token decides where the record lives in the storage's
 * token order (range scans, anti-entropy, streaming) and a wrong token from
 * a buggy or hostile peer would hide the record from its range; hashing a
 * key costs less than checking a token someone sent.
 *
 * Siblings are bounded where versions are created: a coordinated write that
 * would leave more than `maxSiblings` versions, and more than the key holds,
 * is refused. Merges (`apply`: replication, read repair, hinted handoff) are
 * never refused — refusing one would drop versions that other replicas
 * already acknowledged — so replicas that accepted writes before seeing each
 * other's (concurrent writers through several replicas, or the sides of a
 * partition) can merge to more than `maxSiblings` versions: up to N ×
 * `maxSiblings` while the key's N replicas coordinate its writes, since each
 * actor's surviving blind versions were all in its own set when it last
 * wrote (`checkRecordFitsFrame` sizes records for that). Such a key still
 * reads, and a write with the read's context supersedes every version read
 * (leaving one), so the bound repairs itself on the next read-modify-write.
 *
 * Errors: a record read from this node's own storage that does not decode
 * is `KV_STORAGE_FAILURE` naming the key (only a record that came off the
 * wire is `KV_INVALID_MESSAGE`), and so is anything the storage adapter
 * throws that is not a `KvError` (a `KvError` it throws, such as
 * `KV_NOT_STARTED` from a closed storage, passes unchanged).
 */
export class ReplicaServer {
  readonly #storage: StorageAdapter;
  readonly #actor: string;
  readonly #ring: () => Ring;
  readonly #lease: CounterLease;
  readonly #clock: Clock;
  readonly #maxClockEntries: number;
  /** The change of the version being created (see #createVersion). */
  readonly #change: WriteChange<Uint8Array> & { value: Uint8Array | undefined };
  readonly #maxSiblings: number;
  readonly #siblingWarning: number;
  readonly #onSiblings: ((event: SiblingsEvent) => void) | undefined;
  readonly #locks = new KeyLock();
  readonly #tokenOf = (bytes: Uint8Array): number => this.#ring().token(bytes);
  /** Highest counter this actor issued (on any key). */
  #issued = 0;
  /** Counters up to here are leased durably: a restart over this storage starts above. */
  #reserved = 0;
  #leasing: Promise<void> | undefined;

  constructor(options: ReplicaServerOptions) {
    this.#storage = options.storage;
    this.#actor = options.actor;
    this.#ring = options.ring;
    this.#lease = checkLease(options.lease);
    this.#clock = options.clock ?? systemClock;
    this.#maxClockEntries = options.maxClockEntries ?? Defaults.maxClockEntries;
    this.#change = { value: undefined, tombstone: false, timestamp: 0, maxClockEntries: this.#maxClockEntries, counterFloor: 0 };
    this.#maxSiblings = checkCount('maxSiblings', options.maxSiblings ?? DEFAULT_MAX_SIBLINGS);
    this.#siblingWarning = checkCount('siblingWarning', options.siblingWarning ?? DEFAULT_SIBLING_WARNING);
    if (options.onSiblings !== undefined && typeof options.onSiblings !== 'function') {
      throw new TypeError(`Expected \`onSiblings\` to be a function, got ${typeof options.onSiblings}`);
    }
    this.#onSiblings = options.onSiblings;
  }

  /**
   * Loads the counter lease (call once the storage is open, before the
   * first write). Counters issued by an earlier run over this storage all
   * lie below the lease, so they are never reissued.
   *
   * @throws KvError `KV_STORAGE_FAILURE` if the lease cannot be read.
   */
  async open(): Promise<void> {
    let value: number;
    try {
      value = await this.#lease.load();
    } catch (err) {
      throw storageFailure(err);
    }
    this.#reserved = Number.isSafeInteger(value) && value > 0 ? value : 0;
    this.#issued = this.#reserved;
  }

  /** This replica's actor id. */
  get actor(): string {
    return this.#actor;
  }

  /**
   * The local sibling set of `key` (empty when absent). Its values are
   * views into the stored record, which may be the storage's own bytes
   * (see `StorageAdapter.getSharedNow`): read them, copy what you keep,
   * never change them.
   *
   * @throws KvError `KV_STORAGE_FAILURE` if the stored record does not decode or the storage fails.
   */
  async read(key: KeyRef | Uint8Array): Promise<SiblingSet<Uint8Array>> {
    const bytes = key instanceof Uint8Array ? key : key.bytes;
    const record = await this.readEncoded(bytes);
    return record === undefined ? EMPTY : this.#decodeStored(bytes, record);
  }

  /**
   * {@link ReplicaServer.readEncoded} for a caller on the data path: the
   * record itself when the storage answers synchronously, else a promise of
   * it. Storage failures are thrown (or reject) as `KV_STORAGE_FAILURE`.
   */
  readEncodedNow(key: KeyRef | Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    return this.#getNow(key instanceof Uint8Array ? key : key.bytes);
  }

  /**
   * The encoded local record of `key`, undefined when absent: possibly the
   * storage's own bytes (see {@link ReplicaServer.read}), never to be changed.
   *
   * @throws KvError `KV_STORAGE_FAILURE` if the storage fails.
   */
  readEncoded(key: KeyRef | Uint8Array): Promise<Uint8Array | undefined> {
    return settled(() => this.readEncodedNow(key));
  }

  /**
   * Merges `incoming` (whose encoding is `encoded`) into the local set and
   * writes only if something changed. Encodings are canonical, so equal
   * bytes mean equal sets and most replication steps skip the decode/merge.
   *
   * Never refused for its size: the merge may exceed `maxSiblings` (see the
   * class notes), since refusing it would drop acknowledged versions.
   *
   * @throws KvError `KV_STORAGE_FAILURE` if the stored record does not decode or the storage fails.
   */
  apply(key: KeyRef | Uint8Array, incoming: SiblingSet<Uint8Array>, encoded: Uint8Array): Promise<void> {
    return settled(() => this.#applyNow(toKeyRef(key, this.#tokenOf), incoming, encoded));
  }

  /**
   * The merge under the key's lock: synchronous when the storage is (see
   * #merge). `incoming` undefined: not decoded yet — it is decoded only if
   * the key holds a record to merge with, and otherwise only checked (a
   * bad record is still refused before anything is stored).
   */
  #applyNow(ref: KeyRef, incoming: SiblingSet<Uint8Array> | undefined, encoded: Uint8Array): void | Promise<void> {
    return this.#locks.runNowWith(ref.bytes, this.#mergeUnderLock, ref, incoming, encoded, undefined);
  }

  /** #merge for the key's lock (a function made once: no closure per apply). */
  readonly #mergeUnderLock = (ref: KeyRef, incoming: SiblingSet<Uint8Array> | undefined, encoded: Uint8Array): void | Promise<void> =>
    this.#merge(ref, incoming, encoded);

  // The read-merge-write runs synchronously when the storage answers
  // synchronously (getNow/putNow, as MemoryStorage does): no promise, no
  // turn, and the key's lock is taken and let go within the call. Only a
  // step that returns a promise makes the rest asynchronous.
  #merge(ref: KeyRef, incoming: SiblingSet<Uint8Array> | undefined, encoded: Uint8Array): void | Promise<void> {
    const local = this.#getNow(ref.bytes);
    return local instanceof Promise ? this.#mergeLater(ref, incoming, encoded, local) : this.#mergeWith(ref, incoming, encoded, local);
  }

  // The asynchronous steps are methods of their own: a closure in the
  // synchronous ones would allocate its scope on every call.

  #mergeLater(ref: KeyRef, incoming: SiblingSet<Uint8Array> | undefined, encoded: Uint8Array, local: Promise<Uint8Array | undefined>): Promise<void> {
    return local.then((bytes) => this.#mergeWith(ref, incoming, encoded, bytes));
  }

  #mergeWith(
    ref: KeyRef,
    incoming: SiblingSet<Uint8Array> | undefined,
    encoded: Uint8Array,
    localBytes: Uint8Array | undefined,
  ): void | Promise<void> {
    let record = encoded;
    if (localBytes === undefined) {
      // Nothing to merge with: the record is stored as it came, once checked.
      if (incoming === undefined) checkSiblingSet(encoded);
    } else {
      if (sameBytes(localBytes, encoded)) return;
      if (incoming === undefined) {
        // Most merges end as one of the two records (the sender's usually: the
        // replica's plus the new version); the dots and pasts tell which
        // without decoding either record whole. Throws for a bad sender's record.
        const shortcut = mergeShortcut(localBytes, encoded);
        if (shortcut === 'local') return;
        if (shortcut === 'incoming') return this.#putNow(ref.bytes, ref.token, encoded);
      }
      // The sender's record first: a bad one is the sender's fault (KV_INVALID_MESSAGE).
      const theirs = incoming ?? decodeSiblingSet(encoded, VIEWS);
      const local = this.#decodeStored(ref.bytes, localBytes);
      const merged = local.merge(theirs);
      if (merged.equals(local)) return;
      if (!merged.equals(theirs)) record = encodeSiblingSet(merged);
    }
    return this.#putNow(ref.bytes, ref.token, record);
  }

  /**
   * Creates the new version (context + a fresh event of this replica), stores
   * it and returns the replica's whole new sibling set, which the coordinator
   * then replicates (so any replica holding the new dot also holds every
   * earlier dot of this actor, or what obsoletes it). The write's `w` is the
   * coordinator's business; a replica ignores it.
   *
   * @throws TooManySiblingsError (`KV_TOO_MANY_SIBLINGS`) if the key would be
   *   left with more than `maxSiblings` versions and more than it has now;
   *   nothing is stored then.
   * @throws KvError `KV_STORAGE_FAILURE` if the stored record does not decode or the storage fails.
   * @throws TimeoutError (`KV_TIMEOUT`) if `notAfter` (a time on this
   *   replica's clock) has passed when the key's turn comes; nothing is created then.
   */
  coordinateWrite(key: KeyRef | Uint8Array, write: Omit<WriteRequest, 'w'>, notAfter?: number): Promise<CoordinatedVersion> {
    return settled(() => this.coordinateWriteNow(key, write, notAfter));
  }

  /**
   * {@link ReplicaServer.coordinateWrite} for a caller on the data path: the
   * version itself when it was created and stored synchronously (a storage
   * that answers synchronously, a free key, no lease to extend), else a
   * promise of it. Errors are thrown (or the promise rejects) as there.
   */
  coordinateWriteNow(
    key: KeyRef | Uint8Array,
    write: Omit<WriteRequest, 'w'>,
    notAfter?: number,
    now?: number,
  ): CoordinatedVersion | Promise<CoordinatedVersion> {
    const ref = toKeyRef(key, this.#tokenOf);
    // `now` (the caller's reading of this replica's clock, in this turn) stamps
    // the version only if it is created within this call: after the key's lock
    // was waited for, the clock is read again (runNowWith's `inTurn`).
    return this.#locks.runNowWith(ref.bytes, this.#coordinateUnderLock, ref, write, notAfter, now);
  }

  /** #coordinate for the key's lock (a function made once: no closure per write). */
  readonly #coordinateUnderLock = (
    ref: KeyRef,
    write: Omit<WriteRequest, 'w'>,
    notAfter: number | undefined,
    now: number | undefined,
  ): CoordinatedVersion | Promise<CoordinatedVersion> => this.#coordinate(ref, write, notAfter, now);

  // Synchronous end to end when the storage answers synchronously (see #merge).
  #coordinate(
    ref: KeyRef,
    write: Omit<WriteRequest, 'w'>,
    notAfter: number | undefined,
    now: number | undefined,
  ): CoordinatedVersion | Promise<CoordinatedVersion> {
    // Checked under the key's lock, before anything is read or created: a write
    // whose sender has moved on to another replica must not become a version here.
    if (notAfter !== undefined && (now ?? this.#clock.now()) > notAfter) {
      throw new TimeoutError(`write of key ${describeKey(ref.bytes)} arrived after its sender stopped waiting`);
    }
    const stored = this.#getNow(ref.bytes);
    return stored instanceof Promise ? this.#createVersionLater(ref, write, stored) : this.#createVersion(ref, write, stored, now);
  }

  #createVersionLater(ref: KeyRef, write: Omit<WriteRequest, 'w'>, stored: Promise<Uint8Array | undefined>): Promise<CoordinatedVersion> {
    return stored.then((bytes) => this.#createVersion(ref, write, bytes, undefined));
  }

  #createVersion(
    ref: KeyRef,
    write: Omit<WriteRequest, 'w'>,
    stored: Uint8Array | undefined,
    now: number | undefined,
  ): CoordinatedVersion | Promise<CoordinatedVersion> {
    const local = stored === undefined ? EMPTY : this.#decodeStored(ref.bytes, stored);
    const context = write.overwrite ? write.context.merge(local.clock()) : write.context;
    // One change object for every write (SiblingSet.write reads it and keeps
    // none of it; emptied after): a literal per write was ~64 bytes more for
    // the collector. The floor is the node-wide high-water mark: dots stay
    // unique even if clock pruning erased this actor's history from the key's set.
    const change = this.#change;
    change.value = write.value;
    change.tombstone = write.tombstone;
    change.timestamp = write.timestamp ?? now ?? this.#clock.now();
    change.counterFloor = this.#issued;
    let written: WriteResult<Uint8Array>;
    try {
      written = local.write(this.#actor, context, change);
    } finally {
      change.value = undefined;
    }
    const { set, version } = written;
    // Tombstones count: they take space in the record and time in every merge.
    // A write that does not grow the set (its context superseded at least one
    // version) always passes, so a key over the bound can always be repaired.
    if (set.size > this.#maxSiblings && set.size > local.size) {
      throw new TooManySiblingsError(describeKey(ref.bytes), set.size, this.#maxSiblings);
    }
    const counter = version.dot.counter;
    if (counter > this.#issued) this.#issued = counter;
    if (counter > this.#reserved) return this.#storeAfterLease(counter, ref, set, local.size);
    return this.#storeVersion(ref, set, local.size);
  }

  #storeAfterLease(counter: number, ref: KeyRef, set: SiblingSet<Uint8Array>, before: number): Promise<CoordinatedVersion> {
    return this.#extendLease(counter).then(() => this.#storeVersion(ref, set, before));
  }

  #storeVersion(ref: KeyRef, set: SiblingSet<Uint8Array>, before: number): CoordinatedVersion | Promise<CoordinatedVersion> {
    const encoded = encodeSiblingSet(set);
    const stored = this.#putNow(ref.bytes, ref.token, encoded);
    const version: CoordinatedVersion = { set, encoded };
    if (this.#onSiblings !== undefined && set.size > this.#siblingWarning && before <= this.#siblingWarning) {
      return this.#storedWithReport(ref, version, stored);
    }
    return stored instanceof Promise ? storedThen(stored, version) : version;
  }

  /**
   * #storeVersion's end for a write that took the key over the sibling
   * warning: the report runs once this write is stored and its lock let go
   * (the microtask comes after the synchronous release, or after the
   * storage's promise), so an observer that writes the key waits its turn
   * instead of deadlocking, and before the caller's continuation.
   */
  #storedWithReport(ref: KeyRef, version: CoordinatedVersion, stored: void | Promise<void>): CoordinatedVersion | Promise<CoordinatedVersion> {
    const size = version.set.size;
    if (stored instanceof Promise) return stored.then(() => (queueMicrotask(() => this.#reportSiblings(ref.bytes, size)), version));
    queueMicrotask(() => this.#reportSiblings(ref.bytes, size));
    return version;
  }

  #reportSiblings(key: Uint8Array, siblings: number): void {
    try {
      this.#onSiblings?.({ key, siblings, threshold: this.#siblingWarning });
    } catch {
      // An observer's failure must not fail a stored write that still has to be replicated.
    }
  }

  /** Makes sure `counter` is covered by a durable lease before a version using it is stored. */
  async #extendLease(counter: number): Promise<void> {
    while (counter > this.#reserved) {
      if (!this.#leasing) {
        const target = Math.max(counter, this.#issued) + COUNTER_LEASE;
        this.#leasing = this.#lease
          .extend(target)
          .then(
            () => {
              this.#reserved = Math.max(this.#reserved, target);
            },
            (err: unknown) => {
              throw storageFailure(err);
            },
          )
          .finally(() => {
            this.#leasing = undefined;
          });
      }
      await this.#leasing;
    }
  }

  /**
   * Handles `kv.read`, `kv.apply` and `kv.version` (create a forwarded
   * write's version; see `messages.ts`). The key's token is computed here
   * from its bytes, never taken from the message (see the class notes).
   *
   * The answer comes synchronously when the work was synchronous (a read
   * or a merge over a storage that answers synchronously): a transport then
   * sends it in the same turn, with no promise. Failures always come as a
   * rejected promise.
   */
  handle(message: WireMessage): WireMessage | Promise<WireMessage> {
    // Not an async function: the answer follows the storage's promise directly.
    try {
      switch (message.type) {
        case 'kv.read': {
          const record = this.#getNow(readBytes(message, 'key', MAX_WIRE_KEY));
          return record instanceof Promise ? record.then(recordAnswer) : recordAnswer(record);
        }
        case 'kv.apply': {
          const key = readBytes(message, 'key', MAX_WIRE_KEY);
          const encoded = readBytes(message, 'record', MAX_WIRE_RECORD);
          // The record is checked (or decoded, to merge) before anything is stored.
          const done = this.#applyNow({ bytes: key, token: this.#tokenOf(key) }, undefined, encoded);
          return done instanceof Promise ? done.then(appliedAnswer) : APPLIED;
        }
        case 'kv.version':
          return this.#version(message);
        case 'kv.apply-batch':
          return this.#applyBatch(message);
        case 'kv.read-batch':
          return this.#readBatch(message);
        default:
          throw new KvError(ErrorCodes.INVALID_MESSAGE, `unknown replica message type ${message.type}`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Tombstone GC (anti-entropy): removes `key` physically if, under the
   * key's lock, its stored record satisfies `matches` (the caller checks it
   * is the tombstone every replica confirmed) and holds tombstones only. A
   * write that got in first changed the record, so the key stays.
   *
   * @returns true if the key was removed.
   * @throws KvError `KV_STORAGE_FAILURE` if the storage fails.
   */
  purgeTombstone(key: Uint8Array, matches: (record: Uint8Array) => boolean): Promise<boolean> {
    return this.#locks.run(bytesKey(key), async () => {
      const record = await this.readEncoded(key);
      if (record === undefined || !matches(record) || decodeTombstones(record) === undefined) return false;
      try {
        await this.#storage.delete(key);
      } catch (err) {
        throw storageFailure(err);
      }
      return true;
    });
  }

  /**
   * `kv.apply-batch {keys, records}`: each item as `kv.apply` would be, in
   * order (two items of one key merge one after the other, under the key's
   * lock when the storage is asynchronous). The batch is refused whole
   * (`KV_INVALID_MESSAGE`, nothing applied) when it is not two arrays of the
   * same length, 1 to {@link MAX_WIRE_BATCH_ITEMS} items; an item that fails
   * (a malformed key or record, a storage failure) is reported in the
   * answer's `failures` as `[index, code, message]` and the others are
   * applied. The answer comes synchronously when every item was applied
   * synchronously.
   */
  #applyBatch(message: WireMessage): WireMessage | Promise<WireMessage> {
    const keys = message['keys'];
    const records = message['records'];
    if (!Array.isArray(keys) || !Array.isArray(records) || keys.length !== records.length || keys.length === 0 || keys.length > MAX_WIRE_BATCH_ITEMS) {
      throw new KvError(
        ErrorCodes.INVALID_MESSAGE,
        `malformed kv.apply-batch: expected keys and records, two arrays of the same length, 1 to ${MAX_WIRE_BATCH_ITEMS} items`,
      );
    }
    const failures = eachItem(keys.length, (i) => {
      const key = checkBytes(keys[i], MAX_WIRE_KEY, 'kv.apply-batch item: key');
      const encoded = checkBytes(records[i], MAX_WIRE_RECORD, 'kv.apply-batch item: record');
      return this.#applyNow({ bytes: key, token: this.#tokenOf(key) }, undefined, encoded);
    });
    const answer = (f: ItemFailure[]): WireMessage => (f.length === 0 ? BATCH_APPLIED : { type: 'kv.applied-batch', failures: f });
    return failures instanceof Promise ? failures.then(answer) : answer(failures);
  }

  /**
   * `kv.read-batch {keys}`: each key read as `kv.read` would read it. The
   * answer is `kv.records {records, failures}`: a record or null per key, in
   * order, and `[index, code, message]` for each key that could not be read
   * (its record null). Refused whole (`KV_INVALID_MESSAGE`) when `keys` is
   * not an array of 1 to {@link MAX_WIRE_BATCH_ITEMS}; answered in the same
   * turn when every read was synchronous.
   */
  #readBatch(message: WireMessage): WireMessage | Promise<WireMessage> {
    const keys = message['keys'];
    if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_WIRE_BATCH_ITEMS) {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, `malformed kv.read-batch: expected keys, an array of 1 to ${MAX_WIRE_BATCH_ITEMS} items`);
    }
    const records: (Uint8Array | null)[] = new Array<Uint8Array | null>(keys.length).fill(null);
    const failures = eachItem(keys.length, (i) => {
      const record = this.#getNow(checkBytes(keys[i], MAX_WIRE_KEY, 'kv.read-batch item: key'));
      if (!(record instanceof Promise)) {
        records[i] = record ?? null;
        return undefined;
      }
      return record.then((r) => {
        records[i] = r ?? null;
      });
    });
    const answer = (f: ItemFailure[]): WireMessage => ({ type: 'kv.records', records, failures: f.length === 0 ? NO_FAILURES : f });
    return failures instanceof Promise ? failures.then(answer) : answer(failures);
  }

  #version(message: WireMessage): WireMessage | Promise<WireMessage> {
    const key = readBytes(message, 'key', MAX_WIRE_KEY);
    const value = readOptionalBytes(message, 'value', MAX_WIRE_RECORD);
    const tombstone = readBoolean(message, 'tombstone');
    const overwrite = readBoolean(message, 'overwrite');
    const contextBytes = readOptionalBytes(message, 'context', MAX_WIRE_CLOCK);
    const timestamp = readOptionalNumber(message, 'timestamp', 0, Number.MAX_SAFE_INTEGER);
    const expires = readOptionalNumber(message, 'expires', 0, Number.MAX_SAFE_INTEGER);
    if (tombstone === (value !== undefined)) {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, 'malformed kv.version: exactly one of value and tombstone');
    }
    const context = contextBytes === undefined ? VectorClock.EMPTY : decodeClock(contextBytes);
    // Answered in the same turn when the version was created synchronously (handle() turns a throw into a rejection).
    const version = this.coordinateWriteNow(
      { bytes: key, token: this.#tokenOf(key) },
      { value, tombstone, overwrite, context, timestamp },
      expires,
      // One reading for the expiry check and the version's timestamp.
      this.#clock.now(),
    );
    return version instanceof Promise ? version.then(versionedAnswer) : versionedAnswer(version);
  }

  // ---- storage, with its failures as KV_STORAGE_FAILURE ----------------------------------------

  /**
   * The stored record, synchronously when the adapter can (`getNow`), as
   * the adapter's own bytes when it can (`getSharedNow`: never change
   * them); failures are `KV_STORAGE_FAILURE`.
   */
  #getNow(key: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    const storage = this.#storage;
    let result: Uint8Array | undefined | Promise<Uint8Array | undefined>;
    try {
      result =
        storage.getSharedNow !== undefined
          ? storage.getSharedNow(key)
          : storage.getNow !== undefined
            ? storage.getNow(key)
            : storage.get(key);
    } catch (err) {
      throw storageFailure(err);
    }
    return result instanceof Promise ? result.then(undefined, rethrowStorageFailure) : result;
  }

  /** Stores a record, synchronously when the adapter can (`putNow`); failures are `KV_STORAGE_FAILURE`. */
  #putNow(key: Uint8Array, token: number, record: Uint8Array): void | Promise<void> {
    const storage = this.#storage;
    let result: void | Promise<void>;
    try {
      result = storage.putNow !== undefined ? storage.putNow(key, token, record) : storage.put(key, token, record);
    } catch (err) {
      throw storageFailure(err);
    }
    return result instanceof Promise ? result.then(undefined, rethrowStorageFailure) : undefined;
  }

  /** Decodes a record from this node's storage: a bad one is a storage failure, not a bad message. */
  #decodeStored(key: Uint8Array, bytes: Uint8Array): SiblingSet<Uint8Array> {
    try {
      return decodeSiblingSet(bytes, VIEWS);
    } catch (err) {
      throw corruptStoredRecord(key, err);
    }
  }
}

/** `version` once `stored` settled (a function of its own: no scope per synchronous store). */
function storedThen<T>(stored: Promise<void>, version: T): Promise<T> {
  return stored.then(() => version);
}
