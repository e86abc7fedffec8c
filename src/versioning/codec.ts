import { Decoder, Encoder } from '@msgpack/msgpack';
import { KvError, ErrorCodes } from '../errors/index.js';
import { SiblingSet, type Version } from './sibling-set.js';
import { MAX_DECODED_CLOCK_ENTRIES, VectorClock, type ClockEntry } from './vector-clock.js';

/** First byte of {@link encodeSiblingSet}'s output. */
export const SIBLING_SET_FORMAT = 1;

/** Most versions a decoded sibling set may hold; more is rejected as hostile. */
export const MAX_DECODED_SIBLINGS = 10_000;

/**
 * One version on the wire: `[actor, counter, timestamp, past, value]`, where
 * `past` is a clock's `toWire()` and `value` is `null` for a tombstone.
 */
export type VersionWire = [actor: string, counter: number, timestamp: number, past: ClockEntry[], value: Uint8Array | null];

function fail(message: string, cause?: unknown): never {
  throw new KvError(ErrorCodes.INVALID_MESSAGE, `Invalid sibling set: ${message}`, { cause });
}

/** The compact msgpack-ready form of a set, for embedding in larger messages. */
export function siblingSetToWire(set: SiblingSet<Uint8Array>): VersionWire[] {
  return set.versions.map((v) => [v.dot.actor, v.dot.counter, v.timestamp, v.past.toWire(), v.tombstone ? null : v.value!]);
}

/**
 * Reads the output of {@link siblingSetToWire} after a msgpack round trip.
 * Values are copied (never views into the input buffer). Obsoleted versions
 * are dropped, as by `SiblingSet.of`.
 *
 * @throws KvError `KV_INVALID_MESSAGE` on wrong types, duplicate dots,
 *   bad clocks or more than 10 000 versions.
 */
export function siblingSetFromWire(x: unknown): SiblingSet<Uint8Array> {
  if (!Array.isArray(x)) fail('expected an array of versions');
  if (x.length > MAX_DECODED_SIBLINGS) fail(`${x.length} versions is over the limit of ${MAX_DECODED_SIBLINGS}`);
  const versions: Version<Uint8Array>[] = [];
  const seen = new Map<string, Set<number>>();
  for (const item of x as unknown[]) {
    if (!Array.isArray(item) || item.length !== 5) fail('expected each version to be [actor, counter, timestamp, past, value]');
    const [actor, counter, timestamp, past, value] = item as unknown[];
    if (typeof actor !== 'string' || actor.length === 0) fail('a version actor is not a non-empty string');
    if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 1) {
      fail(`the counter of a version of ${JSON.stringify(actor)} is not a positive safe integer`);
    }
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) fail('a version timestamp is not a finite number');
    if (value !== null && !(value instanceof Uint8Array)) fail('a version value is neither bytes nor null');
    let counters = seen.get(actor);
    if (counters === undefined) seen.set(actor, (counters = new Set()));
    if (counters.has(counter)) fail(`duplicate dot ${actor}:${counter}`);
    counters.add(counter);
    versions.push({
      dot: { actor, counter },
      past: VectorClock.fromWire(past),
      value: value === null ? undefined : value.slice(),
      tombstone: value === null,
      timestamp,
    });
  }
  return SiblingSet.of(versions);
}

// One encoder and decoder for the module: building them per call was a measured
// hot spot (msgpack allocates its buffers in the constructor). Both are re-entrant.
const encoder = new Encoder();
const decoder = new Decoder({
  maxArrayLength: Math.max(MAX_DECODED_SIBLINGS, MAX_DECODED_CLOCK_ENTRIES),
  maxMapLength: 0,
  maxExtLength: 0,
});

/** Bytes for storage or the network: a format byte, then msgpack of the wire form. */
export function encodeSiblingSet(set: SiblingSet<Uint8Array>): Uint8Array {
  const body = encoder.encodeSharedRef(siblingSetToWire(set));
  const out = new Uint8Array(body.byteLength + 1);
  out[0] = SIBLING_SET_FORMAT;
  out.set(body, 1);
  return out;
}

/**
 * Reads the output of {@link encodeSiblingSet}.
 *
 * @throws KvError `KV_INVALID_MESSAGE` on malformed or hostile input.
 */
export function decodeSiblingSet(bytes: Uint8Array): SiblingSet<Uint8Array> {
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array');
  if (bytes.byteLength === 0) fail('no bytes');
  if (bytes[0] !== SIBLING_SET_FORMAT) fail(`unknown format byte ${bytes[0]}`);
  let decoded: unknown;
  try {
    decoded = decoder.decode(bytes.subarray(1));
  } catch (err) {
    fail('not valid msgpack', err);
  }
  return siblingSetFromWire(decoded);
}

/**
 * A clock on the wire, in the record codec's form: the msgpack of its
 * `toWire()` entries, the bytes a version's `past` takes inside a record.
 * Messages that carry a causal context (`kv.coordinate`) carry these bytes;
 * users see contexts only as the opaque string of `VectorClock.encode()`.
 */
export function encodeClock(clock: VectorClock): Uint8Array {
  return encoder.encode(clock.toWire());
}

/**
 * Reads the output of {@link encodeClock}.
 *
 * @throws KvError `KV_INVALID_MESSAGE` on malformed or hostile input.
 */
export function decodeClock(bytes: Uint8Array): VectorClock {
  if (!(bytes instanceof Uint8Array)) throw new KvError(ErrorCodes.INVALID_MESSAGE, 'Invalid clock: expected a Uint8Array');
  let decoded: unknown;
  try {
    decoded = decoder.decode(bytes);
  } catch (err) {
    throw new KvError(ErrorCodes.INVALID_MESSAGE, 'Invalid clock: not valid msgpack', { cause: err });
  }
  return VectorClock.fromWire(decoded);
}
