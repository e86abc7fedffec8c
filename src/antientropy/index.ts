/**
 * Anti-entropy: Merkle trees over token ranges and the comparison steps of
 * an exchange between replicas (pure: no I/O, no timers). The network
 * session and the repair schedule build on these.
 *
 * @module
 */
export {
  MerkleTree,
  entryHash,
  MAX_MERKLE_SEGMENTS,
  DEFAULT_MERKLE_FANOUT,
  DEFAULT_MERKLE_DEPTH,
  type MerkleTreeOptions,
  type MerkleEntry,
} from './merkle-tree.js';
export { recordDigest } from './hash64.js';
export {
  HASH_BYTES,
  levelHashes,
  differingChildren,
  childNodes,
  toBitmap,
  fromBitmap,
  leafEntries,
  keysToExchange,
  type LeafEntries,
  type KeyExchange,
} from './diff.js';
export {
  MerkleExchange,
  exchangeLocally,
  type ExchangeStep,
  type ExchangeSide,
  type ExchangeOutcome,
  type ExchangeMessage,
  type AeStartMessage,
  type AeHashesMessage,
  type AeEntriesMessage,
  type AeRequestMessage,
  type AeDoneMessage,
} from './exchange.js';
export type { AntiEntropyReplica, RepairOptions, RepairResult } from './types.js';
export { replicatedRanges, type ReplicatedRange } from './ranges.js';
export { buildTree, scanLeaves, type BuiltTree } from './local-tree.js';
export {
  AE_REQUEST_TYPES,
  RECORD_BATCH_BYTES,
  RECORD_BATCH_COUNT,
  GC_BATCH_KEYS,
  type AeRequestType,
} from './protocol.js';
export {
  runExchange,
  mergeRecords,
  ownsKey,
  emptyCounters,
  type ExchangeCounters,
  type SessionContext,
} from './session.js';
export {
  AntiEntropyResponder,
  MAX_RESPONDER_SEGMENTS,
  MAX_RESPONDER_SESSIONS,
  type AntiEntropyResponderOptions,
} from './responder.js';
export { isExpiredTombstone, collectTombstones } from './tombstones.js';
export { runRound, abortReason, type RoundContext, type SkippedPeer } from './round.js';
