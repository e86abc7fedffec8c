/**
 * The format marker a durable adapter keeps in its internal key space, so
 * that it refuses a database written by something else (or by a newer
 * version of itself) instead of misreading it.
 *
 * @internal
 */

/** The marker's content. */
export interface FormatMarker {
  readonly format: 'quorumkv';
  readonly engine: string;
  readonly version: number;
}

/** The layout version the adapters write (see `engine-layout.ts`). */
export const LAYOUT_VERSION = 1;

/** The marker for `engine` as stored bytes. */
export function encodeMarker(engine: string): Uint8Array {
  const marker: FormatMarker = { format: 'quorumkv', engine, version: LAYOUT_VERSION };
  return new TextEncoder().encode(JSON.stringify(marker));
}

/**
 * Why the stored marker `bytes` does not fit `engine`, or undefined when it
 * does.
 */
export function markerProblem(bytes: Uint8Array, engine: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return 'its format marker is damaged';
  }
  const m = parsed as Partial<FormatMarker> | null;
  if (typeof m !== 'object' || m === null || m.format !== 'quorumkv') return 'it was not written by quorumkv';
  if (m.engine !== engine) return `it was written by the ${String(m.engine)} adapter`;
  if (m.version !== LAYOUT_VERSION) {
    return typeof m.version === 'number' && m.version > LAYOUT_VERSION
      ? `it was written by a newer quorumkv (layout version ${m.version}, this one reads ${LAYOUT_VERSION})`
      : `its layout version ${String(m.version)} is unknown`;
  }
  return undefined;
}

/** A u64 counter as 8 bytes BE. */
export function encodeCounter(n: number): Uint8Array {
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64BE(BigInt(n), 0);
  return out;
}

/** An 8-byte BE counter (0 when absent or malformed). */
export function decodeCounter(bytes: Uint8Array | undefined): number {
  if (bytes === undefined || bytes.length !== 8) return 0;
  return Number(Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64BE(0));
}
