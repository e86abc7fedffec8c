import type { MemberStatus } from './types.js';

/**
 * Decides how healthy a member is from the heartbeats gossip brings (as
 * Cassandra's `IFailureDetector`): membership reports every newer record of
 * a member with {@link FailureDetector.heartbeat} and asks
 * {@link FailureDetector.status} once a round. A member never heard from in
 * this run (e.g. one restored from stored peers) is `down` until its first
 * heartbeat. Implementations are pure bookkeeping: no timers, no I/O.
 *
 * Built in: `PhiAccrualFailureDetector` (adaptive, the Store's default) and
 * {@link TimeoutFailureDetector} (fixed round counts).
 */
export interface FailureDetector {
  /** A newer record (heartbeat or generation) of `id` arrived at `now` (clock ms). */
  heartbeat(id: string, now: number): void;
  /** The health of `id` at `now`; `down` for a member with no heartbeat yet. */
  status(id: string, now: number): MemberStatus;
  /** Forgets `id` (it left the cluster). */
  remove(id: string): void;
}

/** Options of {@link TimeoutFailureDetector}. */
export interface TimeoutFailureDetectorOptions {
  /** Gossip interval, ms. */
  readonly interval: number;
  /** Rounds without a heartbeat before `suspect`. */
  readonly suspectAfterRounds: number;
  /** Rounds without a heartbeat before `down`. */
  readonly downAfterRounds: number;
}

/**
 * The fixed-timeout detector: `suspect` after `suspectAfterRounds × interval`
 * ms without a heartbeat, `down` after `downAfterRounds × interval`.
 */
export class TimeoutFailureDetector implements FailureDetector {
  readonly #last = new Map<string, number>();
  readonly #suspectAfter: number;
  readonly #downAfter: number;

  constructor(options: TimeoutFailureDetectorOptions) {
    this.#suspectAfter = options.suspectAfterRounds * options.interval;
    this.#downAfter = options.downAfterRounds * options.interval;
  }

  heartbeat(id: string, now: number): void {
    this.#last.set(id, now);
  }

  status(id: string, now: number): MemberStatus {
    const last = this.#last.get(id);
    if (last === undefined) return 'down';
    const silent = now - last;
    if (silent >= this.#downAfter) return 'down';
    if (silent >= this.#suspectAfter) return 'suspect';
    return 'alive';
  }

  remove(id: string): void {
    this.#last.delete(id);
  }
}
