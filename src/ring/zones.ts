/**
 * Zone maps (per-zone replication, as Cassandra's NetworkTopologyStrategy) and
 * the per-zone quorums of `local_quorum` / `each_quorum` (pure, no I/O).
 *
 * @module
 */
import { ErrorCodes, KvError } from '../errors/index.js';
import type { NodeInfo, ZoneConsistencyLevel, ZoneReplication } from './types.js';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/**
 * Validates a zone map and returns a frozen copy with its zones sorted by
 * name (so that equal maps are equal entry by entry, on every node).
 *
 * @param zones - `{ [zone]: replicas }`: at least one zone, each name a
 *   non-empty string, each count a positive integer.
 * @param what - The option's name in error messages.
 * @throws TypeError if `zones` is not a plain object, is empty or has an empty
 *   zone name; RangeError if a count is not a positive integer.
 *
 * @example
 * ```ts
 * normalizeZoneReplication({ dc2: 1, dc1: 2 }); // { dc1: 2, dc2: 1 }, frozen
 * ```
 */
export function normalizeZoneReplication(zones: unknown, what = 'zones'): ZoneReplication {
  if (typeof zones !== 'object' || zones === null || Array.isArray(zones)) {
    throw new TypeError(`Expected \`${what}\` to be an object of replicas per zone, got ${describe(zones)}`);
  }
  const entries = Object.entries(zones as Record<string, unknown>);
  if (entries.length === 0) throw new TypeError(`Expected \`${what}\` to name at least one zone, got an empty object`);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const out: Record<string, number> = {};
  for (const [zone, count] of entries) {
    if (zone.length === 0) throw new TypeError(`Expected the zone names of \`${what}\` to be non-empty strings, got ""`);
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) {
      throw new RangeError(`Expected \`${what}.${zone}\` to be a positive integer, got ${describe(count)}`);
    }
    Object.defineProperty(out, zone, { value: count, enumerable: true });
  }
  return Object.freeze(out);
}

/** The replication factor a zone map gives: the sum of its counts. */
export function zoneReplicationTotal(zones: ZoneReplication): number {
  let total = 0;
  for (const count of Object.values(zones)) total += count;
  return total;
}

/** True if both are absent, or both name the same zones with the same counts (order ignored). */
export function sameZoneReplication(a: ZoneReplication | undefined, b: ZoneReplication | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const zone of ka) if (!Object.hasOwn(b, zone) || a[zone] !== b[zone]) return false;
  return true;
}

/** `{ dc1: 2, dc2: 1 }` (or `none` for an absent map), for messages. */
export function formatZoneReplication(zones: ZoneReplication | undefined): string {
  if (zones === undefined) return 'none';
  return `{ ${Object.entries(zones).map(([z, c]) => `${JSON.stringify(z)}: ${c}`).join(', ')} }`;
}

/** Acknowledgements a quorum of `replicas` needs: floor(replicas / 2) + 1. */
function quorumOf(replicas: number): number {
  return Math.floor(replicas / 2) + 1;
}

/**
 * Acknowledgements needed per zone for a zone consistency level, from the
 * primaries of one key (only primaries count: no sloppy stand-ins):
 * - `local_quorum`: a quorum of the key's replicas in `localZone` (the
 *   coordinator's zone), floor(k / 2) + 1 of its k replicas there;
 * - `each_quorum`: that quorum in every zone of the map.
 *
 * @param primaries - The key's primaries (zone-map placement).
 * @param zones - The cluster's zone map, `undefined` when it has none.
 * @param level - The level asked for.
 * @param localZone - The coordinator's zone (`undefined` if it has none).
 * @returns Zone → acknowledgements needed from that zone's primaries.
 * @throws KvError `KV_UNAVAILABLE_CONSISTENCY` when the level cannot be met
 *   by this configuration: no zone map; `local_quorum` on a node without a
 *   zone, or whose zone is not in the map or has no replica of the key;
 *   `each_quorum` while a zone of the map has no replica of the key (no node
 *   of that zone on the ring).
 */
export function zoneQuorum(
  primaries: readonly NodeInfo[],
  zones: ZoneReplication | undefined,
  level: ZoneConsistencyLevel,
  localZone: string | undefined,
): ReadonlyMap<string, number> {
  const unavailable = (why: string): KvError =>
    new KvError(ErrorCodes.UNAVAILABLE_CONSISTENCY, `consistency '${level}' cannot be met: ${why}`);
  if (zones === undefined) {
    throw unavailable('the cluster has no zone map (set `replication.zones`, see docs/zones.md)');
  }
  const replicas = new Map<string, number>();
  for (const node of primaries) {
    if (node.zone !== undefined) replicas.set(node.zone, (replicas.get(node.zone) ?? 0) + 1);
  }
  if (level === 'local_quorum') {
    if (localZone === undefined) throw unavailable('this node has no zone');
    if (!Object.hasOwn(zones, localZone)) {
      throw unavailable(`zone ${JSON.stringify(localZone)} of this node has no replicas in the zone map ${formatZoneReplication(zones)}`);
    }
    const k = replicas.get(localZone) ?? 0;
    if (k === 0) throw unavailable(`zone ${JSON.stringify(localZone)} holds no replica of this key`);
    return new Map([[localZone, quorumOf(k)]]);
  }
  const need = new Map<string, number>();
  for (const zone of Object.keys(zones)) {
    const k = replicas.get(zone) ?? 0;
    if (k === 0) throw unavailable(`zone ${JSON.stringify(zone)} of the zone map has no node on the ring`);
    need.set(zone, quorumOf(k));
  }
  return need;
}
