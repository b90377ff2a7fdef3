// Alert summary: the period's alerts by rule, severity, DB system and day, each against the
// previous period of the same length, and the list of alerts. A period's alerts are those raised
// in it and those raised before it whose merged repeats went on into it. The store keeps an
// alert's first and last occurrence and how many there were, not each repeat's time: occurrences
// are counted over the alert's whole life, and the list shows that life's first and last time.
import { type Alert, alertOccurrences, SEVERITIES } from '../../schemas/alert.js';
import { ruleInfo } from '../emit/formats/format.js';
import {
  alertsActiveIn,
  bars,
  byText,
  column,
  day,
  days,
  iso,
  keyed,
  lastOccurrence,
  OCCURRENCES_NOTE,
  personConfidence,
  type ReportDefinition,
  section,
  Tally,
  table,
} from './report.js';

const SEVERE_FIRST = [...SEVERITIES].reverse();

/** Change from `before` to `now` in percent, or null when there was nothing before. */
function change(now: number, before: number): number | null {
  return before === 0 ? null : Math.round(((now - before) / before) * 1000) / 10;
}

export const alertSummary: ReportDefinition = {
  id: 'alert-summary',
  title: 'Alert summary',
  description:
    'Alerts raised in the period, and those raised before it whose repeats went on into it, by rule, severity, DB system and day, with the trend against the previous period of the same length.',
  controls: ['PCI DSS 4.0 10.4.1', 'PCI DSS 4.0 10.7'],
  start: (ctx) => ({
    session: () => undefined,
    finish() {
      const now = alertsActiveIn(ctx);
      const before = [...ctx.previousRepeated, ...ctx.previousAlerts];
      const rules = new Map<string, { alerts: Tally; occurrences: number }>();
      for (const a of now) {
        const r = keyed(rules, a.rule, () => ({ alerts: new Tally(), occurrences: 0 }));
        r.alerts.add(a.severity);
        r.occurrences += alertOccurrences(a);
      }
      const rulesBefore = new Tally();
      for (const a of before) rulesBefore.add(a.rule);
      const allRules = [...new Set([...rules.keys(), ...rulesBefore.counts.keys()])].sort(byText);
      const byRule = allRules.map((rule) => {
        const r = rules.get(rule);
        const count = r?.alerts.total() ?? 0;
        return [
          rule,
          ruleInfo(rule).title,
          count,
          r?.occurrences ?? 0,
          ...SEVERE_FIRST.map((s) => r?.alerts.get(s) ?? 0),
          rulesBefore.get(rule),
          change(count, rulesBefore.get(rule)),
        ];
      });

      const sevNow = new Tally();
      const sevBefore = new Tally();
      for (const a of now) sevNow.add(a.severity);
      for (const a of before) sevBefore.add(a.severity);

      const dbs = new Map<string, { name: string; severities: Tally }>();
      for (const a of now) {
        const key = a.dbSystem?.id ?? '';
        keyed(dbs, key, () => ({
          name: a.dbSystem?.name ?? '(no DB system: IAM)',
          severities: new Tally(),
        })).severities.add(a.severity);
      }
      const byDb = [...dbs.entries()]
        .sort(([, a], [, b]) => byText(a.name, b.name))
        .map(([id, d]) => [
          d.name,
          id || null,
          d.severities.total(),
          ...SEVERE_FIRST.map((s) => d.severities.get(s)),
        ]);

      const periodDays = days(ctx.period);
      const perDay = new Map<string, Tally>();
      for (const a of now) keyed(perDay, day(Date.parse(a.time)), () => new Tally()).add(a.severity);
      const dayRows = periodDays.map((d) => {
        const t = perDay.get(d);
        return [d, t?.total() ?? 0, ...SEVERE_FIRST.map((s) => t?.get(s) ?? 0)];
      });

      const severityColumns = SEVERE_FIRST.map((s) => column(s, s[0]!.toUpperCase() + s.slice(1), 'count'));
      const severe = (sevNow.get('critical') ?? 0) + (sevNow.get('high') ?? 0);
      const resolution = (a: Alert) => ctx.resolutions.get(a.id);
      const open = now.filter((a) => resolution(a) === undefined);
      const severeOpen = open.filter((a) => a.severity === 'critical' || a.severity === 'high').length;
      return {
        figures: [
          { label: 'Alerts in the period', value: now.length },
          { label: 'Of them raised before the period, repeated in it', value: ctx.repeatedAlerts.length },
          { label: 'Alerts in the previous period', value: before.length },
          {
            label: 'Change',
            value:
              change(now.length, before.length) === null ? 'n/a' : `${change(now.length, before.length)} %`,
          },
          { label: 'Critical and high', value: severe },
          {
            label: 'Still open at the end of the period',
            value: open.length,
            status: open.length > 0 ? 'attention' : 'ok',
          },
          {
            label: 'Critical and high, still open',
            value: severeOpen,
            status: severeOpen > 0 ? 'attention' : 'ok',
          },
          { label: 'Rules that fired', value: rules.size },
        ],
        sections: [
          section(
            'by-rule',
            'By rule',
            `Alerts per rule, by severity, and the previous period. ${OCCURRENCES_NOTE}`,
            table(
              [
                column('rule', 'Rule'),
                column('title', 'Title'),
                column('alerts', 'Alerts', 'count'),
                column('occurrences', 'Occurrences', 'count'),
                ...severityColumns,
                column('previous', 'Previous period', 'count'),
                column('change_percent', 'Change', 'percent'),
              ],
              byRule,
            ),
            bars('Alerts by rule', allRules, [
              { name: 'This period', values: allRules.map((r) => rules.get(r)?.alerts.total() ?? 0) },
              { name: 'Previous period', values: allRules.map((r) => rulesBefore.get(r)) },
            ]),
          ),
          section(
            'by-severity',
            'By severity',
            'Alerts per severity, and the previous period.',
            table(
              [
                column('severity', 'Severity'),
                column('alerts', 'Alerts', 'count'),
                column('previous', 'Previous period', 'count'),
                column('change_percent', 'Change', 'percent'),
              ],
              SEVERE_FIRST.map((s) => [
                s,
                sevNow.get(s),
                sevBefore.get(s),
                change(sevNow.get(s), sevBefore.get(s)),
              ]),
            ),
          ),
          section(
            'by-db-system',
            'By DB system',
            'Alerts per DB system; IAM findings (group and policy changes, stale break-glass) belong to no DB system.',
            table(
              [
                column('db_system', 'DB system'),
                column('db_system_id', 'DB system OCID'),
                column('alerts', 'Alerts', 'count'),
                ...severityColumns,
              ],
              byDb,
            ),
          ),
          section(
            'by-day',
            'By day',
            'Alerts raised on each UTC day of the period (by first occurrence: those raised before the period and repeated in it are in the other tables, not here).',
            table([column('day', 'Day'), column('alerts', 'Alerts', 'count'), ...severityColumns], dayRows),
            bars(
              'Alerts per day',
              periodDays,
              SEVERE_FIRST.map((s, i) => ({ name: s, values: dayRows.map((r) => Number(r[2 + i])) })),
              true,
            ),
          ),
          section(
            'alerts',
            'Alerts',
            `Every alert of the period, by first occurrence, with its last one (either may lie outside the period), and whether it was resolved by the end of the period: when, and why (acknowledged: a planned change inside an expected-change window; attributed: a later IAM event named the person; membership-removed; reverted). Confidence: how surely the person was named (asserted: the login name the client sent, confirmed by nothing). ${OCCURRENCES_NOTE}`,
            table(
              [
                column('time', 'First occurrence', 'time'),
                column('last_time', 'Last occurrence', 'time'),
                column('rule', 'Rule'),
                column('severity', 'Severity'),
                column('title', 'Title'),
                column('person', 'Person'),
                column('person_confidence', 'Confidence'),
                column('mysql_account', 'MySQL account'),
                column('db_system', 'DB system'),
                column('occurrences', 'Occurrences', 'count'),
                column('resolved', 'Resolved', 'time'),
                column('resolution', 'Resolution'),
                column('alert_id', 'Alert id'),
              ],
              now.map((a) => [
                a.time,
                iso(lastOccurrence(a)),
                a.rule,
                a.severity,
                a.title,
                a.identity?.name ?? null,
                personConfidence(a),
                a.mysqlAccount ?? null,
                a.dbSystem?.name ?? null,
                alertOccurrences(a),
                resolution(a)?.time ?? null,
                resolution(a)?.reason ?? null,
                a.id,
              ]),
            ),
          ),
        ],
      };
    },
  }),
};
