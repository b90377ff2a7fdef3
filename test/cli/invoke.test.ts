// `invoke` runs the function's host from the built CLI, settings from the environment.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli-process.js';
import { fleetConfigJson, removeTempDirs, tempDir } from '../helpers/fdk-harness.js';
import { loggingBatch } from '../helpers/host-batches.js';

afterAll(() => removeTempDirs());

/** A clean environment: the function's settings only (no HWAUDIT_ variable of the test run). */
function functionEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const dir = tempDir('hwaudit-invoke-');
  return {
    PATH: process.env.PATH,
    HWAUDIT_CONFIG: fleetConfigJson(),
    HWAUDIT_STATE: join(dir, 'state.sqlite'),
    ...extra,
  };
}

/** Runs `invoke` with `stdin` as standard input. */
function invokeWithStdin(env: NodeJS.ProcessEnv, stdin: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, 'invoke', '--body', '-'], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe('heatwave-iam-audit invoke', () => {
  it('answers with the summary on stdout; alerts and the invocation log go to stderr; state persists', async () => {
    const env = functionEnv();
    const body = join(tempDir('hwaudit-invoke-'), 'batch.json');
    writeFileSync(body, loggingBatch());
    const first = await runCli(['invoke', '--body', body], env);
    expect(first.code).toBe(0);
    expect(first.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(first.stdout)).toMatchObject({
      action: 'ingest',
      received: 2,
      duplicates: 0,
      alerts: 1,
    });
    const log = first.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.map((l) => l.rule ?? l.msg)).toEqual(['iam.privileged-group-change', 'invocation']);
    expect(log[1]).toMatchObject({ callId: 'local', level: 'info' });

    // The same state, as a warm or later container would see it; standard input as the body.
    const again = await invokeWithStdin(env, loggingBatch());
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ received: 2, duplicates: 2, alerts: 0 });
    const sweep = await invokeWithStdin(env, '{"action":"sweep"}');
    expect(JSON.parse(sweep.stdout)).toMatchObject({ action: 'sweep' });
  });

  it('exits 2 on a refused body (the summary has the error) and on invalid settings, naming the variable', async () => {
    const refused = await invokeWithStdin(functionEnv(), 'not json');
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: { code: 'INPUT_UNREADABLE', status: 400 } });

    const bad = await invokeWithStdin(functionEnv({ HWAUDIT_SCOPE: '-bad' }), '{"action":"sweep"}');
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^invoke: FunctionError: CONFIG_INVALID: HWAUDIT_SCOPE: /m);

    const unknown = await invokeWithStdin(functionEnv({ HWAUDIT_LOCK_WAIT: 'PT1S' }), '{"action":"sweep"}');
    expect(unknown.stderr).toMatch(/CONFIG_INVALID: HWAUDIT_LOCK_WAIT: unknown variable/);

    const config = functionEnv({ HWAUDIT_CONFIG: 'lateness: 20 minutes\nfoo: 1\n' });
    const several = await invokeWithStdin(config, '{"action":"sweep"}');
    expect(several.code).toBe(2);
    const lines = several.stderr.split('\n');
    const at = lines.indexOf(
      'invoke: FunctionError: CONFIG_INVALID: invalid configuration (HWAUDIT_CONFIG):',
    );
    expect(at).toBeGreaterThanOrEqual(0);
    expect(lines.slice(at + 1)).toEqual([
      '  lateness: expected an ISO 8601 duration such as PT20M or P1D',
      '  foo: unknown key',
      '',
    ]);
  });

  it('reading the body from a terminal, says so; from a pipe, it does not', async () => {
    const env = functionEnv();
    const sweep = '{"action":"sweep"}';
    const piped = await invokeWithStdin(env, sweep);
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toContain('reading the body');
    // Standard input a terminal, as when `invoke` is typed alone: the body is still read from it.
    const hook = join(tempDir('hwaudit-invoke-'), 'tty.cjs');
    writeFileSync(hook, 'process.stdin.isTTY = true;\n');
    const typed = await invokeWithStdin({ ...env, NODE_OPTIONS: `--require ${hook}` }, sweep);
    expect(typed.code).toBe(0);
    expect(typed.stderr.split('\n')[0]).toBe(
      'invoke: reading the body from standard input (end it with Ctrl-D; or use --body FILE)',
    );
    expect(JSON.parse(typed.stdout)).toMatchObject({ action: 'sweep' });
  });

  it('is listed in the tool help and has its own', async () => {
    expect((await runCli(['--help'])).stdout).toMatch(
      /^ {2}invoke +run one invocation of the OCI Function locally/m,
    );
    const help = await runCli(['invoke', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: heatwave-iam-audit invoke [--body FILE|-]');
  });
});
