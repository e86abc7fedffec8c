/**
 * A three-process cluster on loopback: each node is its own OS process
 * (examples/04-tcp-cluster-node.ts), a Store on a TcpTransport at
 * 127.0.0.1. The second and third join through the first one's address; a
 * write through one process is read through the others; one process is
 * killed with SIGKILL and W=2 writes go on; it is restarted (empty: memory
 * storage) and reads through it see every write.
 *
 * Run with `npx tsx examples/04-tcp-cluster.ts`. On several machines, see
 * docs/multi-machine.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const NODE = fileURLToPath(new URL('./04-tcp-cluster-node.ts', import.meta.url));

/** A node process and a way to send it commands. */
class NodeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  address = '';
  #next = 1;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(readonly id: string, args: string[]) {
    // The child keeps this process's loader (tsx), so it runs TypeScript too, and gets the
    // V8 flag recommended for every node (docs/multi-machine.md, "Node flags").
    this.child = fork(NODE, ['--id', id, ...args], {
      execArgv: [...process.execArgv, '--initial-old-space-size=64'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', () => {
        for (const w of this.#waiting.values()) w.reject(new Error(`${id} exited`));
        this.#waiting.clear();
        resolve();
      }),
    );
    this.child.on('message', (m: { id?: number; ok?: boolean; result?: unknown; error?: string; address?: string }) => {
      if (m.address !== undefined) this.address = m.address;
      const w = m.id === undefined ? undefined : this.#waiting.get(m.id);
      if (w === undefined) return;
      this.#waiting.delete(m.id!);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`${id}: ${m.error}`));
    });
  }

  /** Resolves with the node's address once it listens. */
  listening(): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.id} did not start within 20 s`)), 20_000);
      const done = (): void => {
        clearTimeout(timer);
        this.child.off('message', onMessage);
      };
      const onMessage = (m: { address?: string }): void => {
        if (m.address === undefined) return;
        done();
        resolve(m.address);
      };
      this.child.on('message', onMessage);
      void this.exited.then(() => {
        done();
        reject(new Error(`${this.id} exited before listening`));
      });
    });
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...args, cmd, id });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}

const nodes: NodeProcess[] = [];
async function spawnNode(id: string, args: string[]): Promise<NodeProcess> {
  const node = new NodeProcess(id, args);
  nodes.push(node);
  node.address = await node.listening();
  return node;
}

function check(what: string, ok: boolean): void {
  console.log(`${ok ? 'ok ' : 'BUG'}: ${what}`);
  if (!ok) process.exitCode = 1;
}

try {
  console.log('== starting three processes on 127.0.0.1');
  const n1 = await spawnNode('n1', ['--port', '0']);
  const [n2, n3] = await Promise.all([
    spawnNode('n2', ['--port', '0', '--seeds', n1.address]),
    spawnNode('n3', ['--port', '0', '--seeds', n1.address]),
  ]);
  await Promise.all([n1, n2, n3].map((n) => n.call('wait', { count: 3 })));
  const members = await n2.call<{ id: string; address: string; status: string }[]>('members');
  console.log('members as n2 sees them:', members.map((m) => `${m.id}@${m.address} ${m.status}`).join(', '));
  console.log('pids:', [n1, n2, n3].map((n) => `${n.id}=${n.child.pid}`).join(' '));

  console.log('\n== a write through n1, reads through n2 and n3');
  await n1.call('put', { key: 'greeting', value: { text: 'hello over TCP' } });
  check('n2 reads it', JSON.stringify(await n2.call('get', { key: 'greeting' })) === '[{"text":"hello over TCP"}]');
  check('n3 reads it', JSON.stringify(await n3.call('get', { key: 'greeting' })) === '[{"text":"hello over TCP"}]');

  console.log(`\n== SIGKILL n3 (pid ${n3.child.pid})`);
  const n3Port = n3.address.slice(n3.address.lastIndexOf(':') + 1);
  n3.child.kill('SIGKILL');
  await n3.exited;
  for (let i = 0; i < 5; i++) await n1.call('put', { key: `after-kill:${i}`, value: i, w: 2 });
  check('five W=2 writes through n1 succeed with n3 dead', true);
  check('n2 reads them', JSON.stringify(await n2.call('get', { key: 'after-kill:4' })) === '[4]');

  console.log(`\n== restart n3 at port ${n3Port} (memory storage: it comes back empty)`);
  const n3b = await spawnNode('n3', ['--port', n3Port, '--seeds', n1.address]);
  await Promise.all([n1, n2, n3b].map((n) => n.call('wait', { count: 3 })));
  const seen = await Promise.all([0, 1, 2, 3, 4].map((i) => n3b.call<unknown[] | null>('get', { key: `after-kill:${i}` })));
  check('reads through the restarted n3 return every write made while it was dead', JSON.stringify(seen) === '[[0],[1],[2],[3],[4]]');

  console.log('\n== stopping');
  await Promise.all(nodes.filter((n) => n.running).map((n) => n.call('stop').catch(() => undefined)));
  await Promise.all(nodes.map((n) => n.exited));
  console.log('all processes exited');
} finally {
  // Whatever happened above, no process outlives the example.
  for (const n of nodes) if (n.running) n.child.kill('SIGKILL');
  await Promise.all(nodes.map((n) => n.exited));
}
