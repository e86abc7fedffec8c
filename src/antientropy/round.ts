/**
 * One anti-entropy round: every range this node replicates, against every
 * other replica of it, then tombstone GC where every replica took part.
 *
 * @module
 */
import { AbortError, ErrorCodes, KvError } from '../errors/index.js';
import type { MemberStatus, NodeInfo } from '../ring/index.js';
import { buildTree } from './local-tree.js';
import type { MerkleTree, MerkleTreeOptions } from './merkle-tree.js';
import { replicatedRanges, type ReplicatedRange } from './ranges.js';
import { emptyCounters, runExchange, type ExchangeCounters, type SessionContext } from './session.js';
import { collectTombstones } from './tombstones.js';
import type { RepairResult } from './types.js';

/** Why a (range, peer) pair was skipped. */
export interface SkippedPeer {
  readonly range: ReplicatedRange;
  readonly peer: NodeInfo;
  /** `'down'` (or unknown) by the failure detector, else the error the exchange failed with. */
  readonly reason: 'down' | KvError;
}

/** What {@link runRound} needs besides a {@link SessionContext}. */
export interface RoundContext extends SessionContext {
  /** A peer's health as this node sees it (`down` when unknown): down peers are skipped, not tried. */
  readonly status: (id: string) => MemberStatus;
  /** Shape of the trees this node builds. */
  readonly tree: MerkleTreeOptions;
  /** Tombstone grace, ms (`Infinity`: never purge). */
  readonly tombstoneGrace: number;
  /** Current time (the tombstone horizon is `now() - tombstoneGrace`). */
  readonly now: () => number;
  /** A new session id, unique on this node across restarts. */
  readonly newSession: () => string;
  /** Told of every skipped pair (logging). */
  readonly onSkipped?: (skipped: SkippedPeer) => void;
  /** Told when tombstone GC of a range failed (logging); the round goes on. */
  readonly onGcFailed?: (range: ReplicatedRange, error: KvError) => void;
}

/** The error a round rejects with once `signal` fired: its reason if a KvError, else `KV_ABORTED`. */
export function abortReason(signal: AbortSignal): KvError {
  const reason: unknown = signal.reason;
  return reason instanceof KvError ? reason : new AbortError(undefined, { cause: reason });
}

function add(total: ExchangeCounters, part: ExchangeCounters): void {
  total.keysSent += part.keysSent;
  total.keysReceived += part.keysReceived;
  total.keysIgnored += part.keysIgnored;
  total.bytesSent += part.bytesSent;
  total.bytesReceived += part.bytesReceived;
}

function asKvError(err: unknown): KvError {
  return err instanceof KvError ? err : new KvError(ErrorCodes.INTERNAL, err instanceof Error ? err.message : String(err), { cause: err });
}

/**
 * Runs one round. Ranges go one after another, and within a range the
 * peers one after another: the tree is rebuilt when an exchange merged
 * records, so what one peer brought reaches the peers after it, and the
 * peers compared before it get one more exchange at the end of the range
 * (one round on one node leaves every reachable replica of the range equal,
 * writes meanwhile aside). `rangesCompared` counts (range, peer) pairs once. A
 * peer that is down or unknown is skipped without a message; one that
 * fails (unreachable, timed out, refused) is skipped after the failure.
 * Tombstones of a range are collected only when every peer of it was
 * compared in this round.
 *
 * @throws KvError the reason of `signal` (`KV_ABORTED`, or the KvError it
 *   was aborted with) once it fires; storage failures of this node.
 */
export async function runRound(ctx: RoundContext, signal?: AbortSignal): Promise<Omit<RepairResult, 'hintsDelivered'>> {
  const totals = emptyCounters();
  let rangesCompared = 0;
  let peersSkipped = 0;
  let tombstonesPurged = 0;
  const guard = (err: unknown): never => {
    if (signal?.aborted) throw abortReason(signal);
    throw err;
  };
  const ranges = replicatedRanges(ctx.ring(), ctx.self, ctx.n);
  for (const range of ranges) {
    if (signal?.aborted) throw abortReason(signal);
    const peers = range.replicas.filter((p) => p.id !== ctx.self);
    if (peers.length === 0) continue;
    let tree: MerkleTree | undefined;
    let everyPeer = true;
    // Peers compared before a later peer brought records missed those records: they get a
    // second exchange (once), so one round on one node leaves all replicas of the range equal.
    const compared: NodeInfo[] = [];
    let stale: NodeInfo[] = [];
    const exchange = async (peer: NodeInfo): Promise<boolean> => {
      tree ??= (await buildTree(ctx.replica, range, ctx.tree, signal).catch(guard)).tree;
      const counters = emptyCounters();
      try {
        await runExchange(ctx, peer.address, tree, ctx.newSession(), counters, signal);
        return true;
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        peersSkipped++;
        everyPeer = false;
        ctx.onSkipped?.({ range, peer, reason: asKvError(err) });
        return false;
      } finally {
        add(totals, counters);
        // What this peer sent changed the local records: later exchanges compare against them.
        if (counters.keysReceived > 0) {
          tree = undefined;
          stale = [...compared];
        }
      }
    };
    for (const peer of peers) {
      if (ctx.status(peer.id) === 'down') {
        peersSkipped++;
        everyPeer = false;
        ctx.onSkipped?.({ range, peer, reason: 'down' });
        continue;
      }
      if (await exchange(peer)) {
        rangesCompared++;
        compared.push(peer);
      }
    }
    const again = stale;
    stale = [];
    for (const peer of again) await exchange(peer);
    if (everyPeer && Number.isFinite(ctx.tombstoneGrace)) {
      const counters = emptyCounters();
      try {
        tombstonesPurged += await collectTombstones(ctx, range, peers, ctx.now() - ctx.tombstoneGrace, counters, signal);
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        ctx.onGcFailed?.(range, asKvError(err));
      } finally {
        add(totals, counters);
      }
    }
  }
  return {
    rangesCompared,
    keysExchanged: totals.keysSent + totals.keysReceived,
    bytesSent: totals.bytesSent,
    bytesReceived: totals.bytesReceived,
    peersSkipped,
    tombstonesPurged,
  };
}
