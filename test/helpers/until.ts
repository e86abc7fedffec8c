/**
 * Polls `condition` every 5 ms until it holds (a condition with a deadline,
 * not a sleep); fails after `timeout` ms saying what it waited for.
 */
export async function until(what: string, condition: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
