export {
  QuorumCoordinator,
  type QuorumCoordinatorOptions,
  type CoordinatorCallOptions,
  type CoordinatedWrite,
  type NodeStatus,
} from './quorum-coordinator.js';
export {
  ReplicaServer,
  type ReplicaServerOptions,
  type LocalWrite,
  type SiblingsEvent,
} from './replica-server.js';
export {
  checkRecordFitsFrame,
  versionOverheadBytes,
  DEFAULT_FRAME_LIMIT,
  DEFAULT_MAX_SIBLINGS,
  DEFAULT_SIBLING_WARNING,
  type RecordLimits,
} from './record-limits.js';
