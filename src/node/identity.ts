import { randomBytes } from 'node:crypto';
import type { Clock } from '../internal/clock.js';
import type { MemberRecord } from '../membership/index.js';
import { defaultTokens, packTokens, unpackTokens } from '../ring/index.js';
import type { StorageAdapter } from '../storage/index.js';
import {
  MetaNames,
  decodeNumber,
  decodePeers,
  decodeText,
  encodeNumber,
  encodePeers,
  encodeText,
} from './metadata.js';

/** Who this node is, as loaded (and advanced) from its storage at start. */
export interface NodeIdentity {
  /** New whenever the node starts on empty storage: part of its actor id. */
  readonly incarnation: string;
  /** Higher than at any earlier start over this storage, and not below the clock. */
  readonly generation: number;
  readonly tokens: readonly number[];
  /** The members this node knew when it stopped (empty on a first start). */
  readonly peers: readonly MemberRecord[];
}

/** What {@link loadIdentity} needs. */
export interface IdentityInit {
  readonly id: string;
  readonly weight: number;
  /** Explicit tokens (they replace stored ones). */
  readonly tokens: readonly number[] | undefined;
  readonly tokensPerWeight: number;
  readonly clock: Clock;
  /** Draws the incarnation on empty storage (a seeded one replays exactly). @default node:crypto */
  readonly random?: (() => number) | undefined;
}

const INCARNATION = /^[0-9a-z]{1,32}$/;

/**
 * Loads the node's identity from its storage's metadata slot and persists
 * what changed (a new incarnation on empty storage, the next generation, the
 * tokens) before the node says anything to its peers.
 */
export async function loadIdentity(storage: StorageAdapter, init: IdentityInit): Promise<NodeIdentity> {
  const stored = await storage.getMeta(MetaNames.incarnation);
  let incarnation = stored ? decodeText(stored) : undefined;
  if (!incarnation || !INCARNATION.test(incarnation)) {
    incarnation = init.random
      ? (Math.floor(init.random() * 2 ** 32) * 2 ** 21 + Math.floor(init.random() * 2 ** 21)).toString(36)
      : randomBytes(8).readBigUInt64BE().toString(36);
    await storage.setMeta(MetaNames.incarnation, encodeText(incarnation));
  }
  // Generation: grows at every start, even on empty storage (peers remember the old
  // one; a peer that remembers a higher one tells this node, see Membership).
  const previous = decodeNumber(await storage.getMeta(MetaNames.generation)) ?? 0;
  const generation = Math.max(previous + 1, Math.floor(init.clock.now()));
  await storage.setMeta(MetaNames.generation, encodeNumber(generation));

  let tokens = init.tokens;
  if (!tokens) {
    const packed = await storage.getMeta(MetaNames.tokens);
    tokens = packed && packed.length > 0 ? unpackTokens(packed) : defaultTokens(init.id, init.weight, init.tokensPerWeight);
  }
  await storage.setMeta(MetaNames.tokens, packTokens(tokens));

  const peerBytes = await storage.getMeta(MetaNames.peers);
  const peers = peerBytes ? decodePeers(peerBytes).filter((p) => p.id !== init.id) : [];
  return { incarnation, generation, tokens, peers };
}

/**
 * Writes metadata in the background, one write at a time: a newer value of a
 * name replaces one not yet written (stored peers change in bursts while a
 * node joins). `flush()` waits until everything asked is on storage.
 */
export class MetadataWriter {
  readonly #storage: StorageAdapter;
  readonly #onError: (name: string, err: unknown) => void;
  /** Values to write, or how to make them (encoded only when written: bursts encode once). */
  readonly #queued = new Map<string, Uint8Array | (() => Uint8Array)>();
  #running: Promise<void> | undefined;

  constructor(storage: StorageAdapter, onError: (name: string, err: unknown) => void) {
    this.#storage = storage;
    this.#onError = onError;
  }

  /** Queues `value` for `name` (replacing a queued one). */
  write(name: string, value: Uint8Array | (() => Uint8Array)): void {
    this.#queued.set(name, value);
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined;
    });
  }

  /** Persists the stored peers. */
  peers(peers: readonly MemberRecord[]): void {
    this.write(MetaNames.peers, () => encodePeers(peers));
  }

  /** Persists a generation this node moved to. */
  generation(generation: number): void {
    this.write(MetaNames.generation, encodeNumber(generation));
  }

  /** Resolves once every queued write is done (failures are reported to `onError`). */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    for (;;) {
      const next = this.#queued.entries().next();
      if (next.done) return;
      const [name, value] = next.value;
      this.#queued.delete(name);
      try {
        await this.#storage.setMeta(name, typeof value === 'function' ? value() : value);
      } catch (err) {
        this.#onError(name, err);
      }
    }
  }
}
