// A report document in an output format, as the files it makes (names relative to a folder or
// an object prefix).
import type { ReportDocument, ReportFormat } from '../../schemas/report.js';
import { jsonText } from '../emit/formats/format.js';
import { renderCsv } from './render-csv.js';
import { renderHtml } from './render-html.js';

export type RenderedFile = { name: string; contentType: string; text: string };

export function renderReport(doc: ReportDocument, format: ReportFormat): RenderedFile[] {
  switch (format) {
    case 'html':
      return [{ name: `${doc.report}.html`, contentType: 'text/html; charset=utf-8', text: renderHtml(doc) }];
    case 'json':
      return [{ name: `${doc.report}.json`, contentType: 'application/json', text: `${jsonText(doc, 2)}\n` }];
    case 'csv':
      return renderCsv(doc).map((f) => ({ ...f, contentType: 'text/csv; charset=utf-8' }));
  }
}
