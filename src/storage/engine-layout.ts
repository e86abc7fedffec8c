/**
 * The on-disk key layout shared by the durable adapters (LevelStorage,
 * LmdbStorage): one ordered byte keyspace, split by a first byte.
 *
 * | space | key                                        | value                          |
 * |-------|--------------------------------------------|--------------------------------|
 * | 0x00  | `0x00` + ascii name (format marker, hint counter) | adapter-internal        |
 * | 0x01  | `0x01` + utf8(name)                        | metadata value                 |
 * | 0x02  | `0x02` + key                               | token (4 bytes BE) + record    |
 * | 0x03  | `0x03` + token (4 bytes BE) + key          | empty (the token index)        |
 * | 0x04  | `0x04` + order (16 bytes)                  | encoded hint                   |
 * | 0x05  | `0x05` + utf8(hint id)                     | order (16 bytes) + utf8(target)|
 * | 0x06  | `0x06` + u16 length + utf8(target) + order | empty (hints by target)        |
 *
 * A record is found by its key in one read (space 0x02); a token-range scan
 * walks space 0x03 in order (one iteration, two for a range that wraps
 * through 0) and reads each entry's record, skipping index entries whose
 * record is gone or carries another token (left behind by a re-put of the
 * key under a new token: tokens are a hash of the key, so that does not
 * happen in a cluster). A hint's order is its `createdAt` as an
 * order-preserving 8-byte float, then a sequence number kept when the hint
 * is replaced, so hints list oldest first and then in insertion order.
 *
 * @internal
 */

/** Key spaces (the first byte of every engine key). */
export const Space = {
  internal: 0x00,
  meta: 0x01,
  record: 0x02,
  token: 0x03,
  hint: 0x04,
  hintId: 0x05,
  hintTarget: 0x06,
} as const;

/** Bytes of a hint's order: 8 (createdAt) + 8 (sequence). */
export const ORDER_BYTES = 16;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Key of the format marker (space 0x00). */
export const FORMAT_KEY: Uint8Array = Uint8Array.of(Space.internal, ...utf8.encode('format'));
/** Key of the hint sequence counter (space 0x00). */
export const HINT_SEQ_KEY: Uint8Array = Uint8Array.of(Space.internal, ...utf8.encode('hint-seq'));

function prefixed(space: number, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = space;
  out.set(body, 1);
  return out;
}

/** `0x02 + key`: where the record of `key` lives. */
export function recordKey(key: Uint8Array): Buffer {
  return prefixed(Space.record, key);
}

/** `0x03 + token + key`: the token index entry of `key`. */
export function tokenKey(token: number, key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(key.length + 5);
  out[0] = Space.token;
  out.writeUInt32BE(token, 1);
  out.set(key, 5);
  return out;
}

/** The key of a token index entry (`0x03 + token + key`), as `recordKey(key)` without copying twice. */
export function recordKeyOfTokenKey(indexKey: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(indexKey.length - 4);
  out[0] = Space.record;
  out.set(indexKey.subarray(5), 1);
  return out;
}

/** The token of a token index entry. */
export function tokenOfTokenKey(indexKey: Uint8Array): number {
  return ((indexKey[1] as number) * 0x1000000 + ((indexKey[2] as number) << 16) + ((indexKey[3] as number) << 8) + (indexKey[4] as number)) >>> 0;
}

/** A record's stored value: token (4 bytes BE) then the record. */
export function recordValue(token: number, record: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(record.length + 4);
  out.writeUInt32BE(token, 0);
  out.set(record, 4);
  return out;
}

/** The token of a record's stored value (see {@link recordValue}), or -1 if it is too short to hold one. */
export function tokenOfRecordValue(value: Uint8Array): number {
  if (value.length < 4) return -1;
  return ((value[0] as number) * 0x1000000 + ((value[1] as number) << 16) + ((value[2] as number) << 8) + (value[3] as number)) >>> 0;
}

/** Space-0x03 bounds `[gte, lt)` of the tokens `(start, end]` with `start < end` (no wrap). */
export function tokenBounds(start: number, end: number): { gte: Buffer; lt: Buffer } {
  const gte = Buffer.allocUnsafe(5);
  gte[0] = Space.token;
  gte.writeUInt32BE(start + 1, 1);
  let lt: Buffer;
  if (end === 0xffffffff) lt = Buffer.of(Space.token + 1);
  else {
    lt = Buffer.allocUnsafe(5);
    lt[0] = Space.token;
    lt.writeUInt32BE(end + 1, 1);
  }
  return { gte, lt };
}

/**
 * The space-0x03 intervals `[gte, lt)` that together hold the tokens in
 * `(start, end]`, in ascending token order: one interval, or two when the
 * range wraps through 0 (`[0, end]` first, then `(start, max]`). `start ===
 * end` is the whole ring.
 */
export function tokenIntervals(start: number, end: number): { gte: Buffer; lt: Buffer }[] {
  const whole = { gte: Buffer.of(Space.token), lt: Buffer.of(Space.token + 1) };
  if (start === end) return [whole];
  if (start < end) return [tokenBounds(start, end)];
  // Wrapping: [0, end] then (start, max]; either may be empty.
  const out: { gte: Buffer; lt: Buffer }[] = [];
  const low = { gte: whole.gte, lt: tokenBounds(0, end).lt };
  out.push(low);
  if (start !== 0xffffffff) out.push(tokenBounds(start, 0xffffffff));
  return out;
}

/** `0x01 + utf8(name)`. */
export function metaKey(name: string): Buffer {
  return prefixed(Space.meta, utf8.encode(name));
}

/** `0x05 + utf8(id)`. */
export function hintIdKey(id: string): Buffer {
  return prefixed(Space.hintId, utf8.encode(id));
}

/**
 * A hint's order: `createdAt` as an order-preserving 8-byte float (sign bit
 * flipped for positives, every bit flipped for negatives), then `seq` as a
 * big-endian 8-byte integer.
 */
export function hintOrder(createdAt: number, seq: number): Buffer {
  const out = Buffer.allocUnsafe(ORDER_BYTES);
  out.writeDoubleBE(createdAt === 0 ? 0 : createdAt, 0); // -0 sorts as 0
  if ((out[0] as number) & 0x80) for (let i = 0; i < 8; i++) out[i] = ~(out[i] as number) & 0xff;
  else out[0] = (out[0] as number) | 0x80;
  out.writeBigUInt64BE(BigInt(seq), 8);
  return out;
}

/** `0x04 + order`. */
export function hintKey(order: Uint8Array): Buffer {
  return prefixed(Space.hint, order);
}

/** `0x06 + u16 length + utf8(target)`: the prefix of `target`'s entries in the hints-by-target space. */
export function hintTargetPrefix(target: string): Buffer {
  const name = utf8.encode(target);
  const out = Buffer.allocUnsafe(name.length + 3);
  out[0] = Space.hintTarget;
  out.writeUInt16BE(name.length, 1);
  out.set(name, 3);
  return out;
}

/** `0x06 + u16 length + utf8(target) + order`. */
export function hintTargetKey(target: string, order: Uint8Array): Buffer {
  return Buffer.concat([hintTargetPrefix(target), order]);
}

/** The smallest key greater than every key that starts with `prefix`. */
export function prefixEnd(prefix: Uint8Array): Buffer {
  const out = Buffer.from(prefix);
  for (let i = out.length - 1; i >= 0; i--) {
    if ((out[i] as number) < 0xff) {
      out[i] = (out[i] as number) + 1;
      return out.subarray(0, i + 1);
    }
  }
  return Buffer.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
}

/** The value of a hint-id entry: order + utf8(target). */
export function hintIdValue(order: Uint8Array, target: string): Buffer {
  return Buffer.concat([order, utf8.encode(target)]);
}

/** Splits a hint-id entry's value into its order and target. */
export function parseHintIdValue(value: Uint8Array): { order: Uint8Array; target: string } {
  return { order: value.subarray(0, ORDER_BYTES), target: utf8Decoder.decode(value.subarray(ORDER_BYTES)) };
}

/** The hint fields a durable adapter stores (its key is its order). */
export interface EncodedHintFields {
  readonly id: string;
  readonly target: string;
  readonly key: Uint8Array;
  readonly token: number;
  readonly record: Uint8Array;
  readonly createdAt: number;
}

/**
 * A hint's stored value: u16 id length, id, u16 target length, target,
 * u32 token, f64 createdAt, u32 key length, key, record (the rest).
 */
export function encodeHint(hint: EncodedHintFields): Buffer {
  const id = utf8.encode(hint.id);
  const target = utf8.encode(hint.target);
  const out = Buffer.allocUnsafe(2 + id.length + 2 + target.length + 4 + 8 + 4 + hint.key.length + hint.record.length);
  let at = out.writeUInt16BE(id.length, 0);
  out.set(id, at);
  at = out.writeUInt16BE(target.length, at + id.length);
  out.set(target, at);
  at = out.writeUInt32BE(hint.token, at + target.length);
  at = out.writeDoubleBE(hint.createdAt, at);
  at = out.writeUInt32BE(hint.key.length, at);
  out.set(hint.key, at);
  out.set(hint.record, at + hint.key.length);
  return out;
}

/** Thrown by {@link decodeHint} for a value that is not an encoded hint. */
export class CorruptEntryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptEntryError';
  }
}

/** Decodes {@link encodeHint}'s output into fresh bytes; throws {@link CorruptEntryError} if it is damaged. */
export function decodeHint(value: Uint8Array): EncodedHintFields {
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  try {
    const idLength = b.readUInt16BE(0);
    const id = b.toString('utf8', 2, 2 + idLength);
    let at = 2 + idLength;
    const targetLength = b.readUInt16BE(at);
    const target = b.toString('utf8', at + 2, at + 2 + targetLength);
    at += 2 + targetLength;
    const token = b.readUInt32BE(at);
    const createdAt = b.readDoubleBE(at + 4);
    const keyLength = b.readUInt32BE(at + 12);
    at += 16;
    if (at + keyLength > b.length || idLength === 0 || targetLength === 0 || keyLength === 0) throw new RangeError('bad lengths');
    const key = new Uint8Array(keyLength);
    key.set(b.subarray(at, at + keyLength));
    const record = new Uint8Array(b.length - at - keyLength);
    record.set(b.subarray(at + keyLength));
    return { id, target, key, token, record, createdAt };
  } catch {
    throw new CorruptEntryError(`a stored hint is damaged (${b.length} bytes do not decode)`);
  }
}
