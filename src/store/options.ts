import { systemClock } from '../internal/clock.js';
import { Defaults } from '../internal/defaults.js';
import {
  DEFAULT_HINT_INTERVAL,
  DEFAULT_HINT_TTL,
  DEFAULT_HINTS_IN_FLIGHT,
  DEFAULT_HOP_TIMEOUT,
  MAX_HINT_TTL,
  checkRecordFitsFrame,
} from '../replication/index.js';
import { MAX_TOKENS, formatZoneReplication, normalizeZoneReplication, zoneReplicationTotal } from '../ring/index.js';
import { noopLogger, noopMetrics } from '../observability/index.js';
import { MemoryStorage } from '../storage/index.js';
import { resolvePhiOptions } from '../membership/index.js';
import type { ConflictPolicy, StoreOptions } from './types.js';
import { AntiEntropyDefaults, type AntiEntropyConfig, type NodeConfig } from '../node/index.js';

/** Longest node id, cluster name, zone or seed address (the gossip wire's bound). */
const MAX_NAME = 256;
/** Largest key the replica protocol carries. */
const MAX_KEY_BYTES = 64 * 1024;
/** Heaviest node the gossip wire accepts. */
const MAX_WEIGHT = 1_000;
/** Shortest gossip interval: below it two idle nodes exchange hundreds of messages a second. */
export const MIN_GOSSIP_INTERVAL = 10;

/**
 * Every Store option, validated, with its default applied: resolved once, at
 * construction. The node's part ({@link NodeConfig}) goes to the composition
 * root as it is; the rest is the facade's.
 */
export interface ResolvedStoreOptions<V> extends NodeConfig {
  readonly r: number;
  readonly w: number;
  readonly conflict: ConflictPolicy<V>;
  readonly timeout: number;
  readonly maxValueBytes: number;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** A positive safe integer, at most `max`. */
export function positiveInt(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer from 1 to ${max}`;
    throw new RangeError(`Expected \`${name}\` to be ${range}, got ${describe(value)}`);
  }
  return value;
}

/** A finite number of milliseconds, at least `min`. */
export function milliseconds(name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new RangeError(`Expected \`${name}\` to be a finite number of milliseconds >= ${min}, got ${describe(value)}`);
  }
  return value;
}

function name(what: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME) {
    throw new TypeError(`Expected \`${what}\` to be a non-empty string of at most ${MAX_NAME} characters, got ${describe(value)}`);
  }
  return value;
}

function object(what: string, value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`Expected \`${what}\` to be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Shortest background anti-entropy interval, ms: a round reads every range this node holds. */
export const MIN_ANTI_ENTROPY_INTERVAL = 1_000;

/** Validates the `hints` option and applies its defaults; the TTL may not pass the tombstone grace. */
function resolveHints(option: unknown, grace: number): NodeConfig['hints'] {
  const o = object('hints', option);
  const limit = Math.min(MAX_HINT_TTL, grace);
  const ttl = milliseconds('hints.ttl', o?.['ttl'] ?? Math.min(DEFAULT_HINT_TTL, limit), 1);
  if (ttl > limit) {
    const what = limit === grace ? 'the tombstone grace' : 'the longest hint TTL';
    throw new RangeError(`Expected \`hints.ttl\` to be at most ${what} (${limit} ms), got ${ttl}`);
  }
  const maxInFlight = positiveInt('hints.maxInFlight', o?.['maxInFlight'] ?? DEFAULT_HINTS_IN_FLIGHT);
  const interval = milliseconds('hints.interval', o?.['interval'] ?? DEFAULT_HINT_INTERVAL, 1);
  return { ttl, maxInFlight, interval };
}

/** Validates the `antiEntropy` option and applies its defaults ({@link AntiEntropyDefaults}). */
export function resolveAntiEntropy(option: unknown): AntiEntropyConfig {
  const d = AntiEntropyDefaults;
  if (option === false) {
    return { interval: false, jitter: d.jitter, tombstoneGrace: d.tombstoneGrace, timeout: d.timeout, sessionTimeout: d.sessionTimeout };
  }
  const o = object('antiEntropy', option);
  const rawInterval = o?.['interval'] ?? d.interval;
  const interval = rawInterval === false ? false : milliseconds('antiEntropy.interval', rawInterval, MIN_ANTI_ENTROPY_INTERVAL);
  const jitter = o?.['jitter'] ?? d.jitter;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(`Expected \`antiEntropy.jitter\` to be a number from 0 to 1, got ${describe(jitter)}`);
  }
  const grace = o?.['tombstoneGrace'] ?? d.tombstoneGrace;
  if (typeof grace !== 'number' || Number.isNaN(grace) || grace < 1) {
    throw new RangeError(`Expected \`antiEntropy.tombstoneGrace\` to be a number of milliseconds >= 1 (or Infinity), got ${describe(grace)}`);
  }
  const timeout = milliseconds('antiEntropy.timeout', o?.['timeout'] ?? d.timeout, 1);
  return { interval, jitter, tombstoneGrace: grace, timeout, sessionTimeout: Math.max(d.sessionTimeout, 2 * timeout) };
}

/**
 * Validates `new Store(options)` and applies every default (from
 * {@link Defaults}). Programmer mistakes throw a `TypeError` or `RangeError`
 * naming the option, the expected range and the value.
 */
export function resolveStoreOptions<V>(options: StoreOptions<V>): ResolvedStoreOptions<V> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describe(options)}`);
  }
  const id = name('id', options.id);
  const cluster = name('cluster', options.cluster ?? Defaults.cluster);
  const transport = options.transport;
  if (
    transport === null ||
    typeof transport !== 'object' ||
    typeof transport.request !== 'function' ||
    typeof transport.start !== 'function' ||
    typeof transport.stop !== 'function'
  ) {
    throw new TypeError(`Expected \`transport\` to be a Transport (start, stop, request), got ${describe(transport)}`);
  }
  const storage = options.storage ?? new MemoryStorage();
  if (storage === null || typeof storage !== 'object' || typeof storage.open !== 'function' || typeof storage.get !== 'function') {
    throw new TypeError(`Expected \`storage\` to be a StorageAdapter, got ${describe(storage)}`);
  }
  const seedList: unknown = options.seeds ?? [];
  if (!Array.isArray(seedList)) throw new TypeError(`Expected \`seeds\` to be an array of addresses, got ${describe(seedList)}`);
  const seeds = seedList.map((s: unknown, i) => name(`seeds[${i}]`, s));

  const replication = object('replication', options.replication);
  const zones = replication?.['zones'] === undefined ? undefined : normalizeZoneReplication(replication['zones'], 'replication.zones');
  if (zones !== undefined) {
    for (const zone of Object.keys(zones)) {
      if (zone.length > MAX_NAME) {
        throw new TypeError(`Expected the zone names of \`replication.zones\` to have at most ${MAX_NAME} characters, got ${describe(zone)}`);
      }
    }
    const total = zoneReplicationTotal(zones);
    if (total > 64) {
      throw new RangeError(`Expected the counts of \`replication.zones\` to sum to at most 64, got ${total}`);
    }
    if (replication?.['n'] !== undefined && replication['n'] !== total) {
      throw new TypeError(
        `Expected \`replication.n\` (${describe(replication['n'])}) to equal the sum of \`replication.zones\` ${formatZoneReplication(zones)} (${total}); omit \`n\` with zones`,
      );
    }
  }
  const n = positiveInt('replication.n', replication?.['n'] ?? (zones === undefined ? Defaults.n : zoneReplicationTotal(zones)), 64);
  // With zones, N may be anything up to 64: R and W default to a quorum of it.
  const quorum = Math.floor(n / 2) + 1;
  const r = positiveInt('replication.r', replication?.['r'] ?? (zones === undefined ? Math.min(Defaults.r, n) : quorum));
  const w = positiveInt('replication.w', replication?.['w'] ?? (zones === undefined ? Math.min(Defaults.w, n) : quorum));
  if (r > n || w > n) throw new RangeError(`Expected R and W to be at most N=${n}, got R=${r} W=${w}`);

  const conflict = options.conflict ?? 'siblings';
  if (conflict !== 'siblings' && conflict !== 'lww' && typeof conflict !== 'function') {
    throw new TypeError(`Expected \`conflict\` to be 'siblings', 'lww' or a function, got ${describe(conflict)}`);
  }
  const zone = options.zone === undefined ? undefined : name('zone', options.zone);
  const weight = options.weight ?? 1;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0 || weight > MAX_WEIGHT) {
    throw new RangeError(`Expected \`weight\` to be a number > 0 and <= ${MAX_WEIGHT}, got ${describe(weight)}`);
  }
  let tokens: readonly number[] | undefined;
  if (options.tokens !== undefined) {
    const list: unknown = options.tokens;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_TOKENS) {
      throw new RangeError(`Expected \`tokens\` to be an array of 1 to ${MAX_TOKENS} tokens, got ${describe(list)}`);
    }
    tokens = list.map((t: unknown, i) => {
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0xffffffff) {
        throw new RangeError(`Expected \`tokens[${i}]\` to be an unsigned 32-bit integer, got ${describe(t)}`);
      }
      return t;
    });
  }

  const gossip = object('gossip', options.gossip);
  const interval = milliseconds('gossip.interval', gossip?.['interval'] ?? Defaults.gossipInterval, MIN_GOSSIP_INTERVAL);
  const suspectAfterRounds = positiveInt('gossip.suspectAfterRounds', gossip?.['suspectAfterRounds'] ?? Defaults.suspectAfterRounds);
  const downAfterRounds = positiveInt('gossip.downAfterRounds', gossip?.['downAfterRounds'] ?? Defaults.downAfterRounds);
  if (downAfterRounds <= suspectAfterRounds) {
    throw new RangeError(
      `Expected \`gossip.downAfterRounds\` (${downAfterRounds}) to be greater than \`gossip.suspectAfterRounds\` (${suspectAfterRounds})`,
    );
  }
  // The round counts configure the timeout detector: given alone they select it
  // (configurations written before phi became the default keep their timing).
  const rounds = gossip?.['suspectAfterRounds'] !== undefined || gossip?.['downAfterRounds'] !== undefined;
  const detectorOption = gossip?.['detector'];
  if (detectorOption !== undefined && detectorOption !== 'phi' && detectorOption !== 'timeout') {
    throw new TypeError(`Expected \`gossip.detector\` to be 'phi' or 'timeout', got ${describe(detectorOption)}`);
  }
  const phiOption = object('gossip.phi', gossip?.['phi']);
  const detector = detectorOption ?? (rounds ? 'timeout' : phiOption !== undefined ? 'phi' : Defaults.failureDetector);
  if (detector === 'phi' && rounds) {
    throw new TypeError(
      "`gossip.suspectAfterRounds` and `gossip.downAfterRounds` configure the timeout detector; the phi detector takes `gossip.phi` (or set `gossip.detector: 'timeout'`)",
    );
  }
  if (detector === 'timeout' && phiOption !== undefined) {
    throw new TypeError("`gossip.phi` configures the phi detector; the timeout detector takes `gossip.suspectAfterRounds` and `gossip.downAfterRounds`");
  }
  const phi = resolvePhiOptions(
    { ...phiOption, firstHeartbeatEstimate: (phiOption?.['firstHeartbeatEstimate'] as number | undefined) ?? 2 * interval },
    'gossip.phi.',
  );
  const gossipTimeout = milliseconds('gossip.timeout', gossip?.['timeout'] ?? Defaults.gossipTimeout, 1);
  const shutdownTimeout = milliseconds('gossip.shutdownTimeout', gossip?.['shutdownTimeout'] ?? Defaults.shutdownTimeout);

  const clock = options.clock ?? systemClock;
  if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
    throw new TypeError(`Expected \`clock\` to be a Clock (now, setTimeout, clearTimeout), got ${describe(clock)}`);
  }

  const random = options.random;
  if (random !== undefined && typeof random !== 'function') {
    throw new TypeError(`Expected \`random\` to be a function returning numbers in [0, 1), got ${describe(random)}`);
  }

  const maxValueBytes = positiveInt('maxValueBytes', options.maxValueBytes ?? Defaults.maxValueBytes);
  const maxClockEntries = positiveInt('maxClockEntries', options.maxClockEntries ?? Defaults.maxClockEntries, 1_000);
  const maxSiblings = positiveInt('maxSiblings', options.maxSiblings ?? Defaults.maxSiblings);
  const siblingWarning = positiveInt('siblingWarning', options.siblingWarning ?? Math.min(Defaults.siblingWarning, maxSiblings));
  if (siblingWarning > maxSiblings) {
    throw new RangeError(`Expected \`siblingWarning\` (${siblingWarning}) to be at most \`maxSiblings\` (${maxSiblings})`);
  }
  // A record larger than a frame could be neither replicated nor read from another node.
  checkRecordFitsFrame({ maxValueBytes, maxSiblings, maxClockEntries, n, frameLimit: transport.capabilities?.maxFrameBytes });

  const antiEntropy = resolveAntiEntropy(options.antiEntropy);
  const sloppyQuorum = options.sloppyQuorum ?? true;
  if (typeof sloppyQuorum !== 'boolean') throw new TypeError(`Expected \`sloppyQuorum\` to be a boolean, got ${describe(sloppyQuorum)}`);
  const hopTimeout = milliseconds('hopTimeout', options.hopTimeout ?? DEFAULT_HOP_TIMEOUT, 1);
  const hints = resolveHints(options.hints, antiEntropy.tombstoneGrace);

  const metrics = options.metrics ?? noopMetrics;
  for (const fn of ['increment', 'gauge', 'observe'] as const) {
    if (typeof (metrics as unknown as Record<string, unknown>)[fn] !== 'function') {
      throw new TypeError(`Expected \`metrics\` to implement Metrics (increment, gauge, observe), got ${describe(metrics)}`);
    }
  }
  const logger = options.logger ?? noopLogger;
  for (const fn of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof (logger as unknown as Record<string, unknown>)[fn] !== 'function') {
      throw new TypeError(`Expected \`logger\` to implement Logger (debug, info, warn, error), got ${describe(logger)}`);
    }
  }

  return {
    id,
    cluster,
    transport,
    storage,
    seeds,
    n,
    zones,
    r,
    w,
    conflict,
    zone,
    weight,
    tokens,
    timeout: milliseconds('timeout', options.timeout ?? Defaults.timeout),
    maxKeyBytes: positiveInt('maxKeyBytes', options.maxKeyBytes ?? Defaults.maxKeyBytes, MAX_KEY_BYTES),
    maxValueBytes,
    maxClockEntries,
    maxSiblings,
    siblingWarning,
    gossip: { interval, suspectAfterRounds, downAfterRounds, timeout: gossipTimeout, shutdownTimeout, detector, phi },
    antiEntropy,
    sloppyQuorum,
    hopTimeout,
    hints,
    clock,
    random,
    metrics,
    logger,
  };
}
