export {
  QuorumCoordinator,
  DEFAULT_HOP_TIMEOUT,
  MAX_CALLS_IN_PROGRESS,
  afterWait,
  type QuorumCoordinatorOptions,
  type CoordinatorCallOptions,
  type HintStore,
} from './quorum-coordinator.js';
export {
  HintedHandoff,
  DEFAULT_HINT_TTL,
  MAX_HINT_TTL,
  DEFAULT_HINTS_IN_FLIGHT,
  DEFAULT_HINT_INTERVAL,
  DEFAULT_HINT_DELIVERY_TIMEOUT,
  type HintedHandoffOptions,
  type HintEvent,
} from './hinted-handoff.js';
export { HopQueue, type HopWaiter } from './hop-queue.js';
export {
  ApplyBatcher,
  ReadBatcher,
  APPLY_BATCH_ITEMS,
  APPLY_BATCH_BYTES,
  APPLY_BATCH_MAX_RECORD,
  APPLY_BATCH_RETRY_MS,
  MAX_WIRE_BATCH_ITEMS,
  type ApplyBatcherOptions,
} from './apply-batcher.js';
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
