import { Decoder, Encoder } from '@msgpack/msgpack';
import { ErrorCodes, KvError, isErrorCode, type ErrorCode } from '../errors/index.js';
import type { WireMessage } from './types.js';

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

const resolved = new WeakSet<CodecLimits>([DEFAULT_CODEC_LIMITS]);

function resolveLimits(limits: CodecLimits | undefined): Required<CodecLimits> {
  if (!limits) return DEFAULT_CODEC_LIMITS;
  // Already complete (the codec passes its resolved limits down): no copy per call.
  if (resolved.has(limits)) return limits as Required<CodecLimits>;
  const full = { ...DEFAULT_CODEC_LIMITS, ...stripUndefined(limits) };
  resolved.add(full);
  return full;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** Shared encoder: undefined object members are left out (as in JSON). */
const encoder = new Encoder({ ignoreUndefined: true, maxDepth: 1024 });

const decoderCache = new Map<string, Decoder>();
let defaultDecoder: Decoder | undefined;

function buildDecoder(l: Required<CodecLimits>): Decoder {
  return new Decoder({
    maxStrLength: l.maxFrameBytes,
    maxBinLength: l.maxFrameBytes,
    maxArrayLength: l.maxCollectionLength,
    maxMapLength: l.maxCollectionLength,
    maxExtLength: 0,
  });
}

function decoderFor(l: Required<CodecLimits>): Decoder {
  if (l === DEFAULT_CODEC_LIMITS) return (defaultDecoder ??= buildDecoder(l));
  const key = `${l.maxFrameBytes}/${l.maxCollectionLength}`;
  let d = decoderCache.get(key);
  if (!d) {
    d = buildDecoder(l);
    if (decoderCache.size > 16) decoderCache.clear();
    decoderCache.set(key, d);
  }
  return d;
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

/**
 * Checks that `body` is a well-formed {@link WireMessage}: a plain object with
 * a string `type`, holding only null, booleans, numbers, strings, Uint8Array,
 * arrays and plain objects (no `__proto__` keys), within the depth and
 * collection limits. Iterative, so hostile nesting cannot overflow the stack.
 *
 * @throws KvError `KV_INVALID_MESSAGE` naming the offending path.
 */
export function validateWireMessage(body: unknown, limits?: CodecLimits, what = 'body'): asserts body is WireMessage {
  const l = resolveLimits(limits);
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array || !isPlainObject(body)) {
    throw invalid(`${what} must be a plain object with a string "type", got ${describe(body)}`);
  }
  if (typeof (body as { type?: unknown }).type !== 'string') {
    throw invalid(`${what}.type must be a string, got ${describe((body as { type?: unknown }).type)}`);
  }
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: body, path: what, depth: 1 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (v === null || v === undefined || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') continue;
    if (typeof v !== 'object') throw invalid(`${path} cannot be sent over the wire: it is ${describe(v)}`);
    if (v instanceof Uint8Array) continue;
    if (depth > l.maxDepth) throw invalid(`${path} is nested deeper than maxDepth (${l.maxDepth})`);
    if (Array.isArray(v)) {
      if (v.length > l.maxCollectionLength) {
        throw invalid(`${path} has ${v.length} elements, over maxCollectionLength (${l.maxCollectionLength})`);
      }
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (item === undefined) throw invalid(`${path}[${i}] is undefined (arrays cannot hold undefined on the wire)`);
        stack.push({ v: item, path: `${path}[${i}]`, depth: depth + 1 });
      }
      continue;
    }
    if (!isPlainObject(v)) throw invalid(`${path} cannot be sent over the wire: it is ${describe(v)}`);
    const keys = Object.keys(v);
    if (keys.length > l.maxCollectionLength) {
      throw invalid(`${path} has ${keys.length} keys, over maxCollectionLength (${l.maxCollectionLength})`);
    }
    if (Object.getOwnPropertySymbols(v).length > 0) throw invalid(`${path} has symbol keys`);
    for (const k of keys) {
      if (k === '__proto__') throw invalid(`${path} has a "__proto__" key`);
      stack.push({ v: (v as Record<string, unknown>)[k], path: `${path}.${k}`, depth: depth + 1 });
    }
  }
}

function checkId(id: unknown): asserts id is number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw invalid(`frame id must be a non-negative safe integer, got ${typeof id === 'number' ? id : describe(id)}`);
  }
}

function checkHeaderString(v: unknown, what: string, l: Required<CodecLimits>, nonEmpty: boolean): asserts v is string {
  if (typeof v !== 'string') throw invalid(`${what} must be a string, got ${describe(v)}`);
  if (nonEmpty && v.length === 0) throw invalid(`${what} must not be empty`);
  if (Buffer.byteLength(v, 'utf8') > l.maxHeaderStringBytes) {
    throw invalid(`${what} is longer than maxHeaderStringBytes (${l.maxHeaderStringBytes})`);
  }
}

/**
 * Encodes a frame to msgpack bytes. The body is validated first (see
 * {@link validateWireMessage}); members whose value is `undefined` are left
 * out, `-0` becomes `0`. Returns a fresh buffer the caller owns.
 *
 * @throws KvError `KV_INVALID_MESSAGE` if the frame cannot be sent (a body
 *   holding functions, class instances, `Date`s, `Map`s, typed arrays other
 *   than Uint8Array, cycles or too deep nesting; a frame over `maxFrameBytes`).
 */
export function encodeFrame(frame: Frame, limits?: CodecLimits): Uint8Array {
  const l = resolveLimits(limits);
  let tuple: unknown[];
  switch (frame.kind) {
    case 'req':
      checkId(frame.id);
      checkHeaderString(frame.from, 'req frame "from"', l, true);
      validateWireMessage(frame.body, l, 'request body');
      tuple = [KIND_REQ, frame.id, frame.from, frame.body];
      break;
    case 'res':
      checkId(frame.id);
      validateWireMessage(frame.body, l, 'response body');
      tuple = [KIND_RES, frame.id, frame.body];
      break;
    case 'err':
      checkId(frame.id);
      if (!isErrorCode(frame.code)) throw invalid(`err frame code must be a known error code, got ${String(frame.code)}`);
      checkHeaderString(frame.message, 'err frame message', l, false);
      tuple = [KIND_ERR, frame.id, frame.code, frame.message];
      break;
    default:
      throw invalid(`unknown frame kind ${String((frame as { kind?: unknown }).kind)}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = encoder.encode(tuple);
  } catch (err) {
    throw invalid(`cannot encode ${frame.kind} frame: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (bytes.byteLength > l.maxFrameBytes) {
    throw invalid(`${frame.kind} frame is ${bytes.byteLength} bytes, over maxFrameBytes (${l.maxFrameBytes})`);
  }
  return bytes;
}

/**
 * Walks the msgpack structure without building values, to refuse bombs
 * before the decoder allocates anything: nesting deeper than `maxDepth + 1`
 * (the frame array), collections over `maxCollectionLength` or longer than
 * the bytes left could hold, extension types, non-string map keys and
 * truncated input.
 */
function prescan(b: Uint8Array, l: Required<CodecLimits>): void {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = b.byteLength;
  let pos = 0;
  /** Values still expected by each open container (a map expects 2 per entry). */
  const remaining: number[] = [];
  const isMap: boolean[] = [];
  const maxDepth = l.maxDepth + 1; // + the frame array itself
  const need = (k: number): void => {
    if (pos + k > n) throw invalid('frame is truncated');
  };
  const readLength = (width: number): number => {
    need(width);
    const len = width === 1 ? view.getUint8(pos) : width === 2 ? view.getUint16(pos) : view.getUint32(pos);
    pos += width;
    return len;
  };
  do {
    const top = remaining.length - 1;
    const keyPosition = top >= 0 && isMap[top] === true && remaining[top]! % 2 === 0;
    if (top >= 0) remaining[top]!--;
    need(1);
    const h = b[pos++]!;
    let isString = false;
    let container: { count: number; map: boolean } | undefined;
    if (h <= 0x7f || h >= 0xe0) {
      // positive / negative fixint
    } else if (h <= 0x8f) {
      container = { count: h - 0x80, map: true };
    } else if (h <= 0x9f) {
      container = { count: h - 0x90, map: false };
    } else if (h <= 0xbf) {
      const len = h - 0xa0;
      need(len);
      pos += len;
      isString = true;
    } else {
      switch (h) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xc4: // bin 8/16/32
        case 0xc5:
        case 0xc6:
        case 0xd9: // str 8/16/32
        case 0xda:
        case 0xdb: {
          const len = readLength(h === 0xc4 || h === 0xd9 ? 1 : h === 0xc5 || h === 0xda ? 2 : 4);
          need(len);
          pos += len;
          isString = h >= 0xd9;
          break;
        }
        case 0xcc: // uint 8 / int 8
        case 0xd0:
          need(1);
          pos += 1;
          break;
        case 0xcd:
        case 0xd1:
          need(2);
          pos += 2;
          break;
        case 0xca: // float 32
        case 0xce:
        case 0xd2:
          need(4);
          pos += 4;
          break;
        case 0xcb: // float 64
        case 0xcf:
        case 0xd3:
          need(8);
          pos += 8;
          break;
        case 0xdc: // array 16/32
        case 0xdd:
          container = { count: readLength(h === 0xdc ? 2 : 4), map: false };
          break;
        case 0xde: // map 16/32
        case 0xdf:
          container = { count: readLength(h === 0xde ? 2 : 4), map: true };
          break;
        default:
          // 0xc1 (never used) and the extension types (0xc7-0xc9, 0xd4-0xd8)
          throw invalid(`frame holds an unsupported msgpack type 0x${h.toString(16)}`);
      }
    }
    if (keyPosition && !isString) throw invalid('frame holds a map key that is not a string');
    if (container) {
      const { count, map } = container;
      if (count > l.maxCollectionLength) {
        throw invalid(`frame holds a collection of ${count} items, over maxCollectionLength (${l.maxCollectionLength})`);
      }
      const slots = map ? count * 2 : count;
      if (slots > n - pos) throw invalid('frame declares more items than it holds');
      if (slots > 0) {
        if (remaining.length >= maxDepth) throw invalid(`frame is nested deeper than maxDepth (${l.maxDepth})`);
        remaining.push(slots);
        isMap.push(map);
      }
    }
    while (remaining.length > 0 && remaining[remaining.length - 1] === 0) {
      remaining.pop();
      isMap.pop();
    }
  } while (remaining.length > 0);
  if (pos !== n) throw invalid(`frame has ${n - pos} extra bytes after its end`);
}

/**
 * Decodes and validates one frame. Never trusts the input: every failure
 * (bad msgpack, truncation, trailing bytes, wrong shapes, unknown kinds, a
 * body that is not an object with a string `type`, sizes over the limits,
 * `__proto__` keys, extension types) throws a `KvError` with code
 * `KV_INVALID_MESSAGE`; nothing else is thrown.
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
  prescan(bytes, l);
  let raw: unknown;
  try {
    // Copy once so decoded binaries never alias the caller's buffer.
    raw = decoderFor(l).decode(bytes.slice());
  } catch (err) {
    throw invalid(`frame is not valid msgpack: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (!Array.isArray(raw)) throw invalid(`frame must be an array, got ${describe(raw)}`);
  const kind: unknown = raw[0];
  switch (kind) {
    case KIND_REQ: {
      if (raw.length !== 4) throw invalid(`req frame must have 4 fields, got ${raw.length}`);
      const [, id, from, body] = raw as unknown[];
      checkId(id);
      checkHeaderString(from, 'req frame "from"', l, true);
      validateWireMessage(body, l, 'request body');
      return { kind: 'req', id, from, body };
    }
    case KIND_RES: {
      if (raw.length !== 3) throw invalid(`res frame must have 3 fields, got ${raw.length}`);
      const [, id, body] = raw as unknown[];
      checkId(id);
      validateWireMessage(body, l, 'response body');
      return { kind: 'res', id, body };
    }
    case KIND_ERR: {
      if (raw.length !== 4) throw invalid(`err frame must have 4 fields, got ${raw.length}`);
      const [, id, code, message] = raw as unknown[];
      checkId(id);
      checkHeaderString(code, 'err frame code', l, true);
      checkHeaderString(message, 'err frame message', l, false);
      if (isErrorCode(code)) return { kind: 'err', id, code, message };
      return {
        kind: 'err',
        id,
        code: ErrorCodes.INVALID_MESSAGE,
        message: `peer answered with unknown error code ${code}: ${message}`,
      };
    }
    default:
      throw invalid(`unknown frame kind ${typeof kind === 'number' ? kind : describe(kind)}`);
  }
}
