import { decode, encode } from '@msgpack/msgpack';
import { ErrorCodes, KvError } from '../errors/index.js';
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

/**
 * The replica side of the protocol: reads, merges and coordinated writes on
 * this node's storage. Writes to one key are serialised (read-merge-write
 * under a per-key lock), and a merge never creates a version — only
 * `coordinateWrite` does, with a fresh dot of this replica's actor whose
 * counter follows everything this replica has seen for the key.
 */
export class ReplicaServer {
  readonly #storage: StorageAdapter;
  readonly #actor: string;
  readonly #ring: () => Ring;
  readonly #maxClockEntries: number;
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

  /** The local sibling set of `key` (empty when absent). */
  async read(key: Uint8Array): Promise<SiblingSet<Uint8Array>> {
    const bytes = await this.#storage.get(key);
    return bytes === undefined ? SiblingSet.empty<Uint8Array>() : decodeSiblingSet(bytes);
  }

  /** The encoded local record of `key`, undefined when absent. */
  readEncoded(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#storage.get(key);
  }

  /**
   * Merges `incoming` (whose encoding is `encoded`) into the local set and
   * writes only if something changed. Encodings are canonical, so equal
   * bytes mean equal sets and most replication steps skip the decode/merge.
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
      const local = decodeSiblingSet(localBytes);
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
   */
  coordinateWrite(key: Uint8Array, write: LocalWrite): Promise<{ set: SiblingSet<Uint8Array>; encoded: Uint8Array }> {
    return this.#locks.run(lockKey(key), async () => {
      const local = await this.read(key);
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
      this.#issued = Math.max(this.#issued, version.dot.counter);
      if (version.dot.counter > this.#reserved) await this.#lease(version.dot.counter);
      const encoded = encodeSiblingSet(set);
      await this.#storage.put(key, this.#ring().token(key), encoded);
      return { set, encoded };
    });
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
