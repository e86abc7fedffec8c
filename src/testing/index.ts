/**
 * Test helpers: `createTestCluster` for services that embed quorumkv, and the
 * compliance suites every Transport and StorageAdapter runs.
 *
 * @module
 */
export { createTestCluster, type TestCluster, type TestClusterOptions } from './cluster.js';
export { storageCompliance } from './storage-compliance.js';
export { transportCompliance } from './transport-compliance.js';
export { ManualClock } from './manual-clock.js';
