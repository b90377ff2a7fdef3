// Applies `rules.<id>` overrides from the config to the registry: unknown ids and bad parameters
// are config errors naming the key.
import type { Severity } from '../../schemas/alert.js';
import type { Config } from '../../schemas/config.js';
import { RULES } from '../detect/registry.js';
import type { RuleDefinition } from '../detect/rule.js';
import { CONFIG_PARSE, ConfigIssues } from './config-issues.js';

export type ActiveRule = {
  // biome-ignore lint/suspicious/noExplicitAny: parameters are validated by each rule's schema.
  rule: RuleDefinition<any>;
  params: unknown;
  severity: Severity;
};

/**
 * The enabled rules with their parameters; unknown ids and bad parameters are a CONFIG_INVALID
 * error naming `source`.
 */
export function activeRules(config: Config, source = 'config'): ActiveRule[] {
  const issues = new ConfigIssues(source);
  const byId = new Map(RULES.map((r) => [r.id, r]));
  for (const id of Object.keys(config.rules)) {
    if (!byId.has(id)) issues.add(['rules', id], `unknown rule id (known: ${[...byId.keys()].join(', ')})`);
  }
  const active: ActiveRule[] = [];
  for (const rule of RULES) {
    const { enabled = true, severity, ...params } = config.rules[rule.id] ?? {};
    const parsed = rule.params.safeParse(params, CONFIG_PARSE);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) issues.addSchemaIssue(['rules', rule.id], issue);
      continue;
    }
    if (enabled) active.push({ rule, params: parsed.data, severity: severity ?? rule.severity });
  }
  issues.throwIfAny();
  return active;
}
