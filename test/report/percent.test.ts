// Percentages in reports: a share that is not all (or none) never reads as 100 % (or 0 %).
import { describe, expect, it } from 'vitest';
import { percent } from '../../shared/report/report.js';

describe('percent', () => {
  it('rounds to one decimal', () => {
    expect(percent(1, 3)).toBe(33.3);
    expect(percent(2, 3)).toBe(66.7);
    expect(percent(5, 5)).toBe(100);
    expect(percent(0, 5)).toBe(0);
    expect(percent(0, 0)).toBe(100);
  });

  it('keeps a share that is not all, or not none, off 100 and 0', () => {
    expect(percent(9384, 9385)).toBe(99.9);
    expect(percent(1, 9385)).toBe(0.1);
    expect(percent(1_999_999, 2_000_000)).toBe(99.9);
  });
});
