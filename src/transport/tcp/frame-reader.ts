import { ErrorCodes, KvError } from '../../errors/index.js';

/** Bytes of the length prefix in front of every frame (unsigned, big-endian). */
export const LENGTH_PREFIX_BYTES = 4;

const EMPTY = new Uint8Array(0);

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
 * a frame inside one chunk is left where it is ({@link FrameReader.advance}
 * says where, for decoding in place) or returned as a view of it
 * ({@link FrameReader.next}), a frame spread over several is copied once. The announced length is checked against the cap as
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
  /** Received chunks, as plain Uint8Array views (so nothing decoded from them is a Buffer). */
  #chunks: Uint8Array[] = [];
  /** Read offset into `#chunks[0]`. */
  #offset = 0;
  /** Unread bytes across `#chunks`. */
  #buffered = 0;
  /** Length of the frame being read, once its prefix is in. */
  #expected = -1;

  /**
   * After {@link advance} returned true: the frame is `frameBytes[frameStart, frameEnd)`
   * (a chunk as received, or a copy when the frame spanned several). Valid
   * until the next call of any method.
   */
  frameBytes: Uint8Array = EMPTY;
  /** See {@link frameBytes}. */
  frameStart = 0;
  /** See {@link frameBytes}. */
  frameEnd = 0;

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

  /** Adds received bytes (kept as they are, not copied). */
  push(chunk: Uint8Array): void {
    const n = chunk.byteLength;
    if (n === 0) return;
    this.#chunks.push(Object.getPrototypeOf(chunk) === Uint8Array.prototype ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, n));
    this.#buffered += n;
  }

  /**
   * The next complete frame (without its prefix), or undefined until more
   * bytes arrive. A view of a chunk when the frame lies in one, else a copy.
   *
   * @throws as {@link advance}.
   */
  next(): Buffer | undefined {
    if (!this.advance()) return undefined;
    const b = this.frameBytes;
    return Buffer.from(b.buffer, b.byteOffset + this.frameStart, this.frameEnd - this.frameStart);
  }

  /**
   * Moves to the next complete frame, and tells where it is
   * ({@link frameBytes}, {@link frameStart}, {@link frameEnd}) without
   * allocating for it when it lies in one chunk. False until more bytes arrive.
   *
   * @throws FrameTooLargeError if a prefix announces more than the cap;
   *   KvError `KV_INVALID_MESSAGE` if it announces an empty frame. Either
   *   way the stream cannot be trusted any more: close the connection.
   */
  advance(): boolean {
    if (this.#expected < 0) {
      if (this.#buffered < LENGTH_PREFIX_BYTES) return false;
      const length = this.#readPrefix();
      if (length === 0) throw new KvError(ErrorCodes.INVALID_MESSAGE, 'empty frame (length prefix 0)');
      if (length > this.#max) throw new FrameTooLargeError(length, this.#max);
      this.#expected = length;
    }
    const length = this.#expected;
    if (this.#buffered < length) return false;
    this.#expected = -1;
    const first = this.#chunks[0]!;
    const offset = this.#offset;
    if (first.byteLength - offset >= length) {
      this.frameBytes = first;
      this.frameStart = offset;
      this.frameEnd = offset + length;
      this.#skip(length);
      return true;
    }
    this.frameBytes = this.#take(length);
    this.frameStart = 0;
    this.frameEnd = length;
    return true;
  }

  /** Drops everything buffered (the connection is closing). */
  clear(): void {
    this.#chunks = [];
    this.#offset = 0;
    this.#buffered = 0;
    this.#expected = -1;
    this.frameBytes = EMPTY;
    this.frameStart = 0;
    this.frameEnd = 0;
  }

  #readPrefix(): number {
    const first = this.#chunks[0]!;
    const p = this.#offset;
    if (first.byteLength - p >= LENGTH_PREFIX_BYTES) {
      const length = first[p]! * 0x1000000 + ((first[p + 1]! << 16) | (first[p + 2]! << 8) | first[p + 3]!);
      this.#skip(LENGTH_PREFIX_BYTES);
      return length;
    }
    const b = this.#take(LENGTH_PREFIX_BYTES);
    return b[0]! * 0x1000000 + ((b[1]! << 16) | (b[2]! << 8) | b[3]!);
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

  /** Removes and returns a copy of the next `n` bytes (n <= buffered). */
  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let written = 0;
    while (written < n) {
      const chunk = this.#chunks[0]!;
      const available = chunk.byteLength - this.#offset;
      const count = Math.min(available, n - written);
      out.set(chunk.subarray(this.#offset, this.#offset + count), written);
      written += count;
      this.#skip(count);
    }
    return out;
  }
}
