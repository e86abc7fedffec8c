import { Decoder } from '@msgpack/msgpack';
import { KvError, ErrorCodes, type ErrorCode } from '../errors/index.js';
import { MsgpackReader, MsgpackWriter, base64url } from '../internal/bytes.js';

/**
 * One event: the `counter`-th write coordinated by `actor`. Every stored
 * version carries the dot of the write that created it.
 */
export interface Dot {
  /** The actor (see `actorId`) that issued the event. */
  readonly actor: string;
  /** Positive integer, 1 for the actor's first event on a key. */
  readonly counter: number;
}

/** How {@link VectorClock.compare} orders two clocks (times are ignored). */
export type ClockOrder = 'before' | 'after' | 'equal' | 'concurrent';

/** One clock entry as `[actor, counter, time]`, the shape of `entries()` and `toWire()`. */
export type ClockEntry = [actor: string, counter: number, time: number];

/** Most entries a decoded clock may carry; anything larger is rejected as hostile. */
export const MAX_DECODED_CLOCK_ENTRIES = 10_000;

/** Longest context string {@link VectorClock.decode} looks at (characters). */
const MAX_CONTEXT_LENGTH = 4 * 1024 * 1024;

/** Format tag at the head of an encoded context, so the format can evolve. */
const CONTEXT_FORMAT = 1;

const BASE64URL = /^[A-Za-z0-9_-]*$/;

// Shared, lazily built msgpack codecs (building them per call was a measured hot spot).
let sharedDecoder: Decoder | undefined;
let sharedWriter: MsgpackWriter | undefined;

/** The shared writer, reset. */
function resetWriter(): MsgpackWriter {
  const w = (sharedWriter ??= new MsgpackWriter(256));
  w.reset();
  return w;
}

/** The shared writer, reset, with a context's header for `entries` entries written. */
function contextWriter(entries: number): MsgpackWriter {
  const w = resetWriter();
  w.arrayHeader(2);
  w.number(CONTEXT_FORMAT);
  w.arrayHeader(entries);
  return w;
}

function writeContextEntry(w: MsgpackWriter, actor: string, counter: number, time: number): void {
  writeEntryActor(w, actor);
  writeEntryDot(w, counter, time);
}

/** A context entry's bytes up to its actor (see {@link dotHead}, which caches them). */
function writeEntryActor(w: MsgpackWriter, actor: string): void {
  w.arrayHeader(3);
  w.string(actor);
}

/** The rest of a context entry: its counter and time. */
function writeEntryDot(w: MsgpackWriter, counter: number, time: number): void {
  w.number(counter);
  w.number(time);
}

/**
 * `VectorClock.encode()` of the clock of a set holding one version with an
 * empty past, `{ actor: counter }` at `max(0, timestamp)`, without building
 * the clock: a read of a key written without context (the common record)
 * answers its context this way. The dot comes from a checked version.
 *
 * @internal
 */
export function encodeDotContext(actor: string, counter: number, timestamp: number): string {
  const time = Math.max(0, timestamp);
  const problem = entryProblem(actor, counter, time);
  if (problem !== undefined) throw new TypeError(problem);
  const head = dotHead(actor);
  const w = resetWriter();
  w.raw(head.carry);
  writeEntryDot(w, counter, time);
  return w.toBase64url(head.text);
}

/**
 * The part of a one-entry context that depends on its actor only: the
 * base64url of the longest start of its bytes, up to the actor, whose
 * length is a multiple of 3 (so the rest encodes on its own and the two
 * texts join), and the 0-2 bytes left over.
 */
interface DotHead {
  readonly text: string;
  readonly carry: Uint8Array;
}

/** Heads by actor; a node sees few actors, and the table starts over past {@link MAX_DOT_HEADS}. */
const dotHeads = new Map<string, DotHead>();
const MAX_DOT_HEADS = 1024;

function dotHead(actor: string): DotHead {
  let head = dotHeads.get(actor);
  if (head === undefined) {
    const w = contextWriter(1);
    writeEntryActor(w, actor);
    const bytes = w.view();
    const aligned = bytes.length - (bytes.length % 3);
    head = { text: base64url(bytes.subarray(0, aligned)), carry: bytes.slice(aligned) };
    if (dotHeads.size >= MAX_DOT_HEADS) dotHeads.clear();
    dotHeads.set(actor, head);
  }
  return head;
}

function contextDecoder(): Decoder {
  return (sharedDecoder ??= new Decoder({
    maxArrayLength: MAX_DECODED_CLOCK_ENTRIES,
    maxMapLength: 0,
    maxExtLength: 0,
    maxBinLength: 0,
  }));
}

interface Entry {
  readonly counter: number;
  /** Wall-clock ms of the increment that produced `counter`; used only for pruning. */
  readonly time: number;
}

function compareActors(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describe(x: unknown): string {
  if (typeof x === 'string') return `the string ${JSON.stringify(x.length > 40 ? x.slice(0, 40) + '…' : x)}`;
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'object' ? 'an object' : `${typeof x} ${String(x)}`;
}

/** Why a candidate entry is invalid, or undefined if it is fine. */
function entryProblem(actor: unknown, counter: unknown, time: unknown): string | undefined {
  if (typeof actor !== 'string' || actor.length === 0) {
    return `Expected actor to be a non-empty string, got ${describe(actor)}`;
  }
  if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 1) {
    return `Expected counter of actor ${JSON.stringify(actor)} to be a positive safe integer, got ${describe(counter)}`;
  }
  if (typeof time !== 'number' || !Number.isFinite(time) || time < 0) {
    return `Expected time of actor ${JSON.stringify(actor)} to be a finite non-negative number, got ${describe(time)}`;
  }
  return undefined;
}

/**
 * Reads `[format, [[actor, counter, time], …]]` straight off the bytes: the
 * shape every context has, without the general decoder's cost. Returns
 * undefined on anything else (other types, truncation, trailing bytes, over
 * the size limit), and the caller then takes the general decoder, so what is
 * accepted and every error stay exactly as before.
 */
function fastDecodeContext(bytes: Uint8Array): [unknown, unknown[]] | undefined {
  try {
    const r = new MsgpackReader(bytes);
    if (r.arrayLength(r.byte()) !== 2) return undefined;
    const format = r.number(r.byte());
    if (format === undefined) return undefined;
    const n = r.arrayLength(r.byte());
    if (n < 0 || n > MAX_DECODED_CLOCK_ENTRIES) return undefined;
    const entries: unknown[] = [];
    for (let i = 0; i < n; i++) {
      if (r.arrayLength(r.byte()) !== 3) return undefined;
      const len = r.stringLength(r.byte());
      if (len < 0) return undefined;
      const actor = r.string(len);
      const counter = r.number(r.byte());
      if (counter === undefined) return undefined;
      const time = r.number(r.byte());
      if (time === undefined) return undefined;
      entries.push([actor, counter, time]);
    }
    return r.left === 0 ? [format, entries] : undefined;
  } catch {
    return undefined;
  }
}

/** Throws a KvError with `code` (a TypeError when `code` is undefined); a function, not a closure per call. */
function failEntries(code: ErrorCode | undefined, what: string, message: string): never {
  if (code === undefined) throw new TypeError(message);
  throw new KvError(code, `Invalid ${what}: ${message}`);
}

function failContext(message: string, cause?: unknown): never {
  throw new KvError(ErrorCodes.INVALID_CONTEXT, `Invalid context: ${message}`, { cause });
}

/**
 * Builds the entry map from untrusted `[actor, counter, time]` triples.
 * Throws a KvError with `code` (or a TypeError when `code` is undefined).
 */
function parseEntries(x: unknown, code: ErrorCode | undefined, what: string): Map<string, Entry> {
  if (!Array.isArray(x)) return failEntries(code, what, `expected an array of [actor, counter, time] entries, got ${describe(x)}`);
  if (x.length > MAX_DECODED_CLOCK_ENTRIES) {
    return failEntries(code, what, `${x.length} entries is over the limit of ${MAX_DECODED_CLOCK_ENTRIES}`);
  }
  const map = new Map<string, Entry>();
  for (const item of x as unknown[]) {
    if (!Array.isArray(item) || item.length !== 3) {
      return failEntries(code, what, `expected each entry to be [actor, counter, time], got ${describe(item)}`);
    }
    const [actor, counter, time] = item as [unknown, unknown, unknown];
    const problem = entryProblem(actor, counter, time);
    if (problem !== undefined) return failEntries(code, what, problem);
    if (map.has(actor as string)) return failEntries(code, what, `duplicate actor ${JSON.stringify(actor)}`);
    map.set(actor as string, { counter: counter as number, time: time as number });
  }
  return map;
}

/** What {@link joinVersionClocks} reads of a version. */
interface DottedPast {
  readonly dot: Dot;
  readonly past: VectorClock;
  readonly timestamp: number;
}

let joinImpl: (versions: readonly DottedPast[]) => VectorClock;

/**
 * The join of every version's `past` and its dot (with `max(0, timestamp)`
 * as the entry time), by the rule of {@link VectorClock.merge}: the larger
 * counter wins, then the later time. One pass, no intermediate clocks
 * (`SiblingSet#clock`, the context a reader gets). Internal: not exported
 * from the package.
 *
 * @throws TypeError if a dot is invalid (as `VectorClock.from` would).
 */
export function joinVersionClocks(versions: readonly DottedPast[]): VectorClock {
  return joinImpl(versions);
}

let fromTriplesImpl: (triples: ClockEntry[]) => VectorClock;

/**
 * A clock from triples the record codec has just read: checked as
 * {@link VectorClock.fromWire} checks them (same errors), and when they
 * are already sorted by actor (as every encoder writes them) the array is
 * kept as the clock's sorted entries, so encoding the clock again neither
 * sorts nor copies. The caller hands the array over.
 *
 * @internal
 */
export function clockFromWireTriples(triples: ClockEntry[]): VectorClock {
  return fromTriplesImpl(triples);
}

/**
 * An immutable vector clock: for each actor, how many of its events are known.
 *
 * Backed by a `Map`, so any string is a valid actor (`__proto__`, `valueOf`
 * and `constructor` included). Each entry also remembers the wall-clock time
 * of its last increment; times are used only by {@link VectorClock.prune}
 * and are ignored by `compare`, `descends` and `equals`.
 *
 * @example
 * ```ts
 * const a = VectorClock.EMPTY.increment('n1~k3', Date.now());
 * const b = a.increment('n2~x9');
 * a.compare(b);                                 // 'before'
 * b.descends(a);                                // true
 * const ctx = b.encode();                       // opaque, URL/JSON/HTTP-safe string
 * VectorClock.decode(ctx).equals(b);            // true
 * ```
 */
export class VectorClock {
  /** The clock that knows no events. */
  static readonly EMPTY: VectorClock = new VectorClock(new Map());

  /** Actor → entry; built on first use for a clock made from sorted triples (see #sorted). */
  #entries: ReadonlyMap<string, Entry> | undefined;
  /** The entries sorted by actor: set at construction when they come sorted, else built on first use. */
  #sorted: readonly ClockEntry[] | undefined;
  #encoded: string | undefined;

  private constructor(map: ReadonlyMap<string, Entry> | undefined, sorted?: readonly ClockEntry[]) {
    this.#entries = map;
    this.#sorted = sorted;
  }

  /** The entry map (a record's versions mostly carry one-entry pasts that never need it). */
  get #map(): ReadonlyMap<string, Entry> {
    if (this.#entries !== undefined) return this.#entries;
    const map = new Map<string, Entry>();
    const sorted = this.#sorted!;
    for (let i = 0; i < sorted.length; i++) {
      const [actor, counter, time] = sorted[i]!;
      map.set(actor, { counter, time });
    }
    return (this.#entries = map);
  }

  static {
    fromTriplesImpl = (triples) => {
      if (triples.length === 0) return VectorClock.EMPTY;
      // Valid entries in strictly ascending actor order (what every encoder
      // writes): the clock keeps the array and builds no map until asked.
      // Anything else goes through parseEntries, which names what is wrong.
      let fast = triples.length <= MAX_DECODED_CLOCK_ENTRIES;
      for (let i = 0; i < triples.length && fast; i++) {
        const [actor, counter, time] = triples[i]!;
        fast = entryProblem(actor, counter, time) === undefined && (i === 0 || triples[i - 1]![0] < actor);
      }
      if (fast) return new VectorClock(undefined, triples);
      const map = parseEntries(triples, ErrorCodes.INVALID_MESSAGE, 'clock in message');
      if (map.size === 0) return VectorClock.EMPTY;
      const clock = new VectorClock(map);
      let sorted = true;
      for (let i = 1; i < triples.length && sorted; i++) sorted = triples[i - 1]![0] < triples[i]![0];
      if (sorted) clock.#sorted = triples;
      return clock;
    };
    joinImpl = (versions) => {
      const join = new Map<string, Entry>();
      for (let i = 0; i < versions.length; i++) {
        const v = versions[i]!;
        for (const [actor, theirs] of v.past.#map) {
          const ours = join.get(actor);
          if (ours === undefined || theirs.counter > ours.counter || (theirs.counter === ours.counter && theirs.time > ours.time)) {
            join.set(actor, theirs);
          }
        }
        const { actor, counter } = v.dot;
        const time = Math.max(0, v.timestamp);
        const problem = entryProblem(actor, counter, time);
        if (problem !== undefined) throw new TypeError(problem);
        const ours = join.get(actor);
        if (ours === undefined || counter > ours.counter || (counter === ours.counter && time > ours.time)) {
          join.set(actor, { counter, time });
        }
      }
      return join.size === 0 ? VectorClock.EMPTY : new VectorClock(join);
    };
  }

  /**
   * Builds a clock from `[actor, counter, time?]` triples (`time` defaults to 0).
   *
   * @throws TypeError if an actor is not a non-empty string, a counter is not
   *   a positive safe integer, a time is not a finite non-negative number, or
   *   an actor appears twice.
   */
  static from(entries: Iterable<readonly [actor: string, counter: number, time?: number]>): VectorClock {
    if (entries == null || typeof (entries as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new TypeError(`Expected \`entries\` to be an iterable of [actor, counter, time?], got ${describe(entries)}`);
    }
    const triples: unknown[] = [];
    for (const e of entries) {
      if (!Array.isArray(e)) throw new TypeError(`Expected each entry to be [actor, counter, time?], got ${describe(e)}`);
      triples.push([e[0], e[1], e[2] ?? 0]);
    }
    const map = parseEntries(triples, undefined, 'clock');
    return map.size === 0 ? VectorClock.EMPTY : new VectorClock(map);
  }

  /**
   * Decodes a context string made by {@link VectorClock.encode}.
   *
   * @throws KvError `KV_INVALID_CONTEXT` on anything malformed: not a string,
   *   bad base64url, bad msgpack, wrong shape, non-integer counters, duplicate
   *   actors, more than 10 000 entries.
   */
  static decode(context: string): VectorClock {
    if (typeof context !== 'string') return failContext(`expected a string, got ${describe(context)}`);
    if (context.length === 0) return failContext('the context is empty');
    if (context.length > MAX_CONTEXT_LENGTH) return failContext(`${context.length} characters is too long`);
    if (!BASE64URL.test(context) || context.length % 4 === 1) return failContext('not a base64url string');
    const bytes = Buffer.from(context, 'base64url');
    let decoded: unknown = fastDecodeContext(bytes);
    if (decoded === undefined) {
      try {
        decoded = contextDecoder().decode(bytes);
      } catch (err) {
        return failContext('not a valid encoded clock', err);
      }
    }
    if (!Array.isArray(decoded) || decoded.length !== 2) {
      return failContext(`expected [format, entries], got ${describe(decoded)}`);
    }
    if (decoded[0] !== CONTEXT_FORMAT) return failContext(`unknown format ${describe(decoded[0])}`);
    const map = parseEntries(decoded[1], ErrorCodes.INVALID_CONTEXT, 'context');
    return map.size === 0 ? VectorClock.EMPTY : new VectorClock(map);
  }

  /**
   * Reads a clock embedded in a msgpack message (the output of {@link VectorClock.toWire}).
   *
   * @throws KvError `KV_INVALID_MESSAGE` on anything malformed.
   */
  static fromWire(x: unknown): VectorClock {
    const map = parseEntries(x, ErrorCodes.INVALID_MESSAGE, 'clock in message');
    return map.size === 0 ? VectorClock.EMPTY : new VectorClock(map);
  }

  /** Number of actors with a non-zero counter. */
  get size(): number {
    return this.#entries !== undefined ? this.#entries.size : this.#sorted!.length;
  }

  /** The counter of `actor` (0 if absent). */
  get(actor: string): number {
    if (this.#entries === undefined) {
      // Sorted triples, no map yet: a scan (pasts hold a few entries).
      const sorted = this.#sorted!;
      for (let i = 0; i < sorted.length; i++) if (sorted[i]![0] === actor) return sorted[i]![1];
      return 0;
    }
    return this.#entries.get(actor)?.counter ?? 0;
  }

  /** The time of `actor`'s last increment (0 if absent or unknown). */
  timeOf(actor: string): number {
    return this.#map.get(actor)?.time ?? 0;
  }

  /** `[actor, counter, time]` triples sorted by actor (a fresh array each call). */
  entries(): ClockEntry[] {
    return this.#sortedEntries().map((e) => [...e] as ClockEntry);
  }

  /** A clock with `actor`'s counter one higher and its time set to `time`. */
  increment(actor: string, time = 0): VectorClock {
    const counter = this.get(actor) + 1;
    const problem = entryProblem(actor, counter, time);
    if (problem !== undefined) throw new TypeError(problem);
    const map = new Map(this.#map);
    map.set(actor, { counter, time });
    return new VectorClock(map);
  }

  /**
   * Pointwise maximum (the least clock that descends both). Each entry keeps
   * the time that goes with the larger counter (the later time on a tie).
   */
  merge(other: VectorClock): VectorClock {
    if (other.#map.size === 0 || other === this) return this;
    if (this.#map.size === 0) return other;
    let map: Map<string, Entry> | undefined;
    for (const [actor, theirs] of other.#map) {
      const ours = this.#map.get(actor);
      if (ours !== undefined && (ours.counter > theirs.counter || (ours.counter === theirs.counter && ours.time >= theirs.time))) {
        continue;
      }
      map ??= new Map(this.#map);
      map.set(actor, theirs);
    }
    return map === undefined ? this : new VectorClock(map);
  }

  /** How this clock orders against `other`, ignoring times. */
  compare(other: VectorClock): ClockOrder {
    let less = false; // some entry of this is below other's
    let greater = false; // some entry of this is above other's
    for (const [actor, e] of this.#map) {
      const theirs = other.get(actor);
      if (e.counter > theirs) greater = true;
      else if (e.counter < theirs) less = true;
    }
    if (!less) {
      for (const [actor, e] of other.#map) {
        if (e.counter > this.get(actor)) {
          less = true;
          break;
        }
      }
    }
    if (less && greater) return 'concurrent';
    if (less) return 'before';
    if (greater) return 'after';
    return 'equal';
  }

  /** True if this clock is pointwise >= `other` (it has seen everything `other` has). */
  descends(other: VectorClock): boolean {
    if (other.#map.size > this.#map.size) return false;
    for (const [actor, e] of other.#map) {
      if (this.get(actor) < e.counter) return false;
    }
    return true;
  }

  /** True if the event `dot` is known to this clock (`get(dot.actor) >= dot.counter`). */
  covers(dot: Dot): boolean {
    return this.get(dot.actor) >= dot.counter;
  }

  /** Same counters for the same actors (times are ignored). */
  equals(other: VectorClock): boolean {
    if (other === this) return true;
    if (other.#map.size !== this.#map.size) return false;
    for (const [actor, e] of other.#map) {
      if (this.get(actor) !== e.counter) return false;
    }
    return true;
  }

  /**
   * Drops the entries with the oldest `time` (ties: the smaller counter, then
   * the smaller actor) until at most `maxEntries` remain.
   *
   * Safety: a pruned clock is pointwise <= the original (the original
   * descends it), so a version whose past was pruned covers *fewer* dots. It
   * can only fail to obsolete something it would have obsoleted — readers see
   * an extra sibling, which the next write with their context collapses — and
   * it can never make a version wrongly dominate another.
   *
   * Caveats: knowledge dropped by pruning is gone. (1) A version obsoleted
   * only transitively (z obsoletes y, y obsoleted x, z's past lost x's
   * actor) can come back as an extra sibling depending on merge order. (2) If
   * the only record of an actor's events on a key were a pruned entry, that
   * actor could later reissue a counter that other replicas already consider
   * covered, and its write would be dropped there — `SiblingSet.write`'s
   * `counterFloor` option (a node-wide high-water counter) rules that out.
   * Keep `maxEntries` above the number of actors that coordinate writes to
   * one key (N replicas + stand-ins + restarts), as Dynamo does with ~10.
   *
   * @throws RangeError if `maxEntries` is not a non-negative safe integer.
   */
  prune(maxEntries: number): VectorClock {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) {
      throw new RangeError(`Expected \`maxEntries\` to be a non-negative integer, got ${describe(maxEntries)}`);
    }
    if (this.#map.size <= maxEntries) return this;
    const byAge = [...this.#map].sort(
      ([a, x], [b, y]) => x.time - y.time || x.counter - y.counter || compareActors(a, b),
    );
    const kept = byAge.slice(byAge.length - maxEntries);
    return kept.length === 0 ? VectorClock.EMPTY : new VectorClock(new Map(kept));
  }

  /**
   * An opaque, URL-, JSON- and HTTP-header-safe context string (base64url of
   * msgpack). The empty clock encodes to a valid non-empty string too.
   */
  encode(): string {
    // Written by hand into a reused buffer, byte for byte what the msgpack
    // Encoder made of `[CONTEXT_FORMAT, entries]` (contexts are stored by users).
    if (this.#encoded !== undefined) return this.#encoded;
    const entries = this.#sortedEntries();
    const w = contextWriter(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const [actor, counter, time] = entries[i]!;
      writeContextEntry(w, actor, counter, time);
    }
    return (this.#encoded = w.toBase64url());
  }

  /**
   * The `[actor, counter, time]` triples sorted by actor, without the copy
   * {@link VectorClock.entries} makes: for the record codec and the cover
   * index, which only read them. Never mutate the result.
   *
   * @internal
   */
  sortedEntriesView(): readonly ClockEntry[] {
    return this.#sortedEntries();
  }

  /** `[actor, counter, time]` triples sorted by actor, for embedding in msgpack messages. */
  toWire(): ClockEntry[] {
    return this.entries();
  }

  /** Debug form, e.g. `VectorClock{a:2, b:1}`. */
  toString(): string {
    return `VectorClock{${this.#sortedEntries()
      .map(([a, c]) => `${a}:${c}`)
      .join(', ')}}`;
  }

  #sortedEntries(): readonly ClockEntry[] {
    if (this.#sorted !== undefined) return this.#sorted;
    const out: ClockEntry[] = [];
    for (const [actor, e] of this.#map) out.push([actor, e.counter, e.time]);
    if (out.length > 1) out.sort((x, y) => compareActors(x[0], y[0]));
    return (this.#sorted = out);
  }
}
