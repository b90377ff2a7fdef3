// CSV reports: one RFC 4180 file per table, and no text cell a spreadsheet would run as a formula.
import { describe, expect, it } from 'vitest';
import { csvField, renderCsv } from '../../shared/report/render-csv.js';
import { renderHtml } from '../../shared/report/render-html.js';
import { column, TABLE_ROW_LIMIT, table } from '../../shared/report/report.js';
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

  it('says in the summary how many rows each table had, and which tables were cut', async () => {
    const store = await scenarioStore();
    const [doc] = await allReports(store);
    await store.close();
    const ids = Array.from({ length: TABLE_ROW_LIMIT + 1 }, (_, i) => [`login${i}`]);
    doc!.sections[0]!.table = table([column('login', 'Login')], ids);
    doc!.sections[1]!.table = table([column('login', 'Login')], ids.slice(0, 2));
    const [summary, first, second] = renderCsv(doc!);
    const [cut, whole] = [doc!.sections[0]!.id, doc!.sections[1]!.id];
    expect(parseCsv(first!.text)).toHaveLength(TABLE_ROW_LIMIT + 1);
    expect(parseCsv(second!.text)).toHaveLength(3);
    const fields = new Map(parseCsv(summary!.text).map(([k, v]) => [k, v]));
    expect(fields.get(`rows:${cut}`)).toBe(String(TABLE_ROW_LIMIT + 1));
    expect(fields.get(`cut:${cut}`)).toBe(
      `${doc!.report}.${cut}.csv has the first 5000 of 5001 rows; export and the SQL views have them all`,
    );
    expect(fields.get(`rows:${whole}`)).toBe('2');
    expect(fields.has(`cut:${whole}`)).toBe(false);
    // The HTML caption says the same: no format of the report has the rest.
    expect(renderHtml(doc!)).toContain(
      '<caption>The first 5,000 of 5,001 rows, in every format of the report (<code>export</code> and the SQL views have them all).</caption>',
    );
  });
});
