import { ErrorCodes, type ErrorCode } from './codes.js';

/** Options accepted by every {@link KvError} constructor. */
export interface KvErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * Base class of every error quorumkv raises on purpose. Branch on `code`.
 *
 * @example
 * ```ts
 * try { await store.get('k') } catch (err) {
 *   if (err instanceof KvError && err.code === 'KV_QUORUM_NOT_MET') retryLater()
 * }
 * ```
 */
export class KvError extends Error {
  /** Stable machine-readable code (`KV_*`). */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: KvErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = 'KvError';
  }
}

/** One replica's reason for not answering a quorum call. */
export interface ReplicaFailure {
  /** The replica's node id. */
  readonly node: string;
  /** Why it failed, e.g. `KV_TIMEOUT` or `KV_UNREACHABLE`. */
  readonly code: ErrorCode;
}

/** `KV_QUORUM_NOT_MET`: fewer than `required` replicas acknowledged. */
export class QuorumNotMetError extends KvError {
  /** Acknowledgements needed (R or W). */
  readonly required: number;
  /** Acknowledgements received (distinct nodes). */
  readonly acknowledged: number;
  /** Why each failing replica failed. */
  readonly failures: readonly ReplicaFailure[];

  constructor(
    operation: 'read' | 'write',
    required: number,
    acknowledged: number,
    failures: readonly ReplicaFailure[],
    options: KvErrorOptions = {},
  ) {
    const reasons = failures.map((f) => `${f.node}: ${f.code}`).join(', ');
    super(
      ErrorCodes.QUORUM_NOT_MET,
      `${operation} quorum not met: ${acknowledged} of ${required} required replicas acknowledged` +
        (reasons ? ` (${reasons})` : ''),
      options,
    );
    this.name = 'QuorumNotMetError';
    this.required = required;
    this.acknowledged = acknowledged;
    this.failures = failures;
  }
}

/** `KV_ABORTED`: the caller's AbortSignal fired. `name` is `'AbortError'`. */
export class AbortError extends KvError {
  constructor(message = 'The operation was aborted', options: KvErrorOptions = {}) {
    super(ErrorCodes.ABORTED, message, options);
    this.name = 'AbortError';
  }
}

/** `KV_TIMEOUT`: no answer before the deadline. */
export class TimeoutError extends KvError {
  constructor(message = 'The operation timed out', options: KvErrorOptions = {}) {
    super(ErrorCodes.TIMEOUT, message, options);
    this.name = 'TimeoutError';
  }
}

/**
 * `KV_TOO_MANY_SIBLINGS`: a write would leave its key with `siblings`
 * versions, more than the `limit` (`maxSiblings`) and more than the key has
 * now; nothing was stored. Read the key and write with the read's context
 * (which supersedes the siblings read) to repair it.
 */
export class TooManySiblingsError extends KvError {
  /** Versions (tombstones included) the key would have held after the write. */
  readonly siblings: number;
  /** The `maxSiblings` bound. */
  readonly limit: number;

  constructor(key: string, siblings: number, limit: number, options: KvErrorOptions = {}) {
    super(
      ErrorCodes.TOO_MANY_SIBLINGS,
      `write refused: key ${key} would have ${siblings} siblings, over maxSiblings=${limit}; ` +
        'read the key again and write with its context to supersede them',
      options,
    );
    this.name = 'TooManySiblingsError';
    this.siblings = siblings;
    this.limit = limit;
  }
}

/**
 * Wraps anything thrown into a KvError, keeping KvErrors as they are.
 * Anything else gets the code `fallback`: by default `KV_INTERNAL` (an
 * unexpected error is a bug, never a disguised storage failure); code that
 * wraps a storage adapter's errors passes `ErrorCodes.STORAGE_FAILURE`.
 */
export function toKvError(err: unknown, fallback: ErrorCode = ErrorCodes.INTERNAL): KvError {
  if (err instanceof KvError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new KvError(fallback, message, { cause: err });
}
