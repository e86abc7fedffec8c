/**
 * One process of the tcp benchmark (bench/tcp.ts forks three of these).
 * Commands arrive over IPC as `{ id, cmd, ... }` and are answered with
 * `{ id, ok: true, result }` or `{ id, ok: false, error }`:
 *
 * - `echo-serve`: a raw TCP echo server on 127.0.0.1 (length-prefixed
 *   frames, Nagle off, answers written corked) → `{ port }`;
 * - `echo-load { ports, ms, inFlight, rate?, bytes }`: connects to the echo
 *   servers and runs the fan-out echo (each op sends one frame to every
 *   server and waits for all answers) → a {@link LoadResult};
 * - `store-start { cluster, nodeId, seeds, preallocate, expectedKeys }`: a Store on
 *   TcpTransport (N3 W2 R2, MemoryStorage preallocating that many bytes) →
 *   `{ address }`; `store-stop`; `store-wait { count }`; `store-prefill
 *   { keys, bytes }`; `store-load { op: 'put' | 'get', ms, inFlight, rate?,
 *   bytes, keys }` → a {@link LoadResult};
 * - `redis-load { port, op: 'set-wait' | 'get', ms, inFlight, rate?, bytes,
 *   keys }`: the Redis reference through a minimal RESP client (one
 *   connection per request in flight, because `WAIT` blocks its connection);
 * - `cpu` → `process.cpuUsage()`; `exit`;
 * - `profile-start` / `profile-stop { file }`: a V8 CPU profile of what runs
 *   in between, written to `file` (`.cpuprofile`; bench/tcp.ts uses them
 *   when `BENCH_TCP_PROFILE` names a directory).
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import net from 'node:net';
import { dirname } from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { MemoryStorage, Store, TcpTransport } from '../src/index.js';

/** A command from the parent. */
interface Command {
  readonly id: number;
  readonly cmd: string;
  readonly [key: string]: unknown;
}

/** How one load window went. */
export interface LoadResult {
  /** Operations completed inside the window. */
  readonly ops: number;
  /** Operations that failed (counted, not in `ops`). */
  readonly errors: number;
  /** The first failure's message, if any. */
  readonly firstError: string | undefined;
  /** Wall time of the window, in ms. */
  readonly elapsedMs: number;
  /** The rate asked for (ops/s), or 0 for as fast as the in-flight bound allows. */
  readonly offered: number;
  /** Latency percentiles from issue to completion, in ms. */
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  /**
   * The garbage collector's pauses in this process during the window: how
   * many, their sum and median, in ms (from `PerformanceObserver` 'gc'
   * entries). A pause stops every operation in flight and every one due
   * meanwhile, so when they hit more than 1% of the operations they set the p99.
   */
  readonly gcPauses: number;
  readonly gcMs: number;
  readonly gcP50: number;
  /**
   * The share of the operations whose time in flight overlapped one of
   * those pauses, and the p99 of the others (NaN if none): which part of
   * the p99 is the collector's and which the operations' own (docs/tcp.md).
   */
  readonly gcHitShare: number;
  readonly cleanP99: number;
  /**
   * This process's {@link Usage} as the window ended, before the
   * latencies were sorted and split (work of the measurement, not of the
   * window: ~50 ms for a window of 250k operations).
   */
  readonly usageAtEnd: Usage;
}

/** CPU µs (user + system; system alone), minor page faults (first touches of fresh memory), and the store's frames sent and socket writes so far. */
export interface Usage {
  readonly cpu: number;
  readonly sys: number;
  readonly faults: number;
  readonly frames: number;
  readonly writes: number;
}

function usageNow(): Usage {
  const u = process.resourceUsage();
  const t = storeTransport?.stats();
  return { cpu: u.userCPUTime + u.systemCPUTime, sys: u.systemCPUTime, faults: u.minorPageFault, frames: t?.framesSent ?? 0, writes: t?.socketWrites ?? 0 };
}

/**
 * Splits operations (issued at `starts[k]`, taking `latencies[k]` ms) by
 * whether a pause (`pauseAt[j]` to `pauseAt[j] + pauseMs[j]`, in time
 * order, never overlapping) fell within their time in flight: returns the
 * share that one did and the sorted latencies of those none did.
 */
function splitByPauses(starts: Float64Array, latencies: Float64Array, count: number, pauseAt: readonly number[], pauseMs: readonly number[]): { hitShare: number; clean: Float64Array } {
  const clean = new Float64Array(count);
  let n = 0;
  for (let k = 0; k < count; k++) {
    const start = starts[k]!;
    const end = start + latencies[k]!;
    // The last pause that began before the operation ended: an earlier one ended before that one began.
    let lo = 0;
    let hi = pauseAt.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pauseAt[mid]! < end) lo = mid + 1;
      else hi = mid;
    }
    const j = lo - 1;
    if (j < 0 || pauseAt[j]! + pauseMs[j]! <= start) clean[n++] = latencies[k]!;
  }
  return { hitShare: count === 0 ? 0 : (count - n) / count, clean: clean.subarray(0, n).sort() };
}

/** A copy of `a` in an array twice as long. */
function doubled(a: Float64Array): Float64Array<ArrayBuffer> {
  const grown = new Float64Array(a.length * 2);
  grown.set(a);
  return grown;
}

/** Options of {@link runLoad}. */
interface LoadSpec {
  /** Window length, in ms. */
  readonly ms: number;
  /** Most operations in flight at once. */
  readonly inFlight: number;
  /**
   * Operations per second to offer (open loop, issued from a 1 ms timer and
   * on every completion); absent or 0: closed loop at `inFlight`.
   */
  readonly rate?: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/**
 * Runs `op(0), op(1), …` for `spec.ms`: closed loop (`inFlight` at once), or
 * open loop at `spec.rate` with at most `inFlight` in flight. Latency is
 * measured from the moment an operation is issued.
 */
function runLoad(op: (i: number) => Promise<unknown>, spec: LoadSpec): Promise<LoadResult> {
  const rate = spec.rate ?? 0;
  // Room for the whole window up front (grown by doubling if it is not): a
  // growing number[] is a large young object the collector copies while it measures.
  let latencies = new Float64Array(Math.max(1024, Math.ceil((((rate > 0 ? rate : 300_000) * spec.ms) / 1000) * 1.25)));
  let count = 0;
  // When each operation was issued, to tell those a collector pause held (see splitByPauses).
  let starts = new Float64Array(latencies.length);
  const pauses: number[] = [];
  const pauseAt: number[] = [];
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      pauses.push(entry.duration);
      pauseAt.push(entry.startTime);
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  let issued = 0;
  let inflight = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const end = t0 + spec.ms;
  return new Promise<LoadResult>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      const usageAtEnd = usageNow();
      if (timer !== undefined) clearTimeout(timer);
      gc.disconnect();
      const { hitShare, clean } = splitByPauses(starts, latencies, count, pauseAt, pauses);
      const sorted = latencies.subarray(0, count).sort();
      const sortedPauses = Float64Array.from(pauses).sort();
      resolve({
        ops: count,
        errors,
        firstError,
        elapsedMs: performance.now() - t0,
        offered: rate,
        p50: percentile(sorted, 0.5),
        p95: percentile(sorted, 0.95),
        p99: percentile(sorted, 0.99),
        max: sorted.length > 0 ? sorted[sorted.length - 1]! : NaN,
        gcPauses: pauses.length,
        gcMs: pauses.reduce((a, b) => a + b, 0),
        gcP50: percentile(sortedPauses, 0.5),
        gcHitShare: hitShare,
        cleanP99: percentile(clean, 0.99),
        usageAtEnd,
      });
    };
    const issue = (i: number): void => {
      inflight++;
      const start = performance.now();
      op(i).then(
        () => {
          inflight--;
          const now = performance.now();
          if (now <= end) {
            if (count === latencies.length) {
              latencies = doubled(latencies);
              starts = doubled(starts);
            }
            starts[count] = start;
            latencies[count++] = now - start;
          }
          pump();
        },
        (err: unknown) => {
          inflight--;
          errors++;
          firstError ??= err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
          pump();
        },
      );
    };
    const pump = (): void => {
      const now = performance.now();
      if (now >= end) {
        if (inflight === 0) finish();
        return;
      }
      const due = rate > 0 ? Math.floor(((now - t0) * rate) / 1000) + 1 : Infinity;
      while (inflight < spec.inFlight && issued < due) issue(issued++);
    };
    const tick = (): void => {
      pump();
      if (performance.now() < end) timer = setTimeout(tick, rate > 0 ? 1 : Math.max(1, end - performance.now()));
      else {
        timer = undefined;
        if (inflight === 0) finish();
      }
    };
    tick();
  });
}

// ---------------------------------------------------------------------------
// Length-prefixed frames over raw sockets

/** Splits a byte stream into `[u32 length][payload]` frames. */
class FrameReader {
  #rest: Buffer = Buffer.alloc(0);

  /**
   * Feeds a chunk; calls `onFrame` with each complete payload (a view valid
   * during the call) and returns the bytes of the complete frames, prefixes
   * included (a view of the chunk when nothing was left over before it).
   */
  push(chunk: Buffer, onFrame?: (payload: Buffer) => void): Buffer {
    const buf = this.#rest.length === 0 ? chunk : Buffer.concat([this.#rest, chunk]);
    let pos = 0;
    while (buf.length - pos >= 4) {
      const len = buf.readUInt32BE(pos);
      if (buf.length - pos - 4 < len) break;
      onFrame?.(buf.subarray(pos + 4, pos + 4 + len));
      pos += 4 + len;
    }
    this.#rest = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
    return buf.subarray(0, pos);
  }
}

/** Writes through `socket.cork()`, uncorked on the next tick: many small writes leave as one. */
function corkedWriter(socket: net.Socket): (data: Buffer) => void {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  return (data) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    socket.write(data);
  };
}

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();

function track(socket: net.Socket): net.Socket {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  return socket;
}

/**
 * The echo server: every complete frame goes back as it came; the frames
 * of one read leave in one write (a server answering many small requests
 * batches its writes the same way: TcpTransport corks each tick's writes).
 */
async function echoServe(): Promise<{ port: number }> {
  const server = net.createServer((socket) => {
    track(socket).setNoDelay(true);
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      const frames = reader.push(chunk);
      if (frames.length > 0) socket.write(frames);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return { port: (server.address() as net.AddressInfo).port };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(track(socket));
    });
    socket.once('error', reject);
  });
}

/** The fan-out echo: op i sends one `bytes`-byte frame to every server and resolves when all answered. */
async function echoLoad(ports: readonly number[], bytes: number, spec: LoadSpec): Promise<LoadResult> {
  const conns = await Promise.all(ports.map(connect));
  const waiting = new Map<number, { left: number; resolve: () => void }>();
  const writers = conns.map((socket) => {
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) =>
      reader.push(chunk, (payload) => {
        const id = payload.readUInt32BE(0);
        const w = waiting.get(id);
        if (w !== undefined && --w.left === 0) {
          waiting.delete(id);
          w.resolve();
        }
      }),
    );
    return corkedWriter(socket);
  });
  const template = Buffer.alloc(4 + bytes, 0x61);
  template.writeUInt32BE(bytes, 0);
  try {
    return await runLoad(
      (i) =>
        new Promise<void>((resolve) => {
          const id = i >>> 0;
          waiting.set(id, { left: writers.length, resolve });
          const frame = Buffer.from(template);
          frame.writeUInt32BE(id, 4);
          for (const write of writers) write(frame);
        }),
      spec,
    );
  } finally {
    for (const socket of conns) socket.destroy();
  }
}

// ---------------------------------------------------------------------------
// A minimal RESP client (enough for SET, WAIT and GET)

/** One Redis connection; replies are matched to commands in order. */
class RespConnection {
  readonly #socket: net.Socket;
  readonly #queue: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  #buffer: Buffer = Buffer.alloc(0);

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => {
      for (const q of this.#queue.splice(0)) q.reject(new Error('redis connection closed'));
    });
  }

  static async open(port: number): Promise<RespConnection> {
    return new RespConnection(await connect(port));
  }

  /** Sends one command; resolves with its reply. */
  send(args: readonly (string | Buffer)[]): Promise<unknown> {
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = typeof a === 'string' ? Buffer.from(a) : a;
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    this.#socket.write(Buffer.concat(parts));
    return new Promise((resolve, reject) => this.#queue.push({ resolve, reject }));
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const parsed = parseResp(this.#buffer, 0);
      if (parsed === undefined) return;
      this.#buffer = this.#buffer.subarray(parsed.end);
      const q = this.#queue.shift();
      if (q === undefined) continue;
      if (parsed.value instanceof Error) q.reject(parsed.value);
      else q.resolve(parsed.value);
    }
  }
}

/** Parses one RESP2 reply at `pos`; undefined when incomplete. */
function parseResp(buf: Buffer, pos: number): { value: unknown; end: number } | undefined {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const line = buf.toString('latin1', pos + 1, eol);
  switch (buf[pos]) {
    case 0x2b: // +
      return { value: line, end: eol + 2 };
    case 0x2d: // -
      return { value: new Error(`redis: ${line}`), end: eol + 2 };
    case 0x3a: // :
      return { value: Number(line), end: eol + 2 };
    case 0x24: {
      // $
      const len = Number(line);
      if (len < 0) return { value: null, end: eol + 2 };
      if (buf.length < eol + 2 + len + 2) return undefined;
      return { value: buf.subarray(eol + 2, eol + 2 + len), end: eol + 2 + len + 2 };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      const items: unknown[] = [];
      let at = eol + 2;
      for (let i = 0; i < count; i++) {
        const item = parseResp(buf, at);
        if (item === undefined) return undefined;
        items.push(item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new Error(`redis: unexpected reply byte 0x${(buf[pos] ?? 0).toString(16)}`);
  }
}

/**
 * The Redis reference: `set-wait` is SET then `WAIT 1 0` (one replica
 * acknowledged), `get` is GET; one connection per request in flight.
 */
async function redisLoad(port: number, op: 'set-wait' | 'get', bytes: number, keys: number, spec: LoadSpec): Promise<LoadResult> {
  const conns = await Promise.all(Array.from({ length: spec.inFlight }, () => RespConnection.open(port)));
  const free = [...conns];
  const value = Buffer.alloc(bytes, 0x62);
  try {
    if (op === 'get') {
      for (let k = 0; k < keys; k += conns.length) {
        await Promise.all(conns.map((c, j) => (k + j < keys ? c.send(['SET', `key:${k + j}`, value]) : undefined)));
      }
    }
    return await runLoad(async (i) => {
      const c = free.pop()!;
      try {
        if (op === 'get') {
          const got = await c.send(['GET', `key:${(i * 7919) % keys}`]);
          if (!(got instanceof Buffer) || got.length !== bytes) throw new Error('redis GET returned the wrong value');
        } else {
          const [, acked] = await Promise.all([c.send(['SET', 'fresh:' + i.toString(36), value]), c.send(['WAIT', '1', '0'])]);
          if (typeof acked !== 'number' || acked < 1) throw new Error(`redis WAIT 1 acknowledged ${String(acked)}`);
        }
      } finally {
        free.push(c);
      }
    }, spec);
  } finally {
    for (const c of conns) c.close();
  }
}

// ---------------------------------------------------------------------------
// The store

let store: Store<Uint8Array> | undefined;
let storeTransport: TcpTransport | undefined;

function running(): Store<Uint8Array> {
  if (store === undefined) throw new Error('bench/tcp-child: store-start first');
  return store;
}

/**
 * A Store on TcpTransport at 127.0.0.1, N3 W2 R2, on a MemoryStorage that
 * preallocates `preallocate` bytes and makes room for `expectedKeys` keys
 * (0: its defaults), in cluster `cluster`.
 */
async function storeStart(
  cluster: string,
  nodeId: string,
  seeds: readonly string[],
  preallocate: number,
  expectedKeys: number,
): Promise<{ address: string }> {
  if (store !== undefined) throw new Error('bench/tcp-child: store-stop first');
  const transport = new TcpTransport({ host: '127.0.0.1', port: 0, defaultTimeout: 10_000 });
  storeTransport = transport;
  store = new Store<Uint8Array>({
    id: nodeId,
    cluster,
    transport,
    storage: new MemoryStorage({ preallocate, expectedKeys }),
    seeds,
    replication: { n: 3, r: 2, w: 2 },
    timeout: 10_000,
  });
  await store.start();
  return { address: transport.address };
}

/** A `bytes`-byte value (the same bytes for every key: the store copies them). */
const valueOfSize = (bytes: number): Uint8Array => Uint8Array.from({ length: bytes }, (_, i) => (i * 31) & 0xff);

/** Puts `key:0` … `key:<keys - 1>`, `inFlight` at a time. */
async function storePrefill(keys: number, bytes: number, inFlight: number): Promise<null> {
  const s = running();
  const value = valueOfSize(bytes);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < keys) await s.put(`key:${next++}`, value);
    }),
  );
  return null;
}

let putSerial = 0;

/** Quorum puts to fresh keys (blind writes to one key would pile up siblings), or gets of prefilled keys. */
function storeLoad(op: 'put' | 'get', bytes: number, keys: number, spec: LoadSpec): Promise<LoadResult> {
  const s = running();
  const value = valueOfSize(bytes);
  if (op === 'put') {
    // Base 36: a decimal \`${i}\` goes through V8's number-to-string cache,
    // which keeps each new string it makes (one per put) alive until another
    // number takes its place, so every scavenge of this process copied and
    // promoted the last few thousand of them (the put windows' pauses were
    // twice the get windows'; see docs/tcp.md). The radix path has no cache.
    const prefix = `fresh:${putSerial++}:`;
    return runLoad((i) => s.put(prefix + i.toString(36), value), spec);
  }
  // Not an async function: its promise and state were ~400 of the ~5,900 bytes a get allocated in this process.
  const check = (got: { values: Uint8Array[] } | undefined): void => {
    if (got === undefined || got.values.length !== 1 || got.values[0]!.byteLength !== bytes) throw new Error('bench: get returned the wrong value');
  };
  return runLoad((i) => s.get(`key:${(i * 7919) % keys}`).then(check), spec);
}

// ---------------------------------------------------------------------------
// Commands

type CommandHandler = (command: Command) => Promise<unknown>;
const handlers = new Map<string, CommandHandler>();

handlers.set('echo-serve', () => echoServe());
// BENCH_TCP_AB (see bench/tcp.ts): which variant the next window runs, for a patch under test to read.
handlers.set('ab', async (c) => {
  (globalThis as { __quorumkvBenchB?: boolean }).__quorumkvBenchB = c['b'] === true;
  return null;
});
handlers.set('echo-load', (c) =>
  echoLoad(c['ports'] as number[], Number(c['bytes']), { ms: Number(c['ms']), inFlight: Number(c['inFlight']), rate: Number(c['rate'] ?? 0) }),
);
handlers.set('redis-load', (c) =>
  redisLoad(Number(c['port']), c['op'] as 'set-wait' | 'get', Number(c['bytes']), Number(c['keys']), {
    ms: Number(c['ms']),
    inFlight: Number(c['inFlight']),
    rate: Number(c['rate'] ?? 0),
  }),
);
handlers.set('redis-wait', async (c) => {
  // Waits for the primary to listen, then polls INFO until it sees `replicas` replicas online (conditions with a deadline).
  const deadline = performance.now() + 20_000;
  let conn: RespConnection | undefined;
  while (conn === undefined) {
    conn = await RespConnection.open(Number(c['port'])).catch((err: unknown) => {
      if (performance.now() > deadline) throw err;
      return undefined;
    });
    if (conn === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  try {
    for (;;) {
      const info = String(await conn.send(['INFO', 'replication']));
      const online = (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
      if (online >= Number(c['replicas'])) return { online };
      if (performance.now() > deadline) throw new Error(`redis: only ${online} replicas online after 20 s:\n${info}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    conn.close();
  }
});
// What this process has used so far (see Usage).
handlers.set('usage', async () => usageNow());

let profiler: Session | undefined;
/**
 * `BENCH_TCP_PROFILE_HEAP=1`: the profiles also sample allocations, those the
 * young generation collects included (a `.heapprofile` next to each
 * `.cpuprofile`: where the scavenges' work comes from); `=survivors`: only
 * what outlived a young-generation collection (what scavenges copied and
 * promoted); `=live`: only what is still alive after a full collection at
 * the end (needs `--expose-gc` in `BENCH_TCP_NODE_FLAGS`).
 * `BENCH_TCP_HEAP_INTERVAL`: bytes between samples (default 512).
 */
const HEAP_PROFILE = process.env.BENCH_TCP_PROFILE_HEAP ?? '';
if (!['', '1', 'survivors', 'live'].includes(HEAP_PROFILE)) {
  throw new Error(`bench/tcp-child: BENCH_TCP_PROFILE_HEAP must be 1, survivors or live, got ${JSON.stringify(HEAP_PROFILE)}`);
}
handlers.set('profile-start', async () => {
  if (profiler !== undefined) throw new Error('bench/tcp-child: a profile is already running');
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
  await profiler.post('Profiler.start');
  if (HEAP_PROFILE !== '') {
    await profiler.post('HeapProfiler.enable');
    await profiler.post('HeapProfiler.startSampling', {
      samplingInterval: Number(process.env.BENCH_TCP_HEAP_INTERVAL ?? 512),
      includeObjectsCollectedByMajorGC: HEAP_PROFILE !== 'live',
      includeObjectsCollectedByMinorGC: HEAP_PROFILE === '1',
    });
  }
  return null;
});
handlers.set('profile-stop', async (c) => {
  const session = profiler;
  if (session === undefined) throw new Error('bench/tcp-child: profile-start first');
  profiler = undefined;
  const { profile } = await session.post('Profiler.stop');
  if (HEAP_PROFILE === 'live') (globalThis as { gc?: () => void }).gc?.();
  const heap = HEAP_PROFILE !== '' ? (await session.post('HeapProfiler.stopSampling')).profile : undefined;
  session.disconnect();
  const file = String(c['file']);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(profile));
  if (heap !== undefined) writeFileSync(file.replace(/\.cpuprofile$/, '.heapprofile'), JSON.stringify(heap));
  return { file };
});
handlers.set('store-start', (c) =>
  storeStart(String(c['cluster']), String(c['nodeId']), c['seeds'] as string[], Number(c['preallocate'] ?? 0), Number(c['expectedKeys'] ?? 0)),
);
handlers.set('store-stop', async () => {
  await running().stop();
  store = undefined;
  storeTransport = undefined;
  return null;
});
handlers.set('store-wait', async (c) => {
  await running().waitForMembers(Number(c['count']), { timeout: 30_000 });
  return null;
});
handlers.set('store-prefill', (c) => storePrefill(Number(c['keys']), Number(c['bytes']), Number(c['inFlight'])));
handlers.set('store-load', (c) =>
  storeLoad(c['op'] as 'put' | 'get', Number(c['bytes']), Number(c['keys']), {
    ms: Number(c['ms']),
    inFlight: Number(c['inFlight']),
    rate: Number(c['rate'] ?? 0),
  }),
);

async function shutdown(): Promise<void> {
  await store?.stop();
  store = undefined;
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
}

handlers.set('exit', async () => {
  await shutdown();
  setImmediate(() => process.exit(0));
  return {};
});

/** Answers the parent's commands (this file is only ever run forked, with IPC). */
function serveCommands(): void {
  if (process.send === undefined) throw new Error('bench/tcp-child: run me with child_process.fork (IPC)');
  process.on('message', (message: Command) => {
    const handler = handlers.get(message.cmd);
    const reply = (body: object): void => {
      process.send!({ id: message.id, ...body });
    };
    if (handler === undefined) {
      reply({ ok: false, error: `unknown command ${message.cmd}` });
      return;
    }
    handler(message).then(
      (result) => reply({ ok: true, result }),
      (err: unknown) => reply({ ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
    );
  });
  // The parent went away: do not linger.
  process.on('disconnect', () => {
    void shutdown().finally(() => process.exit(0));
  });
}

serveCommands();
