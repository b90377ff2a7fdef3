// CLI entry: `heatwave-iam-audit <command> [options]`.
// Bundled to dist/cli.cjs; its commands are COMMANDS (cli/commands.ts).
import packageJson from '../package.json' with { type: 'json' };
import { AuditError, exitCodeFor } from '../shared/errors.js';
import { COMMANDS } from './cli/commands.js';
import { type CliIo, printableLines } from './cli/io.js';

const TOOL = 'heatwave-iam-audit';

function toolHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const commands = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `Usage: ${TOOL} <command> [options]

Audit and event correlation for MySQL HeatWave fleets that authenticate through OCI IAM.

Commands:
${commands}

Options:
  -h, --help     show this help (or a command's, after the command)
  -V, --version  show the version

Run '${TOOL} <command> --help' for a command's options.
`;
}

/** Runs one command line and returns the exit code: 0 ran, 2 bad usage or input, 1 internal error. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [name, ...args] = argv;
    if (name === '-h' || name === '--help' || name === 'help') {
      io.stdout.write(toolHelp());
      return 0;
    }
    if (name === '-V' || name === '--version') {
      io.stdout.write(`${packageJson.version}\n`);
      return 0;
    }
    if (name === undefined) {
      io.stderr.write(toolHelp());
      return 2;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (command === undefined) throw new AuditError('USAGE', `unknown command '${name}' (see --help)`);
    if (args.includes('-h') || args.includes('--help')) {
      io.stdout.write(command.usage);
      return 0;
    }
    return await command.run(args, io);
  } catch (error) {
    io.stderr.write(`${printableLines(describe(error))}\n`);
    return exitCodeFor(error);
  }
}

/**
 * The lines that tell of an error: its headline, then its problems one a line (each names its key),
 * or its log-safe details at the end; anything else is an internal error. Each line is made
 * printable apart, so that no text in it can start a line of its own.
 */
function describe(error: unknown): string[] {
  if (!(error instanceof AuditError))
    return [`${TOOL}: internal error: ${error instanceof Error ? error.message : String(error)}`];
  if (error.problems.length > 0) return [`${TOOL}: ${error.headline}`, ...error.problems];
  const details = Object.entries(error.details)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}: ${String(v)}`);
  return [`${TOOL}: ${error.headline}${details.length > 0 ? ` (${details.join(', ')})` : ''}`];
}

// A reader that stops early (`normalize ... | head`) is not an error: end quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

let settled = false;
main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  () => {
    settled = true;
    process.exitCode = 1;
  },
);

// Node ends a process whose work is all waiting on nothing with exit 0: a command that stopped
// that way did not finish, and must not look as if it had.
process.on('beforeExit', () => {
  if (settled) return;
  process.stderr.write(`${TOOL}: internal error: the command stopped before it finished\n`);
  process.exitCode = 1;
});
