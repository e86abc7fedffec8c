import { KvError, ErrorCodes } from '../errors/index.js';
import { MsgpackFormatError, MsgpackReader, MsgpackWriter, StringCache, copyBytes } from '../internal/bytes.js';
import { SiblingSet, siblingSetOfChecked, type Version } from './sibling-set.js';
import { MAX_DECODED_CLOCK_ENTRIES, VectorClock, clockFromWireTriples, type ClockEntry } from './vector-clock.js';

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

/** Checks one version's dot and timestamp; the shared rules of both decoders. */
function checkDot(actor: unknown, counter: unknown, timestamp: unknown): void {
  if (typeof actor !== 'string' || actor.length === 0) fail('a version actor is not a non-empty string');
  if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 1) {
    fail(`the counter of a version of ${JSON.stringify(actor)} is not a positive safe integer`);
  }
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) fail('a version timestamp is not a finite number');
}

/** Duplicate dots are hostile (an honest set never holds two versions with one dot). */
function checkNoDuplicateDots(versions: readonly Version<Uint8Array>[]): void {
  if (versions.length < 2) return;
  // Encoded sets are sorted by actor, then counter: strictly increasing dots cannot repeat.
  let sorted = true;
  for (let i = 1; i < versions.length && sorted; i++) {
    const a = versions[i - 1]!.dot;
    const b = versions[i]!.dot;
    sorted = a.actor < b.actor || (a.actor === b.actor && a.counter < b.counter);
  }
  if (sorted) return;
  const seen = new Map<string, Set<number>>();
  for (const { dot } of versions) {
    let counters = seen.get(dot.actor);
    if (counters === undefined) seen.set(dot.actor, (counters = new Set()));
    if (counters.has(dot.counter)) fail(`duplicate dot ${dot.actor}:${dot.counter}`);
    counters.add(dot.counter);
  }
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
  for (const item of x as unknown[]) {
    if (!Array.isArray(item) || item.length !== 5) fail('expected each version to be [actor, counter, timestamp, past, value]');
    const [actor, counter, timestamp, past, value] = item as unknown[];
    checkDot(actor, counter, timestamp);
    if (value !== null && !(value instanceof Uint8Array)) fail('a version value is neither bytes nor null');
    versions.push({
      dot: { actor: actor as string, counter: counter as number },
      past: VectorClock.fromWire(past),
      value: value === null ? undefined : value.slice(),
      tombstone: value === null,
      timestamp: timestamp as number,
    });
  }
  checkNoDuplicateDots(versions);
  return SiblingSet.of(versions);
}

// The record codec writes and reads its msgpack by hand: building the wire
// form and running it through a generic codec cost more than the rest of a
// replica's write. The output is byte for byte what `@msgpack/msgpack`'s
// encoder makes of `siblingSetToWire(set)` (records are compared by bytes,
// also against records written by earlier versions).
const writer = new MsgpackWriter();

/**
 * The encodings (header and UTF-8) of the actors written lately, reused: a
 * record names a few actors many times (every version's dot and past), and
 * copying 10-30 known bytes costs a third of encoding the string again
 * (measured ~40 against ~120-170 ns on Node 20, more for a cons string such
 * as an actor id built by concatenation). A cache, not state: the bytes are
 * exactly what `MsgpackWriter.string` writes for the same string. Emptied
 * when it reaches its bound (a process holds a few nodes' actors, a
 * cluster's history at most some hundreds).
 */
const writtenActors = new Map<string, Uint8Array>();
const WRITTEN_ACTORS_MAX = 256;

function writeActor(w: MsgpackWriter, actor: string): void {
  const known = writtenActors.get(actor);
  if (known !== undefined) {
    w.raw(known);
    return;
  }
  const start = w.pos;
  w.string(actor);
  if (actor.length > 64) return;
  if (writtenActors.size >= WRITTEN_ACTORS_MAX) writtenActors.clear();
  writtenActors.set(actor, w.view().slice(start));
}

function writeClock(w: MsgpackWriter, clock: VectorClock): void {
  if (clock.size === 0) {
    w.arrayHeader(0);
    return;
  }
  const entries = clock.sortedEntriesView();
  w.arrayHeader(entries.length);
  for (const [actor, counter, time] of entries) {
    w.u8(0x93);
    writeActor(w, actor);
    w.number(counter);
    w.number(time);
  }
}

/**
 * Runs `write(writer, arg)` on the shared writer (or a fresh one if it is
 * busy) and returns a copy of its output. `write` is a function made once,
 * `arg` what it writes: a closure would be allocated per encoding.
 */
function withWriter<A>(prefix: number, write: (w: MsgpackWriter, arg: A) => void, arg: A): Uint8Array {
  const w = writer.busy ? new MsgpackWriter(256) : writer;
  w.busy = true;
  try {
    w.reset();
    write(w, arg);
    return w.copy(prefix);
  } finally {
    w.busy = false;
  }
}

/** Bytes for storage or the network: a format byte, then msgpack of the wire form. */
export function encodeSiblingSet(set: SiblingSet<Uint8Array>): Uint8Array {
  const out = withWriter(1, writeSiblingSet, set);
  out[0] = SIBLING_SET_FORMAT;
  return out;
}

function writeSiblingSet(w: MsgpackWriter, set: SiblingSet<Uint8Array>): void {
  const versions = set.versions;
  w.arrayHeader(versions.length);
  // An index loop: `versions` is frozen, and iterating a frozen array is slower on Node 20.
  for (let i = 0; i < versions.length; i++) {
    const v = versions[i]!;
    w.u8(0x95);
    writeActor(w, v.dot.actor);
    w.number(v.dot.counter);
    w.number(v.timestamp);
    writeClock(w, v.past);
    if (v.tombstone) w.nil();
    else w.binary(v.value!);
  }
}

/** Reads `[actor, counter, time]` entries (what `writeClock` wrote) into a clock. */
function readClock(r: MsgpackReader): VectorClock {
  const n = r.arrayLength(r.byte());
  if (n < 0) fail('a version past is not an array');
  if (n === 0) return VectorClock.EMPTY;
  if (n > MAX_DECODED_CLOCK_ENTRIES || n * 4 > r.left) fail(`a past of ${n} entries does not fit`);
  const entries: ClockEntry[] = [];
  for (let i = 0; i < n; i++) {
    if (r.arrayLength(r.byte()) !== 3) fail('expected each past entry to be [actor, counter, time]');
    // Wrong types (null) are named by the checks of clockFromWireTriples.
    entries.push([readString(r), readNumber(r), readNumber(r)] as unknown as ClockEntry);
  }
  return clockFromWireTriples(entries);
}

/**
 * The actors of a record repeat (every version's dot and past name a few
 * of them): the ones decoded lately are kept with their bytes and reused, so
 * a record of 25 versions of one actor makes one string, and comparing
 * actors compares the same string object. A direct-mapped table (a hit is a
 * hash and one compare of the bytes); it replaced a scan of the 8 actors
 * decoded last, which cost ~30 ns a string (most of a 25-sibling record's
 * parse) and thrashed with more than 8 actors in rotation.
 */
const actors = new StringCache(64, 256, true);

/** A string, or `null` to let the caller's check name what is wrong. */
function readString(r: MsgpackReader): string | null {
  const h = r.byte();
  const n = r.stringLength(h);
  if (n < 0) {
    skipScalar(r, h);
    return null;
  }
  return actors.read(r, n);
}

/** A number, or `null` to let the caller's check name what is wrong. */
function readNumber(r: MsgpackReader): number | null {
  const h = r.byte();
  const v = r.number(h);
  if (v === undefined) {
    skipScalar(r, h);
    return null;
  }
  return v;
}

/** Refuses what a record never holds where a scalar was expected (containers, extensions). */
function skipScalar(r: MsgpackReader, h: number): void {
  if (h === 0xc0 || h === 0xc2 || h === 0xc3) return;
  const bin = r.binaryLength(h);
  if (bin >= 0) {
    r.view(bin);
    return;
  }
  fail(`unexpected msgpack type 0x${h.toString(16)}`);
}

/** Options of {@link decodeSiblingSet}. */
export interface DecodeSiblingSetOptions {
  /**
   * Copy each version's value out of `bytes` (true), or give views into
   * `bytes` (false: no allocation per version, but the values are only as
   * immutable as `bytes` and keep all of it alive). A replica decoding a
   * record it owns for one merge passes false.
   * @default true
   */
  readonly copyValues?: boolean;
}

/**
 * Reads the output of {@link encodeSiblingSet} (or any msgpack encoding of
 * the same wire form).
 *
 * @throws KvError `KV_INVALID_MESSAGE` on malformed or hostile input.
 */
export function decodeSiblingSet(bytes: Uint8Array, options?: DecodeSiblingSetOptions): SiblingSet<Uint8Array> {
  const versions = parseRecord(bytes, options?.copyValues ?? true, true)!;
  checkNoDuplicateDots(versions);
  // Every field was checked by parseRecord (checkDot, readClock, the value's type).
  return siblingSetOfChecked(versions);
}

/**
 * Checks `bytes` as {@link decodeSiblingSet} would, without building the set
 * (no version objects, no value views): what a replica asks of a record it
 * stores as it came because it holds nothing for the key yet. Throws exactly
 * what decodeSiblingSet throws for the same bytes.
 *
 * @throws KvError `KV_INVALID_MESSAGE` on malformed or hostile input.
 */
export function checkSiblingSet(bytes: Uint8Array): void {
  // parseRecord without building answers whether the dots were strictly
  // ascending (then they are distinct); otherwise the full decode decides.
  if (parseRecord(bytes, false, false) === undefined) decodeSiblingSet(bytes, { copyValues: false });
}

/** A record's dots and pasts, in its order, without its values or version objects. */
interface RecordDots {
  readonly actors: string[];
  readonly counters: number[];
  readonly pasts: VectorClock[];
}

/** Per actor, the largest counter some indexed past holds for it, and which version's past that is. */
type PastIndex = Map<string, { counter: number; owner: number }>;

function indexPast(index: PastIndex, past: VectorClock, owner: number): void {
  if (past.size === 0) return;
  for (const [actor, counter] of past.sortedEntriesView()) {
    const entry = index.get(actor);
    if (entry === undefined) index.set(actor, { counter, owner });
    else if (counter > entry.counter) {
      entry.counter = counter;
      entry.owner = owner;
    }
  }
}

const KEPT = 0;
const OBSOLETED = 1;
/** The index's top version and `x` cover each other's dots (or are one dot): only a scan of every version could tell. */
const UNDECIDED = 2;

/**
 * Does some version indexed in `index` obsolete version `x` of `dots`? The
 * rule of the sibling set's cover index: the version whose past knows most
 * of x's actor obsoletes `x` if it reaches x's counter and x's past does not
 * cover its dot.
 */
function obsoletedIn(index: PastIndex, dots: RecordDots, x: number): typeof KEPT | typeof OBSOLETED | typeof UNDECIDED {
  const actor = dots.actors[x]!;
  const counter = dots.counters[x]!;
  const entry = index.get(actor);
  if (entry === undefined || entry.counter < counter) return KEPT;
  const topActor = dots.actors[entry.owner]!;
  const topCounter = dots.counters[entry.owner]!;
  if ((topActor === actor && topCounter === counter) || dots.pasts[x]!.get(topActor) >= topCounter) return UNDECIDED;
  return OBSOLETED;
}

/**
 * What merging record `incoming` into record `local` gives, found from the
 * two records' dots and pasts alone (no value view, no version object, no
 * set), when it is one of the two: `'local'` (the merge holds exactly the
 * local dots: nothing to store), `'incoming'` (exactly the incoming dots:
 * store `incoming` as it is). Undefined when it is neither, and for what is
 * left to the full decode and merge: dots out of order or repeated,
 * versions that cover each other's dots (neither of which an honest replica
 * writes), a local record that does not parse. When it answers, the record
 * it names decodes to exactly the dots of
 * `decodeSiblingSet(local).merge(decodeSiblingSet(incoming))` (a dot names
 * one version, so the values follow); for the records honest replicas write
 * it is also the record the merge is checked against first (the local one
 * when both are the merge).
 *
 * A replica merges every record it is sent into the one it holds; most of
 * the time the coordinator's record is the replica's plus the new version,
 * which obsoletes what the write's context covered. Measured at 25 siblings
 * with one-entry pasts: 7.5-7.8 µs against 11.8-12.0 µs to decode both
 * records whole, merge them and compare the merge with each.
 *
 * @throws KvError `KV_INVALID_MESSAGE` if `incoming` is malformed (what
 *   decodeSiblingSet throws for it), except a record whose dots are out of
 *   order: that is left to the full path (undefined), whose decode refuses
 *   repeated dots.
 */
export function mergeShortcut(local: Uint8Array, incoming: Uint8Array): 'local' | 'incoming' | undefined {
  // Both records' versions in one list: the sent record's first (its errors
  // are thrown before anything else is read), then the held one's.
  const dots: RecordDots = { actors: [], counters: [], pasts: [] };
  if (parseRecord(incoming, false, false, dots) === undefined) return undefined;
  const sent = dots.actors.length;
  try {
    if (parseRecord(local, false, false, dots) === undefined) return undefined;
  } catch {
    // A stored record that does not parse: the full path names it a storage failure.
    return undefined;
  }
  const { actors, counters } = dots;
  const end = actors.length;
  // The full path normalizes each side before merging; one pass over the union
  // is enough for the record named to decode to the merge: a version obsoleted
  // within its own record rules that record out (it is not kept), and what
  // obsoletes it is in the union with the same power as in its own record (a
  // dot in both records with different pasts goes to the full path). (It
  // may then name the sent record where the full path finds the held one, when
  // both decode to the merge: only forged records get there, and storing the
  // sent one is as right.)
  // The union in dot order, a dot in both taken from the held record (as merge
  // does) and marked `shared`.
  const union: number[] = [];
  const shared: boolean[] = [];
  let i = sent; // the held record's next version
  let j = 0; // the sent record's
  while (i < end || j < sent) {
    const order =
      i === end ? 1 : j === sent ? -1 : actors[i]! < actors[j]! ? -1 : actors[i]! > actors[j]! ? 1 : counters[i]! - counters[j]!;
    if (order > 0) {
      union.push(j++);
      shared.push(false);
    } else {
      // A dot in both with two different pasts (forged: a dot names one version): the held
      // one's past stands in the union where the sent record normalized itself with the
      // other, so the union no longer tells what the sent record decodes to.
      if (order === 0 && !dots.pasts[i]!.equals(dots.pasts[j]!)) return undefined;
      union.push(i++);
      shared.push(order === 0);
      if (order === 0) j++;
    }
  }
  const index: PastIndex = new Map();
  for (const x of union) indexPast(index, dots.pasts[x]!, x);
  // Which record the merge equals: a kept version one record lacks rules that
  // record out, and so does an obsoleted one it holds.
  let isMine = true;
  let isTheirs = true;
  for (let k = 0; k < union.length; k++) {
    const x = union[k]!;
    const inMine = x >= sent;
    const inTheirs = !inMine || shared[k]!;
    const state = index.size === 0 ? KEPT : obsoletedIn(index, dots, x);
    if (state === UNDECIDED) return undefined;
    if (state === KEPT) {
      if (!inMine) isMine = false;
      if (!inTheirs) isTheirs = false;
    } else {
      if (inMine) isMine = false;
      if (inTheirs) isTheirs = false;
    }
    if (!isMine && !isTheirs) return undefined;
  }
  return isMine ? 'local' : isTheirs ? 'incoming' : undefined;
}

/**
 * The record's versions (`build`), or, without `build`, an empty array when
 * the dots came in strictly ascending order and undefined when not (and,
 * with `dots`, each version's dot and past appended there, in order).
 */
function parseRecord(bytes: Uint8Array, copy: boolean, build: boolean, dots?: RecordDots): Version<Uint8Array>[] | undefined {
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array');
  if (bytes.byteLength === 0) fail('no bytes');
  if (bytes[0] !== SIBLING_SET_FORMAT) fail(`unknown format byte ${bytes[0]}`);
  const r = new MsgpackReader(bytes, 1);
  // Made with the first version, as [version]: a record usually holds one, and
  // a first push onto [] reserves 17 slots (~150 bytes) for it.
  let versions: Version<Uint8Array>[] | undefined;
  let ascending = true;
  let lastActor = '';
  let lastCounter = 0;
  try {
    const n = r.arrayLength(r.byte());
    if (n < 0) fail('expected an array of versions');
    if (n > MAX_DECODED_SIBLINGS) fail(`${n} versions is over the limit of ${MAX_DECODED_SIBLINGS}`);
    // A version takes at least 7 bytes: a bomb is refused before anything is built.
    if (n * 7 > r.left) fail(`${n} versions do not fit in ${r.left} bytes`);
    for (let i = 0; i < n; i++) {
      if (r.arrayLength(r.byte()) !== 5) fail('expected each version to be [actor, counter, timestamp, past, value]');
      const actor = readString(r);
      const counter = readNumber(r);
      const timestamp = readNumber(r);
      checkDot(actor, counter, timestamp);
      const past = readClock(r);
      const h = r.byte();
      let value: Uint8Array | undefined;
      if (h !== 0xc0) {
        const length = r.binaryLength(h);
        if (length < 0) fail('a version value is neither bytes nor null');
        if (!build) r.skip(length);
        else value = copy ? copyBytes(r.view(length)) : r.view(length);
      }
      if (!build) {
        if (dots !== undefined) {
          dots.actors.push(actor!);
          dots.counters.push(counter!);
          dots.pasts.push(past);
        }
        if (i > 0 && !(lastActor < actor! || (lastActor === actor && lastCounter < counter!))) ascending = false;
        lastActor = actor!;
        lastCounter = counter!;
        continue;
      }
      const version: Version<Uint8Array> = {
        dot: { actor: actor!, counter: counter! },
        past,
        value,
        tombstone: value === undefined,
        timestamp: timestamp!,
      };
      if (versions === undefined) versions = [version];
      else versions.push(version);
    }
    if (r.left !== 0) fail(`${r.left} extra bytes after the versions`);
  } catch (err) {
    if (err instanceof KvError) throw err;
    if (err instanceof MsgpackFormatError) fail('not valid msgpack', err);
    fail(err instanceof Error ? err.message : String(err), err);
  }
  return build || ascending ? (versions ?? []) : undefined;
}

/**
 * A clock on the wire, in the record codec's form: the msgpack of its
 * `toWire()` entries, the bytes a version's `past` takes inside a record.
 * Messages that carry a causal context (`kv.coordinate`) carry these bytes;
 * users see contexts only as the opaque string of `VectorClock.encode()`.
 */
export function encodeClock(clock: VectorClock): Uint8Array {
  return withWriter(0, writeClock, clock);
}

/**
 * Reads the output of {@link encodeClock}.
 *
 * @throws KvError `KV_INVALID_MESSAGE` on malformed or hostile input.
 */
export function decodeClock(bytes: Uint8Array): VectorClock {
  if (!(bytes instanceof Uint8Array)) throw new KvError(ErrorCodes.INVALID_MESSAGE, 'Invalid clock: expected a Uint8Array');
  const r = new MsgpackReader(bytes);
  try {
    const clock = readClock(r);
    if (r.left !== 0) throw new MsgpackFormatError(`${r.left} extra bytes`);
    return clock;
  } catch (err) {
    if (err instanceof KvError) {
      if (err.message.startsWith('Invalid sibling set: ')) {
        throw new KvError(ErrorCodes.INVALID_MESSAGE, `Invalid clock: ${err.message.slice(21)}`, { cause: err.cause });
      }
      throw err;
    }
    throw new KvError(ErrorCodes.INVALID_MESSAGE, 'Invalid clock: not valid msgpack', { cause: err });
  }
}

/**
 * The sibling set of `record` if it decodes and holds tombstones only (a
 * deleted key), else undefined: what tombstone GC asks of a stored record
 * before and again just before it removes the key. A record that does not
 * decode is never treated as a tombstone.
 */
export function decodeTombstones(record: Uint8Array): SiblingSet<Uint8Array> | undefined {
  let set: SiblingSet<Uint8Array>;
  try {
    set = decodeSiblingSet(record);
  } catch {
    return undefined;
  }
  return set.hasOnlyTombstones ? set : undefined;
}
