// Expected-change windows and reverts as pure functions: which change a window acknowledges (its
// limits, its scope, which window), what the resolution says, and the windows' configuration.
import { describe, expect, it } from 'vitest';
import {
  acknowledgement,
  ExpectedMappingChanges,
  ExpectedPolicyChanges,
  reverted,
} from '../../shared/rules/expected-changes.js';

const change = (ts: number, names: (string | undefined)[] = ['prod-orders']) => ({
  subject: 'k1',
  occurrence: 'account_altered',
  ts,
  names,
});

describe('acknowledgement', () => {
  const windows = [{ from: 1000, to: 2000, reason: 'CHG-1' }];

  it('resolves a change from the window start up to, not including, its end', () => {
    expect(acknowledgement('mapping.change', windows, change(1000))).toEqual([
      {
        resolves: { subject: 'k1', occurrence: 'account_altered' },
        ts: 1000,
        reason: 'acknowledged',
        note: 'expected change: CHG-1',
        evidence: ['config:rules.mapping.change.expected.0'],
      },
    ]);
    expect(acknowledgement('mapping.change', windows, change(1999))).toHaveLength(1);
    expect(acknowledgement('mapping.change', windows, change(999))).toEqual([]);
    expect(acknowledgement('mapping.change', windows, change(2000))).toEqual([]);
  });

  it('a window with a scope holds only the changes that name one of it, and names itself by index', () => {
    const scoped = [
      { from: 0, to: 5000, reason: 'other DB', scope: ['prod-billing'] },
      { from: 0, to: 5000, reason: 'orders work', scope: ['prod-orders'] },
    ];
    expect(acknowledgement('mapping.change', scoped, change(1500, [undefined, 'prod-orders']))).toMatchObject(
      [{ note: 'expected change: orders work', evidence: ['config:rules.mapping.change.expected.1'] }],
    );
    expect(acknowledgement('mapping.change', scoped, change(1500, ['prod-hr']))).toEqual([]);
  });
});

describe('reverted', () => {
  it('resolves every undone change at the reverting event, with it as evidence', () => {
    const reverts = { undone: [{ key: 'k0', kind: 'account_altered' }] } as Parameters<typeof reverted>[0];
    expect(reverted(reverts, (kind) => `occ:${kind}`, { key: 'k2', ts: 3000, note: 'restored' })).toEqual([
      {
        resolves: { subject: 'k0', occurrence: 'occ:account_altered' },
        ts: 3000,
        reason: 'reverted',
        note: 'restored',
        evidence: ['k2'],
      },
    ]);
  });
});

describe('expected-change windows in the configuration', () => {
  const at = (h: number) => `2026-11-02T${String(h).padStart(2, '0')}:00:00Z`;

  it('default to none', () => {
    expect(ExpectedMappingChanges.parse(undefined)).toEqual([]);
    expect(ExpectedPolicyChanges.parse(undefined)).toEqual([]);
  });

  it('refuse a window that does not end after it starts, naming its end', () => {
    for (const schema of [ExpectedMappingChanges, ExpectedPolicyChanges]) {
      const r = schema.safeParse([{ from: at(10), to: at(10), reason: 'CHG-1' }]);
      expect(r.success).toBe(false);
      expect(r.error?.issues.map((i) => [i.path, i.message])).toEqual([[[0, 'to'], 'to must be after from']]);
      expect(schema.safeParse([{ from: at(10), to: at(11), reason: 'CHG-1' }]).success).toBe(true);
    }
  });

  it('take names of any length in their lists, never an empty one', () => {
    const base = { from: at(10), to: at(11), reason: 'CHG-1' };
    expect(ExpectedPolicyChanges.safeParse([{ ...base, policies: ['mysql-iam-auth'] }]).success).toBe(true);
    expect(ExpectedPolicyChanges.safeParse([{ ...base, policies: [''] }]).success).toBe(false);
    expect(ExpectedMappingChanges.safeParse([{ ...base, dbSystems: ['prod-orders'] }]).success).toBe(true);
    expect(ExpectedMappingChanges.safeParse([{ ...base, dbSystems: [''] }]).success).toBe(false);
  });
});
