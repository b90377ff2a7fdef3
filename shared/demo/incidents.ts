// Injected incidents: at least one per rule of the registry, each with the alerts it must raise.
// Times are fixed in the two-day window; people come from the cast.

import { clock, dbaChange } from './churn.js';
import { groupMapping, MINUTE, PROXY_ACCOUNTS } from './fleet.js';
import type { Login } from './mysql-audit-writer.js';
import { PROXY_LOGIN } from './mysql-audit-writer.js';
import { actorOf, IamEvents } from './oci-events.js';
import { type Cast, type Story, sec } from './story.js';

export function injectIncidents(story: Story, cast: Cast): void {
  const { fleet } = story;
  const rng = story.rng.fork('incidents');
  const payments = story.db('payments');
  const ordersDb = story.db('orders');
  const logistics = story.db('logistics');
  const analytics = story.db('analytics');
  const bgGroup = fleet.groups.bg;

  // 1. Break-glass granted for an afternoon fix and not taken back: used, stale, used again the
  //    next morning, revoked that afternoon (which resolves the stale alert).
  {
    const s = cast.staleBreakGlass;
    const db = story.db(s.team);
    const granted = clock(story, 0, 14, 5);
    story.addMember(granted, s, 'bg', {
      kind: 'incident',
      story: `${s.name} granted break-glass access (revoked only the next afternoon)`,
    });
    // Break-glass needs a push or FIDO2 sign-on; this developer's sign-ons use a code by SMS.
    const weak = { signOn: 'domain', mfa: 'SMS' } as const;
    const purpose = { kind: 'incident', story: `${s.name} uses break-glass access` } as const;
    const t1 = sec(clock(story, 0, 14, 21));
    story.signOn(t1 - 6 * MINUTE, s, true, weak);
    story.proxiedSession(s, db, 'bg', t1, 25, {
      purpose,
      statements: [
        {
          at: t1 + 90_000,
          sqlCommand: 'alter_table',
          query: `ALTER TABLE ${db.tables[0]} ADD INDEX idx_status_updated (status, updated_at)`,
        },
      ],
    });
    story.expect('break-glass.used', 'incident', `${s.name} used break-glass access on ${db.name}`, {
      at: t1,
      dbSystemId: db.id,
      principalId: s.id,
      severity: 'high',
    });
    const smsOnly = `${s.name} used break-glass access after a sign-on with an SMS code`;
    story.expect('access.without-mfa', 'incident', smsOnly, { at: t1, dbSystemId: db.id, principalId: s.id });
    story.expect(
      'break-glass.stale',
      'incident',
      `${s.name} still holds ${bgGroup.name} 4 hours after the grant`,
      {
        at: granted + 4 * 60 * MINUTE,
        principalId: s.id,
        groupId: bgGroup.id,
      },
    );
    const t2 = sec(clock(story, 1, 11, 32));
    story.signOn(t2 - 7 * MINUTE, s, true, weak);
    story.proxiedSession(s, db, 'bg', t2, 15, { purpose });
    story.expect('access.without-mfa', 'incident', smsOnly, { at: t2, dbSystemId: db.id, principalId: s.id });
    story.expect(
      'break-glass.used',
      'incident',
      `${s.name} used break-glass access on ${db.name} the next day, past its maximum duration`,
      {
        at: t2,
        dbSystemId: db.id,
        principalId: s.id,
        severity: 'critical',
      },
    );
    story.removeMember(clock(story, 1, 16, 20), s, 'bg', {
      kind: 'incident',
      story: `${s.name}'s stale break-glass access revoked the next afternoon`,
    });
  }

  // 2. A planned night-time break-glass use by the on-call DBA, revoked within the hour.
  {
    const o = story.stableDba();
    story.addMember(clock(story, 0, 23, 8), o, 'bg', {
      story: `on-call ${o.name} granted break-glass for a night incident`,
    });
    const t = sec(clock(story, 0, 23, 14));
    story.signOn(t - 4 * MINUTE, o, true, { signOn: 'domain', mfa: 'FIDO2' });
    story.proxiedSession(o, payments, 'bg', t, 40, {
      purpose: { kind: 'churn', story: `on-call ${o.name}'s planned night-time break-glass use` },
      statements: [
        { at: t + 60_000, sqlCommand: 'show_processlist', query: 'SHOW FULL PROCESSLIST' },
        { at: t + 95_000, sqlCommand: 'kill', query: `KILL ${rng.int(20000, 90000)}` },
        { at: t + 130_000, sqlCommand: 'set_option', query: 'SET GLOBAL innodb_lock_wait_timeout = 120' },
      ],
    });
    story.expect(
      'break-glass.used',
      'incident',
      `on-call ${o.name} used break-glass access on ${payments.name} at night`,
      {
        at: t,
        dbSystemId: payments.id,
        principalId: o.id,
        severity: 'high',
      },
    );
    story.removeMember(clock(story, 1, 0, 41), o, 'bg', { story: `on-call ${o.name} break-glass revoked` });
  }

  // 3. A DBA is removed from DBAdmins; the removal reaches us ~55 minutes late, after they
  //    connected anyway through the DBA account.
  {
    const y = cast.revokedDba;
    const removed = story.removeMember(clock(story, 1, 9, 0), y, 'dba', {
      channel: 'late',
      kind: 'incident',
      story: `${y.name} removed from DBAdmins (event delivered late)`,
    });
    removed.ingestDelay = 55 * MINUTE;
    const t = sec(clock(story, 1, 9, 41));
    story.proxiedSession(y, payments, 'dba', t, 12, {
      finding: true,
      purpose: { kind: 'incident', story: `${y.name} connects after leaving DBAdmins` },
      login: story.groupLogin(y, PROXY_ACCOUNTS.dba, 'login-name'),
      statements: [
        {
          at: t + 40_000,
          sqlCommand: 'select',
          query: 'SELECT account_id, token_ref FROM card_token LIMIT 50000',
          tables: [['card_token', 'read']],
        },
        {
          at: t + 70_000,
          sqlCommand: 'select',
          query: 'SELECT * FROM settlement ORDER BY amount DESC LIMIT 1000',
          tables: [['settlement', 'read']],
        },
      ],
    });
    story.expect(
      'access.after-revocation',
      'incident',
      `${y.name} connected to ${payments.name} as dba_proxy after leaving DBAdmins`,
      {
        at: t,
        dbSystemId: payments.id,
        principalId: y.id,
      },
    );
  }

  // 4. A developer leaves in the afternoon; next morning someone uses their personal account.
  {
    const l = cast.leaverWithAccount;
    const admin = actorOf(story.admin);
    story.removeMember(clock(story, 0, 17, 20), l, `dev-${l.team}`);
    const blocked = clock(story, 0, 17, 25);
    story.emit(story.iam.userDeactivated(blocked, admin, l));
    story.roster.deactivate(l.id, blocked);
    const db = story.db(l.team);
    const t = sec(clock(story, 1, 7, 56));
    story.session({
      person: l,
      finding: true,
      purpose: { kind: 'incident', story: `the personal account of deactivated ${l.name} is used` },
      db,
      start: t,
      end: t + 20 * MINUTE,
      account: { user: l.alias, host: '%' },
      login: { user: l.alias, os: '', ip: '192.0.2.44', proxy: '' },
      workload: 'developer',
      program: 'mysql',
    });
    story.expect(
      'access.after-revocation',
      'incident',
      `personal account of deactivated ${l.name} used on ${db.name}`,
      {
        at: t,
        dbSystemId: db.id,
        principalId: l.id,
      },
    );
    // The DBA team drops the personal accounts later that morning (expected churn).
    const dba = story.stableDba();
    fleet.dbs
      .filter((d) => d.team === l.team)
      .forEach((d, i) => {
        const [at] = dbaChange(
          story,
          dba,
          d,
          clock(story, 1, 10, 15 + 3 * i),
          [
            {
              sqlCommand: 'drop_user',
              query: `DROP USER '${l.alias}'@'%'`,
              expect: [
                {
                  rule: 'mapping.change',
                  story: `personal IAM account of leaver ${l.name} dropped on ${d.name}`,
                },
                { rule: 'privilege.change', story: `DROP USER for leaver ${l.name} on ${d.name}` },
              ],
            },
          ],
          'churn',
        );
        story.roster.dropAccount(d, l, at!);
      });
  }

  // 5. An analyst logs in as the DBA account, naming themselves.
  {
    const x = cast.impostor;
    const t = sec(clock(story, 1, 14, 7));
    story.proxiedSession(x, ordersDb, 'dba', t, 10, {
      finding: true,
      purpose: { kind: 'incident', story: `${x.name} logs in as dba_proxy` },
      login: story.groupLogin(x, PROXY_ACCOUNTS.dba, 'login-name'),
      statements: [
        {
          at: t + 30_000,
          sqlCommand: 'select',
          query: 'SELECT * FROM customer LIMIT 1000',
          tables: [['customer', 'read']],
        },
      ],
    });
    story.expect(
      'access.identity-mismatch',
      'incident',
      `${x.name} (read-only analyst) logged in as dba_proxy on ${ordersDb.name}`,
      {
        at: t,
        dbSystemId: ordersDb.id,
        principalId: x.id,
      },
    );
  }

  // 6. A read-only login nobody can be named behind: shared account name, no sign-on from its IP.
  {
    const ip = '10.66.0.13';
    const t = sec(clock(story, 1, 16, 20));
    const login: Login = { user: PROXY_ACCOUNTS.ro, os: '', ip, proxy: PROXY_LOGIN };
    const table = analytics.tables[1] ?? analytics.tables[0]!;
    story.session({
      purpose: { kind: 'incident', story: 'a read-only login nobody can be named behind' },
      db: analytics,
      start: t,
      end: t + 30 * MINUTE,
      account: { user: PROXY_ACCOUNTS.ro, host: '%' },
      login,
      workload: 'scripted',
      program: 'DBeaver',
      statements: [0, 1, 2, 3].map((k) => ({
        at: t + (20 + 40 * k) * 1000,
        sqlCommand: 'select',
        query: `SELECT * FROM ${table} LIMIT ${(k + 1) * 10000}`,
        tables: [[table, 'read']],
      })),
    });
    story.expect(
      'access.unattributed',
      'incident',
      `nobody can be named behind ro_proxy on ${analytics.name} from ${ip}`,
      {
        at: t,
        dbSystemId: analytics.id,
        mysqlAccount: 'ro_proxy@%',
        sourceIp: ip,
      },
    );
  }

  // 7. A forgotten local ETL account logs in at night on an IAM-only system (twice: one alert).
  {
    logistics.extraLocal.push('legacy_etl');
    const account = { user: 'legacy_etl', host: '%' };
    const login = { user: 'legacy_etl', os: '', ip: '10.40.7.21', proxy: '' };
    const first = sec(clock(story, 1, 2, 31));
    for (const start of [first, sec(clock(story, 1, 2, 58))]) {
      story.session({
        purpose: { kind: 'incident', story: 'a forgotten local ETL account logs in' },
        db: logistics,
        start,
        end: start + 12 * MINUTE,
        account,
        login,
        workload: 'scripted',
        program: 'etl-runner',
        statements: [
          {
            at: start + 20_000,
            sqlCommand: 'select',
            query: "SELECT * FROM shipment WHERE updated_at > '2026-11-01'",
            tables: [['shipment', 'read']],
          },
        ],
      });
    }
    story.expect(
      'access.local-account',
      'incident',
      `local account legacy_etl@% logged in to IAM-only ${logistics.name}`,
      {
        at: first,
        dbSystemId: logistics.id,
        mysqlAccount: 'legacy_etl@%',
      },
    );
  }

  // 8. Password guessing against root from outside.
  {
    const ip = '198.51.100.77';
    const first = sec(clock(story, 1, 3, 12, 5));
    const times = Array.from({ length: 8 }, (_, i) => first + i * 21_000);
    for (const start of times) {
      story.session({
        db: payments,
        start,
        end: start,
        account: { user: 'root', host: '%' },
        login: { user: 'root', os: '', ip, proxy: '' },
        workload: 'scripted',
        program: 'mysql',
        status: 1045,
      });
    }
    story.expect('auth.failure-burst', 'incident', `8 failed root logins from ${ip} on ${payments.name}`, {
      at: first,
      until: times[times.length - 1]!,
      dbSystemId: payments.id,
      sourceIp: ip,
      loginUser: 'root',
    });
  }

  // 9. A DBA creates an all-powerful account at 03:40.
  dbaChange(
    story,
    story.stableDba(),
    payments,
    clock(story, 1, 3, 40),
    [
      {
        sqlCommand: 'create_user',
        query: "CREATE USER 'svc_sync'@'%' IDENTIFIED BY <secret>",
        expect: [
          { rule: 'privilege.change', story: `account svc_sync created at night on ${payments.name}` },
        ],
      },
      {
        sqlCommand: 'grant',
        query: "GRANT ALL PRIVILEGES ON *.* TO 'svc_sync'@'%' WITH GRANT OPTION",
        expect: [
          {
            rule: 'privilege.change',
            story: `ALL PRIVILEGES WITH GRANT OPTION to svc_sync on ${payments.name}`,
          },
        ],
      },
    ],
    'incident',
  );

  // 10. The group mapping is widened: Contractors now reach dba_proxy.
  dbaChange(
    story,
    story.stableDba(),
    ordersDb,
    clock(story, 1, 17, 45),
    [
      {
        sqlCommand: 'alter_user',
        query: `ALTER USER ''@'%' IDENTIFIED WITH 'authentication_oci' AS '${groupMapping(fleet, ordersDb, { [fleet.groups.contractors.id]: PROXY_ACCOUNTS.dba })}'`,
        expect: [
          {
            rule: 'mapping.change',
            story: `group mapping on ${ordersDb.name} widened: Contractors -> dba_proxy`,
          },
          { rule: 'privilege.change', story: `ALTER USER ''@'%' on ${ordersDb.name}` },
        ],
      },
    ],
    'incident',
  );

  // 11. Stolen developer credentials: self-added to DBAdmins at night, then the auth policy.
  {
    const m = cast.compromised;
    const actor = { id: m.id, name: m.name, ip: '203.0.113.66' };
    story.addMember(clock(story, 1, 2, 14), m, 'dba', {
      actor,
      kind: 'incident',
      story: `${m.name} added themselves to DBAdmins at 02:14`,
    });
    const t = sec(clock(story, 1, 2, 19));
    story.proxiedSession(m, payments, 'dba', t, 20, {
      purpose: { kind: 'incident', story: `stolen credentials of ${m.name} used at night` },
      login: { user: m.alias, os: '', ip: '203.0.113.66', proxy: PROXY_LOGIN },
      statements: [
        {
          at: t + 50_000,
          sqlCommand: 'select',
          query: 'SELECT * FROM card_token LIMIT 10000',
          tables: [['card_token', 'read']],
        },
      ],
    });
    story.removeMember(clock(story, 1, 2, 47), m, 'dba', {
      actor,
      kind: 'incident',
      story: `${m.name} removed themselves from DBAdmins`,
    });
    const changed = clock(story, 1, 11, 5);
    story.emit(
      story.iam.policyUpdated(changed, actor, fleet.authPolicy, fleet.authPolicy.statements, [
        ...fleet.authPolicy.statements,
        'Allow any-user to {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT} in tenancy',
      ]),
    );
    story.expect('iam.auth-policy-change', 'incident', `${m.name} widened the mysql_dp_auth policy`, {
      at: changed,
      principalId: m.id,
    });
    // ...and put an API key of theirs on a DBA's user, to log in to the databases as that DBA.
    // Its own generator: the draws of the IAM records that follow stay as they were.
    const d = cast.passwordOnlyDba;
    const keyed = changed + 15 * MINUTE;
    story.emit(new IamEvents(fleet, story.rng.fork('incident-api-key')).apiKeyUploaded(keyed, d, actor));
    story.expect('iam.credential-change', 'incident', `${m.name} uploaded an API key onto ${d.name}'s user`, {
      at: keyed,
      principalId: d.id,
      severity: 'high',
    });
    // ...and logs in with it, as that DBA, from their own address. Every session of the DBA from
    // then on is one the key may have made (expectPlantedCredentialUses).
    story.plantedCredentials.push({ ts: keyed, person: d, actor: m.name });
    story.proxiedSession(d, story.db(d.team), 'dba', sec(keyed + 10 * MINUTE), 6, {
      purpose: { kind: 'incident', story: `${m.name} logs in as ${d.name} with the API key they planted` },
      login: { user: d.alias, os: '', ip: '203.0.113.66', proxy: PROXY_LOGIN },
    });
    // ...and give the payments DB system a MySQL configuration that switches auditing off.
    const switched = changed + 25 * MINUTE;
    const configuration = (name: string) => `ocid1.mysqlconfiguration.oc1..${name}`;
    story.emit(
      new IamEvents(fleet, story.rng.fork('incident-configuration')).dbSystemUpdated(
        switched,
        actor,
        payments,
        {
          from: configuration('standard'),
          to: configuration('noaudit'),
        },
      ),
    );
    story.expect(
      'dbsystem.change',
      'incident',
      `${m.name} gave ${payments.name} a configuration without auditing`,
      {
        at: switched,
        dbSystemId: payments.id,
        principalId: m.id,
        severity: 'high',
      },
    );
  }

  // 12. Audit filter removed.
  dbaChange(
    story,
    story.stableDba(),
    logistics,
    clock(story, 1, 20, 12),
    [
      {
        sqlCommand: 'select',
        query: "SELECT audit_log_filter_remove_user('%')",
        expect: [{ rule: 'audit.tamper', story: `audit filter removed for all users on ${logistics.name}` }],
      },
    ],
    'incident',
  );

  // 13. The collector was down overnight and a read replica's audit log rotated before it was read.
  {
    const db = fleet.dbs.find((d) => d.format === 'collector')!;
    const from = sec(clock(story, 0, 23, 40));
    const to = sec(clock(story, 1, 2, 15));
    story.gaps.push({
      source: 'audit-gap',
      trail: 'mysql-audit',
      dbSystemId: db.id,
      dbSystemName: db.name,
      instance: 'replica-1',
      reason: 'pruned',
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      detail:
        'the log no longer holds the last event read: it was rotated and pruned before the events after it were read',
    });
    story.expect('audit.gap', 'incident', `${db.name}/replica-1 audit log pruned before it was read`, {
      at: to,
      dbSystemId: db.id,
    });
  }

  // 14. A DBA starts early after a classic console sign-on with a password only.
  {
    const d = cast.passwordOnlyDba;
    const db = story.db(d.team);
    const t = sec(clock(story, 1, 6, 5));
    story.signOn(t - 4 * MINUTE, d, true, { signOn: 'classic' });
    story.proxiedSession(d, db, 'dba', t, 15, {
      purpose: { kind: 'incident', story: `${d.name} works after a password-only sign-on` },
    });
    story.expect(
      'access.without-mfa',
      'incident',
      `${d.name} reached dba_proxy on ${db.name} after a sign-on without a second factor`,
      { at: t, dbSystemId: db.id, principalId: d.id, severity: 'high' },
    );
  }

  // 15. Password guessing against admin spread over the production DB systems from a compromised
  //     host pool: four tries on each DB system and from each address, never five on one of them.
  {
    const prods = fleet.dbs.filter((d) => d.env === 'prod').slice(0, 4);
    const pool = [21, 22, 23, 24].map((n) => `10.40.7.${n}`);
    const first = sec(clock(story, 1, 4, 30));
    const tries = prods.length * pool.length;
    const times = Array.from({ length: tries }, (_, k) => first + k * 33_000);
    times.forEach((start, k) => {
      story.session({
        db: prods[k % prods.length]!,
        start,
        end: start,
        account: { user: 'admin', host: '%' },
        login: { user: 'admin', os: '', ip: pool[Math.floor(k / prods.length)]!, proxy: '' },
        workload: 'scripted',
        program: 'mysql',
        status: 1045,
      });
    });
    story.expect(
      'auth.failure-burst',
      'incident',
      `${tries} failed admin logins spread over ${prods.length} DB systems from ${pool.length} addresses`,
      { at: first, until: times[times.length - 1]!, loginUser: 'admin' },
    );
  }
}
