// Checks on input files shared by the commands that read them.
import { constants, statSync } from 'node:fs';
import { access } from 'node:fs/promises';
import type { DeadLetterCode } from '../../schemas/dead-letter.js';
import { type InputCounts, STDIN } from '../../shared/decode/read-input.js';
import { AuditError } from '../../shared/errors.js';

// An input whose dead letters are all of these, and that gave no event, is not of a kind we read.
const NOT_OUR_KIND: ReadonlySet<DeadLetterCode> = new Set([
  'UNKNOWN_KIND',
  'JSON_INVALID',
  'ENCODING_INVALID',
]);

export function isForeign(counts: InputCounts, deadCodes: ReadonlySet<DeadLetterCode>): boolean {
  return counts.items > 0 && counts.events === 0 && [...deadCodes].every((code) => NOT_OUR_KIND.has(code));
}

/** Fails with a usage-class error (exit 2) before any work when an input cannot be read. */
export async function assertReadable(command: string, path: string): Promise<void> {
  if (path === STDIN) return;
  try {
    await access(path, constants.R_OK);
  } catch (cause) {
    throw new AuditError('INPUT_UNREADABLE', `${command}: cannot read input`, { details: { path }, cause });
  }
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
