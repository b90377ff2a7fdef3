// The HTML rendering's own choices, read from the markup (the browser's view of it is
// html-chromium.test.ts).
import { describe, expect, it } from 'vitest';
import type { Chart, ReportDocument } from '../../schemas/report.js';
import { renderHtml } from '../../shared/report/render-html.js';

function withChart(chart: Chart): ReportDocument {
  const period = { from: '2026-11-02T00:00:00.000Z', to: '2026-11-03T00:00:00.000Z' };
  return {
    schema: 'heatwave-iam-audit/report/1',
    report: 'break-glass-log',
    title: 'Break-glass log',
    description: 'd',
    controls: [],
    period,
    previousPeriod: { from: '2026-11-01T00:00:00.000Z', to: period.from },
    dbSystem: null,
    generatedAt: period.to,
    product: { name: 'heatwave-iam-audit', version: '0' },
    figures: [],
    sections: [
      {
        id: 'grants',
        title: 'Grants',
        description: 'd',
        chart,
        table: { columns: [{ id: 'person', title: 'Person', type: 'text' }], rows: [], totalRows: 0 },
      },
    ],
  };
}

/** The numbers written beside the bars of the chart, in order. */
const barLabels = (html: string) =>
  [
    ...html.matchAll(
      /<text (?:class="bar-value" )?x="[\d.]+" y="[\d.]+" dominant-baseline="middle">([^<]+)</g,
    ),
  ].map((m) => m[1]);

describe('charts', () => {
  it('side by side, each bar says its own value; stacked, the row says its total', () => {
    const held = { name: 'Held', values: [26.3, 1.5] };
    const maximum = { name: 'Maximum', values: [4, 4] };
    const chart = {
      kind: 'bar' as const,
      title: 'Hours',
      categories: ['alice', 'bob'],
      series: [held, maximum],
    };
    // Bob held 1.5 h of 4: "4" alone beside his row read as four hours held.
    expect(barLabels(renderHtml(withChart({ ...chart, stacked: false })))).toEqual(['26.3', '4', '1.5', '4']);
    expect(barLabels(renderHtml(withChart({ ...chart, stacked: true })))).toEqual(['30.3', '5.5']);
  });
});

describe('chart labels', () => {
  it('a long one is cut with an ellipsis, never inside a character', () => {
    // An emoji (two UTF-16 code units) across the cut at 47: it goes whole.
    const name = `${'x'.repeat(46)}\u{1F600}${'y'.repeat(10)}`;
    const html = renderHtml(
      withChart({
        kind: 'bar',
        title: 'c',
        categories: [name],
        series: [{ name: 'Held', values: [1] }],
        stacked: false,
      }),
    );
    expect(html).toContain(`>${'x'.repeat(46)}…<`);
    expect(html).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});

describe('tables', () => {
  it('a list of statements is set as code, in a cell as wide as a statement', () => {
    const doc = withChart({ kind: 'bar', title: 'c', categories: [], series: [], stacked: false });
    const grants = ['GRANT USAGE ON *.* TO `app`@`%`', 'GRANT SELECT ON `orders`.* TO `app`@`%`'];
    doc.sections[0]!.table = {
      columns: [{ id: 'privileges', title: 'Privileges', type: 'code' }],
      rows: [[grants]],
      totalRows: 1,
    };
    expect(renderHtml(doc)).toContain(
      '<td class="code"><ul><li><code>GRANT USAGE ON *.* TO `app`@`%`</code></li><li><code>GRANT SELECT ON `orders`.* TO `app`@`%`</code></li></ul></td>',
    );
  });

  it('shows the controls of bidirectional text as symbols, so that no name displays reversed', () => {
    const doc = withChart({ kind: 'bar', title: 'c', categories: [], series: [], stacked: false });
    const names = [
      'a\u202egnp.exe',
      '\u2067admin\u2069',
      'x\u200fy\u200ez',
      '\u202a\u202b\u202c\u202d\u2066\u2068\u061c',
    ];
    doc.sections[0]!.table = {
      columns: [{ id: 'person', title: 'Person', type: 'text' }],
      rows: names.map((n) => [n]),
      totalRows: 4,
    };
    const html = renderHtml(doc);
    expect(html).not.toMatch(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
    expect(html).toContain('>a\ufffdgnp.exe</td>');
    expect(html).toContain('>\ufffdadmin\ufffd</td>');
    expect(html).toContain('>x\ufffdy\ufffdz</td>');
    expect(html).toContain(`>${'\ufffd'.repeat(7)}</td>`);
  });
});

describe('times', () => {
  it('are shown to the second, in UTC and said so, everywhere: cells, the period, the footer', () => {
    const doc = withChart({ kind: 'bar', title: 'c', categories: [], series: [], stacked: false });
    doc.period = { from: '2026-11-02T00:00:30.000Z', to: '2026-11-03T00:00:00.000Z' };
    doc.previousPeriod = { from: '2026-11-01T00:00:30.000Z', to: doc.period.from };
    doc.generatedAt = '2026-11-03T06:15:42.250Z';
    // A session at 09:00:59 and a revocation at 09:00:01: by the minute they were the same.
    doc.sections[0]!.table = {
      columns: [
        { id: 'what', title: 'What', type: 'text' },
        { id: 'time', title: 'Time', type: 'time' },
      ],
      rows: [
        ['session', '2026-11-02T09:00:59.999Z'],
        ['revocation', '2026-11-02T09:00:01.000Z'],
        ['hostile', '2026-11-02T09:00:01Z"><b>x</b>'],
      ],
      totalRows: 3,
    };
    const html = renderHtml(doc);
    // Cut, not rounded: 09:00:59.999 is not shown as 09:01:00.
    expect(html).toContain(
      '<td class="time"><time datetime="2026-11-02T09:00:59.999Z">2026-11-02 09:00:59 UTC</time></td>',
    );
    expect(html).toContain(
      '<td class="time"><time datetime="2026-11-02T09:00:01.000Z">2026-11-02 09:00:01 UTC</time></td>',
    );
    expect(html).toContain(
      '<time datetime="2026-11-02T09:00:01Z&quot;&gt;&lt;b&gt;x&lt;/b&gt;">2026-11-02 09:00:01Z&quot;&gt;&lt;b&gt;x&lt;/b&gt;</time>',
    );
    expect(html).not.toContain('<b>x</b>');
    expect(html).toContain('<b>Period:</b> 2026-11-02 00:00:30 UTC to 2026-11-03 00:00:00 UTC');
    expect(html).toContain(
      '<title>Break-glass log: 2026-11-02 00:00:30 UTC to 2026-11-03 00:00:00 UTC</title>',
    );
    expect(html).toContain('Generated 2026-11-03 06:15:42 UTC by');
    expect(html).toContain(
      'the previous period for trends is 2026-11-01 00:00:30 UTC to 2026-11-02 00:00:30 UTC',
    );
    // No time to the minute alone is left anywhere.
    expect(html).not.toMatch(/ \d\d:\d\d UTC/);
  });
});
