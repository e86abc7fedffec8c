/**
 * quorumkv: an embeddable, Dynamo-style distributed key-value store.
 *
 * What users and plug-in authors need. The building blocks a `Store` is made
 * of (replica server, membership, sibling sets, codecs, the composition
 * root) are in `quorumkv/internals`; test helpers and the compliance suites
 * in `quorumkv/testing`.
 *
 * @module
 */

// Values
export { Store } from './store/index.js';
export { Ring, ReplicaSet, hashKey, keyBytes, defaultTokens } from './ring/index.js';
export { QuorumCoordinator, keyRef } from './replication/index.js';
export { VectorClock } from './versioning/index.js';
export { MemoryNetwork, PendingRequests, TcpTransport, TCP_DEFAULTS, PROTOCOL_VERSIONS } from './transport/index.js';
// The strict frame codec, for transports that carry bytes (see examples/custom-transport.ts).
export { encodeFrame, decodeFrame, validateWireMessage, DEFAULT_CODEC_LIMITS } from './transport/index.js';
export { MemoryStorage, AbstractStorage, tokenInRange, WHOLE_RING, LevelStorage, LmdbStorage } from './storage/index.js';
export { noopLogger, noopMetrics } from './observability/index.js';
export {
  KvError,
  QuorumNotMetError,
  AbortError,
  TimeoutError,
  TooManySiblingsError,
  ErrorCodes,
} from './errors/index.js';
export { systemClock } from './internal/clock.js';
export { Defaults } from './internal/defaults.js';

// Types
export type {
  AntiEntropyOptions,
  RepairOptions,
  RepairResult,
  CallOptions,
  ConflictPolicy,
  ConsistencyLevel,
  DeleteOptions,
  GetOptions,
  GetResult,
  GossipOptions,
  HintOptions,
  Key,
  LocalRecord,
  LocalSibling,
  PutOptions,
  ReplicationOptions,
  StoreEvents,
  StoreOptions,
} from './store/index.js';
export type { NodeInfo, NodeSpec, TokenRange, RangeChange, RingOptions, RingJSON, ZoneReplication, ZoneConsistencyLevel } from './ring/index.js';
export type { ReplicaSelection, ReplicaSetInit } from './ring/index.js';
export type {
  QuorumCoordinatorOptions,
  CoordinatorCallOptions,
  KeyRef,
  WriteRequest,
  CoordinatedWrite,
  NodeStatus,
} from './replication/index.js';
export { checkRecordFitsFrame, versionOverheadBytes, DEFAULT_FRAME_LIMIT, type RecordLimits } from './replication/index.js';
export type { Member, MemberState, MemberStatus, MembershipEvents, PhiAccrualFailureDetectorOptions } from './membership/index.js';
export type { Dot, ClockOrder, ClockEntry } from './versioning/index.js';
export type {
  Transport,
  TransportCapabilities,
  RequestHandler,
  AnswerReceiver,
  RequestOptions,
  TransportContext,
  Frame,
  CodecLimits,
  TcpTransportOptions,
  TcpTlsOptions,
  TcpReconnectOptions,
  TcpTransportStats,
  TcpTransportEvents,
  TcpConnectionEvent,
  TcpConnectionDirection,
  WireMessage,
  WireValue,
  MemoryNetworkOptions,
  MemoryTransportOptions,
  MemoryNetworkStats,
  MemoryLatency,
  PendingRequestsOptions,
  OpenRequestOptions,
  OpenedRequest,
} from './transport/index.js';
export type {
  StorageAdapter,
  StorageCapabilities,
  StorageCallOptions,
  StoredEntry,
  StoredHint,
  TokenRangeQuery,
  StorageStatus,
  StorageOperation,
  StorageIterable,
  MaybePromise,
  Durability,
  DurableStorageOptions,
  MemoryStorageOptions,
  LevelStorageOptions,
  LevelEngineModule,
  LevelEngineDatabase,
  LevelEngineIterator,
  LmdbStorageOptions,
  LmdbEngineModule,
  LmdbEngineDatabase,
  LmdbEngineOpenOptions,
  BatchOp,
} from './storage/index.js';
export type { ErrorCode, ReplicaFailure, KvErrorOptions } from './errors/index.js';
export type { Clock, TimerHandle } from './internal/clock.js';
export type { Logger, LogFields, Metrics, MetricLabels } from './observability/index.js';
