// `rules`: lists the detection rules, or shows one whole with what to do when it fires.
import { intervalToDuration, formatDuration as spellDuration } from 'date-fns';
import { z } from 'zod';
import { formatDuration } from '../../schemas/config.js';
import { RULES } from '../../shared/detect/registry.js';
import type { RuleDefinition } from '../../shared/detect/rule.js';
import { AuditError } from '../../shared/errors.js';
import { type CliCommand, type CliIo, parseCommandArgs } from './io.js';

const RULES_HELP = `Usage: heatwave-iam-audit rules [RULE] [--format table|json]

Lists every detection rule: id, default severity, ATT&CK techniques, description. With a RULE id,
shows that rule whole: what it detects, what to do when it fires (its runbook), its known false
positives, its suppression window (repeats within it merge into the first alert), and what
rules["RULE"] in the configuration may set: enabled, severity and its parameters, with defaults.

Options:
  --format FORMAT   table (default), or json: every field of each rule (or of RULE), for a
                    SIEM's rule catalogue
  -h, --help        this help

Exit codes: 0 listed; 2 bad usage (an unknown RULE or format); 1 an internal failure.
`;

/** What a user of the alerts needs to know of a rule, as JSON. */
type RuleCard = Pick<
  RuleDefinition,
  'id' | 'title' | 'severity' | 'attack' | 'description' | 'runbook' | 'falsePositives'
> & {
  /** Findings of one subject within this many ms merge into the first alert (0: never). */
  suppressionWindowMs: number;
  /**
   * What `rules.<id>` in the configuration may set besides `enabled` and `severity`, with each
   * default as the configuration writes it (durations in ISO 8601); null: not set by default.
   */
  parameters: Record<string, unknown>;
};

/** A rule's parameters and their defaults, as a configuration writes them. */
function parameters(rule: RuleDefinition): Record<string, unknown> {
  const input = z.toJSONSchema(rule.params, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, { type?: string }>;
  };
  const defaults = rule.params.parse({}) as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(input.properties ?? {}).map(([name, schema]) => {
      const value = defaults[name];
      // A duration is written as text and read as milliseconds.
      if (schema.type === 'string' && typeof value === 'number') return [name, formatDuration(value)];
      return [name, value ?? null];
    }),
  );
}

function card(rule: RuleDefinition): RuleCard {
  const { id, title, severity, attack, description, runbook, falsePositives, suppressFor } = rule;
  return {
    id,
    title,
    severity,
    attack,
    description,
    runbook,
    falsePositives,
    suppressionWindowMs: suppressFor,
    parameters: parameters(rule),
  };
}

function table(): string {
  const rows = RULES.map((r) => [r.id, r.severity, r.attack.join(','), r.description]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length), 8));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ');
  return `${line(['RULE', 'SEVERITY', 'ATT&CK', 'DESCRIPTION'])}\n${rows.map(line).join('\n')}\n`;
}

function suppression(ms: number): string {
  if (ms === 0) return 'none: each finding is an alert';
  const window = spellDuration(intervalToDuration({ start: 0, end: ms }));
  return `repeats of one subject within ${window} merge into the first alert (details.occurrences)`;
}

function text(c: RuleCard): string {
  return [
    `${c.id}: ${c.title}`,
    `severity         ${c.severity}`,
    `ATT&CK           ${c.attack.join(', ')}`,
    `detects          ${c.description}`,
    `runbook          ${c.runbook}`,
    'false positives',
    ...c.falsePositives.map((f) => `  - ${f}`),
    `suppression      ${suppression(c.suppressionWindowMs)}`,
    ...parameterLines(c),
    '',
  ].join('\n');
}

/** Where a rule is tuned, and what each parameter is unless the configuration says otherwise. */
function parameterLines(c: RuleCard): string[] {
  const entries = Object.entries(c.parameters);
  const where = `rules["${c.id}"] in the configuration: enabled, severity`;
  if (entries.length === 0) return [`tuning           ${where}`];
  const width = Math.max(...entries.map(([name]) => name.length));
  const shown = (value: unknown) =>
    value === null ? 'not set' : typeof value === 'string' ? value : JSON.stringify(value);
  return [
    `tuning           ${where}, and these parameters (default):`,
    ...entries.map(([name, value]) => `  ${name.padEnd(width)}  ${shown(value)}`),
  ];
}

async function runRules(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'rules',
    args,
    { format: { type: 'string', default: 'table' } },
    1,
  );
  if (values.format !== 'table' && values.format !== 'json')
    throw new AuditError('USAGE', 'rules: --format expects table or json');
  const [id] = positionals;
  const rule = id === undefined ? undefined : RULES.find((r) => r.id === id);
  if (id !== undefined && rule === undefined)
    throw new AuditError('USAGE', `rules: no rule ${id}; the rules are ${RULES.map((r) => r.id).join(', ')}`);
  if (values.format === 'json')
    io.stdout.write(`${JSON.stringify(rule === undefined ? RULES.map(card) : card(rule), null, 2)}\n`);
  else io.stdout.write(rule === undefined ? table() : text(card(rule)));
  return 0;
}

export const rulesCommand: CliCommand = {
  name: 'rules',
  summary: 'list the detection rules, or show one with its runbook and false positives',
  usage: RULES_HELP,
  run: runRules,
};
