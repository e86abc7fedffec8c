/**
 * quorumkv demo: a 5-node cluster inside one process.
 *
 * Run with `npm start`. It writes and reads through different nodes, creates
 * a conflict and resolves it, shows `consistency: 'all'` failing clearly while
 * a node is cut off and watches read repair bring it up to date once the
 * network heals. Then a node crashes while writes go on (sloppy quorum:
 * stand-ins keep hints), restarts and gets its writes handed over (hinted
 * handoff), and finally restarts with an empty disk and is rebuilt by
 * anti-entropy (Merkle trees) without any read.
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
const latest: Profile = { ...merged, langs: ['Analytical Engine', 'Bernoulli numbers'] };
try {
  await node('a').put(key, latest, { context: resolved?.context, consistency: 'all', timeout: 500 });
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

say(`The network heals, but ${victim} missed that write ('all' asks the key's own replicas only: no stand-in kept it)`);
console.log(`   ${victim} local copy: ${JSON.stringify((await node(victim).localGet(key))?.values)}`);
const repaired = new Promise<readonly string[]>((resolve) => {
  for (const s of cluster.stores) s.once('repair:completed', (e) => resolve(e.nodes));
});
const fresh = await node('e').get(key, { consistency: 'all' });
console.log(`   a read through e answers ${JSON.stringify(fresh?.values)} and repairs the stale replica...`);
console.log(`   read repair updated: ${(await repaired).join(', ')}`);
console.log(`   ${victim} local copy now: ${JSON.stringify((await node(victim).localGet(key))?.values)}`);

// ---- sloppy quorum, hinted handoff and anti-entropy ------------------------------------------
const orders = Array.from({ length: 30 }, (_, i) => `order:${i}`);
const ownedBy = (id: string): string[] => orders.filter((k) => node('a').ring.preferenceList(k, 3).some((n) => n.id === id));
const holds = async (store: Store<Profile>, keys: readonly string[]): Promise<number> =>
  (await Promise.all(keys.map((k) => store.localGet(k)))).filter((r) => r !== undefined).length;
const hinted = { stored: 0, delivered: 0 };
for (const s of cluster.stores) {
  s.on('hint:stored', () => void hinted.stored++);
  s.on('hint:delivered', () => void hinted.delivered++);
}

const away = 'd';
const mine = ownedBy(away);
say(`Node ${away} crashes. Writes go on: a stand-in takes each write meant for ${away} and keeps a hint (sloppy quorum)`);
await node(away).stop();
for (const k of orders) await node('a').put(k, { name: `order ${k}` });
console.log(`   ${orders.length} quorum puts succeeded with ${away} down; ${mine.length} of those keys belong to ${away}`);
console.log(`   hints stored on stand-ins: ${hinted.stored}`);

say(`Node ${away} restarts over its storage: the stand-ins hand its writes over (hinted handoff)`);
const back = await cluster.restart(away);
const deadline = Date.now() + 10_000;
while (hinted.delivered < hinted.stored && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const heldAfterHints = await holds(back, mine);
console.log(`   hints delivered: ${hinted.delivered} of ${hinted.stored}; ${away} holds ${heldAfterHints} of its ${mine.length} keys`);

say(`Node ${away}'s disk is replaced: it restarts empty. Hints only covered what it missed while down`);
const wiped = await cluster.restart(away, { emptyStorage: true });
console.log(`   ${away} holds ${await holds(wiped, mine)} of its ${mine.length} keys`);
const result = await wiped.repair();
const heldRepaired = await holds(wiped, mine);
console.log(
  `   anti-entropy repair: ${result.rangesCompared} (range, peer) Merkle tree comparisons, ` +
    `${result.keysExchanged} records exchanged, ${result.bytesSent} bytes sent`,
);
console.log(`   ${away} holds ${heldRepaired} of its ${mine.length} keys again, without a single read`);
if (heldRepaired !== mine.length || heldAfterHints !== mine.length) console.log('   BUG: a replica is missing data');

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
