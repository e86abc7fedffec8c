import { ErrorCodes, KvError, isErrorCode } from '../errors/index.js';
import type { Clock } from '../internal/clock.js';
import { ownBody } from '../transport/codec.js';
import type { AnswerReceiver, Transport, WireMessage, WireValue } from '../transport/index.js';

/** Items in one `kv.apply-batch` at most: a full batch is sent at once. */
export const APPLY_BATCH_ITEMS = 8;
/** Bytes of keys and records in one batch at most: the batch that would pass it is sent first. */
export const APPLY_BATCH_BYTES = 64 * 1024;
/** A record larger than this goes alone, as `kv.apply` (a large frame gains nothing from company). */
export const APPLY_BATCH_MAX_RECORD = 16 * 1024;
/** Most items a replica takes in one `kv.apply-batch` (a longer one is refused whole). */
export const MAX_WIRE_BATCH_ITEMS = 1024;
/** How long a peer that refused a batch is sent single `kv.apply` messages before it is tried again, ms. */
export const APPLY_BATCH_RETRY_MS = 60_000;
/** Longest error message an item's failure carries in a `kv.applied-batch`. */
const MAX_ITEM_MESSAGE = 512;
/** Peers with no batch open whose entries {@link PeerBatcher}'s map keeps (see its `#open`). */
const MAX_IDLE_PEERS = 64;

/** What a replica answers to a `kv.apply` (and, item by item, what a batch's items get). */
const APPLIED: WireMessage = Object.freeze({ type: 'kv.applied' });

/** Options of {@link ApplyBatcher}. */
export interface ApplyBatcherOptions {
  /** Must have `send` (the coordinator sends single requests without it). */
  readonly transport: Transport;
  readonly cluster: string;
  readonly clock: Clock;
}

/**
 * What differs between the two batched requests: how one item and a batch
 * are sent, and how the batch's answer is handed on item by item.
 */
interface BatchKind {
  /** The single request of one item (a batch of one goes as it). */
  single(cluster: string, key: Uint8Array, record: Uint8Array | undefined): WireMessage;
  /** The batch's request. */
  batch(cluster: string, keys: Uint8Array[], records: Uint8Array[]): WireMessage;
  /**
   * Each item's answer (what the single request would have been answered
   * with) or error, from the batch's answer; undefined when every item's
   * answer is `kv.applied` (no array per batch in the common case).
   * @throws KvError `KV_INVALID_MESSAGE` if the answer is malformed.
   */
  split(answer: WireMessage, items: number): (WireMessage | KvError)[] | undefined;
  /** Whether its items carry records (a batch then keeps an array of them). */
  readonly records: boolean;
}

const APPLY: BatchKind = {
  single: (cluster, key, record) => ownBody({ type: 'kv.apply', cluster, key, record: record! }),
  batch: (cluster, keys, records) => ownBody({ type: 'kv.apply-batch', cluster, keys, records }),
  split(answer, items) {
    const failed = readBatchAnswer(answer, items);
    if (failed === undefined) return undefined;
    const out: (WireMessage | KvError)[] = new Array<WireMessage | KvError>(items).fill(APPLIED);
    for (const [i, error] of failed) out[i] = error;
    return out;
  },
  records: true,
};

const READ: BatchKind = {
  single: (cluster, key) => ownBody({ type: 'kv.read', cluster, key }),
  batch: (cluster, keys) => ownBody({ type: 'kv.read-batch', cluster, keys }),
  split(answer, items) {
    const records = answer.type === 'kv.records' ? answer['records'] : undefined;
    if (!Array.isArray(records) || records.length !== items) {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, `expected kv.records with ${items} records, got ${JSON.stringify(answer.type)}`);
    }
    const failed = readFailures(answer['failures'], items, 'kv.records');
    // Of its exact size: a first push onto [] reserves 17 slots.
    const out = new Array<WireMessage | KvError>(items);
    for (let i = 0; i < items; i++) {
      const error = failed?.get(i);
      const record = records[i] as unknown;
      if (error !== undefined) out[i] = error;
      else if (record === null || record instanceof Uint8Array) out[i] = { type: 'kv.record', record };
      else throw new KvError(ErrorCodes.INVALID_MESSAGE, 'malformed kv.records: a record is neither bytes nor null');
    }
    return out;
  },
  records: false,
};

/**
 * The requests for one peer with one deadline, gathered in one turn. It is
 * its own request's receiver: the answer is handed on item by item.
 */
class Batch implements AnswerReceiver<WireMessage> {
  /**
   * The items' keys, records (for a kind with records) and receivers, in
   * arrays made for a full batch (a first push onto `[]` reserves 17
   * slots, ~150 bytes, per array) and cut to the items' number as the
   * batch is sent (`seal`).
   */
  readonly keys: Uint8Array[] = new Array<Uint8Array>(APPLY_BATCH_ITEMS);
  readonly records: Uint8Array[];
  /** Item i's receiver at 2i and its tag at 2i + 1: one array instead of two. */
  readonly #waiting: (AnswerReceiver<unknown> | number)[] = new Array<AnswerReceiver<unknown> | number>(2 * APPLY_BATCH_ITEMS);
  /** Items added. */
  items = 0;
  bytes = 0;

  constructor(
    readonly owner: PeerBatcher,
    readonly address: string,
    readonly deadline: number,
  ) {
    this.records = owner.kind.records ? new Array<Uint8Array>(APPLY_BATCH_ITEMS) : [];
  }

  /** Adds an item (`record` for a kind with records). */
  add(key: Uint8Array, record: Uint8Array | undefined, receiver: AnswerReceiver<unknown>, tag: number): void {
    const i = this.items++;
    this.keys[i] = key;
    if (record !== undefined) this.records[i] = record;
    this.#waiting[2 * i] = receiver;
    this.#waiting[2 * i + 1] = tag;
  }

  /** Cuts the arrays to the items added (the batch is being sent: no item comes after). */
  seal(): void {
    const n = this.items;
    if (this.keys.length !== n) this.keys.length = n;
    if (this.records.length > n) this.records.length = n;
    if (this.#waiting.length !== 2 * n) this.#waiting.length = 2 * n;
  }

  receiverAt(i: number): AnswerReceiver<unknown> {
    return this.#waiting[2 * i] as AnswerReceiver<unknown>;
  }

  tagAt(i: number): number {
    return this.#waiting[2 * i + 1] as number;
  }

  answered(_tag: number, answer: WireMessage): void {
    let outcomes: (WireMessage | KvError)[] | undefined;
    try {
      outcomes = this.owner.kind.split(answer, this.keys.length);
    } catch (err) {
      this.failed(0, err as KvError);
      return;
    }
    // Every item settles, even if a receiver throws (the first throw goes on once all did).
    let thrown: { error: unknown } | undefined;
    for (let i = 0; i < this.keys.length; i++) {
      const outcome = outcomes === undefined ? APPLIED : outcomes[i]!;
      try {
        if (outcome instanceof KvError) this.receiverAt(i).failed(this.tagAt(i), outcome);
        else this.receiverAt(i).answered(this.tagAt(i), outcome);
      } catch (err) {
        thrown ??= { error: err };
      }
    }
    if (thrown !== undefined) throw thrown.error;
  }

  failed(_tag: number, error: Error): void {
    // A peer that does not know the message (an older release) refuses it as invalid: each item goes again alone.
    if (error instanceof KvError && error.code === ErrorCodes.INVALID_MESSAGE && this.owner.refused(this)) return;
    let thrown: { error: unknown } | undefined;
    for (let i = 0; i < this.keys.length; i++) {
      try {
        this.receiverAt(i).failed(this.tagAt(i), error);
      } catch (err) {
        thrown ??= { error: err };
      }
    }
    if (thrown !== undefined) throw thrown.error;
  }
}

/**
 * Reads a `kv.applied-batch {failures}` answer: `failures` lists
 * `[index, code, message]` for each item the replica did not apply.
 * Returns them by index (undefined when none failed).
 *
 * @throws KvError `KV_INVALID_MESSAGE` for anything else.
 */
export function readBatchAnswer(answer: WireMessage, items: number): Map<number, KvError> | undefined {
  if (answer.type !== 'kv.applied-batch') {
    throw new KvError(ErrorCodes.INVALID_MESSAGE, `expected kv.applied-batch with at most ${items} failures, got ${JSON.stringify(answer.type)}`);
  }
  return readFailures(answer['failures'], items, 'kv.applied-batch');
}

/**
 * A batch answer's `failures` (of `type`): `[index, code, message]` per
 * item, at most `items`, each index once. Returns them by index (undefined
 * when none failed).
 *
 * @throws KvError `KV_INVALID_MESSAGE` for anything else.
 */
function readFailures(failures: WireValue | undefined, items: number, type: string): Map<number, KvError> | undefined {
  if (!Array.isArray(failures) || failures.length > items) {
    throw new KvError(ErrorCodes.INVALID_MESSAGE, `expected ${type} with at most ${items} failures, got ${JSON.stringify(type)} with malformed failures`);
  }
  if (failures.length === 0) return undefined;
  const byIndex = new Map<number, KvError>();
  for (const f of failures as readonly unknown[]) {
    if (
      !Array.isArray(f) ||
      f.length !== 3 ||
      !Number.isSafeInteger(f[0]) ||
      (f[0] as number) < 0 ||
      (f[0] as number) >= items ||
      byIndex.has(f[0] as number) ||
      !isErrorCode(f[1]) ||
      typeof f[2] !== 'string'
    ) {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, `malformed ${type}: a failure is not [item index, error code, message]`);
    }
    byIndex.set(f[0] as number, new KvError(f[1], f[2]));
  }
  return byIndex;
}

/** An item's failure as a `kv.applied-batch` carries it. */
export function batchFailure(index: number, error: KvError): [number, string, string] {
  const message = error.message.length > MAX_ITEM_MESSAGE ? `${error.message.slice(0, MAX_ITEM_MESSAGE)}…` : error.message;
  return [index, error.code, message];
}

/** The per-peer batching both batchers share (see {@link ApplyBatcher}). */
class PeerBatcher {
  readonly #o: ApplyBatcherOptions;
  /** @internal */
  readonly kind: BatchKind;
  /**
   * The batch being filled for each peer, undefined once it is sent: the
   * entry stays (a delete and a set per batch reshaped the map's table, an
   * allocation that lived as long as the map), and entries of peers with
   * nothing open are dropped once there are more than `MAX_IDLE_PEERS`.
   */
  readonly #open = new Map<string, Batch | undefined>();
  /** Peers that refused a batch → until when they get single requests. */
  readonly #single = new Map<string, number>();
  #flushScheduled = false;

  constructor(options: ApplyBatcherOptions, kind: BatchKind, name: string) {
    if (options.transport.send === undefined) throw new TypeError(`${name}: the transport has no send()`);
    this.#o = options;
    this.kind = kind;
  }

  /**
   * Whether a record of `recordBytes` for `address` goes in a batch;
   * otherwise the caller sends it alone, as `kv.apply`.
   */
  accepts(address: string, recordBytes: number): boolean {
    if (recordBytes > APPLY_BATCH_MAX_RECORD) return false;
    if (this.#single.size === 0) return true;
    const until = this.#single.get(address);
    if (until === undefined) return true;
    if (this.#o.clock.now() < until) return false;
    this.#single.delete(address);
    return true;
  }

  /**
   * Adds an item for `address`, due by `deadline` (a reading of the
   * clock). Its outcome goes to `receiver` with `tag`, possibly before
   * this returns (a full batch that fails at once).
   */
  protected addItem(address: string, key: Uint8Array, record: Uint8Array | undefined, deadline: number, receiver: AnswerReceiver<unknown>, tag: number): void {
    let batch = this.#open.get(address);
    const size = key.byteLength + (record?.byteLength ?? 0);
    if (batch !== undefined && (batch.deadline !== deadline || batch.bytes + size > APPLY_BATCH_BYTES)) {
      this.#send(batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = new Batch(this, address, deadline);
      this.#open.set(address, batch);
    }
    batch.add(key, record, receiver, tag);
    batch.bytes += size;
    if (batch.items >= APPLY_BATCH_ITEMS) this.#send(batch);
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(this.#flush);
    }
  }

  /** Sends every batch being filled (the end of the turn; the coordinator's stop). */
  readonly flush = (): void => {
    for (const batch of this.#open.values()) if (batch !== undefined) this.#send(batch);
    if (this.#open.size > MAX_IDLE_PEERS) {
      for (const [address, batch] of this.#open) if (batch === undefined) this.#open.delete(address);
    }
  };

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    this.flush();
  };

  #send(batch: Batch): void {
    if (this.#open.get(batch.address) === batch) this.#open.set(batch.address, undefined);
    batch.seal();
    const transport = this.#o.transport;
    const timeout = Math.max(0, batch.deadline - this.#o.clock.now());
    if (batch.keys.length === 1) {
      // One item: the single request, its answer checked by the item's receiver.
      const single = this.kind.single(this.#o.cluster, batch.keys[0]!, batch.records[0]);
      transport.send!(batch.address, single, { timeout }, batch.receiverAt(0), batch.tagAt(0));
      return;
    }
    transport.send!(batch.address, this.kind.batch(this.#o.cluster, batch.keys, batch.records), { timeout }, batch, 0);
  }

  /**
   * @internal A batch was refused as invalid: its items go again alone, and
   * its peer gets single requests for a while. Returns false (the items fail
   * with the refusal) if the deadline has passed meanwhile.
   */
  refused(batch: Batch): boolean {
    const now = this.#o.clock.now();
    this.#single.set(batch.address, now + APPLY_BATCH_RETRY_MS);
    if (now >= batch.deadline) return false;
    const transport = this.#o.transport;
    for (let i = 0; i < batch.keys.length; i++) {
      const message = this.kind.single(this.#o.cluster, batch.keys[i]!, batch.records[i]);
      transport.send!(batch.address, message, { timeout: batch.deadline - now }, batch.receiverAt(i), batch.tagAt(i));
    }
    return true;
  }
}

/**
 * Sends a write's `kv.apply` requests to a peer together: the items a
 * coordinator adds for one peer (and one deadline) in one turn go as one
 * `kv.apply-batch` request, sent when it holds {@link APPLY_BATCH_ITEMS}
 * items or {@link APPLY_BATCH_BYTES} bytes, else once the turn's
 * synchronous work and promise callbacks are done (`process.nextTick`,
 * before the transport writes what the turn produced). One frame, one
 * request in the transport's table and one answer per batch instead of per
 * write: measured on the tcp bench, ~20% of a quorum put's CPU.
 *
 * Each item still settles on its own, exactly once, through the receiver
 * and tag it was added with: answered with `kv.applied`, or failed with the
 * error the replica reported for that item, or with the batch's error (a
 * timeout, a closed connection: what a single request would have failed
 * with). Items of one batch share its deadline (a different deadline starts
 * a new batch), so each times out when a single request would have.
 *
 * Rolling upgrades: a peer of an earlier release has no handler for
 * `kv.apply-batch` and refuses it with `KV_INVALID_MESSAGE`; the items then
 * go again as single `kv.apply` requests (the replica applies nothing of a
 * refused batch), and that peer gets single requests for
 * {@link APPLY_BATCH_RETRY_MS}.
 */
export class ApplyBatcher extends PeerBatcher {
  constructor(options: ApplyBatcherOptions) {
    super(options, APPLY, 'ApplyBatcher');
  }

  /**
   * Adds `kv.apply {key, record}` for `address`, due by `deadline` (a
   * reading of the clock). Its outcome goes to `receiver` with `tag`,
   * possibly before `add` returns (a full batch that fails at once).
   */
  add(address: string, key: Uint8Array, record: Uint8Array, deadline: number, receiver: AnswerReceiver<unknown>, tag: number): void {
    this.addItem(address, key, record, deadline, receiver, tag);
  }
}

/**
 * {@link ApplyBatcher} for reads: a coordinator's `kv.read` requests for one
 * peer in one turn go as one `kv.read-batch {keys}`, answered with
 * `kv.records {records, failures}` (a record or null per key, in order;
 * `failures` as in `kv.applied-batch`); each item gets the
 * `kv.record {record}` a single read would have been answered with. Same
 * bounds, same fallback for peers that refuse the batch.
 */
export class ReadBatcher extends PeerBatcher {
  constructor(options: ApplyBatcherOptions) {
    super(options, READ, 'ReadBatcher');
  }

  /** Adds `kv.read {key}` for `address`, due by `deadline`; its outcome goes to `receiver` with `tag`. */
  add(address: string, key: Uint8Array, deadline: number, receiver: AnswerReceiver<unknown>, tag: number): void {
    this.addItem(address, key, undefined, deadline, receiver, tag);
  }
}
