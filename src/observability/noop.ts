import type { Logger, Metrics } from './types.js';

// One shared empty function: calling it allocates nothing and keeps no argument.
function ignore(): void {}

/**
 * The default {@link Metrics}: records nothing. A frozen singleton, so
 * `metrics === noopMetrics` tells a component that nobody listens (and it
 * may skip computing a value only a metric would use).
 */
export const noopMetrics: Metrics = Object.freeze({
  increment: ignore,
  gauge: ignore,
  observe: ignore,
});

/**
 * The default {@link Logger}: logs nothing. A frozen singleton, so
 * `logger === noopLogger` tells a component it may skip building fields.
 */
export const noopLogger: Logger = Object.freeze({
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
});
