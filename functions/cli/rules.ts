// `rules`: lists the detection rules.
import { RULES } from '../../shared/detect/registry.js';
import type { CliCommand } from './io.js';

export const rulesCommand: CliCommand = {
  name: 'rules',
  summary: 'list the detection rules with severity, ATT&CK techniques and description',
  usage:
    'Usage: heatwave-iam-audit rules\n\nLists every detection rule: id, default severity, ATT&CK techniques, description.\n',
  async run(_args, io) {
    const rows = RULES.map((r) => [r.id, r.severity, r.attack.join(','), r.description]);
    const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length), 8));
    const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ');
    io.stdout.write(`${line(['RULE', 'SEVERITY', 'ATT&CK', 'DESCRIPTION'])}\n${rows.map(line).join('\n')}\n`);
    return 0;
  },
};
