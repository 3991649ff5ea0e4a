import { describe, expect, it } from 'vitest';
import { median } from '../../src/loadgen/stats.js';

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones, skipping unknowns', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 5, 1])).toBe(3);
    expect(median([])).toBeNull();
    expect(median([Number.NaN])).toBeNull();
  });
});
