// Transport envelopes around audit records that are validated before they are opened.
// The records inside are validated by their own schemas (mysql-audit.ts, oci-audit.ts); the
// envelopes that only hold records (Logging Search rows and responses, ListEvents pages) are
// recognized by shape in shared/decode/classify.ts (envelopeContent).
import { z } from 'zod';
import { GAP_REASONS } from './events.js';

/** Connector Hub Streaming source / `getMessages` item: the record is the base64 `value`. */
export const StreamMessageSchema = z.looseObject({
  stream: z.string(),
  partition: z.union([z.string(), z.number()]),
  /** base64, or null when the producer set no key. */
  key: z.string().nullish(),
  /** base64 of the record's UTF-8 JSON. */
  value: z.string(),
  offset: z.union([z.number(), z.string()]),
  timestamp: z.union([z.string(), z.number()]).optional(),
});

/** How a MySQL audit event travels on a stream: the raw event plus the DB system (and instance) it came from. */
export const CollectorRecordSchema = z.looseObject({
  source: z.literal('mysql-audit'),
  dbSystemId: z.string().min(1),
  dbSystemName: z.string().nullish(),
  /** The instance whose log it was read from (`collect`); absent for a DB system's single log. */
  instance: z.string().min(1).nullish(),
  event: z.record(z.string(), z.unknown()),
});

export type CollectorRecord = z.infer<typeof CollectorRecordSchema>;

const optionalText = (v: unknown, min = 0) =>
  v === undefined || v === null || (typeof v === 'string' && v.length >= min);

/**
 * The record itself when it has the usual shape (checked by hand: no copy), else zod's reading of
 * it, whose issues name what is wrong.
 */
export function parseCollectorRecord(value: Record<string, unknown>): z.ZodSafeParseResult<CollectorRecord> {
  const { source, dbSystemId, dbSystemName, instance, event } = value;
  if (
    source === 'mysql-audit' &&
    typeof dbSystemId === 'string' &&
    dbSystemId.length > 0 &&
    optionalText(dbSystemName) &&
    optionalText(instance, 1) &&
    typeof event === 'object' &&
    event !== null &&
    !Array.isArray(event)
  ) {
    return { success: true, data: value as CollectorRecord };
  }
  return CollectorRecordSchema.safeParse(value);
}

/** A gap in an audit trail, as the collector reports it next to the records (schemas/events.ts GapEvent). */
export const GapRecordSchema = z.looseObject({
  source: z.literal('audit-gap'),
  trail: z.enum(['mysql-audit', 'oci-audit']),
  dbSystemId: z.string().min(1).nullish(),
  dbSystemName: z.string().nullish(),
  instance: z.string().min(1).nullish(),
  /** Whether the instance is the DB system's primary endpoint, whose events carry no instance (they are the DB system's own); the collector always says. */
  primary: z.boolean().nullish(),
  reason: z.enum(GAP_REASONS),
  from: z.iso.datetime(),
  to: z.iso.datetime().nullish(),
  skipped: z.number().int().nonnegative().nullish(),
  detail: z.string().max(1000).nullish(),
});
export type GapRecord = z.infer<typeof GapRecordSchema>;
