// Connector Hub outages longer than its Logging source keeps data (24 hours). When delivery to
// the function keeps failing (a state store answering 502, a function that cannot start), the
// connector retries for as long as the source holds the data, then moves on to new data: what
// was ingested in between is never delivered.
//
// The function keeps a delivery mark in its state, committed with each batch: the latest
// `oracle.ingestedtime` of the `_Audit` records delivered, and when the function last worked
// (ingested a batch or ran a sweep, which Resource Scheduler sends every few minutes). A batch of
// `_Audit` records that arrives when the function has not worked for longer than the source's
// retention, and starts after the mark's records, follows a range that may be lost: it becomes an
// `audit.gap` (trail oci-audit, reason delivery-outage) whose detail is the `backfill` command that
// reads the range again from the Audit API (ListEvents keeps 90 days and more). A quiet `_Audit`
// (a filtered connector over a weekend) raises nothing while the sweeps run.
import type { GapRecord } from '../../schemas/envelopes.js';
import type { DecodedItem } from '../decode/read-input.js';
import { normalizeGap } from '../normalize/gap.js';
import { toIso } from '../time.js';

/** How long a Connector Hub Logging source keeps data that could not be delivered. */
export const CONNECTOR_HUB_RETENTION_MS = 24 * 60 * 60_000;

/** The pipeline position (committed with each batch) of the Connector Hub `_Audit` delivery. */
export const AUDIT_DELIVERY_POSITION = 'delivery:connector-hub:oci-audit';

export type DeliveryMark = {
  /** The latest `oracle.ingestedtime` delivered so far (ISO 8601). */
  ingested: string;
  /** When the function last worked: ingested a batch or swept (its clock, ISO 8601). */
  at: string;
};

/** The mark after a sweep: the function works (nothing to do before the first `_Audit` batch). */
export function sweptMark(previous: DeliveryMark | undefined, now: number): DeliveryMark | undefined {
  return previous === undefined ? undefined : { ...previous, at: toIso(now) };
}

const MINUTE = 60_000;

export type DeliveryCheck = {
  /** The batch, with an audit gap event first when a range may be lost. */
  items: DecodedItem[];
  /** The mark to commit with the batch; undefined before the first `_Audit` batch. */
  mark: DeliveryMark | undefined;
  gap: GapRecord | undefined;
};

/**
 * Checks a batch against the last delivery mark. `backfill(from, to)` renders the command that
 * reads the range again (log-safe: no secrets).
 */
export function checkAuditDelivery(opts: {
  items: DecodedItem[];
  previous: DeliveryMark | undefined;
  now: number;
  backfill: (from: string, to: string) => string;
  retentionMs?: number;
}): DeliveryCheck {
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const item of opts.items) {
    // An event that concerns nothing tells how far delivery went all the same.
    const ingested = auditField(item, 'ingestedTime');
    if (ingested === undefined) continue;
    const t = Date.parse(ingested);
    if (t < first) first = t;
    if (t > last) last = t;
  }
  const previous = opts.previous;
  if (!Number.isFinite(first))
    return { items: opts.items, mark: sweptMark(previous, opts.now), gap: undefined };
  const since = previous ? Date.parse(previous.ingested) : Number.NaN;
  const mark = {
    ingested: toIso(Math.max(last, Number.isNaN(since) ? last : since)),
    at: toIso(opts.now),
  };
  const retention = opts.retentionMs ?? CONNECTOR_HUB_RETENTION_MS;
  const downFor = previous ? opts.now - Date.parse(previous.at) : 0;
  // Within the retention, Connector Hub redelivers what failed; a batch that starts where the
  // last one ended lost nothing, however long the outage.
  if (!(downFor > retention && first - since > MINUTE)) return { items: opts.items, mark, gap: undefined };
  const from = toIso(since);
  const to = toIso(first);
  const hours = (downFor / 3_600_000).toFixed(1);
  const gap: GapRecord = {
    source: 'audit-gap',
    trail: 'oci-audit',
    reason: 'delivery-outage',
    from,
    to,
    detail:
      `The function took no batch and no sweep for ${hours} h, longer than a Connector Hub Logging source keeps data (${retention / 3_600_000} h): ` +
      `events ingested in this range may never arrive. Read them from the Audit API: ${opts.backfill(from, to)}`,
  };
  return { items: [{ type: 'event', event: normalizeGap(gap) }, ...opts.items], mark, gap };
}

/**
 * A field of an OCI Audit record of a batch: of an IAM event, or of an event that concerns nothing
 * (ignored), which tells it all the same.
 */
export function auditField(item: DecodedItem, field: 'ingestedTime' | 'tenantId'): string | undefined {
  if (item.type === 'ignored') return item[field];
  return item.type === 'event' && item.event.source === 'iam' ? item.event[field] : undefined;
}

/** The `backfill` command for a range: minute-aligned, over the tenancy and its sub-compartments. */
export function backfillCommand(opts: {
  from: string;
  to: string;
  compartment: string;
  config: string;
  state: string;
  scope: string;
}): string {
  const floor = toIso(Math.floor(Date.parse(opts.from) / MINUTE) * MINUTE);
  const ceil = toIso(Math.ceil(Date.parse(opts.to) / MINUTE) * MINUTE);
  return [
    'npx heatwave-iam-audit backfill --source audit --include-subcompartments',
    `--compartment ${opts.compartment}`,
    `--from ${floor}`,
    `--to ${ceil}`,
    `--config ${opts.config}`,
    `--state ${opts.state}`,
    `--scope ${opts.scope}`,
  ].join(' ');
}
