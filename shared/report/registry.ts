// The reports, in the order `report all` writes them.
import type { ReportId } from '../../schemas/report.js';
import { accessReview } from './access-review.js';
import { alertSummary } from './alert-summary.js';
import { attributionEvidence } from './attribution-evidence.js';
import { breakGlassLog } from './break-glass-log.js';
import { failedAccess } from './failed-access.js';
import { privilegedChanges } from './privileged-changes.js';
import type { ReportDefinition } from './report.js';

export const REPORTS: readonly ReportDefinition[] = [
  accessReview,
  breakGlassLog,
  attributionEvidence,
  privilegedChanges,
  failedAccess,
  alertSummary,
];

export function reportDefinition(id: ReportId): ReportDefinition {
  const found = REPORTS.find((r) => r.id === id);
  if (found === undefined) throw new Error(`no report ${id}`);
  return found;
}
