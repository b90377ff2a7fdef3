// ECS output: alerts and sessions carry the person in `user.name` and the MySQL account in
// `user.effective.name`; categories follow the rule.
import { describe, expect, it } from 'vitest';
import { GROUPS, USERS } from '../../shared/detect/timeline.js';
import { ECS_VERSION, ecsAlert, ecsSession } from '../../shared/emit/formats/ecs.js';
import { DEFAULT_CONTEXT, type FormatContext } from '../../shared/emit/formats/format.js';
import { PLANTED_KEY, withPlantedKey } from '../helpers/planted-credential.js';
import { beforeFirstTest, runTimeline, type TimelineResult } from '../helpers/run-timeline.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';

const ctx: FormatContext = {
  ...DEFAULT_CONTEXT,
  product: { ...DEFAULT_CONTEXT.product, version: '9.9.9-test' },
};

let run: TimelineResult;
beforeFirstTest(async () => {
  run = await runTimeline(incidentTimeline());
});

const alertOf = (rule: string) => run.alerts.find((a) => a.rule === rule)!;

describe('ECS alerts', () => {
  it('a session alert: kind alert, rule, both identities, group, source and DB system', () => {
    const alert = alertOf('access.after-revocation');
    expect(ecsAlert(alert, ctx)).toMatchObject({
      '@timestamp': alert.time,
      ecs: { version: ECS_VERSION },
      message: alert.title,
      event: {
        kind: 'alert',
        category: ['authentication'],
        type: ['start'],
        id: alert.id,
        severity: 5,
        outcome: 'success',
        dataset: 'heatwave_iam_audit.alert',
      },
      rule: {
        id: 'access.after-revocation',
        name: 'Database access after IAM revocation',
        ruleset: 'heatwave-iam-audit',
      },
      user: { name: 'alice@example.com', id: USERS.alice, effective: { name: 'dba_proxy@%' } },
      group: { id: GROUPS.dba, name: 'DBAdmins' },
      destination: { address: 'prod-orders', domain: 'prod-orders' },
      service: { id: 'ocid1.mysqldbsystem.oc1..prod1', name: 'prod-orders', type: 'mysql' },
      related: { user: ['alice@example.com', USERS.alice, 'dba_proxy@%', 'dba_proxy', 'alice'] },
      threat: {
        framework: 'MITRE ATT&CK',
        technique: { id: ['T1078'], subtechnique: { id: ['T1078.004'] } },
      },
      heatwave: { attribution: { method: 'login-name', problem: 'left-group' }, login_user: 'alice' },
    });
  });

  it('a resolution: action resolved, the end of what was found, outcome success, the reason', () => {
    const alert = alertOf('access.after-revocation');
    const doc = ecsAlert(
      {
        ...alert,
        status: 'resolved',
        resolution: {
          time: '2026-11-02T12:00:00.000Z',
          reason: 'attributed',
          note: 'attributed to bob',
          evidence: ['k'],
        },
      },
      ctx,
    );
    expect(doc).toMatchObject({
      '@timestamp': '2026-11-02T12:00:00.000Z',
      message: `Resolved: ${alert.title} (attributed to bob)`,
      event: {
        kind: 'alert',
        id: alert.id,
        type: ['end'],
        action: 'resolved',
        outcome: 'success',
        reason: 'attributed to bob',
        start: alert.time,
        end: '2026-11-02T12:00:00.000Z',
      },
      heatwave: { status: 'resolved', resolution: { reason: 'attributed', evidence: ['k'] } },
    });
    expect(ecsAlert(alert, ctx).event).not.toHaveProperty('action');
  });

  it('event.category and event.type follow the rule', () => {
    const cases: [string, string[], string[]][] = [
      ['auth.failure-burst', ['authentication'], ['start']],
      ['privilege.change', ['database', 'iam'], ['change']],
      ['audit.tamper', ['database'], ['change']],
      ['iam.privileged-group-change', ['iam'], ['change']],
      ['break-glass.stale', ['iam'], ['change']],
    ];
    for (const [rule, category, type] of cases) {
      expect(ecsAlert(alertOf(rule), ctx).event, rule).toMatchObject({ category, type });
    }
    expect(ecsAlert(alertOf('auth.failure-burst'), ctx).event.outcome).toBe('failure');
    expect(ecsAlert(alertOf('audit.tamper'), ctx).event).not.toHaveProperty('outcome');
  });

  it('a change made to someone else: user is the actor, user.target the person changed', () => {
    const alert = run.alerts.find((a) => a.rule === 'iam.privileged-group-change' && a.identity)!;
    const doc = ecsAlert(alert, ctx);
    expect(doc.user).toEqual({
      name: 'iam-admin',
      id: 'ocid1.user.oc1..admin',
      target: { name: alert.identity!.name, id: alert.identity!.principalId },
    });
    expect(doc).toMatchObject({
      related: { user: expect.arrayContaining(['iam-admin', alert.identity!.name]) },
    });
  });

  it('an alert with no person has no user.name but keeps the account and the source', () => {
    const doc = ecsAlert(alertOf('auth.failure-burst'), ctx);
    expect(doc.user).toEqual({ effective: { name: 'admin@%' } });
    expect(doc).toMatchObject({ source: { ip: '203.0.113.9' }, related: { ip: ['203.0.113.9'] } });
  });

  it('a source that is not an IP address is not put in source.ip', () => {
    const doc = ecsAlert({ ...alertOf('access.local-account'), sourceIp: 'fe80::1%eth0' }, ctx);
    expect(doc.source).toEqual({ address: 'fe80::1%eth0', domain: 'fe80::1%eth0' });
    expect(doc).not.toHaveProperty('related.ip');
  });

  it('severity is numeric, one to five', () => {
    const base = alertOf('audit.tamper');
    const values = (['info', 'low', 'medium', 'high', 'critical'] as const).map(
      (severity) => ecsAlert({ ...base, severity }, ctx).event.severity,
    );
    expect(values).toEqual([1, 2, 3, 4, 5]);
  });

  it('no null, no empty object or array reaches the document', () => {
    for (const a of run.alerts) {
      const text = JSON.stringify(ecsAlert(a, ctx));
      expect(text).not.toMatch(/null|\{\}|\[\]/);
    }
  });
});

describe('ECS sessions', () => {
  it('a proxied login: kind event, authentication start, success, both identities', () => {
    const s = run.sessions.find((x) => x.connectionId === 1)!;
    expect(ecsSession(s, ctx)).toMatchObject({
      '@timestamp': s.connectTime,
      event: {
        kind: 'event',
        category: ['authentication'],
        type: ['start'],
        action: 'proxied-login',
        outcome: 'success',
        id: s.id,
        end: '2026-11-02T09:25:00.000Z',
      },
      user: { name: 'alice@example.com', id: USERS.alice, effective: { name: 'dba_proxy@%' } },
      group: { id: GROUPS.dba, name: 'DBAdmins' },
      source: { ip: '10.0.0.5' },
      heatwave: {
        mfa_factor: 'TOTP',
        proxied: true,
        attribution: { method: 'login-name', confidence: 'corroborated' },
      },
    });
  });

  it('a login made while a credential someone else created on the person was in force names it in heatwave.attribution', () => {
    const s = run.sessions.find((x) => x.connectionId === 1)!;
    expect(ecsSession(withPlantedKey(s), ctx).heatwave).toMatchObject({
      attribution: {
        confidence: 'asserted',
        planted_credentials: [
          {
            type: 'api-key',
            id: 'aa:bb:cc',
            created: PLANTED_KEY.time,
            actor: { id: 'ocid1.user.oc1..admin', name: 'iam-admin' },
            event_key: 'iam-credential_change-1',
          },
        ],
      },
    });
    expect(ecsSession(s, ctx).heatwave).not.toHaveProperty('attribution.planted_credentials');
  });

  it('a failed login: outcome failure with the MySQL errno', () => {
    const s = run.sessions.find((x) => x.outcome === 'failed')!;
    const doc = ecsSession(s, ctx);
    expect(doc).toMatchObject({ event: { outcome: 'failure', action: 'login' }, error: { code: '1045' } });
    expect(doc.user).toEqual({ effective: { name: 'admin@%' } });
  });
});
