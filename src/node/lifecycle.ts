/**
 * A part of the node with a life cycle (libp2p's `Startable`). The node
 * starts its components in the order they were registered and stops them in
 * reverse, so a component can rely on everything registered before it.
 */
export interface Startable {
  /** A name for errors. */
  readonly name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/**
 * Starts {@link Startable}s one by one in dependency order and stops the
 * started ones in reverse. The composition root builds a component, starts
 * it, then builds the next from what the earlier ones gave (e.g. the storage
 * opens before the identity is read from it). `stop()` stops every started
 * component even if one of them fails, then throws the first failure.
 */
export class Lifecycle {
  readonly #started: Startable[] = [];

  /** Starts `component` now; it will be stopped before everything started earlier. */
  async start(component: Startable): Promise<void> {
    await component.start();
    this.#started.push(component);
  }

  /** Stops the started components, last started first. */
  async stop(): Promise<void> {
    let first: unknown;
    let failed = false;
    while (this.#started.length > 0) {
      const c = this.#started.pop() as Startable;
      try {
        await c.stop();
      } catch (err) {
        if (!failed) first = err;
        failed = true;
      }
    }
    if (failed) throw first;
  }
}
