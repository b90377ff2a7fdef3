// Walks the whole rule registry: every rule's metadata is linted and every case it carries runs
// through the real pipeline. A new rule needs no new test code.
import { describe, expect, it } from 'vitest';
import { SEVERITIES } from '../../schemas/alert.js';
import { RULES } from '../../shared/detect/registry.js';
import { runBatches } from '../helpers/run-timeline.js';

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

      for (const c of rule.cases) {
        it(`case: ${c.name}`, async () => {
          const { alerts, pipeline } = await runBatches(c.later ? [c.events(), c.later()] : [c.events()], {
            ...(c.config ? { config: c.config } : {}),
            ...(c.asOf ? { asOf: c.asOf } : {}),
          });
          const mine = alerts.filter((a) => a.rule === rule.id && a.status === 'open');
          expect(mine).toHaveLength(c.expect.alerts);
          if (c.expect.severity) for (const a of mine) expect(a.severity).toBe(c.expect.severity);
          const resolved = alerts.filter((a) => a.rule === rule.id && a.status === 'resolved');
          expect(resolved).toHaveLength(c.expect.resolutions ?? 0);
          // A resolution ends an alert of this run: same id, the alert's fields.
          for (const r of resolved) expect(mine.map((a) => a.id)).toContain(r.id);
          expect(pipeline.ruleErrors.size).toBe(0);
        });
      }
    });
  }
});
