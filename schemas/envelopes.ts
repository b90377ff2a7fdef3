// Transport envelopes around audit records.
// The records inside are validated by their own schemas (mysql-audit.ts, oci-audit.ts).
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

/** Logging Search result row: `logContent` is the log entry (CloudEvents 1.0 for `_Audit`). */
export const SearchRowSchema = z.looseObject({
  datetime: z.union([z.number(), z.string()]).optional(),
  logContent: z.unknown(),
});

/** A row as the SDK and the CLI return it: `{data:{datetime, logContent}}`. */
export const WrappedSearchRowSchema = z.looseObject({ data: SearchRowSchema });

/** `searchLogs` response body `{results, fields?, summary?}`. */
export const SearchResponseSchema = z.looseObject({
  results: z.array(z.unknown()),
  summary: z.looseObject({ resultCount: z.number().optional() }).nullish(),
});

/** The same response as the OCI CLI (`{data:{...}}`) or the SDK (`{searchResponse:{...}}`) prints it. */
export const WrappedSearchResponseSchema = z.union([
  z.looseObject({ data: SearchResponseSchema }),
  z.looseObject({ searchResponse: SearchResponseSchema }),
]);

/** Audit API `ListEvents` page: SDK `{items}` or OCI CLI `{data:[...]}`; a bare array needs no envelope. */
export const ListEventsResponseSchema = z.union([
  z.looseObject({ items: z.array(z.unknown()) }),
  z.looseObject({ data: z.array(z.unknown()) }),
]);

/** How a MySQL audit event travels on a stream: the raw event plus the DB system it came from. */
export const CollectorRecordSchema = z.looseObject({
  source: z.literal('mysql-audit'),
  dbSystemId: z.string().min(1),
  dbSystemName: z.string().nullish(),
  event: z.record(z.string(), z.unknown()),
});

export type StreamMessage = z.infer<typeof StreamMessageSchema>;
export type SearchRow = z.infer<typeof SearchRowSchema>;
export type SearchResponse = z.infer<typeof SearchResponseSchema>;
export type ListEventsResponse = z.infer<typeof ListEventsResponseSchema>;
export type CollectorRecord = z.infer<typeof CollectorRecordSchema>;
