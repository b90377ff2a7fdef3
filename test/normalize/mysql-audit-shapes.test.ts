// The hand check of common MySQL audit record shapes (schemas/mysql-audit.ts) answers exactly as
// the zod schemas do: the same records accepted, the same values read, every other record left
// to zod (whose issues make the dead letter's message).
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GenericMysqlAuditRecordSchema,
  KnownMysqlAuditRecordSchema,
  parseMysqlAuditRecord,
} from '../../schemas/mysql-audit.js';
import { runs } from '../helpers/property.js';

type Json = Record<string, unknown>;

const SAMPLES: Json[] = JSON.parse(
  readFileSync(new URL('../events/mysql-audit/all-classes.pretty.json', import.meta.url), 'utf8'),
);
const COMMON = SAMPLES.filter((r) => ['connection', 'general', 'table_access'].includes(r.class as string));

/** What the schemas alone say of a record. */
function byZod(raw: unknown) {
  const cls = (raw as Json).class;
  const known = ['audit', 'connection', 'general', 'table_access'].includes(cls as string);
  const parsed = (known ? KnownMysqlAuditRecordSchema : GenericMysqlAuditRecordSchema).safeParse(raw);
  return parsed.success
    ? { success: true, record: parsed.data }
    : { success: false, issues: parsed.error.issues };
}

function byParse(raw: unknown) {
  const parsed = parseMysqlAuditRecord(raw);
  return parsed.success
    ? { success: true, record: parsed.data.record }
    : { success: false, issues: parsed.error.issues };
}

const value = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.string({ maxLength: 4 }),
  fc.constantFrom('', '12', ' 7 ', '1045', 'x1'),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constant(2 ** 60),
  fc.boolean(),
  fc.constant([]),
  fc.constant({}),
  fc.constant({ user: 'u', status: 0 }),
);
const FIELDS = [
  'timestamp',
  'id',
  'class',
  'event',
  'connection_id',
  'account',
  'login',
  'connection_data',
  'general_data',
  'table_access_data',
  'query_statistics',
];
const NESTED = [
  ...['user', 'host', 'os', 'ip', 'proxy'],
  ...['status', 'db', 'query', 'sql_command', 'command', 'table', 'connection_type', 'connection_attributes'],
  ...['query_time', 'rows_sent', 'rows_examined', 'bytes_received', 'bytes_sent'],
];

/** A sample of a common class with some fields, top-level or one level down, replaced. */
const mutated = fc
  .tuple(
    fc.constantFrom(...COMMON),
    fc.array(fc.tuple(fc.constantFrom(...FIELDS), fc.option(fc.constantFrom(...NESTED)), value), {
      maxLength: 3,
    }),
  )
  .map(([sample, edits]) => {
    const r = structuredClone(sample);
    // A copy of each value: the constants are shared, and a later edit may write inside one.
    for (const [field, nested, edit] of edits) {
      const v = structuredClone(edit);
      const target = r[field];
      if (nested !== null && typeof target === 'object' && target !== null) (target as Json)[nested] = v;
      else r[field] = v;
    }
    return r;
  });

describe('the hand check of common MySQL audit record shapes', () => {
  it('takes the common samples as they are, without copying them', () => {
    expect(COMMON.length).toBeGreaterThan(4);
    for (const raw of COMMON) {
      const parsed = parseMysqlAuditRecord(raw);
      expect(parsed.success && parsed.data.record).toBe(raw);
      expect(byZod(raw)).toEqual({ success: true, record: raw });
    }
  });

  it('leaves numbers written as text to zod, which converts them', () => {
    const raw = { ...COMMON[0]!, id: '12' };
    const parsed = parseMysqlAuditRecord(raw);
    expect(parsed.success && parsed.data.record.id).toBe(12);
  });

  it('agrees with zod when any one field of a common sample, or of its objects, holds any kind of value', () => {
    // Every field the hand check reads, each with every kind of value: a field it forgets to
    // check, or checks for the wrong type, makes it take a record zod refuses or refuse one zod takes.
    const kinds = [undefined, null, '', 'x', ' 7 ', 7, 1.5, 2 ** 60, true, [], {}];
    let checked = 0;
    for (const sample of COMMON)
      for (const field of FIELDS) {
        const inner = sample[field];
        const targets = typeof inner === 'object' && inner !== null ? [null, ...NESTED] : [null];
        for (const nested of targets)
          for (const v of kinds) {
            const r = structuredClone(sample);
            if (nested === null) r[field] = v;
            else (r[field] as Json)[nested] = v;
            expect(
              byParse(r),
              `${field}${nested === null ? '' : `.${nested}`} = ${JSON.stringify(v)}`,
            ).toEqual(byZod(r));
            checked++;
          }
      }
    expect(checked).toBeGreaterThan(5000);
  });

  it('agrees with zod on any record: what is accepted, what is read, and the issues of the rest', () => {
    fc.assert(
      fc.property(mutated, (raw) => {
        expect(byParse(raw)).toEqual(byZod(raw));
      }),
      runs(1500),
    );
  });
});
