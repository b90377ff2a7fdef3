// Files a command writes whole (exports, reports): an existing file is never replaced unless the
// user asks with --overwrite, and a file only ever appears complete: it is written under a
// temporary name in the same folder, synced, then renamed over the target. A device or a pipe
// (`/dev/stdout`, a named pipe) replaces nothing: it is written directly, and never renamed over.
import { existsSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isStreamPath } from '../../shared/emit/file-sink.js';
import { AuditError } from '../../shared/errors.js';
import { LineWriter } from './io.js';

/** Refuses (USAGE) when one of `paths` is a file that exists and `overwrite` is off; nothing is written then. */
export function refuseExisting(command: string, paths: readonly string[], overwrite: boolean): void {
  if (overwrite) return;
  const taken = paths.find((p) => existsSync(p) && !isStreamPath(p));
  if (taken !== undefined)
    throw new AuditError(
      'USAGE',
      `${command}: ${taken} exists; choose another --out, or add --overwrite to replace it`,
    );
}

export type OutputFile = { writer: LineWriter; commit(): Promise<void>; abort(): Promise<void> };

/** A file written line by line that replaces `path` on commit (and leaves nothing behind on abort). */
export async function outputFile(path: string): Promise<OutputFile> {
  if (isStreamPath(path)) {
    const writer = await LineWriter.toFile(path);
    const close = () => writer.close();
    return { writer, commit: close, abort: () => close().catch(() => undefined) };
  }
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
  const writer = await LineWriter.toFile(temporary);
  return {
    writer,
    async commit() {
      await writer.close();
      // Synced before the rename, so the name never points at a file a crash left half written.
      const handle = await open(temporary, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, path);
    },
    async abort() {
      await writer.close().catch(() => undefined);
      await rm(temporary, { force: true });
    },
  };
}

/** Writes `text` to `path` through outputFile. */
export async function writeOutputFile(path: string, text: string): Promise<void> {
  const file = await outputFile(path);
  try {
    await file.writer.line(text.endsWith('\n') ? text.slice(0, -1) : text);
    await file.commit();
  } catch (error) {
    await file.abort();
    throw error;
  }
}
