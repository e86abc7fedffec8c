import type { NodeInfo } from '../ring/index.js';
import type { Ring } from '../ring/index.js';
import type { KvError } from '../errors/index.js';

import type { MemberStatus } from '../ring/index.js';

/** What this node currently believes about a member's health (defined with the ring, which replication reads too). */
export type { MemberStatus };

/** A member's place in the ring's life cycle (only decommission leaves). */
export type MemberState = 'joining' | 'normal' | 'leaving' | 'left';

/** One member as `store.members()` reports it. */
export interface Member {
  readonly id: string;
  readonly address: string;
  readonly zone: string | undefined;
  readonly weight: number;
  readonly status: MemberStatus;
  readonly state: MemberState;
  /** Restart counter: grows every time the node starts. */
  readonly generation: number;
  /** Heartbeat within the generation. */
  readonly heartbeat: number;
}

/** Gossiped state of one node (what travels on the wire). */
export interface MemberRecord {
  readonly id: string;
  readonly address: string;
  readonly zone: string | undefined;
  readonly weight: number;
  readonly tokens: readonly number[];
  readonly generation: number;
  readonly heartbeat: number;
  readonly state: MemberState;
  /** The node announced it is going down (stop()). */
  readonly shutdown: boolean;
}

/** Membership event payloads (also re-emitted by `Store`). */
export interface MembershipEvents {
  'member:joined': (event: { member: Member }) => void;
  'member:suspected': (event: { member: Member }) => void;
  'member:down': (event: { member: Member; reason: 'timeout' | 'shutdown' }) => void;
  'member:up': (event: { member: Member }) => void;
  'member:left': (event: { member: Member }) => void;
  /**
   * A join was refused: `by: 'self'` when this node refused the peer at
   * `address`, `by: 'peer'` when the peer refused this node.
   */
  'member:refused': (event: { address: string; id: string | undefined; error: KvError; by: 'self' | 'peer' }) => void;
  'ring:changed': (event: { ring: Ring; previous: Ring }) => void;
}

/** Converts a gossiped record to the ring's NodeInfo. */
export function toNodeInfo(record: MemberRecord): NodeInfo {
  return {
    id: record.id,
    address: record.address,
    zone: record.zone,
    weight: record.weight,
    tokens: record.tokens,
  };
}
