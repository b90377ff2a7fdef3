// Runs the built CLI (dist/cli.cjs) as users do, in a child process: to completion, or killed
// with SIGKILL after a delay; and reads what a SQLite state holds.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type { Alert } from '../../schemas/alert.js';
import type { Session } from '../../schemas/session.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { bundlePath } from './bundle.js';
import { collect } from './collect.js';

const execFileAsync = promisify(execFile);
export const CLI = bundlePath('cli');

export type CliResult = {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
};

/** Runs the CLI to its end; `prefix` runs it under a shell command (e.g. a file size limit). */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  prefix?: string,
): Promise<CliResult> {
  const [file, argv] =
    prefix === undefined
      ? [process.execPath, [CLI, ...args]]
      : ['/bin/sh', ['-c', `${prefix}; exec "$0" "$@"`, process.execPath, CLI, ...args]];
  try {
    const { stdout, stderr } = await execFileAsync(file, argv, { env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, signal: null, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; signal: NodeJS.Signals | null; stdout: string; stderr: string };
    return { code: e.code, signal: e.signal ?? null, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Runs the CLI and sends it SIGKILL after `ms` (unless it ends first). */
export function runCliKilledAfter(
  args: string[],
  ms: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The alerts and sessions a SQLite state holds, in id order. */
export async function stateOf(path: string): Promise<{ alerts: Alert[]; sessions: Session[] }> {
  const store = SqliteStore.open(path);
  try {
    return {
      alerts: (await collect(store.alerts())).sort((a, b) => a.id.localeCompare(b.id)),
      sessions: (await collect(store.sessions())).sort((a, b) => a.id.localeCompare(b.id)),
    };
  } finally {
    await store.close();
  }
}
