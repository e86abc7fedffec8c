/**
 * Merkle suite (anti-entropy): build, update and exchange costs of the pure
 * core, and the wire bytes of an exchange against the bytes of the records
 * that differ, for 100k keys of 1 KB with 1% divergence, over several tree
 * shapes; then a **real `store.repair()`** between two in-process Stores
 * over a MemoryNetwork with its codec on (every message encoded): all its
 * wire bytes (requests and answers, protocol and records) against the bytes
 * of the differing records (goal <= 2x). `BENCH_AE_KEYS` sets the repair's
 * key count (default 100000, about 10 s).
 *
 * Wire bytes are the exchange's messages (`exchangeLocally`) encoded with
 * `@msgpack/msgpack`, plus the records themselves in `ae.records` messages of
 * up to 64 `[key, record]` pairs. Run alone with `npx tsx bench/merkle.ts`;
 * `merkleBench()` returns the rows for bench/index.ts.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { encode } from '@msgpack/msgpack';
import {
  MerkleTree,
  exchangeLocally,
  recordDigest,
  type ExchangeOutcome,
  type ExchangeSide,
  type MerkleEntry,
  type MerkleTreeOptions,
} from '../src/antientropy/index.js';
import { hashKey } from '../src/ring/index.js';
import { fmtOps, fmtRatio, measure, printTable, type Row } from './harness.js';
import { seededRandom } from '../src/internal/random.js';
import { MemoryStorage, WHOLE_RING } from '../src/storage/index.js';
import { MemoryNetwork } from '../src/transport/index.js';
import { Store } from '../src/store/index.js';
import { SiblingSet, VectorClock, encodeSiblingSet } from '../src/versioning/index.js';

const SUITE = 'merkle';
const KEYS = 100_000;
const RECORD_BYTES = 1024;
const DIVERGENCE = 0.01;
const RECORDS_PER_MESSAGE = 64;


interface Entry extends MerkleEntry {
  readonly record: Uint8Array;
}

function makeRecord(rand: () => number): Uint8Array {
  const r = new Uint8Array(RECORD_BYTES);
  for (let i = 0; i < RECORD_BYTES; i += 4) {
    const x = (rand() * 2 ** 32) >>> 0;
    r[i] = x;
    r[i + 1] = x >>> 8;
    r[i + 2] = x >>> 16;
    r[i + 3] = x >>> 24;
  }
  return r;
}

function entryOf(key: Uint8Array, token: number, record: Uint8Array): Entry {
  return { key, token, record, digest: recordDigest(record) };
}

/**
 * Two replicas of 100k keys; 1% of the keys differ: a third only on A, a
 * third only on B, a third in another version on each (the first of those
 * a tombstone on B: a record like any other).
 */
function makeReplicas(): { a: Entry[]; b: Entry[]; diff: number } {
  const rand = seededRandom(7);
  const encoder = new TextEncoder();
  const a: Entry[] = [];
  const b: Entry[] = [];
  const diff = Math.round(KEYS * DIVERGENCE);
  for (let i = 0; i < KEYS; i++) {
    const key = encoder.encode(`user:${Math.floor(rand() * 1e12).toString(36)}:${i}`);
    const token = hashKey(key);
    const e = entryOf(key, token, makeRecord(rand));
    const kind = i < diff ? i % 3 : -1;
    if (kind !== 1) a.push(e);
    if (kind === 0) continue;
    if (kind === 2) b.push(entryOf(key, token, i === 2 ? encoder.encode('tombstone') : makeRecord(rand)));
    else b.push(e);
  }
  return { a, b, diff };
}

function side(tree: MerkleTree, entries: readonly Entry[]): ExchangeSide & { record(key: Uint8Array): Uint8Array } {
  // A storage scan by segment: entries indexed by their segment once.
  const bySegment = new Map<number, Entry[]>();
  const byKey = new Map<string, Uint8Array>();
  for (const e of entries) {
    const s = tree.segmentOf(e.token);
    let list = bySegment.get(s);
    if (!list) bySegment.set(s, (list = []));
    list.push(e);
    byKey.set(Buffer.from(e.key).toString('latin1'), e.record);
  }
  return {
    tree,
    entries: (segment) => bySegment.get(segment) ?? [],
    record: (key) => byKey.get(Buffer.from(key).toString('latin1'))!,
  };
}

interface WireCount {
  protocol: number;
  records: number;
  recordPayload: number;
  messages: number;
}

/** Bytes on the wire: protocol messages and record messages, msgpack-encoded. */
function wireBytes(out: ExchangeOutcome, recordA: (k: Uint8Array) => Uint8Array, recordB: (k: Uint8Array) => Uint8Array): WireCount {
  let protocol = 0;
  for (const m of out.messages) protocol += encode(m).length;
  let records = 0;
  let recordPayload = 0;
  let recordMessages = 0;
  for (const [keys, read] of [
    [out.initiatorSends, recordA],
    [out.responderSends, recordB],
  ] as const) {
    for (let i = 0; i < keys.length; i += RECORDS_PER_MESSAGE) {
      const batch = keys.slice(i, i + RECORDS_PER_MESSAGE).map((k) => [k, read(k)] as const);
      for (const [k, r] of batch) recordPayload += k.length + r.length;
      records += encode({ type: 'ae.records', records: batch }).length;
      recordMessages++;
    }
  }
  return { protocol, records, recordPayload, messages: out.messages.length + recordMessages };
}

function medianMs(fn: () => void, repeats = 3): number {
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)]!;
}

const fmtKB = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;
const fmtMs = (ms: number): string => `${ms.toFixed(1)} ms`;

/** The rows of the merkle suite. */
export async function merkleBench(): Promise<Row[]> {
  const rows: Row[] = [];
  const { a, b, diff } = makeReplicas();

  // ---- costs of keeping a tree ------------------------------------------------------------------
  const record = a[0]!.record;
  const digestRate = measure('recordDigest 1 KB', () => recordDigest(record));
  const tree = MerkleTree.fromEntries(WHOLE_RING, a);
  const d1 = a[1]!.digest;
  const d2 = recordDigest(makeRecord(seededRandom(1)));
  const k = a[1]!.key;
  const t = a[1]!.token;
  const updateRate = measure('update', (i) => (i & 1 ? tree.update(k, t, d2, d1) : tree.update(k, t, d1, d2)));
  rows.push({
    suite: SUITE,
    metric: 'tree.update per write (2 entry hashes + 4 path XORs), 16^3',
    value: fmtOps(updateRate),
    baseline: `${fmtOps(digestRate)} recordDigest(1 KB)`,
    ratio: fmtRatio(updateRate, digestRate),
    goal: `${(1e6 / updateRate).toFixed(2)} µs/write, vs ~125 µs a quorum put`,
  });
  const buildMs = medianMs(() => MerkleTree.fromEntries(WHOLE_RING, a));
  const insertMs = medianMs(() => {
    const t2 = new MerkleTree(WHOLE_RING);
    for (const e of a) t2.insert(e.key, e.token, e.digest);
  });
  rows.push({
    suite: SUITE,
    metric: `fromEntries ${a.length} entries (digests known) vs ${a.length} inserts`,
    value: fmtMs(buildMs),
    baseline: fmtMs(insertMs),
    ratio: fmtRatio(buildMs, insertMs),
  });
  const scanBuildMs = medianMs(() => MerkleTree.fromEntries(WHOLE_RING, a.map((e) => ({ key: e.key, token: e.token, digest: e.record }))), 1);
  rows.push({
    suite: SUITE,
    metric: `rebuild from a scan: ${a.length} x 1 KB records hashed whole`,
    value: fmtMs(scanBuildMs),
    baseline: fmtMs(buildMs),
    ratio: fmtRatio(scanBuildMs, buildMs),
    goal: 'baseline: digests known',
  });

  // ---- exchange: time and wire bytes per shape --------------------------------------------------
  const shapes: MerkleTreeOptions[] = [
    { fanout: 16, depth: 3 },
    { fanout: 2, depth: 12 },
    { fanout: 64, depth: 2 },
    { fanout: 16, depth: 2 },
    { fanout: 16, depth: 4 },
  ];
  for (const shape of shapes) {
    const ta = MerkleTree.fromEntries(WHOLE_RING, a, shape);
    const tb = MerkleTree.fromEntries(WHOLE_RING, b, shape);
    const sa = side(ta, a);
    const sb = side(tb, b);
    let out = exchangeLocally(sa, sb);
    const exchangeMs = medianMs(() => {
      out = exchangeLocally(sa, sb);
    });
    const sent = out.initiatorSends.length + out.responderSends.length;
    if (sent !== diff + Math.round(diff / 3)) throw new Error(`exchange sent ${sent} records, expected ${diff + Math.round(diff / 3)}`);
    const w = wireBytes(out, sa.record, sb.record);
    const total = w.protocol + w.records;
    const name = `${shape.fanout}^${shape.depth}`;
    rows.push({
      suite: SUITE,
      metric: `exchange wire bytes, ${name} (${ta.segments} leaves), ${diff} of ${KEYS} keys differ, ${w.messages} msgs`,
      value: `${fmtKB(total)} (protocol ${fmtKB(w.protocol)})`,
      baseline: `${fmtKB(w.recordPayload)} records`,
      ratio: fmtRatio(total, w.recordPayload),
      goal: `<= 2x: ${total <= 2 * w.recordPayload ? 'met' : 'NOT met'}`,
    });
    rows.push({
      suite: SUITE,
      metric: `exchange CPU, ${name}: ${out.messages.length} protocol msgs (${out.messages.length / 2} round trips) + records`,
      value: fmtMs(exchangeMs),
      baseline: fmtMs(buildMs),
      ratio: fmtRatio(exchangeMs, buildMs),
      goal: 'baseline: a full rebuild',
    });
  }

  // ---- small divergence: the protocol's floor -----------------------------------------------------
  const few = new Set(a.slice(diff, diff + 10).map((e) => e));
  const b10 = a.map((e) => (few.has(e) ? entryOf(e.key, e.token, makeRecord(seededRandom(e.token))) : e));
  const ta = MerkleTree.fromEntries(WHOLE_RING, a);
  const tb = MerkleTree.fromEntries(WHOLE_RING, b10);
  const sa = side(ta, a);
  const sb = side(tb, b10);
  const out = exchangeLocally(sa, sb);
  const w = wireBytes(out, sa.record, sb.record);
  rows.push({
    suite: SUITE,
    metric: `exchange wire bytes, 16^3, 10 of ${KEYS} keys in another version`,
    value: `${fmtKB(w.protocol + w.records)} (protocol ${fmtKB(w.protocol)})`,
    baseline: `${fmtKB(w.recordPayload)} records`,
    ratio: fmtRatio(w.protocol + w.records, w.recordPayload),
    goal: `<= 2x: ${w.protocol + w.records <= 2 * w.recordPayload ? 'met' : 'NOT met'}`,
  });
  rows.push(...(await repairRows()));
  return rows;
}

/** Keys of the real repair (`BENCH_AE_KEYS`, default 100000). */
const AE_KEYS = Number(process.env['BENCH_AE_KEYS'] ?? KEYS);

/** An encoded sibling set of one version of `actor` holding `value`. */
function storedRecord(actor: string, value: Uint8Array): Uint8Array {
  return encodeSiblingSet(SiblingSet.empty<Uint8Array>().write(actor, VectorClock.EMPTY, { value, timestamp: 1 }).set);
}

/**
 * Two Stores (N = 2: both hold the whole ring) over a MemoryNetwork with
 * its codec, their storage filled before start: 1% of the keys differ, a
 * third only on A, a third only on B, a third in concurrent versions on
 * each. `a.repair()` once (measured), then once more (nothing differs).
 */
export async function repairRows(): Promise<Row[]> {
  const rand = seededRandom(11);
  const encoder = new TextEncoder();
  const storageA = new MemoryStorage();
  const storageB = new MemoryStorage();
  await storageA.open();
  await storageB.open();
  const diff = Math.round(AE_KEYS * DIVERGENCE);
  let differingBytes = 0;
  let expectedKeys = 0;
  for (let i = 0; i < AE_KEYS; i++) {
    const key = encoder.encode(`user:${Math.floor(rand() * 1e12).toString(36)}:${i}`);
    const token = hashKey(key);
    const ra = storedRecord('a.0', makeRecord(rand));
    const kind = i < diff ? i % 3 : -1;
    if (kind === -1) {
      await storageA.put(key, token, ra);
      await storageB.put(key, token, ra);
    } else if (kind === 0) {
      await storageA.put(key, token, ra);
      differingBytes += key.length + ra.length;
    } else if (kind === 1) {
      await storageB.put(key, token, ra);
      differingBytes += key.length + ra.length;
    } else {
      const rb = storedRecord('b.0', makeRecord(rand));
      await storageA.put(key, token, ra);
      await storageB.put(key, token, rb);
      differingBytes += 2 * key.length + ra.length + rb.length;
      expectedKeys++;
    }
    if (kind !== -1) expectedKeys++;
  }
  const net = new MemoryNetwork({ codec: true });
  // Slow gossip: the network's byte count is then (almost) the repair's alone.
  const common = { cluster: 'bench', replication: { n: 2, r: 1, w: 1 }, gossip: { interval: 60_000 }, antiEntropy: false } as const;
  const a = new Store({ ...common, id: 'a', transport: net.transport('a'), storage: storageA });
  const b = new Store({ ...common, id: 'b', transport: net.transport('b'), storage: storageB, seeds: ['a'] });
  await a.start();
  await b.start();
  await a.waitForMembers(2, { timeout: 120_000 });
  await b.waitForMembers(2, { timeout: 120_000 });
  try {
    const before = net.stats();
    const t0 = performance.now();
    const first = await a.repair();
    const ms = performance.now() - t0;
    const after = net.stats();
    if (first.keysExchanged !== expectedKeys) throw new Error(`repair exchanged ${first.keysExchanged} records, expected ${expectedKeys}`);
    const wire = first.bytesSent + first.bytesReceived;
    const t1 = performance.now();
    const second = await a.repair();
    const ms2 = performance.now() - t1;
    if (second.keysExchanged !== 0) throw new Error(`second repair exchanged ${second.keysExchanged} records, expected 0`);
    const name = `${AE_KEYS / 1000}k x 1 KB, ${diff} differ`;
    return [
      {
        suite: SUITE,
        metric: `store.repair() wire bytes, all messages both ways (${name}; ${after.sent - before.sent} msgs on the network)`,
        value: `${fmtKB(wire)} (network ${fmtKB(after.bytes - before.bytes)})`,
        baseline: `${fmtKB(differingBytes)} differing records`,
        ratio: fmtRatio(wire, differingBytes),
        goal: `<= 2x: ${wire <= 2 * differingBytes ? 'met' : 'NOT met'}`,
      },
      {
        suite: SUITE,
        metric: `store.repair() time (${name}): trees from a scan on both sides, ${first.keysExchanged} records merged`,
        value: fmtMs(ms),
        baseline: `${fmtMs(ms2)} (next round, nothing differs: ${fmtKB(second.bytesSent + second.bytesReceived)})`,
        ratio: fmtRatio(ms, ms2),
      },
    ];
  } finally {
    await b.stop();
    await a.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const t0 = performance.now();
  printTable(await merkleBench());
  console.log(`\n${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
