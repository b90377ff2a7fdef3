// The HTML reports in a real headless Chromium: each renders with no console error and no network
// request; attacker-controlled user names, SQL and table names show as text and run nothing; and
// should markup ever reach the page unescaped, its Content-Security-Policy still lets nothing run
// or load. The access review is kept as a screenshot and a printed PDF (test artefacts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ReportDocument } from '../../schemas/report.js';
import { REPORTS } from '../../shared/report/registry.js';
import { renderHtml } from '../../shared/report/render-html.js';
import { artifactsDir, type Browser, describeChromium, launchChromium } from '../helpers/chromium.js';
import { allReports, FORMULA, HOSTILE, scenarioStore } from './report-fixtures.js';

type PageRun = {
  errors: string[];
  /** Requests the page started besides its own, and those that got an answer. */
  requests: string[];
  loaded: string[];
  state: { pwned: unknown; title: string; active: number; sections: number };
  texts: string;
};

describeChromium('HTML reports in headless Chromium', () => {
  let browser: Browser;
  let dir: string;
  let docs: ReportDocument[];

  beforeAll(async () => {
    const store = await scenarioStore();
    docs = await allReports(store);
    await store.close();
    dir = mkdtempSync(join(tmpdir(), 'hwaudit-html-'));
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Opens `html` from a file and records console errors, page errors and every request but the page's own. */
  async function open(
    name: string,
    html: string,
    after?: (page: import('playwright-core').Page) => Promise<void>,
  ) {
    const path = join(dir, name);
    writeFileSync(path, html);
    const url = pathToFileURL(path).href;
    const page = await browser.context.newPage();
    const run: PageRun = {
      errors: [],
      requests: [],
      loaded: [],
      state: { pwned: 0, title: '', active: 0, sections: 0 },
      texts: '',
    };
    page.on('console', (m) => {
      if (m.type() === 'error') run.errors.push(m.text());
    });
    page.on('pageerror', (e) => run.errors.push(e.message));
    page.on('request', (r) => {
      if (r.url() !== url) run.requests.push(r.url());
    });
    page.on('requestfinished', (r) => {
      if (r.url() !== url) run.loaded.push(r.url());
    });
    await page.goto(url, { waitUntil: 'load' });
    // Evaluated in the page (a string: this file is not compiled against the DOM types).
    run.state = await page.evaluate(`({
      pwned: window.__pwned,
      title: document.title,
      active: document.querySelectorAll('img, script, iframe, object, embed, link, base, form').length,
      sections: document.querySelectorAll('section').length,
    })`);
    run.texts = await page.evaluate('document.body.innerText');
    await after?.(page);
    await page.close();
    return run;
  }

  it.each(REPORTS.map((r) => r.id))('%s renders with no console error and no request', async (id) => {
    const doc = docs.find((d) => d.report === id)!;
    const run = await open(`${id}.html`, renderHtml(doc));
    expect(run.errors).toEqual([]);
    expect(run.requests).toEqual([]);
    expect(run.loaded).toEqual([]);
    expect(run.state).toEqual({
      pwned: undefined,
      title: expect.stringContaining(doc.title),
      active: 0,
      sections: doc.sections.length,
    });
    for (const f of doc.figures) expect(run.texts).toContain(f.label);
    // Error codes as MySQL writes them, counts grouped.
    if (id === 'failed-access') {
      expect(run.texts).toMatch(/\t1045\t/);
      expect(run.texts).not.toContain('1,045');
    }
  });

  it('keeps names and ids on one line on screen', async () => {
    // Table cells and list items whose text has no space (OCIDs, session keys, names), and how
    // many of them wrap onto more than one line (an OCID broken into a narrow column made each row
    // of its table many lines high).
    const measure = `(() => {
      const cells = [...document.querySelectorAll('td, td li')].filter(
        (el) => el.children.length === 0 && el.textContent.length > 0 && !/\\s/.test(el.textContent),
      );
      const lines = (el) => {
        const range = document.createRange();
        range.selectNodeContents(el);
        return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
      };
      return { ids: cells.length, wrapped: cells.filter((el) => lines(el) > 1).map((el) => el.textContent) };
    })()`;
    for (const id of ['access-review', 'break-glass-log', 'privileged-changes'] as const) {
      let screen = { ids: 0, wrapped: [] as string[] };
      const run = await open(
        `wrap-${id}.html`,
        renderHtml(docs.find((d) => d.report === id)!),
        async (page) => {
          screen = (await page.evaluate(measure)) as typeof screen;
        },
      );
      expect(run.errors).toEqual([]);
      expect(screen.ids, id).toBeGreaterThan(10);
      expect(screen.wrapped, id).toEqual([]);
    }
  });

  it('shows injected markup and formulas as text, running nothing', async () => {
    const texts = await Promise.all(
      ['attribution-evidence', 'break-glass-log', 'failed-access'].map(async (id) => {
        const run = await open(`hostile-${id}.html`, renderHtml(docs.find((d) => d.report === id)!));
        expect(run.state.pwned).toBeUndefined();
        expect(run.state.active).toBe(0);
        return run.texts;
      }),
    );
    // A login name and a statement (attribution evidence, break-glass log), a table name, a formula.
    expect(texts[0]).toContain(HOSTILE);
    expect(texts[1]).toContain(`/* ${HOSTILE} */`);
    expect(texts[1]).toContain('shop.<script>window.__pwned=2</script>');
    expect(texts[2]).toContain(FORMULA);
  });

  it('lets nothing run or load even when markup reaches the page unescaped', async () => {
    const doc = docs.find((d) => d.report === 'alert-summary')!;
    const injected = renderHtml(doc).replace(
      '</footer>',
      `${HOSTILE}<script>window.__pwned=3</script><img src="https://attacker.example/x.png"><link rel="stylesheet" href="https://attacker.example/x.css"></footer>`,
    );
    const run = await open('unescaped.html', injected);
    expect(run.state.pwned).toBeUndefined();
    expect(run.state.title).not.toBe('pwned');
    expect(run.state.active).toBeGreaterThan(0);
    // The browser refused every request the markup asked for before it went out.
    expect(run.requests.length).toBeGreaterThan(0);
    expect(run.loaded).toEqual([]);
    // The browser says what it refused.
    expect(run.errors.some((e) => /Content Security Policy/i.test(e))).toBe(true);
  });

  it('keeps a screenshot and a printed PDF of the access review', async () => {
    const out = artifactsDir();
    mkdirSync(out, { recursive: true });
    const doc = docs.find((d) => d.report === 'access-review')!;
    let pdf: Buffer = Buffer.alloc(0);
    const run = await open('access-review.html', renderHtml(doc), async (page) => {
      await page.screenshot({ path: join(out, 'report-access-review.png'), fullPage: true });
      pdf = await page.pdf({ format: 'A4', printBackground: true });
    });
    expect(run.errors).toEqual([]);
    writeFileSync(join(out, 'report-access-review.pdf'), pdf);
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    expect(pdf.length).toBeGreaterThan(10_000);
  });
});
