// Ends every run with what was skipped and how to run it, per missing requirement
// (test/helpers/requirements.ts), so that a green run on a machine without them says so.
import type { Reporter, TestModule } from 'vitest/node';
import { REQUIREMENTS, skipTag } from '../helpers/requirements.js';

export default class SkipReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const skipped = modules.flatMap((m) => [...m.children.allTests('skipped')].map((t) => t.fullName));
    if (skipped.length === 0) {
      if (modules.length > 0) process.stdout.write('Skipped: nothing, every test ran.\n');
      return;
    }
    const lines: string[] = [];
    let explained = 0;
    for (const req of REQUIREMENTS) {
      const count = skipped.filter((name) => name.includes(skipTag(req))).length;
      if (count === 0) continue;
      explained += count;
      lines.push(
        `Skipped ${count} test(s) that need ${req.what} (${req.missing() ?? 'missing'}). To run them: ${req.howTo}`,
      );
    }
    if (skipped.length > explained) lines.push(`Skipped ${skipped.length - explained} other test(s).`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
