/**
 * Observability seams: the {@link Metrics} and {@link Logger} interfaces a
 * node reports through, and their no-op defaults. quorumkv depends on no
 * metrics or logging library; plug yours in with a few lines (see the
 * examples on each interface).
 *
 * @example
 * ```ts
 * import { Store, type Logger } from 'quorumkv';
 *
 * const logger: Logger = {
 *   debug: () => {},
 *   info: (message, fields) => console.info(message, fields ?? ''),
 *   warn: (message, fields) => console.warn(message, fields ?? ''),
 *   error: (message, fields) => console.error(message, fields ?? ''),
 * };
 * const store = new Store({ id: 'a', transport, logger });
 * ```
 *
 * @module
 */
export { noopLogger, noopMetrics } from './noop.js';
export type { LogFields, Logger, MetricLabels, Metrics } from './types.js';
