export { ErrorCodes, isErrorCode, type ErrorCode } from './codes.js';
export {
  KvError,
  QuorumNotMetError,
  AbortError,
  TimeoutError,
  TooManySiblingsError,
  toKvError,
  type KvErrorOptions,
  type ReplicaFailure,
} from './kv-error.js';
