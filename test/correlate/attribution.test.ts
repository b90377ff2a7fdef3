// The attribution matrix of architecture section 4: every method and confidence, and each failure path.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CanonicalEvent, DbEvent } from '../../schemas/events.js';
import { SESSION_SWITCHES_MAX, type Session } from '../../schemas/session.js';
import { at, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';
import { Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { toIso } from '../../shared/time.js';
import { accountSnapshot, localAccount, runWithSnapshots } from '../helpers/account-snapshots.js';
import { runs } from '../helpers/property.js';
import { deliveries, runAcrossReopen, runBatches, runTimeline, testConfig } from '../helpers/run-timeline.js';

async function sessionOf(events: CanonicalEvent[]) {
  const { sessions } = await runTimeline(events);
  const connected = sessions.filter((s) => s.connectKey === events.at(-1)!.key);
  expect(connected).toHaveLength(1);
  return connected[0]!;
}

/** A proxied login at at(10) as `account`, from `ip`, naming nobody (its login name is the account's). */
function proxyConnect(account: string, ip: string): CanonicalEvent {
  return db.connect({ at: at(10), conn: 1, account, user: account, ip, proxy: true });
}

/** Audited SQL that creates `account` and maps each group in `groups` to it (as a DBA would). */
function mappedBySql(account: string, groups: string[]): CanonicalEvent[] {
  const mapping = JSON.stringify({
    tenancy: 't',
    group_mapping: Object.fromEntries(groups.map((g) => [g, account])),
  });
  return [
    db.query({
      at: at(1),
      conn: 9,
      account: 'admin',
      sqlCommand: 'create_user',
      sql: `CREATE USER '${account}'@'%' ACCOUNT LOCK`,
    }),
    db.query({
      at: at(2),
      conn: 9,
      account: 'admin',
      sqlCommand: 'alter_user',
      sql: `ALTER USER ''@'%' IDENTIFIED WITH 'authentication_oci' AS '${mapping}'`,
    }),
  ];
}

describe('attribution', () => {
  it('mapped-user: a 1-to-1 account is verified', async () => {
    const s = await sessionOf([db.connect({ at: at(1), conn: 1, account: 'carol' })]);
    expect(s.identity?.id).toBe(USERS.carol);
    expect(s.attribution).toMatchObject({ method: 'mapped-user', confidence: 'verified' });
    expect(s.proxied).toBe(false);
    expect(s.attribution?.evidence).toContain('config:dbSystems');
  });

  it('external-user: login.os names a member, verified', async () => {
    const s = await sessionOf([
      db.connect({
        at: at(1),
        conn: 1,
        account: 'dba_proxy',
        user: 'x',
        os: 'alice@example.com',
        proxy: true,
      }),
    ]);
    expect(s).toMatchObject({
      identity: { id: USERS.alice },
      group: { id: GROUPS.dba },
      proxied: true,
      mysqlAccount: 'dba_proxy@%',
    });
    expect(s.attribution).toMatchObject({ method: 'external-user', confidence: 'verified' });
  });

  it('login-name: corroborated by a sign-on from the same IP within the token lifetime, with its MFA factor', async () => {
    const s = await sessionOf([
      iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.5', mfa: 'TOTP' }),
      db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
    ]);
    expect(s.attribution).toMatchObject({ method: 'login-name', confidence: 'corroborated' });
    expect(s.mfaFactor).toBe('TOTP');
  });

  it('login-name: asserted without a sign-on, or with one from another IP or too old', async () => {
    for (const signOn of [
      [],
      [iam.signOn({ at: at(0), user: USERS.alice, ip: '10.9.9.9' })],
      [iam.signOn({ at: at(-61), user: USERS.alice, ip: '10.0.0.5' })],
    ]) {
      const s = await sessionOf([
        ...signOn,
        db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
      ]);
      expect(s.attribution).toMatchObject({ method: 'login-name', confidence: 'asserted' });
      expect(s.identity?.id).toBe(USERS.alice);
    }
  });

  it('signon-correlated: exactly one member signed on from the client IP', async () => {
    const signOn = iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.7', mfa: 'PUSH' });
    const s = await sessionOf([
      signOn,
      iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.8' }),
      proxyConnect('dev_proxy', '10.0.0.7'),
    ]);
    expect(s).toMatchObject({ identity: { id: USERS.bob }, group: { id: GROUPS.dev }, mfaFactor: 'PUSH' });
    expect(s.attribution).toMatchObject({ method: 'signon-correlated', confidence: 'corroborated' });
    expect(s.proxied).toBe(true);
    expect(s.attribution?.evidence).toEqual([
      s.connectKey,
      'config:dbSystems',
      signOn.key,
      'config:directory',
    ]);
  });

  it('unattributed: two candidates from the same IP are ambiguous', async () => {
    const bob = iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.7' });
    const dave = iam.signOn({ at: at(1), user: USERS.dave, ip: '10.0.0.7' });
    const s = await sessionOf([bob, dave, proxyConnect('dev_proxy', '10.0.0.7')]);
    expect(s.identity).toBeNull();
    expect(s.attribution).toMatchObject({ method: 'unattributed', confidence: 'none', problem: 'ambiguous' });
    expect(s.attribution?.evidence).toEqual(expect.arrayContaining([bob.key, dave.key]));
  });

  it('unattributed: ambiguous candidates are listed in the order of their groups, then by user id', async () => {
    const alice = iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.9' });
    const dave = iam.signOn({ at: at(1), user: USERS.dave, ip: '10.0.0.9' });
    const bob = iam.signOn({ at: at(2), user: USERS.bob, ip: '10.0.0.9' });
    const s = await sessionOf([
      ...mappedBySql('multi_proxy', [GROUPS.dev, GROUPS.dba]),
      alice,
      dave,
      bob,
      proxyConnect('multi_proxy', '10.0.0.9'),
    ]);
    expect(s.attribution).toMatchObject({ method: 'unattributed', problem: 'ambiguous' });
    const keys = [alice.key, bob.key, dave.key];
    expect(s.attribution?.evidence.filter((k) => keys.includes(k))).toEqual([bob.key, dave.key, alice.key]);
  });

  it('signon-correlated: only members whose latest sign-on is a success from the client IP count', async () => {
    const bob = iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.7' });
    // Carol is in no candidate group; dave's sign-ons from the IP are older than a token, or failed.
    const s = await sessionOf([
      iam.signOn({ at: at(-61), user: USERS.dave, ip: '10.0.0.7' }),
      bob,
      iam.signOn({ at: at(1), user: USERS.carol, ip: '10.0.0.7' }),
      iam.signOn({ at: at(2), user: USERS.dave, ip: '10.0.0.7', success: false }),
      proxyConnect('dev_proxy', '10.0.0.7'),
    ]);
    expect(s).toMatchObject({ identity: { id: USERS.bob }, attribution: { method: 'signon-correlated' } });
    // A later sign-on of bob that names no address is his latest: the IP no longer points at him.
    const later = await sessionOf([
      bob,
      iam.signOn({ at: at(5), user: USERS.bob, ip: '' }),
      proxyConnect('dev_proxy', '10.0.0.7'),
    ]);
    expect(later).toMatchObject({ identity: null, attribution: { problem: 'no-evidence' } });
  });

  it('a group the directory does not know is named by its OCID', async () => {
    const s = await sessionOf([
      ...mappedBySql('ghost_proxy', ['ocid1.group.oc1..ghost']),
      db.connect({ at: at(10), conn: 1, account: 'ghost_proxy', user: 'ghost_proxy', proxy: true }),
    ]);
    expect(s.group).toEqual({ id: 'ocid1.group.oc1..ghost', name: 'ocid1.group.oc1..ghost' });
  });

  it('unattributed: an unknown login name and no sign-on', async () => {
    const s = await sessionOf([
      db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'mallory', ip: '10.0.0.7', proxy: true }),
    ]);
    expect(s.attribution).toMatchObject({ method: 'unattributed', problem: 'no-evidence' });
    expect(s.group?.id).toBe(GROUPS.dba);
  });

  it('unattributed through an account two groups map to: no group either', async () => {
    const s = await sessionOf([
      ...mappedBySql('ops_proxy', [GROUPS.dba, GROUPS.dev]),
      db.connect({ at: at(10), conn: 1, account: 'ops_proxy', user: 'ops_proxy', proxy: true }),
    ]);
    expect(s).toMatchObject({ identity: null, group: null, proxied: true });
    expect(s.attribution).toMatchObject({ method: 'unattributed', problem: 'no-evidence' });
  });

  it('a member who left before connecting is a left-group problem with the removal as evidence', async () => {
    const removal = iam.removed({ at: at(0), user: USERS.alice, group: GROUPS.dba });
    const s = await sessionOf([
      removal,
      db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
    ]);
    expect(s.attribution).toMatchObject({ method: 'login-name', problem: 'left-group' });
    expect(s.attribution?.evidence).toContain(removal.key);
  });

  it('a removal naming only the membership OCID is resolved through the snapshot', async () => {
    const s = await sessionOf([
      iam.removed({ at: at(0), membershipId: 'ocid1.groupmembership.oc1..alice-dba' }),
      db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
    ]);
    expect(s.attribution?.problem).toBe('left-group');
  });

  it('a member of the wrong group is not-member', async () => {
    const s = await sessionOf([
      db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'bob', proxy: true }),
    ]);
    expect(s.attribution).toMatchObject({
      method: 'login-name',
      confidence: 'asserted',
      problem: 'not-member',
    });
    expect(s).toMatchObject({ identity: { id: USERS.bob }, group: null, proxied: true });
  });

  it('local-account for non-IAM accounts, and failed logins carry no attribution', async () => {
    const s = await sessionOf([db.connect({ at: at(10), conn: 1, account: 'admin' })]);
    expect(s.attribution).toMatchObject({ method: 'local-account', confidence: 'none' });
    const f = await sessionOf([db.connect({ at: at(10), conn: 1, account: 'admin', status: 1045 })]);
    expect(f).toMatchObject({ outcome: 'failed', status: 1045, attribution: null });
  });

  it('a group mapping created by audited SQL is used for later logins', async () => {
    const s = await sessionOf([
      ...mappedBySql('ops_proxy', [GROUPS.dev]),
      db.connect({ at: at(10), conn: 1, account: 'ops_proxy', user: 'bob', proxy: true }),
    ]);
    expect(s).toMatchObject({ identity: { id: USERS.bob }, group: { id: GROUPS.dev }, proxied: true });
  });

  it('an account that mapped one user and is then given a group mapping serves later group logins', async () => {
    // The server names the proxy account, the one whose mapping served the login.
    const viaGate = (c: DbEvent): DbEvent => ({ ...c, login: { ...c.login!, proxy: "'gate'@'%'" } });
    const alter = (at: number, mapping: object) =>
      db.query({
        at,
        conn: 9,
        account: 'admin',
        sqlCommand: 'alter_user',
        sql: `ALTER USER 'gate'@'%' IDENTIFIED WITH 'authentication_oci' AS '${JSON.stringify(mapping)}'`,
      });
    const events = [
      db.query({
        at: at(1),
        conn: 9,
        account: 'admin',
        sqlCommand: 'create_user',
        sql: "CREATE USER 'ops_proxy'@'%'",
      }),
      alter(at(2), { tenancy: 't', user: USERS.carol }),
      viaGate(db.connect({ at: at(3), conn: 1, account: 'ops_proxy', user: 'bob' })),
      alter(at(4), { tenancy: 't', group_mapping: { [GROUPS.dev]: 'ops_proxy' } }),
    ];
    const before = await sessionOf(events.slice(0, 3));
    expect(before).toMatchObject({ identity: null, group: null });
    const after = await sessionOf([
      ...events,
      viaGate(db.connect({ at: at(10), conn: 2, account: 'ops_proxy', user: 'bob' })),
    ]);
    expect(after).toMatchObject({ identity: { id: USERS.bob }, group: { id: GROUPS.dev }, proxied: true });
  });

  it('a deactivated user behind a 1-to-1 account is flagged user-inactive', async () => {
    const s = await sessionOf([
      iam.userState({ at: at(0), user: USERS.carol, kind: 'user_deactivated' }),
      db.connect({ at: at(10), conn: 1, account: 'carol' }),
    ]);
    expect(s.attribution?.problem).toBe('user-inactive');
  });

  it('a user reactivated before connecting has no problem', async () => {
    const s = await sessionOf([
      iam.userState({ at: at(0), user: USERS.carol, kind: 'user_deactivated' }),
      iam.userState({ at: at(5), user: USERS.carol, kind: 'user_reactivated' }),
      db.connect({ at: at(10), conn: 1, account: 'carol' }),
    ]);
    expect(s.attribution).toMatchObject({ method: 'mapped-user', confidence: 'verified' });
    expect(s.attribution?.problem).toBeUndefined();
  });

  it('a 1-to-1 account of a user the directory does not know names the user by OCID', async () => {
    const create = `CREATE USER zed IDENTIFIED WITH authentication_oci AS '{"tenancy":"t","user":"ocid1.user.oc1..zed"}'`;
    const s = await sessionOf([
      db.query({ at: at(1), conn: 9, account: 'admin', sqlCommand: 'create_user', sql: create }),
      db.connect({ at: at(10), conn: 1, account: 'zed' }),
    ]);
    expect(s.identity).toEqual({ id: 'ocid1.user.oc1..zed', name: 'ocid1.user.oc1..zed' });
    expect(s.attribution).toMatchObject({ method: 'mapped-user', confidence: 'verified' });
  });
});

describe('a login straight to a proxied account, the server naming no proxy account', () => {
  /** Alice signs on, then logs in as dba_proxy at at(10) sending her name, with login.proxy empty. */
  const signedOnLogin = (minute = 10): CanonicalEvent[] => [
    iam.signOn({ at: at(minute - 5), user: USERS.alice, ip: '10.0.0.5' }),
    db.connect({ at: at(minute), conn: minute, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5' }),
  ];
  const byAdmin = (minute: number, sqlCommand: string, sql: string) =>
    db.query({ at: at(minute), conn: 99, account: 'admin', sqlCommand, sql });
  const mapDevTo = (account: string) =>
    `ALTER USER ''@'%' IDENTIFIED WITH 'authentication_oci' AS '${JSON.stringify({
      tenancy: 't',
      group_mapping: { [GROUPS.dba]: 'dba_proxy', [GROUPS.dev]: account },
    })}'`;
  const attributionOf = (sessions: Session[], conn: number) => {
    const s = sessions.find((x) => x.connectionId === conn)!;
    return { method: s.attribution?.method, confidence: s.attribution?.confidence, identity: s.identity?.id };
  };
  const LOCAL = { method: 'local-account', confidence: 'none', identity: undefined };
  const ALICE = { method: 'login-name', confidence: 'corroborated', identity: USERS.alice };

  it('a snapshot showing the proxied account unlocked makes it a local account from the beginning; locked, a group login', async () => {
    const unlocked = accountSnapshot('s1', at(60), { unlocked: ['dba_proxy'] });
    const open = await runWithSnapshots([unlocked], [signedOnLogin()]);
    expect(attributionOf(open.sessions, 10)).toEqual(LOCAL);
    expect(open.sessions[0]!.attribution?.evidence).toContain('snapshot:s1');
    // Locking does not stop proxying: a locked account still serves group logins.
    const locked = await runWithSnapshots([accountSnapshot('s1', at(60))], [signedOnLogin()]);
    expect(attributionOf(locked.sessions, 10)).toEqual(ALICE);
    // Where the server names the proxy account, the login is a group login, open account or not.
    const [signOn, connect] = signedOnLogin() as [CanonicalEvent, DbEvent];
    const proxied: DbEvent = { ...connect, login: { ...connect.login!, proxy: "''@'%'" } };
    const named = await runWithSnapshots([unlocked], [[signOn, proxied]]);
    expect(attributionOf(named.sessions, 10)).toEqual(ALICE);
  });

  it('unlocked by a later snapshot (not audited): open from its time, until a statement locks it', async () => {
    const { sessions, alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60)), accountSnapshot('s2', at(20), { unlocked: ['dba_proxy'] })],
      [
        [
          ...signedOnLogin(10),
          ...signedOnLogin(30),
          byAdmin(40, 'alter_user', "ALTER USER 'dba_proxy'@'%' ACCOUNT LOCK"),
          ...signedOnLogin(50),
        ],
      ],
    );
    expect([10, 30, 50].map((conn) => attributionOf(sessions, conn))).toEqual([ALICE, LOCAL, ALICE]);
    const opened = alerts.find((a) => a.rule === 'privilege.change' && a.time === toIso(at(20)))!;
    expect(opened).toMatchObject({
      severity: 'high',
      title:
        'dba_proxy@% can now be logged in to without IAM on prod-orders (ALTER USER) (observed by sync, not audited)',
      details: { bypassesIam: ['dba_proxy@%'] },
    });
  });

  it('what the first snapshot saw holds from its time over a statement before it', async () => {
    const { sessions } = await runWithSnapshots(
      [accountSnapshot('s1', at(20), { unlocked: ['dba_proxy'] })],
      [
        [
          byAdmin(1, 'alter_user', "ALTER USER 'dba_proxy'@'%' ACCOUNT LOCK"),
          ...signedOnLogin(10),
          ...signedOnLogin(30),
        ],
      ],
    );
    expect([10, 30].map((conn) => attributionOf(sessions, conn))).toEqual([ALICE, LOCAL]);
  });

  it('locked again by a later snapshot: a group login from its time', async () => {
    const { sessions } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60), { unlocked: ['dba_proxy'] }), accountSnapshot('s2', at(20))],
      [[...signedOnLogin(10), ...signedOnLogin(30)]],
    );
    expect([10, 30].map((conn) => attributionOf(sessions, conn))).toEqual([LOCAL, ALICE]);
  });

  it('an unlocked account without a password is open; one whose plugin is mysql_no_login is not', async () => {
    const noLogin = { ...localAccount('dba_proxy', false), plugin: 'mysql_no_login' };
    const open = await runWithSnapshots(
      [
        accountSnapshot('s1', at(-60), {
          extra: [{ ...localAccount('dba_proxy', false), plugin: 'mysql_native_password' }],
        }),
      ],
      [signedOnLogin()],
    );
    expect(attributionOf(open.sessions, 10)).toEqual(LOCAL);
    const closed = await runWithSnapshots(
      [accountSnapshot('s1', at(-60), { extra: [noLogin] })],
      [signedOnLogin()],
    );
    expect(attributionOf(closed.sessions, 10)).toEqual(ALICE);
  });

  it('an account created with a password, then named by a group mapping: later direct logins are local', async () => {
    const login = db.connect({ at: at(10), conn: 10, account: 'ops_proxy', user: 'bob', ip: '10.0.0.7' });
    const created = (sql: string) => [
      byAdmin(1, 'create_user', sql),
      byAdmin(2, 'alter_user', mapDevTo('ops_proxy')),
      iam.signOn({ at: at(5), user: USERS.bob, ip: '10.0.0.7' }),
      login,
    ];
    const open = await runTimeline(created("CREATE USER 'ops_proxy'@'%' IDENTIFIED BY <secret>"));
    expect(attributionOf(open.sessions, 10)).toEqual(LOCAL);
    expect(open.sessions[0]!.attribution?.evidence).toContain(open.sessions[0]!.connectKey);
    const locked = await runTimeline(
      created("CREATE USER 'ops_proxy'@'%' IDENTIFIED BY <secret> ACCOUNT LOCK"),
    );
    expect(attributionOf(locked.sessions, 10)).toEqual({
      method: 'login-name',
      confidence: 'corroborated',
      identity: USERS.bob,
    });
  });

  it('CREATE USER IF NOT EXISTS leaves an account that exists as it is; one that does not, it creates', async () => {
    // MySQL only warns for an account that already exists: the locked dba_proxy stays locked.
    const { sessions, alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60))],
      [
        [
          byAdmin(1, 'create_user', "CREATE USER IF NOT EXISTS 'dba_proxy'@'%' IDENTIFIED BY <secret>"),
          byAdmin(2, 'create_user', "CREATE USER IF NOT EXISTS 'dba_proxy'@'10.%' IDENTIFIED BY <secret>"),
          ...signedOnLogin(),
        ],
      ],
    );
    expect(attributionOf(sessions, 10)).toEqual(ALICE);
    const opened = alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam);
    expect(opened.map((a) => a.details?.bypassesIam)).toEqual([['dba_proxy@10.%']]);
  });

  it('an account a snapshot saw unlocked, then named by an audited mapping change: later direct logins are local', async () => {
    const { sessions } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60), { extra: [localAccount('ops_proxy', false)] })],
      [
        [
          db.connect({ at: at(1), conn: 1, account: 'ops_proxy', user: 'bob' }),
          byAdmin(2, 'alter_user', mapDevTo('ops_proxy')),
          db.connect({ at: at(10), conn: 10, account: 'ops_proxy', user: 'bob' }),
        ],
      ],
    );
    expect([1, 10].map((conn) => attributionOf(sessions, conn))).toEqual([LOCAL, LOCAL]);
  });

  it('a mapping change that maps a group to an account a snapshot saw unlocked says so, naming the snapshot', async () => {
    const { alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60), { extra: [localAccount('ops_proxy', false)] })],
      [[byAdmin(2, 'alter_user', mapDevTo('ops_proxy'))]],
    );
    const changed = alerts.filter((a) => a.rule === 'mapping.change');
    expect(
      changed.map((a) => [a.severity, a.title, a.details?.openToDirectLogin, a.details?.groups]),
    ).toEqual([
      [
        'high',
        "IAM mapping changed on prod-orders: alter ''@%; a group now maps to ops_proxy@%, open to logins without IAM",
        ['ops_proxy@%'],
        [GROUPS.dev],
      ],
    ]);
    expect(changed[0]?.evidence).toContain('snapshot:s1');
  });

  it('a mapping change observed by sync that maps a group to an account open then says so too', async () => {
    const ops = localAccount('ops_proxy', false);
    const anonymous = {
      ...localAccount('', false),
      plugin: 'authentication_oci',
      authenticationString: JSON.stringify({ tenancy: 't', group_mapping: { [GROUPS.dev]: 'ops_proxy' } }),
    };
    const { alerts } = await runWithSnapshots(
      [
        accountSnapshot('s1', at(-60), { extra: [ops] }),
        accountSnapshot('s2', at(20), { extra: [ops, anonymous] }),
      ],
      [[db.connect({ at: at(30), conn: 30, account: 'ops_proxy', user: 'bob' })]],
    );
    const changed = alerts.filter((a) => a.rule === 'mapping.change');
    expect(changed.map((a) => [a.details?.openToDirectLogin, a.details?.groups])).toEqual([
      [['ops_proxy@%'], [GROUPS.dev]],
    ]);
    expect(changed[0]?.evidence).toContain('snapshot:s1');
  });

  it('a mapping change whose new group entries name only locked accounts says nothing of an opening', async () => {
    const { alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60), { extra: [localAccount('ops_proxy', true)] })],
      [[byAdmin(2, 'alter_user', mapDevTo('ops_proxy'))]],
    );
    const changed = alerts.filter((a) => a.rule === 'mapping.change');
    expect(changed.map((a) => [a.title, a.details?.openToDirectLogin, a.evidence.length])).toEqual([
      ["IAM mapping changed on prod-orders: alter ''@%", undefined, 1],
    ]);
  });
});

describe('identity-domain users', () => {
  it('a sign-on carrying a domain user GUID and a known name corroborates that person', async () => {
    const signOn = iam.signOn({ at: at(0), user: 'a1b2c3d4e5f6', ip: '10.0.0.5', mfa: 'PUSH' });
    signOn.user = { id: 'a1b2c3d4e5f6', name: 'alice@example.com' };
    const s = await sessionOf([
      signOn,
      db.connect({ at: at(5), conn: 1, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
    ]);
    expect(s.identity?.id).toBe(USERS.alice);
    expect(s.attribution).toMatchObject({ method: 'login-name', confidence: 'corroborated' });
    expect(s.mfaFactor).toBe('PUSH');
  });
});

describe('change_user: the switches a session keeps', () => {
  /** A login on connection 1 naming `os` (a directory user, as the plugin logs one) for `account`. */
  const switchTo = (m: number, account: string, user: string, os: string) =>
    db.changeUser({ at: at(m), conn: 1, account, user, os, proxy: true });

  /** An application's connection taken over by a DBA, reset by its pool, then handed to two developers. */
  function switchTimeline(): DbEvent[] {
    return [
      db.connect({ at: at(0), conn: 1, account: 'app', ip: '10.1.1.1' }),
      switchTo(10, 'dba_proxy', 'alice', USERS.alice),
      switchTo(11, 'dba_proxy', 'alice', USERS.alice),
      switchTo(20, 'dev_proxy', 'dave', USERS.dave),
      switchTo(30, 'dev_proxy', 'bob', USERS.bob),
      db.disconnect({ at: at(40), conn: 1, account: 'dev_proxy' }),
    ];
  }

  /** Each switch as [its key, from account, from person, to account, to person, method]. */
  const summary = (s: Session) =>
    (s.switches ?? []).map((sw) => [
      sw.key,
      sw.from.mysqlAccount,
      sw.from.identity?.id,
      sw.mysqlAccount,
      sw.identity?.id,
      sw.attribution?.method,
    ]);

  it('keeps each change_user that changed the account or the person, with who it switched from', async () => {
    const events = switchTimeline();
    const [s] = (await runTimeline(events)).sessions;
    const [, takeover, reset, developer, colleague] = events;
    expect(summary(s!)).toEqual([
      [takeover!.key, 'app@%', undefined, 'dba_proxy@%', USERS.alice, 'external-user'],
      [developer!.key, 'dba_proxy@%', USERS.alice, 'dev_proxy@%', USERS.dave, 'external-user'],
      [colleague!.key, 'dev_proxy@%', USERS.dave, 'dev_proxy@%', USERS.bob, 'external-user'],
    ]);
    expect(s!.switches!.map((sw) => sw.time)).toEqual(
      [at(10), at(20), at(30)].map((t) => new Date(t).toISOString()),
    );
    // The pool's reset is counted; the session is still the last login, and its connect is kept.
    expect(s).toMatchObject({
      counts: { changeUser: 4 },
      changedUser: { key: colleague!.key },
      connected: { mysqlAccount: 'app@%', identity: null },
      mysqlAccount: 'dev_proxy@%',
      identity: { id: USERS.bob },
    });
    expect(s!.switches!.map((sw) => sw.key)).not.toContain(reset!.key);
    expect(s!.switchesOmitted).toBeUndefined();
  });

  it(`keeps at most ${SESSION_SWITCHES_MAX}: the first ones and the latest, counting those left out`, async () => {
    const n = SESSION_SWITCHES_MAX + 5;
    const switches = Array.from({ length: n }, (_, i) =>
      i % 2 === 0
        ? switchTo(10 + i, 'dba_proxy', 'alice', USERS.alice)
        : switchTo(10 + i, 'dev_proxy', 'dave', USERS.dave),
    );
    const [s] = (await runTimeline([db.connect({ at: at(0), conn: 1, account: 'app' }), ...switches]))
      .sessions;
    const kept = [...switches.slice(0, SESSION_SWITCHES_MAX - 1), switches[n - 1]!];
    expect(s!.switches!.map((sw) => sw.key)).toEqual(kept.map((e) => e.key));
    expect(s!.switchesOmitted).toBe(n - SESSION_SWITCHES_MAX);
    // The latest names who the connection was just before it, a switch left out.
    expect(s!.switches!.at(-1)).toMatchObject({
      mysqlAccount: 'dba_proxy@%',
      from: { mysqlAccount: 'dev_proxy@%', identity: { id: USERS.dave } },
    });
    expect(s!.counts.changeUser).toBe(n);
  });

  it('the latest switch is attributed again by late IAM data, as the session is', async () => {
    const connect = db.connect({ at: at(10), conn: 1, account: 'app', ip: '10.0.0.7' });
    const unnamed = db.changeUser({ at: at(20), conn: 1, account: 'dev_proxy', ip: '10.0.0.7', proxy: true });
    const later = db.connect({ at: at(150), conn: 2, account: 'admin' });
    const signOn = iam.signOn({ at: at(15), user: USERS.bob, ip: '10.0.0.7' });
    const before = await runBatches([[connect, unnamed, later]]);
    expect(before.sessions[0]!.switches).toEqual([
      expect.objectContaining({
        key: unnamed.key,
        identity: null,
        attribution: expect.objectContaining({ method: 'unattributed' }),
      }),
    ]);
    const { sessions } = await runBatches([[connect, unnamed, later], [signOn]]);
    const s = sessions.find((x) => x.connectKey === connect.key)!;
    expect(s.identity?.id).toBe(USERS.bob);
    expect(s.switches).toEqual([
      expect.objectContaining({
        key: unnamed.key,
        identity: { id: USERS.bob, name: 'bob@example.com' },
        attribution: expect.objectContaining({ method: 'signon-correlated' }),
        from: expect.objectContaining({ mysqlAccount: 'app@%', identity: null }),
      }),
    ]);
  });

  it('a session stored before switches were kept has its last change_user as its first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-switches-'));
    try {
      const path = join(dir, 'state.sqlite');
      const { config, rules } = testConfig();
      const takeover = switchTo(10, 'dba_proxy', 'alice', USERS.alice);
      const store = SqliteStore.open(path);
      const first = await Pipeline.open({ config, rules, store });
      // A connection at(40) moves the watermark past the takeover: the session is stored with it.
      await first.ingest(
        [
          db.connect({ at: at(0), conn: 1, account: 'app' }),
          takeover,
          db.connect({ at: at(40), conn: 2, account: 'admin' }),
        ].map((event) => ({ type: 'event' as const, event })),
      );
      await store.close();
      const legacy = new Database(path);
      const changed = legacy
        .prepare("UPDATE sessions SET body = json_remove(body, '$.switches')")
        .run().changes;
      legacy.close();
      expect(changed).toBeGreaterThan(0);
      const developer = switchTo(45, 'dev_proxy', 'dave', USERS.dave);
      const { sessions } = await runBatches([[developer]], { store: SqliteStore.open(path) });
      const s = sessions.find((x) => x.connectionId === 1)!;
      expect(summary(s)).toEqual([
        [takeover.key, 'app@%', undefined, 'dba_proxy@%', USERS.alice, 'external-user'],
        [developer.key, 'dba_proxy@%', USERS.alice, 'dev_proxy@%', USERS.dave, 'external-user'],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('any delivery, redelivery or restart of the store keeps the same switches', async () => {
    const events = switchTimeline();
    const { sessions } = await runTimeline(events);
    expect(sessions[0]!.switches).toHaveLength(3);
    const once = JSON.stringify(sessions);
    await fc.assert(
      fc.asyncProperty(deliveries(events, 20 * 60_000), async (batches) => {
        expect(JSON.stringify((await runBatches(batches)).sessions)).toBe(once);
      }),
      runs(20),
    );
    for (const cut of [2, 3, 4]) {
      const reopened = await runAcrossReopen(events.slice(0, cut), events.slice(cut));
      expect(JSON.stringify(reopened.sessions)).toBe(once);
    }
  });
});
