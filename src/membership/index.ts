export { Membership, type MembershipOptions } from './membership.js';
export {
  toNodeInfo,
  type Member,
  type MemberRecord,
  type MemberState,
  type MemberStatus,
  type MembershipEvents,
} from './types.js';

export { TimeoutFailureDetector, type FailureDetector, type TimeoutFailureDetectorOptions } from './failure-detector.js';
export {
  PhiAccrualFailureDetector,
  phiOf,
  resolvePhiOptions,
  type PhiAccrualFailureDetectorOptions,
} from './phi-accrual.js';
