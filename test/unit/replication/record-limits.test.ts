import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FRAME_LIMIT,
  DEFAULT_MAX_SIBLINGS,
  checkRecordFitsFrame,
  versionOverheadBytes,
} from '../../../src/replication/index.js';
import { DEFAULT_CODEC_LIMITS, encodeFrame } from '../../../src/transport/index.js';
import { SiblingSet, VectorClock, encodeSiblingSet } from '../../../src/versioning/index.js';

describe('checkRecordFitsFrame', () => {
  it('uses the wire codec frame limit by default', () => {
    expect(DEFAULT_FRAME_LIMIT).toBe(DEFAULT_CODEC_LIMITS.maxFrameBytes);
  });

  it('accepts the defaults and returns the largest record they can build', () => {
    const bytes = checkRecordFitsFrame({ maxValueBytes: 10_240, maxSiblings: DEFAULT_MAX_SIBLINGS, maxClockEntries: 10, n: 3 });
    expect(bytes).toBeGreaterThan(3 * 100 * 10_240);
    expect(bytes).toBeLessThan(DEFAULT_FRAME_LIMIT);
  });

  it('refuses the options of the issue (2 MiB values, 100 siblings) naming options and numbers', () => {
    const call = () => checkRecordFitsFrame({ maxValueBytes: 2 * 1024 * 1024, maxSiblings: 100, maxClockEntries: 10, n: 3 });
    expect(call).toThrow(RangeError);
    expect(call).toThrow(/`maxValueBytes` × `maxSiblings` × N/);
    expect(call).toThrow(/3 replicas × 100 siblings of up to 2097152 bytes/);
    expect(call).toThrow(/frame of 16777216 bytes/);
    expect(call).toThrow(/lower maxValueBytes to at most \d+ or maxSiblings to at most 2\b/);
    // Three replicas that each accepted ten 1.9 MB writes would merge to ~57 MB: never buildable.
    expect(() => checkRecordFitsFrame({ maxValueBytes: 1_900_000, maxSiblings: 10, maxClockEntries: 10, n: 3 })).toThrow(RangeError);
    expect(() => checkRecordFitsFrame({ maxValueBytes: 1_900_000, maxSiblings: 2, maxClockEntries: 10, n: 3 })).not.toThrow();
    expect(() => checkRecordFitsFrame({ maxValueBytes: 1_900_000, maxSiblings: 2, maxClockEntries: 10, n: 5 })).toThrow(RangeError);
  });

  it('the suggested bounds fit, one more does not', () => {
    const limits = { maxValueBytes: 100_000, maxSiblings: 100, maxClockEntries: 10, n: 3, frameLimit: 4 * 1024 * 1024 };
    const message = (() => {
      try {
        checkRecordFitsFrame(limits);
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    })();
    const value = Number(/maxValueBytes to at most (\d+)/.exec(message)![1]);
    const siblings = Number(/maxSiblings to at most (\d+)/.exec(message)![1]);
    expect(() => checkRecordFitsFrame({ ...limits, maxValueBytes: value })).not.toThrow();
    expect(() => checkRecordFitsFrame({ ...limits, maxValueBytes: value + 1 })).toThrow(RangeError);
    expect(() => checkRecordFitsFrame({ ...limits, maxSiblings: siblings })).not.toThrow();
    expect(() => checkRecordFitsFrame({ ...limits, maxSiblings: siblings + 1 })).toThrow(RangeError);
    expect(() => checkRecordFitsFrame({ ...limits, maxSiblings: 100_000 })).toThrow(/no maxValueBytes fits that many siblings or maxSiblings to at most 13$/);
  });

  it('validates its input precisely', () => {
    const ok = { maxValueBytes: 1, maxSiblings: 1, maxClockEntries: 1, n: 1 };
    expect(() => checkRecordFitsFrame({ ...ok, maxValueBytes: 0 })).toThrow(
      new RangeError('Expected `maxValueBytes` to be a positive integer, got 0'),
    );
    expect(() => checkRecordFitsFrame({ ...ok, maxSiblings: 2.5 })).toThrow(
      new RangeError('Expected `maxSiblings` to be a positive integer, got 2.5'),
    );
    expect(() => checkRecordFitsFrame({ ...ok, maxClockEntries: '10' as unknown as number })).toThrow(
      new TypeError('Expected `maxClockEntries` to be a positive integer, got string'),
    );
    expect(() => checkRecordFitsFrame({ ...ok, n: 0 })).toThrow(new RangeError('Expected `n` to be a positive integer, got 0'));
    expect(() => checkRecordFitsFrame({ ...ok, frameLimit: -1 })).toThrow(
      new RangeError('Expected `frameLimit` to be a positive integer, got -1'),
    );
    expect(() => checkRecordFitsFrame(null as unknown as typeof ok)).toThrow(TypeError);
  });

  it('the estimate bounds real records: a full set with long actors and full pasts fits its estimate (n = 1)', () => {
    const maxClockEntries = 10;
    const maxValueBytes = 4_096;
    const maxSiblings = 50;
    const actor = (i: number) => `${'n'.repeat(100)}-${i}~${'z'.repeat(13)}`; // ~117-byte actor ids
    const past = VectorClock.from(
      Array.from({ length: maxClockEntries }, (_, i) => [actor(i), Number.MAX_SAFE_INTEGER - i, Date.now()] as const),
    );
    let set = SiblingSet.empty<Uint8Array>();
    for (let i = 0; i < maxSiblings; i++) {
      set = set.write(actor(100 + i), past, {
        value: new Uint8Array(maxValueBytes),
        timestamp: Date.now() + 0.5,
        maxClockEntries,
      }).set;
    }
    expect(set.size).toBe(maxSiblings);
    const record = encodeSiblingSet(set);
    const estimate = checkRecordFitsFrame({ maxValueBytes, maxSiblings, maxClockEntries, n: 1 });
    expect(record.byteLength).toBeLessThanOrEqual(estimate);
    expect(estimate - record.byteLength).toBeLessThan(maxSiblings * versionOverheadBytes(maxClockEntries));
    // And the whole kv.apply frame with the longest key fits a frame the check accepted.
    const frameLimit = estimate + 200 * 1024;
    checkRecordFitsFrame({ maxValueBytes, maxSiblings, maxClockEntries, n: 1, frameLimit });
    const body = { type: 'kv.apply', cluster: 'c'.repeat(200), key: new Uint8Array(64 * 1024), record };
    expect(() => encodeFrame({ kind: 'req', id: 1, from: 'x'.repeat(1000), body }, { maxFrameBytes: frameLimit })).not.toThrow();
  });
});
