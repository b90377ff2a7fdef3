// A record that could not be decoded or normalized. Messages never carry the record's text.
import { z } from 'zod';

export const DEAD_LETTER_CODES = [
  'JSON_INVALID', // not JSON, or a truncated JSON value
  'SCHEMA_INVALID', // JSON of a known kind, but fields of the wrong shape
  'UNKNOWN_KIND', // JSON that is no record kind we read
  'TOO_LARGE', // a record over the size limit
  'ENCODING_INVALID', // bad base64, bad gzip, or bytes that are not UTF-8 JSON
  'UNSAFE_KEY', // a prototype-polluting key such as __proto__
  'TOO_LATE', // older than the retention horizon: cannot be deduplicated any more
  'TIME_OUT_OF_RANGE', // dated after now plus the clock skew, or before 2010: it would move the watermark
  'NO_DB_SYSTEM', // a raw MySQL record whose DB system could not be determined
] as const;
export type DeadLetterCode = (typeof DEAD_LETTER_CODES)[number];

export const DeadLetterSchema = z.object({
  code: z.enum(DEAD_LETTER_CODES),
  /** Input name (file path, `batch`, stream id). */
  source: z.string(),
  /** 1-based line of the record's start, when read from a file. */
  line: z.number().optional(),
  /** Index of the record within its batch or array, when read from one. */
  index: z.number().optional(),
  /** The zod issue path inside the record (`["data","identity"]`), for SCHEMA_INVALID. */
  path: z.array(z.union([z.string(), z.number()])).optional(),
  /** Safe description: field names and expectations, never values. */
  message: z.string(),
});
export type DeadLetter = z.infer<typeof DeadLetterSchema>;

/** Where a record came from, carried to its dead letter. */
export type RecordLocation = { source: string; line?: number; index?: number };

/** Result of decoding or normalizing one record: a value, or a dead letter. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; dead: DeadLetter };
