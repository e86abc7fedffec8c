import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport } from '../../../src/transport/index.js';
import { FLUSH_BATCH_BYTES, FLUSH_BATCH_FRAMES } from '../../../src/transport/tcp/connection.js';
import type { RequestHandler, WireMessage } from '../../../src/transport/types.js';

// Frames of one tick are written behind their prefixes into per-connection
// output chunks (first 4 KiB, doubling to 64 KiB), frames over 16 KiB in a
// buffer of their own, several regions in one writev. These cases cross
// every boundary of that scheme over a real socket.

let open: TcpTransport[] = [];
afterEach(async () => {
  for (const t of open) await t.stop();
  open = [];
});

async function pair(handler: RequestHandler): Promise<[TcpTransport, TcpTransport]> {
  const a = new TcpTransport({ host: '127.0.0.1', port: 0 });
  const b = new TcpTransport({ host: '127.0.0.1', port: 0 });
  open.push(a, b);
  await a.start(() => ({ type: 'unused' }));
  await b.start(handler);
  return [a, b];
}

/** Answers with the request's bytes reversed, so an answer that went to the wrong request shows. */
const reverse: RequestHandler = (m) => ({ type: 'reversed', data: Uint8Array.from(m['data'] as Uint8Array).reverse() });

const payload = (seed: number, size: number): Uint8Array => Uint8Array.from({ length: size }, (_, i) => (seed * 31 + i * 7) & 0xff);

/**
 * Sends `sizes.length` requests from `a` to `b` in one turn; gives the
 * answers and the count of socket writes `a` had made after each send.
 */
async function oneTurn(a: TcpTransport, b: TcpTransport, sizes: readonly number[]): Promise<{ writesDuringTurn: number[]; writes: () => number }> {
  await a.request(b.address, { type: 'data', data: payload(0, 10) }); // connected and handshaken
  const before = a.stats();
  const sent: Promise<WireMessage>[] = [];
  const writesDuringTurn: number[] = [];
  sizes.forEach((size, i) => {
    sent.push(a.request(b.address, { type: 'data', data: payload(i, size) }));
    writesDuringTurn.push(a.stats().socketWrites - before.socketWrites);
  });
  const answers = await Promise.all(sent);
  answers.forEach((answer, i) => {
    expect(Buffer.compare(answer['data'] as Uint8Array, Uint8Array.from(payload(i, sizes[i]!)).reverse())).toBe(0);
  });
  expect(a.stats().framesSent - before.framesSent).toBe(sizes.length);
  return { writesDuringTurn, writes: () => a.stats().socketWrites - before.socketWrites };
}

describe('TcpTransport output batching', () => {
  it('property: a tick of requests of mixed sizes (chunk boundaries, own buffers) arrive and are answered intact', async () => {
    const [a, b] = await pair(reverse);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 3000, max: 5000 }), fc.integer({ min: 15_000, max: 70_000 })), {
          minLength: 1,
          maxLength: 60,
        }),
        async (sizes) => {
          const answers = await Promise.all(sizes.map((size, i) => a.request(b.address, { type: 'data', data: payload(i, size) })));
          answers.forEach((answer: WireMessage, i) => {
            expect(answer.type).toBe('reversed');
            expect(Buffer.compare(answer['data'] as Uint8Array, Uint8Array.from(payload(i, sizes[i]!)).reverse())).toBe(0);
          });
        },
      ),
      { numRuns: 25, seed: 7 },
    );
    const sa = a.stats();
    const sb = b.stats();
    expect(sa.framesSent).toBe(sb.framesReceived);
    expect(sa.bytesSent).toBe(sb.bytesReceived);
    expect(sb.bytesSent).toBe(sa.bytesReceived);
  });

  it('frames sent from several callbacks of one event-loop turn leave in one write', async () => {
    const [a, b] = await pair(reverse);
    await a.request(b.address, { type: 'data', data: payload(0, 10) }); // connected and handshaken
    const before = a.stats();
    // Two immediates queued together run in one check phase, and Node runs
    // the tick queue between them: batched per tick, these would be two
    // writes. (Not two timers: each setTimeout reads the clock anew, so under
    // load the second can come due one millisecond, and one turn, later.)
    const answers = await new Promise<WireMessage[]>((resolve, reject) => {
      const sent: Promise<WireMessage>[] = [];
      const send = (i: number): void => {
        sent.push(a.request(b.address, { type: 'data', data: payload(i, 100 + i) }));
        if (sent.length === 2) Promise.all(sent).then(resolve, reject);
      };
      setImmediate(() => send(1));
      setImmediate(() => send(2));
    });
    expect(answers.map((m) => (m['data'] as Uint8Array).length)).toEqual([101, 102]);
    const after = a.stats();
    expect(after.framesSent - before.framesSent).toBe(2);
    expect(after.socketWrites - before.socketWrites).toBe(1);
  });

  it(`a turn's batch that reaches ${FLUSH_BATCH_BYTES} bytes is written at once, before the turn ends, and the rest at its end`, async () => {
    const [a, b] = await pair(reverse);
    // Frames large enough that the byte bound comes before the frame bound.
    const FRAME = Math.max(1000, Math.ceil((2 * FLUSH_BATCH_BYTES) / FLUSH_BATCH_FRAMES));
    expect(FLUSH_BATCH_BYTES / FRAME).toBeLessThan(FLUSH_BATCH_FRAMES);
    const count = Math.ceil((2.5 * FLUSH_BATCH_BYTES) / FRAME);
    const { writesDuringTurn, writes } = await oneTurn(a, b, new Array<number>(count).fill(FRAME));
    // Still in the same turn: two batches have left, the last half batch waits for the check phase.
    expect(writesDuringTurn.at(-1)).toBe(2);
    const firstWriteAt = writesDuringTurn.indexOf(1);
    expect(firstWriteAt).toBeGreaterThan(0);
    expect(firstWriteAt).toBeLessThan(count / 2);
    expect(writes()).toBe(3);
  });

  it(`a turn's batch of small frames is written at once every ${FLUSH_BATCH_FRAMES} frames, and the rest at its end`, async () => {
    const [a, b] = await pair(reverse);
    const sizes = Array.from({ length: Math.floor(2.5 * FLUSH_BATCH_FRAMES) }, (_, i) => 20 + (i % 7));
    // Far under the byte bound: the frame count alone sends two batches within the turn.
    expect(sizes.length * 60).toBeLessThan(FLUSH_BATCH_BYTES);
    const { writesDuringTurn, writes } = await oneTurn(a, b, sizes);
    expect(writesDuringTurn.indexOf(1)).toBe(FLUSH_BATCH_FRAMES - 1);
    expect(writesDuringTurn.indexOf(2)).toBe(2 * FLUSH_BATCH_FRAMES - 1);
    expect(writesDuringTurn.at(-1)).toBe(2);
    expect(writes()).toBe(3);
  });

  it(`a put's 1 KB frames leave every ${FLUSH_BATCH_FRAMES} frames: the byte bound does not cut them shorter`, async () => {
    const [a, b] = await pair(reverse);
    const { writesDuringTurn, writes } = await oneTurn(a, b, new Array<number>(Math.floor(2.5 * FLUSH_BATCH_FRAMES)).fill(1000));
    expect(writesDuringTurn.indexOf(1)).toBe(FLUSH_BATCH_FRAMES - 1);
    expect(writesDuringTurn.indexOf(2)).toBe(2 * FLUSH_BATCH_FRAMES - 1);
    expect(writesDuringTurn.at(-1)).toBe(2);
    expect(writes()).toBe(3);
  });

  it('frames written over many ticks keep their order and bytes (regions of a chunk are never written over)', async () => {
    const [a, b] = await pair(reverse);
    for (let tick = 0; tick < 200; tick++) {
      const sizes = [tick % 50, 1000 + tick, 300];
      const answers = await Promise.all(sizes.map((size, i) => a.request(b.address, { type: 'data', data: payload(tick * 3 + i, size) })));
      answers.forEach((answer, i) => {
        expect(Buffer.compare(answer['data'] as Uint8Array, Uint8Array.from(payload(tick * 3 + i, sizes[i]!)).reverse())).toBe(0);
      });
    }
  });
});
