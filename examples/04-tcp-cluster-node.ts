/**
 * One quorumkv node over TCP, as its own process: a Store on a TcpTransport.
 * examples/04-tcp-cluster.ts starts three of these on loopback; on several
 * machines run one per machine (see docs/multi-machine.md):
 *
 * ```sh
 * # machine 10.0.0.1 (the first node: no seeds)
 * node --initial-old-space-size=64 --import tsx examples/04-tcp-cluster-node.ts --id n1 --host 0.0.0.0 --advertise-host 10.0.0.1 --port 7000
 * # machines 10.0.0.2 and 10.0.0.3
 * node --initial-old-space-size=64 --import tsx examples/04-tcp-cluster-node.ts --id n2 --host 0.0.0.0 --advertise-host 10.0.0.2 --port 7000 --seeds 10.0.0.1:7000
 * ```
 *
 * Options: `--id` (required), `--cluster` (default `demo`), `--host`
 * (default `127.0.0.1`), `--port` (default `0`: any free port),
 * `--advertise-host` (the host peers dial; required when `--host` is a
 * wildcard), `--seeds a:port,b:port`, `--secret` (or the `QKV_SECRET`
 * environment variable; at least 16 bytes), `--tls-ca`, `--tls-cert`,
 * `--tls-key` (PEM files: mutual TLS, see docs/tcp.md).
 *
 * Started from a terminal it reads commands on stdin: `put <key> <json>`,
 * `get <key>`, `members`, `quit`. Started by a parent with IPC (as example
 * 04 does) it announces `{ address }` and answers `{ id, cmd, ... }`
 * messages. SIGINT / SIGTERM stop the node cleanly.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Store, TcpTransport, type TcpTransportOptions } from 'quorumkv';

const { values: args } = parseArgs({
  options: {
    id: { type: 'string' },
    cluster: { type: 'string', default: 'demo' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'advertise-host': { type: 'string' },
    seeds: { type: 'string', default: '' },
    secret: { type: 'string' },
    'tls-ca': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
  },
});
if (args.id === undefined) {
  console.error('usage: 04-tcp-cluster-node.ts --id <node id> [--host h] [--port p] [--advertise-host h] [--seeds h:p,...] [--secret s]');
  process.exit(64);
}

const secret = args.secret ?? process.env['QKV_SECRET'];
const tlsFiles = [args['tls-ca'], args['tls-cert'], args['tls-key']];
if (tlsFiles.some((f) => f !== undefined) && tlsFiles.some((f) => f === undefined)) {
  console.error('--tls-ca, --tls-cert and --tls-key go together');
  process.exit(64);
}
const options: TcpTransportOptions = {
  host: args.host,
  port: Number(args.port),
  ...(args['advertise-host'] === undefined ? {} : { advertiseHost: args['advertise-host'] }),
  ...(secret === undefined ? {} : { secret }),
  ...(args['tls-ca'] === undefined
    ? {}
    : { tls: { ca: readFileSync(args['tls-ca'], 'utf8'), cert: readFileSync(args['tls-cert']!, 'utf8'), key: readFileSync(args['tls-key']!, 'utf8') } }),
};
const transport = new TcpTransport(options);
const store = new Store({
  id: args.id,
  cluster: args.cluster,
  transport,
  seeds: args.seeds.split(',').filter((s) => s.length > 0),
  replication: { n: 3, r: 2, w: 2 },
  // Gossip a little faster than the default so the demo sees changes quickly.
  gossip: { interval: 200, suspectAfterRounds: 5, downAfterRounds: 10 },
});
const name = `[${args.id}]`;
store.on('member:joined', (e) => console.log(name, 'member joined:', e.member.id, e.member.address));
store.on('member:down', (e) => console.log(name, 'member down:', e.member.id));
store.on('member:up', (e) => console.log(name, 'member up:', e.member.id));

let stopping: Promise<void> | undefined;
function shutdown(code: number): Promise<void> {
  stopping ??= store.stop().then(
    () => process.exit(code),
    (err: unknown) => {
      console.error(name, 'stop failed:', err);
      process.exit(1);
    },
  );
  return stopping;
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

await store.start();
console.log(name, `listening on ${transport.address}`, args.seeds ? `(seeds: ${args.seeds})` : '(first node)');

/** A command from the parent (example 04). */
type Command =
  | { id: number; cmd: 'put'; key: string; value: unknown; w?: number }
  | { id: number; cmd: 'get'; key: string }
  | { id: number; cmd: 'wait'; count: number }
  | { id: number; cmd: 'members' }
  | { id: number; cmd: 'stop' };

async function run(c: Command): Promise<unknown> {
  switch (c.cmd) {
    case 'put':
      await store.put(c.key, c.value, c.w === undefined ? {} : { w: c.w });
      return null;
    case 'get':
      return (await store.get(c.key))?.values ?? null;
    case 'wait':
      await store.waitForMembers(c.count, { timeout: 20_000 });
      return null;
    case 'members':
      return store.members().map((m) => ({ id: m.id, address: m.address, status: m.status }));
    case 'stop':
      await store.stop();
      return null;
  }
}

if (process.send !== undefined) {
  // Driven by a parent over IPC.
  process.on('message', (c: Command) => {
    run(c).then(
      (result) => process.send!({ id: c.id, ok: true, result }, () => c.cmd === 'stop' && process.exit(0)),
      (err: unknown) => process.send!({ id: c.id, ok: false, error: `${(err as { code?: string }).code ?? ''} ${String(err)}` }),
    );
  });
  process.on('disconnect', () => void shutdown(0));
  process.send({ address: transport.address });
} else {
  // Driven from a terminal.
  const lines = createInterface({ input: process.stdin });
  let queue: Promise<unknown> = Promise.resolve(); // one command at a time, in order
  const perform = async (line: string): Promise<unknown> => {
    const [cmd, key, ...rest] = line.trim().split(/\s+/);
    if (cmd === 'put' && key) return run({ id: 0, cmd: 'put', key, value: JSON.parse(rest.join(' ') || 'null') as unknown }).then(() => 'ok');
    if (cmd === 'get' && key) return run({ id: 0, cmd: 'get', key });
    if (cmd === 'members') return run({ id: 0, cmd: 'members' });
    if (cmd === 'quit') return shutdown(0);
    return 'commands: put <key> <json> | get <key> | members | quit';
  };
  lines.on('line', (line) => {
    queue = queue
      .then(() => perform(line))
      .then(
        (out) => console.log(out),
        (err: unknown) => console.log('error:', String(err)),
      );
  });
  lines.on('close', () => void queue.then(() => shutdown(0)));
}
