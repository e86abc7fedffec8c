/** The assertions the compliance suites use (a subset shared by vitest and jest). */
export interface ComplianceMatchers {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toBeUndefined(): void;
  toBeInstanceOf(expected: abstract new (...args: never[]) => unknown): void;
  toContain(expected: unknown): void;
  toBeLessThan(expected: number): void;
  toBeGreaterThanOrEqual(expected: number): void;
  toHaveLength(expected: number): void;
  readonly not: ComplianceMatchers;
}

/**
 * The test framework functions a compliance suite registers its cases with.
 * Pass vitest's module (`import * as vitest from 'vitest'`) or jest's
 * globals; by default the suites use the global `describe`, `it`,
 * `beforeEach`, `afterEach` and `expect` (vitest with `globals: true`, jest).
 * quorumkv itself never imports a test framework, so `quorumkv/testing`
 * loads from ESM and CommonJS alike.
 */
/** A test-registering function with `skip` (vitest's and jest's `it` both have it). */
export interface ComplianceIt {
  (name: string, fn: () => Promise<void> | void, timeout?: number): void;
  /** Registers a case reported as skipped (an unsupported capability), never as passed. */
  skip(name: string, fn: () => Promise<void> | void): void;
}

export interface ComplianceTestApi {
  describe(name: string, fn: () => void): void;
  it: ComplianceIt;
  beforeEach(fn: () => Promise<void> | void): void;
  afterEach(fn: () => Promise<void> | void): void;
  expect(actual: unknown, message?: string): ComplianceMatchers;
}

/** The global test API, or a clear error saying what to pass. */
export function resolveTestApi(api: ComplianceTestApi | undefined, suite: string): ComplianceTestApi {
  if (api) return api;
  const g = globalThis as Partial<Record<keyof ComplianceTestApi, unknown>>;
  const names = ['describe', 'it', 'beforeEach', 'afterEach', 'expect'] as const;
  const missing = names.filter((n) => typeof g[n] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(
      `${suite}: no test framework globals (${missing.join(', ')}); pass your framework's functions, ` +
        `e.g. \`import * as vitest from 'vitest'\` and \`${suite}(name, setup, …, vitest)\``,
    );
  }
  return g as ComplianceTestApi;
}
