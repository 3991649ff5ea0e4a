import { describe, expect, it } from 'vitest';
import { OffsetTracker } from '../../src/brokers/kafka/offset-tracker.js';

describe('in-order commits over concurrent work (Kafka)', () => {
  it('commits only up to the lowest unfinished offset, and each point once', () => {
    const t = new OffsetTracker();
    for (const offset of [10n, 11n, 12n]) t.handedOut(0, offset);
    t.done(0, 11n);
    t.done(0, 12n);
    // 10 is still running: committing 13 would skip it after a crash.
    expect(t.advance()).toEqual(new Map([[0, 10n]]));
    expect(t.advance()).toEqual(new Map());
    t.done(0, 10n);
    expect(t.advance()).toEqual(new Map([[0, 13n]]));
  });

  it('keeps partitions apart and forgets the ones taken away by a rebalance', () => {
    const t = new OffsetTracker();
    t.handedOut(0, 5n);
    t.handedOut(1, 7n);
    t.done(1, 7n);
    expect(t.advance()).toEqual(new Map([[0, 5n], [1, 8n]]));
    t.retain(new Set([1]));
    t.done(0, 5n);
    expect(t.advance()).toEqual(new Map());
  });
});
