/**
 * Tombstone garbage collection. A delete is a tombstone version, kept like
 * any other so that it wins over the value it deleted wherever the two
 * meet. Removing it is safe only once no replica can bring the value back,
 * so a key is purged only when:
 *
 * 1. its record holds tombstones only, the newest written more than the
 *    grace (`tombstoneGrace`, default 10 days, Cassandra's `gc_grace`) ago —
 *    hints and stale copies older than that are gone (hints expire sooner);
 * 2. **every** replica of the key (its preference list in this node's ring)
 *    holds exactly the same record, checked right after a round exchanged
 *    the range with all of them (`ae.confirm`): a replica that is away, or
 *    that lacks the tombstone, stops the purge of the key;
 * 3. at the moment of removal the record is still that tombstone, checked
 *    under the key's lock on each replica (a write in between wins).
 *
 * A replica away for longer than the grace may still hold the old value
 * while its peers purged the tombstone: it must be wiped (restarted on empty
 * storage) before it rejoins, as in Cassandra (docs/anti-entropy.md).
 *
 * @module
 */
import { throwIfAborted } from '../internal/signals.js';
import type { NodeInfo } from '../ring/index.js';
import type { TokenRangeQuery } from '../storage/index.js';
import { decodeTombstones } from '../versioning/index.js';
import { HASH_BYTES, fromBitmap } from './diff.js';
import { recordDigest } from './hash64.js';
import { GC_BATCH_KEYS, digestAt, invalidMessage, readBytesField } from './protocol.js';
import { aeRequest, type ExchangeCounters, type SessionContext } from './session.js';

/**
 * True if `record` (an encoded sibling set) holds tombstones only, the
 * newest with a timestamp at or before `horizon` (now minus the grace). A
 * record that does not decode is not a tombstone.
 */
export function isExpiredTombstone(record: Uint8Array, horizon: number): boolean {
  const set = decodeTombstones(record);
  if (set === undefined) return false;
  for (const v of set.versions) if (v.timestamp > horizon) return false;
  return true;
}

/**
 * Collects the tombstones of `range` that every replica holds and that
 * are older than the grace: lists this node's candidates, asks every peer
 * which of them it holds identically (`ae.confirm`), then has every peer
 * and this node remove the ones all confirmed (`ae.purge`, each replica
 * re-checking under the key's lock). Call it only after the round
 * exchanged the range with every peer. Any peer failing stops it (nothing
 * more is purged in the range: the next round tries again).
 *
 * @returns the tombstones this node removed.
 * @throws what the transport or the storage throws (the caller skips the range).
 */
export async function collectTombstones(
  ctx: SessionContext,
  range: TokenRangeQuery,
  peers: readonly NodeInfo[],
  horizon: number,
  counters: ExchangeCounters,
  signal?: AbortSignal,
): Promise<number> {
  let purged = 0;
  let keys: Uint8Array[] = [];
  let digests: Uint8Array[] = [];
  const flush = async (): Promise<void> => {
    purged += await purgeBatch(ctx, peers, keys, digests, horizon, counters, signal);
    keys = [];
    digests = [];
  };
  for await (const e of ctx.replica.scan(range, signal)) {
    if (!isExpiredTombstone(e.record, horizon)) continue;
    keys.push(e.key);
    digests.push(recordDigest(e.record));
    if (keys.length === GC_BATCH_KEYS) await flush();
  }
  throwIfAborted(signal);
  if (keys.length > 0) await flush();
  return purged;
}

async function purgeBatch(
  ctx: SessionContext,
  peers: readonly NodeInfo[],
  keys: Uint8Array[],
  digests: Uint8Array[],
  horizon: number,
  counters: ExchangeCounters,
  signal: AbortSignal | undefined,
): Promise<number> {
  let chosen = keys.map((_, i) => i);
  const all = concat(digests);
  for (const peer of peers) {
    if (chosen.length === 0) return 0;
    const answer = await aeRequest(ctx, peer.address, { type: 'ae.confirm', keys, digests: all }, counters, signal);
    if (answer.type !== 'ae.confirmed') throw invalidMessage(answer.type, 'expected ae.confirmed');
    const held = new Set(fromBitmap(readBytesField(answer, 'held'), keys.length));
    chosen = chosen.filter((i) => held.has(i));
  }
  if (chosen.length === 0) return 0;
  const purgeKeys = chosen.map((i) => keys[i]!);
  const purgeDigests = concat(chosen.map((i) => digests[i]!));
  for (const peer of peers) {
    const answer = await aeRequest(ctx, peer.address, { type: 'ae.purge', keys: purgeKeys, digests: purgeDigests }, counters, signal);
    if (answer.type !== 'ae.purged') throw invalidMessage(answer.type, 'expected ae.purged');
  }
  let purged = 0;
  for (let k = 0; k < purgeKeys.length; k++) {
    const at = k * HASH_BYTES;
    const removed = await ctx.replica.purgeTombstone(
      purgeKeys[k]!,
      (record) => digestAt(recordDigest(record), purgeDigests, at) && isExpiredTombstone(record, horizon),
    );
    if (removed) purged++;
  }
  return purged;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.length * HASH_BYTES);
  parts.forEach((p, i) => out.set(p, i * HASH_BYTES));
  return out;
}
