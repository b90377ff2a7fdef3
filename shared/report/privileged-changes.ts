// Privileged and authentication changes: MySQL privilege and account changes, authentication_oci
// mapping changes, database authentication policy changes, membership changes of privileged and
// break-glass groups, credentials created on another person's IAM user, DB systems stopped,
// deleted or given another MySQL configuration through OCI, and audit configuration changes, each
// with who made it; and every membership change of a group that maps to a database account.
import type { Alert } from '../../schemas/alert.js';
import { isSeedKey } from '../correlate/correlator.js';
import {
  bars,
  byText,
  column,
  detailText,
  personConfidence,
  type ReportDefinition,
  section,
  Tally,
  table,
} from './report.js';

/** The rules that record a change, and what kind of change each is. */
const CHANGE_KINDS: Record<string, string> = {
  'privilege.change': 'privilege',
  'mapping.change': 'mapping',
  'iam.auth-policy-change': 'policy',
  'iam.privileged-group-change': 'group',
  'iam.credential-change': 'credential',
  'dbsystem.change': 'DB system',
  'audit.tamper': 'audit configuration',
};
const KINDS = [...new Set(Object.values(CHANGE_KINDS))];

/** Who made a change: the IAM actor of group and credential changes; else the person behind the session or the acting account. */
function madeBy(a: Alert): string | null {
  if (a.rule === 'iam.privileged-group-change' || a.rule === 'iam.credential-change')
    return detailText(a, 'actor') ?? null;
  return a.identity?.name ?? a.identity?.principalId ?? a.mysqlAccount ?? null;
}

/** How surely the person behind the database session was named (none for an IAM actor or an account). */
function madeByConfidence(a: Alert): string | null {
  if (a.rule === 'iam.privileged-group-change' || a.rule === 'iam.credential-change') return null;
  return personConfidence(a);
}

/** What a change was made to. */
function target(a: Alert): string[] {
  const d = a.details ?? {};
  if (Array.isArray(d.targets)) return d.targets.filter((t): t is string => typeof t === 'string');
  if (a.rule === 'iam.privileged-group-change')
    return [a.identity?.name, a.group?.name].filter((t): t is string => !!t);
  if (a.rule === 'iam.credential-change') return [a.identity?.name].filter((t): t is string => !!t);
  if (a.rule === 'dbsystem.change')
    return [a.dbSystem?.name, detailText(a, 'configuration')].filter((t): t is string => !!t);
  if (a.rule === 'iam.auth-policy-change') return [detailText(a, 'policy')].filter((t): t is string => !!t);
  if (Array.isArray(d.changes))
    return d.changes.map((c) => (typeof c === 'string' ? c : JSON.stringify(c))).slice(0, 20);
  return [];
}

export const privilegedChanges: ReportDefinition = {
  id: 'privileged-changes',
  title: 'Privileged and authentication changes',
  description:
    "Changes to MySQL privileges and accounts, IAM group mappings, database authentication policies, privileged group memberships, credentials created on another person's IAM user, DB system operations through OCI (stop, restart, delete, another MySQL configuration) and the audit configuration, with who made each.",
  controls: ['PCI DSS 4.0 10.2.1.2', 'PCI DSS 4.0 10.2.1.5', 'PCI DSS 4.0 10.2.1.3', 'PCI DSS 4.0 10.2.1.6'],
  start: (ctx) => ({
    session: () => undefined,
    finish() {
      const { facts, period } = ctx;
      const changes = ctx.alerts.filter((a) => CHANGE_KINDS[a.rule] !== undefined);
      const kinds = new Tally();
      for (const a of changes) kinds.add(CHANGE_KINDS[a.rule]!);

      const membership: [string, string, string, string, string[]][] = [];
      for (const i of facts.intervals()) {
        const breakGlass = facts.directory.group(i.group)?.breakGlassMs !== undefined;
        // A removal is judged by what the group mapped to just before it.
        const events: [number, string, number][] = [];
        if (!isSeedKey(i.addKey)) events.push([i.from, 'added', i.from]);
        if (i.to !== undefined) events.push([i.to, 'removed', i.to - 1]);
        for (const [ts, change, mappedAt] of events) {
          if (ts < period.from || ts >= period.to) continue;
          const accounts = facts
            .groupAccounts(i.group, mappedAt)
            .filter((e) => ctx.dbSystem === undefined || e.db === ctx.dbSystem);
          if (accounts.length === 0 && !breakGlass) continue;
          membership.push([
            new Date(ts).toISOString(),
            facts.userName(i.user),
            facts.groupName(i.group),
            change,
            accounts.map((e) => `${e.account} on ${facts.dbName(e.db)}`),
          ]);
        }
      }
      membership.sort((a, b) => byText(a[0], b[0]) || byText(a[1], b[1]));

      return {
        figures: [
          { label: 'Changes', value: changes.length },
          ...KINDS.map((k) => ({
            label: `${k[0]!.toUpperCase()}${k.slice(1)} changes`,
            value: kinds.get(k),
            ...(k === 'audit configuration' || k === 'policy'
              ? { status: kinds.get(k) > 0 ? ('attention' as const) : ('ok' as const) }
              : {}),
          })),
          { label: 'Membership changes of groups mapped to database accounts', value: membership.length },
        ],
        sections: [
          section(
            'changes',
            'Changes',
            'Every privileged or authentication change of the period. Made by: the person behind the database session that ran the statement, with the confidence of that attribution (asserted: the login name the client sent, confirmed by nothing), else the MySQL account; or the IAM principal that changed the group, policy, credential or DB system. Resolution: how the finding ended by the end of the period (acknowledged: inside an expected-change window of the configuration; reverted: undone by a later change), empty while it was open.',
            table(
              [
                column('time', 'Time', 'time'),
                column('kind', 'Kind'),
                column('change', 'Change'),
                column('made_by', 'Made by'),
                column('made_by_confidence', 'Confidence'),
                column('mysql_account', 'As MySQL account'),
                column('db_system', 'DB system'),
                column('source_ip', 'Source address'),
                column('targets', 'On', 'list'),
                column('sql', 'Statement', 'code'),
                column('severity', 'Severity'),
                column('resolution', 'Resolution'),
                column('alert_id', 'Alert id'),
              ],
              changes.map((a) => [
                a.time,
                CHANGE_KINDS[a.rule]!,
                a.title,
                madeBy(a),
                madeByConfidence(a),
                a.mysqlAccount ?? null,
                a.dbSystem?.name ?? null,
                a.sourceIp ?? null,
                target(a),
                detailText(a, 'sql') ?? null,
                a.severity,
                ctx.resolutions.get(a.id)?.reason ?? null,
                a.id,
              ]),
            ),
            bars('Changes by kind', KINDS, [{ name: 'Changes', values: KINDS.map((k) => kinds.get(k)) }]),
          ),
          section(
            'membership-changes',
            'Membership changes of groups mapped to database accounts',
            'People added to or removed from IAM groups that map to MySQL accounts (or break-glass groups), with the accounts the group reaches. Changes of privileged and break-glass groups also appear above with who made them.',
            table(
              [
                column('time', 'Time', 'time'),
                column('person', 'Person'),
                column('group', 'Group'),
                column('change', 'Change'),
                column('accounts', 'Accounts the group reaches', 'list'),
              ],
              membership,
            ),
          ),
        ],
      };
    },
  }),
};
