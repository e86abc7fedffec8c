/**
 * Replication: replica sets, preference lists and (later) hinted handoff.
 *
 * @module
 */
export { ReplicaSet, type ReplicaSelection, type ReplicaSetInit } from './replica-set.js';
