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
