/**
 * Test helpers: `createTestCluster` for services that embed quorumkv, and the
 * compliance suites every Transport and StorageAdapter runs.
 *
 * @module
 */
export {
  createTestCluster,
  TEST_CLUSTER_GOSSIP,
  type TestCluster,
  type TestClusterAddOptions,
  type TestClusterOptions,
  type TestClusterStoreOptions,
} from './cluster.js';
export { storageCompliance, type StorageComplianceOptions } from './storage-compliance.js';
export { transportCompliance, type TransportPair, type TransportComplianceOptions } from './transport-compliance.js';
export type { ComplianceTestApi, ComplianceMatchers, ComplianceIt } from './test-api.js';
export { ManualClock } from './manual-clock.js';
export { seededRandom } from '../internal/random.js';
