// Alerts appended to a file, durably: `send` resolves only once the lines are written and synced
// to disk (fsync), because the pipeline marks alerts delivered when it resolves. A write that
// fails (a full disk) is undone to the last whole line and reported with the file's name; the
// alerts stay undelivered and the next run writes them. A line left cut by a crash is removed
// when the file is opened again (its alert was not marked delivered either). A crash after the
// sync and before the pipeline marked the alerts delivered leaves whole lines it will send again:
// those (the backlog a run starts with) are written only when the file does not hold them yet.
// A device or a pipe (`/dev/stdout`, `/dev/null`, a named pipe) is written as it is: it cannot be
// synced, cut back or read again, so an alert counts as delivered once written to it, and a
// backlog is written whole.
import { createReadStream, statSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Alert } from '../../schemas/alert.js';
import { AuditError, errnoSuffix } from '../errors.js';
import type { AlertSink, SendContext } from './sink.js';

const TAIL_CHUNK = 64 * 1024;

export class FileSink implements AlertSink {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly name: string,
    private readonly format: (alert: Alert) => string,
    /** A device or a pipe rather than a file. */
    private readonly stream: boolean,
  ) {}

  /**
   * Opens (creating) `path` for appending; a cut last line is removed first. A named pipe is
   * opened for writing only, so the open waits for its reader as a shell's redirection does.
   */
  static async open(path: string, name: string, format: (alert: Alert) => string): Promise<FileSink> {
    const stream = isStreamPath(path);
    let handle: FileHandle;
    try {
      handle = await open(path, stream ? 'a' : 'a+');
    } catch (cause) {
      throw failure('cannot open', path, cause, 'USAGE');
    }
    try {
      if (!stream) await trimCutLine(handle, path);
    } catch (cause) {
      await handle.close();
      throw cause instanceof AuditError ? cause : failure('cannot repair', path, cause);
    }
    return new FileSink(handle, path, name, format, stream);
  }

  async send(alerts: Alert[], ctx?: SendContext): Promise<void> {
    const all = alerts.map(this.format);
    const lines = ctx?.backlog && !this.stream ? await this.absent(all) : all;
    if (lines.length === 0) return;
    const data = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    const size = this.stream ? 0 : (await this.handle.stat()).size;
    try {
      // A write can be short (a file size limit, a disk filling up): go on until all is written
      // or the system says why not.
      for (let done = 0; done < data.length; ) {
        done += (await this.handle.write(data, done, data.length - done)).bytesWritten;
      }
      if (!this.stream) await this.handle.sync();
    } catch (cause) {
      if (!this.stream) await this.handle.truncate(size).catch(() => undefined);
      throw failure('cannot write alerts to', this.path, cause);
    }
  }

  /** The lines the file does not hold yet (read once, line by line: a recovery after a crash). */
  private async absent(lines: string[]): Promise<string[]> {
    const missing = new Set(lines);
    const input = createReadStream(this.path, { encoding: 'utf8' });
    for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
      missing.delete(line);
      if (missing.size === 0) break;
    }
    input.destroy();
    return lines.filter((l) => missing.has(l));
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/**
 * True when `path` (its symbolic links followed) exists and is neither a file nor a folder: a
 * device such as `/dev/null` or a terminal, a pipe, or a socket. Such a target is written as it is,
 * never replaced, synced or read back.
 */
export function isStreamPath(path: string): boolean {
  if (standardStream(path) !== undefined) return true;
  try {
    const stat = statSync(path, { throwIfNoEntry: false });
    return stat !== undefined && !stat.isFile() && !stat.isDirectory();
  } catch {
    // What cannot be looked at is reported by the open that follows.
    return false;
  }
}

/**
 * Truncates the file after its last newline, when it does not end with one: a line an earlier run
 * was cut in (it is written again). A last line that is not the start of one this tool writes (a
 * JSON object, a CEF record) is refused: the file is someone else's, and nothing is cut.
 */
async function trimCutLine(handle: FileHandle, path: string): Promise<void> {
  const { size } = await handle.stat();
  if (size === 0) return;
  const last = Buffer.alloc(1);
  await handle.read(last, 0, 1, size - 1);
  if (last[0] === 0x0a) return;
  let end = size;
  let cut = 0;
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const chunk = Buffer.alloc(end - start);
    await handle.read(chunk, 0, chunk.length, start);
    const nl = chunk.lastIndexOf(0x0a);
    if (nl >= 0) {
      cut = start + nl + 1;
      break;
    }
    end = start;
  }
  const head = Buffer.alloc(Math.min(4, size - cut));
  await handle.read(head, 0, head.length, cut);
  const text = head.toString('latin1');
  if (!text.startsWith('{') && !'CEF:'.startsWith(text)) {
    throw new AuditError(
      'USAGE',
      `${path} does not end with a line break, and its last line is not one this tool writes: name another file`,
    );
  }
  await handle.truncate(cut);
}

function failure(
  what: string,
  path: string,
  cause: unknown,
  code: 'SINK_FAILED' | 'USAGE' = 'SINK_FAILED',
): AuditError {
  return new AuditError(code, `${what} ${path}${errnoSuffix(cause)}`, { cause });
}

const STANDARD_STREAMS: Readonly<Record<string, 'stdout' | 'stderr'>> = {
  '/dev/stdout': 'stdout',
  '/dev/fd/1': 'stdout',
  '/proc/self/fd/1': 'stdout',
  '/dev/stderr': 'stderr',
  '/dev/fd/2': 'stderr',
  '/proc/self/fd/2': 'stderr',
};

/**
 * The standard stream of this process a path names (`/dev/stdout`, `/dev/fd/1`, ...), written
 * through the process's own stream: whatever it is (a file the shell redirected it to, a pipe,
 * a socket, which cannot be opened by name), what the process was given.
 */
export function standardStream(path: string): 'stdout' | 'stderr' | undefined {
  return STANDARD_STREAMS[path];
}
