// Expected-change windows and reverts as pure functions: which change a window acknowledges (its
// limits, its scope, which window), what the resolution says, and the windows' configuration.
import { describe, expect, it } from 'vitest';
import {
  acknowledgement,
  type CredentialCreation,
  ExpectedCredentials,
  ExpectedMappingChanges,
  ExpectedPolicyChanges,
  expectedCredential,
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

describe('expected credential creations', () => {
  const creation = (over: Partial<CredentialCreation> = {}): CredentialCreation => ({
    ts: 1500,
    type: 'api-key',
    actor: ['ocid1.user.oc1..tf', 'terraform-ci'],
    user: [undefined, 'ocid1.user.oc1..svc', 'svc-orders@example.com', 'svc-orders'],
    ...over,
  });

  it('acknowledge by actor or by user, case aside, the first entry that matches', () => {
    const entries = ExpectedCredentials.parse([
      { users: ['svc-billing'], reason: 'billing' },
      { actors: ['Terraform-CI'], reason: 'provisioning' },
      { users: ['SVC-ORDERS'], reason: 'orders' },
    ]);
    expect(expectedCredential(entries, creation())).toEqual({ entry: 1, reason: 'provisioning' });
    expect(expectedCredential(entries, creation({ actor: ['someone'] }))).toEqual({
      entry: 2,
      reason: 'orders',
    });
    expect(expectedCredential(entries, creation({ actor: ['someone'], user: ['alice'] }))).toBeUndefined();
  });

  it('need every list an entry has to name the creation: actors, users and credential types', () => {
    const [entry] = ExpectedCredentials.parse([
      {
        actors: ['terraform-ci'],
        users: ['ocid1.user.oc1..svc'],
        credentials: ['db-credential'],
        reason: 'x',
      },
    ]);
    expect(expectedCredential([entry!], creation({ type: 'db-credential' }))).toEqual({
      entry: 0,
      reason: 'x',
    });
    expect(expectedCredential([entry!], creation())).toBeUndefined();
    expect(
      expectedCredential([entry!], creation({ type: 'db-credential', user: ['alice'] })),
    ).toBeUndefined();
    expect(expectedCredential([entry!], creation({ type: 'db-credential', actor: ['bob'] }))).toBeUndefined();
  });

  it('are standing without from and to, and otherwise hold from `from` up to, not including, `to`', () => {
    const windowed = (w: Record<string, string>) =>
      ExpectedCredentials.parse([{ actors: ['terraform-ci'], reason: 'x', ...w }]);
    const start = '2026-11-02T10:00:00.000Z';
    const end = '2026-11-02T11:00:00.000Z';
    const ts = (iso: string) => creation({ ts: Date.parse(iso) });
    expect(expectedCredential(windowed({}), ts('2000-01-01T00:00:00Z'))).toBeDefined();
    expect(expectedCredential(windowed({ from: start }), ts(start))).toBeDefined();
    expect(expectedCredential(windowed({ from: start }), ts('2026-11-02T09:59:59.999Z'))).toBeUndefined();
    expect(expectedCredential(windowed({ to: end }), ts('2026-11-02T10:59:59.999Z'))).toBeDefined();
    expect(expectedCredential(windowed({ to: end }), ts(end))).toBeUndefined();
    expect(expectedCredential(windowed({ from: start, to: end }), ts(start))).toBeDefined();
  });

  it('default to none, and refuse an entry that names neither actors nor users, or a bad list, by its path', () => {
    expect(ExpectedCredentials.parse(undefined)).toEqual([]);
    const issues = (value: unknown) => {
      const r = ExpectedCredentials.safeParse(value);
      return r.success ? [] : r.error.issues.map((i) => [i.path, i.message]);
    };
    expect(issues([{ credentials: ['api-key'], reason: 'x' }])).toEqual([
      [[0], 'name the actors or the users it acknowledges (or both)'],
    ]);
    expect(issues([{ actors: [], reason: 'x' }])).toHaveLength(1);
    expect(issues([{ users: [''], reason: 'x' }])).toHaveLength(1);
    expect(issues([{ users: ['svc'], credentials: ['api-keys'], reason: 'x' }])[0]?.[0]).toEqual([
      0,
      'credentials',
      0,
    ]);
    expect(issues([{ users: ['svc'] }])[0]?.[0]).toEqual([0, 'reason']);
    expect(issues([{ users: ['svc'], reason: 'x', actor: ['tf'] }])).toHaveLength(1);
    expect(
      issues([{ users: ['svc'], reason: 'x', from: '2026-11-02T10:00:00Z', to: '2026-11-02T10:00:00Z' }]),
    ).toEqual([[[0, 'to'], 'to must be after from']]);
  });
});
