// The demo's terminal summary: alerts by rule and severity, the top incidents in plain language
// (naming the person behind each proxied session), attribution coverage, and precision / recall
// per rule against the ground truth, and where the compliance reports are.
import { join } from 'node:path';
import type { Alert, Severity } from '../../schemas/alert.js';
import { SEVERITIES } from '../../schemas/alert.js';
import { type Coverage, shareOfIam } from '../correlate/coverage.js';
import type { PipelineStats } from '../pipeline.js';
import type { RoutePlan } from '../route/route-plan.js';
import { grouped } from '../text.js';
import type { DemoManifest } from './generate-demo.js';
import type { Score } from './ground-truth.js';

export type SummaryInput = {
  manifest: DemoManifest;
  stats: PipelineStats;
  alerts: readonly Alert[];
  coverage: Coverage;
  score: Score;
  /** Which routes of the configuration the alerts would take. */
  routes: readonly RoutePlan[];
  timings: { generate: number; pipeline: number; total: number };
  out: string;
  reports: DemoReports;
};

/** Where the demo wrote its compliance reports: the folder, and the HTML file of each report. */
export type DemoReports = { dir: string; html: { report: string; title: string; path: string }[] };

const RANK: Record<Severity, number> = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };
const TOP = 25;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function table(rows: string[][], align: ('l' | 'r')[]): string[] {
  const widths = align.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (align[i] === 'r' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** "11-03 09:41" from an ISO time. */
function shortTime(iso: string): string {
  return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

const METHOD_TEXT: Record<string, string> = {
  'mapped-user': 'verified: its 1-to-1 IAM account',
  'external-user': 'verified: the external user set by the IAM plugin',
  'login-name': 'the login name it sent',
  'signon-correlated': 'corroborated: the only group member who signed on from that IP',
  unattributed: 'no person named by the client or the plugin, no sign-on from that address',
  'local-account': 'a local (non-IAM) account',
};

/** Who was behind the alert, in one line. */
function describePerson(a: Alert): string {
  const attribution = a.identity?.attribution;
  const via = [
    a.group ? `through IAM group ${a.group.name}` : '',
    a.mysqlAccount ? `as ${a.mysqlAccount}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  if (a.identity?.name && !attribution) {
    // An IAM event: the person it is about, and who made the change from where.
    const actor = typeof a.details?.actor === 'string' ? a.details.actor : undefined;
    const by = actor && actor !== a.identity.name ? `; changed by ${actor}` : '';
    return `person: ${a.identity.name}${via ? ` ${via}` : ''} (named by the IAM event)${by}${a.sourceIp ? ` from ${a.sourceIp}` : ''}`;
  }
  if (a.identity?.name && attribution) {
    const how =
      attribution.method === 'login-name'
        ? `${attribution.confidence}: ${METHOD_TEXT['login-name']}`
        : (METHOD_TEXT[attribution.method] ?? attribution.method);
    return `person: ${a.identity.name}${via ? ` ${via}` : ''} (${how})${a.sourceIp ? `, from ${a.sourceIp}` : ''}`;
  }
  if (!a.identity && a.group && a.loginUser !== undefined) {
    // A group login nobody could be tied to.
    return `person: nobody can be named (${METHOD_TEXT.unattributed}); login name '${a.loginUser}' ${via}${a.sourceIp ? ` from ${a.sourceIp}` : ''}`;
  }
  if (a.loginUser || a.sourceIp)
    return `login: ${a.loginUser ?? '?'}${a.sourceIp ? ` from ${a.sourceIp}` : ''}${via ? ` ${via}` : ''}`;
  return via ? `account: ${via}` : 'no person involved';
}

export function formatSummary(input: SummaryInput): string {
  const { manifest, stats, alerts, coverage, score, timings } = input;
  const c = manifest.counts;
  const out: string[] = [];
  const dead = Object.values(stats.deadLetters).reduce((s, x) => s + (x ?? 0), 0);
  out.push(`HeatWave IAM audit demo (seed ${manifest.seed}, scale ${manifest.scale})`);
  out.push(
    `  fleet     ${c.dbSystems} DB systems (${c.mysqlFiles} audit log files, ${c.collectorFiles} collector streams), ${c.users} IAM users, ${c.groups} groups`,
  );
  out.push(
    `  window    ${manifest.truth.window.from.slice(0, 16)}Z .. ${manifest.truth.window.to.slice(0, 16)}Z`,
  );
  out.push(
    `  input     ${grouped(c.mysqlEvents)} MySQL audit events, ${grouped(c.iamEvents)} OCI audit events (${grouped(c.iamDeliveries)} deliveries) in ${c.mysqlFiles + c.collectorFiles + c.iamFiles} files, ${(c.bytes / 1e6).toFixed(1)} MB`,
  );
  out.push(
    `  pipeline  ${grouped(stats.received)} records: ${grouped(stats.processed)} processed, ${grouped(stats.duplicates)} duplicates, ${grouped(stats.ignored)} ignored, ${grouped(dead)} dead letters; ${seconds(timings.pipeline)} (${grouped(Math.round(stats.received / (timings.pipeline / 1000)))} records/s)`,
  );
  out.push(
    `  total     ${seconds(timings.total)} (generation ${seconds(timings.generate)}); outputs in ${input.out}`,
  );
  out.push('');

  // Alerts by rule and severity.
  out.push('Alerts by rule and severity');
  const rules = score.rules.map((r) => r.rule);
  const severities = [...SEVERITIES].reverse();
  const rows = [['  rule', ...severities, 'total']];
  for (const rule of rules) {
    const own = alerts.filter((a) => a.rule === rule);
    rows.push([
      `  ${rule}`,
      ...severities.map((s) => String(own.filter((a) => a.severity === s).length || '.')),
      String(own.length),
    ]);
  }
  rows.push([
    '  all rules',
    ...severities.map((s) => String(alerts.filter((a) => a.severity === s).length)),
    String(alerts.length),
  ]);
  out.push(...table(rows, ['l', ...severities.map(() => 'r' as const), 'r']));
  out.push('');

  // Top incidents: what the ground truth calls incidents (or cannot explain), most severe first;
  // alerts from expected churn are summed up in one line.
  const churn = alerts.filter((a) => score.explainedBy.get(a.id)?.kind === 'churn');
  const ranked = alerts
    .filter((a) => score.explainedBy.get(a.id)?.kind !== 'churn')
    .sort((a, b) => RANK[a.severity] - RANK[b.severity] || (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  out.push(`Top incidents (${Math.min(TOP, ranked.length)} of ${ranked.length}, most severe first)`);
  ranked.slice(0, TOP).forEach((a, i) => {
    const truth = score.explainedBy.get(a.id);
    out.push(
      `  ${String(i + 1).padStart(2)}. ${a.severity.toUpperCase().padEnd(8)} ${shortTime(a.time)}  ${a.rule}${a.dbSystem ? `  on ${a.dbSystem.name}` : ''}`,
    );
    out.push(`      ${a.title}`);
    out.push(`      ${describePerson(a)}`);
    out.push(
      `      ground truth: ${truth ? `injected incident: ${truth.story}` : 'NOT EXPLAINED (a false positive)'}`,
    );
  });
  if (churn.length > 0) {
    const byRule = new Map<string, number>();
    for (const a of churn) byRule.set(a.rule, (byRule.get(a.rule) ?? 0) + 1);
    const parts = [...byRule].map(([rule, k]) => `${rule} ${k}`).join(', ');
    out.push(
      `  + ${churn.length} alerts from expected churn (DBA grants, joiners and leavers, personal accounts, first uses): ${parts}`,
    );
  }
  out.push('');

  // Attribution coverage.
  const b = coverage.byConfidence;
  const m = coverage.byMethod;
  out.push(
    `Attribution coverage (shares of the ${grouped(coverage.iam)} IAM sessions; ${grouped(coverage.sessions)} successful sessions in all)`,
  );
  out.push(
    ...table(
      [
        [
          '  verified',
          grouped(b.verified),
          shareOfIam(coverage, b.verified),
          `1-to-1 account ${grouped(m['mapped-user'] ?? 0)}, external user ${grouped(m['external-user'] ?? 0)}`,
        ],
        [
          '  corroborated',
          grouped(b.corroborated),
          shareOfIam(coverage, b.corroborated),
          `login name + sign-on, or the only member signed on from the IP (${grouped(m['signon-correlated'] ?? 0)})`,
        ],
        [
          '  asserted',
          grouped(b.asserted),
          shareOfIam(coverage, b.asserted),
          'login name only, no recent sign-on',
        ],
        [
          '  unattributed',
          grouped(b.unattributed),
          shareOfIam(coverage, b.unattributed),
          'nobody can be named',
        ],
      ],
      ['l', 'r', 'r', 'l'],
    ),
  );
  out.push(
    `  plus ${grouped(coverage.local)} local-account sessions (applications, monitoring, admin) and ${grouped(coverage.failedLogins)} failed logins`,
  );
  out.push('');

  // Precision and recall.
  out.push('Precision and recall against the ground truth');
  const prRows = [['  rule', 'alerts', 'explained', 'expected', 'found', 'precision', 'recall']];
  for (const r of [...score.rules, score.total]) {
    prRows.push([
      `  ${r.rule}`,
      String(r.alerts),
      String(r.explained),
      String(r.expected),
      String(r.found),
      r.precision.toFixed(2),
      r.recall.toFixed(2),
    ]);
  }
  out.push(...table(prRows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']));
  for (const a of score.unexplained.slice(0, 10)) out.push(`  unexplained: ${a.rule} ${a.time} ${a.title}`);
  for (const e of score.missed.slice(0, 10)) out.push(`  missed: ${e.rule} ${e.match.from} ${e.story}`);
  out.push('');
  out.push(
    `Compliance reports of the window (HTML; JSON beside them, CSV in ${join(input.reports.dir, 'csv')})`,
  );
  const width = Math.max(...input.reports.html.map((r) => r.title.length));
  for (const r of input.reports.html) out.push(`  ${r.title.padEnd(width)}  ${r.path}`);

  if (input.routes.length > 0) {
    out.push('');
    out.push(`Routes: where these alerts would go (routes of ${input.out}/config.yaml; nothing is sent)`);
    const routeRows = [['  route', 'alerts', 'resolved', 'maintenance', 'repeats', 'messages', '  output']];
    for (const r of input.routes)
      routeRows.push([
        `  ${r.route}`,
        String(r.alerts),
        String(r.resolutions),
        String(r.maintenance),
        String(r.suppressed),
        String(r.messages),
        `  ${r.output}`,
      ]);
    out.push(...table(routeRows, ['l', 'r', 'r', 'r', 'r', 'r', 'l']));
    out.push(
      '  maintenance and repeats: muted on that route, still stored and reported, and counted in its digests',
    );
  }
  return `${out.join('\n')}\n`;
}
