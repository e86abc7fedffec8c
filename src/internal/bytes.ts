/**
 * A string that stands for `bytes` exactly (one char per byte), for use as a
 * Map key. Short keys are built in JS, which beats a native Buffer call.
 */
export function bytesKey(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n <= 64) {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(bytes[i] as number);
    return s;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('latin1');
}

/** Byte equality. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  if (a.byteLength <= 64) {
    for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A key as events present it: the string whose UTF-8 encoding `bytes` is
 * (every string key), or the bytes themselves when they are not valid UTF-8.
 * A string and its UTF-8 bytes are the same key, so nothing is lost.
 */
export function presentKey(bytes: Uint8Array): string | Uint8Array {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return bytes.slice();
  }
}
