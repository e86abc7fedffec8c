import { ErrorCodes, KvError } from '../errors/index.js';

/** Most tokens one node may carry (gossip and storage refuse more). */
export const MAX_TOKENS = 65_536;

/** Packs unsigned 32-bit tokens big-endian (4 bytes each). */
export function packTokens(tokens: readonly number[]): Uint8Array {
  const out = new Uint8Array(tokens.length * 4);
  const view = new DataView(out.buffer);
  tokens.forEach((t, i) => view.setUint32(i * 4, t));
  return out;
}

/** Unpacks what {@link packTokens} made; throws `KV_INVALID_MESSAGE` on a malformed list. */
export function unpackTokens(bytes: Uint8Array): number[] {
  if (bytes.length % 4 !== 0 || bytes.length / 4 > MAX_TOKENS) throw new KvError(ErrorCodes.INVALID_MESSAGE, 'malformed token list');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = new Array<number>(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4);
  return out;
}

