// A memo makes each value once, and forgets everything once it holds its maximum.
import { describe, expect, it } from 'vitest';
import { Memo } from '../shared/memo.js';

describe('Memo', () => {
  it('makes a value once per key, and a falsy value counts as made', () => {
    const made: string[] = [];
    const memo = new Memo(10, (key: string) => {
      made.push(key);
      return key === 'none' ? null : key.length;
    });
    expect([memo.get('ab'), memo.get('ab'), memo.get('none'), memo.get('none'), memo.get('')]).toEqual([
      2,
      2,
      null,
      null,
      0,
    ]);
    expect(made).toEqual(['ab', 'none', '']);
  });

  it('forgets everything when full, then makes values again', () => {
    const made: number[] = [];
    const memo = new Memo(2, (key: number) => {
      made.push(key);
      return key * 10;
    });
    expect([memo.get(1), memo.get(2), memo.get(1)]).toEqual([10, 20, 10]);
    expect(made).toEqual([1, 2]);
    expect(memo.get(3)).toBe(30);
    expect(memo.get(1)).toBe(10);
    expect(made).toEqual([1, 2, 3, 1]);
  });
});
