import { decode, encode } from '@msgpack/msgpack';
import { ErrorCodes, KvError } from '../errors/index.js';
import type { MemberRecord, MemberState } from '../membership/index.js';
import { packTokens, unpackTokens } from '../ring/index.js';

/**
 * Every name this node keeps in its storage's metadata slot, in one place.
 * A node that restarts over the same storage resumes from them.
 */
export const MetaNames = {
  /** This storage's incarnation: part of the actor id; new on empty storage (riak_kv#679). */
  incarnation: 'quorumkv.incarnation',
  /** The gossip generation of the last start: the next start takes a higher one. */
  generation: 'quorumkv.generation',
  /** This node's ring tokens (packed big-endian uint32). */
  tokens: 'quorumkv.tokens',
  /** The high-water mark of leased dot counters (see ReplicaServer). */
  counter: 'quorumkv.counter',
  /** The members this node knew (Cassandra's `system.peers`), to rebuild its ring at start. */
  peers: 'quorumkv.peers',
} as const;

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeText(s: string): Uint8Array {
  return enc.encode(s);
}

export function decodeText(bytes: Uint8Array): string {
  return dec.decode(bytes);
}

export function encodeNumber(n: number): Uint8Array {
  return encode(n);
}

/** A stored non-negative safe integer, or undefined when absent or unreadable. */
export function decodeNumber(bytes: Uint8Array | undefined): number | undefined {
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = decode(bytes);
  } catch {
    return undefined;
  }
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

type StoredPeer = [id: string, address: string, zone: string | null, weight: number, tokens: Uint8Array, generation: number, state: MemberState];

const STATES = new Set<string>(['joining', 'normal', 'leaving', 'left']);

/**
 * Packed tokens per token array: a member's tokens change only when it
 * restarts with new ones (records share the array otherwise), while its
 * peers list is saved at every generation or state change of any member.
 */
const packed = new WeakMap<readonly number[], Uint8Array>();

function packedTokens(tokens: readonly number[]): Uint8Array {
  let bytes = packed.get(tokens);
  if (bytes === undefined) packed.set(tokens, (bytes = packTokens(tokens)));
  return bytes;
}

/** Encodes the stored peers (what a restart needs to rebuild the ring; no heartbeats). */
export function encodePeers(peers: readonly MemberRecord[]): Uint8Array {
  const list: StoredPeer[] = peers.map((p) => [p.id, p.address, p.zone ?? null, p.weight, packedTokens(p.tokens), p.generation, p.state]);
  return encode([1, list]);
}

/** Decodes stored peers; a corrupt slot is a `KV_STORAGE_FAILURE` (never silently a ring of one). */
export function decodePeers(bytes: Uint8Array): MemberRecord[] {
  const corrupt = (what: string): KvError =>
    new KvError(ErrorCodes.STORAGE_FAILURE, `stored peers (metadata "${MetaNames.peers}") are corrupt: ${what}`);
  let value: unknown;
  try {
    value = decode(bytes);
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  if (!Array.isArray(value) || value[0] !== 1 || !Array.isArray(value[1])) throw corrupt('unknown format');
  return (value[1] as unknown[]).map((p) => {
    if (!Array.isArray(p) || p.length !== 7) throw corrupt('malformed record');
    const [id, address, zone, weight, tokens, generation, state] = p as unknown[];
    if (typeof id !== 'string' || id.length === 0 || typeof address !== 'string' || address.length === 0) throw corrupt('id or address');
    if (zone !== null && typeof zone !== 'string') throw corrupt('zone');
    if (typeof weight !== 'number' || !(weight > 0)) throw corrupt('weight');
    if (!(tokens instanceof Uint8Array)) throw corrupt('tokens');
    if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) throw corrupt('generation');
    if (typeof state !== 'string' || !STATES.has(state)) throw corrupt('state');
    let unpacked: number[];
    try {
      unpacked = unpackTokens(tokens);
    } catch {
      throw corrupt('tokens');
    }
    return {
      id,
      address,
      zone: zone ?? undefined,
      weight,
      tokens: unpacked,
      generation,
      heartbeat: 0,
      state: state as MemberState,
      shutdown: false,
    };
  });
}
