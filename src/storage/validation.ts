/**
 * Argument checks of the storage seam. Each returns the error to reject
 * with, or `undefined`, so the hot path neither throws nor allocates.
 */
import type { StoredHint, TokenRangeQuery } from './types.js';

/** A short description of `value` for "Expected `x` to be …, got …" messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'string':
      return value.length === 0
        ? 'an empty string'
        : `string ${JSON.stringify(value.length > 32 ? `${value.slice(0, 32)}…` : value)}`;
    case 'number':
    case 'bigint':
    case 'boolean':
      return `${typeof value} ${String(value)}`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      break;
  }
  if (value instanceof Uint8Array) {
    return value.length === 0 ? `an empty ${value.constructor.name}` : `${value.constructor.name}(${value.length})`;
  }
  if (Array.isArray(value)) return `an array (length ${value.length})`;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== 'Object' && name !== '' ? `an instance of ${name}` : 'an object';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const SHOWN_BYTES = 64;

/**
 * A key for an error message: quoted UTF-8 when it is printable text, else
 * `0x…` hex; at most 64 bytes are shown.
 */
export function describeKey(key: Uint8Array): string {
  const shown = key.length > SHOWN_BYTES ? key.subarray(0, SHOWN_BYTES) : key;
  const more = key.length > SHOWN_BYTES ? `… (${key.length} bytes)` : '';
  try {
    const text = utf8.decode(shown);
    if (!CONTROL.test(text)) return `${JSON.stringify(text)}${more}`;
  } catch {
    // not UTF-8 (or cut inside a character): hex below
  }
  return `0x${Buffer.from(shown.buffer, shown.byteOffset, shown.length).toString('hex')}${more}`;
}

/** `key` must be a non-empty Uint8Array. */
export function checkKey(key: unknown, what: string): TypeError | undefined {
  if (key instanceof Uint8Array && key.length > 0) return undefined;
  return new TypeError(`Expected \`${what}\` to be a non-empty Uint8Array, got ${describeValue(key)}`);
}

/** `bytes` must be a Uint8Array (empty is fine). */
export function checkBytes(bytes: unknown, what: string): TypeError | undefined {
  if (bytes instanceof Uint8Array) return undefined;
  return new TypeError(`Expected \`${what}\` to be a Uint8Array, got ${describeValue(bytes)}`);
}

/** `token` must be an unsigned 32-bit integer: `TypeError` if not a number, else `RangeError`. */
export function checkToken(token: unknown, what: string): TypeError | RangeError | undefined {
  // `x >>> 0 === x` holds exactly for the integers 0 … 2^32-1 (and -0).
  if (typeof token === 'number' && token >>> 0 === token) return undefined;
  const message = `Expected \`${what}\` to be an unsigned 32-bit integer, got ${describeValue(token)}`;
  return typeof token === 'number' ? new RangeError(message) : new TypeError(message);
}

/** `name` must be a non-empty string. */
export function checkName(name: unknown, what: string): TypeError | undefined {
  if (typeof name === 'string' && name.length > 0) return undefined;
  return new TypeError(`Expected \`${what}\` to be a non-empty string, got ${describeValue(name)}`);
}

/** `range` must be undefined or `{ start, end }` of unsigned 32-bit integers. */
export function checkRange(range: unknown): Error | undefined {
  if (range === undefined) return undefined;
  if (typeof range !== 'object' || range === null) {
    return new TypeError(`Expected \`range\` to be an object { start, end } or undefined, got ${describeValue(range)}`);
  }
  const { start, end } = range as Partial<TokenRangeQuery>;
  return checkToken(start, 'range.start') ?? checkToken(end, 'range.end');
}

/** `hint` must be a well-formed {@link StoredHint}. */
export function checkHint(hint: unknown): Error | undefined {
  if (typeof hint !== 'object' || hint === null) {
    return new TypeError(`Expected \`hint\` to be an object, got ${describeValue(hint)}`);
  }
  const h = hint as Partial<StoredHint>;
  const bad =
    checkName(h.id, 'hint.id') ??
    checkName(h.target, 'hint.target') ??
    checkKey(h.key, 'hint.key') ??
    checkToken(h.token, 'hint.token') ??
    checkBytes(h.record, 'hint.record');
  if (bad !== undefined) return bad;
  if (typeof h.createdAt === 'number' && Number.isFinite(h.createdAt)) return undefined;
  const message = `Expected \`hint.createdAt\` to be a finite number, got ${describeValue(h.createdAt)}`;
  return typeof h.createdAt === 'number' ? new RangeError(message) : new TypeError(message);
}
