// `normalize`: decode inputs of any supported kind and write canonical events as JSONL.
import { basename } from 'node:path';
import type { DeadLetterCode } from '../../schemas/dead-letter.js';
import { readInput } from '../../shared/decode/read-input.js';
import { AuditError } from '../../shared/errors.js';
import { inputFiles, isForeign } from './inputs.js';
import { type CliCommand, type CliIo, inputExitCodes, LineWriter, parseCommandArgs } from './io.js';
import { RunSummary } from './summary.js';

const USAGE = `Usage: heatwave-iam-audit normalize [--db-system ID] [--out FILE] INPUT...

Reads MySQL audit files (JSON array, one event per line, pretty-printed, .gz), collector records,
stream messages and OCI audit exports (ListEvents, CloudEvents, Logging Search results), and writes
one canonical event per line. Duplicates (same dedupe key) are written once. A summary and the
first dead letters go to stderr. An INPUT is a file, a folder (the files directly in it, in name
order) or - (standard input).

Options:
  --db-system ID   DB system of raw MySQL records (default: the input file name without extensions)
  --out FILE       write events to FILE instead of stdout
  -h, --help       show this help

${inputExitCodes('the run completed', 'an output')}`;

export const normalizeCommand: CliCommand = {
  name: 'normalize',
  summary: 'decode inputs and write canonical events as JSONL',
  usage: USAGE,
  run: runNormalize,
};

export async function runNormalize(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'normalize',
    args,
    {
      'db-system': { type: 'string' },
      out: { type: 'string' },
    },
    Number.POSITIVE_INFINITY,
  );
  if (positionals.length === 0) throw new AuditError('USAGE', 'normalize: no INPUT given');
  const dbSystem = values['db-system'];
  if (dbSystem === '') throw new AuditError('USAGE', 'normalize: --db-system must not be empty');
  const inputs = await inputFiles('normalize', positionals);

  const resolveDbSystem =
    dbSystem === undefined ? (path: string) => ({ id: fileStem(path) }) : () => ({ id: dbSystem });
  const out =
    values.out === undefined ? new LineWriter(io.stdout, false) : await LineWriter.toFile(values.out);
  const summary = new RunSummary();
  const foreign: string[] = [];
  for (const input of inputs) {
    // Every event is written, those that concern nothing the pipeline reads too: they show how a record is read.
    const reader = readInput(input, { resolveDbSystem, keepIrrelevant: true });
    const deadCodes = new Set<DeadLetterCode>();
    for await (const item of reader) {
      if (item.type === 'dead') {
        summary.dead(item.dead);
        deadCodes.add(item.dead.code);
      } else if (item.type === 'event' && summary.accept(item.event)) {
        await out.line(JSON.stringify(item.event));
      }
    }
    summary.addInput(reader.counts);
    if (isForeign(reader.counts, deadCodes)) foreign.push(input);
  }
  await out.close();
  io.stderr.write(summary.format('normalize'));
  for (const input of foreign) io.stderr.write(`normalize: ${input}: no record of a kind this tool reads\n`);
  return 0;
}

/** `prod-orders.audit.json.gz` -> `prod-orders`. */
function fileStem(path: string): string {
  const name = basename(path);
  const dot = name.indexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}
