/**
 * `quorumkv/internals`: the building blocks a `Store` is made of, for tools,
 * tests and experiments that wire them by hand (a coordinator over a custom
 * transport, a membership without a store, the codecs). Everything here is
 * documented and tested, but may change between minor versions; what users
 * and plug-in authors need is exported from `quorumkv`.
 *
 * @example
 * ```ts
 * import { QuorumCoordinator, ReplicaServer } from 'quorumkv/internals';
 * ```
 *
 * @module
 */

// The composition root and its parts
export { Node, Lifecycle, MessageRouter, loadIdentity, MetadataWriter, MetaNames, encodePeers, decodePeers } from './node/index.js';
export type {
  NodeComponents,
  NodeEventSink,
  NodeConfig,
  NodeEvents,
  Startable,
  Admission,
  MessageHandler,
  MessageRouterOptions,
  NodeIdentity,
  IdentityInit,
} from './node/index.js';

// Data path
export { QuorumCoordinator, ReplicaServer, HintedHandoff, HopQueue, ApplyBatcher, ReadBatcher, APPLY_BATCH_ITEMS, APPLY_BATCH_BYTES, APPLY_BATCH_MAX_RECORD, APPLY_BATCH_RETRY_MS, MAX_WIRE_BATCH_ITEMS, MAX_HINT_TTL, MAX_CALLS_IN_PROGRESS, keyRef, metadataCounterLease } from './replication/index.js';
export type {
  HintedHandoffOptions,
  HintEvent,
  HintStore,
  HopWaiter,
  QuorumCoordinatorOptions,
  CoordinatorCallOptions,
  KeyRef,
  WriteRequest,
  CounterLease,
  CoordinatedVersion,
  CoordinatedWrite,
  NodeStatus,
  ReplicaServerOptions,
  LocalWrite,
  SiblingsEvent,
  ApplyBatcherOptions,
} from './replication/index.js';

// Membership
export { Membership, TimeoutFailureDetector, PhiAccrualFailureDetector, phiOf, resolvePhiOptions } from './membership/index.js';
export type {
  MembershipOptions,
  MemberRecord,
  FailureDetector,
  TimeoutFailureDetectorOptions,
  PhiAccrualFailureDetectorOptions,
} from './membership/index.js';

// Versioning
export { SiblingSet, actorId, parseActorId, encodeSiblingSet, decodeSiblingSet, encodeClock, decodeClock } from './versioning/index.js';
export type { Version, WriteChange, WriteResult, DecodeSiblingSetOptions } from './versioning/index.js';

// Ring helpers
export { packTokens, unpackTokens, MAX_TOKENS, validateKey, DEFAULT_MAX_KEY_BYTES, DEFAULT_TOKENS_PER_WEIGHT } from './ring/index.js';

// Wire codec and the memory transport's parts
export { MemoryTransport, encodeFrame, decodeFrame, validateWireMessage } from './transport/index.js';
export type { Frame, CodecLimits } from './transport/index.js';

// Store internals
export { resolveStoreOptions, type ResolvedStoreOptions } from './store/options.js';
export { encodeValue, decodeValue, ValueExtension, TypedArrayTag, MAX_VALUE_DEPTH } from './store/value-codec.js';

// Anti-entropy: the pure core (Merkle trees over token ranges, the exchange state machine) and
// the network sessions that drive it between replicas (docs/anti-entropy.md)
export {
  replicatedRanges,
  buildTree,
  scanLeaves,
  runExchange,
  mergeRecords,
  emptyCounters,
  AntiEntropyResponder,
  collectTombstones,
  isExpiredTombstone,
  runRound,
  AE_REQUEST_TYPES,
  type ReplicatedRange,
  type AntiEntropyReplica,
  type SessionContext,
  type ExchangeCounters,
  type AntiEntropyResponderOptions,
  type RoundContext,
  type BuiltTree,
  type SkippedPeer,
} from './antientropy/index.js';
export { AntiEntropy, AntiEntropyDefaults, type AntiEntropyConfig, type AntiEntropyComponentOptions, type HintDelivery } from './node/index.js';
export {
  MerkleTree,
  MerkleExchange,
  exchangeLocally,
  entryHash,
  recordDigest,
  levelHashes,
  differingChildren,
  childNodes,
  leafEntries,
  keysToExchange,
  toBitmap,
  fromBitmap,
  HASH_BYTES,
  MAX_MERKLE_SEGMENTS,
  DEFAULT_MERKLE_FANOUT,
  DEFAULT_MERKLE_DEPTH,
} from './antientropy/index.js';
export type {
  MerkleTreeOptions,
  MerkleEntry,
  LeafEntries,
  KeyExchange,
  ExchangeStep,
  ExchangeSide,
  ExchangeOutcome,
  ExchangeMessage,
  AeStartMessage,
  AeHashesMessage,
  AeEntriesMessage,
  AeRequestMessage,
  AeDoneMessage,
} from './antientropy/index.js';
