// `invoke`: one invocation of the OCI Function, locally: the host the FDK entry runs
// (functions/function-host.ts), with the function's settings read from the environment.
import { createReadStream } from 'node:fs';
import { AuditError } from '../../shared/errors.js';
import { bodyLimit } from '../function-env.js';
import { FunctionError, FunctionHost } from '../function-host.js';
import { type CliCommand, type CliIo, parseCommandArgs, printableLines } from './io.js';

export const INVOKE_HELP = `Usage: heatwave-iam-audit invoke [--body FILE|-]

Runs one invocation of the OCI Function on this machine: the same host as the function's FDK
entry, with the function's settings (HWAUDIT_* variables, docs/function-config.md) read from
the environment and checked the same way. The body is what Connector Hub or Resource Scheduler
would send: a batch of audit records, an export, {"action":"sweep"}, {"action":"collect"},
{"action":"sync"} or {"action":"report",...}.

The answer (the invocation summary, one JSON line) goes to stdout. What the function writes to
its log goes to stderr: the alerts (unless HWAUDIT_ALERTS_FILE is set) and one JSON line per
invocation.

Options:
  --body FILE|-   the request body (default: standard input); at most HWAUDIT_MAX_BODY_BYTES
                  are read, as the function would
  -h, --help      this help

Exit codes:
  0  the function answered with a summary
  1  the function failed (it would answer 502): the error code and message are on stderr
  2  bad usage, a body the function refused (the summary has "error"), or invalid settings
     (CONFIG_INVALID, naming the variable or configuration key)
`;

export type InvokeDeps = {
  env?: Readonly<Record<string, string | undefined>>;
  /** Standard input (`--body -`). */
  stdin?: AsyncIterable<Buffer | string>;
};

/** At most `limit + 1` bytes of the body: one more than the limit is enough for the host to refuse it. */
async function readBody(chunks: AsyncIterable<Buffer | string>, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    parts.push(bytes.subarray(0, limit + 1 - size));
    size += bytes.length;
    if (size > limit) break;
  }
  return Buffer.concat(parts);
}

export async function runInvoke(argv: string[], io: CliIo, deps: InvokeDeps = {}): Promise<number> {
  const { values } = parseCommandArgs('invoke', argv, { body: { type: 'string' } });
  const env = deps.env ?? process.env;
  const path = values.body ?? '-';
  const chunks =
    path === '-' ? (deps.stdin ?? (process.stdin as AsyncIterable<Buffer>)) : createReadStream(path);
  // Run from a terminal without --body, it would wait for input with no word of why.
  if (path === '-' && deps.stdin === undefined && process.stdin.isTTY)
    io.stderr.write(
      'invoke: reading the body from standard input (end it with Ctrl-D; or use --body FILE)\n',
    );
  let body: Buffer;
  try {
    body = await readBody(chunks, bodyLimit(env));
  } catch (cause) {
    throw new AuditError('INPUT_UNREADABLE', 'invoke: cannot read the body', { details: { path }, cause });
  }
  // The function's stdout (alerts) and stderr (its log) are its log here: stderr.
  const host = new FunctionHost({ env, stdout: io.stderr, stderr: io.stderr });
  try {
    const summary = await host.invoke(body, { callId: 'local' });
    io.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary.error ? 2 : 0;
  } catch (error) {
    if (!(error instanceof FunctionError)) throw error;
    io.stderr.write(`${printableLines([`invoke: ${error.name}: ${error.headline}`, ...error.problems])}\n`);
    return error.code === 'CONFIG_INVALID' ? 2 : 1;
  } finally {
    await host.close();
  }
}

export const invokeCommand: CliCommand = {
  name: 'invoke',
  summary: 'run one invocation of the OCI Function locally (settings from the environment)',
  usage: INVOKE_HELP,
  run: (args, io) => runInvoke(args, io),
};
