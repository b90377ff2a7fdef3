// Files written whole (exports, reports, the session ledger): a failure when the file is put in
// place says which file, and leaves nothing behind.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeOutput } from '../../functions/cli/output-file.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-output-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeOutput', () => {
  it('reports a file it cannot put in place, and leaves no partial file behind', async () => {
    // A folder of that name: the rename over it fails once everything is written.
    const taken = join(dir, 'taken');
    mkdirSync(taken);
    writeFileSync(join(taken, 'keep'), '');
    await expect(writeOutput(taken, (writer) => writer.line('{}'))).rejects.toMatchObject({
      code: 'SINK_FAILED',
      message: `cannot write ${taken} (EISDIR)`,
    });
    expect(readdirSync(dir)).toEqual(['taken']);
    expect(readdirSync(taken)).toEqual(['keep']);
  });

  it('writes the file whole and returns what the writing returned', async () => {
    const path = join(dir, 'out.jsonl');
    const written = await writeOutput(path, async (writer) => {
      await writer.line('{"a":1}');
      return 1;
    });
    expect(written).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(['out.jsonl', 'taken']);
  });

  it('a command stopped by SIGINT or SIGTERM while it writes leaves no partial file behind', () => {
    const module = resolve(__dirname, '../../functions/cli/output-file.ts');
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const folder = mkdtempSync(join(dir, 'signal-'));
      const script = `
        import { writeOutput } from ${JSON.stringify(module)};
        setTimeout(() => process.exit(7), 5000);
        await writeOutput(${JSON.stringify(join(folder, 'export.jsonl'))}, async (writer) => {
          await writer.line('{"person":"alice@example.com"}');
          process.kill(process.pid, ${JSON.stringify(signal)});
          await new Promise(() => undefined);
        });`;
      const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        encoding: 'utf8',
      });
      expect(run.signal, run.stderr).toBe(signal);
      expect(readdirSync(folder)).toEqual([]);
    }
  });
});
