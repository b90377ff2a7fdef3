// Files a command writes whole (exports, reports, the session ledger): an existing export or
// report is never replaced unless the user asks with --overwrite, and a file only ever appears
// complete: it is written under a temporary name in the same folder, synced, then renamed over the
// target. A device or a pipe (`/dev/stdout`, a named pipe) replaces nothing: it is written
// directly, and never renamed over.
import { accessSync, constants, existsSync, rmSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isStreamPath, standardStream } from '../../shared/emit/file-sink.js';
import { AuditError, errnoSuffix } from '../../shared/errors.js';
import { LineWriter } from './io.js';

/** Refuses (USAGE) when one of `paths` is an existing file and `overwrite` is off; nothing is written. */
export function refuseExisting(command: string, paths: readonly string[], overwrite: boolean): void {
  if (overwrite) return;
  const taken = paths.find((p) => existsSync(p) && !isStreamPath(p));
  if (taken !== undefined)
    throw new AuditError(
      'USAGE',
      `${command}: ${taken} exists; choose another --out, or add --overwrite to replace it`,
    );
}

/**
 * Refuses (USAGE) an output a command writes at its end (`--sessions`, `export --out`) but could
 * not: a folder, or a file in a folder that is missing or read-only. Checked before any work.
 */
export function checkOutputPath(option: string, path: string): void {
  if (standardStream(path) !== undefined) return;
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat?.isDirectory()) throw new AuditError('USAGE', `${option} ${path} is a folder: name a file`);
  // A file is written beside its target, then renamed; a device or a pipe, into itself.
  const written = stat !== undefined && isStreamPath(path) ? path : dirname(path);
  try {
    accessSync(written, constants.W_OK);
  } catch (cause) {
    throw new AuditError('USAGE', `${option} ${path} cannot be written: ${written}${errnoSuffix(cause)}`);
  }
}

type OutputFile = { writer: LineWriter; commit(): Promise<void>; abort(): Promise<void> };

/**
 * Temporary files being written. A command that does not handle SIGINT or SIGTERM itself is killed
 * by them before it could abort its writes: while one is written, such a signal removes them, then
 * ends the process as the signal would have. A command that handles the signals stops its writes
 * through them (writeOutput aborts).
 */
const temporaries = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

function onSignal(signal: NodeJS.Signals): void {
  for (const t of temporaries) rmSync(t, { force: true });
  temporaries.clear();
  untrap();
  process.kill(process.pid, signal);
}

function untrap(): void {
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

function track(temporary: string): () => void {
  if (temporaries.size === 0)
    for (const s of SIGNALS) if (process.listenerCount(s) === 0) process.once(s, onSignal);
  temporaries.add(temporary);
  return () => {
    temporaries.delete(temporary);
    if (temporaries.size === 0) untrap();
  };
}

/** A file written line by line that replaces `path` on commit (and leaves nothing behind on abort). */
async function outputFile(path: string): Promise<OutputFile> {
  if (isStreamPath(path)) {
    const writer = await LineWriter.toFile(path);
    const close = () => writer.close();
    return { writer, commit: close, abort: () => close().catch(() => undefined) };
  }
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
  const untrack = track(temporary);
  const writer = await LineWriter.toFile(temporary).catch((error: unknown) => {
    untrack();
    throw error;
  });
  return {
    writer,
    async commit() {
      await writer.close();
      try {
        // Synced before the rename, so the name never points at a file a crash left half written.
        const handle = await open(temporary, 'r+');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temporary, path);
      } catch (cause) {
        throw new AuditError('SINK_FAILED', `cannot write ${path}${errnoSuffix(cause)}`, { cause });
      } finally {
        untrack();
      }
    },
    async abort() {
      await writer.close().catch(() => undefined);
      await rm(temporary, { force: true });
      untrack();
    },
  };
}

/**
 * Writes `path` with `write`, line by line: the file appears (replacing what had the name) only
 * once `write` has succeeded; nothing is left behind when it fails.
 */
export async function writeOutput<T>(path: string, write: (writer: LineWriter) => Promise<T>): Promise<T> {
  const file = await outputFile(path);
  try {
    const result = await write(file.writer);
    await file.commit();
    return result;
  } catch (error) {
    await file.abort();
    throw error;
  }
}

/** Writes `text` to `path` through writeOutput. */
export function writeOutputFile(path: string, text: string): Promise<void> {
  return writeOutput(path, (writer) => writer.line(text.endsWith('\n') ? text.slice(0, -1) : text));
}
