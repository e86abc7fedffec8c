import { ErrorCodes, KvError } from '../errors/index.js';
import type { WireMessage, WireValue } from '../transport/index.js';
import type { MemberRecord, MemberState } from './types.js';
import { normalizeZoneReplication, packTokens, unpackTokens, type ZoneReplication } from '../ring/index.js';

const STATES: readonly MemberState[] = ['joining', 'normal', 'leaving', 'left'];
const MAX_ID = 256;
const MAX_MEMBERS = 10_000;

function invalid(what: string): KvError {
  return new KvError(ErrorCodes.INVALID_MESSAGE, `malformed gossip message: ${what}`);
}

/** A record on the wire; `tokens` is null when the receiver already has them. */
export type RecordWire = readonly [
  id: string,
  address: string,
  zone: string | null,
  weight: number,
  tokens: Uint8Array | null,
  generation: number,
  heartbeat: number,
  state: MemberState,
  shutdown: boolean,
];

/** A record as decoded: tokens may be missing (same generation as known). */
export interface DecodedRecord extends Omit<MemberRecord, 'tokens'> {
  readonly tokens: readonly number[] | undefined;
}

export function recordToWire(record: MemberRecord, withTokens: boolean): RecordWire {
  return [
    record.id,
    record.address,
    record.zone ?? null,
    record.weight,
    withTokens ? packTokens(record.tokens) : null,
    record.generation,
    record.heartbeat,
    record.state,
    record.shutdown,
  ];
}

function isId(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= MAX_ID;
}
function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

export function recordFromWire(x: unknown): DecodedRecord {
  if (!Array.isArray(x) || x.length !== 9) throw invalid('member record');
  const [id, address, zone, weight, tokens, generation, heartbeat, state, shutdown] = x as unknown[];
  if (!isId(id)) throw invalid('member id');
  if (!isId(address)) throw invalid('member address');
  if (zone !== null && !isId(zone)) throw invalid('member zone');
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0 || weight > 1_000) {
    throw invalid('member weight');
  }
  if (tokens !== null && !(tokens instanceof Uint8Array)) throw invalid('member tokens');
  if (!isCount(generation) || !isCount(heartbeat)) throw invalid('member version');
  if (typeof state !== 'string' || !STATES.includes(state as MemberState)) throw invalid('member state');
  if (typeof shutdown !== 'boolean') throw invalid('member shutdown flag');
  return {
    id,
    address,
    zone: zone ?? undefined,
    weight,
    tokens: tokens === null ? undefined : unpackTokens(tokens),
    generation,
    heartbeat,
    state: state as MemberState,
    shutdown,
  };
}

export type Digest = readonly [id: string, generation: number, heartbeat: number];

export function digestsFromWire(x: unknown): Digest[] {
  if (!Array.isArray(x) || x.length > MAX_MEMBERS) throw invalid('digest list');
  return x.map((d: unknown) => {
    if (!Array.isArray(d) || d.length !== 3 || !isId(d[0]) || !isCount(d[1]) || !isCount(d[2])) {
      throw invalid('digest');
    }
    return [d[0], d[1], d[2]] as const;
  });
}

export function recordsFromWire(x: unknown): DecodedRecord[] {
  if (!Array.isArray(x) || x.length > MAX_MEMBERS) throw invalid('record list');
  return x.map(recordFromWire);
}

/** Gossip messages. */
export interface SynMessage extends WireMessage {
  readonly type: 'gossip.syn';
  readonly cluster: string;
  readonly n: number;
  /**
   * The sender's zone map as `[zone, replicas]` pairs sorted by zone; absent
   * (or null) without one, so nodes without zone maps speak as before.
   */
  readonly zones?: readonly (readonly [zone: string, replicas: number])[] | null;
  readonly from: RecordWire;
  readonly digests: readonly Digest[];
}
export interface AckMessage extends WireMessage {
  readonly type: 'gossip.ack';
  readonly records: readonly RecordWire[];
  readonly want: readonly string[];
  /**
   * The generation the receiver remembers for the sender when it is higher
   * than the one the sender gossips (the sender restarted with a clock behind
   * and lost its stored generation): the sender moves past it. Null otherwise.
   */
  readonly generation: number | null;
}
export interface PushMessage extends WireMessage {
  readonly type: 'gossip.push';
  readonly cluster: string;
  readonly records: readonly RecordWire[];
}

/** A zone map as a syn carries it (see {@link SynMessage.zones}). */
export function zonesToWire(zones: ZoneReplication | undefined): SynMessage['zones'] {
  return zones === undefined ? null : Object.entries(zones).map(([zone, count]) => [zone, count] as const);
}

function zonesFromWire(x: WireValue | undefined): ZoneReplication | undefined {
  if (x === undefined || x === null) return undefined;
  if (!Array.isArray(x) || x.length === 0 || x.length > MAX_MEMBERS) throw invalid('zone map');
  const map: Record<string, number> = {};
  for (const pair of x as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || !isId(pair[0]) || !isCount(pair[1]) || pair[1] < 1) throw invalid('zone map');
    if (Object.hasOwn(map, pair[0])) throw invalid('zone map');
    Object.defineProperty(map, pair[0], { value: pair[1], enumerable: true });
  }
  return normalizeZoneReplication(map);
}

export function parseSyn(m: WireMessage): {
  cluster: string;
  n: number;
  zones: ZoneReplication | undefined;
  from: DecodedRecord;
  digests: Digest[];
} {
  const { cluster, n, zones, from, digests } = m as Record<string, WireValue | undefined>;
  if (!isId(cluster)) throw invalid('cluster');
  if (!isCount(n) || n < 1) throw invalid('replication factor');
  const record = recordFromWire(from);
  if (record.tokens === undefined) throw invalid('sender tokens');
  return { cluster, n, zones: zonesFromWire(zones), from: record, digests: digestsFromWire(digests) };
}

export function parseAck(m: WireMessage): { records: DecodedRecord[]; want: string[]; generation: number | undefined } {
  if (m.type !== 'gossip.ack') throw invalid(`unexpected answer ${m.type}`);
  const want = m['want'];
  if (!Array.isArray(want) || want.length > MAX_MEMBERS || !want.every(isId)) throw invalid('want list');
  const generation = m['generation'];
  if (generation !== undefined && generation !== null && !isCount(generation)) throw invalid('generation');
  return { records: recordsFromWire(m['records']), want: want as string[], generation: generation ?? undefined };
}

export function parsePush(m: WireMessage): { cluster: string; records: DecodedRecord[] } {
  const cluster = m['cluster'];
  if (!isId(cluster)) throw invalid('cluster');
  return { cluster, records: recordsFromWire(m['records']) };
}
