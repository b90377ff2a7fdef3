// Failed access and local-account use: failed logins by DB system, login name, source and error,
// failure bursts, statements that failed, and logins with local (non-IAM) accounts on DB systems
// that are configured IAM-only.
import { alertOccurrences } from '../../schemas/alert.js';
import type { Session } from '../../schemas/session.js';
import { allowListed } from '../rules/access-local-account.js';
import {
  alertsActiveIn,
  BoundedSet,
  bars,
  byText,
  column,
  connectedIn,
  day,
  days,
  iso,
  keyed,
  lastOccurrence,
  OCCURRENCES_NOTE,
  type ReportDefinition,
  section,
  Tally,
  table,
} from './report.js';

/** MySQL error numbers of failed logins, as operators know them. */
const ERRORS: Record<number, string> = {
  1045: 'access denied',
  1044: 'access denied to database',
  1129: 'host blocked',
  1130: 'host not allowed',
  1226: 'resource limit',
  1251: 'client does not support the auth protocol',
  3118: 'account locked',
  3159: 'secure transport required',
  3862: 'password expired',
};

type Range = { first: string; last: string };

function widen(range: Range | undefined, time: string): Range {
  if (range === undefined) return { first: time, last: time };
  if (time < range.first) range.first = time;
  if (time > range.last) range.last = time;
  return range;
}

export const failedAccess: ReportDefinition = {
  id: 'failed-access',
  title: 'Failed access and local-account use',
  description:
    'Failed logins and statements, failure bursts, and logins with local (non-IAM) MySQL accounts on DB systems configured as IAM-only.',
  controls: ['PCI DSS 4.0 10.2.1.4', 'PCI DSS 4.0 8.2.2', 'PCI DSS 4.0 8.3.4'],
  start(ctx) {
    const { facts } = ctx;
    const failed = new Map<
      string,
      { row: [string, string, string, number]; attempts: number; range: Range | undefined }
    >();
    const perDay = new Tally();
    const sources = new Set<string>();
    const statements = new Map<
      string,
      {
        db: string;
        who: string;
        confidence: string;
        account: string;
        sessions: number;
        failed: number;
        last: string;
      }
    >();
    const local = new Map<
      string,
      {
        db: string;
        account: string;
        allowed: boolean;
        sessions: number;
        ips: BoundedSet;
        range: Range | undefined;
      }
    >();
    let failedLogins = 0;

    return {
      session(s: Session) {
        if (s.outcome === 'failed') {
          failedLogins++;
          perDay.add(day(s.connectTs));
          if (s.sourceIp) sources.add(s.sourceIp);
          const key = [s.dbSystem.id, s.login.user, s.sourceIp ?? '', s.status].join('\u0000');
          const f = keyed(failed, key, () => ({
            row: [s.dbSystem.name, s.login.user, s.sourceIp ?? '', s.status] as [
              string,
              string,
              string,
              number,
            ],
            attempts: 0,
            range: undefined,
          }));
          f.attempts++;
          f.range = widen(f.range, s.connectTime);
          return;
        }
        if (s.counts.failedStatements > 0) {
          const who = s.identity?.name ?? '';
          // How surely the person was named: sessions named with another confidence are another row.
          const confidence = who === '' ? '' : (s.attribution?.confidence ?? '');
          const key = [s.dbSystem.id, who, confidence, s.mysqlAccount].join('\u0000');
          const st = keyed(statements, key, () => ({
            db: s.dbSystem.name,
            who,
            confidence,
            account: s.mysqlAccount,
            sessions: 0,
            failed: 0,
            last: s.connectTime,
          }));
          st.sessions++;
          st.failed += s.counts.failedStatements;
          if (s.connectTime > st.last) st.last = s.connectTime;
        }
        // Logins: those of the period, not a session that logged in before it.
        const db = facts.catalog.get(s.dbSystem.id);
        if (s.attribution?.method === 'local-account' && db?.iamOnly && connectedIn(s, ctx.period)) {
          const l = keyed(local, `${s.dbSystem.id}\u0000${s.mysqlAccount}`, () => ({
            db: s.dbSystem.name,
            account: s.mysqlAccount,
            allowed: allowListed(db.allowedLocalAccounts, s.account.user, s.account.host),
            sessions: 0,
            ips: new BoundedSet(20),
            range: undefined,
          }));
          l.sessions++;
          if (s.sourceIp) l.ips.add(s.sourceIp);
          l.range = widen(l.range, s.connectTime);
        }
      },

      finish() {
        const active = alertsActiveIn(ctx);
        const localAlerts = new Tally();
        // Logins of the period merged into an alert raised before it count that alert too.
        for (const a of active)
          if (a.rule === 'access.local-account' && a.dbSystem && a.mysqlAccount)
            localAlerts.add(`${a.dbSystem.id}\u0000${a.mysqlAccount}`);
        // A burst raised before the period whose repeats went on into it is one of the period's.
        const bursts = active.filter((a) => a.rule === 'auth.failure-burst');
        const periodDays = days(ctx.period);
        const localRows = [...local.entries()].sort(
          ([, a], [, b]) => byText(a.db, b.db) || byText(a.account, b.account),
        );
        const notAllowed = localRows.filter(([, l]) => !l.allowed).reduce((n, [, l]) => n + l.sessions, 0);
        const failedStatements = [...statements.values()].reduce((n, s) => n + s.failed, 0);
        return {
          figures: [
            { label: 'Failed logins', value: failedLogins, status: failedLogins > 0 ? 'attention' : 'ok' },
            { label: 'Sources of failed logins', value: sources.size },
            { label: 'Failure bursts', value: bursts.length, status: bursts.length > 0 ? 'attention' : 'ok' },
            { label: 'Failed statements', value: failedStatements },
            {
              label: 'Local-account logins on IAM-only DB systems, not allow-listed',
              value: notAllowed,
              status: notAllowed > 0 ? 'attention' : 'ok',
            },
          ],
          sections: [
            section(
              'failed-logins',
              'Failed logins',
              'Failed connection attempts by DB system, login name (as the client sent it), source address and MySQL error, most attempts first.',
              table(
                [
                  column('db_system', 'DB system'),
                  column('login_user', 'Login name'),
                  column('source_ip', 'Source address'),
                  column('error_code', 'Error', 'number'),
                  column('error', 'Meaning'),
                  column('attempts', 'Attempts', 'count'),
                  column('first', 'First', 'time'),
                  column('last', 'Last', 'time'),
                ],
                [...failed.values()]
                  .sort(
                    (a, b) => b.attempts - a.attempts || byText(a.row.join('\u0000'), b.row.join('\u0000')),
                  )
                  .map((f) => [
                    f.row[0],
                    f.row[1],
                    f.row[2] || null,
                    f.row[3],
                    ERRORS[f.row[3]] ?? null,
                    f.attempts,
                    f.range?.first ?? null,
                    f.range?.last ?? null,
                  ]),
              ),
              bars('Failed logins per day', periodDays, [
                { name: 'Failed logins', values: periodDays.map((d) => perDay.get(d)) },
              ]),
            ),
            section(
              'failure-bursts',
              'Failure bursts',
              `auth.failure-burst alerts: many failed logins for one login name or from one source within the configured window; those raised before the period and repeated in it too, by first occurrence, each with its last one (either may lie outside the period). Failures: those of the burst that raised the alert. ${OCCURRENCES_NOTE}`,
              table(
                [
                  column('time', 'First occurrence', 'time'),
                  column('last_time', 'Last occurrence', 'time'),
                  column('db_system', 'DB system'),
                  column('login_user', 'Login name'),
                  column('source_ip', 'Source address'),
                  column('failures', 'Failures', 'count'),
                  column('occurrences', 'Occurrences', 'count'),
                  column('title', 'Alert'),
                ],
                bursts.map((a) => [
                  a.time,
                  iso(lastOccurrence(a)),
                  a.dbSystem?.name ?? null,
                  a.loginUser ?? null,
                  a.sourceIp ?? null,
                  typeof a.details?.failures === 'number' ? a.details.failures : null,
                  alertOccurrences(a),
                  a.title,
                ]),
              ),
            ),
            section(
              'failed-statements',
              'Failed statements',
              "Sessions active in the period whose statements failed (syntax errors, denied privileges; the sessions' totals), by DB system, person (with the confidence of the attribution; asserted: the login name the client sent, confirmed by nothing) and MySQL account.",
              table(
                [
                  column('db_system', 'DB system'),
                  column('person', 'Person'),
                  column('confidence', 'Confidence'),
                  column('mysql_account', 'MySQL account'),
                  column('sessions', 'Sessions', 'count'),
                  column('failed_statements', 'Failed statements', 'count'),
                  column('last', 'Last session', 'time'),
                ],
                [...statements.values()]
                  .sort(
                    (a, b) =>
                      b.failed - a.failed ||
                      byText(
                        a.db + a.who + a.confidence + a.account,
                        b.db + b.who + b.confidence + b.account,
                      ),
                  )
                  .map((s) => [
                    s.db,
                    s.who || null,
                    s.confidence || null,
                    s.account,
                    s.sessions,
                    s.failed,
                    s.last,
                  ]),
              ),
            ),
            section(
              'local-account-use',
              'Local-account use on IAM-only DB systems',
              "Successful logins with non-IAM accounts on DB systems configured iamOnly. Allow-listed accounts (allowedLocalAccounts) are expected; the others are access.local-account findings. Alerts: those of the account raised in the period, or raised before it and repeated in it (repeats merge logins within the rule's suppression window).",
              table(
                [
                  column('db_system', 'DB system'),
                  column('mysql_account', 'MySQL account'),
                  column('allow_listed', 'Allow-listed', 'flag'),
                  column('sessions', 'Sessions', 'count'),
                  column('alerts', 'Alerts', 'count'),
                  column('source_ips', 'Source addresses', 'list'),
                  column('first', 'First', 'time'),
                  column('last', 'Last', 'time'),
                ],
                localRows.map(([key, l]) => [
                  l.db,
                  l.account,
                  l.allowed,
                  l.sessions,
                  localAlerts.get(key),
                  l.ips.sorted(),
                  l.range?.first ?? null,
                  l.range?.last ?? null,
                ]),
              ),
            ),
          ],
        };
      },
    };
  },
};
