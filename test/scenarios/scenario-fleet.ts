// A compact incident timeline on the standard test fleet, used by the property and restart tests.
import type { CanonicalEvent } from '../../schemas/events.js';
import { at, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';

export function incidentTimeline(): CanonicalEvent[] {
  return [
    iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.5', mfa: 'TOTP' }),
    db.connect({ at: at(5), conn: 1, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
    db.query({
      at: at(6),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'grant',
      sql: "GRANT SELECT ON shop.* TO 'app'@'%'",
    }),
    iam.added({ at: at(10), user: USERS.bob, group: GROUPS.bg }),
    db.connect({ at: at(15), conn: 2, account: 'emergency_admin', user: 'bob', proxy: true }),
    iam.signOn({ at: at(16), user: USERS.dave, ip: '10.0.0.9' }),
    db.connect({ at: at(18), conn: 3, account: 'dev_proxy', user: 'dev_proxy', ip: '10.0.0.9', proxy: true }),
    db.disconnect({ at: at(25), conn: 1, account: 'dba_proxy' }),
    iam.removed({ at: at(30), user: USERS.alice, group: GROUPS.dba }),
    db.connect({ at: at(40), conn: 4, account: 'dba_proxy', user: 'alice', proxy: true }),
    ...[41, 42, 43, 44, 45].map((m, i) =>
      db.connect({ at: at(m), conn: 10 + i, account: 'admin', ip: '203.0.113.9', status: 1045 }),
    ),
    db.connect({ at: at(50), conn: 20, account: 'app', ip: '10.1.1.1' }),
    db.query({
      at: at(51),
      conn: 20,
      account: 'app',
      sqlCommand: 'select',
      sql: "SELECT audit_log_filter_remove_user('%')",
    }),
    db.connect({
      at: at(60),
      conn: 21,
      account: 'dba_proxy',
      user: 'dba_proxy',
      ip: '10.7.7.7',
      proxy: true,
    }),
    db.connect({ at: at(260), conn: 5, account: 'emergency_admin', user: 'bob', proxy: true }),
    iam.signOn({ at: at(320), user: USERS.dave, ip: '10.0.0.9' }),
  ];
}
