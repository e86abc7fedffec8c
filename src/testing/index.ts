/**
 * Test helpers: `createTestCluster` for services that embed quorumkv, and the
 * compliance suites every Transport and StorageAdapter runs.
 *
 * @module
 */
export { createTestCluster, type TestCluster, type TestClusterOptions } from './cluster.js';
export { storageCompliance } from './storage-compliance.js';
export { transportCompliance, type TransportComplianceSetup } from './transport-compliance.js';
export type { ComplianceTestApi, ComplianceMatchers } from './test-api.js';
export { ManualClock } from './manual-clock.js';
export { seededRandom } from '../internal/random.js';
