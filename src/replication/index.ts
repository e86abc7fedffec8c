export {
  QuorumCoordinator,
  type QuorumCoordinatorOptions,
  type CoordinatorCallOptions,
  type CoordinatedWrite,
  type NodeStatus,
} from './quorum-coordinator.js';
export { ReplicaServer, type ReplicaServerOptions, type LocalWrite } from './replica-server.js';
