/**
 * The anti-entropy wire protocol between two nodes: what travels in the
 * Transport's requests around the pure exchange of `./exchange.ts`, and the
 * helpers both sides use to read it. Every request comes from the side
 * that runs the round (the initiator) and carries `cluster` (the router
 * admits members only) and, within an exchange, its `session` id:
 *
 * ```
 * ae.start | ae.hashes | ae.entries | ae.request | ae.done  {session, ...exchange fields}
 *     → the responder's next exchange message {..., pending}, or ae.ack {pending}
 * ae.pull   {session}             → ae.records {keys, records, pending}   records the responder sends
 * ae.push   {keys, records}       → ae.ack {merged, ignored}              records the initiator sends
 * ae.confirm {keys, digests}      → ae.confirmed {held: bitmap}           tombstone GC, phase 1
 * ae.purge   {keys, digests}      → ae.purged {purged}                    tombstone GC, phase 2
 * ```
 *
 * `pending` counts the records the responder still has for the initiator
 * (pulled once the exchange ends). Records travel as parallel lists of key
 * bytes and encoded sibling sets, in batches of at most
 * {@link RECORD_BATCH_BYTES}. `digests` is one byte string of 8 bytes a key.
 *
 * @module
 */
import { ErrorCodes, KvError } from '../errors/index.js';
import { encodeFrame, type WireMessage, type WireValue } from '../transport/index.js';
import { HASH_BYTES } from './diff.js';

/** Request types a node's anti-entropy responder handles (the router registers each). */
export const AE_REQUEST_TYPES = [
  'ae.start',
  'ae.hashes',
  'ae.entries',
  'ae.request',
  'ae.done',
  'ae.pull',
  'ae.push',
  'ae.confirm',
  'ae.purge',
] as const;

/** One of {@link AE_REQUEST_TYPES}. */
export type AeRequestType = (typeof AE_REQUEST_TYPES)[number];

/**
 * Most key + record bytes in one `ae.push` / `ae.records` message (a record
 * larger than this goes alone: every record fits a frame, the Store checks
 * that at construction).
 * @default 1048576 (1 MiB)
 */
export const RECORD_BATCH_BYTES = 1024 * 1024;

/**
 * Most records in one `ae.push` / `ae.records` message.
 * @default 1024
 */
export const RECORD_BATCH_COUNT = 1024;

/**
 * Most keys in one `ae.confirm` / `ae.purge` message.
 * @default 4096
 */
export const GC_BATCH_KEYS = 4096;

/** Longest session id accepted. */
const MAX_SESSION = 64;
/** Longest key accepted on the anti-entropy wire (the replica protocol's bound). */
const MAX_KEY = 64 * 1024;

/** A `KV_INVALID_MESSAGE` naming the message type and what is wrong. */
export function invalidMessage(type: string, what: string, cause?: unknown): KvError {
  return new KvError(ErrorCodes.INVALID_MESSAGE, `malformed ${type}: ${what}`, cause === undefined ? {} : { cause });
}

function field(m: WireMessage, name: string): WireValue | undefined {
  return Object.prototype.hasOwnProperty.call(m, name) ? m[name] : undefined;
}

/** The message's `session` id. @throws KvError `KV_INVALID_MESSAGE` if absent or malformed. */
export function readSession(m: WireMessage): string {
  const v = field(m, 'session');
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_SESSION) throw invalidMessage(m.type, 'session');
  return v;
}

/** The message's `pending` count (0 when absent). @throws KvError `KV_INVALID_MESSAGE` if malformed. */
export function readPending(m: WireMessage): number {
  const v = field(m, 'pending');
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalidMessage(m.type, 'pending');
  return v;
}

/** A list of non-empty byte strings of at most `max` bytes each. @throws KvError `KV_INVALID_MESSAGE`. */
export function readByteList(m: WireMessage, name: string, max: number): Uint8Array[] {
  const v = field(m, name);
  if (!Array.isArray(v)) throw invalidMessage(m.type, name);
  const list = v as readonly unknown[];
  for (const b of list) {
    if (!(b instanceof Uint8Array) || b.length === 0 || b.length > max) throw invalidMessage(m.type, `an item of ${name}`);
  }
  return list as Uint8Array[];
}

/** A byte string field. @throws KvError `KV_INVALID_MESSAGE`. */
export function readBytesField(m: WireMessage, name: string): Uint8Array {
  const v = field(m, name);
  if (!(v instanceof Uint8Array)) throw invalidMessage(m.type, name);
  return v;
}

/** The parallel `keys` and `records` lists of `ae.push` / `ae.records`. @throws KvError `KV_INVALID_MESSAGE`. */
export function readRecords(m: WireMessage, maxRecord: number): { keys: Uint8Array[]; records: Uint8Array[] } {
  const keys = readByteList(m, 'keys', MAX_KEY);
  const records = readByteList(m, 'records', maxRecord);
  if (keys.length !== records.length) throw invalidMessage(m.type, `${keys.length} keys for ${records.length} records`);
  return { keys, records };
}

/** The `keys` and 8-byte `digests` of `ae.confirm` / `ae.purge`. @throws KvError `KV_INVALID_MESSAGE`. */
export function readKeyDigests(m: WireMessage): { keys: Uint8Array[]; digests: Uint8Array } {
  const keys = readByteList(m, 'keys', MAX_KEY);
  if (keys.length > GC_BATCH_KEYS) throw invalidMessage(m.type, `${keys.length} keys is over ${GC_BATCH_KEYS}`);
  const digests = readBytesField(m, 'digests');
  if (digests.length !== keys.length * HASH_BYTES) throw invalidMessage(m.type, `${digests.length} digest bytes for ${keys.length} keys`);
  return { keys, digests };
}

/** True if `a[0..8)` equals `b[at..at + 8)`. */
export function digestAt(a: Uint8Array, b: Uint8Array, at: number): boolean {
  for (let i = 0; i < HASH_BYTES; i++) if (a[i] !== b[at + i]) return false;
  return true;
}

/**
 * Splits `keys` into batches of at most {@link RECORD_BATCH_COUNT} records
 * and about {@link RECORD_BATCH_BYTES} bytes, reading each record with
 * `read` (a key whose record has gone is left out).
 */
export async function* recordBatches(
  keys: readonly Uint8Array[],
  read: (key: Uint8Array) => Promise<Uint8Array | undefined>,
): AsyncGenerator<{ keys: Uint8Array[]; records: Uint8Array[] }> {
  let batch: { keys: Uint8Array[]; records: Uint8Array[] } = { keys: [], records: [] };
  let bytes = 0;
  for (const key of keys) {
    const record = await read(key);
    if (record === undefined) continue;
    if (batch.keys.length > 0 && (bytes + key.length + record.length > RECORD_BATCH_BYTES || batch.keys.length >= RECORD_BATCH_COUNT)) {
      yield batch;
      batch = { keys: [], records: [] };
      bytes = 0;
    }
    batch.keys.push(key);
    batch.records.push(record);
    bytes += key.length + record.length;
  }
  if (batch.keys.length > 0) yield batch;
}

/**
 * Encoded size of `body` sent as a request (`res: false`) or an answer, as
 * the wire codec frames it (with a one-byte request id): what the round
 * reports as `bytesSent` / `bytesReceived`.
 */
export function frameBytes(body: WireMessage, from: string, res: boolean): number {
  return (res ? encodeFrame({ kind: 'res', id: 1, body }) : encodeFrame({ kind: 'req', id: 1, from, body })).length;
}
