import { describe, expect, it } from 'vitest';
import { ErrorCodes, KvError } from '../../../src/errors/index.js';
import {
  APPLY_BATCH_BYTES,
  APPLY_BATCH_ITEMS,
  APPLY_BATCH_MAX_RECORD,
  APPLY_BATCH_RETRY_MS,
  ApplyBatcher,
  ReadBatcher,
  readBatchAnswer,
} from '../../../src/replication/apply-batcher.js';
import { ManualClock } from '../../../src/testing/manual-clock.js';
import type { AnswerReceiver, RequestOptions, Transport, WireMessage } from '../../../src/transport/index.js';

interface Sent {
  to: string;
  message: WireMessage;
  options: RequestOptions | undefined;
  receiver: AnswerReceiver;
  tag: number;
}

/** A transport that only records what it is asked to send. */
function recordingTransport(): { transport: Transport; sent: Sent[] } {
  const sent: Sent[] = [];
  const transport = {
    address: 'n1',
    capabilities: { encodes: false, faultInjection: false },
    started: true,
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    request: () => Promise.reject(new Error('request() is not used by the batcher')),
    send(to: string, message: WireMessage, options: RequestOptions | undefined, receiver: AnswerReceiver, tag: number) {
      sent.push({ to, message, options, receiver, tag });
    },
  } satisfies Transport;
  return { transport, sent };
}

/** Records every item's outcome, by tag. */
class Outcomes implements AnswerReceiver<unknown> {
  readonly answered_ = new Map<number, unknown>();
  readonly failed_ = new Map<number, Error>();
  answered(tag: number, answer: unknown): void {
    expect(this.answered_.has(tag) || this.failed_.has(tag)).toBe(false);
    this.answered_.set(tag, answer);
  }
  failed(tag: number, error: Error): void {
    expect(this.answered_.has(tag) || this.failed_.has(tag)).toBe(false);
    this.failed_.set(tag, error);
  }
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const record = (n: number): Uint8Array => new Uint8Array(n).fill(7);
const endOfTurn = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));
const APPLIED = { type: 'kv.applied' };
const BATCH_OK: WireMessage = { type: 'kv.applied-batch', failures: [] };

function setup() {
  const clock = new ManualClock(1_000);
  const { transport, sent } = recordingTransport();
  const batcher = new ApplyBatcher({ transport, cluster: 'c', clock });
  return { clock, sent, batcher, out: new Outcomes() };
}

describe('ApplyBatcher', () => {
  it('sends one kv.apply-batch per peer for the items added in one turn, at the end of the turn', async () => {
    const { sent, batcher, out } = setup();
    for (let i = 0; i < 5; i++) batcher.add('n2', bytes(`k${i}`), record(10 + i), 6_000, out, i);
    for (let i = 5; i < 8; i++) batcher.add('n3', bytes(`k${i}`), record(10 + i), 6_000, out, i);
    expect(sent).toHaveLength(0);
    await endOfTurn();
    expect(sent.map((s) => [s.to, s.message.type, (s.message['keys'] as unknown[]).length])).toEqual([
      ['n2', 'kv.apply-batch', 5],
      ['n3', 'kv.apply-batch', 3],
    ]);
    const first = sent[0]!;
    expect(first.message['cluster']).toBe('c');
    expect(first.message['keys']).toEqual([0, 1, 2, 3, 4].map((i) => bytes(`k${i}`)));
    expect(first.message['records']).toEqual([0, 1, 2, 3, 4].map((i) => record(10 + i)));
    // The timeout runs to the items' deadline, from the clock when the batch is sent.
    expect(first.options).toEqual({ timeout: 5_000 });
    // Each item settles on its own receiver and tag.
    first.receiver.answered(first.tag, BATCH_OK);
    expect([...out.answered_.keys()]).toEqual([0, 1, 2, 3, 4]);
    expect(out.answered_.get(3)).toEqual(APPLIED);
    sent[1]!.receiver.answered(sent[1]!.tag, BATCH_OK);
    expect(out.answered_.size).toBe(8);
  });

  it('a hundred peers, turn after turn: each gets its batch with exactly its items (the map forgets idle peers past 64)', async () => {
    const { sent, batcher, out } = setup();
    for (let turn = 0; turn < 3; turn++) {
      sent.length = 0;
      for (let p = 0; p < 100; p++) for (let i = 0; i <= p % 3; i++) batcher.add(`p${p}`, bytes(`k${turn}.${p}.${i}`), record(4), 6_000, out, 1000 * turn + 10 * p + i);
      await endOfTurn();
      expect(sent).toHaveLength(100);
      for (const s of sent) {
        const p = Number(s.to.slice(1));
        const n = (p % 3) + 1;
        if (n === 1) {
          expect(s.message.type).toBe('kv.apply');
          continue;
        }
        expect(s.message['keys']).toEqual(Array.from({ length: n }, (_, i) => bytes(`k${turn}.${p}.${i}`)));
        expect(s.message['records']).toEqual(Array.from({ length: n }, () => record(4)));
        s.receiver.answered(s.tag, BATCH_OK);
      }
    }
    // Every batched item settled once (Outcomes refuses a second outcome).
    expect(out.answered_.size).toBe(3 * (33 * 2 + 33 * 3));
  });

  it('a batch that fills up is sent at once; the next items start a new batch', () => {
    const { sent, batcher, out } = setup();
    for (let i = 0; i < APPLY_BATCH_ITEMS; i++) batcher.add('n2', bytes(`k${i}`), record(8), 6_000, out, i);
    expect(sent).toHaveLength(1);
    expect((sent[0]!.message['keys'] as unknown[]).length).toBe(APPLY_BATCH_ITEMS);
    batcher.add('n2', bytes('next'), record(8), 6_000, out, 99);
    expect(sent).toHaveLength(1);
    batcher.flush();
    expect(sent).toHaveLength(2);
  });

  it(`a batch never holds more than ${APPLY_BATCH_BYTES} bytes of keys and records`, () => {
    const { sent, batcher, out } = setup();
    const size = APPLY_BATCH_MAX_RECORD; // the largest record a batch takes
    const fit = Math.floor(APPLY_BATCH_BYTES / (size + 2));
    for (let i = 0; i <= fit; i++) batcher.add('n2', bytes(`k${i}`), record(size), 6_000, out, i);
    expect(sent).toHaveLength(1);
    const keys = sent[0]!.message['keys'] as Uint8Array[];
    const records = sent[0]!.message['records'] as Uint8Array[];
    expect(keys).toHaveLength(fit);
    expect(keys.reduce((n, k) => n + k.length, 0) + records.reduce((n, r) => n + r.length, 0)).toBeLessThanOrEqual(APPLY_BATCH_BYTES);
  });

  it('items with another deadline start another batch (each item times out when a single request would)', async () => {
    const { sent, batcher, out, clock } = setup();
    batcher.add('n2', bytes('a'), record(4), 6_000, out, 0);
    batcher.add('n2', bytes('b'), record(4), 6_000, out, 1);
    batcher.add('n2', bytes('c'), record(4), 6_001, out, 2);
    batcher.add('n2', bytes('d'), record(4), 6_001, out, 3);
    expect(sent).toHaveLength(1);
    clock.advance(100);
    await endOfTurn();
    expect(sent.map((s) => s.options)).toEqual([{ timeout: 5_000 }, { timeout: 4_901 }]);
  });

  it('a batch of one item goes as the single kv.apply, to the item itself', async () => {
    const { sent, batcher, out } = setup();
    batcher.add('n2', bytes('only'), record(3), 6_000, out, 7);
    await endOfTurn();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.message).toEqual({ type: 'kv.apply', cluster: 'c', key: bytes('only'), record: record(3) });
    expect(sent[0]!.receiver).toBe(out);
    expect(sent[0]!.tag).toBe(7);
  });

  it("an item the replica could not apply fails with the replica's code and message; the others are answered", async () => {
    const { sent, batcher, out } = setup();
    for (let i = 0; i < 4; i++) batcher.add('n2', bytes(`k${i}`), record(4), 6_000, out, 10 + i);
    await endOfTurn();
    sent[0]!.receiver.answered(0, {
      type: 'kv.applied-batch',
      failures: [
        [1, 'KV_STORAGE_FAILURE', 'disk on fire'],
        [3, 'KV_INVALID_MESSAGE', 'malformed record'],
      ],
    });
    expect([...out.answered_.keys()]).toEqual([10, 12]);
    expect(out.failed_.get(11)).toMatchObject({ code: 'KV_STORAGE_FAILURE', message: 'disk on fire' });
    expect(out.failed_.get(13)).toMatchObject({ code: 'KV_INVALID_MESSAGE', message: 'malformed record' });
  });

  it('a failed batch fails every item with its error (a timeout, a closed connection)', async () => {
    const { sent, batcher, out } = setup();
    for (let i = 0; i < 3; i++) batcher.add('n2', bytes(`k${i}`), record(4), 6_000, out, i);
    await endOfTurn();
    const error = new KvError(ErrorCodes.CONNECTION_CLOSED, 'n2 closed the connection');
    sent[0]!.receiver.failed(0, error);
    expect([...out.failed_.values()]).toEqual([error, error, error]);
    expect(sent).toHaveLength(1);
  });

  it('a peer that refuses the batch as invalid (an older release) gets each item alone, and single requests for a while', async () => {
    const { sent, batcher, out, clock } = setup();
    for (let i = 0; i < 3; i++) batcher.add('n2', bytes(`k${i}`), record(4), 6_000, out, i);
    await endOfTurn();
    clock.advance(1_000);
    sent[0]!.receiver.failed(0, new KvError(ErrorCodes.INVALID_MESSAGE, 'node n2 has no handler for message type "kv.apply-batch"'));
    const again = sent.slice(1);
    expect(again.map((s) => [s.message.type, s.message['key'], s.options, s.receiver, s.tag])).toEqual(
      [0, 1, 2].map((i) => ['kv.apply', bytes(`k${i}`), { timeout: 4_000 }, out, i]),
    );
    expect(out.failed_.size + out.answered_.size).toBe(0);
    // n2 gets single requests until the retry interval has passed; others still get batches.
    expect(batcher.accepts('n2', 4)).toBe(false);
    expect(batcher.accepts('n3', 4)).toBe(true);
    clock.advance(APPLY_BATCH_RETRY_MS - 1);
    expect(batcher.accepts('n2', 4)).toBe(false);
    clock.advance(1);
    expect(batcher.accepts('n2', 4)).toBe(true);
  });

  it('a refusal that comes after the deadline fails the items instead', async () => {
    const { sent, batcher, out, clock } = setup();
    for (let i = 0; i < 2; i++) batcher.add('n2', bytes(`k${i}`), record(4), 6_000, out, i);
    await endOfTurn();
    clock.advance(5_000);
    const refusal = new KvError(ErrorCodes.INVALID_MESSAGE, 'no handler');
    sent[0]!.receiver.failed(0, refusal);
    expect(sent).toHaveLength(1);
    expect([...out.failed_.values()]).toEqual([refusal, refusal]);
  });

  it('a malformed answer is not taken for the items: they go again alone (applying a record twice merges it once)', async () => {
    for (const answer of [
      { type: 'kv.applied' },
      { type: 'kv.applied-batch' },
      { type: 'kv.applied-batch', failures: [[5, 'KV_INTERNAL', 'x']] },
      { type: 'kv.applied-batch', failures: [[0, 'KV_INTERNAL', 'x'], [0, 'KV_INTERNAL', 'y']] },
      { type: 'kv.applied-batch', failures: [[0, 'NOT_A_CODE', 'x']] },
      { type: 'kv.applied-batch', failures: [[0, 'KV_INTERNAL']] },
      { type: 'kv.applied-batch', failures: [[0, 'KV_INTERNAL', 'a'], [1, 'KV_INTERNAL', 'b'], [0.5, 'KV_INTERNAL', 'c']] },
    ] as WireMessage[]) {
      const { sent, batcher, out } = setup();
      for (let i = 0; i < 2; i++) batcher.add('n2', bytes(`k${i}`), record(4), 6_000, out, i);
      await endOfTurn();
      sent[0]!.receiver.answered(0, answer);
      expect(sent.slice(1).map((s) => s.message.type)).toEqual(['kv.apply', 'kv.apply']);
      expect(out.answered_.size + out.failed_.size).toBe(0);
    }
  });

  it('readBatchAnswer reads the failures by index and refuses anything else with KV_INVALID_MESSAGE', () => {
    expect(readBatchAnswer({ type: 'kv.applied-batch', failures: [] }, 3)).toBeUndefined();
    const failed = readBatchAnswer({ type: 'kv.applied-batch', failures: [[2, 'KV_TIMEOUT', 'late']] }, 3)!;
    expect([...failed.keys()]).toEqual([2]);
    expect(failed.get(2)).toMatchObject({ code: 'KV_TIMEOUT', message: 'late' });
    expect(() => readBatchAnswer({ type: 'kv.applied-batch', failures: [[-1, 'KV_TIMEOUT', '']] }, 3)).toThrow(
      expect.objectContaining({ code: 'KV_INVALID_MESSAGE' }),
    );
    expect(() => readBatchAnswer({ type: 'kv.record', record: null }, 3)).toThrow(/expected kv.applied-batch/);
  });

  it('every item settles even if a receiver throws; the first throw goes on', async () => {
    const { sent, batcher, out } = setup();
    const throwing: AnswerReceiver<unknown> = {
      answered: () => {
        throw new Error('receiver bug');
      },
      failed: () => {
        throw new Error('receiver bug');
      },
    };
    batcher.add('n2', bytes('a'), record(4), 6_000, throwing, 0);
    batcher.add('n2', bytes('b'), record(4), 6_000, out, 1);
    await endOfTurn();
    expect(() => sent[0]!.receiver.answered(0, BATCH_OK)).toThrow('receiver bug');
    expect(out.answered_.get(1)).toEqual(APPLIED);
    const second = setup();
    second.batcher.add('n2', bytes('a'), record(4), 6_000, throwing, 0);
    second.batcher.add('n2', bytes('b'), record(4), 6_000, second.out, 1);
    await endOfTurn();
    expect(() => second.sent[0]!.receiver.failed(0, new KvError(ErrorCodes.TIMEOUT, 'late'))).toThrow('receiver bug');
    expect(second.out.failed_.get(1)).toMatchObject({ code: 'KV_TIMEOUT' });
  });

  it('takes records up to 16 KiB; needs a transport with send()', () => {
    const { batcher } = setup();
    expect(batcher.accepts('n2', APPLY_BATCH_MAX_RECORD)).toBe(true);
    expect(batcher.accepts('n2', APPLY_BATCH_MAX_RECORD + 1)).toBe(false);
    const { transport } = recordingTransport();
    const { send: _send, ...withoutSend } = transport;
    expect(() => new ApplyBatcher({ transport: withoutSend, cluster: 'c', clock: new ManualClock() })).toThrow(TypeError);
  });
});

describe('ReadBatcher', () => {
  function readSetup() {
    const clock = new ManualClock(1_000);
    const { transport, sent } = recordingTransport();
    return { clock, sent, batcher: new ReadBatcher({ transport, cluster: 'c', clock }), out: new Outcomes() };
  }

  it("sends one turn's reads for one peer as kv.read-batch; each item gets the kv.record a single read would have", async () => {
    const { sent, batcher, out } = readSetup();
    for (let i = 0; i < 3; i++) batcher.add('n2', bytes(`k${i}`), 6_000, out, i);
    await endOfTurn();
    expect(sent.map((s) => s.message)).toEqual([{ type: 'kv.read-batch', cluster: 'c', keys: [0, 1, 2].map((i) => bytes(`k${i}`)) }]);
    sent[0]!.receiver.answered(0, { type: 'kv.records', records: [record(2), null, record(3)], failures: [[1, 'KV_STORAGE_FAILURE', 'disk']] });
    expect(out.answered_.get(0)).toEqual({ type: 'kv.record', record: record(2) });
    expect(out.failed_.get(1)).toMatchObject({ code: 'KV_STORAGE_FAILURE', message: 'disk' });
    expect(out.answered_.get(2)).toEqual({ type: 'kv.record', record: record(3) });
  });

  it('a full batch goes at once; one read alone goes as kv.read', async () => {
    const { sent, batcher, out } = readSetup();
    for (let i = 0; i < APPLY_BATCH_ITEMS; i++) batcher.add('n2', bytes(`k${i}`), 6_000, out, i);
    expect(sent).toHaveLength(1);
    batcher.add('n3', bytes('alone'), 6_000, out, 50);
    await endOfTurn();
    expect(sent[1]!.message).toEqual({ type: 'kv.read', cluster: 'c', key: bytes('alone') });
    expect(sent[1]!.receiver).toBe(out);
  });

  it('a malformed kv.records (wrong length, a record that is not bytes or null) sends each read again alone', async () => {
    for (const answer of [
      { type: 'kv.records', records: [null], failures: [] },
      { type: 'kv.records', records: [null, 'x'], failures: [] },
      { type: 'kv.records', records: [null, null] },
      { type: 'kv.applied-batch', failures: [] },
    ] as WireMessage[]) {
      const { sent, batcher, out } = readSetup();
      batcher.add('n2', bytes('a'), 6_000, out, 0);
      batcher.add('n2', bytes('b'), 6_000, out, 1);
      await endOfTurn();
      sent[0]!.receiver.answered(0, answer);
      expect(sent.slice(1).map((s) => s.message.type)).toEqual(['kv.read', 'kv.read']);
      expect(out.answered_.size + out.failed_.size).toBe(0);
    }
  });
});

