// Every command's --help says how it exits (README "Exit codes ... also in each command's --help"):
// a scheduled job or a script tells a finished run from bad usage and from a failure by them.
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../functions/cli/commands.js';

describe('command help', () => {
  it.each(COMMANDS.map((c) => [c.name, c.usage]))('%s --help says its exit codes 0, 1 and 2', (_, usage) => {
    const codes = usage.slice(usage.indexOf('Exit codes:'));
    expect(codes).toMatch(/^Exit codes:/);
    for (const code of ['0', '1', '2']) expect(codes).toMatch(new RegExp(`(^|[:;\\s])${code}\\s+\\S`, 'm'));
  });

  it('replay --help gives the DB system of a raw audit file as the README does', () => {
    const help = COMMANDS.find((c) => c.name === 'replay')!.usage.replace(/\s+/g, ' ');
    expect(help).toContain(
      'default: the configured DB system named like the file or its folder, else the only configured DB system',
    );
  });
});
