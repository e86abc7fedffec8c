import { decode, encode } from '@msgpack/msgpack';
import { ErrorCodes, KvError, TooManySiblingsError } from '../errors/index.js';
import { KeyLock } from '../internal/key-lock.js';
import { bytesKey, sameBytes } from '../internal/bytes.js';
import type { Ring } from '../ring/index.js';
import type { StorageAdapter } from '../storage/index.js';
import type { WireMessage } from '../transport/index.js';
import {
  SiblingSet,
  VectorClock,
  decodeSiblingSet,
  encodeSiblingSet,
} from '../versioning/index.js';
import { MAX_WIRE_KEY, MAX_WIRE_RECORD, readBytes } from './messages.js';
import { DEFAULT_MAX_SIBLINGS, DEFAULT_SIBLING_WARNING } from './record-limits.js';

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
  /** The current ring (for key tokens). */
  readonly ring: () => Ring;
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

/** A write to coordinate on this replica. */
export interface LocalWrite {
  /** Encoded value; undefined for a tombstone. */
  readonly value: Uint8Array | undefined;
  readonly tombstone: boolean;
  /** What the client had read (empty for a blind write). */
  readonly context: VectorClock;
  /** Also supersede everything this replica holds (last-write-wins mode). */
  readonly overwrite: boolean;
  /** Coordinator wall-clock time, for LWW resolution. */
  readonly timestamp: number;
}

/** Metadata slot holding the leased high-water mark of this actor's counters. */
export const META_COUNTER = 'quorumkv.counter';
/** Counters leased per metadata write. */
const COUNTER_LEASE = 10_000;

const lockKey = bytesKey;

/** A key for messages: quoted UTF-8 when printable, else hex (both cut at 64 bytes). */
function describeKey(key: Uint8Array): string {
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

function checkCount(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`Expected \`${name}\` to be a positive integer, got ${value === null ? 'null' : typeof value}`);
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Expected \`${name}\` to be a positive integer, got ${value}`);
  }
  return value;
}

/**
 * The replica side of the protocol: reads, merges and coordinated writes on
 * this node's storage. Writes to one key are serialised (read-merge-write
 * under a per-key lock), and a merge never creates a version — only
 * `coordinateWrite` does, with a fresh dot of this replica's actor whose
 * counter follows everything this replica has seen for the key.
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
 * A record read from this node's own storage that does not decode is a
 * storage failure (`KV_STORAGE_FAILURE` naming the key), not a protocol
 * error: only a record that came off the wire is `KV_INVALID_MESSAGE`.
 */
export class ReplicaServer {
  readonly #storage: StorageAdapter;
  readonly #actor: string;
  readonly #ring: () => Ring;
  readonly #maxClockEntries: number;
  readonly #maxSiblings: number;
  readonly #siblingWarning: number;
  readonly #onSiblings: ((event: SiblingsEvent) => void) | undefined;
  readonly #locks = new KeyLock();
  /** Highest counter this actor issued (on any key). */
  #issued = 0;
  /** Counters up to here are leased durably: a restart over this storage starts above. */
  #reserved = 0;
  #leasing: Promise<void> | undefined;

  constructor(options: ReplicaServerOptions) {
    this.#storage = options.storage;
    this.#actor = options.actor;
    this.#ring = options.ring;
    this.#maxClockEntries = options.maxClockEntries ?? 10;
    this.#maxSiblings = checkCount('maxSiblings', options.maxSiblings ?? DEFAULT_MAX_SIBLINGS);
    this.#siblingWarning = checkCount('siblingWarning', options.siblingWarning ?? DEFAULT_SIBLING_WARNING);
    if (options.onSiblings !== undefined && typeof options.onSiblings !== 'function') {
      throw new TypeError(`Expected \`onSiblings\` to be a function, got ${typeof options.onSiblings}`);
    }
    this.#onSiblings = options.onSiblings;
  }

  /**
   * Loads the counter lease from the storage's metadata (call once the
   * storage is open, before the first write). Counters issued by an earlier
   * run over this storage all lie below the lease, so they are never reissued.
   */
  async open(): Promise<void> {
    const stored = await this.#storage.getMeta(META_COUNTER);
    const value = stored ? Number(decode(stored)) : 0;
    this.#reserved = Number.isSafeInteger(value) && value > 0 ? value : 0;
    this.#issued = this.#reserved;
  }

  /** This replica's actor id. */
  get actor(): string {
    return this.#actor;
  }

  /**
   * The local sibling set of `key` (empty when absent).
   *
   * @throws KvError `KV_STORAGE_FAILURE` if the stored record does not decode.
   */
  async read(key: Uint8Array): Promise<SiblingSet<Uint8Array>> {
    const bytes = await this.#storage.get(key);
    return bytes === undefined ? SiblingSet.empty<Uint8Array>() : this.#decodeStored(key, bytes);
  }

  /** Decodes a record from this node's storage: a bad one is a storage failure, not a bad message. */
  #decodeStored(key: Uint8Array, bytes: Uint8Array): SiblingSet<Uint8Array> {
    try {
      return decodeSiblingSet(bytes);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new KvError(ErrorCodes.STORAGE_FAILURE, `stored record of key ${describeKey(key)} is corrupt: ${reason}`, {
        cause: err,
      });
    }
  }

  /** The encoded local record of `key`, undefined when absent. */
  readEncoded(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#storage.get(key);
  }

  /**
   * Merges `incoming` (whose encoding is `encoded`) into the local set and
   * writes only if something changed. Encodings are canonical, so equal
   * bytes mean equal sets and most replication steps skip the decode/merge.
   *
   * Never refused for its size: the merge may exceed `maxSiblings` (see the
   * class notes), since refusing it would drop acknowledged versions.
   *
   * @throws KvError `KV_STORAGE_FAILURE` if the stored record does not decode.
   */
  apply(key: Uint8Array, incoming: SiblingSet<Uint8Array>, encoded: Uint8Array): Promise<void> {
    return this.#locks.run(lockKey(key), async () => {
      const localBytes = await this.#storage.get(key);
      if (localBytes !== undefined && sameBytes(localBytes, encoded)) return;
      const token = this.#ring().token(key);
      if (localBytes === undefined) {
        await this.#storage.put(key, token, encoded);
        return;
      }
      const local = this.#decodeStored(key, localBytes);
      const merged = local.merge(incoming);
      if (merged.equals(local)) return;
      await this.#storage.put(key, token, merged.equals(incoming) ? encoded : encodeSiblingSet(merged));
    });
  }

  /**
   * Creates the new version (context + a fresh event of this replica), stores
   * it and returns the replica's whole new sibling set, which the coordinator
   * then replicates (so any replica holding the new dot also holds every
   * earlier dot of this actor, or what obsoletes it).
   *
   * @throws TooManySiblingsError (`KV_TOO_MANY_SIBLINGS`) if the key would be
   *   left with more than `maxSiblings` versions and more than it has now;
   *   nothing is stored then.
   * @throws KvError `KV_STORAGE_FAILURE` if the stored record does not decode.
   */
  async coordinateWrite(key: Uint8Array, write: LocalWrite): Promise<{ set: SiblingSet<Uint8Array>; encoded: Uint8Array }> {
    let before = 0;
    const result = await this.#locks.run(lockKey(key), async () => {
      const local = await this.read(key);
      before = local.size;
      const context = write.overwrite ? write.context.merge(local.clock()) : write.context;
      // The floor is the node-wide high-water mark: dots stay unique even if clock
      // pruning erased this actor's history from the key's set.
      const { set, version } = local.write(this.#actor, context, {
        ...(write.value === undefined ? {} : { value: write.value }),
        tombstone: write.tombstone,
        timestamp: write.timestamp,
        maxClockEntries: this.#maxClockEntries,
        counterFloor: this.#issued,
      });
      // Tombstones count: they take space in the record and time in every merge.
      // A write that does not grow the set (its context superseded at least one
      // version) always passes, so a key over the bound can always be repaired.
      if (set.size > this.#maxSiblings && set.size > local.size) {
        throw new TooManySiblingsError(describeKey(key), set.size, this.#maxSiblings);
      }
      this.#issued = Math.max(this.#issued, version.dot.counter);
      if (version.dot.counter > this.#reserved) await this.#lease(version.dot.counter);
      const encoded = encodeSiblingSet(set);
      await this.#storage.put(key, this.#ring().token(key), encoded);
      return { set, encoded };
    });
    const after = result.set.size;
    if (this.#onSiblings !== undefined && after > this.#siblingWarning && before <= this.#siblingWarning) {
      try {
        this.#onSiblings({ key, siblings: after, threshold: this.#siblingWarning });
      } catch {
        // An observer's failure must not fail a stored write that still has to be replicated.
      }
    }
    return result;
  }

  /** Makes sure `counter` is covered by a durable lease before a version using it is stored. */
  async #lease(counter: number): Promise<void> {
    while (counter > this.#reserved) {
      if (!this.#leasing) {
        const target = Math.max(counter, this.#issued) + COUNTER_LEASE;
        this.#leasing = this.#storage
          .setMeta(META_COUNTER, encode(target))
          .then(() => {
            this.#reserved = Math.max(this.#reserved, target);
          })
          .finally(() => {
            this.#leasing = undefined;
          });
      }
      await this.#leasing;
    }
  }

  /** Handles `kv.read` and `kv.apply`. */
  async handle(message: WireMessage): Promise<WireMessage> {
    switch (message.type) {
      case 'kv.read': {
        const key = readBytes(message, 'key', MAX_WIRE_KEY);
        const bytes = await this.#storage.get(key);
        return { type: 'kv.record', record: bytes ?? null };
      }
      case 'kv.apply': {
        const key = readBytes(message, 'key', MAX_WIRE_KEY);
        const encoded = readBytes(message, 'record', MAX_WIRE_RECORD);
        // Decoding validates the record before anything is stored.
        await this.apply(key, decodeSiblingSet(encoded), encoded);
        return { type: 'kv.applied' };
      }
      default:
        throw new KvError(ErrorCodes.INVALID_MESSAGE, `unknown replica message type ${message.type}`);
    }
  }
}
