/**
 * quorumkv demo: a 5-node cluster inside one process.
 *
 * Run with `npm start`. It writes and reads through different nodes, creates
 * a conflict and resolves it, shows `consistency: 'all'` failing clearly while
 * a node is cut off, then crashes a node, keeps writing, restarts it and
 * watches read repair bring it up to date.
 */
import { KvError, QuorumNotMetError, type Store } from 'quorumkv';
import { createTestCluster } from 'quorumkv/testing';

type Profile = { name: string; langs?: string[] };

function say(text: string): void {
  console.log(`\n== ${text}`);
}

const cluster = await createTestCluster<Profile>({ nodes: ['a', 'b', 'c', 'd', 'e'], replication: { n: 3, r: 2, w: 2 } });
const node = (id: string): Store<Profile> => cluster.store(id);

say('A 5-node cluster is up (N=3 replicas per key, W=2 and R=2, so W+R>N: reads see acknowledged writes)');
for (const s of cluster.stores) {
  const owned = s.ring.ownership().get(s.id) ?? 0;
  console.log(`   node ${s.id}: owns ${(owned * 100).toFixed(1)}% of the ring as primary; sees ${s.members().length} members`);
}

const key = 'user:ada';
const replicas = node('a').ring.preferenceList(key, 3).map((n) => n.id);
say(`"${key}" lives on nodes ${replicas.join(', ')} (the first 3 distinct nodes clockwise from its hash)`);

await node('a').put(key, { name: 'Ada' });
console.log(`   put through node a`);
for (const id of ['b', 'c', 'd', 'e']) {
  const r = await node(id).get(key);
  console.log(`   get through node ${id} -> ${JSON.stringify(r?.values)}`);
}

say('Two clients read the same version and both write: a conflict');
const read = await node('b').get(key);
await Promise.all([
  node('c').put(key, { name: 'Ada', langs: ['Analytical Engine'] }, { context: read?.context }),
  node('d').put(key, { name: 'Ada Lovelace' }, { context: read?.context }),
]);
const conflicted = await node('e').get(key);
console.log(`   get through node e -> ${conflicted?.values.length} siblings: ${JSON.stringify(conflicted?.values)}`);
console.log('   neither write was lost: they are concurrent (same context), so both are kept');

const merged: Profile = { name: 'Ada Lovelace', langs: ['Analytical Engine'] };
await node('a').put(key, merged, { context: conflicted?.context });
const resolved = await node('b').get(key);
console.log(`   the client merged them and wrote back with the read's context -> ${JSON.stringify(resolved?.values)}`);

const victim = replicas[2] as string;
say(`Node ${victim} (a replica of "${key}") is cut off from the network`);
cluster.network.isolate(victim);
try {
  await node('a').put(key, { ...merged, langs: ['Analytical Engine', 'Bernoulli numbers'] }, {
    context: resolved?.context,
    consistency: 'all',
    timeout: 500,
  });
} catch (err) {
  if (err instanceof QuorumNotMetError) {
    console.log(`   put with consistency 'all' fails clearly: ${err.code}, ${err.acknowledged} of ${err.required} acknowledged`);
    console.log(`   failures: ${err.failures.map((f) => `${f.node} ${f.code}`).join(', ')}`);
    console.log('   (like Dynamo, a failed write is not rolled back: the replicas that took it keep it)');
  } else throw err;
}
const quorumRead = await node('a').get(key);
console.log(`   a quorum read (R=2) still works: ${JSON.stringify(quorumRead?.values)}`);
cluster.network.heal();

say(`Node ${victim} crashes; writes continue with the other two replicas`);
await node(victim).stop();
const survivor = replicas.find((id) => id !== victim) as string;
const before = await node(survivor).get(key);
await node(survivor).put(key, { name: 'Ada Lovelace', langs: ['Analytical Engine', 'Note G'] }, { context: before?.context });
console.log(`   put through ${survivor} succeeded with ${victim} down (W=2 of 3)`);

say(`Node ${victim} restarts over its storage: it missed that write`);
const restarted = await cluster.restart(victim);
console.log(`   ${victim} local copy: ${JSON.stringify((await restarted.localGet(key))?.values)}`);
const repaired = new Promise<readonly string[]>((resolve) => {
  for (const s of cluster.stores) s.once('repair:completed', (e) => resolve(e.nodes));
});
const fresh = await node('e').get(key, { consistency: 'all' });
console.log(`   a read through e answers ${JSON.stringify(fresh?.values)} and repairs the stale replica...`);
console.log(`   read repair updated: ${(await repaired).join(', ')}`);
console.log(`   ${victim} local copy now: ${JSON.stringify((await restarted.localGet(key))?.values)}`);

say('Bad input is refused with a coded error and changes nothing');
for (const attempt of [() => node('a').put('', { name: 'x' }), () => node('a').put('big', { name: 'x'.repeat(20_000) })]) {
  try {
    await attempt();
  } catch (err) {
    if (err instanceof KvError) console.log(`   ${err.code}: ${err.message}`);
    else throw err;
  }
}

await cluster.stop();
say('All nodes stopped. Bye.');
