import { z } from 'zod';
import { accountName, sameAccount } from '../correlate/mappings.js';
import { deferredVia, defineRule, statementFields, statementSql } from '../detect/rule.js';
import { at, db, USERS } from '../detect/timeline.js';

/** A statement at 09:01 on connection 7, run as `account`. */
const statement = (
  account: string,
  sqlCommand: string,
  sql: string,
  over: { db?: string; status?: number } = {},
) => db.query({ at: at(1), conn: 7, account, sqlCommand, sql, ...over });

export const privilegeChange = defineRule({
  id: 'privilege.change',
  title: 'MySQL privileges changed',
  description:
    'GRANT, REVOKE, CREATE/ALTER/DROP/RENAME USER, SET PASSWORD, SET DEFAULT ROLE or GRANT PROXY executed, or a grant table (mysql.user, mysql.db, ...) written directly (high); high when the executing or a target account is privileged, the grant makes its grantee an administrator (ALL or an administrative privilege on *.*, or WITH GRANT OPTION), or the statement opens a proxied account (a group mapping target) to logins without IAM: a password, another plugin or ACCOUNT UNLOCK for it, or an unlocked account of its user name created on another host or renamed onto it, leaving it open (not locked, nor mysql_no_login); also such an account found unlocked by a snapshot, unaudited. Also a stored program (event, procedure, function, trigger) created whose body holds such a statement (high when it runs as another account), or dynamic SQL run as another or a privileged account, or that runs as another, privileged account: the audit log never shows the statements of its body. Likewise a statement prepared from a literal that holds such a statement, a user variable assigned such a statement (read before its value is redacted), and a statement prepared from a user variable on a privileged account (medium: what it holds is not known).',
  severity: 'medium',
  attack: ['T1098'],
  runbook:
    'Match the change to an approved request; for privileged accounts confirm the person behind the session. A proxied account opened to logins without IAM: lock it again (ALTER USER ... ACCOUNT LOCK) or drop the look-alike, and review its sessions since, which are local-account logins.',
  falsePositives: ['Provisioning automation (allow-list it by lowering the severity in config).'],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    statement: (f) => {
      const p = f.facts.privilege;
      const program = f.facts.storedProgram;
      const prepared = f.facts.prepared;
      if (!p && !program && !prepared) return [];
      const privileged = new Set(f.db?.privilegedAccounts ?? []);
      const actor = f.event.source === 'mysql' ? (f.event.account ?? undefined) : undefined;
      // A stored program runs as its definer: another account's privileges when it names one.
      const definer = program?.definer ?? actor;
      const asAnother = definer !== undefined && (actor === undefined || !sameAccount(definer, actor));
      const privilegedDefiner = definer !== undefined && privileged.has(definer.user);
      const high =
        p?.administrative === true ||
        (actor !== undefined && privileged.has(actor.user)) ||
        (p?.targets.some((t) => privileged.has(t.user)) ?? false);
      const targets = (p?.targets ?? []).map(accountName);
      const where = f.db?.name ?? f.event.dbSystemId;
      const bypass = (f.bypassesIam ?? []).map(accountName);
      const later = program?.verb ?? (prepared ? 'PREPARE' : f.facts.held ? 'A user variable' : undefined);
      let change: { title: string; severity: 'high' | 'medium' };
      if (p && bypass.length > 0) {
        change = {
          title: `${bypass.join(', ')} can now be logged in to without IAM on ${where} (${p.verb})`,
          severity: 'high',
        };
      } else if (p) {
        const what = `${p.verb} on ${targets.join(', ') || 'an account'}`;
        change = {
          title: `${later ? `${later} holding ${what}` : what} in ${where}`,
          severity: high || asAnother ? 'high' : 'medium',
        };
      } else if (program?.dynamicSql && (asAnother || privilegedDefiner)) {
        change = {
          title: `${program.verb} holding dynamic SQL run as ${accountName(definer!)} in ${where}`,
          severity: asAnother && privilegedDefiner ? 'high' : 'medium',
        };
      } else if (program && asAnother && privilegedDefiner) {
        change = { title: `${program.verb} run as ${accountName(definer!)} in ${where}`, severity: 'medium' };
      } else if (prepared?.fromVariable && actor !== undefined && privileged.has(actor.user)) {
        // What it prepares was redacted with the variable's value: only that it is dynamic SQL is known.
        change = {
          title: `PREPARE from a user variable on ${accountName(actor)} in ${where}`,
          severity: 'medium',
        };
      } else {
        return [];
      }
      return [
        {
          subject: f.event.key,
          occurrence: 'change',
          ts: f.event.ts,
          severity: change.severity,
          title: change.title,
          ...statementFields(f),
          evidence: [f.event.key],
          details: {
            verb: p?.verb ?? later!,
            targets,
            sql: statementSql(f),
            ...(bypass.length > 0 ? { bypassesIam: bypass } : {}),
            ...(program && definer ? { definer: accountName(definer) } : {}),
            ...deferredVia(f.facts),
          },
        },
      ];
    },
  },
  cases: [
    {
      name: 'a proxied account unlocked and given a password can be logged in to without IAM: high',
      events: () => [
        statement('admin', 'alter_user', "ALTER USER 'dev_proxy'@'%' IDENTIFIED BY <secret> ACCOUNT UNLOCK"),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          mysqlAccount: 'admin@%',
          title: 'dev_proxy@% can now be logged in to without IAM on prod-orders (ALTER USER)',
          details: { verb: 'ALTER USER', targets: ['dev_proxy@%'], bypassesIam: ['dev_proxy@%'] },
        },
      },
    },
    {
      name: 'a look-alike of a proxied account created on another host is high',
      events: () => [
        statement('admin', 'create_user', "CREATE USER 'dev_proxy'@'10.%' IDENTIFIED BY <secret>"),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { title: 'dev_proxy@10.% can now be logged in to without IAM on prod-orders (CREATE USER)' },
      },
    },
    {
      name: 'an account renamed onto a proxied user name is high',
      events: () => [statement('admin', 'rename_user', "RENAME USER 'app'@'%' TO 'dev_proxy'@'10.%'")],
      expect: { alerts: 1, severity: 'high', match: { details: { bypassesIam: ['dev_proxy@10.%'] } } },
    },
    {
      name: 'a look-alike second in a CREATE USER list is seen too',
      events: () => [
        statement(
          'admin',
          'create_user',
          "CREATE USER 'x'@'%' IDENTIFIED BY <secret>, 'dev_proxy'@'10.%' IDENTIFIED BY <secret>",
        ),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { details: { targets: ['x@%', 'dev_proxy@10.%'], bypassesIam: ['dev_proxy@10.%'] } },
      },
    },
    {
      name: 'a row deleted from mysql.user through its alias in a multi-table DELETE is high',
      events: () => [
        statement(
          'admin',
          'delete_multi',
          "DELETE u FROM mysql.user u JOIN shop.leavers l ON l.login = u.user WHERE l.day < '2026-11-01'",
        ),
      ],
      expect: { alerts: 1, severity: 'high', match: { details: { verb: 'DELETE mysql.user' } } },
    },
    {
      name: 'tables written by joining mysql.user only read it: silent',
      events: () => [
        statement(
          'app',
          'delete_multi',
          "DELETE s FROM shop.sessions s JOIN mysql.user u ON u.user = s.login WHERE u.account_locked = 'Y'",
        ),
        statement(
          'app',
          'update_multi',
          'UPDATE shop.t JOIN mysql.user u ON u.user = shop.t.login SET shop.t.locked = 1',
        ),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a password set for a proxied account is high',
      events: () => [statement('admin', 'set_password', "SET PASSWORD FOR 'dev_proxy'@'%' = <secret>")],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { details: { verb: 'SET PASSWORD', bypassesIam: ['dev_proxy@%'] } },
      },
    },
    {
      name: 'another plugin given to a proxied account is high',
      events: () => [
        statement(
          'admin',
          'alter_user',
          "ALTER USER 'dev_proxy'@'%' IDENTIFIED WITH 'mysql_native_password'",
        ),
      ],
      expect: { alerts: 1, severity: 'high', match: { details: { bypassesIam: ['dev_proxy@%'] } } },
    },
    {
      name: 'a password for a proxied account a statement locked, or mysql_no_login for it, opens nothing: medium',
      events: () => [
        db.query({
          at: at(1),
          conn: 7,
          account: 'admin',
          sqlCommand: 'alter_user',
          sql: "ALTER USER 'dev_proxy'@'%' ACCOUNT LOCK",
        }),
        db.query({
          at: at(2),
          conn: 7,
          account: 'admin',
          sqlCommand: 'set_password',
          sql: "SET PASSWORD FOR 'dev_proxy'@'%' = <secret>",
        }),
        db.query({
          at: at(3),
          conn: 7,
          account: 'admin',
          sqlCommand: 'alter_user',
          sql: "ALTER USER 'dev_proxy'@'%' IDENTIFIED WITH 'mysql_no_login' ACCOUNT UNLOCK",
        }),
      ],
      expect: {
        alerts: 3,
        severity: 'medium',
        match: { mysqlAccount: 'admin@%', details: { targets: ['dev_proxy@%'] } },
      },
    },
    {
      name: 'ALTER USER IF EXISTS of a proxied account the state does not know to be absent opens it: high',
      events: () => [
        statement(
          'admin',
          'alter_user',
          "ALTER USER IF EXISTS 'dev_proxy'@'%' IDENTIFIED BY <secret> ACCOUNT UNLOCK",
        ),
      ],
      expect: { alerts: 1, severity: 'high', match: { details: { bypassesIam: ['dev_proxy@%'] } } },
    },
    {
      name: 'ALTER USER IF EXISTS of a proxied account dropped before changes nothing (MySQL only notes it): medium',
      events: () => [
        db.query({
          at: at(1),
          conn: 7,
          account: 'admin',
          sqlCommand: 'drop_user',
          sql: "DROP USER 'dev_proxy'@'%'",
        }),
        db.query({
          at: at(2),
          conn: 7,
          account: 'admin',
          sqlCommand: 'alter_user',
          sql: "ALTER USER IF EXISTS 'dev_proxy'@'%' IDENTIFIED WITH 'caching_sha2_password' BY <secret> ACCOUNT UNLOCK",
        }),
      ],
      expect: {
        alerts: 2,
        severity: 'medium',
        match: { mysqlAccount: 'admin@%', details: { targets: ['dev_proxy@%'] } },
      },
    },
    {
      name: 'a grant to a proxied account, locking it, or a locked look-alike opens nothing',
      events: () => [
        statement('admin', 'grant', "GRANT SELECT ON shop.* TO 'dev_proxy'@'%'"),
        statement('admin', 'alter_user', "ALTER USER 'dev_proxy'@'%' ACCOUNT LOCK"),
        statement('admin', 'create_user', "CREATE USER 'dev_proxy'@'10.%' ACCOUNT LOCK"),
      ],
      expect: { alerts: 3, severity: 'medium', match: { mysqlAccount: 'admin@%' } },
    },
    {
      name: 'grant to a privileged account is high',
      events: () => [statement('admin', 'grant', "GRANT ALL ON *.* TO 'dba_proxy'@'%'")],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: null,
          mysqlAccount: 'admin@%',
          details: { verb: 'GRANT', targets: ['dba_proxy@%'], sql: 'GRANT ALL ON *.* TO ?@?' },
        },
      },
    },
    {
      name: 'create user is medium',
      events: () => [statement('admin', 'create_user', "CREATE USER 'rep'@'%' IDENTIFIED BY <secret>")],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { mysqlAccount: 'admin@%', details: { verb: 'CREATE USER', targets: ['rep@%'] } },
      },
    },
    {
      name: 'a grant that makes an ordinary account an administrator is high',
      events: () => [
        statement('admin', 'grant', "GRANT ALL PRIVILEGES ON *.* TO 'app'@'%' WITH GRANT OPTION"),
      ],
      expect: { alerts: 1, severity: 'high', match: { details: { verb: 'GRANT', targets: ['app@%'] } } },
    },
    {
      name: 'a global read grant to an ordinary account is medium',
      events: () => [statement('admin', 'grant', "GRANT SELECT, PROCESS ON *.* TO 'app'@'%'")],
      expect: { alerts: 1, severity: 'medium', match: { details: { verb: 'GRANT', targets: ['app@%'] } } },
    },
    {
      name: 'default roles set for an account',
      events: () => [statement('admin', 'alter_user_default_role', "SET DEFAULT ROLE ALL TO 'app'@'%'")],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { details: { verb: 'SET DEFAULT ROLE', targets: ['app@%'] } },
      },
    },
    {
      name: 'a privileged account granting to another account is high',
      events: () => [statement('dba_proxy', 'grant', "GRANT SELECT ON shop.* TO 'app'@'%'")],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { mysqlAccount: 'dba_proxy@%', details: { verb: 'GRANT', targets: ['app@%'] } },
      },
    },
    {
      name: 'a grant to several accounts is high when one of them is privileged',
      events: () => [statement('admin', 'grant', "GRANT SELECT ON shop.* TO 'app'@'%', 'dba_proxy'@'%'")],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: 'GRANT on app@%, dba_proxy@% in prod-orders',
          details: { targets: ['app@%', 'dba_proxy@%'] },
        },
      },
    },
    {
      name: 'on a DB system missing from the configuration: medium, named by its OCID',
      events: () => [
        statement('dba_proxy', 'grant', "GRANT SELECT ON shop.* TO 'app'@'%'", {
          db: 'ocid1.mysqldbsystem.oc1..unknown',
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          title: 'GRANT on app@% in ocid1.mysqldbsystem.oc1..unknown',
          dbSystem: { id: 'ocid1.mysqldbsystem.oc1..unknown', name: 'ocid1.mysqldbsystem.oc1..unknown' },
        },
      },
    },
    {
      name: 'an event that will grant as another account: the creation is the only trace',
      events: () => [
        db.connect({ at: at(0), conn: 7, account: 'dba_proxy', user: 'alice', proxy: true }),
        statement(
          'dba_proxy',
          'create_event',
          "CREATE DEFINER = 'emergency_admin'@'%' EVENT shop.nightly ON SCHEDULE AT '2026-11-04 02:00:00' DO GRANT SELECT ON shop.* TO 'app'@'%'",
        ),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: { principalId: USERS.alice },
          mysqlAccount: 'dba_proxy@%',
          title: 'CREATE EVENT holding GRANT on app@% in prod-orders',
          details: { verb: 'GRANT', targets: ['app@%'], via: 'stored program', definer: 'emergency_admin@%' },
        },
      },
    },
    {
      name: "a procedure of the creator's own that grants: medium, from a handler too",
      events: () => [
        statement(
          'app',
          'create_procedure',
          "CREATE PROCEDURE shop.p() BEGIN DECLARE EXIT HANDLER FOR SQLEXCEPTION REVOKE SELECT ON shop.* FROM 'bi'@'%'; SELECT 1; END",
        ),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { details: { verb: 'REVOKE', targets: ['bi@%'], via: 'stored program', definer: 'app@%' } },
      },
    },
    {
      name: 'a procedure running dynamic SQL as another, privileged account is high',
      events: () => [
        statement(
          'admin',
          'create_procedure',
          'CREATE DEFINER = `dba_proxy`@`%` PROCEDURE shop.run(q TEXT) SQL SECURITY DEFINER BEGIN SET @s = q; PREPARE st FROM @s; EXECUTE st; END',
        ),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: 'CREATE PROCEDURE holding dynamic SQL run as dba_proxy@% in prod-orders',
          details: { verb: 'CREATE PROCEDURE', targets: [], via: 'stored program', definer: 'dba_proxy@%' },
        },
      },
    },
    {
      name: 'a trigger that will write a grant table',
      events: () => [
        statement(
          'app',
          'create_trigger',
          "CREATE TRIGGER shop.t AFTER INSERT ON shop.orders FOR EACH ROW UPDATE mysql.user SET Super_priv = 'Y' WHERE user = 'app'",
        ),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { details: { verb: 'UPDATE mysql.user', via: 'stored program', definer: 'app@%' } },
      },
    },
    {
      name: 'an ordinary event run as another, privileged account is medium',
      events: () => [
        statement(
          'app',
          'create_event',
          "CREATE DEFINER = 'dba_proxy'@'%' EVENT shop.purge ON SCHEDULE EVERY 1 DAY DO DELETE FROM shop.sessions WHERE expired = 1",
        ),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          title: 'CREATE EVENT run as dba_proxy@% in prod-orders',
          details: { verb: 'CREATE EVENT', via: 'stored program', definer: 'dba_proxy@%' },
        },
      },
    },
    ...(
      [
        [
          'an ordinary procedure',
          'create_procedure',
          'CREATE PROCEDURE shop.totals() BEGIN SELECT SUM(total) FROM shop.orders; END',
        ],
        [
          "dynamic SQL in an ordinary account's own procedure",
          'create_procedure',
          'CREATE DEFINER = CURRENT_USER PROCEDURE shop.pivot(q TEXT) BEGIN SET @s = q; PREPARE st FROM @s; EXECUTE st; END',
        ],
        [
          'an event naming its creator as definer',
          'create_event',
          "CREATE DEFINER = 'app'@'%' EVENT shop.purge ON SCHEDULE EVERY 1 DAY DO DELETE FROM shop.sessions WHERE expired = 1",
        ],
      ] as const
    ).map(([name, sqlCommand, sql]) => ({
      name: `${name} is silent`,
      events: () => [statement('app', sqlCommand, sql)],
      expect: { alerts: 0 },
    })),
    ...(
      [
        ['update', "UPDATE mysql.user SET Grant_priv = 'Y' WHERE user = 'app'", 'UPDATE mysql.user'],
        [
          'insert',
          "INSERT INTO mysql.global_grants VALUES ('mallory', '%', 'AUDIT_ADMIN', 'Y')",
          'INSERT mysql.global_grants',
        ],
        [
          'delete_multi',
          'DELETE e FROM `mysql`.role_edges e JOIN shop.leavers l ON l.name = e.TO_USER',
          'DELETE mysql.role_edges',
        ],
      ] as const
    ).map(([sqlCommand, sql, verb]) => ({
      name: `a grant table written directly is high: ${verb}`,
      events: () => [statement('app', sqlCommand, sql)],
      expect: {
        alerts: 1,
        severity: 'high' as const,
        match: { mysqlAccount: 'app@%', details: { verb, targets: [] } },
      },
    })),
    ...(
      [
        ['select', 'SELECT user, host FROM mysql.user'],
        ['insert_select', 'INSERT INTO shop.review SELECT * FROM mysql.db'],
        ['update', "UPDATE shop.user SET name = 'x' WHERE id = 1"],
      ] as const
    ).map(([sqlCommand, sql]) => ({
      name: `${sql.split(' ')[0]} not writing a grant table is silent: ${sql}`,
      events: () => [statement('app', sqlCommand, sql)],
      expect: { alerts: 0 },
    })),
    {
      name: 'a grant prepared from a literal',
      events: () => [
        statement(
          'app',
          'prepare_sql',
          "PREPARE st FROM 'GRANT ALL ON *.* TO ''bi''@''%'' WITH GRANT OPTION'",
        ),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: 'PREPARE holding GRANT on bi@% in prod-orders',
          details: { verb: 'GRANT', targets: ['bi@%'], via: 'prepared statement' },
        },
      },
    },
    {
      name: 'dynamic SQL prepared from a user variable on a privileged account is medium',
      events: () => [statement('dba_proxy', 'prepare_sql', 'PREPARE st FROM @q')],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          mysqlAccount: 'dba_proxy@%',
          title: 'PREPARE from a user variable on dba_proxy@% in prod-orders',
          details: { verb: 'PREPARE', targets: [], via: 'prepared statement' },
        },
      },
    },
    {
      name: 'dynamic SQL prepared from a user variable on an ordinary account is silent',
      events: () => [statement('app', 'prepare_sql', 'PREPARE st FROM @q')],
      expect: { alerts: 0 },
    },
    {
      name: 'failed grant is silent',
      events: () => [statement('admin', 'grant', "GRANT ALL ON *.* TO 'x'@'%'", { status: 1064 })],
      expect: { alerts: 0 },
    },
    {
      name: 'select is silent',
      events: () => [
        db.query({ at: at(1), conn: 7, account: 'admin', sqlCommand: 'select', sql: 'SELECT 1' }),
      ],
      expect: { alerts: 0 },
    },
  ],
});
