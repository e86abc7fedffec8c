/**
 * The consistent-hash ring (pure: no I/O, no timers).
 *
 * @module
 */
export { Ring } from './ring.js';
export {
  hashKey,
  keyBytes,
  validateKey,
  defaultTokens,
  DEFAULT_MAX_KEY_BYTES,
  DEFAULT_TOKENS_PER_WEIGHT,
} from './hash.js';
export type {
  NodeInfo,
  NodeSpec,
  TokenRange,
  RangeChange,
  RingOptions,
  RingJSON,
  MemberStatus,
  ZoneReplication,
  ZoneConsistencyLevel,
} from './types.js';
export {
  normalizeZoneReplication,
  zoneReplicationTotal,
  sameZoneReplication,
  formatZoneReplication,
  zoneQuorum,
} from './zones.js';
export { ReplicaSet, type ReplicaSelection, type ReplicaSetInit } from './replica-set.js';
export { packTokens, unpackTokens, MAX_TOKENS } from './tokens.js';
