// What the demo fleet should raise: every injected incident and every piece of normal churn that
// legitimately alerts, each as a matcher over alert fields. Scoring compares alerts with it:
// precision = alerts explained by an expectation / alerts; recall = expectations met / expectations.
import type { Alert, Severity } from '../../schemas/alert.js';
import { RULES } from '../detect/registry.js';

/** `incident`: injected misuse; `churn`: normal work that alerts by design (a grant, a joiner in a privileged group). */
export type ExpectationKind = 'incident' | 'churn';

export type AlertMatcher = {
  /** Alert `time` within [from, to] (ISO 8601). */
  from: string;
  to: string;
  dbSystemId?: string;
  principalId?: string;
  groupId?: string;
  mysqlAccount?: string;
  loginUser?: string;
  sourceIp?: string;
  severity?: Severity;
};

export type Expectation = {
  id: string;
  rule: string;
  kind: ExpectationKind;
  /** The incident in plain language. */
  story: string;
  match: AlertMatcher;
};

/** A break-glass membership the story granted: when, and when it was revoked (null: never). */
export type BreakGlassGrant = {
  user: string;
  group: string;
  granted: string;
  revoked: string | null;
  maxDuration: string;
};

export type GroundTruth = {
  seed: number;
  scale: number;
  window: { from: string; to: string };
  expected: Expectation[];
  /** Every break-glass grant, for the break-glass log. */
  breakGlass: BreakGlassGrant[];
};

export function matches(alert: Alert, e: Expectation): boolean {
  const m = e.match;
  if (alert.rule !== e.rule) return false;
  if (alert.time < m.from || alert.time > m.to) return false;
  if (m.dbSystemId !== undefined && alert.dbSystem?.id !== m.dbSystemId) return false;
  if (m.principalId !== undefined && alert.identity?.principalId !== m.principalId) return false;
  if (m.groupId !== undefined && alert.group?.id !== m.groupId) return false;
  if (m.mysqlAccount !== undefined && alert.mysqlAccount !== m.mysqlAccount) return false;
  if (m.loginUser !== undefined && alert.loginUser !== m.loginUser) return false;
  if (m.sourceIp !== undefined && alert.sourceIp !== m.sourceIp) return false;
  if (m.severity !== undefined && alert.severity !== m.severity) return false;
  return true;
}

export type RuleScore = {
  rule: string;
  alerts: number;
  /** Alerts that some expectation explains. */
  explained: number;
  expected: number;
  /** Expectations that some alert meets. */
  found: number;
  precision: number;
  recall: number;
};

export type Score = {
  rules: RuleScore[];
  total: RuleScore;
  /** Alerts no expectation explains (false positives). */
  unexplained: Alert[];
  /** Expectations no alert meets (misses). */
  missed: Expectation[];
  /** Which expectation each explained alert met (the first that matches), by alert id. */
  explainedBy: Map<string, Expectation>;
};

function ratio(n: number, d: number): number {
  return d === 0 ? 1 : n / d;
}

/** Scores alerts against the ground truth, per rule of the registry (plus any rule that alerted). */
export function scoreAlerts(alerts: readonly Alert[], truth: Pick<GroundTruth, 'expected'>): Score {
  const explainedBy = new Map<string, Expectation>();
  const foundIds = new Set<string>();
  for (const alert of alerts) {
    for (const e of truth.expected) {
      if (!matches(alert, e)) continue;
      if (!explainedBy.has(alert.id)) explainedBy.set(alert.id, e);
      foundIds.add(e.id);
    }
  }
  const ruleIds = [...new Set([...RULES.map((r) => r.id), ...alerts.map((a) => a.rule)])];
  const rules = ruleIds.map((rule): RuleScore => {
    const ruleAlerts = alerts.filter((a) => a.rule === rule);
    const ruleExpected = truth.expected.filter((e) => e.rule === rule);
    const explained = ruleAlerts.filter((a) => explainedBy.has(a.id)).length;
    const found = ruleExpected.filter((e) => foundIds.has(e.id)).length;
    return {
      rule,
      alerts: ruleAlerts.length,
      explained,
      expected: ruleExpected.length,
      found,
      precision: ratio(explained, ruleAlerts.length),
      recall: ratio(found, ruleExpected.length),
    };
  });
  const sum = (k: 'alerts' | 'explained' | 'expected' | 'found') => rules.reduce((s, r) => s + r[k], 0);
  const total: RuleScore = {
    rule: 'all rules',
    alerts: sum('alerts'),
    explained: sum('explained'),
    expected: sum('expected'),
    found: sum('found'),
    precision: ratio(sum('explained'), sum('alerts')),
    recall: ratio(sum('found'), sum('expected')),
  };
  return {
    rules,
    total,
    unexplained: alerts.filter((a) => !explainedBy.has(a.id)),
    missed: truth.expected.filter((e) => !foundIds.has(e.id)),
    explainedBy,
  };
}
