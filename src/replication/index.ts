export {
  QuorumCoordinator,
  type QuorumCoordinatorOptions,
  type CoordinatorCallOptions,
} from './quorum-coordinator.js';
export {
  ReplicaServer,
  describeKey,
  corruptStoredRecord,
  type ReplicaServerOptions,
  type CoordinatedVersion,
  type SiblingsEvent,
} from './replica-server.js';
export { keyRef, toKeyRef } from './key-ref.js';
export { metadataCounterLease } from './counter-lease.js';
export type {
  KeyRef,
  WriteRequest,
  CounterLease,
  CoordinatedWrite,
  LocalWrite,
  NodeStatus,
} from './types.js';
export {
  checkRecordFitsFrame,
  versionOverheadBytes,
  DEFAULT_FRAME_LIMIT,
  DEFAULT_MAX_SIBLINGS,
  DEFAULT_SIBLING_WARNING,
  type RecordLimits,
} from './record-limits.js';
