import { ErrorCodes, KvError, isErrorCode, type ReplicaFailure } from '../errors/index.js';
import type { WireMessage, WireValue } from '../transport/index.js';

/**
 * The replica protocol (all carry `cluster`; keys are UTF-8 bytes; records
 * are encoded sibling sets; no message carries a key's token — the receiver
 * hashes the key itself):
 * - `kv.read {key}` → `kv.record {record | null}`
 * - `kv.read-batch {keys}` → `kv.records {records, failures}` — several
 *   `kv.read` in one request (see `ReadBatcher`): a record or null per key,
 *   in order, and `[index, code, message]` for each key not read.
 * - `kv.apply {key, record}` → `kv.applied {}` — merge a sibling set (replication, read repair)
 * - `kv.apply-batch {keys, records}` → `kv.applied-batch {failures}` — several
 *   `kv.apply` in one request (a coordinator's writes of one turn for one
 *   replica, see `ApplyBatcher`), applied in order; `failures` lists
 *   `[index, code, message]` for each item not applied. A batch that is not
 *   two arrays of one length (1 to `MAX_WIRE_BATCH_ITEMS` items) is refused
 *   whole with `KV_INVALID_MESSAGE`, nothing applied.
 * - `kv.coordinate {key, value | null, tombstone, context | null, overwrite, w, timeout, timestamp?}` →
 *   `kv.written {}` or `kv.write-failed {required, acknowledged, failures}` — a
 *   node that is not a replica forwards the write to one (the Dynamo paper's
 *   rule: the write coordinator is a replica, so new dots come from the
 *   replica's own full history of the key). `context` is the clock in the
 *   record codec's binary form (`encodeClock`), null for a blind write;
 *   `sloppy` (optional, default false) lets the replica count stand-ins.
 *   Kept for peers that still forward this way; forwarding now uses `kv.version`.
 * - `kv.version {key, value | null, tombstone, context | null, overwrite, timestamp?, expires}` →
 *   `kv.versioned {record}` — a node that is not a replica asks one to create
 *   the write's version (a fresh dot of the replica's actor over its full
 *   history of the key) and store it; the answer is the replica's whole new
 *   sibling set, which the asking node then replicates itself (with hints
 *   when sloppy). `expires` is an absolute time on the sender's clock: a
 *   replica whose clock is past it when it would create the version refuses
 *   with `KV_TIMEOUT` and creates nothing, so the sender can ask another
 *   replica after its per-hop timeout without the write ever becoming two
 *   versions (see docs/hinted-handoff.md for the exact window).
 * - `kv.hint {key, record, target}` → `kv.hinted {}` — a sloppy quorum's
 *   fallback stores `record` under a hint for the node `target` and answers
 *   once the hint is stored (that answer counts toward W).
 */
export const MAX_WIRE_KEY = 64 * 1024;
export const MAX_WIRE_RECORD = 64 * 1024 * 1024;
/** Largest encoded clock a message may carry, in bytes. */
export const MAX_WIRE_CLOCK = 1024 * 1024;

function invalid(what: string): KvError {
  return new KvError(ErrorCodes.INVALID_MESSAGE, `malformed ${what}`);
}

function field(m: WireMessage, name: string): WireValue | undefined {
  return Object.prototype.hasOwnProperty.call(m, name) ? m[name] : undefined;
}

export function readBytes(m: WireMessage, name: string, max: number): Uint8Array {
  return checkBytes(field(m, name), max, `${m.type}: ${name}`);
}

/** `v` if it is 1 to `max` bytes; else `KV_INVALID_MESSAGE` ("malformed `what`"). */
export function checkBytes(v: unknown, max: number, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length === 0 || v.length > max) throw invalid(what);
  return v;
}

export function readString(m: WireMessage, name: string, max = 1024): string {
  const v = field(m, name);
  if (typeof v !== 'string' || v.length > max) throw invalid(`${m.type}: ${name}`);
  return v;
}

export function readOptionalString(m: WireMessage, name: string, max: number): string | undefined {
  const v = field(m, name);
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > max) throw invalid(`${m.type}: ${name}`);
  return v;
}

export function readOptionalBytes(m: WireMessage, name: string, max: number): Uint8Array | undefined {
  const v = field(m, name);
  if (v === null || v === undefined) return undefined;
  if (!(v instanceof Uint8Array) || v.length > max) throw invalid(`${m.type}: ${name}`);
  return v;
}

export function readOptionalNumber(m: WireMessage, name: string, min: number, max: number): number | undefined {
  const v = field(m, name);
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'number' || !(v >= min && v <= max)) throw invalid(`${m.type}: ${name}`);
  return v;
}

export function readBoolean(m: WireMessage, name: string): boolean {
  const v = field(m, name);
  if (typeof v !== 'boolean') throw invalid(`${m.type}: ${name}`);
  return v;
}

export function readOptionalBoolean(m: WireMessage, name: string): boolean | undefined {
  const v = field(m, name);
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(`${m.type}: ${name}`);
  return v;
}

export function readInt(m: WireMessage, name: string, min: number, max: number): number {
  const v = field(m, name);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw invalid(`${m.type}: ${name}`);
  return v;
}

export function failuresToWire(failures: readonly ReplicaFailure[]): [string, string][] {
  return failures.map((f) => [f.node, f.code]);
}

export function failuresFromWire(x: WireValue | undefined): ReplicaFailure[] {
  if (!Array.isArray(x) || x.length > 1024) throw invalid('failure list');
  return x.map((f: unknown) => {
    if (!Array.isArray(f) || typeof f[0] !== 'string' || !isErrorCode(f[1])) throw invalid('failure');
    return { node: f[0], code: f[1] };
  });
}
