// Replay on more than one thread: workers decode the inputs, the replay's thread merges and
// applies them. The alerts and the session ledger must be byte for byte those of one thread.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoThreads, WORKER_INPUT_BYTES } from '../../shared/decode/decode-pool.js';
import { generateDemo } from '../../shared/demo/generate-demo.js';
import { runCli } from '../helpers/cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-threads-'));
let demo: ReturnType<typeof generateDemo>;

beforeAll(() => {
  demo = generateDemo({ out: join(dir, 'demo'), seed: 5, scale: 0.1, appRate: 2 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function replay(threads: string, name: string) {
  const out = join(dir, `${name}.alerts.jsonl`);
  const sessions = join(dir, `${name}.sessions.jsonl`);
  const args = [
    'replay',
    '--threads',
    threads,
    '--config',
    demo.config,
    '--out',
    out,
    '--sessions',
    sessions,
  ];
  const r = await runCli([...args, ...demo.inputs]);
  return { ...r, alerts: readFileSync(out, 'utf8'), sessions: readFileSync(sessions, 'utf8') };
}

describe('replay --threads', () => {
  it('gives the same alerts and session ledger on one, two and three threads', async () => {
    const one = await replay('1', 'one');
    expect(one.code, one.stderr).toBe(0);
    expect(one.stderr).toMatch(/records in [\d.]+ s on one thread\n/);
    expect(one.alerts.split('\n').length).toBeGreaterThan(10);
    for (const threads of ['2', '3']) {
      const more = await replay(threads, `t${threads}`);
      expect(more.code, more.stderr).toBe(0);
      expect(more.stderr).toMatch(new RegExp(`records in [\\d.]+ s on ${threads} threads\\n`));
      expect(more.alerts).toBe(one.alerts);
      expect(more.sessions).toBe(one.sessions);
      // The summary (after the first line, which has the time taken; progress lines vary) is the same.
      const summary = (stderr: string) => stderr.slice(stderr.indexOf('\n  processed '));
      expect(summary(more.stderr)).toBe(summary(one.stderr));
      // Counts in thousands are grouped, as in the first line.
      expect(summary(one.stderr)).toMatch(
        /processed \d{1,3}(,\d{3})+, duplicates \d+, late \d+, dead letters \d+/,
      );
      expect(summary(one.stderr)).toMatch(/attribution of \d{1,3}(,\d{3})+ IAM sessions/);
    }
  });

  it('rejects a thread count that is not auto or a small positive integer', async () => {
    for (const bad of ['0', '2.5', 'many', '65', '']) {
      const r = await runCli(['replay', '--threads', bad, '--config', demo.config, ...demo.inputs]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--threads expects auto or an integer from 1 to 64');
    }
  });

  it('auto (the default) takes a decoding worker only with a second core and large inputs', async () => {
    expect(autoThreads(WORKER_INPUT_BYTES, 2)).toBe(2);
    expect(autoThreads(WORKER_INPUT_BYTES, 16)).toBe(2);
    expect(autoThreads(WORKER_INPUT_BYTES - 1, 16)).toBe(1);
    expect(autoThreads(10 * WORKER_INPUT_BYTES, 1)).toBe(1);
    // The demo's few megabytes stay on one thread; the summary says how many ran.
    for (const args of [[], ['--threads', 'auto']]) {
      const r = await runCli(['replay', ...args, '--config', demo.config, ...demo.inputs]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/records in [\d.]+ s on one thread\n/);
    }
  });
});
