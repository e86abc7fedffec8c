import { ErrorCodes, KvError, isErrorCode, type ErrorCode } from '../errors/index.js';
import { MsgpackFormatError, MsgpackReader, MsgpackWriter, StringCache, copyBytes } from '../internal/bytes.js';
import type { WireMessage, WireValue } from './types.js';

/**
 * One unit on the wire. `req` carries a request from `from`; `res` answers
 * the request with the same `id`; `err` tells the requester that handling
 * request `id` failed with `code`.
 *
 * Encoded as a msgpack array: `[0, id, from, body]`, `[1, id, body]` or
 * `[2, id, code, message]`.
 */
export type Frame =
  | { readonly kind: 'req'; readonly id: number; readonly from: string; readonly body: WireMessage }
  | { readonly kind: 'res'; readonly id: number; readonly body: WireMessage }
  | { readonly kind: 'err'; readonly id: number; readonly code: ErrorCode; readonly message: string };

/** Limits applied by {@link encodeFrame} and {@link decodeFrame}. */
export interface CodecLimits {
  /**
   * Largest encoded frame, in bytes. Larger frames are refused on both sides.
   * @default 16777216 (16 MiB)
   */
  maxFrameBytes?: number;
  /**
   * Deepest nesting of arrays/objects inside a message body (the body object
   * itself is depth 1).
   * @default 64
   */
  maxDepth?: number;
  /**
   * Most elements in one array, or entries in one object.
   * @default 1048576
   */
  maxCollectionLength?: number;
  /**
   * Longest `from` address and error message string, in UTF-8 bytes.
   * @default 65536
   */
  maxHeaderStringBytes?: number;
}

/** Default codec limits (see {@link CodecLimits}). */
export const DEFAULT_CODEC_LIMITS: Readonly<Required<CodecLimits>> = Object.freeze({
  maxFrameBytes: 16 * 1024 * 1024,
  maxDepth: 64,
  maxCollectionLength: 1024 * 1024,
  maxHeaderStringBytes: 64 * 1024,
});

const KIND_REQ = 0;
const KIND_RES = 1;
const KIND_ERR = 2;

function invalid(message: string, cause?: unknown): KvError {
  return new KvError(ErrorCodes.INVALID_MESSAGE, message, cause === undefined ? {} : { cause });
}

/** Resolved limits per limits object given (read once: do not mutate a limits object in use). */
const resolved = new WeakMap<CodecLimits, Required<CodecLimits>>([[DEFAULT_CODEC_LIMITS, DEFAULT_CODEC_LIMITS]]);

function resolveLimits(limits: CodecLimits | undefined): Required<CodecLimits> {
  if (!limits) return DEFAULT_CODEC_LIMITS;
  let full = resolved.get(limits);
  if (full === undefined) {
    full = { ...DEFAULT_CODEC_LIMITS, ...stripUndefined(limits) };
    resolved.set(limits, full);
    resolved.set(full, full);
  }
  return full;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') {
    const name = (v as object).constructor?.name;
    return name ? `an instance of ${name}` : 'an object';
  }
  return typeof v;
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message);
}

// ---- encoding (and validation) ---------------------------------------------------------------
//
// One recursive walk checks a body and, when encoding, writes its msgpack into
// a reused buffer. The path of a value (`request body.a[0].d`) is kept as a
// stack of segments and turned into a string only for an error message.

/** The state of one walk over a frame. */
class Walk {
  /** Where to write; undefined when only validating. */
  w: MsgpackWriter | undefined;
  l: Required<CodecLimits> = DEFAULT_CODEC_LIMITS;
  root = 'body';
  readonly trail: (string | number)[] = [];

  path(): string {
    let out = this.root;
    for (const s of this.trail) out += typeof s === 'number' ? `[${s}]` : `.${s}`;
    return out;
  }
}

const sharedWalk = new Walk();
const sharedWriter = new MsgpackWriter(8 * 1024);

/** The shared walk, or a fresh one if a walk is in progress (a getter in a body that sends a message). */
function beginWalk(w: boolean, l: Required<CodecLimits>): Walk {
  const walk = sharedWriter.busy ? new Walk() : sharedWalk;
  walk.l = l;
  // Setting an array's length is a runtime call even when it changes nothing
  // (~1.4% of a get's profile): the trail is empty unless a walk threw.
  if (walk.trail.length !== 0) walk.trail.length = 0;
  if (w) {
    walk.w = sharedWriter.busy ? new MsgpackWriter(1024) : sharedWriter;
    walk.w.busy = true;
    walk.w.reset();
  } else {
    walk.w = undefined;
  }
  return walk;
}

function endWalk(walk: Walk): void {
  if (walk.w) walk.w.busy = false;
  walk.w = undefined;
}

function visitBody(walk: Walk, body: unknown, what: string): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array || !isPlainObject(body)) {
    throw invalid(`${what} must be a plain object with a string "type", got ${describe(body)}`);
  }
  const type = (body as { type?: unknown }).type;
  if (typeof type !== 'string') throw invalid(`${what}.type must be a string, got ${describe(type)}`);
  walk.root = what;
  try {
    visitObject(walk, body as Record<string, unknown>, 1);
  } catch (err) {
    if (isStackOverflow(err)) throw invalid(`${what} is nested too deeply to walk`);
    throw err;
  }
}

function visit(walk: Walk, v: unknown, depth: number): void {
  const w = walk.w;
  switch (typeof v) {
    case 'string':
      w?.string(v);
      return;
    case 'number':
      w?.number(v);
      return;
    case 'boolean':
      w?.boolean(v);
      return;
    case 'object':
      if (v === null) {
        w?.nil();
        return;
      }
      if (v instanceof Uint8Array) {
        w?.binary(v);
        return;
      }
      if (depth > walk.l.maxDepth) throw invalid(`${walk.path()} is nested deeper than maxDepth (${walk.l.maxDepth})`);
      if (Array.isArray(v)) return visitArray(walk, v, depth);
      if (!isPlainObject(v)) throw invalid(`${walk.path()} cannot be sent over the wire: it is ${describe(v)}`);
      return visitObject(walk, v as Record<string, unknown>, depth);
    default:
      throw invalid(`${walk.path()} cannot be sent over the wire: it is ${describe(v)}`);
  }
}

function visitArray(walk: Walk, a: readonly unknown[], depth: number): void {
  const n = a.length;
  if (n > walk.l.maxCollectionLength) {
    throw invalid(`${walk.path()} has ${n} elements, over maxCollectionLength (${walk.l.maxCollectionLength})`);
  }
  walk.w?.arrayHeader(n);
  const trail = walk.trail;
  for (let i = 0; i < n; i++) {
    const item = a[i];
    if (item === undefined) throw invalid(`${walk.path()}[${i}] is undefined (arrays cannot hold undefined on the wire)`);
    trail.push(i);
    visit(walk, item, depth + 1);
    trail.pop();
  }
}

function visitObject(walk: Walk, o: Record<string, unknown>, depth: number): void {
  if (depth > walk.l.maxDepth) throw invalid(`${walk.path()} is nested deeper than maxDepth (${walk.l.maxDepth})`);
  const keys = Object.keys(o);
  if (keys.length > walk.l.maxCollectionLength) {
    throw invalid(`${walk.path()} has ${keys.length} keys, over maxCollectionLength (${walk.l.maxCollectionLength})`);
  }
  if (Object.getOwnPropertySymbols(o).length > 0) throw invalid(`${walk.path()} has symbol keys`);
  let count = 0;
  for (const k of keys) {
    if (k === '__proto__') throw invalid(`${walk.path()} has a "__proto__" key`);
    if (o[k] !== undefined) count++;
  }
  const w = walk.w;
  w?.mapHeader(count);
  const trail = walk.trail;
  for (const k of keys) {
    const v = o[k];
    // Undefined members are left out, as in JSON.
    if (v === undefined) continue;
    w?.string(k);
    trail.push(k);
    visit(walk, v, depth + 1);
    trail.pop();
  }
}

/**
 * Checks that `body` is a well-formed {@link WireMessage}: a plain object with
 * a string `type`, holding only null, booleans, numbers, strings, Uint8Array,
 * arrays and plain objects (no `__proto__` keys, no symbol keys, no
 * `undefined` in arrays), within the depth and collection limits. Hostile
 * nesting is stopped at `maxDepth`.
 *
 * @throws KvError `KV_INVALID_MESSAGE` naming the offending path.
 */
export function validateWireMessage(body: unknown, limits?: CodecLimits, what = 'body'): asserts body is WireMessage {
  const walk = beginWalk(false, resolveLimits(limits));
  try {
    visitBody(walk, body, what);
  } finally {
    endWalk(walk);
  }
}

function checkId(id: unknown): asserts id is number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw invalid(`frame id must be a non-negative safe integer, got ${typeof id === 'number' ? id : describe(id)}`);
  }
}

function checkHeaderString(v: unknown, what: string, nonEmpty: boolean): asserts v is string {
  if (typeof v !== 'string') throw invalid(`${what} must be a string, got ${describe(v)}`);
  if (nonEmpty && v.length === 0) throw invalid(`${what} must not be empty`);
}

/** Writes a header string; its UTF-8 length is checked once it is written. */
function writeHeaderString(w: MsgpackWriter, v: string, what: string, l: Required<CodecLimits>, cache?: StringBytesCache): void {
  const length = cache ? cache.write(w, v) : w.string(v);
  if (length > l.maxHeaderStringBytes) throw invalid(`${what} is longer than maxHeaderStringBytes (${l.maxHeaderStringBytes})`);
}

// ---- dedicated encoders for the hot messages ---------------------------------------------------
//
// The replica protocol's messages (`kv.read`, `kv.apply`, `kv.version`, their
// answers) are most of the traffic. Each has a fixed shape: the same keys in
// the same order, each holding one kind of value. A body with exactly that
// shape is written without the generic walk (no path trail, no dispatch per
// value), byte for byte what the walk writes; any other body, including one
// of these types with a missing, extra, reordered or undefined member, takes
// the walk. The wire format does not change.

/** What a member of a hot message holds. */
const enum Slot {
  String,
  Binary,
  BinaryOrNull,
  Boolean,
  Number,
  NumberOrNull,
  /**
   * A record or value: a binary ({@link Slot.Binary}) that stays a view of
   * the frame even in {@link decodeFrameIn}, whose other binaries are copied
   * out. Whoever takes these messages copies what it keeps (storage copies
   * what it stores, the value decoder what it gives the user; everything
   * else drops them with the request), so a copy here was a second one:
   * ~1 µs and 1 KB of fresh memory per 1 KB record on the receiving process.
   */
  Payload,
  /** {@link Slot.Payload} or null. */
  PayloadOrNull,
  /** An array of binaries, each as {@link Slot.Binary} (a batch's keys). */
  BinaryList,
  /** An array of binaries, each as {@link Slot.Payload} (a batch's records). */
  PayloadList,
  /** An array of binaries or nulls, each as {@link Slot.PayloadOrNull} (a batch's answers). */
  PayloadOrNullList,
  /** An empty array (a batch answer's `failures` when none failed; any other takes the generic path). */
  EmptyList,
}

/**
 * The members of a hot message after `type`, in the order its senders create
 * them, and how the decoder builds one from its values (`v[1]` is the first
 * member: `v[0]` stands for `type`). One object literal per type: its
 * objects share one shape, where adding decoded members one by one makes
 * each object walk the same chain of shapes again.
 */
type HotMake = (v: readonly unknown[]) => WireMessage;
const HOT_SHAPE_LIST: readonly (readonly [string, readonly (readonly [string, Slot])[], HotMake])[] = [
  ['kv.read', [['cluster', Slot.String], ['key', Slot.Binary]], (v) => ({ type: 'kv.read', cluster: v[1], key: v[2] }) as WireMessage],
  [
    'kv.apply',
    [['cluster', Slot.String], ['key', Slot.Binary], ['record', Slot.Payload]],
    (v) => ({ type: 'kv.apply', cluster: v[1], key: v[2], record: v[3] }) as WireMessage,
  ],
  [
    'kv.hint',
    [['cluster', Slot.String], ['key', Slot.Binary], ['record', Slot.Payload], ['target', Slot.String]],
    (v) => ({ type: 'kv.hint', cluster: v[1], key: v[2], record: v[3], target: v[4] }) as WireMessage,
  ],
  [
    'kv.version',
    [
      ['cluster', Slot.String],
      ['key', Slot.Binary],
      ['value', Slot.PayloadOrNull],
      ['tombstone', Slot.Boolean],
      ['overwrite', Slot.Boolean],
      ['context', Slot.BinaryOrNull],
      ['timestamp', Slot.NumberOrNull],
      ['expires', Slot.Number],
    ],
    (v) =>
      ({
        type: 'kv.version',
        cluster: v[1],
        key: v[2],
        value: v[3],
        tombstone: v[4],
        overwrite: v[5],
        context: v[6],
        timestamp: v[7],
        expires: v[8],
      }) as WireMessage,
  ],
  ['kv.applied', [], () => ({ type: 'kv.applied' })],
  ['kv.hinted', [], () => ({ type: 'kv.hinted' })],
  ['kv.record', [['record', Slot.PayloadOrNull]], (v) => ({ type: 'kv.record', record: v[1] }) as WireMessage],
  ['kv.versioned', [['record', Slot.Payload]], (v) => ({ type: 'kv.versioned', record: v[1] }) as WireMessage],
  [
    'kv.apply-batch',
    [['cluster', Slot.String], ['keys', Slot.BinaryList], ['records', Slot.PayloadList]],
    (v) => ({ type: 'kv.apply-batch', cluster: v[1], keys: v[2], records: v[3] }) as WireMessage,
  ],
  ['kv.applied-batch', [['failures', Slot.EmptyList]], (v) => ({ type: 'kv.applied-batch', failures: v[1] }) as WireMessage],
  [
    'kv.read-batch',
    [['cluster', Slot.String], ['keys', Slot.BinaryList]],
    (v) => ({ type: 'kv.read-batch', cluster: v[1], keys: v[2] }) as WireMessage,
  ],
  [
    'kv.records',
    [['records', Slot.PayloadOrNullList], ['failures', Slot.EmptyList]],
    (v) => ({ type: 'kv.records', records: v[1], failures: v[2] }) as WireMessage,
  ],
];

/** True for the slots that hold an array (one level deeper than the body). */
const isListSlot = (slot: Slot): boolean => slot >= Slot.BinaryList;

/** A hot message's members after `type`: their names and what each holds, as parallel arrays, and its constant bytes. */
interface HotShape {
  readonly names: readonly string[];
  readonly slots: readonly Slot[];
  /** The map header, `type` and its value, as written. */
  readonly head: Uint8Array;
  /** Each member's name, as written. */
  readonly keys: readonly Uint8Array[];
  readonly make: HotMake;
  /** A writer of its own (the most frequent types), set below; else the table-driven loop. */
  write?: HotWrite;
}

/**
 * Writes a hot body whose member names were checked: reads each member
 * once, and writes nothing and returns false if one is not of its kind.
 */
type HotWrite = (w: MsgpackWriter, o: Record<string, unknown>, own: boolean) => boolean;

/** No symbol keys on `o` (not looked for on a body the protocol marked as its own: see {@link ownBody}). */
const noSymbols = (o: object, own: boolean): boolean => own || Object.getOwnPropertySymbols(o).length === 0;

function msgpackOf(write: (w: MsgpackWriter) => void): Uint8Array {
  const w = new MsgpackWriter(64);
  write(w);
  return w.view().slice();
}

const HOT_SHAPES = new Map<string, HotShape>(
  HOT_SHAPE_LIST.map(([type, members, make]) => [
    type,
    {
      names: members.map((m) => m[0]),
      slots: members.map((m) => m[1]),
      head: msgpackOf((w) => {
        w.mapHeader(members.length + 1);
        w.string('type');
        w.string(type);
      }),
      keys: members.map((m) => msgpackOf((w) => w.string(m[0]))),
      make,
    },
  ]),
);

/**
 * Strings that repeat in every frame (the sender's address, the cluster
 * name) are written from their bytes of an earlier time. A few entries, not
 * one: the nodes of an in-process network share this module, so `from`
 * takes as many values as there are nodes (one entry missed on almost every
 * frame there: a copy of the bytes per frame).
 */
class StringBytesCache {
  static readonly SLOTS = 8;
  readonly #strings: (string | undefined)[] = new Array<string | undefined>(StringBytesCache.SLOTS).fill(undefined);
  readonly #bytes: Uint8Array[] = new Array<Uint8Array>(StringBytesCache.SLOTS).fill(new Uint8Array(0));
  readonly #lengths: number[] = new Array<number>(StringBytesCache.SLOTS).fill(0);
  /** The slot that matched last (tried first), and the next one to replace. */
  #last = 0;
  #next = 0;

  /** Writes `s` as {@link MsgpackWriter.string} does; returns its UTF-8 length. */
  write(w: MsgpackWriter, s: string): number {
    const strings = this.#strings;
    if (strings[this.#last] === s) {
      w.raw(this.#bytes[this.#last]!);
      return this.#lengths[this.#last]!;
    }
    for (let i = 0; i < strings.length; i++) {
      if (strings[i] === s) {
        this.#last = i;
        w.raw(this.#bytes[i]!);
        return this.#lengths[i]!;
      }
    }
    const start = w.pos;
    const length = w.string(s);
    // Only short strings: a long one would be kept alive and copied for nothing.
    if (w.pos - start <= 64) {
      const i = this.#next;
      this.#next = (i + 1) % strings.length;
      strings[i] = s;
      this.#bytes[i] = w.view().slice(start);
      this.#lengths[i] = length;
      this.#last = i;
    }
    return length;
  }
}

const fromCache = new StringBytesCache();
const clusterCache = new StringBytesCache();

/** Most members of a hot message (`type` included). */
const HOT_MAX_KEYS = 9;
/** The values of the hot message being written (read once each, before anything is written). */
const hotValues: unknown[] = new Array<unknown>(HOT_MAX_KEYS).fill(null);
/**
 * The body {@link ownBody} marked last, until the next body is written.
 */
let ownBodyMark: object | undefined;

/**
 * @internal Marks `body`, a hot message quorumkv's replica protocol has just
 * built as a plain literal (its shape's members in order, no symbol keys),
 * and returns it. If it is the next body the encoder writes, the encoder
 * does not look for symbol keys on it (`Object.getOwnPropertySymbols` costs
 * ~6% of a five-node quorum put), and for the four types with a writer of
 * their own (`kv.read`, `kv.apply`, `kv.record`, `kv.versioned`) does not
 * list its members' names either (`Object.keys`: an array per frame, ~60 ns
 * of a `kv.apply` frame's ~290): it writes the shape's members, so a member
 * the protocol did not put there is not sent. Still checked: its prototype,
 * and each member's kind (for the other types also the members and their
 * order). Only code holding the body could change it: the protocol does
 * not, and a transport that wraps ours and changes the messages it passes
 * on could change anything in them.
 */
export function ownBody<T extends WireMessage>(body: T): T {
  ownBodyMark = body;
  return body;
}

/**
 * Frozen hot bodies without members, each checked once (exact shape, no
 * symbol keys) and written from its shape's head since: a frozen object
 * can gain no member. A few, kept for the process's life (each is a module's constant).
 */
const MAX_FROZEN_BODIES = 8;
const frozenBodies: object[] = [];
const frozenHeads: Uint8Array[] = [];

/** A hot shape's head followed by its first member's name, and its other members' names: as written. */
function constantsOf(type: string): Uint8Array[] {
  const shape = HOT_SHAPES.get(type)!;
  const first = new Uint8Array(shape.head.length + shape.keys[0]!.length);
  first.set(shape.head, 0);
  first.set(shape.keys[0]!, shape.head.length);
  return [first, ...shape.keys.slice(1)];
}

// Writers of their own for the messages of every read and write: each
// member read by name (a load specialised to the literal's shape, where the
// table-driven loop's `o[name]` serves every shape), the constant bytes in
// as few pieces as possible. Byte for byte what the loop writes.
{
  const [readHead, readKey] = constantsOf('kv.read');
  HOT_SHAPES.get('kv.read')!.write = (w, o, own) => {
    const cluster = o['cluster'];
    const key = o['key'];
    if (typeof cluster !== 'string' || !(key instanceof Uint8Array) || !noSymbols(o, own)) return false;
    w.raw(readHead!);
    clusterCache.write(w, cluster);
    w.raw(readKey!);
    w.binary(key);
    return true;
  };
  const [applyHead, applyKey, applyRecord] = constantsOf('kv.apply');
  HOT_SHAPES.get('kv.apply')!.write = (w, o, own) => {
    const cluster = o['cluster'];
    const key = o['key'];
    const record = o['record'];
    if (typeof cluster !== 'string' || !(key instanceof Uint8Array) || !(record instanceof Uint8Array) || !noSymbols(o, own)) return false;
    w.raw(applyHead!);
    clusterCache.write(w, cluster);
    w.raw(applyKey!);
    w.binary(key);
    w.raw(applyRecord!);
    w.binary(record);
    return true;
  };
  const [recordHead] = constantsOf('kv.record');
  HOT_SHAPES.get('kv.record')!.write = (w, o, own) => {
    const record = o['record'];
    if (!(record === null || record instanceof Uint8Array) || !noSymbols(o, own)) return false;
    w.raw(recordHead!);
    if (record === null) w.nil();
    else w.binary(record);
    return true;
  };
  const [versionedHead] = constantsOf('kv.versioned');
  HOT_SHAPES.get('kv.versioned')!.write = (w, o, own) => {
    const record = o['record'];
    if (!(record instanceof Uint8Array) || !noSymbols(o, own)) return false;
    w.raw(versionedHead!);
    w.binary(record);
    return true;
  };
}

/** True while {@link hotValues} is in use (a getter of a body may encode another message). */
let hotBusy = false;

function fitsSlot(v: unknown, slot: Slot): boolean {
  switch (slot) {
    case Slot.String:
      return typeof v === 'string';
    case Slot.Binary:
    case Slot.Payload:
      return v instanceof Uint8Array;
    case Slot.BinaryOrNull:
    case Slot.PayloadOrNull:
      return v === null || v instanceof Uint8Array;
    case Slot.Boolean:
      return typeof v === 'boolean';
    case Slot.Number:
      return typeof v === 'number';
    case Slot.NumberOrNull:
      return v === null || typeof v === 'number';
    case Slot.BinaryList:
    case Slot.PayloadList:
      return isListOf(v, false);
    case Slot.PayloadOrNullList:
      return isListOf(v, true);
    case Slot.EmptyList:
      return Array.isArray(v) && v.length === 0;
  }
}

/** An array (as the generic walk takes it: index by index) of binaries, or of binaries and nulls. */
function isListOf(v: unknown, nulls: boolean): boolean {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) {
    const e: unknown = v[i];
    if (!(e instanceof Uint8Array || (nulls && e === null))) return false;
  }
  return true;
}

/**
 * Writes `body` if it has the exact shape of a hot message (see above) and
 * returns true; otherwise writes nothing and returns false.
 */
function writeHotBody(w: MsgpackWriter, body: unknown, l: Required<CodecLimits>): boolean {
  // A mark holds for the next body written only.
  const own = body === ownBodyMark;
  ownBodyMark = undefined;
  if (typeof body !== 'object' || body === null) return false;
  // A frozen answer without members (`kv.applied`, `kv.hinted`: one object
  // each, answered for every write) checked once can never change: its
  // head is written without checking it again.
  for (let i = 0; i < frozenBodies.length; i++) {
    if (frozenBodies[i] === body && l.maxDepth >= 1 && l.maxCollectionLength >= 1) {
      w.raw(frozenHeads[i]!);
      return true;
    }
  }
  const type = (body as { type?: unknown }).type;
  if (typeof type !== 'string') return false;
  const shape = HOT_SHAPES.get(type);
  if (shape === undefined) return false;
  const names = shape.names;
  const slots = shape.slots;
  const n = names.length + 1;
  if (l.maxDepth < 1 || l.maxCollectionLength < n) return false;
  if (Object.getPrototypeOf(body) !== Object.prototype) return false;
  const write = shape.write;
  // A body the protocol marked as its own is a literal it built with the
  // shape's members, in order: its members' names are not listed again (an
  // array per frame); its writer still reads each member and checks its kind.
  if (own && write !== undefined) return write(w, body as Record<string, unknown>, true);
  const keys = Object.keys(body);
  if (keys.length !== n || keys[0] !== 'type') return false;
  const o = body as Record<string, unknown>;
  if (write !== undefined) {
    for (let i = 1; i < n; i++) if (keys[i] !== names[i - 1]) return false;
    return write(w, o, own);
  }
  const nested = hotBusy;
  const values = nested ? new Array<unknown>(n) : hotValues;
  hotBusy = true;
  try {
    for (let i = 1; i < n; i++) {
      const name = names[i - 1]!;
      if (keys[i] !== name) return false;
      const v = o[name];
      const slot = slots[i - 1]!;
      if (!fitsSlot(v, slot)) return false;
      // A list is one level deeper, and counts against maxCollectionLength: past them the generic walk refuses it.
      if (isListSlot(slot) && (l.maxDepth < 2 || (v as unknown[]).length > l.maxCollectionLength)) return false;
      values[i] = v;
    }
    if (!own && Object.getOwnPropertySymbols(body).length > 0) return false;
    // (`type` a data member: a getter could answer differently next time.)
    const frozen = n === 1 && frozenBodies.length < MAX_FROZEN_BODIES && Object.isFrozen(body);
    if (frozen && 'value' in Object.getOwnPropertyDescriptor(body, 'type')!) {
      frozenBodies.push(body);
      frozenHeads.push(shape.head);
    }
    w.raw(shape.head);
    const keyBytes = shape.keys;
    for (let i = 1; i < n; i++) {
      w.raw(keyBytes[i - 1]!);
      const v = values[i];
      if (v === null) w.nil();
      else if (typeof v === 'string') {
        if (i === 1) clusterCache.write(w, v);
        else w.string(v);
      }
      else if (typeof v === 'number') w.number(v);
      else if (typeof v === 'boolean') w.boolean(v);
      else if (Array.isArray(v)) writeList(w, v);
      else w.binary(v as Uint8Array);
    }
    return true;
  } finally {
    if (!nested) {
      hotBusy = false;
      // Keep no reference to the caller's values.
      for (let i = 1; i < n; i++) hotValues[i] = null;
    }
  }
}

/** Writes a list {@link fitsSlot} took (an element that changed since is refused, as the generic walk would). */
function writeList(w: MsgpackWriter, list: readonly unknown[]): void {
  const n = list.length;
  w.arrayHeader(n);
  for (let i = 0; i < n; i++) {
    const e = list[i];
    if (e === null) w.nil();
    else if (e instanceof Uint8Array) w.binary(e);
    else throw invalid(`a list of binaries changed while it was written (element ${i} is ${describe(e)})`);
  }
}

/** Validates `frame` and writes it into the walk's writer. */
function writeFrame(walk: Walk, frame: Frame, l: Required<CodecLimits>): void {
  const w = walk.w!;
  switch (frame.kind) {
    case 'req':
      checkId(frame.id);
      checkHeaderString(frame.from, 'req frame "from"', true);
      w.u8(0x94);
      w.u8(KIND_REQ);
      w.number(frame.id);
      writeHeaderString(w, frame.from, 'req frame "from"', l, fromCache);
      if (!writeHotBody(w, frame.body, l)) visitBody(walk, frame.body, 'request body');
      return;
    case 'res':
      checkId(frame.id);
      w.u8(0x93);
      w.u8(KIND_RES);
      w.number(frame.id);
      if (!writeHotBody(w, frame.body, l)) visitBody(walk, frame.body, 'response body');
      return;
    case 'err':
      checkId(frame.id);
      if (!isErrorCode(frame.code)) throw invalid(`err frame code must be a known error code, got ${String(frame.code)}`);
      checkHeaderString(frame.message, 'err frame message', false);
      w.u8(0x94);
      w.u8(KIND_ERR);
      w.number(frame.id);
      w.string(frame.code);
      writeHeaderString(w, frame.message, 'err frame message', l);
      return;
    default:
      throw invalid(`unknown frame kind ${String((frame as { kind?: unknown }).kind)}`);
  }
}

/** Encodes `frame` into the shared writer and runs `then` on the bytes (a view, valid until the next encoding). */
function withEncoded<T>(frame: Frame, l: Required<CodecLimits>, then: (bytes: Uint8Array) => T): T {
  const walk = beginWalk(true, l);
  try {
    writeFrame(walk, frame, l);
    const size = walk.w!.pos;
    if (size > l.maxFrameBytes) throw invalid(`${frame.kind} frame is ${size} bytes, over maxFrameBytes (${l.maxFrameBytes})`);
    return then(walk.w!.view());
  } finally {
    endWalk(walk);
  }
}

/**
 * @internal Encodes `frame` as {@link encodeFrame} does and hands the bytes to
 * `then` as a view into a shared buffer, valid during the call only (copy
 * what you keep): for a transport that copies them straight into its own
 * output buffer. Returns what `then` returns.
 *
 * @throws KvError `KV_INVALID_MESSAGE` as {@link encodeFrame} does (`then` is not called).
 */
export function encodeFrameWith<T>(frame: Frame, limits: CodecLimits | undefined, then: (bytes: Uint8Array) => T): T {
  return withEncoded(frame, resolveLimits(limits), then);
}

/**
 * Encodes a frame to msgpack bytes. The body is validated as it is written
 * (see {@link validateWireMessage}); members whose value is `undefined` are
 * left out, `-0` becomes `0`. Returns fresh bytes the caller owns (up to
 * 4 KiB they are a view into a shared slab, so go through the view, not its
 * `.buffer`).
 *
 * @throws KvError `KV_INVALID_MESSAGE` if the frame cannot be sent (a body
 *   holding functions, class instances, `Date`s, `Map`s, typed arrays other
 *   than Uint8Array, cycles or too deep nesting; a frame over `maxFrameBytes`).
 */
export function encodeFrame(frame: Frame, limits?: CodecLimits): Uint8Array {
  return withEncoded(frame, resolveLimits(limits), copyBytes);
}

// ---- decoding -----------------------------------------------------------------------------------

/** What a msgpack type byte holds, for error messages. */
function describeTag(h: number): string {
  if (h <= 0x7f || h >= 0xe0 || (h >= 0xca && h <= 0xd3)) return 'number';
  if (h <= 0x8f || h === 0xde || h === 0xdf) return 'an object';
  if (h <= 0x9f || h === 0xdc || h === 0xdd) return 'an array';
  if (h <= 0xbf || (h >= 0xd9 && h <= 0xdb)) return 'string';
  if (h === 0xc0) return 'null';
  if (h === 0xc2 || h === 0xc3) return 'boolean';
  if (h >= 0xc4 && h <= 0xc6) return 'an instance of Uint8Array';
  return `msgpack type 0x${h.toString(16)}`;
}

/**
 * Short strings (field names, message types, cluster names, addresses) repeat
 * in every frame: they are looked up by their bytes instead of decoded anew.
 */
const frameStrings = new StringCache(1024, 24);

function readString(r: MsgpackReader, length: number): string {
  return frameStrings.read(r, length);
}

/**
 * True while decoding straight from the bytes a transport received
 * ({@link decodeFrameIn}): binaries are copied out instead of viewed
 * (payloads of the hot messages excepted, see {@link Slot.Payload}).
 */
let copyBinaries = false;

function readValue(r: MsgpackReader, l: Required<CodecLimits>, depth: number): WireValue {
  const h = r.byte();
  if (h < 0x80) return h;
  if (h >= 0xe0) return h - 0x100;
  if (h <= 0x8f) return readMap(r, l, depth, h - 0x80);
  if (h <= 0x9f) return readArray(r, l, depth, h - 0x90);
  if (h <= 0xbf) return readString(r, h - 0xa0);
  switch (h) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
    case 0xc5:
    case 0xc6: {
      // A view into the decoder's private copy of the frame, or a copy: never aliases the caller's bytes.
      const v = r.view(r.binaryLength(h));
      return copyBinaries ? copyBytes(v) : v;
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
      return readString(r, r.stringLength(h));
    case 0xdc:
    case 0xdd:
      return readArray(r, l, depth, r.arrayLength(h));
    case 0xde:
    case 0xdf:
      return readMap(r, l, depth, r.mapLength(h));
    default: {
      const n = r.number(h);
      if (n === undefined) throw invalid(`frame holds an unsupported msgpack type 0x${h.toString(16)}`);
      return n;
    }
  }
}

function checkCollection(r: MsgpackReader, l: Required<CodecLimits>, depth: number, slots: number, count: number): void {
  if (depth > l.maxDepth) throw invalid(`frame is nested deeper than maxDepth (${l.maxDepth})`);
  if (count > l.maxCollectionLength) {
    throw invalid(`frame holds a collection of ${count} items, over maxCollectionLength (${l.maxCollectionLength})`);
  }
  // Every item takes at least one byte: a length bomb is refused before anything is built.
  if (slots > r.left) throw invalid('frame declares more items than it holds');
}

function readArray(r: MsgpackReader, l: Required<CodecLimits>, depth: number, n: number): WireValue[] {
  checkCollection(r, l, depth, n, n);
  const out: WireValue[] = [];
  for (let i = 0; i < n; i++) out.push(readValue(r, l, depth + 1));
  return out;
}

function readMap(r: MsgpackReader, l: Required<CodecLimits>, depth: number, n: number): Record<string, WireValue> {
  checkCollection(r, l, depth, n * 2, n);
  const out: Record<string, WireValue> = {};
  for (let i = 0; i < n; i++) {
    const length = r.stringLength(r.byte());
    if (length < 0) throw invalid('frame holds a map key that is not a string');
    const key = readString(r, length);
    if (key === '__proto__') throw invalid('frame holds a "__proto__" key');
    out[key] = readValue(r, l, depth + 1);
  }
  return out;
}

/** `type` as a map key, as written. */
const TYPE_KEY = msgpackOf((w) => w.string('type'));
/** The values of the hot message being read (`[0]` unused). Decoding never re-enters. */
const hotRead: unknown[] = new Array<unknown>(HOT_MAX_KEYS).fill(null);

/** True if `bytes[at, ...)` starts with `expected`. */
function startsWith(bytes: Uint8Array, at: number, end: number, expected: Uint8Array): boolean {
  const n = expected.length;
  if (at + n > end) return false;
  for (let i = 0; i < n; i++) if (bytes[at + i] !== expected[i]) return false;
  return true;
}

/**
 * A list member of a hot message (its type byte `h` read), as the generic
 * reader would give it (binaries of {@link Slot.PayloadList} and
 * {@link Slot.PayloadOrNullList} stay views), or {@link NOT_HOT} for anything
 * else, limits included: the generic reader then gives the error.
 */
function readHotList(r: MsgpackReader, slot: Slot, h: number, l: Required<CodecLimits>): unknown {
  const n = r.arrayLength(h);
  if (n < 0 || l.maxDepth < 2 || n > l.maxCollectionLength || n > r.left) return NOT_HOT;
  if (slot === Slot.EmptyList) return n === 0 ? [] : NOT_HOT;
  const copy = slot === Slot.BinaryList && copyBinaries;
  const nulls = slot === Slot.PayloadOrNullList;
  const out: (Uint8Array | null)[] = [];
  for (let i = 0; i < n; i++) {
    const e = r.byte();
    if (e === 0xc0 && nulls) {
      out.push(null);
      continue;
    }
    const length = r.binaryLength(e);
    if (length < 0) return NOT_HOT;
    const v = r.view(length);
    out.push(copy ? copyBytes(v) : v);
  }
  return out;
}

/** One member of a hot message, as the generic reader would give it, or {@link NOT_HOT}. */
function readHotValue(r: MsgpackReader, slot: Slot, l: Required<CodecLimits>): unknown {
  const h = r.byte();
  if (isListSlot(slot)) return readHotList(r, slot, h, l);
  if (h === 0xc0 && (slot === Slot.BinaryOrNull || slot === Slot.PayloadOrNull || slot === Slot.NumberOrNull)) return null;
  switch (slot) {
    case Slot.String: {
      const length = r.stringLength(h);
      return length < 0 ? NOT_HOT : readString(r, length);
    }
    case Slot.Binary:
    case Slot.BinaryOrNull: {
      const length = r.binaryLength(h);
      if (length < 0) return NOT_HOT;
      const v = r.view(length);
      return copyBinaries ? copyBytes(v) : v;
    }
    case Slot.Payload:
    case Slot.PayloadOrNull: {
      const length = r.binaryLength(h);
      return length < 0 ? NOT_HOT : r.view(length);
    }
    case Slot.Boolean:
      return h === 0xc3 ? true : h === 0xc2 ? false : NOT_HOT;
    case Slot.Number:
    case Slot.NumberOrNull:
      return r.number(h) ?? NOT_HOT;
  }
}

const NOT_HOT: unique symbol = Symbol('not a hot message');

/**
 * The body of `n` members at `r` if it has the exact shape of a hot message
 * (see the encoders above), built as one object literal; otherwise reads
 * nothing and returns undefined, and the generic reader takes it (and gives
 * any error). What it returns is what the generic reader returns: the same
 * members, in the same order, with the same values.
 */
function readHotBody(r: MsgpackReader, l: Required<CodecLimits>, n: number): WireMessage | undefined {
  // What the generic reader checks first, and refuses: it gives the error.
  if (n > HOT_MAX_KEYS || n === 0 || l.maxDepth < 1 || l.maxCollectionLength < n || n * 2 > r.left) return undefined;
  const shape = hotShapeAt(r.bytes, r.pos - 1, r.end);
  if (shape === undefined) return undefined;
  const start = r.pos;
  const values = hotRead;
  try {
    r.pos += shape.head.length - 1;
    const keys = shape.keys;
    const slots = shape.slots;
    for (let i = 1; i < n; i++) {
      const key = keys[i - 1]!;
      if (!startsWith(r.bytes, r.pos, r.end, key)) return (r.pos = start), undefined;
      r.pos += key.length;
      const v = readHotValue(r, slots[i - 1]!, l);
      if (v === NOT_HOT) return (r.pos = start), undefined;
      values[i] = v;
    }
    return shape.make(values);
  } catch (err) {
    // Truncated: the generic reader says so, at the same byte.
    if (err instanceof MsgpackFormatError) return (r.pos = start), undefined;
    throw err;
  } finally {
    for (let i = 1; i < n; i++) values[i] = null;
  }
}

/**
 * The hot shapes by their type's length and fourth character (`kv.r`ead,
 * `kv.a`pply, ...: unique among them), to find a body's shape without
 * decoding or hashing its type.
 */
const HOT_BY_TYPE = new Map<number, HotShape>(
  [...HOT_SHAPES].map(([type, shape]) => {
    if (type.length > 31 || type.length < 4) throw new Error(`hot message type ${type} must be 4 to 31 characters`);
    return [type.length * 256 + type.charCodeAt(3), shape];
  }),
);
if (HOT_BY_TYPE.size !== HOT_SHAPES.size) throw new Error('hot message types must differ in length or fourth character');

/**
 * The hot shape whose head (map header, `type` and its value) `bytes`
 * hold at `at`, or undefined.
 */
function hotShapeAt(bytes: Uint8Array, at: number, end: number): HotShape | undefined {
  // map header, then `type` as a key (5 bytes), then the type's fixstr header and its characters
  const typeAt = at + 1 + TYPE_KEY.length;
  if (typeAt + 4 >= end) return undefined;
  const header = bytes[typeAt]!;
  if (header < 0xa4 || header > 0xbf) return undefined;
  const shape = HOT_BY_TYPE.get((header - 0xa0) * 256 + bytes[typeAt + 4]!);
  return shape !== undefined && startsWith(bytes, at, end, shape.head) ? shape : undefined;
}

function readBody(r: MsgpackReader, l: Required<CodecLimits>, what: string): WireMessage {
  const h = r.byte();
  const n = r.mapLength(h);
  if (n < 0) throw invalid(`${what} must be a plain object with a string "type", got ${describeTag(h)}`);
  const hot = readHotBody(r, l, n);
  if (hot !== undefined) return hot;
  const body = readMap(r, l, 1, n);
  const type: unknown = body['type'];
  if (typeof type !== 'string') throw invalid(`${what}.type must be a string, got ${describe(type)}`);
  return body as WireMessage;
}

function readId(r: MsgpackReader): number {
  const h = r.byte();
  const id = r.number(h);
  if (id === undefined) throw invalid(`frame id must be a non-negative safe integer, got ${describeTag(h)}`);
  checkId(id);
  return id;
}

function readHeaderString(r: MsgpackReader, what: string, l: Required<CodecLimits>, nonEmpty: boolean): string {
  const h = r.byte();
  const length = r.stringLength(h);
  if (length < 0) throw invalid(`${what} must be a string, got ${describeTag(h)}`);
  if (length > l.maxHeaderStringBytes) throw invalid(`${what} is longer than maxHeaderStringBytes (${l.maxHeaderStringBytes})`);
  const s = readString(r, length);
  if (nonEmpty && s.length === 0) throw invalid(`${what} must not be empty`);
  return s;
}

/** Reads one frame from `bytes[start, end)`, bytes nobody else will touch unless {@link copyBinaries} is set (binaries of the result are views into them). */
function readFrame(bytes: Uint8Array, l: Required<CodecLimits>, start = 0, end = bytes.length): Frame {
  const r = new MsgpackReader(bytes, start, end);
  let frame: Frame;
  try {
    const h = r.byte();
    const fields = r.arrayLength(h);
    if (fields < 0) throw invalid(`frame must be an array, got ${describeTag(h)}`);
    if (fields === 0) throw invalid('unknown frame kind undefined');
    const k = r.byte();
    const kind = r.number(k);
    switch (kind) {
      case KIND_REQ: {
        if (fields !== 4) throw invalid(`req frame must have 4 fields, got ${fields}`);
        const id = readId(r);
        const from = readHeaderString(r, 'req frame "from"', l, true);
        frame = { kind: 'req', id, from, body: readBody(r, l, 'request body') };
        break;
      }
      case KIND_RES: {
        if (fields !== 3) throw invalid(`res frame must have 3 fields, got ${fields}`);
        const id = readId(r);
        frame = { kind: 'res', id, body: readBody(r, l, 'response body') };
        break;
      }
      case KIND_ERR: {
        if (fields !== 4) throw invalid(`err frame must have 4 fields, got ${fields}`);
        const id = readId(r);
        const code = readHeaderString(r, 'err frame code', l, true);
        const message = readHeaderString(r, 'err frame message', l, false);
        frame = isErrorCode(code)
          ? { kind: 'err', id, code, message }
          : { kind: 'err', id, code: ErrorCodes.INVALID_MESSAGE, message: `peer answered with unknown error code ${code}: ${message}` };
        break;
      }
      default:
        throw invalid(`unknown frame kind ${kind === undefined ? describeTag(k) : kind}`);
    }
  } catch (err) {
    if (err instanceof KvError) throw err;
    if (err instanceof MsgpackFormatError) throw invalid('frame is truncated', err);
    if (isStackOverflow(err)) throw invalid('frame is nested too deeply to decode', err);
    throw invalid(`frame is not valid msgpack: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (r.left !== 0) throw invalid(`frame has ${r.left} extra bytes after its end`);
  return frame;
}

/**
 * Decodes and validates one frame. Never trusts the input: every failure
 * (bad msgpack, truncation, trailing bytes, wrong shapes, unknown kinds, a
 * body that is not an object with a string `type`, sizes over the limits,
 * `__proto__` keys, extension types) throws a `KvError` with code
 * `KV_INVALID_MESSAGE`; nothing else is thrown. Collections are checked
 * against the bytes left before anything is built, and nesting against
 * `maxDepth`, so length and nesting bombs cost nothing.
 *
 * An `err` frame whose code is not one of quorumkv's codes (a peer running a
 * newer version) decodes with code `KV_INVALID_MESSAGE` and a message naming
 * the original code, so the pending request still fails promptly.
 *
 * Decoded objects are plain objects (`Object.prototype`) holding own
 * properties only; binary fields are copies, independent of `bytes`.
 */
export function decodeFrame(bytes: Uint8Array, limits?: CodecLimits): Frame {
  const l = resolveLimits(limits);
  if (!(bytes instanceof Uint8Array)) throw invalid(`frame must be a Uint8Array, got ${describe(bytes)}`);
  if (bytes.byteLength === 0) throw invalid('frame is empty');
  if (bytes.byteLength > l.maxFrameBytes) {
    throw invalid(`frame is ${bytes.byteLength} bytes, over maxFrameBytes (${l.maxFrameBytes})`);
  }
  // One copy, so decoded binaries never alias the caller's buffer.
  return readFrame(copyBytes(bytes), l);
}

/**
 * @internal {@link decodeFrame} of `bytes[start, end)` without copying the
 * frame first: for a transport decoding straight from what the socket
 * delivered. Each binary of the result is copied out, except the records
 * and values of the data path's messages (`kv.apply`, `kv.hint` and
 * `kv.versioned` records, `kv.record`'s, `kv.version`'s value), which are
 * views of `bytes`: the caller must never write to `bytes` again (a socket
 * delivers each read in a buffer of its own; `TcpTransport` copies a frame
 * that spans reads into one of its own). Dropping `bytes` is fine: a view
 * keeps its buffer alive, for as long as the request that carries it.
 *
 * @throws KvError `KV_INVALID_MESSAGE` as {@link decodeFrame} does.
 */
export function decodeFrameIn(bytes: Uint8Array, start: number, end: number, limits?: CodecLimits): Frame {
  const l = resolveLimits(limits);
  const size = end - start;
  if (size <= 0) throw invalid('frame is empty');
  if (size > l.maxFrameBytes) throw invalid(`frame is ${size} bytes, over maxFrameBytes (${l.maxFrameBytes})`);
  // Payload views are plain Uint8Arrays, as every other decoded binary, whatever the input is.
  const plain = Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  copyBinaries = true;
  try {
    return readFrame(plain, l, start, end);
  } finally {
    copyBinaries = false;
  }
}

/**
 * @internal What the receiver of `frame` gets: `decodeFrame(encodeFrame(frame, limits), limits)`
 * with one copy of the bytes instead of two (for in-process transports), and
 * the frame's encoded size.
 *
 * @throws KvError `KV_INVALID_MESSAGE` as {@link encodeFrame} does.
 */
export function passFrame(frame: Frame, limits?: CodecLimits): { readonly frame: Frame; readonly bytes: number } {
  const l = resolveLimits(limits);
  return withEncoded(frame, l, (bytes) => ({ frame: readFrame(copyBytes(bytes), l), bytes: bytes.byteLength }));
}
