// Transport envelopes around audit records that are validated before they are opened.
// The records inside are validated by their own schemas (mysql-audit.ts, oci-audit.ts); the
// envelopes that only hold records (Logging Search rows and responses, ListEvents pages) are
// recognized by shape in shared/decode/classify.ts (envelopeContent).
import { z } from 'zod';

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

/** How a MySQL audit event travels on a stream: the raw event plus the DB system it came from. */
export const CollectorRecordSchema = z.looseObject({
  source: z.literal('mysql-audit'),
  dbSystemId: z.string().min(1),
  dbSystemName: z.string().nullish(),
  event: z.record(z.string(), z.unknown()),
});
