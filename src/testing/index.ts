/**
 * Test helpers: `createTestCluster` for services that embed quorumkv, the
 * deterministic fault simulation (`simulate`, `SimulatedClock`, `Nemesis`,
 * workloads and checkers), and the
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
export {
  SimulatedClock,
  SIMULATION_EPOCH,
  type SimulatedClockOptions,
  type SimulatedRunOptions,
} from './simulation-clock.js';
export {
  simulate,
  Simulation,
  SimulationError,
  deriveSeed,
  type SimulationOptions,
  type SimulationRestartOptions,
  type SimulationResult,
} from './simulation.js';
export {
  Nemesis,
  NEMESIS_FAULTS,
  type NemesisFault,
  type NemesisOptions,
  type NemesisTarget,
  type NemesisRange,
  type NemesisEvent,
} from './nemesis.js';
export {
  runSetWorkload,
  checkSetWorkload,
  runRegisterWorkload,
  checkRegisterWorkload,
  INDETERMINATE_CODES,
  type WorkloadOptions,
  type SetWorkloadHistory,
  type SetCheckResult,
  type LostElement,
  type RegisterWorkloadHistory,
  type StaleRead,
} from './simulation-workloads.js';
export {
  setScenario,
  registerScenario,
  ScenarioViolation,
  STRICT_QUORUM_FAULTS,
  type ScenarioOptions,
  type ScenarioReport,
} from './simulation-scenarios.js';
