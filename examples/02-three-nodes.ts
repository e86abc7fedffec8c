/**
 * The README's first example as a runnable file: three nodes wired by hand
 * (no test helper), a write, a read through another node, a read-modify-write
 * with the context, and a delete. Run with `npx tsx examples/02-three-nodes.ts`.
 */
import { MemoryNetwork, Store } from 'quorumkv';

const net = new MemoryNetwork(); // in-process network (tests, demos)
const a = new Store({ id: 'a', cluster: 'demo', transport: net.transport('a') });
const b = new Store({ id: 'b', cluster: 'demo', transport: net.transport('b'), seeds: ['a'] });
const c = new Store({ id: 'c', cluster: 'demo', transport: net.transport('c'), seeds: ['a'] });
await Promise.all([a.start(), b.start(), c.start()]); // resolve once listening
await Promise.all([a, b, c].map((s) => s.waitForMembers(3))); // gossip has found everyone

await a.put('user:1', { name: 'Ada' });
const r = await b.get('user:1');
console.log('read through b:', r?.values);
await c.put('user:1', { name: 'Ada Lovelace' }, { context: r?.context });
console.log('after a read-modify-write through c:', (await a.get('user:1'))?.values);
await a.delete('user:1');
console.log('after delete:', await b.get('user:1'));
await Promise.all([a.stop(), b.stop(), c.stop()]);
