/**
 * A quorumkv node that writes until it is killed, for crash-safety.test.ts.
 * Run as `node --import tsx test/process/crash-writer.ts` by `fork` with
 * IPC; the parent sends one {@link CrashWriterOptions} message.
 *
 * It starts a one-node Store on a durable adapter (`durability` from the
 * options) over `path`, then writes `key(i)` = `value(seed, i)` for i = 0,
 * 1, 2, … with `inFlight` writes outstanding at a time, and sends
 * `{ acked: i }` over IPC once the put of key i has resolved (so the parent
 * only ever hears of acknowledged writes). It never stops by itself: the
 * parent SIGKILLs it.
 */
import { MemoryNetwork, Store } from 'quorumkv';
import { CRASH_NODE_ID, crashKey, crashStorage, crashValue, type CrashWriterOptions } from './crash-shared.js';

async function run(options: CrashWriterOptions): Promise<void> {
  const net = new MemoryNetwork();
  const store = new Store({
    id: CRASH_NODE_ID,
    cluster: 'crash',
    transport: net.transport(CRASH_NODE_ID),
    storage: crashStorage(options),
    replication: { n: 1, r: 1, w: 1 },
  });
  await store.start();
  process.send?.({ started: true });
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      await store.put(crashKey(i), crashValue(options.seed, i));
      process.send?.({ acked: i });
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
}

if (process.send !== undefined) {
  process.once('message', (options: CrashWriterOptions) => {
    run(options).catch((error: unknown) => {
      process.stderr.write(`crash-writer failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(70);
    });
  });
}
