// Walks the whole rule registry: every rule's metadata and cases are linted and every case it
// carries runs through the real pipeline. A new rule needs no new test code.
import { describe, expect, it } from 'vitest';
import { type Alert, SEVERITIES } from '../../schemas/alert.js';
import { RULES } from '../../shared/detect/registry.js';
import type { RuleDefinition } from '../../shared/detect/rule.js';
import type { RuleCase } from '../../shared/detect/timeline.js';
import { runAcrossReopens, runBatches } from '../helpers/run-timeline.js';

/** The rule's numeric limits: parameters whose default is a number, and `suppressFor` when it merges. */
function numericLimits(rule: RuleDefinition<unknown>): string[] {
  const defaults = rule.params.parse({}) as Record<string, unknown>;
  const params = Object.entries(defaults)
    .filter(([, v]) => typeof v === 'number')
    .map(([k]) => k);
  return rule.suppressFor > 0 ? [...params, 'suppressFor'] : params;
}

/** How a case runs: its configuration, and the watermark it finishes at. */
const runOptions = (c: RuleCase) => ({
  ...(c.config ? { config: c.config } : {}),
  ...(c.asOf ? { asOf: c.asOf } : {}),
});

/** Every alert record the store holds, whole, in a fixed order. */
const records = (alerts: Alert[]) => alerts.map((a) => JSON.stringify(a)).sort();

describe('rule registry', () => {
  it('has unique ids', () => {
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
  });

  for (const rule of RULES) {
    describe(rule.id, () => {
      it('has complete metadata', () => {
        expect(rule.id).toMatch(/^[a-z]+(-[a-z]+)*\.[a-z]+(-[a-z]+)*$/);
        expect(rule.title.length).toBeGreaterThan(10);
        expect(rule.description.length).toBeGreaterThan(20);
        expect(SEVERITIES).toContain(rule.severity);
        expect(rule.attack.length).toBeGreaterThan(0);
        for (const t of rule.attack) expect(t).toMatch(/^T\d{4}(\.\d{3})?$/);
        expect(rule.runbook.length).toBeGreaterThan(20);
        expect(rule.falsePositives.length).toBeGreaterThan(0);
        expect(rule.params.safeParse({}).success).toBe(true);
        expect(Object.keys(rule.on).length).toBeGreaterThan(0);
      });

      it('has positive and negative cases', () => {
        expect(rule.cases.some((c) => c.expect.alerts > 0)).toBe(true);
        expect(rule.cases.some((c) => c.expect.alerts === 0)).toBe(true);
      });

      it('pins the severity and the fields that matter of every alert it expects', () => {
        for (const c of rule.cases.filter((x) => x.expect.alerts > 0)) {
          expect(c.expect.severity, c.name).toBeDefined();
          expect(Object.keys(c.expect.match ?? {}), c.name).not.toEqual([]);
        }
        for (const c of rule.cases.filter((x) => (x.expect.resolutions ?? 0) > 0)) {
          expect(c.expect.resolution?.reason, `${c.name}: the reason of its resolutions`).toBeDefined();
        }
      });

      it('has cases just inside and just outside every numeric limit', () => {
        const tagged = rule.cases.flatMap((c) => (c.boundary ? [c.boundary.param] : []));
        for (const param of new Set([...numericLimits(rule), ...tagged])) {
          const side = (s: 'inside' | 'outside') =>
            rule.cases.filter((c) => c.boundary?.param === param && c.boundary.side === s);
          const inside = side('inside');
          const outside = side('outside');
          expect(inside.length, `${param}: a case just inside`).toBeGreaterThan(0);
          expect(outside.length, `${param}: a case just outside`).toBeGreaterThan(0);
          // A limit is pinned by an inside and an outside case with different outcomes.
          const outcome = (c: (typeof inside)[number]) => `${c.expect.alerts} ${c.expect.severity ?? ''}`;
          expect(
            inside.some((i) => outside.some((o) => outcome(i) !== outcome(o))),
            `${param}: outcomes differ across the limit`,
          ).toBe(true);
        }
      });

      for (const c of rule.cases) {
        it(`case: ${c.name}`, async () => {
          const { alerts, pipeline } = await runBatches(
            c.later ? [c.events(), c.later()] : [c.events()],
            runOptions(c),
          );
          const mine = alerts.filter((a) => a.rule === rule.id && a.status === 'open');
          expect(mine).toHaveLength(c.expect.alerts);
          for (const a of mine) {
            if (c.expect.severity) expect(a.severity).toBe(c.expect.severity);
            if (c.expect.match) expect(a).toMatchObject(c.expect.match);
          }
          const resolved = alerts.filter((a) => a.rule === rule.id && a.status === 'resolved');
          expect(resolved).toHaveLength(c.expect.resolutions ?? 0);
          // A resolution ends an alert of this run: same id, the alert's fields.
          for (const r of resolved) {
            expect(mine.map((a) => a.id)).toContain(r.id);
            if (c.expect.resolution) expect(r.resolution).toMatchObject(c.expect.resolution);
          }
          expect(pipeline.ruleErrors.size).toBe(0);
        });
      }

      // A late batch comes after a commit: a restart may fall there, or before, inside the first.
      for (const c of rule.cases.filter((x) => x.later)) {
        it(`case, restarted between its batches and inside the first: ${c.name}`, async () => {
          // Built once: each build gives its events new keys, so other evidence and alert ids.
          const [events, later] = [c.events(), c.later?.() ?? []];
          const opts = runOptions(c);
          const once = records((await runBatches([events, later], opts)).alerts);
          expect(once.length).toBeGreaterThan(0);
          const half = Math.floor(events.length / 2);
          for (const batches of [
            [events, later],
            [events.slice(0, half), events.slice(half), later],
          ]) {
            expect(records((await runAcrossReopens(batches, opts)).alerts)).toEqual(once);
          }
        });
      }
    });
  }
});
