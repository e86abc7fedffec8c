/**
 * Every stable error code quorumkv raises. Callers branch on `error.code`;
 * messages may change between versions, codes do not.
 */
export const ErrorCodes = {
  /** Fewer replicas than required answered before the deadline. */
  QUORUM_NOT_MET: 'KV_QUORUM_NOT_MET',
  /** A value's encoded size is over `maxValueBytes`. */
  VALUE_TOO_LARGE: 'KV_VALUE_TOO_LARGE',
  /** A key is empty, ill-formed (lone surrogates) or over `maxKeyBytes`. */
  INVALID_KEY: 'KV_INVALID_KEY',
  /** A causal context string could not be decoded. */
  INVALID_CONTEXT: 'KV_INVALID_CONTEXT',
  /** The store / transport / storage is not started (or already stopped). */
  NOT_STARTED: 'KV_NOT_STARTED',
  /** The caller's AbortSignal fired. */
  ABORTED: 'KV_ABORTED',
  /** A request did not get an answer in time. */
  TIMEOUT: 'KV_TIMEOUT',
  /** The peer is stopped or unknown to the network. */
  UNREACHABLE: 'KV_UNREACHABLE',
  /** The node refuses more work right now. */
  OVERLOADED: 'KV_OVERLOADED',
  /** The connection closed while a request was in flight. */
  CONNECTION_CLOSED: 'KV_CONNECTION_CLOSED',
  /** An optional storage engine package is not installed. */
  ENGINE_MISSING: 'KV_ENGINE_MISSING',
  /**
   * The node has not joined its cluster yet: it has seeds but no stored
   * peers and no peer has answered it, so it does not know the ring. A call
   * waits for the join within its deadline, then fails with this code.
   */
  NOT_JOINED: 'KV_NOT_JOINED',
  /** A peer belongs to another cluster. */
  CLUSTER_MISMATCH: 'KV_CLUSTER_MISMATCH',
  /** Two live nodes claim the same node id. */
  DUPLICATE_NODE: 'KV_DUPLICATE_NODE',
  /** A peer is configured with another replication factor N or another zone map (`replication.zones`). */
  REPLICATION_MISMATCH: 'KV_REPLICATION_MISMATCH',
  /** A network frame or message is malformed or hostile. */
  INVALID_MESSAGE: 'KV_INVALID_MESSAGE',
  /** A message came from, or names, a node this one does not know. */
  UNKNOWN_PEER: 'KV_UNKNOWN_PEER',
  /**
   * Something failed unexpectedly (a bug, locally or in a remote handler):
   * never a disguised storage failure or protocol error.
   */
  INTERNAL: 'KV_INTERNAL',
  /** Storage failed to read or write, or holds a corrupt record. */
  STORAGE_FAILURE: 'KV_STORAGE_FAILURE',
  /**
   * A write would leave its key with more than `maxSiblings` concurrent
   * versions (tombstones included); nothing was stored. A write that
   * supersedes at least one version the key holds is always accepted: read
   * again, merge and write with that context.
   */
  TOO_MANY_SIBLINGS: 'KV_TOO_MANY_SIBLINGS',
  /**
   * A peer speaks no protocol version this node speaks (the connection
   * handshake found no common version); the connection is refused on both
   * sides. See docs/tcp.md for the upgrade rule.
   */
  PROTOCOL_MISMATCH: 'KV_PROTOCOL_MISMATCH',
  /**
   * A peer failed the connection's authentication: a wrong or missing
   * cluster `secret` (challenge-response), or a peer that does not prove the
   * secret this node expects. The connection is dropped before any message
   * is handled.
   */
  AUTH_FAILED: 'KV_AUTH_FAILED',
  /**
   * The call's consistency level cannot be met by the configuration, so it
   * is refused at once instead of waiting out its deadline: `local_quorum`
   * on a node without a `zone` or whose zone has no replicas in
   * `replication.zones`, `local_quorum` / `each_quorum` in a cluster without
   * `replication.zones`, or `each_quorum` while a zone of the map has no node
   * on the ring. Nothing was read or written. See docs/zones.md.
   */
  UNAVAILABLE_CONSISTENCY: 'KV_UNAVAILABLE_CONSISTENCY',
} as const;

/** A stable error code, e.g. `'KV_QUORUM_NOT_MET'`. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const known = new Set<string>(Object.values(ErrorCodes));

/** True if `code` is one of quorumkv's codes (used when decoding remote errors). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && known.has(code);
}
