/**
 * One quorumkv node in its own OS process, for the tests in test/process/:
 * a Store on a TcpTransport at 127.0.0.1, driven by its parent over IPC
 * (`child_process.fork` with `serialization: 'advanced'`, run as
 * `node --import tsx test/process/node-main.ts`; see harness.ts).
 *
 * Every command is `{ id, cmd, ...args }` and is answered once with
 * `{ id, ok: true, result }` or `{ id, ok: false, error: { code, name, message } }`:
 *
 * | cmd | args | result |
 * | --- | --- | --- |
 * | `start` | {@link StartOptions} | `{ address, pid }` once listening |
 * | `put` | `{ key, value, w?, context?, timeout? }` | `null` |
 * | `get` | `{ key, r?, timeout? }` | `{ values, context } \| null` |
 * | `localGet` | `{ key }` | `{ values } \| null` (this node's own record) |
 * | `repair` | `{ timeout? }` | `store.repair()`'s result |
 * | `waitForMembers` | `{ count, timeout? }` | `null` once gossip shows `count` live members |
 * | `members` | — | `store.members()` |
 * | `stats` | — | the transport's counters |
 * | `stop` | — | `null`, then the process exits 0 |
 *
 * The node announces itself with `{ ready: true }` once it can take
 * commands. An uncaught error is written to stderr and exits with code 70.
 */
import {
  LevelStorage,
  LmdbStorage,
  Store,
  TcpTransport,
  type GossipOptions,
  type ReplicationOptions,
  type StorageAdapter,
} from 'quorumkv';
import { TEST_CLUSTER_GOSSIP } from 'quorumkv/testing';

/** Options of the `start` command. */
export interface StartOptions {
  /** Node id. */
  readonly nodeId: string;
  /** @default 'process-test' */
  readonly cluster?: string;
  /** Port to listen on at 127.0.0.1; 0 picks one. @default 0 */
  readonly port?: number;
  /** Addresses to join through. @default [] */
  readonly seeds?: readonly string[];
  /** @default { n: 3, r: 2, w: 2 } */
  readonly replication?: ReplicationOptions;
  /** @default TEST_CLUSTER_GOSSIP (50 ms rounds) */
  readonly gossip?: GossipOptions;
  /** Per-call deadline of the store, ms. @default 3000 */
  readonly timeout?: number;
  /** Cluster secret of the transport. @default none */
  readonly secret?: string;
  /** A durable adapter over `path` (a restart over the same path finds its data). @default memory storage */
  readonly storage?: { readonly adapter: 'level' | 'lmdb'; readonly path: string; readonly durability?: 'sync' | 'async' };
}

/** A command from the parent. */
export interface NodeCommand {
  readonly id: number;
  readonly cmd: 'start' | 'put' | 'get' | 'localGet' | 'repair' | 'waitForMembers' | 'members' | 'stats' | 'stop';
  readonly [arg: string]: unknown;
}

/** The answer to one command. */
export type NodeReply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly code?: string; readonly name: string; readonly message: string } };

let store: Store | undefined;
let transport: TcpTransport | undefined;

function durableStorage(o: NonNullable<StartOptions['storage']>): StorageAdapter {
  const options = { path: o.path, durability: o.durability ?? 'sync' };
  return o.adapter === 'level' ? new LevelStorage(options) : new LmdbStorage(options);
}

function running(): Store {
  if (store === undefined) throw new Error('node-main: not started (send `start` first)');
  return store;
}

async function run(c: NodeCommand): Promise<unknown> {
  switch (c.cmd) {
    case 'start': {
      if (store !== undefined) throw new Error('node-main: already started');
      const o = c['options'] as StartOptions;
      transport = new TcpTransport({
        host: '127.0.0.1',
        port: o.port ?? 0,
        // Tests do not wait out the production backoff (up to 5 s) to redial a restarted peer.
        reconnect: { initialDelay: 50, maxDelay: 500 },
        ...(o.secret === undefined ? {} : { secret: o.secret }),
      });
      store = new Store({
        id: o.nodeId,
        cluster: o.cluster ?? 'process-test',
        transport,
        seeds: o.seeds ?? [],
        replication: o.replication ?? { n: 3, r: 2, w: 2 },
        gossip: o.gossip ?? TEST_CLUSTER_GOSSIP,
        timeout: o.timeout ?? 3_000,
        ...(o.storage === undefined ? {} : { storage: durableStorage(o.storage) }),
      });
      await store.start();
      return { address: transport.address, pid: process.pid };
    }
    case 'put': {
      const options = {
        ...(c['w'] === undefined ? {} : { w: c['w'] as number }),
        ...(c['context'] === undefined ? {} : { context: c['context'] as string }),
        ...(c['timeout'] === undefined ? {} : { timeout: c['timeout'] as number }),
      };
      await running().put(c['key'] as string, c['value'], options);
      return null;
    }
    case 'get': {
      const options = {
        ...(c['r'] === undefined ? {} : { r: c['r'] as number }),
        ...(c['timeout'] === undefined ? {} : { timeout: c['timeout'] as number }),
      };
      const r = await running().get(c['key'] as string, options);
      return r === undefined ? null : { values: r.values, context: r.context };
    }
    case 'localGet': {
      const r = await running().localGet(c['key'] as string);
      return r === undefined ? null : { values: r.values };
    }
    case 'repair':
      return running().repair({ timeout: (c['timeout'] as number | undefined) ?? 10_000 });
    case 'waitForMembers':
      await running().waitForMembers(c['count'] as number, { timeout: (c['timeout'] as number | undefined) ?? 10_000 });
      return null;
    case 'members':
      return running().members();
    case 'stats':
      if (transport === undefined) throw new Error('node-main: not started');
      return transport.stats();
    case 'stop':
      await store?.stop();
      store = undefined;
      return null;
    default:
      throw new Error(`node-main: unknown command ${String((c as { cmd?: unknown }).cmd)}`);
  }
}

function describeError(err: unknown): { code?: string; name: string; message: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { ...(typeof code === 'string' ? { code } : {}), name: err.name, message: err.message };
  }
  return { name: 'Error', message: String(err) };
}

if (process.send === undefined) {
  process.stderr.write('node-main: run me with child_process.fork (IPC); see test/process/harness.ts\n');
  process.exit(64);
}

process.on('uncaughtException', (err) => {
  process.stderr.write(`node-main: uncaught ${err.stack ?? String(err)}\n`);
  process.exit(70);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`node-main: unhandled rejection ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(70);
});

process.on('message', (c: NodeCommand) => {
  run(c).then(
    (result) => {
      const reply: NodeReply = { id: c.id, ok: true, result };
      process.send!(reply, () => {
        if (c.cmd === 'stop') process.exit(0);
      });
    },
    (err: unknown) => {
      const reply: NodeReply = { id: c.id, ok: false, error: describeError(err) };
      process.send!(reply);
    },
  );
});
// The parent went away (test runner killed): stop at once rather than linger.
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
