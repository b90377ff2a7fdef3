// Break-glass log: every break-glass grant of the period with its start, its end (or that it is
// still open), its duration against the group's maximum, the sessions made under it and what they
// ran, and the alerts it raised.
import type { Alert } from '../../schemas/alert.js';
import { clientLabel, noDisconnectLogged, type Session } from '../../schemas/session.js';
import type { GrantRow } from '../correlate/correlator.js';
import { utcSeconds } from '../time.js';
import { type MembershipInterval, overlaps } from './audit-facts.js';
import {
  bars,
  CappedRows,
  column,
  detailText,
  inPeriod,
  iso,
  keyed,
  type ReportDefinition,
  section,
  table,
} from './report.js';

type GrantUse = { sessions: number; statements: number; dbs: Set<string>; ids: Set<string> };

/** Whether an alert belongs to a grant: it names it, one of its sessions, or a change its holder made through it. */
function belongs(a: Alert, g: GrantRow, end: number, use: GrantUse | undefined): boolean {
  if (detailText(a, 'grant') === g.id || a.evidence.includes(g.id)) return true;
  const session = detailText(a, 'sessionId');
  if (session !== undefined && use?.ids.has(session)) return true;
  const t = Date.parse(a.time);
  return (
    a.identity?.principalId === g.user &&
    a.group?.id === g.group &&
    a.dbSystem !== null &&
    t >= g.startTs &&
    t <= end
  );
}

export const breakGlassLog: ReportDefinition = {
  id: 'break-glass-log',
  title: 'Break-glass log',
  description:
    'Every break-glass grant of the period: who held it, from when to when, for how long against its maximum, the sessions and statements made under it, and the alerts it raised.',
  controls: ['PCI DSS 4.0 8.2.2', 'PCI DSS 4.0 8.6.1', 'PCI DSS 4.0 10.2.1.2', 'PCI DSS 4.0 7.2.1'],
  start(ctx) {
    const { facts, period } = ctx;
    const uses = new Map<string, GrantUse>();
    const sessionRows = new CappedRows();
    const statementRows = new CappedRows();
    const holder = new Map(facts.grants.map((g) => [g.id, g]));
    return {
      session(s: Session) {
        const g = s.breakGlassGrant === null ? undefined : holder.get(s.breakGlassGrant);
        if (g === undefined || s.outcome !== 'success') return;
        const use = keyed(uses, g.id, () => ({ sessions: 0, statements: 0, dbs: new Set(), ids: new Set() }));
        use.sessions++;
        use.statements += s.counts.queries;
        use.dbs.add(s.dbSystem.name);
        use.ids.add(s.id);
        const person = s.identity?.name ?? facts.userName(g.user);
        // How the person was named: an asserted name is the client's word, not a proof.
        const method = s.attribution?.method ?? null;
        const confidence = s.attribution?.confidence ?? null;
        sessionRows.push([
          g.id,
          person,
          method,
          confidence,
          s.dbSystem.name,
          s.mysqlAccount,
          clientLabel(s.client) ?? null,
          s.connectTime,
          s.disconnectTime ?? null,
          s.endReason === undefined ? null : noDisconnectLogged(s.endReason),
          s.counts.queries,
          s.counts.tableAccess,
          s.counts.failedStatements,
          s.tables ?? [],
          s.id,
        ]);
        // Those it ran in the period: a session that connected before it ran some before.
        for (const st of s.statements ?? []) {
          if (!inPeriod(st.time, period)) continue;
          statementRows.push([
            g.id,
            person,
            confidence,
            s.dbSystem.name,
            st.time,
            st.command,
            st.sql,
            st.status,
            s.id,
          ]);
        }
      },

      finish() {
        // A grant ends with the membership stretch it opened, or, opened by an add repeated while
        // the member already was one (the same change reported twice), with the stretch it fell in.
        const stretches = new Map<string, MembershipInterval[]>();
        for (const i of facts.intervals()) keyed(stretches, `${i.user}\u0000${i.group}`, () => []).push(i);
        const endOf = (g: GrantRow): number | undefined => {
          const mine = stretches.get(`${g.user}\u0000${g.group}`) ?? [];
          const stretch =
            mine.find((i) => i.addKey === g.addKey) ??
            mine.find((i) => i.from <= g.startTs && (i.to === undefined || g.startTs < i.to));
          return stretch?.to;
        };
        const grants = facts.grants
          .map((g) => ({ g, end: endOf(g) }))
          // Also one that ended before the period whose session was still active in it.
          .filter(({ g, end }) => overlaps(g.startTs, end, period) || uses.has(g.id))
          .filter(
            ({ g }) =>
              ctx.dbSystem === undefined ||
              uses.has(g.id) ||
              facts.groupAccounts(g.group, g.startTs).some((e) => e.db === ctx.dbSystem),
          )
          .sort((a, b) => a.g.startTs - b.g.startTs || (a.g.id < b.g.id ? -1 : 1));
        const alertRows: (string | null)[][] = [];
        const rows = grants.map(({ g, end: removed }) => {
          // As the grant stood at the end of the period: a removal after it is not known yet.
          const end = removed !== undefined && removed < period.to ? removed : undefined;
          const until = end ?? period.to;
          const duration = until - g.startTs;
          const max = g.deadlineTs - g.startTs;
          const use = uses.get(g.id);
          const raised = ctx.alerts.filter((a) => belongs(a, g, until, use));
          for (const a of raised)
            alertRows.push([g.id, facts.userName(g.user), a.time, a.rule, a.severity, a.title, a.id]);
          return [
            facts.userName(g.user),
            facts.groupName(g.group),
            iso(g.startTs),
            end === undefined ? null : iso(end),
            end === undefined,
            duration,
            max,
            duration > max,
            use?.sessions ?? 0,
            use?.statements ?? 0,
            [...(use?.dbs ?? [])].sort(),
            raised.length,
            g.id,
          ];
        });
        const open = rows.filter((r) => r[4] === true).length;
        const over = rows.filter((r) => r[7] === true).length;
        const hours = (ms: number) => Math.round(ms / 360_000) / 10;
        return {
          figures: [
            { label: 'Grants', value: rows.length },
            {
              label: 'Still open at the end of the period',
              value: open,
              status: open > 0 ? 'attention' : 'ok',
            },
            { label: 'Held past their maximum duration', value: over, status: over > 0 ? 'attention' : 'ok' },
            { label: 'Sessions under break-glass', value: sessionRows.total },
            { label: 'Alerts raised', value: alertRows.length },
          ],
          sections: [
            section(
              'grants',
              'Grants',
              'Break-glass group memberships that were open at some time in the period, and those that ended before it with a session made under them still active in it, as they stood at its end. Duration runs to the removal, or to the end of the period for a grant still open then (removed later or not at all).',
              table(
                [
                  column('person', 'Person'),
                  column('group', 'Group'),
                  column('granted', 'Granted', 'time'),
                  column('ended', 'Ended', 'time'),
                  column('still_open', 'Still open', 'flag'),
                  column('duration_ms', 'Duration', 'duration'),
                  column('max_duration_ms', 'Maximum', 'duration'),
                  column('over_maximum', 'Over maximum', 'flag'),
                  column('sessions', 'Sessions', 'count'),
                  column('statements', 'Statements', 'count'),
                  column('db_systems', 'DB systems', 'list'),
                  column('alerts', 'Alerts', 'count'),
                  column('grant_id', 'Grant (membership event)'),
                ],
                rows,
              ),
              bars(
                'Hours held against the maximum, by start and person',
                // The time first: a chart cuts a long label's end, and a person's name is in the table.
                grants.map(({ g }) => `${utcSeconds(iso(g.startTs))} ${facts.userName(g.user)}`),
                [
                  { name: 'Held', values: rows.map((r) => hours(Number(r[5]))) },
                  { name: 'Maximum', values: rows.map((r) => hours(Number(r[6]))) },
                ],
              ),
            ),
            section(
              'sessions',
              'Sessions under break-glass',
              "Database sessions that resolved through a break-glass grant, active in the period (also those that connected before it). Statements, table accesses and failed statements are the session's totals. The person is named by the method and with the confidence shown: asserted is the client's word (the login name it sent), confirmed by nothing, so another member of the group may have made the session. Client is the program the connection named (its program, library and version, as the client sent them). Disconnected is the disconnect the server logged, or, when How it ended says that it logged none, the server's shutdown record, its startup after a crash (an upper bound: the session ended then or before), or the last event read from a server another took over or whose log was reset (the session ended then or after).",
              table(
                [
                  column('grant_id', 'Grant'),
                  column('person', 'Person'),
                  column('method', 'Attributed by'),
                  column('confidence', 'Confidence'),
                  column('db_system', 'DB system'),
                  column('mysql_account', 'MySQL account'),
                  column('client', 'Client'),
                  column('connected', 'Connected', 'time'),
                  column('disconnected', 'Disconnected', 'time'),
                  column('end_reason', 'How it ended'),
                  column('statements', 'Statements', 'count'),
                  column('table_access', 'Table accesses', 'count'),
                  column('failed_statements', 'Failed statements', 'count'),
                  column('tables', 'Tables', 'list'),
                  column('session_id', 'Session'),
                ],
                sessionRows,
              ),
            ),
            section(
              'statements',
              'Statements under break-glass',
              'What the break-glass sessions ran in the period (SQL with literals redacted; of the first statements of each session).',
              table(
                [
                  column('grant_id', 'Grant'),
                  column('person', 'Person'),
                  column('confidence', 'Confidence'),
                  column('db_system', 'DB system'),
                  column('time', 'Time', 'time'),
                  column('command', 'Command'),
                  column('sql', 'Statement', 'code'),
                  column('status', 'Status', 'number'),
                  column('session_id', 'Session'),
                ],
                statementRows,
              ),
            ),
            section(
              'alerts',
              'Alerts raised',
              'Alerts about each grant, its sessions and the changes made through it.',
              table(
                [
                  column('grant_id', 'Grant'),
                  column('person', 'Person'),
                  column('time', 'Time', 'time'),
                  column('rule', 'Rule'),
                  column('severity', 'Severity'),
                  column('title', 'Title'),
                  column('alert_id', 'Alert id'),
                ],
                alertRows,
              ),
            ),
          ],
        };
      },
    };
  },
};
