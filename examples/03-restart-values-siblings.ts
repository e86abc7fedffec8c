/**
 * What the core guarantees around restarts, values and siblings, in one run
 * (`npx tsx examples/03-restart-values-siblings.ts`):
 *
 * 1. A node restarted while cut off from everyone rebuilds its ring from its
 *    stored peers: it refuses a write it cannot place instead of keeping it
 *    alone (it never acts as a one-node cluster).
 * 2. Values come back as they were written (a Map stays a Map), or are
 *    refused with a TypeError naming the path.
 * 3. Blind concurrent writers to one key are bounded by `maxSiblings`; a
 *    write with the read's context collapses the siblings.
 */
import { KvError, Store } from 'quorumkv';
import { createTestCluster } from 'quorumkv/testing';

const cluster = await createTestCluster<unknown>({ nodes: 5, store: { maxSiblings: 10, siblingWarning: 5 } });
const n1 = cluster.store('n1');

console.log('\n== 1. A restarted, isolated node does not act alone');
const key = Array.from({ length: 100 }, (_, i) => `order:${i}`).find(
  (k) => !n1.ring.preferenceList(k, 3).some((n) => n.id === 'n3'),
) as string;
await cluster.store('n3').stop();
cluster.network.isolate('n3');
const n3 = new Store({
  id: 'n3',
  cluster: 'test',
  transport: cluster.network.transport('n3'),
  storage: cluster.storage('n3'), // the same storage: its stored peers are there
  seeds: ['n1'],
  timeout: 300,
});
await n3.start();
console.log(`   n3 restarted, isolated; its ring from stored peers has ${n3.ring.size} nodes`);
try {
  await n3.put(key, 'must not be kept by n3 alone', { consistency: 'all' });
  console.log('   BUG: the write was acknowledged');
} catch (err) {
  console.log(`   put("${key}", all) through n3 -> ${(err as KvError).code} (the owners are out of reach)`);
}
await n3.stop();
cluster.network.heal();
await cluster.restart('n3');

console.log('\n== 2. Values round-trip or are refused');
const inventory = new Map<string, Set<string>>([['apples', new Set(['red', 'green'])]]);
await n1.put('inventory', inventory);
const back = (await cluster.store('n2').get('inventory'))?.values[0];
console.log(`   a Map of Sets comes back as ${back instanceof Map ? 'a Map' : typeof back}:`, back);
try {
  await n1.put('event', { when: new Date(Number.NaN) });
} catch (err) {
  console.log(`   ${(err as Error).name}: ${(err as Error).message}`);
}

console.log('\n== 3. Siblings are bounded (maxSiblings: 10 here)');
cluster.stores.forEach((s) =>
  s.on('siblings:exceeded', (e) => console.log(`   siblings:exceeded on ${s.id}: "${String(e.key)}" has ${e.siblings} versions`)),
);
const owner = cluster.store(n1.ring.preferenceList('hot', 3)[0]!.id);
const results = await Promise.allSettled(Array.from({ length: 15 }, (_, i) => owner.put('hot', i)));
const refused = results.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as KvError).code);
console.log(`   15 blind writes through ${owner.id}: ${15 - refused.length} accepted, ${refused.length} refused (${[...new Set(refused)].join(', ')})`);
const read = await owner.get('hot');
console.log(`   a read returns ${read?.values.length} siblings; writing back with its context...`);
await owner.put('hot', 'merged', { context: read?.context });
console.log(`   now: ${JSON.stringify((await owner.get('hot'))?.values)}`);

await cluster.stop();
