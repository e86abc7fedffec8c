/**
 * Labels of one metric series, e.g. `{ op: 'put', outcome: 'ok' }`. Keep
 * the set of values small and bounded (operation names, outcomes, node
 * ids), never keys or values: each distinct combination is a series.
 */
export type MetricLabels = Readonly<Record<string, string>>;

/**
 * Where quorumkv reports numbers: counters, gauges and histograms, by name
 * plus optional labels. Small enough to adapt to any metrics library
 * (prom-client, OpenTelemetry, StatsD) in a few lines; quorumkv ships only
 * the no-op default (`noopMetrics`) and depends on none.
 *
 * Names follow Prometheus conventions: `quorumkv_` prefix, snake_case,
 * base units in the name (`_seconds`, `_bytes`), counters end in `_total`,
 * e.g. `quorumkv_requests_total`, `quorumkv_request_duration_seconds`,
 * `quorumkv_hints_pending`. The same name is always used with the same
 * kind and the same label names.
 *
 * Calls are made on hot paths: an implementation must be synchronous,
 * cheap and must never throw (an exception would fail the operation it
 * measures). Label objects may be shared and reused by the caller; copy
 * them if you keep them.
 *
 * @example
 * ```ts
 * import client from 'prom-client';
 * const counters = new Map<string, client.Counter>();
 * const metrics: Metrics = {
 *   increment(name, labels = {}, by = 1) {
 *     let c = counters.get(name);
 *     if (!c) counters.set(name, (c = new client.Counter({ name, help: name, labelNames: Object.keys(labels) })));
 *     c.inc(labels, by);
 *   },
 *   gauge(name, value, labels) { … },
 *   observe(name, value, labels) { … },
 * };
 * ```
 */
export interface Metrics {
  /**
   * Adds `by` to the counter `name` (a value that only goes up: requests,
   * errors, bytes sent).
   *
   * @param by - a non-negative amount; 1 when omitted
   */
  increment(name: string, labels?: MetricLabels, by?: number): void;
  /** Sets the gauge `name` to `value` (a level that goes up and down: members alive, hints pending). */
  gauge(name: string, value: number, labels?: MetricLabels): void;
  /** Records one observation of `value` in the histogram `name` (a duration in seconds, a size in bytes). */
  observe(name: string, value: number, labels?: MetricLabels): void;
}

/**
 * Structured context of a log line, e.g. `{ node: 'a', peer: 'b', code:
 * 'KV_TIMEOUT' }`. Values should be JSON-friendly; an `error` field may
 * hold an `Error`.
 */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * Where quorumkv logs: four levels, a message and optional structured
 * fields. The shape of pino's and bunyan's `(fields, message)` turned
 * around, and of `console` when fields are passed as a second argument, so
 * most loggers adapt in one line each; the default is `noopLogger`.
 *
 * Like {@link Metrics}, implementations must be synchronous (buffering is
 * fine) and must never throw. quorumkv logs at `debug` on hot paths only
 * behind a cheap check, so a no-op `debug` costs nothing.
 *
 * @example
 * ```ts
 * // console
 * const logger: Logger = {
 *   debug: (message, fields) => console.debug(message, fields ?? ''),
 *   info: (message, fields) => console.info(message, fields ?? ''),
 *   warn: (message, fields) => console.warn(message, fields ?? ''),
 *   error: (message, fields) => console.error(message, fields ?? ''),
 * };
 *
 * // pino
 * const log = pino();
 * const logger: Logger = {
 *   debug: (message, fields) => log.debug(fields ?? {}, message),
 *   info: (message, fields) => log.info(fields ?? {}, message),
 *   warn: (message, fields) => log.warn(fields ?? {}, message),
 *   error: (message, fields) => log.error(fields ?? {}, message),
 * };
 * ```
 */
export interface Logger {
  /** Detail for debugging (every gossip round, every repair). */
  debug(message: string, fields?: LogFields): void;
  /** Lifecycle and membership changes (started, member joined). */
  info(message: string, fields?: LogFields): void;
  /** Something went wrong and was handled (a peer timed out, a hint was dropped). */
  warn(message: string, fields?: LogFields): void;
  /** Something went wrong and was not handled (storage failure, a handler bug). */
  error(message: string, fields?: LogFields): void;
}
