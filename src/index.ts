/**
 * quorumkv: an embeddable, Dynamo-style distributed key-value store.
 *
 * @module
 */

// Values
export { Store } from './store/index.js';
export { Ring, hashKey, keyBytes, defaultTokens } from './ring/index.js';
export { ReplicaSet } from './ring/index.js';
export { QuorumCoordinator, ReplicaServer } from './replication/index.js';
export { Membership } from './membership/index.js';
export {
  VectorClock,
  SiblingSet,
  actorId,
  parseActorId,
  encodeSiblingSet,
  decodeSiblingSet,
} from './versioning/index.js';
export { MemoryNetwork, MemoryTransport, encodeFrame, decodeFrame, validateWireMessage } from './transport/index.js';
export { MemoryStorage } from './storage/index.js';
export {
  KvError,
  QuorumNotMetError,
  AbortError,
  TimeoutError,
  ErrorCodes,
} from './errors/index.js';
export { systemClock } from './internal/clock.js';
export { Defaults } from './internal/defaults.js';

// Types
export type {
  CallOptions,
  ConflictPolicy,
  ConsistencyLevel,
  DeleteOptions,
  GetOptions,
  GetResult,
  GossipOptions,
  Key,
  LocalRecord,
  LocalSibling,
  PutOptions,
  ReplicationOptions,
  StoreEvents,
  StoreOptions,
} from './store/index.js';
export type { NodeInfo, NodeSpec, TokenRange, RangeChange, RingOptions, RingJSON } from './ring/index.js';
export type { ReplicaSelection, ReplicaSetInit } from './ring/index.js';
export type {
  QuorumCoordinatorOptions,
  CoordinatorCallOptions,
  CoordinatedWrite,
  NodeStatus,
  ReplicaServerOptions,
  LocalWrite,
} from './replication/index.js';
export type {
  Member,
  MemberRecord,
  MemberState,
  MemberStatus,
  MembershipEvents,
  MembershipOptions,
} from './membership/index.js';
export type { Dot, ClockOrder, ClockEntry, Version, WriteChange, WriteResult } from './versioning/index.js';
export type {
  Transport,
  TransportCapabilities,
  RequestHandler,
  RequestOptions,
  WireMessage,
  WireValue,
  MemoryNetworkOptions,
  MemoryTransportOptions,
  MemoryNetworkStats,
  Frame,
  CodecLimits,
} from './transport/index.js';
export type {
  StorageAdapter,
  StorageCapabilities,
  StorageCallOptions,
  StoredEntry,
  StoredHint,
  TokenRangeQuery,
} from './storage/index.js';
export type { ErrorCode, ReplicaFailure, KvErrorOptions } from './errors/index.js';
export type { Clock, TimerHandle } from './internal/clock.js';
