// Every command's --help says how it exits (README "Exit codes ... also in each command's --help"):
// a scheduled job or a script tells a finished run from bad usage and from a failure by them. The
// command summaries of the README and docs/consume-backfill.md name the options the help lists.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../functions/cli/commands.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** The options a command's help lists (`  --name ...` or `  -h, --help`), but `--help`. */
function helpOptions(usage: string): string[] {
  return [...usage.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!).filter((o) => o !== '--help');
}

/**
 * The summary of `command` in the first code block after `heading` in a Markdown file: its
 * `npx heatwave-iam-audit <command>` line and the indented lines after it; undefined without one.
 */
function summaryOf(file: string, heading: string, command: string): string | undefined {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const after = text.slice(text.indexOf(heading));
  const open = after.indexOf('```\n');
  const block = after.slice(open + 4, after.indexOf('```', open + 4)).split('\n');
  const at = block.findIndex((l) => new RegExp(`^npx heatwave-iam-audit ${command}( |$)`).test(l));
  if (at < 0) return undefined;
  const end = block.findIndex((l, i) => i > at && !l.startsWith(' '));
  return block.slice(at, end < 0 ? undefined : end).join('\n');
}

/** Where commands are summarised, and which: the README every command. */
const SUMMARIES = [
  { file: 'README.md', heading: '## Using the CLI', commands: COMMANDS.map((c) => c.name) },
  { file: 'docs/consume-backfill.md', heading: '## Reading OCI directly', commands: ['consume', 'backfill'] },
];

describe('command help', () => {
  it.each(COMMANDS.map((c) => [c.name, c.usage]))('%s --help says its exit codes 0, 1 and 2', (_, usage) => {
    const codes = usage.slice(usage.indexOf('Exit codes:'));
    expect(codes).toMatch(/^Exit codes:/);
    for (const code of ['0', '1', '2']) expect(codes).toMatch(new RegExp(`(^|[:;\\s])${code}\\s+\\S`, 'm'));
  });

  it.each(
    SUMMARIES.flatMap(({ file, heading, commands }) =>
      commands.map((command) => ({ file, heading, command })),
    ),
  )('$file names the options of $command --help, and no other', ({ file, heading, command }) => {
    const summary = summaryOf(file, heading, command);
    expect(summary, `${file} has no summary of ${command}`).toBeDefined();
    const named = new Set([...summary!.matchAll(/--[\w-]+/g)].map((m) => m[0]));
    const listed = helpOptions(COMMANDS.find((c) => c.name === command)!.usage);
    expect(listed.filter((o) => !named.has(o))).toEqual([]);
    expect([...named].filter((o) => !listed.includes(o))).toEqual([]);
  });

  it('export --help says that no record changes, and that a store of an older version is upgraded', () => {
    const help = COMMANDS.find((c) => c.name === 'export')!.usage.replace(/\s+/g, ' ');
    expect(help).not.toContain('Nothing in the store changes');
    expect(help).toContain('No record in the store changes; a store of an older version is upgraded');
    expect(help).toContain('its schema is migrated');
  });

  it('replay --help gives the DB system of a raw audit file as the README does', () => {
    const help = COMMANDS.find((c) => c.name === 'replay')!.usage.replace(/\s+/g, ' ');
    expect(help).toContain(
      'default: the configured DB system named like the file or its folder, else the only configured DB system',
    );
  });
});
