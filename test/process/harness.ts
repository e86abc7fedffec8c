/**
 * Runs quorumkv nodes as real OS processes (test/process/node-main.ts, one
 * Store on a TcpTransport each) and drives them over IPC.
 *
 * - `cluster.boot(name)` forks a node process, `cluster.start(node,
 *   options)` starts its Store (`cluster.spawn` does both);
 *   `node.call(cmd, args)` sends a command and resolves with its result (a
 *   failed command rejects with an error carrying the node's `code`).
 * - `node.kill9()` sends SIGKILL and waits for the exit; `cluster.restart(node,
 *   { port })` starts a new process with the same options (memory storage:
 *   it comes back empty, with a new incarnation), at the same port or another.
 * - Each node's stdout and stderr are kept; `cluster.logs()` returns them,
 *   for printing when a test fails.
 * - `cluster.close()` (call it in `afterEach`) kills every process it
 *   started that is still running and waits for each to exit.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { NodeCommand, NodeReply, StartOptions } from './node-main.js';

const NODE_MAIN = fileURLToPath(new URL('./node-main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How long a command may take before the harness gives up on it (ms). */
const DEFAULT_CALL_TIMEOUT = 15_000;
/** How long a process may take to boot (tsx compiles on first load) and announce itself (ms). */
const BOOT_TIMEOUT = 20_000;
/** Output kept per process, in characters. */
const MAX_LOG = 64 * 1024;

/** A command's failure, with the code the node reported. */
export class NodeCallError extends Error {
  readonly code: string | undefined;
  constructor(node: string, cmd: string, error: { code?: string; name: string; message: string }) {
    super(`${node}: ${cmd} failed: ${error.code ? `${error.code} ` : ''}${error.message}`);
    this.name = 'NodeCallError';
    this.code = error.code;
  }
}

/** One node process. */
export class NodeProcess {
  /** The test's name for it (e.g. `n1`), also used in errors. */
  readonly name: string;
  /** The options its Store was started with (set by {@link ProcessCluster.start}). */
  options: StartOptions | undefined;
  readonly child: ChildProcess;
  /** `host:port` its transport listens on (set once started). */
  address = '';
  /** Its stdout and stderr, interleaved, truncated at 64 KB. */
  log = '';
  /** Settles once the process exited, with its code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; cmd: string }>();

  constructor(name: string) {
    this.name = name;
    this.child = fork(NODE_MAIN, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const keep = (chunk: Buffer): void => {
      this.log += chunk.toString('utf8');
      if (this.log.length > MAX_LOG) this.log = this.log.slice(-MAX_LOG);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        for (const [id, w] of this.#waiting) {
          clearTimeout(w.timer);
          w.reject(new Error(`${this.name} exited (${signal ?? `code ${code}`}) before answering ${w.cmd}`));
          this.#waiting.delete(id);
        }
        resolve({ code, signal });
      });
    });
    this.child.on('message', (m: NodeReply | { ready: true }) => {
      if (!('id' in m)) return;
      const w = this.#waiting.get(m.id);
      if (w === undefined) return;
      this.#waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.ok) w.resolve(m.result);
      else w.reject(new NodeCallError(this.name, w.cmd, m.error));
    });
  }

  /** True until the process exits. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once the process announced it takes commands. */
  async ready(): Promise<void> {
    const announced = new Promise<void>((resolve) => {
      const onMessage = (m: unknown): void => {
        if (typeof m === 'object' && m !== null && (m as { ready?: unknown }).ready === true) {
          this.child.off('message', onMessage);
          resolve();
        }
      };
      this.child.on('message', onMessage);
    });
    let timer: NodeJS.Timeout | undefined;
    const failed = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not boot within ${BOOT_TIMEOUT} ms:\n${this.log}`)), BOOT_TIMEOUT);
      void this.exited.then(({ code, signal }) => reject(new Error(`${this.name} exited (${signal ?? `code ${code}`}) while booting:\n${this.log}`)));
    });
    try {
      await Promise.race([announced, failed]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a command; resolves with its result. */
  call<T = unknown>(cmd: NodeCommand['cmd'], args: Record<string, unknown> = {}, timeout = DEFAULT_CALL_TIMEOUT): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`${this.name} is not running (cannot ${cmd})`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`${this.name}: ${cmd} got no answer within ${timeout} ms`));
      }, timeout);
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, cmd });
      // With a callback, a failed send (the child was just killed: EPIPE) rejects this
      // call instead of being emitted as an uncaught 'error' on the child process.
      this.child.send({ ...args, cmd, id }, (err) => {
        if (err === null || err === undefined || !this.#waiting.has(id)) return;
        clearTimeout(timer);
        this.#waiting.delete(id);
        reject(new Error(`${this.name}: ${cmd} could not be sent: ${err.message}`, { cause: err }));
      });
    });
  }

  /** Writes `value` under `key` through this node. */
  put(key: string, value: unknown, options: { w?: number; timeout?: number; context?: string } = {}): Promise<void> {
    return this.call('put', { key, value, ...options });
  }

  /** Reads `key` through this node. */
  get(key: string, options: { r?: number; timeout?: number } = {}): Promise<{ values: unknown[]; context: string } | null> {
    return this.call('get', { key, ...options });
  }

  /** SIGKILL, then waits for the process to be gone. */
  async kill9(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Options of {@link ProcessCluster.restart}. */
export interface RestartOptions {
  /** `'same'` listens on the port it had; `'new'` on a fresh one. @default 'same' */
  port?: 'same' | 'new';
  /** Seeds of the new process. @default the ones it was started with */
  seeds?: readonly string[];
}

/** Every node process of one test. */
export class ProcessCluster {
  readonly #nodes: NodeProcess[] = [];

  /**
   * Forks a node process; resolves once it takes commands (its Store is not
   * started yet). Booting takes a second or two (tsx), so boot the
   * processes of a test together, then start them in order.
   */
  async boot(name: string): Promise<NodeProcess> {
    const node = new NodeProcess(name);
    this.#nodes.push(node);
    await node.ready();
    return node;
  }

  /** Starts the Store of a booted node; resolves once it listens. */
  async start(node: NodeProcess, options: StartOptions): Promise<NodeProcess> {
    const { address } = await node.call<{ address: string }>('start', { options });
    node.options = options;
    node.address = address;
    return node;
  }

  /** {@link boot}, then {@link start}. */
  async spawn(name: string, options: StartOptions): Promise<NodeProcess> {
    return this.start(await this.boot(name), options);
  }

  /** Starts `node` again in a new process (it must have exited, e.g. after `kill9()`). */
  async restart(node: NodeProcess, options: RestartOptions = {}): Promise<NodeProcess> {
    if (node.alive) throw new Error(`${node.name} is still running: kill it first`);
    if (node.options === undefined) throw new Error(`${node.name} was never started`);
    const port = (options.port ?? 'same') === 'same' ? Number(node.address.slice(node.address.lastIndexOf(':') + 1)) : 0;
    return this.spawn(node.name, { ...node.options, port, ...(options.seeds ? { seeds: options.seeds } : {}) });
  }

  /** Every process started, running or not. */
  get nodes(): readonly NodeProcess[] {
    return this.#nodes;
  }

  /** The output of every process, labelled. */
  logs(): string {
    return this.#nodes.map((n) => `--- ${n.name} (pid ${n.child.pid}) ---\n${n.log}`).join('\n');
  }

  /** Kills every process still running (SIGKILL) and waits until all have exited. */
  async close(): Promise<void> {
    await Promise.all(this.#nodes.map((n) => n.kill9()));
    this.#nodes.length = 0;
  }
}

/** Resolves once `check()` resolves true, retrying after each attempt; rejects after `ms` with `what` and the last error. */
export async function eventually(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `; last error: ${String(last)}` : ''}`);
    }
    // A pause between attempts of a condition with a deadline (not a fixed sleep standing in for one).
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
