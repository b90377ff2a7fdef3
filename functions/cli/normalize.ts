// `normalize`: decode inputs of any supported kind and write canonical events as JSONL.
import { access, constants } from 'node:fs/promises';
import { basename } from 'node:path';
import type { DeadLetterCode } from '../../schemas/dead-letter.js';
import { type InputCounts, readInput } from '../../shared/decode/read-input.js';
import { AuditError } from '../../shared/errors.js';
import { type CliCommand, type CliIo, LineWriter, parseCommandArgs } from './io.js';
import { RunSummary } from './summary.js';

const USAGE = `Usage: heatwave-iam-audit normalize [--db-system ID] [--out FILE] INPUT...

Reads MySQL audit files (JSON array, one event per line, pretty-printed, .gz), collector records,
stream messages and OCI audit exports (ListEvents, CloudEvents, Logging Search results), and writes
one canonical event per line. Duplicates (same dedupe key) are written once. A summary and the
first dead letters go to stderr.

Options:
  --db-system ID   DB system of raw MySQL records (default: the input file name without extensions)
  --out FILE       write events to FILE instead of stdout
  -h, --help       show this help

Exit codes: 0 ran, 2 bad usage or an input that is unreadable or of no known kind, 1 internal error.
`;

// An input whose dead letters are all of these, and that gave no event, is not of a kind we read.
const NOT_OUR_KIND: ReadonlySet<DeadLetterCode> = new Set([
  'UNKNOWN_KIND',
  'JSON_INVALID',
  'ENCODING_INVALID',
]);

export const normalizeCommand: CliCommand = {
  name: 'normalize',
  summary: 'decode inputs and write canonical events as JSONL',
  usage: USAGE,
  run: runNormalize,
};

export async function runNormalize(args: string[], io: CliIo): Promise<number> {
  const { values, positionals: inputs } = parseCommandArgs('normalize', args, {
    'db-system': { type: 'string' },
    out: { type: 'string' },
  });
  if (inputs.length === 0) throw new AuditError('USAGE', 'normalize: no INPUT given');
  const dbSystem = values['db-system'];
  if (dbSystem === '') throw new AuditError('USAGE', 'normalize: --db-system must not be empty');
  await Promise.all(inputs.map(assertReadable));

  const resolveDbSystem =
    dbSystem === undefined ? (path: string) => ({ id: fileStem(path) }) : () => ({ id: dbSystem });
  const out =
    values.out === undefined ? new LineWriter(io.stdout, false) : await LineWriter.toFile(values.out);
  const summary = new RunSummary();
  const foreign: string[] = [];
  for (const input of inputs) {
    const reader = readInput(input, { resolveDbSystem });
    const deadCodes = new Set<DeadLetterCode>();
    for await (const item of reader) {
      if (item.type === 'dead') {
        summary.dead(item.dead);
        deadCodes.add(item.dead.code);
      } else if (summary.accept(item.event)) {
        await out.line(JSON.stringify(item.event));
      }
    }
    summary.addInput(reader.counts);
    if (isForeign(reader.counts, deadCodes)) foreign.push(input);
  }
  await out.close();
  io.stderr.write(summary.format('normalize'));
  for (const input of foreign) io.stderr.write(`normalize: ${input}: no record of a kind this tool reads\n`);
  return foreign.length > 0 ? 2 : 0;
}

function isForeign(counts: InputCounts, deadCodes: ReadonlySet<DeadLetterCode>): boolean {
  return counts.items > 0 && counts.events === 0 && [...deadCodes].every((code) => NOT_OUR_KIND.has(code));
}

/** `prod-orders.audit.json.gz` -> `prod-orders`. */
export function fileStem(path: string): string {
  const name = basename(path);
  const dot = name.indexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

async function assertReadable(path: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (cause) {
    throw new AuditError('INPUT_UNREADABLE', 'normalize: cannot read input', { details: { path }, cause });
  }
}
