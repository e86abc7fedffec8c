import { ErrorCodes, KvError } from '../../errors/index.js';

/** Bytes of the length prefix in front of every frame (unsigned, big-endian). */
export const LENGTH_PREFIX_BYTES = 4;

/**
 * A length prefix over the reader's cap: the connection must be closed. The
 * frame's bytes were never buffered, and nothing was allocated for them.
 */
export class FrameTooLargeError extends KvError {
  /** The length the prefix announced. */
  readonly length: number;
  /** The cap it is over. */
  readonly limit: number;

  constructor(length: number, limit: number) {
    super(ErrorCodes.INVALID_MESSAGE, `frame of ${length} bytes announced, over the limit of ${limit} bytes`);
    this.name = 'FrameTooLargeError';
    this.length = length;
    this.limit = limit;
  }
}

/**
 * Cuts a byte stream into length-prefixed frames: `[u32 length][length bytes]`.
 *
 * Chunks are kept as they arrive (no copy) until a whole frame is there;
 * a frame inside one chunk is returned as a view of it, a frame spread over
 * several is copied once. The announced length is checked against the cap as
 * soon as the 4 prefix bytes are in, before any byte of the frame is kept
 * for it, so an absurd prefix costs nothing; memory held is what the peer
 * actually sent, at most one partial frame (< cap + a chunk).
 *
 * @example
 * ```ts
 * const reader = new FrameReader(16 * 1024 * 1024);
 * socket.on('data', (chunk) => {
 *   reader.push(chunk);
 *   for (let f = reader.next(); f; f = reader.next()) handle(f);
 * });
 * ```
 */
export class FrameReader {
  #max: number;
  #chunks: Buffer[] = [];
  /** Read offset into `#chunks[0]`. */
  #offset = 0;
  /** Unread bytes across `#chunks`. */
  #buffered = 0;
  /** Length of the frame being read, once its prefix is in. */
  #expected = -1;

  /** @param maxFrameBytes largest frame accepted (without its prefix). */
  constructor(maxFrameBytes: number) {
    this.#max = maxFrameBytes;
  }

  /** The largest frame accepted. */
  get maxFrameBytes(): number {
    return this.#max;
  }

  /** Changes the cap (e.g. from the handshake's small one to the transport's). */
  set maxFrameBytes(value: number) {
    this.#max = value;
  }

  /** Bytes received and not yet returned in a frame (a partial frame, its prefix included). */
  get buffered(): number {
    return this.#buffered + (this.#expected >= 0 ? LENGTH_PREFIX_BYTES : 0);
  }

  /** Adds received bytes. */
  push(chunk: Buffer): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
  }

  /**
   * The next complete frame (without its prefix), or undefined until more
   * bytes arrive.
   *
   * @throws FrameTooLargeError if a prefix announces more than the cap;
   *   KvError `KV_INVALID_MESSAGE` if it announces an empty frame. Either
   *   way the stream cannot be trusted any more: close the connection.
   */
  next(): Buffer | undefined {
    if (this.#expected < 0) {
      if (this.#buffered < LENGTH_PREFIX_BYTES) return undefined;
      const length = this.#readPrefix();
      if (length === 0) throw new KvError(ErrorCodes.INVALID_MESSAGE, 'empty frame (length prefix 0)');
      if (length > this.#max) throw new FrameTooLargeError(length, this.#max);
      this.#expected = length;
    }
    const length = this.#expected;
    if (this.#buffered < length) return undefined;
    this.#expected = -1;
    return this.#take(length);
  }

  /** Drops everything buffered (the connection is closing). */
  clear(): void {
    this.#chunks = [];
    this.#offset = 0;
    this.#buffered = 0;
    this.#expected = -1;
  }

  #readPrefix(): number {
    const first = this.#chunks[0]!;
    if (first.byteLength - this.#offset >= LENGTH_PREFIX_BYTES) {
      const length = first.readUInt32BE(this.#offset);
      this.#skip(LENGTH_PREFIX_BYTES);
      return length;
    }
    return this.#take(LENGTH_PREFIX_BYTES).readUInt32BE(0);
  }

  #skip(n: number): void {
    this.#offset += n;
    this.#buffered -= n;
    const first = this.#chunks[0]!;
    if (this.#offset === first.byteLength) {
      this.#chunks.shift();
      this.#offset = 0;
    }
  }

  /** Removes and returns the next `n` bytes (n <= buffered). */
  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    const inFirst = first.byteLength - this.#offset;
    if (inFirst >= n) {
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#skip(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const chunk = this.#chunks[0]!;
      const available = chunk.byteLength - this.#offset;
      const count = Math.min(available, n - written);
      chunk.copy(out, written, this.#offset, this.#offset + count);
      written += count;
      this.#skip(count);
    }
    return out;
  }
}
