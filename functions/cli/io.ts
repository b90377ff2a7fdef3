// What every CLI command shares: its streams, option parsing that fails with a usage error, and
// a buffered line writer that respects back-pressure.
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { DEAD_LETTER_CODES } from '../../schemas/dead-letter.js';
import { standardStream } from '../../shared/emit/file-sink.js';
import { isOutputFormat, OUTPUT_FORMATS, type OutputFormat } from '../../shared/emit/formats/format.js';
import { AuditError, errnoSuffix } from '../../shared/errors.js';
import { visible } from '../../shared/text.js';

export type CliIo = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

export type CliCommand = {
  name: string;
  /** One line for the tool's help. */
  summary: string;
  /** Full help text of the command. */
  usage: string;
  run(args: string[], io: CliIo): Promise<number>;
};

/** The exit codes of a command that reads inputs, for its help: what it completed, what may fail. */
export function inputExitCodes(completed: string, outputs: string): string {
  return `Exit codes:
  0  ${completed}; records that could not be read are dead letters,
     counted in the summary with their code and location (file and line, or index):
     ${DEAD_LETTER_CODES.join(', ')};
     an input holding no record of a kind this tool reads is named in the summary
  1  an internal failure, or ${outputs} that failed
  2  bad usage, an input that cannot be opened, or an invalid configuration
`;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * parseArgs in strict mode, with at most `positionals` arguments that are not options (INPUT
 * files: any number); a mistake becomes AuditError USAGE.
 */
export function parseCommandArgs<T extends Options>(
  command: string,
  args: string[],
  options: T,
  positionals = 0,
) {
  const parsed = strictArgs(command, args, options);
  const extra = parsed.positionals[positionals];
  if (extra !== undefined)
    throw new AuditError('USAGE', `${command}: unexpected argument '${extra}' (see ${command} --help)`);
  return parsed;
}

function strictArgs<T extends Options>(command: string, args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (cause) {
    throw new AuditError('USAGE', `${command}: ${argsProblem(cause)} (see ${command} --help)`, { cause });
  }
}

/** What parseArgs found wrong, without its advice on positionals that start with '-' (INPUT files never do). */
function argsProblem(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : 'invalid arguments';
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown option ${unknown[1]}`;
  const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing) return `${missing[1]} needs a value`;
  return message;
}

const FLUSH_CHARS = 64 * 1024;

/** Writes lines to a stream in batches, waiting for 'drain' when the stream asks for it. */
export class LineWriter {
  private buffer = '';
  private failure: unknown;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly closeStream: boolean,
  ) {
    stream.on('error', (error) => {
      this.failure = error;
    });
  }

  /** Writes to `path` (created or truncated); a path that cannot be opened is a usage error. */
  static async toFile(path: string): Promise<LineWriter> {
    const standard = standardStream(path);
    if (standard !== undefined) return new LineWriter(process[standard], false);
    try {
      const handle = await open(path, 'w');
      return new LineWriter(handle.createWriteStream(), true);
    } catch (cause) {
      throw new AuditError('USAGE', `cannot open the output file ${path}${errnoSuffix(cause)}`, { cause });
    }
  }

  async line(text: string): Promise<void> {
    this.buffer += `${text}\n`;
    if (this.buffer.length >= FLUSH_CHARS) await this.flush();
  }

  async flush(): Promise<void> {
    this.check();
    if (this.buffer === '') return;
    const data = this.buffer;
    this.buffer = '';
    if (!this.stream.write(data)) await this.wait('drain');
    this.check();
  }

  /** Flushes and closes the stream; a second call waits for the first (the stream closes once). */
  close(): Promise<void> {
    this.closing ??= this.flushAndClose();
    return this.closing;
  }

  private async flushAndClose(): Promise<void> {
    await this.flush();
    if (!this.closeStream) return;
    this.stream.end();
    await this.wait('close');
  }

  private async wait(event: string): Promise<void> {
    try {
      await once(this.stream, event);
    } catch (error) {
      this.failure ??= error;
    }
    this.check();
  }

  private check(): void {
    if (this.failure !== undefined) {
      throw new AuditError('SINK_FAILED', `cannot write the output${errnoSuffix(this.failure)}`, {
        cause: this.failure,
      });
    }
  }
}

/** An output format option (`--format`, `--sessions-format`); anything else is a usage error. */
export function formatOption(name: string, value: string): OutputFormat {
  if (!isOutputFormat(value)) {
    throw new AuditError(
      'USAGE',
      `${name} ${value} is not a format (use one of: ${OUTPUT_FORMATS.join(', ')})`,
    );
  }
  return value;
}

/** Text from a server or a file made safe for a terminal: also line breaks are shown, as ␊ and ␍. */
export function printable(text: string): string {
  return visible(text).replace(/[\r\n]/g, (c) => (c === '\n' ? '\u240a' : '\u240d'));
}

/** A message's headline and the problems listed under it, indented, each made printable apart. */
export function printableLines(lines: readonly string[]): string {
  return lines.map(printable).join('\n  ');
}
