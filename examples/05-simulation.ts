/**
 * Testing your own service against seeded faults, in virtual time.
 *
 * A tiny "service" (a visit counter per page, kept as a set of visit ids so
 * concurrent visits merge) runs on a 5-node quorumkv cluster while a seeded
 * nemesis partitions, isolates, slows down, drops messages and crashes nodes.
 * Afterwards the network heals, the replicas are repaired, and we check that
 * every visit the service acknowledged is counted. A virtual minute of faults
 * runs in a few seconds; a failing seed replays exactly:
 *
 *   npx tsx examples/05-simulation.ts            # a random seed (printed)
 *   npx tsx examples/05-simulation.ts 1234       # replay seed 1234
 */
import type { Store } from 'quorumkv';
import { Nemesis, simulate } from 'quorumkv/testing';

/** The service under test: records a visit of `page` through one store. */
async function recordVisit(store: Store<string[]>, page: string, visit: string): Promise<void> {
  const read = await store.get(page);
  const visits = new Set((read?.values ?? []).flat()); // union of concurrent siblings
  visits.add(visit);
  await store.put(page, [...visits].sort(), read ? { context: read.context } : {});
}

/** How many distinct visits the service would report for `page`. */
async function countVisits(store: Store<string[]>, page: string): Promise<Set<string>> {
  const read = await store.get(page, { consistency: 'all' });
  return new Set((read?.values ?? []).flat());
}

const seed = process.argv[2] === undefined ? undefined : Number(process.argv[2]);
const pages = ['/home', '/about'];

const result = await simulate<string[], string>({ nodes: 5, ...(seed === undefined ? {} : { seed }) }, async (sim) => {
  const nemesis = new Nemesis(sim, { random: sim.random('nemesis'), faults: ['partition', 'isolate', 'loss', 'latency', 'crash'] });
  nemesis.start();

  // Three users of the service, each through a node of their own choosing, for one virtual minute.
  const acknowledged = new Set<string>();
  const until = sim.clock.now() + 60_000;
  await Promise.all(
    [0, 1, 2].map(async (user) => {
      const random = sim.random(`user:${user}`);
      for (let i = 0; sim.clock.now() < until; i++) {
        await sim.sleep(50 + Math.floor(random() * 200));
        const page = pages[Math.floor(random() * pages.length)]!;
        const via = sim.store(sim.nodes[Math.floor(random() * sim.nodes.length)]!);
        const visit = `${page}#u${user}.${i}`;
        try {
          await recordVisit(via, page, visit);
          acknowledged.add(visit);
        } catch {
          // Refused under faults (quorum not met, timeout, node down): not acknowledged.
        }
      }
    }),
  );

  await nemesis.stop(); // heals the network; restarted nodes are up
  await sim.startAll();
  await sim.repairAll();

  const counted = new Set<string>();
  for (const page of pages) for (const v of await countVisits(sim.store('n1'), page)) counted.add(v);
  const lost = [...acknowledged].filter((v) => !counted.has(v));
  if (lost.length > 0) throw new Error(`${lost.length} acknowledged visits lost, e.g. ${lost.slice(0, 3).join(', ')}`);
  return `${acknowledged.size} acknowledged visits, all counted; faults: ${nemesis.events.map((e) => e.fault).join(', ')}`;
});

console.log(result.value);
console.log(`seed ${result.seed}: ${(result.virtualMs / 1000).toFixed(0)} virtual s in ${(result.realMs / 1000).toFixed(1)} s (trace ${result.traceHash.slice(0, 12)})`);
