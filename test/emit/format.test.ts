// The format registry: every format gives one line per alert and session, events only where the
// format has a record for them, and no secret or SQL literal ever reaches an output.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import { RULES } from '../../shared/detect/registry.js';
import { at, db, iam, USERS } from '../../shared/detect/timeline.js';
import {
  CLASSIFIED_NAMESPACES,
  formatAlert,
  formatSession,
  formatSessionEnd,
  formatSessionSwitches,
  isOutputFormat,
  OUTPUT_FORMATS,
  PRODUCT,
  ruleInfo,
} from '../../shared/emit/formats/format.js';
import { REPO_ROOT } from '../helpers/requirements.js';
import { beforeFirstTest, runTimeline, type TimelineResult } from '../helpers/run-timeline.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';

const SECRET = 'Sup3rS3cret';
const LITERAL = '4111-1111-1111-1111';

/** Secrets planted where MySQL would log them verbatim (a failed GRANT) and where rules see them. */
function secretTimeline(): CanonicalEvent[] {
  return [
    iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.5', mfa: 'TOTP' }),
    db.connect({ at: at(1), conn: 1, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
    db.query({
      at: at(2),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'grant',
      sql: `GRANT ALL ON *.* TO 'x'@'%' IDENTIFIED BY '${SECRET}'`,
      status: 1064,
    }),
    db.query({
      at: at(3),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'create_user',
      sql: `CREATE USER 'rep'@'%' IDENTIFIED BY '${SECRET}'`,
    }),
    db.query({
      at: at(4),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'alter_user',
      sql: `ALTER USER 'carol'@'%' IDENTIFIED BY '${SECRET}'`,
    }),
    db.query({
      at: at(5),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'set_password',
      sql: `SET PASSWORD FOR 'app'@'%' = '${SECRET}'`,
    }),
    db.query({
      at: at(6),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'select',
      sql: `SELECT * FROM shop.orders WHERE card = '${LITERAL}'`,
    }),
    db.query({
      at: at(7),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'select',
      sql: `SELECT audit_log_filter_set_filter('${SECRET}', '{"filter":{"log":false}}')`,
    }),
    db.disconnect({ at: at(9), conn: 1, account: 'dba_proxy' }),
  ];
}

function allLines(run: TimelineResult): string[] {
  return OUTPUT_FORMATS.flatMap((f) => [
    ...run.alerts.map((a) => formatAlert(f, a)),
    ...run.sessions.flatMap((s) => [
      formatSession(f, s),
      ...formatSessionSwitches(f, s),
      formatSessionEnd(f, s),
    ]),
  ]).filter((l): l is string => l !== undefined);
}

describe('format registry', () => {
  let run: TimelineResult;
  const events = incidentTimeline();
  beforeFirstTest(async () => {
    run = await runTimeline(events);
  });

  it('lists the formats and recognises their names', () => {
    expect(OUTPUT_FORMATS).toEqual(['jsonl', 'ocsf', 'cef', 'ecs']);
    expect(OUTPUT_FORMATS.every(isOutputFormat)).toBe(true);
    expect(isOutputFormat('OCSF')).toBe(false);
    expect(isOutputFormat('syslog')).toBe(false);
  });

  it('every format gives exactly one line per alert and per session', () => {
    for (const f of OUTPUT_FORMATS) {
      for (const a of run.alerts) expect(formatAlert(f, a)).not.toMatch(/[\r\n]/);
      for (const s of run.sessions) expect(formatSession(f, s)).toMatch(/^[^\r\n]+$/);
    }
  });

  it('jsonl is the alert and the session as stored', () => {
    const a = run.alerts[0]!;
    expect(JSON.parse(formatAlert('jsonl', a))).toEqual(a);
    expect(JSON.parse(formatSession('jsonl', run.sessions[0]!)!)).toEqual(run.sessions[0]);
  });

  it('JSON formats parse; CEF starts with its header', () => {
    for (const a of run.alerts) {
      expect(JSON.parse(formatAlert('ocsf', a)).class_uid).toBe(2004);
      expect(JSON.parse(formatAlert('ecs', a)).event.kind).toBe('alert');
      expect(formatAlert('cef', a)).toMatch(/^CEF:0\|heatwave-iam-audit\|heatwave-iam-audit\|/);
    }
  });

  it('a session end is an OCSF Logoff only, once disconnected', () => {
    const ended = run.sessions.find((s) => s.disconnectTime !== undefined)!;
    expect(JSON.parse(formatSessionEnd('ocsf', ended)!).activity_id).toBe(2);
    expect(formatSessionEnd('cef', ended)).toBeUndefined();
    expect(
      formatSessionEnd('ocsf', run.sessions.find((s) => s.disconnectTime === undefined)!),
    ).toBeUndefined();
  });

  it('the product version is the package version', () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
    };
    expect(PRODUCT).toEqual({ name: pkg.name, vendor: 'heatwave-iam-audit', version: pkg.version });
  });

  it('every registered rule has its metadata and a deliberate category', () => {
    for (const rule of RULES) {
      const info = ruleInfo(rule.id);
      expect(info).toMatchObject({ id: rule.id, title: rule.title, description: rule.description });
      expect(CLASSIFIED_NAMESPACES, rule.id).toContain(rule.id.split('.')[0]);
      expect(info.categories.length).toBeGreaterThan(0);
    }
  });

  it('an alert of a rule the registry no longer has still formats', () => {
    const retired = { ...run.alerts[0]!, rule: 'retired.rule' };
    expect(ruleInfo('retired.rule')).toEqual({
      id: 'retired.rule',
      title: 'retired.rule',
      categories: ['database'],
    });
    for (const f of OUTPUT_FORMATS) expect(formatAlert(f, retired)).toContain('retired.rule');
    for (const id of ['constructor', '__proto__.x', 'toString.y']) {
      expect(ruleInfo(id).categories).toEqual(['database']);
    }
  });
});

describe('sessions with a change_user', () => {
  // An application's connection taken over by a DBA, whose OCID the plugin logs.
  let s: Session;
  beforeFirstTest(async () => {
    const run = await runTimeline([
      db.connect({ at: at(0), conn: 1, account: 'app', ip: '10.1.1.1' }),
      db.changeUser({
        at: at(10),
        conn: 1,
        account: 'dba_proxy',
        user: 'alice',
        os: USERS.alice,
        proxy: true,
      }),
      db.disconnect({ at: at(20), conn: 1, account: 'dba_proxy' }),
    ]);
    s = run.sessions[0]!;
  });

  it('have a record of the connect and one of the change in each SIEM format', () => {
    expect(s.connected).toMatchObject({ mysqlAccount: 'app@%', identity: null });
    const ocsf = [formatSession('ocsf', s)!, ...formatSessionSwitches('ocsf', s)].map((l) => JSON.parse(l));
    expect(ocsf.map((r) => [r.time, r.activity_id, r.user.uid, r.user.account.name])).toEqual([
      [at(0), 1, undefined, 'app@%'],
      [at(10), 7, USERS.alice, 'dba_proxy@%'],
    ]);
    const ecs = [formatSession('ecs', s)!, ...formatSessionSwitches('ecs', s)].map((l) => JSON.parse(l));
    expect(ecs.map((d) => [d['@timestamp'], d.event.action, d.user.name, d.user.effective.name])).toEqual([
      [s.connectTime, 'login', undefined, 'app@%'],
      [s.changedUser!.time, 'change-user', 'alice@example.com', 'dba_proxy@%'],
    ]);
    const cef = [formatSession('cef', s)!, ...formatSessionSwitches('cef', s)];
    expect(cef[0]).toMatch(new RegExp(`\\|session\\.logon\\|.*\\|rt=${at(0)} .*duser=app@%`));
    expect(cef[0]).not.toContain('alice');
    expect(cef[1]).toMatch(
      new RegExp(
        `\\|session\\.change-user\\|.*\\|rt=${at(10)} .*suser=alice@example\\.com .*duser=dba_proxy@%`,
      ),
    );
    expect(formatSessionSwitches('jsonl', s)).toEqual([]);
    expect(JSON.parse(formatSession('jsonl', s)!)).toEqual(s);
  });

  it('stored before the connect was kept format as they did: one connect record', () => {
    const { connected: _, switches: _switches, ...stored } = s;
    const old = JSON.parse(JSON.stringify(stored)) as Session;
    for (const f of OUTPUT_FORMATS) expect(formatSessionSwitches(f, old)).toEqual([]);
    expect(JSON.parse(formatSession('ocsf', old)!)).toMatchObject({
      time: at(0),
      metadata: { uid: old.connectKey },
      user: { uid: USERS.alice, account: { name: 'dba_proxy@%' } },
    });
  });
});

describe('sessions with several switches', () => {
  // An application's connection taken over by Alice, reset by its pool, then handed to Dave and to Bob.
  const events = [
    db.connect({ at: at(0), conn: 1, account: 'app', ip: '10.1.1.1' }),
    db.changeUser({ at: at(10), conn: 1, account: 'dba_proxy', user: 'alice', os: USERS.alice, proxy: true }),
    db.changeUser({ at: at(11), conn: 1, account: 'dba_proxy', user: 'alice', os: USERS.alice, proxy: true }),
    db.changeUser({ at: at(20), conn: 1, account: 'dev_proxy', user: 'dave', os: USERS.dave, proxy: true }),
    db.changeUser({ at: at(30), conn: 1, account: 'dev_proxy', user: 'bob', os: USERS.bob, proxy: true }),
    db.disconnect({ at: at(40), conn: 1, account: 'dev_proxy' }),
  ];
  const switchKeys = [events[1]!.key, events[3]!.key, events[4]!.key];
  let s: Session;
  beforeFirstTest(async () => {
    s = (await runTimeline(events)).sessions[0]!;
  });

  it('have one record per switch in each SIEM format, each at its time with its own key', () => {
    const ocsf = formatSessionSwitches('ocsf', s).map((l) => JSON.parse(l));
    expect(
      ocsf.map((r) => [r.time, r.metadata.uid, r.actor.user.account.name, r.user.uid, r.user.account.name]),
    ).toEqual([
      [at(10), switchKeys[0], 'app@%', USERS.alice, 'dba_proxy@%'],
      [at(20), switchKeys[1], 'dba_proxy@%', USERS.dave, 'dev_proxy@%'],
      [at(30), switchKeys[2], 'dev_proxy@%', USERS.bob, 'dev_proxy@%'],
    ]);
    expect(ocsf.map((r) => r.actor.user.uid)).toEqual([undefined, USERS.alice, USERS.dave]);
    expect(ocsf.map((r) => r.message)).toEqual([
      'alice@example.com changed user on prod-orders from app@% to dba_proxy@% through IAM group DBAdmins',
      'dave@example.com changed user on prod-orders from dba_proxy@% (alice@example.com) to dev_proxy@% through IAM group Developers',
      'bob@example.com changed user on prod-orders from dev_proxy@% (dave@example.com) to dev_proxy@% through IAM group Developers',
    ]);
    const ecs = formatSessionSwitches('ecs', s).map((l) => JSON.parse(l));
    expect(
      ecs.map((d) => [d['@timestamp'], d.event.action, d.event.id, d.user.name, d.user.effective.name]),
    ).toEqual([
      [new Date(at(10)).toISOString(), 'change-user', switchKeys[0], 'alice@example.com', 'dba_proxy@%'],
      [new Date(at(20)).toISOString(), 'change-user', switchKeys[1], 'dave@example.com', 'dev_proxy@%'],
      [new Date(at(30)).toISOString(), 'change-user', switchKeys[2], 'bob@example.com', 'dev_proxy@%'],
    ]);
    expect(ecs[2].related.user).toEqual(expect.arrayContaining(['dave@example.com', 'bob@example.com']));
    const cef = formatSessionSwitches('cef', s);
    expect(
      cef.map((l) => [
        l.match(/\|rt=(\d+)/)?.[1],
        l.match(/ suser=(\S+)/)?.[1],
        l.match(/ msg=(.*?) cs/)?.[1],
      ]),
    ).toEqual([
      [String(at(10)), 'alice@example.com', 'change_user from app@% to dba_proxy@%'],
      [String(at(20)), 'dave@example.com', 'change_user from dba_proxy@% (alice@example.com) to dev_proxy@%'],
      [String(at(30)), 'bob@example.com', 'change_user from dev_proxy@% (dave@example.com) to dev_proxy@%'],
    ]);
    expect(new Set(cef.map((l) => l.match(/externalId=(\w+)/)?.[1])).size).toBe(3);
    expect(formatSessionSwitches('jsonl', s)).toEqual([]);
  });

  it('the latest record after switches were left out says how many', () => {
    const full = { ...s, switchesOmitted: 7 };
    const [ocsf, ecs, cef] = (['ocsf', 'ecs', 'cef'] as const).map((f) => formatSessionSwitches(f, full));
    expect(ocsf!.map((l) => JSON.parse(l).unmapped.switches_omitted)).toEqual([undefined, undefined, 7]);
    expect(ecs!.map((l) => JSON.parse(l).heatwave.switches_omitted)).toEqual([undefined, undefined, 7]);
    expect(cef!.map((l) => / cn1Label=switchesOmitted cn1=7 /.test(l))).toEqual([false, false, true]);
  });

  it('of a session its server ended without a disconnect, what ended it never reads as a switch’s', () => {
    const ended: Session = { ...s, endReason: 'server-restart' };
    const end = String(Date.parse(s.disconnectTime!));
    // CEF: `reason` would be the switch's (why its event was made): only the logon line has it.
    expect(formatSession('cef', ended)).toMatch(/\|session\.logon\|.* reason=server-restart /);
    const cef = formatSessionSwitches('cef', ended);
    expect(cef).toHaveLength(3);
    for (const l of cef) {
      expect(l).not.toMatch(/ reason=/);
      expect(l).toContain(` end=${end} `);
    }
    // OCSF: the Logoff says it; an Account Switch has no end of the session.
    expect(JSON.parse(formatSessionEnd('ocsf', ended)!).metadata.event_code).toBe('session/server-restart');
    for (const l of formatSessionSwitches('ocsf', ended)) expect(l).not.toContain('server-restart');
    // ECS: every document of the session, switches too, names its end and what ended it together.
    for (const l of [formatSession('ecs', ended)!, ...formatSessionSwitches('ecs', ended)]) {
      const d = JSON.parse(l);
      expect([d.event.end, d.heatwave.end_reason]).toEqual([s.disconnectTime, 'server-restart']);
    }
  });

  it('stored before switches were kept: one record of the last change_user, from what it connected as', () => {
    const { switches: _, ...stored } = s;
    const old = JSON.parse(JSON.stringify(stored)) as Session;
    const records = formatSessionSwitches('ocsf', old).map((l) => JSON.parse(l));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      time: at(30),
      metadata: { uid: switchKeys[2] },
      actor: { user: { account: { name: 'app@%' } } },
      user: { uid: USERS.bob, account: { name: 'dev_proxy@%' } },
    });
    for (const f of ['cef', 'ecs'] as const) expect(formatSessionSwitches(f, old)).toHaveLength(1);
  });
});

describe('no secret or SQL literal in any output', () => {
  const events = secretTimeline();
  let lines: string[];
  let run: TimelineResult;
  beforeFirstTest(async () => {
    run = await runTimeline(events);
    lines = allLines(run);
  });

  it('the planted statements reach the formatters (the check can fail)', () => {
    expect(JSON.stringify(events)).toContain(SECRET);
    expect(JSON.stringify(events)).toContain(LITERAL);
    expect(run.alerts.map((a) => a.rule)).toEqual(expect.arrayContaining(['privilege.change']));
    // The statements are in the alerts of every format, redacted.
    const statements = lines.filter((l) => l.includes('IDENTIFIED BY'));
    expect(statements.length).toBeGreaterThanOrEqual(OUTPUT_FORMATS.length);
    for (const l of statements) expect(l).toContain('IDENTIFIED BY ?');
    expect(lines.length).toBeGreaterThan(20);
  });

  it('no line of any format holds the secret or the literal', () => {
    const leaks = lines.filter((l) => l.includes(SECRET) || l.includes(LITERAL));
    expect(leaks).toEqual([]);
  });
});
