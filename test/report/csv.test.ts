// CSV reports: one RFC 4180 file per table, and no text cell a spreadsheet would run as a formula.
import { describe, expect, it } from 'vitest';
import { csvField, renderCsv } from '../../shared/report/render-csv.js';
import { allReports, FORMULA, HOSTILE, scenarioStore } from './report-fixtures.js';

/** RFC 4180 records of a CSV text (quoted fields, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += c;
    i++;
  }
  if (field !== '' || record.length > 0) throw new Error('CSV text does not end with CRLF');
  return records;
}

describe('csvField', () => {
  it.each(['=1+2', '+1', '-1+2', '@SUM(A1)', '\tx', '\rx', '=HYPERLINK("http://x")'])(
    'neutralises text starting like a formula: %j',
    (text) => {
      const field = csvField(text);
      expect(parseCsv(`${field}\r\n`)).toEqual([[`'${text}`]]);
    },
  );

  it('quotes text, doubles quotes, keeps numbers, flags and empties plain, joins lists', () => {
    expect(csvField('a,"b"\nc')).toBe('"a,""b""\nc"');
    expect(csvField(-5)).toBe('-5');
    expect(csvField(12.5)).toBe('12.5');
    expect(csvField(true)).toBe('true');
    expect(csvField(null)).toBe('');
    expect(csvField(['x', '=y'])).toBe('"x; =y"');
    expect(csvField(['=x', 'y'])).toBe(`"'=x; y"`);
    expect(csvField('safe=ish')).toBe('"safe=ish"');
  });
});

describe('renderCsv', () => {
  it('writes a summary and one file per table, whose text cells never start a formula', async () => {
    const store = await scenarioStore();
    const docs = await allReports(store);
    await store.close();
    let sawFormula = false;
    for (const doc of docs) {
      const files = renderCsv(doc);
      expect(files.map((f) => f.name)).toEqual([
        `${doc.report}.summary.csv`,
        ...doc.sections.map((s) => `${doc.report}.${s.id}.csv`),
      ]);
      for (const [i, s] of doc.sections.entries()) {
        const records = parseCsv(files[i + 1]!.text);
        expect(records[0]).toEqual(s.table.columns.map((c) => c.id));
        expect(records).toHaveLength(s.table.rows.length + 1);
        for (const r of records.slice(1)) {
          expect(r).toHaveLength(s.table.columns.length);
          for (const cell of r)
            if (/^[=+\-@\t\r]/.test(cell)) expect(Number.isFinite(Number(cell))).toBe(true);
          if (r.includes(`'${FORMULA}`)) sawFormula = true;
        }
      }
      const summary = parseCsv(files[0]!.text);
      expect(summary.slice(0, 3)).toEqual([
        ['field', 'value'],
        ['report', doc.report],
        ['title', doc.title],
      ]);
    }
    expect(sawFormula).toBe(true);
    const attribution = renderCsv(docs.find((d) => d.report === 'attribution-evidence')!);
    expect(parseCsv(attribution.find((f) => f.name.endsWith('.not-tied.csv'))!.text)[2]).toContain(HOSTILE);
  });
});
