import { Defaults } from '../internal/defaults.js';
import { DEFAULT_CODEC_LIMITS } from '../transport/index.js';
import { MAX_WIRE_KEY } from './messages.js';

/**
 * The largest frame the built-in transports send or accept (the wire codec's
 * `maxFrameBytes`), in bytes. A key's whole record travels in one frame
 * (`kv.apply`, `kv.record`), so a record must fit in it.
 */
export const DEFAULT_FRAME_LIMIT: number = DEFAULT_CODEC_LIMITS.maxFrameBytes;

/**
 * Default bound on the versions of one key (Riak's `max_siblings`): a write
 * that would leave more, and more than the key holds now, is refused with
 * `KV_TOO_MANY_SIBLINGS`.
 */
export const DEFAULT_MAX_SIBLINGS: number = Defaults.maxSiblings;

/** Default number of versions of one key above which a coordinated write reports the key. */
export const DEFAULT_SIBLING_WARNING: number = Defaults.siblingWarning;

/**
 * Bytes budgeted for one actor id (`nodeId~incarnation`) in the size
 * estimate. Node ids longer than about 110 bytes eat into the margin.
 */
const ACTOR_BUDGET_BYTES = 128;

/** One clock entry in msgpack: `[actor, counter, time]` (array header, string header, two 64-bit numbers). */
const CLOCK_ENTRY_BYTES = 1 + 3 + ACTOR_BUDGET_BYTES + 9 + 9;

/**
 * Everything of a version but its value and its past's entries:
 * `[actor, counter, timestamp, past, value]` headers, the dot's actor, the
 * counter, the timestamp, the past's array header and the value's bin header.
 */
const VERSION_FIXED_BYTES = 1 + 3 + ACTOR_BUDGET_BYTES + 9 + 9 + 3 + 5;

/**
 * What a frame carries besides the record: the frame header with the sender's
 * address (up to the codec's header-string limit), the message's field names,
 * the cluster name, and the key (up to the protocol's key limit).
 */
const RECORD_ENVELOPE_BYTES = DEFAULT_CODEC_LIMITS.maxHeaderStringBytes + MAX_WIRE_KEY + 4096;

/** Input of {@link checkRecordFitsFrame}. */
export interface RecordLimits {
  /** Largest encoded value, in bytes (the Store's `maxValueBytes`). */
  readonly maxValueBytes: number;
  /** Most versions of one key a write may leave (the Store's `maxSiblings`). */
  readonly maxSiblings: number;
  /** Entries kept in a version's past (the Store's `maxClockEntries`). */
  readonly maxClockEntries: number;
  /**
   * The replication factor N. Each replica bounds the versions of the writes
   * it coordinates against its own set, so N replicas coordinating blind
   * writes at the same time (or on the sides of a partition) can each accept
   * up to `maxSiblings` before they see each other's versions; their merge
   * holds up to N × `maxSiblings` versions (measured: 100 concurrent blind
   * writers through 3 nodes with `maxSiblings` 20 leave 60).
   */
  readonly n: number;
  /**
   * Largest frame the transport carries, in bytes.
   * @default DEFAULT_FRAME_LIMIT (16 MiB, the wire codec's `maxFrameBytes`)
   */
  readonly frameLimit?: number;
}

/**
 * Estimated encoded overhead of one version besides its value: its dot,
 * timestamp and a past of `maxClockEntries` entries, with actor ids budgeted
 * at 128 bytes each (about 1.6 KiB for the default 10 entries).
 *
 * @throws TypeError/RangeError if `maxClockEntries` is not a positive integer.
 */
export function versionOverheadBytes(maxClockEntries: number): number {
  checkPositiveInteger('maxClockEntries', maxClockEntries);
  return VERSION_FIXED_BYTES + maxClockEntries * CLOCK_ENTRY_BYTES;
}

/**
 * Checks that no record a cluster can build by writes reaches the frame
 * limit: N × `maxSiblings` versions (see {@link RecordLimits.n}) of
 * `maxValueBytes` each, plus each version's dots and clocks (see
 * {@link versionOverheadBytes}), plus the message around the record, must
 * fit in `frameLimit`. A record larger than a frame can be neither
 * replicated nor read from another node, so the key would be stuck; such
 * options are refused at construction instead.
 *
 * N × `maxSiblings` is the bound while a key's writes are coordinated by its
 * N replicas. Merges are never refused, so writes coordinated by more actors
 * (replicas that changed with the ring, or restarted on empty storage) while
 * they could not see each other can still grow a key past it; a write with
 * the context of a read collapses it again.
 *
 * @returns The largest record, in bytes, these options can build by writes.
 * @throws TypeError/RangeError on a limit that is not a positive integer;
 *   RangeError naming the options and the numbers when the record would not
 *   fit, with the largest `maxValueBytes` and `maxSiblings` that would.
 * @example
 * ```ts
 * checkRecordFitsFrame({ maxValueBytes: 10_240, maxSiblings: 100, maxClockEntries: 10, n: 3 }); // ~3.6 MB: fine
 * checkRecordFitsFrame({ maxValueBytes: 2 * 1024 * 1024, maxSiblings: 100, maxClockEntries: 10, n: 3 }); // RangeError
 * ```
 */
export function checkRecordFitsFrame(limits: RecordLimits): number {
  if (limits === null || typeof limits !== 'object') {
    throw new TypeError(`Expected \`limits\` to be an object, got ${limits === null ? 'null' : typeof limits}`);
  }
  const { maxValueBytes, maxSiblings, maxClockEntries, n } = limits;
  const frameLimit = limits.frameLimit ?? DEFAULT_FRAME_LIMIT;
  checkPositiveInteger('maxValueBytes', maxValueBytes);
  checkPositiveInteger('maxSiblings', maxSiblings);
  checkPositiveInteger('n', n);
  checkPositiveInteger('frameLimit', frameLimit);
  const overhead = versionOverheadBytes(maxClockEntries);
  const budget = frameLimit - RECORD_ENVELOPE_BYTES - 1 - 5; // - the format byte and the array header
  const versions = n * maxSiblings;
  const record = 1 + 5 + versions * (maxValueBytes + overhead);
  if (record <= 6 + budget) return record;
  const valueFits = Math.floor(budget / versions) - overhead;
  const siblingsFit = Math.floor(budget / n / (maxValueBytes + overhead));
  throw new RangeError(
    `Expected \`maxValueBytes\` × \`maxSiblings\` × N to fit the frame limit: ${n} replicas × ${maxSiblings} ` +
      `siblings of up to ${maxValueBytes} bytes, plus ~${overhead} bytes of dots and clocks each ` +
      `(maxClockEntries=${maxClockEntries}), make a record of up to ${record} bytes, over the ${budget + 6} bytes ` +
      `a frame of ${frameLimit} bytes leaves for it; ` +
      (valueFits >= 1 ? `lower maxValueBytes to at most ${valueFits}` : 'no maxValueBytes fits that many siblings') +
      (siblingsFit >= 1 ? ` or maxSiblings to at most ${siblingsFit}` : ''),
  );
}

function checkPositiveInteger(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') {
    throw new TypeError(`Expected \`${name}\` to be a positive integer, got ${value === null ? 'null' : typeof value}`);
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Expected \`${name}\` to be a positive integer, got ${value}`);
  }
}
