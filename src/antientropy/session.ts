/**
 * The initiator's side of one network exchange: this node's tree of a
 * range against one peer, over the Transport's request path (see
 * `./protocol.ts` for the messages). The peer answers from its
 * {@link AntiEntropyResponder}.
 *
 * @module
 */
import { ErrorCodes, KvError } from '../errors/index.js';
import { throwIfAborted } from '../internal/signals.js';
import type { Ring } from '../ring/index.js';
import { tokenInRange, type TokenRangeQuery } from '../storage/index.js';
import type { Transport, WireMessage } from '../transport/index.js';
import { decodeSiblingSet } from '../versioning/index.js';
import { MerkleExchange, type ExchangeMessage, type ExchangeStep } from './exchange.js';
import { scanLeaves } from './local-tree.js';
import type { MerkleTree } from './merkle-tree.js';
import { frameBytes, invalidMessage, readPending, readRecords, recordBatches } from './protocol.js';
import type { AntiEntropyReplica } from './types.js';

/** What an exchange (or a part of a round) moved; the round adds them up. */
export interface ExchangeCounters {
  /** Records sent to the peer. */
  keysSent: number;
  /** Records received from the peer and merged. */
  keysReceived: number;
  /** Records received that this node does not replicate, or outside the range: dropped. */
  keysIgnored: number;
  bytesSent: number;
  bytesReceived: number;
}

/** A zeroed {@link ExchangeCounters}. */
export function emptyCounters(): ExchangeCounters {
  return { keysSent: 0, keysReceived: 0, keysIgnored: 0, bytesSent: 0, bytesReceived: 0 };
}

/** What a session needs from the node: who it is and how it reaches peers. */
export interface SessionContext {
  /** This node's id. */
  readonly self: string;
  /** This node's transport address (the `from` of its requests). */
  readonly address: string;
  readonly cluster: string;
  /** Replication factor N (which keys this node replicates). */
  readonly n: number;
  readonly transport: Transport;
  readonly replica: AntiEntropyReplica;
  /** The current ring. */
  readonly ring: () => Ring;
  /** Timeout of each request, ms. */
  readonly timeout: number;
  /** Largest record accepted from a peer, bytes. */
  readonly maxRecordBytes: number;
}

/**
 * Sends `body` to `to` (adding `cluster`), counts its bytes both ways.
 *
 * @throws what the transport rejects with (`KV_UNREACHABLE`, `KV_TIMEOUT`, `KV_ABORTED`, the peer's error code).
 */
export async function aeRequest(
  ctx: SessionContext,
  to: string,
  body: WireMessage,
  counters: ExchangeCounters,
  signal: AbortSignal | undefined,
): Promise<WireMessage> {
  throwIfAborted(signal);
  const message: WireMessage = { ...body, cluster: ctx.cluster };
  counters.bytesSent += frameBytes(message, ctx.address, false);
  const answer = await ctx.transport.request(to, message, signal ? { timeout: ctx.timeout, signal } : { timeout: ctx.timeout });
  counters.bytesReceived += frameBytes(answer, ctx.address, true);
  return answer;
}

/**
 * True if this node replicates `key` (its token's preference list names
 * this node) and the token lies in `range`: the check applied to every
 * record a peer sends, so a peer cannot plant keys this node does not own.
 */
export function ownsKey(ctx: Pick<SessionContext, 'self' | 'n' | 'ring'>, key: Uint8Array, range: TokenRangeQuery | undefined): boolean {
  const ring = ctx.ring();
  let token: number;
  try {
    token = ring.token(key);
  } catch {
    return false; // over the key limit: not a key of this cluster
  }
  if (range !== undefined && !tokenInRange(token, range)) return false;
  return ring.preferenceListForToken(token, ctx.n).some((p) => p.id === ctx.self);
}

/**
 * Validates and merges records a peer sent (through the replica's merge
 * path). Records of keys this node does not replicate are dropped and
 * counted in `keysIgnored`.
 *
 * @throws KvError `KV_INVALID_MESSAGE` on a record that does not decode;
 *   what the merge throws (`KV_STORAGE_FAILURE`).
 */
export async function mergeRecords(
  ctx: Pick<SessionContext, 'self' | 'n' | 'ring' | 'replica'>,
  keys: readonly Uint8Array[],
  records: readonly Uint8Array[],
  range: TokenRangeQuery | undefined,
  counters: ExchangeCounters,
  signal?: AbortSignal,
): Promise<void> {
  for (let i = 0; i < keys.length; i++) {
    throwIfAborted(signal);
    const key = keys[i]!;
    const record = records[i]!;
    if (!ownsKey(ctx, key, range)) {
      counters.keysIgnored++;
      continue;
    }
    decodeSiblingSet(record); // validates before anything is stored
    await ctx.replica.merge(key, record);
    counters.keysReceived++;
  }
}

function toWire(message: ExchangeMessage, session: string): WireMessage {
  return { ...message, session } as unknown as WireMessage;
}

/** Feeds a peer's answer to the exchange; a malformed one is `KV_INVALID_MESSAGE`. */
function receive(exchange: MerkleExchange, answer: WireMessage): ExchangeStep {
  try {
    return exchange.receive(answer as unknown as ExchangeMessage);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw invalidMessage(answer.type, err.message, err);
    throw err;
  }
}

/**
 * Runs one exchange of `tree` (this node's tree of its range) with the peer
 * at `to`: compares roots, descends only into differing subtrees, lists the
 * entries of the differing leaves, then pushes this node's records the peer
 * lacks and pulls the peer's records this node lacks (each merged, never
 * written over). `session` must be unique per exchange on this node.
 *
 * @throws KvError from the transport or the peer (`KV_UNREACHABLE`,
 *   `KV_TIMEOUT`, `KV_ABORTED`, `KV_INVALID_MESSAGE`, ...), or from storage.
 */
export async function runExchange(
  ctx: SessionContext,
  to: string,
  tree: MerkleTree,
  session: string,
  counters: ExchangeCounters,
  signal?: AbortSignal,
): Promise<void> {
  const range: TokenRangeQuery = { start: tree.start, end: tree.end };
  const exchange = new MerkleExchange(tree);
  let out: ExchangeMessage | undefined = exchange.start();
  const send: Uint8Array[] = [];
  let pending = 0;
  while (out !== undefined) {
    const answer = await aeRequest(ctx, to, toWire(out, session), counters, signal);
    pending = readPending(answer);
    if (answer.type === 'ae.ack') break; // the peer has nothing more to say
    let step = receive(exchange, answer);
    while (step.needEntries) step = exchange.provideEntries(await scanLeaves(ctx.replica, tree, step.needEntries, signal));
    if (step.send) send.push(...step.send);
    out = step.message;
  }
  for await (const batch of recordBatches(send, (k) => ctx.replica.read(k))) {
    const answer = await aeRequest(ctx, to, { type: 'ae.push', keys: batch.keys, records: batch.records }, counters, signal);
    if (answer.type !== 'ae.ack') throw invalidMessage(answer.type, 'expected ae.ack');
    counters.keysSent += batch.keys.length;
  }
  while (pending > 0) {
    const answer = await aeRequest(ctx, to, { type: 'ae.pull', session }, counters, signal);
    if (answer.type !== 'ae.records') throw invalidMessage(answer.type, 'expected ae.records');
    const { keys, records } = readRecords(answer, ctx.maxRecordBytes);
    const next = readPending(answer);
    if (keys.length === 0 && next >= pending) {
      throw new KvError(ErrorCodes.INVALID_MESSAGE, `peer ${to} announced ${pending} records but sends none`);
    }
    pending = next;
    await mergeRecords(ctx, keys, records, range, counters, signal);
  }
}
