// A report as one self-contained HTML file: inline CSS and SVG charts, no script, no external
// request (a Content-Security-Policy forbids both, should anything slip through), and print CSS
// so that "print to PDF" gives a clean A4 document. Every text that comes from the store (user
// names, SQL, titles built from them) is escaped; control characters (and those of bidirectional text) are shown, not obeyed.
import { createHash } from 'node:crypto';
import type { Cell, Chart, Column, Figure, ReportDocument, Section } from '../../schemas/report.js';
import { cutAt, visible } from '../text.js';
import { utcSeconds } from '../time.js';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text for HTML content or a quoted attribute value, its controls shown (`visible`). */
export function escapeHtml(text: string): string {
  return visible(text).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const CSS = `
:root { --ink: #1d2430; --muted: #5c6675; --line: #d9dee5; --soft: #f4f6f9; --accent: #1c5fb8; --warn: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1440px; margin: 0 auto; padding: 24px 32px 48px; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 20px; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 19px; margin: 32px 0 4px; padding-top: 8px; border-top: 1px solid var(--line); }
.meta { color: var(--muted); margin: 2px 0; }
.meta b { color: var(--ink); font-weight: 600; }
.description { max-width: 80ch; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; margin: 16px 0; padding: 0; list-style: none; }
.figures li { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; background: var(--soft); }
.figures li.attention { border-color: var(--warn); background: #fdf1ef; }
.figures .value { display: block; font-size: 22px; font-weight: 650; }
.figures .label { display: block; color: var(--muted); font-size: 12.5px; }
nav ol { columns: 2; margin: 8px 0 0; padding-left: 20px; }
nav a { color: var(--accent); }
.note { color: var(--muted); font-size: 12.5px; margin: 4px 0 8px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin-top: 6px; }
caption { text-align: left; color: var(--muted); font-size: 12px; padding: 2px 0 4px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.empty { color: #9aa3ae; }
td.flag-true { color: var(--warn); font-weight: 600; }
td code { font: 11.5px/1.35 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
@media screen { td.code { min-width: 24em; } }
td ul { margin: 0; padding-left: 14px; }
td { overflow-wrap: break-word; }
td.token { min-width: 9em; }
.token { word-break: break-all; }
@media screen { .word, .token { white-space: nowrap; } }
figure { margin: 10px 0; }
figcaption { font-weight: 600; font-size: 13px; margin-bottom: 4px; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: #1d2430; }
svg .axis { stroke: #9aa3ae; stroke-width: 1; }
svg text.bar-value { font-size: 9.5px; }
svg .grid { stroke: #e6e9ee; stroke-width: 1; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 4px 0 0; padding: 0; list-style: none; font-size: 12px; color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 10.5px; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, .figures { break-inside: avoid; page-break-inside: avoid; }
  table { font-size: 9px; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  .table-wrap { overflow: visible; }
  a { color: inherit; text-decoration: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
`;

/** Only the style sheet above may apply: no script, no other style, no request of any kind. */
const CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'; img-src data:; base-uri 'none'; form-action 'none'`;

/** Colours of series named after severities and confidences; others take the palette in turn. */
const NAMED: Record<string, string> = {
  critical: '#9f1d1d',
  high: '#d9480f',
  medium: '#f0a202',
  low: '#3b82c4',
  info: '#98a2ae',
  verified: '#2b8a3e',
  corroborated: '#74b816',
  asserted: '#f0a202',
  none: '#c92a2a',
  Unused: '#c92a2a',
  Used: '#2b8a3e',
};
const PALETTE = ['#1c5fb8', '#98a2ae', '#2b8a3e', '#f0a202', '#9f1d1d', '#7048e8'];
/** Categories a chart shows (the table below it has them all). */
const CHART_CATEGORIES = 40;

/** Printed, text longer than this without a space may break anywhere. */
const LONG_TOKEN = 28;

const number = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 1 });

function duration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  return [d ? `${d} d` : '', h ? `${h} h` : '', m || (!d && !h) ? `${m} min` : ''].filter(Boolean).join(' ');
}

/**
 * Names and ids have no space to wrap at. On screen they stay on one line (the table scrolls
 * sideways): an OCID broken into a narrow column made every row of its table many lines high.
 * Printed, a long one (an OCID, a session key) breaks anywhere, for a table must fit the page.
 */
function wrapping(text: string): string {
  if (/\s/.test(text)) return '';
  return text.length > LONG_TOKEN ? ' class="token"' : ' class="word"';
}

function cell(value: Cell, col: Column): string {
  if (value === null || (Array.isArray(value) && value.length === 0)) return '<td class="empty">—</td>';
  if (Array.isArray(value))
    return col.type === 'code'
      ? `<td class="code"><ul>${value.map((v) => `<li><code>${escapeHtml(v)}</code></li>`).join('')}</ul></td>`
      : `<td><ul>${value.map((v) => `<li${wrapping(v)}>${escapeHtml(v)}</li>`).join('')}</ul></td>`;
  if (typeof value === 'boolean') return `<td class="flag-${value}">${value ? 'yes' : 'no'}</td>`;
  if (typeof value === 'number') {
    if (col.type === 'duration') return `<td class="num">${duration(value)}</td>`;
    if (col.type === 'percent') return `<td class="num">${number(value)} %</td>`;
    // An error code is shown as MySQL writes it (1045, not 1,045).
    if (col.type === 'number') return `<td class="num">${value}</td>`;
    return `<td class="num">${number(value)}</td>`;
  }
  if (col.type === 'time')
    return `<td class="time"><time datetime="${escapeHtml(value)}">${escapeHtml(utcSeconds(value))}</time></td>`;
  if (col.type === 'code') return `<td class="code"><code>${escapeHtml(value)}</code></td>`;
  return `<td${wrapping(value)}>${escapeHtml(value)}</td>`;
}

const numeric = (c: Column) =>
  c.type === 'count' || c.type === 'number' || c.type === 'percent' || c.type === 'duration';

function renderTable(s: Section): string {
  const t = s.table;
  const head = t.columns.map(
    (c) => `<th scope="col"${numeric(c) ? ' class="num"' : ''}>${escapeHtml(c.title)}</th>`,
  );
  const rows = t.rows.map((r) => `<tr>${r.map((v, i) => cell(v, t.columns[i]!)).join('')}</tr>`);
  const caption =
    t.totalRows === 0
      ? 'No rows in the period.'
      : t.totalRows > t.rows.length
        ? `The first ${number(t.rows.length)} of ${number(t.totalRows)} rows, in every format of the report (<code>export</code> and the SQL views have them all).`
        : `${number(t.totalRows)} row${t.totalRows === 1 ? '' : 's'}.`;
  return `<div class="table-wrap"><table><caption>${caption}</caption><thead><tr>${head.join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`;
}

/** 1, 2 or 5 times a power of ten, at least `rough`: grid lines people can read. */
function niceStep(rough: number): number {
  const power = 10 ** Math.floor(Math.log10(rough));
  return ([1, 2, 5, 10].find((m) => m * power >= rough) ?? 10) * power;
}

/** A horizontal bar chart: one row per category, the series side by side or stacked. */
function renderChart(chart: Chart, id: string): string {
  const categories = chart.categories.slice(0, CHART_CATEGORIES);
  if (categories.length === 0) return '';
  const series = chart.series;
  const colour = (name: string, i: number) => NAMED[name] ?? PALETTE[i % PALETTE.length]!;
  const value = (si: number, ci: number) => Math.max(0, series[si]?.values[ci] ?? 0);
  const totals = categories.map((_, ci) =>
    chart.stacked
      ? series.reduce((n, _s, si) => n + value(si, ci), 0)
      : Math.max(0, ...series.map((_s, si) => value(si, ci))),
  );
  const step = niceStep(Math.max(1, ...totals) / 4);
  const max = step * Math.ceil(Math.max(1, ...totals) / step);
  const labelWidth = Math.min(320, 14 + 6.8 * Math.max(...categories.map((c) => Math.min(c.length, 48))));
  const width = 900;
  const plot = width - labelWidth - 60;
  const grouped = !chart.stacked && series.length > 1;
  const barHeight = grouped ? 10 : 14;
  const rowHeight = chart.stacked ? 20 : series.length * barHeight + 8;
  const height = categories.length * rowHeight + 28;
  const x = (v: number) => (v / max) * plot;
  const parts: string[] = [];
  for (let tick = 0; tick <= max; tick += step) {
    const gx = labelWidth + x(tick);
    parts.push(`<line class="grid" x1="${gx}" y1="0" x2="${gx}" y2="${height - 22}"/>`);
    parts.push(`<text x="${gx}" y="${height - 8}" text-anchor="middle">${number(tick)}</text>`);
  }
  categories.forEach((c, ci) => {
    const top = ci * rowHeight + 4;
    const label = c.length > 48 ? `${cutAt(c, 47)}…` : c;
    parts.push(
      `<text x="${labelWidth - 6}" y="${top + rowHeight / 2}" text-anchor="end" dominant-baseline="middle">${escapeHtml(label)}</text>`,
    );
    let offset = 0;
    series.forEach((s, si) => {
      const v = value(si, ci);
      const w = x(v);
      const y = chart.stacked ? top + 1 : top + si * barHeight;
      const bx = labelWidth + (chart.stacked ? x(offset) : 0);
      if (w > 0)
        parts.push(
          `<rect x="${bx.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${barHeight - 1}" fill="${colour(s.name, si)}"><title>${escapeHtml(`${c}: ${s.name} ${number(v)}`)}</title></rect>`,
        );
      // Side by side, each bar says its own value (the longest one's alone read as the category's).
      if (grouped)
        parts.push(
          `<text class="bar-value" x="${(bx + w + 4).toFixed(1)}" y="${y + (barHeight - 1) / 2}" dominant-baseline="middle">${number(v)}</text>`,
        );
      offset += v;
    });
    if (!grouped)
      parts.push(
        `<text x="${labelWidth + x(totals[ci]!) + 4}" y="${top + rowHeight / 2}" dominant-baseline="middle">${number(totals[ci]!)}</text>`,
      );
  });
  parts.push(`<line class="axis" x1="${labelWidth}" y1="0" x2="${labelWidth}" y2="${height - 22}"/>`);
  const more =
    chart.categories.length > categories.length
      ? `<p class="note">The first ${categories.length} of ${chart.categories.length} shown; the table has them all.</p>`
      : '';
  const legend =
    series.length > 1
      ? `<ul class="legend">${series.map((s, i) => `<li><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="${colour(s.name, i)}"/></svg> ${escapeHtml(s.name)}</li>`).join('')}</ul>`
      : '';
  return `<figure><figcaption id="${id}-chart">${escapeHtml(chart.title)}</figcaption><svg role="img" aria-labelledby="${id}-chart" viewBox="0 0 ${width} ${height}" width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>${legend}${more}</figure>`;
}

function renderFigure(f: Figure): string {
  const value = typeof f.value === 'number' ? number(f.value) : f.value;
  return `<li${f.status === 'attention' ? ' class="attention"' : ''}><span class="value">${escapeHtml(value)}</span><span class="label">${escapeHtml(f.label)}</span></li>`;
}

export function renderHtml(doc: ReportDocument): string {
  const period = `${utcSeconds(doc.period.from)} to ${utcSeconds(doc.period.to)}`;
  const scope = doc.dbSystem ? `${doc.dbSystem.name} (${doc.dbSystem.id})` : 'every DB system';
  const sections = doc.sections.map(
    (s) =>
      `<section id="${s.id}"><h2>${escapeHtml(s.title)}</h2><p class="description">${escapeHtml(s.description)}</p>${s.chart ? renderChart(s.chart, s.id) : ''}${renderTable(s)}</section>`,
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${escapeHtml(`${doc.product.name} ${doc.product.version}`)}">
<title>${escapeHtml(`${doc.title}: ${period}`)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>${escapeHtml(doc.title)}</h1>
<p class="meta"><b>Period:</b> ${escapeHtml(period)} &nbsp; <b>Scope:</b> ${escapeHtml(scope)}</p>
<p class="meta"><b>Evidence for:</b> ${escapeHtml(doc.controls.join(', '))}</p>
<p class="description">${escapeHtml(doc.description)}</p>
</header>
<ul class="figures">${doc.figures.map(renderFigure).join('')}</ul>
<nav aria-label="Sections"><ol>${doc.sections.map((s) => `<li><a href="#${s.id}">${escapeHtml(s.title)}</a></li>`).join('')}</ol></nav>
${sections.join('\n')}
<footer>Generated ${escapeHtml(utcSeconds(doc.generatedAt))} by ${escapeHtml(`${doc.product.name} ${doc.product.version}`)} from its state store. Times are UTC, to the second; the period includes its start and excludes its end; the previous period for trends is ${escapeHtml(`${utcSeconds(doc.previousPeriod.from)} to ${utcSeconds(doc.previousPeriod.to)}`)}.</footer>
</main>
</body>
</html>
`;
}
