import { ErrorCodes, KvError, type ErrorCode } from '../errors/index.js';
import type { Simulation } from './simulation.js';

/**
 * Codes a client call may fail with under faults without that being a bug:
 * the outcome of the call is then unknown (it may or may not have been applied).
 */
export const INDETERMINATE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCodes.QUORUM_NOT_MET,
  ErrorCodes.TIMEOUT,
  ErrorCodes.NOT_STARTED,
  ErrorCodes.NOT_JOINED,
  ErrorCodes.CONNECTION_CLOSED,
  ErrorCodes.UNREACHABLE,
  ErrorCodes.OVERLOADED,
]);

/** Options shared by the workloads. */
export interface WorkloadOptions {
  /** Number of shared keys. @default 3 */
  keys?: number;
  /** Concurrent clients. @default 4 */
  clients?: number;
  /** How long the clients keep going, virtual ms. */
  duration: number;
  /** Pause of a client between two operations, virtual ms. @default { min: 5, max: 150 } */
  think?: { readonly min: number; readonly max: number };
  /**
   * Set workload: the share of a client's steps that read every key at once
   * and write each back at once (its requests to a replica then travel
   * together: `kv.read-batch`, `kv.apply-batch`), from 0 to 1.
   * @default 0.25
   */
  burst?: number;
}

/** What {@link runSetWorkload} did. */
export interface SetWorkloadHistory {
  /** The keys written. */
  readonly keys: readonly string[];
  /** Per key, every element whose write was acknowledged. */
  readonly acknowledged: ReadonlyMap<string, ReadonlySet<string>>;
  /** Writes attempted. */
  readonly attempted: number;
  /** Writes acknowledged. */
  readonly acked: number;
  /** Calls that failed with an indeterminate code (see {@link INDETERMINATE_CODES}). */
  readonly failed: number;
}

/** An acknowledged element an owner does not hold after heal and repair. */
export interface LostElement {
  readonly key: string;
  readonly element: string;
  /** Owners (primary replicas) without it. */
  readonly missingOn: readonly string[];
}

/** What {@link checkSetWorkload} found. */
export interface SetCheckResult {
  /** True when nothing acknowledged is lost and the owners agree. */
  readonly ok: boolean;
  /** Acknowledged elements missing on some owner. */
  readonly lost: readonly LostElement[];
  /** Keys whose owners hold different sibling sets: key → owner → canonical sibling set. */
  readonly divergent: readonly { readonly key: string; readonly owners: Readonly<Record<string, string>> }[];
  /** One-line summary. */
  readonly summary: string;
}

/** One read that missed an acknowledged write. */
export interface StaleRead {
  readonly key: string;
  /** The coordinator of the read. */
  readonly via: string;
  /** Virtual ms (since the start of the run) when the read started. */
  readonly startedAt: number;
  /** What it returned. */
  readonly values: readonly string[];
  /** The acknowledged write (value) it returned neither itself nor a causal successor of. */
  readonly missed: string;
}

/** What {@link runRegisterWorkload} did and found. */
export interface RegisterWorkloadHistory {
  readonly keys: readonly string[];
  /** Reads that succeeded and were checked. */
  readonly reads: number;
  readonly attempted: number;
  readonly acked: number;
  readonly failed: number;
  /** Reads (during the run and after the final repair) that missed an acknowledged write. */
  readonly stale: StaleRead[];
  /** @internal Causal history of every value written: value → the values it superseded (transitively). */
  readonly ancestors: ReadonlyMap<string, ReadonlySet<string>>;
  /** @internal Per key, acknowledged values in acknowledgement order. */
  readonly ackedValues: ReadonlyMap<string, readonly string[]>;
}

type MutableRegisterHistory = {
  -readonly [K in keyof RegisterWorkloadHistory]: RegisterWorkloadHistory[K];
};

interface Resolved {
  keys: number;
  clients: number;
  duration: number;
  think: { min: number; max: number };
  burst: number;
}

function resolve(options: WorkloadOptions): Resolved {
  if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object, got ${String(options)}`);
  const keys = options.keys ?? 3;
  const clients = options.clients ?? 4;
  if (!Number.isSafeInteger(keys) || keys < 1) throw new RangeError(`Expected \`keys\` to be a positive integer, got ${String(keys)}`);
  if (!Number.isSafeInteger(clients) || clients < 1) throw new RangeError(`Expected \`clients\` to be a positive integer, got ${String(clients)}`);
  if (typeof options.duration !== 'number' || !(options.duration >= 0) || !Number.isFinite(options.duration)) {
    throw new RangeError(`Expected \`duration\` to be a finite number of virtual ms >= 0, got ${String(options.duration)}`);
  }
  const think = options.think ?? { min: 5, max: 150 };
  if (!(Number.isFinite(think.min) && Number.isFinite(think.max) && think.min >= 0 && think.max >= think.min)) {
    throw new RangeError(`Expected \`think\` to be { min, max } with 0 <= min <= max, got ${JSON.stringify(think)}`);
  }
  const burst = options.burst ?? 0.25;
  if (typeof burst !== 'number' || !(burst >= 0 && burst <= 1)) throw new RangeError(`Expected \`burst\` to be a number from 0 to 1, got ${String(burst)}`);
  return { keys, clients, duration: options.duration, think: { min: think.min, max: think.max }, burst };
}

/** The code of an indeterminate failure, or rethrows anything else (a bug the run must report). */
function indeterminate(err: unknown): ErrorCode {
  if (err instanceof KvError && INDETERMINATE_CODES.has(err.code)) return err.code;
  throw err;
}

function elementsOf(values: readonly unknown[], key: string): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) {
      throw new TypeError(`set workload: key ${key} holds a value that is not an array of strings: ${JSON.stringify(v)}`);
    }
    out.push(...(v as string[]));
  }
  return out;
}

/**
 * The set workload: `clients` clients add unique elements to a few shared
 * keys for `duration` virtual ms, each step through a random node: read,
 * union of the siblings, add an element, write back with the read's
 * context (or, when the read failed, sometimes blindly); a share of the
 * steps (`burst`) does that for every key at once. A write that
 * resolved is acknowledged; one that failed with an indeterminate code may
 * or may not have landed. Any other failure rejects (a bug).
 */
export async function runSetWorkload(sim: Simulation<string[]>, options: WorkloadOptions): Promise<SetWorkloadHistory> {
  const o = resolve(options);
  const keys = Array.from({ length: o.keys }, (_, i) => `set:${i}`);
  const acknowledged = new Map<string, Set<string>>(keys.map((k) => [k, new Set<string>()]));
  const until = sim.clock.now() + o.duration;
  let attempted = 0;
  let acked = 0;
  let failed = 0;
  type Read = { values: string[][]; context: string } | undefined;
  /** A read that failed, counted and traced (`step` names the client and step kind); true if the step writes blindly all the same. */
  const readFailed = (step: string, key: string, via: string, err: unknown, random: () => number): boolean => {
    const code = indeterminate(err);
    failed++;
    sim.trace(`${step} read ${key} via ${via} failed ${code}`);
    return random() >= 0.7;
  };
  /** Adds `element` to what `read` holds of `key` and writes it back through `via` (blindly without a read); counted and traced. */
  const addElement = (step: string, key: string, element: string, via: string, read: Read): Promise<void> => {
    const union = new Set(elementsOf(read?.values ?? [], key));
    union.add(element);
    attempted++;
    return sim
      .store(via)
      .put(key, [...union].sort(), read ? { context: read.context } : {})
      .then(
        () => {
          acked++;
          acknowledged.get(key)!.add(element);
          sim.trace(`${step} add ${element} to ${key} via ${via} ok (${union.size} elements${read ? '' : ', blind'})`);
        },
        (err: unknown) => {
          const code = indeterminate(err);
          failed++;
          sim.trace(`${step} add ${element} to ${key} via ${via} failed ${code}`);
        },
      );
  };
  /** A burst step: every key read at once, then each written back at once (the same rules per key as a step). */
  const burstStep = async (c: number, seq: number, via: string, random: () => number): Promise<void> => {
    const store = sim.store(via);
    const reads = await Promise.allSettled(keys.map((key) => store.get(key)));
    const writes: Promise<void>[] = [];
    keys.forEach((key, k) => {
      const outcome = reads[k]!;
      if (outcome.status === 'rejected' && !readFailed(`set c${c} burst`, key, via, outcome.reason, random)) return;
      writes.push(addElement(`set c${c} burst`, key, `c${c}.${seq}.${k}`, via, outcome.status === 'fulfilled' ? outcome.value : undefined));
    });
    await Promise.all(writes);
  };
  const client = async (c: number): Promise<void> => {
    const random = sim.random(`set-client:${c}`);
    for (let seq = 0; sim.clock.now() < until; seq++) {
      await sim.sleep(o.think.min + Math.floor(random() * (o.think.max - o.think.min)));
      if (o.burst > 0 && random() < o.burst) {
        await burstStep(c, seq, sim.nodes[Math.floor(random() * sim.nodes.length)]!, random);
        continue;
      }
      const key = keys[Math.floor(random() * keys.length)]!;
      const via = sim.nodes[Math.floor(random() * sim.nodes.length)]!;
      let read: Read;
      try {
        read = await sim.store(via).get(key);
      } catch (err) {
        if (!readFailed(`set c${c}`, key, via, err, random)) continue;
      }
      await addElement(`set c${c}`, key, `c${c}.${seq}`, via, read);
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  return { keys, acknowledged, attempted, acked, failed };
}

/** A sibling set in a canonical, comparable form. */
function canonical(siblings: readonly { value: unknown; tombstone: boolean; clock: string }[]): string {
  return siblings
    .map((s) => `${s.clock}:${s.tombstone ? 'tombstone' : JSON.stringify(s.value)}`)
    .sort()
    .join('|');
}

/**
 * The set workload's checker, to run after heal and repair with every node
 * running: every acknowledged element is in every owner's `localGet` (zero
 * acknowledged writes lost), and the owners of each key hold identical
 * sibling sets. Owners are the key's N primaries on the ring of the first
 * running node.
 */
export async function checkSetWorkload(sim: Simulation<string[]>, history: SetWorkloadHistory): Promise<SetCheckResult> {
  const lost: LostElement[] = [];
  const divergent: { key: string; owners: Record<string, string> }[] = [];
  const first = sim.nodes.find((id) => sim.running(id));
  if (first === undefined) throw new KvError(ErrorCodes.NOT_STARTED, 'set workload check: no node is running');
  const ring = sim.store(first).ring;
  let checked = 0;
  for (const key of history.keys) {
    const owners = ring.preferenceList(key, sim.replication.n).map((node) => node.id);
    const held = new Map<string, Set<string>>();
    const forms: Record<string, string> = {};
    for (const owner of owners) {
      const record = await sim.store(owner).localGet(key);
      const live = (record?.siblings ?? []).filter((s) => !s.tombstone).map((s) => s.value);
      held.set(owner, new Set(elementsOf(live, key)));
      forms[owner] = canonical(record?.siblings ?? []);
    }
    for (const element of history.acknowledged.get(key) ?? []) {
      checked++;
      const missingOn = owners.filter((o) => !held.get(o)!.has(element));
      if (missingOn.length > 0) lost.push({ key, element, missingOn });
    }
    if (new Set(Object.values(forms)).size > 1) divergent.push({ key, owners: forms });
  }
  const ok = lost.length === 0 && divergent.length === 0;
  const summary = `set workload: ${history.acked}/${history.attempted} writes acknowledged, ${history.failed} calls failed under faults; ${checked} acknowledged elements checked on every owner: ${lost.length} lost, ${divergent.length} keys with diverging owners`;
  sim.trace(summary);
  return { ok, lost, divergent, summary };
}

/**
 * The strict-quorum register workload: `clients` clients read a few shared
 * keys and write unique values with the read's context (sometimes blindly,
 * making siblings) through random nodes. Every successful read that started
 * after a write was acknowledged must return that value or a causal
 * successor of it (a value written with a context that covered it); any
 * other read is recorded as stale. Run it with R + W > N and sloppy quorum
 * off. {@link checkRegisterWorkload} adds the reads after heal and repair.
 */
export async function runRegisterWorkload(sim: Simulation<string>, options: WorkloadOptions): Promise<RegisterWorkloadHistory> {
  const o = resolve(options);
  const keys = Array.from({ length: o.keys }, (_, i) => `reg:${i}`);
  const ancestors = new Map<string, Set<string>>();
  const ackedValues = new Map<string, string[]>(keys.map((k) => [k, []]));
  const until = sim.clock.now() + o.duration;
  const history: MutableRegisterHistory = { keys, reads: 0, attempted: 0, acked: 0, failed: 0, stale: [], ancestors, ackedValues };
  const client = async (c: number): Promise<void> => {
    const random = sim.random(`register-client:${c}`);
    for (let seq = 0; sim.clock.now() < until; seq++) {
      await sim.sleep(o.think.min + Math.floor(random() * (o.think.max - o.think.min)));
      const key = keys[Math.floor(random() * keys.length)]!;
      const via = sim.nodes[Math.floor(random() * sim.nodes.length)]!;
      const value = `c${c}.${seq}`;
      const read = await checkedRead(sim, history, key, via, `r c${c}`);
      if (read === null) continue;
      if (read === undefined && random() < 0.5) continue;
      const blind = random() < 0.1;
      const past = new Set<string>();
      if (read && !blind) {
        for (const v of read.values) {
          past.add(v);
          for (const a of ancestors.get(v) ?? []) past.add(a);
        }
      }
      ancestors.set(value, past);
      history.attempted++;
      try {
        await sim.store(via).put(key, value, read && !blind ? { context: read.context } : {});
        history.acked++;
        ackedValues.get(key)!.push(value);
        sim.trace(`w c${c} ${key}=${value} via ${via} ok${blind ? ' (blind)' : ''}`);
      } catch (err) {
        history.failed++;
        sim.trace(`w c${c} ${key}=${value} via ${via} failed ${indeterminate(err)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  return history;
}

/**
 * One read, checked against every write acknowledged before it started.
 * Resolves with the read (undefined: no value), or null when it failed
 * with an indeterminate code.
 */
async function checkedRead(
  sim: Simulation<string>,
  history: MutableRegisterHistory,
  key: string,
  via: string,
  who: string,
): Promise<{ values: string[]; context: string } | undefined | null> {
  const before = [...(history.ackedValues.get(key) ?? [])];
  const startedAt = sim.elapsed;
  let read: { values: string[]; context: string } | undefined;
  try {
    read = await sim.store(via).get(key);
  } catch (err) {
    history.failed++;
    sim.trace(`${who} ${key} via ${via} failed ${indeterminate(err)}`);
    return null;
  }
  history.reads++;
  const values = read?.values ?? [];
  for (const v of values) {
    if (typeof v !== 'string') throw new TypeError(`register workload: key ${key} holds a value that is not a string: ${JSON.stringify(v)}`);
  }
  const covers = (w: string): boolean => values.some((v) => v === w || history.ancestors.get(v)?.has(w) === true);
  const missed = before.find((w) => !covers(w));
  if (missed !== undefined) {
    history.stale.push({ key, via, startedAt, values, missed });
    sim.trace(`${who} ${key} via ${via} STALE: ${JSON.stringify(values)} misses acknowledged ${missed}`);
  } else sim.trace(`${who} ${key} via ${via} = ${JSON.stringify(values)}`);
  return read;
}

/**
 * The register workload's checker, after heal and repair: reads every key
 * through every running node (quorum reads, as during the run) and adds any
 * stale one to the history. `ok` when no read, during the run or now,
 * missed an acknowledged write.
 */
export async function checkRegisterWorkload(
  sim: Simulation<string>,
  checked: RegisterWorkloadHistory,
): Promise<{ ok: boolean; stale: readonly StaleRead[]; summary: string }> {
  const history = checked as MutableRegisterHistory;
  for (const key of history.keys) {
    for (const id of sim.nodes) {
      if (!sim.running(id)) continue;
      for (let attempt = 0; ; attempt++) {
        const read = await checkedRead(sim, history, key, id, 'final');
        if (read !== null) break;
        if (attempt >= 20) throw new KvError(ErrorCodes.QUORUM_NOT_MET, `register check: reads of ${key} via ${id} keep failing after heal`);
        await sim.sleep(500);
      }
    }
  }
  const summary = `register workload: ${history.acked}/${history.attempted} writes acknowledged, ${history.reads} reads checked, ${history.failed} calls failed under faults, ${history.stale.length} stale reads`;
  sim.trace(summary);
  return { ok: history.stale.length === 0, stale: history.stale, summary };
}
