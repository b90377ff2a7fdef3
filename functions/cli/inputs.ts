// Checks on input files shared by the commands that read them.
import { constants, statSync } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeadLetterCode } from '../../schemas/dead-letter.js';
import { type InputCounts, STDIN } from '../../shared/decode/read-input.js';
import { isStreamPath } from '../../shared/emit/file-sink.js';
import { AuditError, errnoSuffix } from '../../shared/errors.js';

// An input whose dead letters are all of these, and that gave no event (an OCI Audit event that
// concerns nothing, ignored, was read all the same), is not of a kind we read.
const NOT_OUR_KIND: ReadonlySet<DeadLetterCode> = new Set([
  'UNKNOWN_KIND',
  'JSON_INVALID',
  'ENCODING_INVALID',
]);

export function isForeign(counts: InputCounts, deadCodes: ReadonlySet<DeadLetterCode>): boolean {
  return (
    counts.items > 0 &&
    counts.events + counts.ignored === 0 &&
    [...deadCodes].every((code) => NOT_OUR_KIND.has(code))
  );
}

/**
 * The files the INPUT arguments name: a folder stands for the files directly in it (not its
 * subfolders, nor the hidden files), in name order. Fails with a usage-class error (exit 2) before
 * any work when an input cannot be read or a folder holds no file, or when standard input or a
 * pipe is named twice.
 */
export async function inputFiles(command: string, paths: readonly string[]): Promise<string[]> {
  // Two readers of one stream would each get some of its chunks.
  const twice = paths.find((p, i) => (p === STDIN || isStreamPath(p)) && paths.indexOf(p) !== i);
  if (twice !== undefined)
    throw new AuditError(
      'USAGE',
      `${command}: ${twice === STDIN ? '- (standard input)' : twice} is a stream: name it once`,
    );
  const unreadable = (path: string, cause: unknown) =>
    new AuditError('INPUT_UNREADABLE', `${command}: cannot read input${errnoSuffix(cause)}`, {
      details: { path },
      cause,
    });
  const lists = await Promise.all(
    paths.map(async (path) => {
      if (path === STDIN) return [path];
      let files: string[];
      try {
        files = (await stat(path)).isDirectory() ? await filesIn(path) : [path];
      } catch (cause) {
        throw unreadable(path, cause);
      }
      if (files.length === 0)
        throw new AuditError('INPUT_UNREADABLE', `${command}: the folder holds no file to read`, {
          details: { path },
        });
      for (const file of files) {
        await access(file, constants.R_OK).catch((cause: unknown) => {
          throw unreadable(file, cause);
        });
      }
      return files;
    }),
  );
  return lists.flat();
}

/** The files directly in a folder, the hidden ones aside, in name order. */
async function filesIn(folder: string): Promise<string[]> {
  const files: string[] = [];
  for (const name of (await readdir(folder)).filter((n) => !n.startsWith('.')).sort()) {
    const file = join(folder, name);
    if ((await stat(file)).isFile()) files.push(file);
  }
  return files;
}

/** Bytes on disk of the inputs that are files (a pipe or standard input counts none). */
export function inputBytes(paths: readonly string[]): number {
  let bytes = 0;
  for (const path of paths) {
    const stat = path === STDIN ? undefined : statSync(path, { throwIfNoEntry: false });
    if (stat?.isFile()) bytes += stat.size;
  }
  return bytes;
}
