// Builds reports from a state store for a period: the correlation facts and the period's alerts
// are read once, then the sessions active in the period are read in one pass and fed to every report.
import { type Alert, type Resolution, recordKey } from '../../schemas/alert.js';
import type { ReportDocument, ReportId } from '../../schemas/report.js';
import { PRODUCT } from '../emit/formats/format.js';
import { AuditError } from '../errors.js';
import type { LedgerQuery } from '../state/ledger.js';
import type { StateStore } from '../state/state-store.js';
import { AuditFacts } from './audit-facts.js';
import { reportDefinition } from './registry.js';
import { iso, lastOccurrence, type Period, type ReportContext } from './report.js';

export type ReportRequest = {
  reports: readonly ReportId[];
  period: Period;
  /** The period compared with (default: the one of the same length before `period`). */
  previous?: Period | undefined;
  /** A DB system OCID or name to limit the reports to. */
  dbSystem?: string;
  /** When the reports are made (shown in them). */
  generatedAt: number;
};

export async function runReports(store: StateStore, request: ReportRequest): Promise<ReportDocument[]> {
  const { period } = request;
  if (!(period.from < period.to)) throw new AuditError('USAGE', 'the report period must end after it starts');
  const previous = request.previous ?? { from: period.from - (period.to - period.from), to: period.from };
  const facts = new AuditFacts(await store.loadEntities());
  const db = request.dbSystem === undefined ? undefined : knownDbSystem(facts, request.dbSystem);

  const alerts: Alert[] = [];
  const previousAlerts: Alert[] = [];
  const repeatedAlerts: Alert[] = [];
  const previousRepeated: Alert[] = [];
  const resolutions = new Map<string, Resolution>();
  // With the alerts raised before the previous period whose repeats went on into it (active).
  for await (const a of store.alerts({ from: previous.from, to: period.to, active: true })) {
    if (db !== undefined && a.dbSystem !== null && a.dbSystem.id !== db.id) continue;
    // Findings only: a resolution record says when one ended (by the period's end), and is not counted again.
    if (a.status === 'resolved') {
      if (a.resolution) resolutions.set(a.id, a.resolution);
      continue;
    }
    const first = Date.parse(a.time);
    if (first >= period.from) alerts.push(a);
    else {
      (first >= previous.from ? previousAlerts : previousRepeated).push(a);
      if (lastOccurrence(a) >= period.from) repeatedAlerts.push(a);
    }
  }
  // An alert raised long before may have been resolved before the previous period.
  const unresolved = repeatedAlerts.filter((a) => !resolutions.has(a.id));
  for (const r of await store.loadAlerts(unresolved.map((a) => recordKey({ id: a.id, status: 'resolved' }))))
    if (r.resolution && Date.parse(r.resolution.time) < period.to) resolutions.set(r.id, r.resolution);
  const ctx: ReportContext = {
    period,
    previous,
    dbSystem: db?.id,
    facts,
    alerts,
    previousAlerts,
    repeatedAlerts,
    previousRepeated,
    resolutions,
  };
  const definitions = request.reports.map(reportDefinition);
  const builders = definitions.map((d) => d.start(ctx));
  // Every session active in the period: each report takes those it counts (connectedIn).
  for await (const s of store.sessions({ ...period, active: true, ...(db ? { dbSystem: db.id } : {}) }))
    for (const b of builders) b.session(s);

  return definitions.map((d, i) => ({
    schema: 'heatwave-iam-audit/report/1',
    report: d.id,
    title: d.title,
    description: d.description,
    controls: d.controls,
    period: { from: iso(period.from), to: iso(period.to) },
    previousPeriod: { from: iso(previous.from), to: iso(previous.to) },
    dbSystem: db ?? null,
    generatedAt: iso(request.generatedAt),
    product: { name: PRODUCT.name, version: PRODUCT.version },
    ...builders[i]!.finish(),
  }));
}

/** What a period in which the state holds neither a session nor an alert is said to be. */
export const NO_ACTIVITY = 'the state holds no session and no alert in this period';

/**
 * Whether the state holds a session active in `period` or an alert in it, raised or repeated there (on `dbSystem`, an OCID): reports of a
 * period with neither (a mistyped period, or a fleet whose audit events stopped reaching the
 * pipeline) say so.
 */
export async function holdsActivity(store: StateStore, period: Period, dbSystem?: string): Promise<boolean> {
  const query: LedgerQuery = dbSystem === undefined ? period : { ...period, dbSystem };
  for await (const _ of store.sessions({ ...query, active: true })) return true;
  // A DB system's reports list the alerts about none (IAM changes) too.
  for await (const a of store.alerts({ ...period, active: true }))
    if (dbSystem === undefined || a.dbSystem === null || a.dbSystem.id === dbSystem) return true;
  return false;
}

/** A DB system the state knows (by OCID or name); anything else is a usage error. */
export function knownDbSystem(facts: AuditFacts, wanted: string): { id: string; name: string } {
  const found = facts.findDbSystem(wanted);
  if (found === undefined)
    throw new AuditError(
      'USAGE',
      `--db-system ${wanted}: the state knows no DB system with this OCID or name`,
    );
  return found;
}
