// OCSF 1.8.0 output: the mapping decisions, and schema validation of every record the incident
// timeline produces (alerts, sessions, IAM and MySQL events) against ../shared/ocsf/1.8.0.
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import type { CanonicalEvent, DbEvent } from '../../schemas/events.js';
import { SESSION_END_REASONS, type Session, sessionSwitches } from '../../schemas/session.js';
import { RULES } from '../../shared/detect/registry.js';
import { at, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';
import { DEFAULT_CONTEXT, type FormatContext } from '../../shared/emit/formats/format.js';
import {
  OCSF_VERSION,
  type OcsfRecord,
  ocsfAlert,
  ocsfSession,
  ocsfSessionEnd,
  ocsfSwitch,
} from '../../shared/emit/formats/ocsf.js';
import { toIso } from '../../shared/time.js';
import { describeRequiring } from '../helpers/describe-requiring.js';
import { loadOcsfValidator } from '../helpers/ocsf-validator.js';
import { withPlantedKey } from '../helpers/planted-credential.js';
import { runs } from '../helpers/property.js';
import { OCSF_SCHEMAS, REPO_ROOT } from '../helpers/requirements.js';
import { beforeFirstTest, runTimeline, type TimelineResult } from '../helpers/run-timeline.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';

const ctx: FormatContext = {
  ...DEFAULT_CONTEXT,
  product: { ...DEFAULT_CONTEXT.product, version: '9.9.9-test' },
};

function tableAccess(base: DbEvent, op: string, table: string): DbEvent {
  return {
    ...base,
    key: `${base.key}:${op}`,
    kind: 'table_access',
    class: 'table_access',
    event: op,
    table: { db: 'shop', table, op },
  };
}

/** The incident timeline plus what it lacks: a 1-to-1 login, policy changes, table access, a removal by membership OCID. */
function timeline(): CanonicalEvent[] {
  const select = db.query({
    at: at(71),
    conn: 30,
    account: 'carol',
    sqlCommand: 'select',
    sql: 'SELECT * FROM shop.orders WHERE id = 42',
  });
  return [
    ...incidentTimeline(),
    iam.signOn({ at: at(69), user: USERS.carol, ip: '192.0.2.10', mfa: 'PUSH' }),
    db.connect({ at: at(70), conn: 30, account: 'carol', ip: '192.0.2.10' }),
    select,
    tableAccess(select, 'read', 'orders'),
    tableAccess(select, 'insert', 'audit_trail'),
    db.query({
      at: at(72),
      conn: 30,
      account: 'carol',
      sqlCommand: 'grant',
      sql: "GRANT ALL ON *.* TO 'x'@'%'",
      status: 1064,
    }),
    db.disconnect({ at: at(75), conn: 30, account: 'carol' }),
    iam.policy({
      at: at(80),
      kind: 'policy_created',
      statements: ['ALLOW service mysql_dp_auth TO {AUTHENTICATION_INSPECT} IN TENANCY'],
    }),
    iam.policy({
      at: at(81),
      kind: 'policy_updated',
      statements: ['Allow group X to read buckets in tenancy'],
    }),
    { ...iam.policy({ at: at(82), kind: 'policy_deleted', statements: [] }), status: '404' },
    iam.removed({ at: at(90), membershipId: 'ocid1.groupmembership.oc1..bob-dev' }),
    {
      ...iam.added({ at: at(91), user: USERS.dave, group: GROUPS.dba }),
      tenantId: 'ocid1.tenancy.oc1..example',
      status: '200',
    },
    iam.userState({ at: at(92), user: USERS.dave, kind: 'user_deactivated' }),
    // An application's connection taken over by a DBA (change_user), whose OCID the plugin logs.
    db.connect({ at: at(100), conn: 40, account: 'app', ip: '10.1.1.2' }),
    db.changeUser({
      at: at(110),
      conn: 40,
      account: 'dba_proxy',
      user: 'alice',
      os: USERS.alice,
      proxy: true,
    }),
    db.disconnect({ at: at(120), conn: 40, account: 'dba_proxy' }),
    // Three switches on one connection: a DBA takes it over, then two developers in turn.
    db.connect({ at: at(130), conn: 41, account: 'app', ip: '10.1.1.3' }),
    db.changeUser({
      at: at(131),
      conn: 41,
      account: 'dba_proxy',
      user: 'alice',
      os: USERS.alice,
      proxy: true,
    }),
    db.changeUser({ at: at(132), conn: 41, account: 'dev_proxy', user: 'dave', os: USERS.dave, proxy: true }),
    db.changeUser({ at: at(133), conn: 41, account: 'dev_proxy', user: 'bob', os: USERS.bob, proxy: true }),
    db.disconnect({ at: at(134), conn: 41, account: 'dev_proxy' }),
    // Bob's break-glass membership outlives its four hours, then is removed: a stale alert and its resolution.
    iam.removed({ at: at(300), user: USERS.bob, group: GROUPS.bg }),
  ];
}

const EVENTS = timeline();

type Produced = { what: string; record: OcsfRecord };

function produce(run: TimelineResult): Produced[] {
  const out: Produced[] = [];
  for (const a of run.alerts) out.push({ what: `alert ${a.rule} ${a.id}`, record: ocsfAlert(a, ctx) });
  for (const s of run.sessions) {
    out.push({ what: `session ${s.id}`, record: ocsfSession(s, ctx) });
    const switches = sessionSwitches(s);
    for (const sw of switches)
      out.push({ what: `session change_user ${sw.key}`, record: ocsfSwitch(s, sw, ctx) });
    const latest = switches.at(-1);
    if (latest)
      out.push({
        what: `session change_user ${latest.key} after switches left out`,
        record: ocsfSwitch({ ...s, switchesOmitted: 5 }, { ...latest, omittedBefore: 5 }, ctx),
      });
    const end = ocsfSessionEnd(s, ctx);
    if (end) out.push({ what: `session end ${s.id}`, record: end });
  }
  return out;
}

/** What a consumer reads: the JSON line, parsed. */
const wire = (r: OcsfRecord): Record<string, unknown> => JSON.parse(JSON.stringify(r));

let run: TimelineResult;
let produced: Produced[];

beforeFirstTest(async () => {
  run = await runTimeline(EVENTS);
  produced = produce(run);
});

const sessionNamed = (conn: number) => run.sessions.find((s) => s.connectionId === conn)!;

describe('OCSF mapping', () => {
  it('produces every class and activity from the timeline', () => {
    const kinds = new Set(produced.map((p) => `${p.record.class_uid}/${p.record.activity_id}`));
    expect([...kinds].sort()).toEqual(['2004/1', '2004/3', '3002/1', '3002/2', '3002/7'].sort());
  });

  it('every record carries the base attributes and type_uid = class_uid * 100 + activity_id', () => {
    for (const { record } of produced) {
      expect(record.type_uid).toBe(record.class_uid * 100 + record.activity_id);
      expect(record.metadata).toMatchObject({
        version: OCSF_VERSION,
        product: { name: 'heatwave-iam-audit', vendor_name: 'heatwave-iam-audit', version: '9.9.9-test' },
      });
      expect(Number.isInteger(record.time)).toBe(true);
      expect(JSON.stringify(record)).not.toContain('null');
    }
  });

  it('no profile, and none of its attributes', () => {
    for (const { record } of produced) {
      expect(record.metadata).not.toHaveProperty('profiles');
      for (const p of ['cloud', 'attacks', 'confidence_id', 'device', 'api'])
        expect(p in record, p).toBe(false);
      expect(JSON.stringify(record)).not.toMatch(/_dt"/);
    }
  });

  it('an alert is a Detection Finding naming the rule, the person and the MySQL account', () => {
    const alert = run.alerts.find((a) => a.rule === 'privilege.change')!;
    const r = ocsfAlert(alert, ctx);
    expect(r).toMatchObject({
      class_uid: 2004,
      activity_id: 1,
      severity_id: 4,
      message: alert.title,
      finding_info: {
        uid: alert.id,
        title: alert.title,
        types: ['database', 'iam'],
        analytic: { uid: 'privilege.change', name: 'MySQL privileges changed', type_id: 1 },
        attacks: [{ technique: { uid: 'T1098' } }],
        related_events: alert.evidence.map((uid) => ({ uid })),
      },
      resources: [
        { uid: alert.dbSystem!.id, name: 'prod-orders' },
        { uid: GROUPS.dba, name: 'DBAdmins' },
      ],
      evidences: [
        {
          user: {
            uid: USERS.alice,
            name: 'alice@example.com',
            account: { name: 'dba_proxy@%' },
            groups: [{ uid: GROUPS.dba }],
          },
          src_endpoint: { ip: '10.0.0.5' },
          data: { details: { sql: 'GRANT SELECT ON shop.* TO ?@?' }, attribution: { method: 'login-name' } },
        },
      ],
      // What to do: the rule's runbook.
      remediation: { desc: RULES.find((rule) => rule.id === 'privilege.change')!.runbook },
    });
  });

  it('a change made to someone else: the actor in evidences[].actor.user, the person changed in evidences[].user', () => {
    const alert = run.alerts.find((a) => a.rule === 'iam.privileged-group-change' && a.identity)!;
    const [evidence] = wire(ocsfAlert(alert, ctx)).evidences as Record<string, unknown>[];
    expect(evidence).toMatchObject({
      actor: { user: { uid: 'ocid1.user.oc1..admin', name: 'iam-admin', type_id: 1 } },
      user: { uid: alert.identity!.principalId, name: alert.identity!.name },
    });
    const session = wire(ocsfAlert(run.alerts.find((a) => a.rule === 'privilege.change')!, ctx));
    expect((session.evidences as Record<string, unknown>[])[0]).not.toHaveProperty('actor');
  });

  it('an alert about a session names its client program in evidences[].actor.app_name', () => {
    const alert = run.alerts.find((a) => a.rule === 'privilege.change')!;
    const client = { program: 'DBeaver', name: 'libmysql', version: '9.1.0' };
    const [evidence] = wire(ocsfAlert({ ...alert, client }, ctx)).evidences as Record<string, unknown>[];
    expect(evidence).toMatchObject({ actor: { app_name: 'DBeaver' } });
    expect(evidence!.actor).not.toHaveProperty('user');
    const change = run.alerts.find((a) => a.rule === 'iam.privileged-group-change' && a.identity)!;
    const [both] = wire(ocsfAlert({ ...change, client }, ctx)).evidences as Record<string, unknown>[];
    expect(both).toMatchObject({ actor: { app_name: 'DBeaver', user: { name: 'iam-admin' } } });
  });

  it('a resolution closes the finding: activity Close, status Resolved, at the resolution time', () => {
    const resolved = run.alerts.find((a) => a.status === 'resolved')!;
    const alert = run.alerts.find((a) => a.status === 'open' && a.id === resolved.id)!;
    expect(resolved.rule).toBe('break-glass.stale');
    const r = ocsfAlert(resolved, ctx);
    expect(r).toMatchObject({
      class_uid: 2004,
      activity_id: 3,
      type_uid: 200403,
      status: 'Resolved',
      status_id: 4,
      status_detail: resolved.resolution!.note,
      time: Date.parse(resolved.resolution!.time),
      end_time: at(300),
      metadata: { uid: `${alert.id}:resolved` },
      finding_info: { uid: alert.id, first_seen_time: Date.parse(alert.time) },
      evidences: [{ data: { resolution: { reason: 'membership-removed' } } }],
    });
    expect(ocsfAlert(alert, ctx)).toMatchObject({ activity_id: 1, status: 'New', status_id: 1 });
    // A closed finding needs nothing done.
    expect(r.remediation).toBeUndefined();
    expect(ocsfAlert(alert, ctx).remediation).toEqual({ desc: expect.stringMatching(/\w/) });
  });

  it('maps each severity and splits ATT&CK sub-techniques', () => {
    const base = run.alerts.find((a) => a.rule === 'break-glass.stale')!;
    const ids = (['info', 'low', 'medium', 'high', 'critical'] as const).map(
      (severity) => ocsfAlert({ ...base, severity }, ctx).severity_id,
    );
    expect(ids).toEqual([1, 2, 3, 4, 5]);
    expect((ocsfAlert(base, ctx).finding_info as { attacks: unknown }).attacks).toEqual([
      { technique: { uid: 'T1098' } },
      { technique: { uid: 'T1078' }, sub_technique: { uid: 'T1078.004' } },
    ]);
  });

  it('links an alert about a session to the session records', () => {
    const alert = run.alerts.find((a) => a.rule === 'access.after-revocation')!;
    const session = run.sessions.find((s) => s.id === alert.details?.sessionId)!;
    expect((ocsfAlert(alert, ctx).metadata as { correlation_uid?: string }).correlation_uid).toBe(session.id);
    expect((ocsfSession(session, ctx).metadata as { correlation_uid?: string }).correlation_uid).toBe(
      session.id,
    );
  });

  it('a group-proxied login is an Account Switch from the IAM person to the proxied MySQL account', () => {
    const r = ocsfSession(sessionNamed(1), ctx);
    expect(r).toMatchObject({
      class_uid: 3002,
      activity_id: 7,
      account_switch_type_id: 1,
      user: {
        uid: USERS.alice,
        name: 'alice@example.com',
        type_id: 1,
        account: { name: 'dba_proxy@%', type_id: 99 },
        groups: [{ uid: GROUPS.dba, name: 'DBAdmins' }],
      },
      is_mfa: true,
      auth_factors: [{ factor_type_id: 7, is_totp: true }],
      src_endpoint: { ip: '10.0.0.5' },
      dst_endpoint: { uid: 'ocid1.mysqldbsystem.oc1..prod1', name: 'prod-orders' },
      service: { uid: 'ocid1.mysqldbsystem.oc1..prod1', name: 'prod-orders' },
      status_id: 1,
      status_code: '0',
    });
  });

  it('a 1-to-1 login is a Logon; is_mfa only when the sign-on had a factor', () => {
    const carol = ocsfSession(sessionNamed(30), ctx);
    expect(carol).toMatchObject({ activity_id: 1, user: { uid: USERS.carol, account: { name: 'carol@%' } } });
    expect(carol).not.toHaveProperty('account_switch_type_id');
    const dave = ocsfSession(sessionNamed(3), ctx);
    expect(dave).not.toHaveProperty('is_mfa');
    expect(dave).not.toHaveProperty('auth_factors');
  });

  it('maps OCI sign-on factors to OCSF factor types', () => {
    const factorOf = (mfaFactor: string) =>
      (ocsfSession({ ...sessionNamed(1), mfaFactor }, ctx).auth_factors as unknown[])[0];
    expect(factorOf('TOTP')).toEqual({ factor_type_id: 7, factor_type: 'OTP', is_totp: true });
    expect(factorOf('FIDO_AUTHENTICATOR')).toEqual({ factor_type_id: 10, factor_type: 'WebAuthn' });
    expect(factorOf('PUSH')).toEqual({ factor_type_id: 5, factor_type: 'Push Notification' });
    expect(factorOf('SMS')).toEqual({ factor_type_id: 1, factor_type: 'SMS' });
    expect(factorOf('EMAIL')).toEqual({ factor_type_id: 8, factor_type: 'Email' });
    expect(factorOf('BYPASSCODE')).toEqual({ factor_type_id: 7, factor_type: 'OTP' });
    expect(factorOf('Smoke signals')).toEqual({ factor_type_id: 99, factor_type: 'Smoke signals' });
  });

  it('a failed login carries the MySQL errno; nobody is named behind it', () => {
    const r = ocsfSession(sessionNamed(10), ctx);
    expect(r).toMatchObject({
      activity_id: 1,
      status_id: 2,
      status: 'Failure',
      status_code: '1045',
      status_detail: 'ER_ACCESS_DENIED_ERROR',
      user: { account: { name: 'admin@%' } },
    });
    expect(r.user).not.toHaveProperty('name');
  });

  it('an unattributed proxied login names the group and the account, not a person', () => {
    const r = ocsfSession(sessionNamed(21), ctx);
    expect(r.user).toEqual({
      account: { name: 'dba_proxy@%', type: 'MySQL Account', type_id: 99 },
      groups: [{ uid: GROUPS.dba, name: 'DBAdmins' }],
    });
    expect(r.unmapped).toMatchObject({ attribution: { method: 'unattributed', problem: 'no-evidence' } });
  });

  it('a change_user is an Account Switch of its own; the connect stays the Logon of who connected', () => {
    const s = sessionNamed(40);
    const logon = ocsfSession(s, ctx);
    expect(logon).toMatchObject({
      activity_id: 1,
      time: at(100),
      metadata: { uid: s.connectKey, correlation_uid: s.id },
      user: { account: { name: 'app@%' } },
      message: 'Account app@% logged in to prod-orders as app@%',
    });
    expect(logon.user).not.toHaveProperty('uid');
    expect(
      produced.find((p) => p.what === `session change_user ${s.changedUser!.key}`)?.record,
    ).toMatchObject({
      activity_id: 7,
      account_switch_type_id: 1,
      time: at(110),
      metadata: { uid: s.changedUser!.key, correlation_uid: s.id, event_code: 'connection/change_user' },
      user: { uid: USERS.alice, account: { name: 'dba_proxy@%' } },
      unmapped: { login: { external_user: USERS.alice }, attribution: { method: 'external-user' } },
    });
    expect(ocsfSessionEnd(s, ctx)).toMatchObject({
      activity_id: 2,
      time: at(120),
      user: { uid: USERS.alice },
    });
  });

  it('each switch of a session is an Account Switch of its own, from who the connection was (actor) to whom', () => {
    const s = sessionNamed(41);
    const records = sessionSwitches(s).map((sw) => ocsfSwitch(s, sw, ctx));
    expect(records.map((r) => [r.activity_id, r.time, r.metadata])).toEqual(
      [131, 132, 133].map((m, i) => [
        7,
        at(m),
        expect.objectContaining({
          uid: s.switches![i]!.key,
          correlation_uid: s.id,
          event_code: 'connection/change_user',
        }),
      ]),
    );
    expect(records.map((r) => [r.actor, (r.user as { uid: string }).uid])).toEqual([
      [{ user: { account: { name: 'app@%', type: 'MySQL Account', type_id: 99 } } }, USERS.alice],
      [
        {
          user: expect.objectContaining({
            uid: USERS.alice,
            account: expect.objectContaining({ name: 'dba_proxy@%' }),
          }),
        },
        USERS.dave,
      ],
      [
        {
          user: expect.objectContaining({
            uid: USERS.dave,
            account: expect.objectContaining({ name: 'dev_proxy@%' }),
          }),
        },
        USERS.bob,
      ],
    ]);
    expect(ocsfSession(s, ctx)).toMatchObject({ activity_id: 1, user: { account: { name: 'app@%' } } });
  });

  it("the client program is the actor's app_name, beside who switched, and whole in unmapped.client", () => {
    const client = { program: 'mysql', name: 'libmysql', version: '8.4.3' };
    const s: Session = { ...sessionNamed(41), client };
    expect(ocsfSession(s, ctx)).toMatchObject({ actor: { app_name: 'mysql' }, unmapped: { client } });
    expect(ocsfSession(s, ctx).actor).not.toHaveProperty('user');
    const [first] = sessionSwitches(s).map((sw) => ocsfSwitch(s, sw, ctx));
    expect(first?.actor).toEqual({
      user: { account: { name: 'app@%', type: 'MySQL Account', type_id: 99 } },
      app_name: 'mysql',
    });
    expect(ocsfSessionEnd(s, ctx)).toMatchObject({ actor: { app_name: 'mysql' } });
    // Without a program, the library names it; without a client, no actor.
    const library: Session = { ...s, client: { name: 'libmysql' } };
    expect(ocsfSession(library, ctx)).toMatchObject({ actor: { app_name: 'libmysql' } });
    expect(ocsfSession(sessionNamed(41), ctx)).not.toHaveProperty('actor');
  });

  it('a Logoff exists once the session has ended', () => {
    expect(ocsfSessionEnd(sessionNamed(1), ctx)).toMatchObject({ activity_id: 2, time: at(25) });
    expect(ocsfSessionEnd(sessionNamed(2), ctx)).toBeUndefined();
  });

  it('a session its server ended says in its Logoff that the server logged no disconnect', () => {
    const logged = ocsfSessionEnd(sessionNamed(1), ctx)!;
    expect(logged.metadata).toMatchObject({ event_code: 'connection/disconnect' });
    expect(logged).not.toHaveProperty('status_detail');
    const s: Session = { ...sessionNamed(2), disconnectTime: toIso(at(130)), endReason: 'server-restart' };
    expect(wire(ocsfSessionEnd(s, ctx)!)).toMatchObject({
      activity_id: 2,
      time: at(130),
      status: 'Success',
      status_detail:
        'no disconnect logged: its server restarted (the end is the startup time, an upper bound)',
      metadata: { uid: `${s.id}:disconnect`, correlation_uid: s.id, event_code: 'session/server-restart' },
      message: expect.stringMatching(/ended, no disconnect logged: its server restarted/),
    });
    for (const endReason of SESSION_END_REASONS)
      expect(ocsfSessionEnd({ ...s, endReason }, ctx)).toMatchObject({
        metadata: { event_code: `session/${endReason}` },
        status_detail: expect.stringMatching(/^no disconnect logged: /),
      });
  });

  it('a login made while a credential someone else created on the person was in force names it in unmapped.attribution', () => {
    const s = withPlantedKey(sessionNamed(1));
    const planted = [
      {
        type: 'api-key',
        uid: 'aa:bb:cc',
        created_time: at(3),
        actor: { user: { uid: 'ocid1.user.oc1..admin', name: 'iam-admin', type: 'User', type_id: 1 } },
        event_uid: 'iam-credential_change-1',
      },
    ];
    for (const record of [ocsfSession(s, ctx), ocsfSessionEnd(s, ctx)!])
      expect(wire(record)).toMatchObject({
        unmapped: { attribution: { confidence: 'asserted', planted_credentials: planted } },
      });
    expect(ocsfSession(sessionNamed(1), ctx).unmapped).not.toHaveProperty('attribution.planted_credentials');
  });
});

describe('OCSF validator helper', () => {
  it('reports a missing schema directory as absent', () => {
    expect(loadOcsfValidator(path.join(REPO_ROOT, 'no-such-ocsf-dir'))).toBeUndefined();
  });
});

describeRequiring(OCSF_SCHEMAS, 'OCSF 1.8.0 schema validation', () => {
  const validator = loadOcsfValidator()!;
  it('knows every class we emit', () => {
    expect(validator.version).toBe(OCSF_VERSION);
    for (const { record } of produced) expect(validator.classUids).toContain(record.class_uid);
  });

  it('every record of the timeline validates, a Logoff of a session its server ended, and a login under a planted credential', () => {
    expect(produced.length).toBeGreaterThan(30);
    const ended: Session = {
      ...sessionNamed(2),
      disconnectTime: toIso(at(130)),
      endReason: 'server-changed',
    };
    const planted = withPlantedKey(sessionNamed(1));
    const client: Session = {
      ...sessionNamed(41),
      client: { program: 'mysql', name: 'libmysql', version: '8.4.3' },
    };
    const change = run.alerts.find((a) => a.rule === 'iam.privileged-group-change' && a.identity)!;
    const failures = [
      ...produced,
      { what: 'session ended by failover', record: ocsfSessionEnd(ended, ctx)! },
      { what: 'session with a planted credential', record: ocsfSession(planted, ctx) },
      { what: 'session with a client', record: ocsfSession(client, ctx) },
      ...sessionSwitches(client).map((sw) => ({
        what: 'switch with a client',
        record: ocsfSwitch(client, sw, ctx),
      })),
      {
        what: 'alert with a client and an actor',
        record: ocsfAlert({ ...change, client: client.client! }, ctx),
      },
    ]
      .map(({ what, record }) => ({ what, errors: validator.errors(wire(record)) }))
      .filter((f) => f.errors.length > 0);
    expect(failures).toEqual([]);
  });

  it('rejects what OCSF forbids (the validation can fail)', () => {
    const session = wire(ocsfSession(sessionNamed(1), ctx));
    const broken = [
      { ...session, surprise: 1 },
      { ...session, cloud: { provider: 'OCI' } },
      { ...session, type_uid: 300201 },
      { ...session, user: null },
      { ...session, src_endpoint: { ip: '10.0.1.300' } },
      { ...session, time_dt: '2026-11-02T09:05:00Z' },
      Object.fromEntries(Object.entries(session).filter(([k]) => k !== 'user')),
    ];
    for (const b of broken) expect(validator.errors(b), JSON.stringify(b).slice(0, 80)).not.toEqual([]);
  });

  it('any names, addresses, factors and SQL still give valid records', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 30 });
    const edge = fc.constantFrom(
      'fe80::1%eth0',
      `fe80::1%${'z'.repeat(40)}`,
      '0000:0000:0000:0000:0000:ffff:255.255.255.255',
      '01.2.3.4',
      '',
    );
    const address = fc.oneof(fc.ipV4(), fc.ipV6(), edge, text);
    const base = sessionNamed(1);
    const alert = run.alerts.find((a) => a.rule === 'privilege.change')!;
    fc.assert(
      fc.property(
        fc.record({
          person: text,
          account: text,
          group: text,
          ip: address,
          factor: text,
          conn: text,
          sql: text,
        }),
        fc.boolean(),
        (v, proxied) => {
          const s: Session = {
            ...base,
            proxied,
            identity: { id: v.person, name: v.person },
            mysqlAccount: v.account,
            group: { id: v.group, name: v.group },
            sourceIp: v.ip,
            mfaFactor: v.factor,
            connectionType: v.conn,
          };
          const a: Alert = {
            ...alert,
            title: v.person,
            sourceIp: v.ip,
            mysqlAccount: v.account,
            details: { sql: v.sql },
          };
          for (const r of [ocsfSession(s, ctx), ocsfAlert(a, ctx)]) {
            expect(validator.errors(wire(r))).toEqual([]);
          }
        },
      ),
      runs(300),
    );
  });
});
