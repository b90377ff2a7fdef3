// Whether a proxied account is open to logins without IAM must follow what MySQL does and what
// every snapshot saw, whatever the timing of the snapshot against the audit trail.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import { Mappings } from '../../shared/correlate/mappings.js';
import { at, baseConfig, DB, db, iam, USERS } from '../../shared/detect/timeline.js';
import { Pipeline } from '../../shared/pipeline.js';
import { EntityCache } from '../../shared/state/entity-cache.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { commitBatch } from '../../shared/state/state-store.js';
import { BEGINNING_OF_TIME, toIso } from '../../shared/time.js';
import { accountSnapshot, following, localAccount, runWithSnapshots } from '../helpers/account-snapshots.js';
import { collect } from '../helpers/collect.js';
import { runAcrossReopen, runBatches, testConfig } from '../helpers/run-timeline.js';

/** Alice signs on, then logs in as dba_proxy at `minute` sending her name, with login.proxy empty. */
const signedOnLogin = (minute: number): CanonicalEvent[] => [
  iam.signOn({ at: at(minute - 5), user: USERS.alice, ip: '10.0.0.5' }),
  db.connect({ at: at(minute), conn: minute, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5' }),
];
const byAdmin = (minute: number, sqlCommand: string, sql: string) =>
  db.query({ at: at(minute), conn: 99, account: 'admin', sqlCommand, sql });
const attributionOf = (sessions: Session[], conn: number) => {
  const s = sessions.find((x) => x.connectionId === conn)!;
  return { method: s.attribution?.method, confidence: s.attribution?.confidence, identity: s.identity?.id };
};
const LOCAL = { method: 'local-account', confidence: 'none', identity: undefined };
const ALICE = { method: 'login-name', confidence: 'corroborated', identity: USERS.alice };

describe('the lock state of a proxied account', () => {
  it('a later snapshot that sees the account locked, as the one before did, closes what an audited unlock opened', async () => {
    // s1 and s2 both show dba_proxy locked; an audited ACCOUNT UNLOCK came in between, and the lock
    // that undid it left no audit record (a filter, a gap). What s2 saw was in force at its time.
    const { sessions } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60)), accountSnapshot('s2', at(20))],
      [
        [
          byAdmin(1, 'alter_user', "ALTER USER 'dba_proxy'@'%' ACCOUNT UNLOCK"),
          ...signedOnLogin(10),
          ...signedOnLogin(30),
        ],
      ],
    );
    expect([10, 30].map((conn) => attributionOf(sessions, conn))).toEqual([LOCAL, ALICE]);
  });

  it('a later snapshot that sees the account unlocked, as the one before did, reopens what an audited lock closed: a high privilege.change', async () => {
    // The mirror image: an audited ACCOUNT LOCK, undone by an unlock nothing audited. No drift
    // event says so (s1 and s2 agree); the lock state s2 read does, and nothing else will.
    const { sessions, alerts } = await runWithSnapshots(
      [
        accountSnapshot('s1', at(-60), { unlocked: ['dba_proxy'] }),
        accountSnapshot('s2', at(20), { unlocked: ['dba_proxy'] }),
      ],
      [
        [
          byAdmin(1, 'alter_user', "ALTER USER 'dba_proxy'@'%' ACCOUNT LOCK"),
          ...signedOnLogin(10),
          ...signedOnLogin(30),
        ],
      ],
    );
    expect([10, 30].map((conn) => attributionOf(sessions, conn))).toEqual([ALICE, LOCAL]);
    const opened = alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam);
    expect(
      opened.map((a) => [
        a.severity,
        a.details?.bypassesIam,
        (a.details?.observed as { snapshot?: string })?.snapshot,
      ]),
    ).toEqual([['high', ['dba_proxy@%'], 's2']]);
    expect(opened[0]?.title).toContain('(observed by sync, not audited)');
  });

  it('an unaudited unlock is not explained by an unrelated audited statement on the account: a high privilege.change', async () => {
    const { sessions, alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60)), accountSnapshot('s2', at(20), { unlocked: ['dba_proxy'] })],
      [[byAdmin(5, 'grant', "GRANT SELECT ON `orders`.* TO 'dba_proxy'@'%'"), ...signedOnLogin(30)]],
    );
    expect(attributionOf(sessions, 30)).toEqual(LOCAL);
    const opened = alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam);
    expect(opened.map((a) => [a.severity, a.details?.bypassesIam])).toEqual([['high', ['dba_proxy@%']]]);
  });

  it('an audited unlock of a host named in another case explains the drift a later snapshot sees', async () => {
    // The statement names dba_proxy@LocalHost, the snapshots dba_proxy@LocalHost: one account. The
    // audited unlock raises the high opening; s2 seeing it unlocked is what the statement did.
    const proxy = (locked: boolean) => ({ extra: [localAccount('dba_proxy', locked, 'LocalHost')] });
    const { config, rules } = testConfig();
    const store = SqliteStore.open(':memory:');
    const pipeline = await Pipeline.open({ config, rules, store });
    await following([accountSnapshot('s1', at(-60), proxy(true))])(pipeline, store);
    const unlock = byAdmin(5, 'alter_user', "ALTER USER 'dba_proxy'@'LocalHost' ACCOUNT UNLOCK");
    await pipeline.ingest([{ type: 'event', event: unlock }]);
    await following([accountSnapshot('s2', at(20), proxy(false))])(pipeline, store);
    await pipeline.ingest(signedOnLogin(30).map((event) => ({ type: 'event', event })));
    await pipeline.finish();
    const alerts = await collect(store.alerts());
    expect(alerts.filter((a) => a.rule === 'privilege.change').map((a) => a.title)).toEqual([
      'dba_proxy@localhost can now be logged in to without IAM on prod-orders (ALTER USER)',
    ]);
  });

  it('an audited statement a state stored under the host as written explains the drift a snapshot sees', async () => {
    // Stored before hosts were taken in lowercase: an audited statement on app@LocalHost at 5. The
    // snapshots read app@localhost (as MySQL stores it) locked, then unlocked: that statement's doing.
    const store = SqliteStore.open(':memory:');
    await store.commit(
      commitBatch({
        entities: [{ kind: 'account-audit', key: `${DB.id}\u0000app@LocalHost`, body: [at(5)] }],
      }),
    );
    const app = (locked: boolean) => ({ extra: [localAccount('app', locked, 'localhost')] });
    const { alerts } = await runBatches([signedOnLogin(30)], {
      store,
      opened: following([
        accountSnapshot('s1', at(-60), app(true)),
        accountSnapshot('s2', at(20), app(false)),
      ]),
    });
    expect(alerts.filter((a) => a.rule === 'privilege.change').map((a) => a.title)).toEqual([]);
  });

  it('RENAME USER that swaps an unlocked account with the proxied one (through a third name) opens the proxied name', async () => {
    const { sessions, alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60), { extra: [localAccount('staging', false)] })],
      [
        [
          byAdmin(
            1,
            'rename_user',
            "RENAME USER 'dba_proxy'@'%' TO 'swap'@'%', 'staging'@'%' TO 'dba_proxy'@'%', 'swap'@'%' TO 'staging'@'%'",
          ),
          ...signedOnLogin(10),
        ],
      ],
    );
    expect(attributionOf(sessions, 10)).toEqual(LOCAL);
    const opened = alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam);
    expect(opened.map((a) => a.details?.bypassesIam)).toEqual([['dba_proxy@%']]);
  });

  it('ALTER USER IF EXISTS leaves an account the snapshot did not list absent; one it listed, it alters', async () => {
    // MySQL only notes an account that does not exist: dba_proxy@10.% is not created, nor opened.
    const { sessions, alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60))],
      [
        [
          byAdmin(
            1,
            'alter_user',
            "ALTER USER IF EXISTS 'dba_proxy'@'10.%' IDENTIFIED BY <secret> ACCOUNT UNLOCK",
          ),
          ...signedOnLogin(10),
          byAdmin(
            20,
            'alter_user',
            "ALTER USER IF EXISTS 'dba_proxy'@'%' IDENTIFIED BY <secret> ACCOUNT UNLOCK",
          ),
          ...signedOnLogin(30),
        ],
      ],
    );
    expect([10, 30].map((conn) => attributionOf(sessions, conn))).toEqual([ALICE, LOCAL]);
    const opened = alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam);
    expect(opened.map((a) => [a.time, a.details?.bypassesIam])).toEqual([[toIso(at(20)), ['dba_proxy@%']]]);
  });

  it('CREATE ROLE creates an account: ALTER USER IF EXISTS after it alters it, and CREATE USER IF NOT EXISTS leaves it', async () => {
    // A role is an account, created locked with no password: MySQL alters it (and opens it, with
    // ACCOUNT UNLOCK), and CREATE USER IF NOT EXISTS of its name changes nothing.
    const { sessions, alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60))],
      [
        [
          byAdmin(1, 'drop_user', "DROP USER 'dba_proxy'@'%'"),
          byAdmin(2, 'create_role', "CREATE ROLE 'dba_proxy'"),
          byAdmin(3, 'create_user', "CREATE USER IF NOT EXISTS 'dba_proxy'@'%' IDENTIFIED BY <secret>"),
          ...signedOnLogin(10),
          byAdmin(20, 'alter_user', "ALTER USER IF EXISTS 'dba_proxy'@'%' ACCOUNT UNLOCK"),
          ...signedOnLogin(30),
        ],
      ],
    );
    expect([10, 30].map((conn) => attributionOf(sessions, conn))).toEqual([ALICE, LOCAL]);
    const opened = alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam);
    expect(opened.map((a) => [a.time, a.details?.bypassesIam])).toEqual([[toIso(at(20)), ['dba_proxy@%']]]);
  });

  it('a snapshot taken after an ALTER USER IF EXISTS says nothing of the accounts before its time', async () => {
    // dba_proxy@10.% existed at minute 1: the audited DROP USER at minute 5 removed it. The snapshot
    // of minute 30 does not list it, but that is what it was at minute 30; the statement at minute 1
    // altered (and opened) it, whether the snapshot was followed before the statements or not.
    const events = [
      byAdmin(
        1,
        'alter_user',
        "ALTER USER IF EXISTS 'dba_proxy'@'10.%' IDENTIFIED BY <secret> ACCOUNT UNLOCK",
      ),
      byAdmin(5, 'drop_user', "DROP USER 'dba_proxy'@'10.%'"),
    ];
    const opened = (alerts: Alert[]) =>
      alerts
        .filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam)
        .map((a) => [a.time, a.severity, a.details?.bypassesIam]);
    const expected = [[toIso(at(1)), 'high', ['dba_proxy@10.%']]];
    expect(opened((await runBatches([events])).alerts)).toEqual(expected);
    expect(opened((await runWithSnapshots([accountSnapshot('s1', at(30))], [events])).alerts)).toEqual(
      expected,
    );
    // After the snapshot's time, an account it did not list is absent, across a restart too.
    const later = [byAdmin(40, 'alter_user', "ALTER USER IF EXISTS 'dba_proxy'@'10.%' ACCOUNT UNLOCK")];
    const reopened = await runAcrossReopen([], later, following([accountSnapshot('s1', at(30))]));
    expect(opened(reopened.alerts)).toEqual([]);
  });

  it('ALTER USER IF EXISTS names an account whatever the case of its host, as MySQL does', async () => {
    // MySQL stores host names in lowercase and compares them without case: 'LocalHost' is the
    // dba_proxy@localhost the snapshot listed, and the statement opens it.
    const { alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60), { extra: [localAccount('dba_proxy', true, 'localhost')] })],
      [
        [
          byAdmin(
            1,
            'alter_user',
            "ALTER USER IF EXISTS 'dba_proxy'@'LocalHost' IDENTIFIED BY <secret> ACCOUNT UNLOCK",
          ),
        ],
      ],
    );
    const opened = alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam);
    expect(opened.map((a) => [a.severity, a.details?.bypassesIam])).toEqual([
      ['high', ['dba_proxy@localhost']],
    ]);
  });

  it('an account a snapshot lists with its host in another case is the one sessions log in to', async () => {
    // dba_proxy@LocalHost, unlocked with a password, is the dba_proxy@localhost the server names in
    // its audit log: open to logins without IAM, a login to it is a local one.
    const { sessions } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60), { extra: [localAccount('dba_proxy', false, 'LocalHost')] })],
      [
        [
          iam.signOn({ at: at(5), user: USERS.alice, ip: '10.0.0.5' }),
          db.connect({
            at: at(10),
            conn: 10,
            account: 'dba_proxy',
            host: 'localhost',
            user: 'alice',
            ip: '10.0.0.5',
          }),
        ],
      ],
    );
    expect(attributionOf(sessions, 10)).toEqual(LOCAL);
  });

  it('state stored with hosts told apart by case is one account per host in lowercase', () => {
    const cache = new EntityCache();
    const stored = (host: string, key: string) => ({
      kind: 'account',
      key: `${DB.id}\u0000app@${host}`,
      body: { db: DB.id, user: 'app', host, versions: [{ ts: at(1), key, plugin: 'caching_sha2_password' }] },
    });
    cache.load(stored('LocalHost', 'e1'));
    cache.load(stored('localhost', 'e2'));
    const mappings = new Mappings(cache);
    expect(mappings.rows().map((r) => [r.host, r.versions.map((v) => v.key)])).toEqual([
      ['localhost', ['e1', 'e2']],
    ]);
  });

  it('a stored row of a host in another case keeps every version a snapshot seeded it with', () => {
    // A snapshot seeds an account with two versions under its one key: its definition from the
    // beginning of time, and the lock state it read at its time. Merged into the row of the host in
    // lowercase, both stay: the account is still open from the snapshot's time.
    const cache = new EntityCache();
    cache.load({
      kind: 'account',
      key: `${DB.id}\u0000dba_proxy@LocalHost`,
      body: {
        db: DB.id,
        user: 'dba_proxy',
        host: 'LocalHost',
        versions: [
          { ts: BEGINNING_OF_TIME, key: 'snapshot:s1', plugin: 'caching_sha2_password' },
          { ts: at(-60), key: 'snapshot:s1', locked: false, accessOnly: true },
        ],
      },
    });
    const mappings = new Mappings(cache);
    expect(mappings.rows().map((r) => r.versions.length)).toEqual([2]);
    expect(mappings.directLoginAt(DB.id, { user: 'dba_proxy', host: 'localhost' }, at(1))).toEqual({
      ts: at(-60),
      key: 'snapshot:s1',
    });
  });

  it('ALTER USER IF EXISTS of an account an audited DROP USER removed opens nothing', async () => {
    const { sessions, alerts } = await runWithSnapshots(
      [accountSnapshot('s1', at(-60))],
      [
        [
          byAdmin(1, 'drop_user', "DROP USER 'dba_proxy'@'%'"),
          byAdmin(
            2,
            'alter_user',
            "ALTER USER IF EXISTS 'dba_proxy'@'%' IDENTIFIED WITH 'caching_sha2_password' BY <secret> ACCOUNT UNLOCK",
          ),
          ...signedOnLogin(10),
        ],
      ],
    );
    expect(attributionOf(sessions, 10)).toEqual(ALICE);
    expect(alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam)).toEqual([]);
  });

  it('a proxied account the configuration lists, created unlocked between two snapshots without a statement: a high privilege.change', async () => {
    const configured = baseConfig().dbSystems![0]!;
    const config = {
      dbSystems: [
        {
          ...configured,
          accounts: [
            ...configured.accounts!,
            { user: 'dba_proxy', host: '%', plugin: 'caching_sha2_password' },
          ],
        },
      ],
    };
    const before = accountSnapshot('s1', at(-60));
    before.dbSystems[0]!.accounts = before.dbSystems[0]!.accounts!.filter((a) => a.user !== 'dba_proxy');
    const { sessions, alerts } = await runBatches([signedOnLogin(30)], {
      config,
      opened: following([before, accountSnapshot('s2', at(20), { unlocked: ['dba_proxy'] })]),
    });
    expect(attributionOf(sessions, 30)).toEqual(LOCAL);
    const opened = alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam);
    expect(opened.map((a) => [a.severity, a.details?.bypassesIam])).toEqual([['high', ['dba_proxy@%']]]);
  });

  it('a snapshot followed after the audit trail has passed its time still makes later logins local', async () => {
    const events = [...signedOnLogin(30), ...signedOnLogin(90)];
    const run = async (snapshotFirst: boolean) => {
      const { config, rules } = testConfig();
      const store = SqliteStore.open(':memory:');
      const pipeline = await Pipeline.open({ config, rules, store, durablePending: true });
      const follow = async () => {
        await store.putSnapshot(accountSnapshot('s2', at(20), { unlocked: ['dba_proxy'] }));
        await pipeline.followSnapshots();
      };
      await store.putSnapshot(accountSnapshot('s1', at(-60)));
      await pipeline.followSnapshots();
      if (snapshotFirst) await follow();
      await pipeline.ingest(events.map((event) => ({ type: 'event' as const, event })));
      if (!snapshotFirst) await follow();
      await pipeline.finish();
      const sessions: Session[] = [];
      for await (const s of store.sessions()) sessions.push(s);
      return [30, 90].map((conn) => attributionOf(sessions, conn));
    };
    expect(await run(true)).toEqual([LOCAL, LOCAL]);
    // The same snapshot, stored once the watermark passed at(20) (a sync slower than the lateness).
    expect(await run(false)).toEqual([LOCAL, LOCAL]);
  });
});

describe('a state stored by the version before lock states were kept', () => {
  it('learns the lock state its baseline snapshot saw: a proxied account it showed unlocked serves direct logins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-lockstate-'));
    try {
      const path = join(dir, 'state.db');
      const { config, rules } = testConfig();
      const first = SqliteStore.open(path);
      const pipeline = await Pipeline.open({ config, rules, store: first });
      await first.putSnapshot(accountSnapshot('s1', at(-60), { unlocked: ['dba_proxy'] }));
      await pipeline.followSnapshots();
      await pipeline.ingest([
        { type: 'event', event: iam.signOn({ at: at(1), user: USERS.bob, ip: '10.0.0.7' }) },
      ]);
      await first.close();
      // What the previous version stored for the same snapshot: seeds without a lock state.
      const legacy = new Database(path);
      const rows = legacy.prepare("SELECT scope, key, body FROM entity WHERE kind = 'account'").all() as {
        scope: string;
        key: string;
        body: string;
      }[];
      const update = legacy.prepare(
        "UPDATE entity SET body = ? WHERE scope = ? AND kind = 'account' AND key = ?",
      );
      for (const r of rows) {
        const row = JSON.parse(r.body) as { versions: { locked?: boolean; accessOnly?: true }[] };
        row.versions = row.versions.filter((v) => !v.accessOnly).map(({ locked, ...v }) => v);
        update.run(JSON.stringify(row), r.scope, r.key);
      }
      legacy.close();
      expect(rows.length).toBeGreaterThan(0);
      // A later snapshot that still shows dba_proxy unlocked, then alice's login straight to it.
      const { sessions } = await runBatches([signedOnLogin(30)], {
        store: SqliteStore.open(path),
        opened: following([accountSnapshot('s2', at(20), { unlocked: ['dba_proxy'] })]),
      });
      expect(attributionOf(sessions, 30)).toEqual(LOCAL);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('account rows', () => {
  it('stay bounded under routine password rotation of a local account', () => {
    const mappings = new Mappings(new EntityCache());
    const app = { user: 'app', host: '%' };
    mappings.seed('config', [{ db: DB.id, ...app, plugin: 'caching_sha2_password' }]);
    // An hourly rotation (a secrets manager's static role) for a month.
    for (let hour = 0; hour < 24 * 30; hour++)
      mappings.apply(DB.id, { op: 'alter', account: app, password: true }, at(hour * 60), `rotate-${hour}`);
    const row = mappings.rows().find((r) => r.user === 'app')!;
    expect(row.versions.length).toBeLessThanOrEqual(3);
  });
});
