// `replay`: reads audit inputs as one event-time timeline and writes alerts (and the session ledger).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../shared/config/load-config.js';
import { autoThreads } from '../../shared/decode/decode-pool.js';
import { AuditError } from '../../shared/errors.js';
import { type ReplayProgress, type ReplayResult, replayFiles } from '../../shared/replay.js';
import type { OpenRoutes } from '../../shared/route/routes.js';
import { openStore, parseStoreSpec } from '../../shared/state/open-store.js';
import type { ScopeLock } from '../../shared/state/state-store.js';
import { grouped } from '../../shared/text.js';
import { toIso } from '../../shared/time.js';
import { alertOutput, holdScope, routeOutputs, timeOption } from './host.js';
import { inputBytes, inputFiles, isForeign } from './inputs.js';
import {
  type CliCommand,
  type CliIo,
  formatOption,
  inputExitCodes,
  parseCommandArgs,
  printable,
} from './io.js';
import { checkOutputPath } from './output-file.js';
import { pipelineReport, readLedger, routeReport, withSummary } from './summary.js';

export const REPLAY_HELP = `Usage: heatwave-iam-audit replay --config FILE [options] INPUT...

Reads MySQL audit files (array, line-per-event, pretty-printed, .gz), collector records and OCI
audit exports (ListEvents, CloudEvents, Logging Search, Connector Hub batches) as one timeline,
and writes one alert per line. An INPUT is a file, a folder (the files directly in it) or -
(standard input).

Options:
  --config FILE       pipeline configuration (YAML or JSON)              (required)
  --state FILE|URL    state store: a SQLite file or mysql://USER@HOST[:PORT]/DB
                      (password from HWAUDIT_STATE_PASSWORD); kept between runs,
                      so a second replay of the same input emits no alert twice
                                                                         (default: temporary)
  --db-system ID      DB system (id or configured name) of raw MySQL files
                      (default: the configured DB system named like the file or its folder,
                      else the only configured DB system)
  --as-of TIME        watermark for timers at the end (ISO 8601)         (default: latest event)
  --format FORMAT     alert format: jsonl, ocsf, cef or ecs              (default: jsonl)
  --out FILE          alerts file, appended to (each alert is written once:
                      a rerun with --state adds only new alerts)        (default: stdout)
  --sessions FILE     write the session ledger (one record per session)
  --sessions-format FORMAT
                      ledger format: jsonl, ocsf, cef or ecs             (default: jsonl)
  --routes            also deliver through the configuration's routes (Notifications
                      topics, streams, buckets with HWAUDIT_OCI_AUTH; local files);
                      digests are sent at the end of the input
  --threads N|auto    threads in all: with 2, one of them reads and decodes the
                      inputs; with 3 or more, one writes a SQLite state store and
                      the rest decode; the results are the same. auto: 2 where
                      there are 2 cores or more and the inputs reach 192 MB on
                      disk, else 1. Below 3, a SQLite state store still has a
                      thread that copies its log into the file, which mostly
                      waits for the disk                                 (default: auto)
  -h, --help          this help

${inputExitCodes('the run completed, alerts or not', 'a state store or alerts output')}`;

async function runReplay(argv: string[], io: CliIo): Promise<number> {
  const stderr = io.stderr;
  const { values, positionals } = parseCommandArgs(
    'replay',
    argv,
    {
      config: { type: 'string' },
      state: { type: 'string' },
      'db-system': { type: 'string' },
      'as-of': { type: 'string' },
      format: { type: 'string', default: 'jsonl' },
      out: { type: 'string' },
      sessions: { type: 'string' },
      'sessions-format': { type: 'string', default: 'jsonl' },
      routes: { type: 'boolean', default: false },
      threads: { type: 'string', default: 'auto' },
    },
    Number.POSITIVE_INFINITY,
  );
  if (!values.config) throw new AuditError('USAGE', 'replay needs --config FILE (see replay --help)');
  if (positionals.length === 0)
    throw new AuditError('USAGE', 'replay needs at least one INPUT file (see replay --help)');
  const threads = values.threads === 'auto' ? undefined : Number(values.threads);
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > 64))
    throw new AuditError('USAGE', '--threads expects auto or an integer from 1 to 64');
  const format = formatOption('--format', values.format);
  const sessionsFormat = formatOption('--sessions-format', values['sessions-format']);
  if (values.sessions !== undefined) checkOutputPath('--sessions', values.sessions);
  const asOf = values['as-of'] === undefined ? undefined : timeOption('--as-of', values['as-of']);
  // Timers would fire for a time that has not come, and the watermark would stay there.
  if (asOf !== undefined && asOf > Date.now()) throw new AuditError('USAGE', '--as-of is in the future');
  const { config, rules } = await loadConfigFile(values.config);
  const inputs = await inputFiles('replay', positionals);
  const threadCount = threads ?? autoThreads(inputBytes(inputs));

  const tempDir = values.state ? undefined : mkdtempSync(join(tmpdir(), 'hwaudit-'));
  const spec = values.state ?? join(tempDir!, 'state.sqlite');
  // From three threads on, one of them writes a SQLite store (SqliteStore.open); the rest decode.
  // Below, the store's thread only checkpoints: its fsyncs wait for the disk, not for a core.
  const commitThread = threadCount >= 3 && parseStoreSpec(spec).kind === 'sqlite';
  const store = await openStore(spec, {
    onWarning: (text) => stderr.write(`replay: ${text}\n`),
    thread: commitThread ? 'commits' : 'checkpoints',
  });
  const output = await alertOutput(io, values.out, format);
  const started = Date.now();
  let lastProgress = 0;
  let lock: ScopeLock | undefined;
  let routes: OpenRoutes | undefined;
  let run: Readonly<ReplayResult> | undefined;
  /** What the replay did (also when it failed: without the session ledger, which it then does not write). */
  const summary = async (failed: boolean): Promise<string[]> => {
    if (run === undefined) return [];
    const coverage = failed
      ? undefined
      : await readLedger(store, { path: values.sessions, format: sessionsFormat });
    const seconds = (Date.now() - started) / 1000;
    const lines = [
      `replay: ${inputs.length} input(s), ${grouped(run.stats.received)} records in ${seconds.toFixed(1)} s on ${threadCount === 1 ? 'one thread' : `${threadCount} threads`}`,
      ...pipelineReport(run.pipeline, coverage, run.deadLetters, values.state),
      ...routeReport(routes?.sinks ?? []),
    ];
    // The watermark never goes back: events after --as-of were read and applied all the same.
    const latest = run.pipeline.watermark;
    if (asOf !== undefined && latest !== undefined && asOf < latest)
      lines.push(
        `replay: --as-of ${toIso(asOf)} is before the latest event seen (${toIso(latest)}): every event was applied, and the watermark, which never goes back, is that event's time`,
      );
    const foreign = run.inputs.filter((i) => isForeign(i.counts, i.deadCodes));
    for (const i of foreign) lines.push(`replay: ${i.path}: no record of a kind this tool reads`);
    return lines;
  };
  try {
    routes = await routeOutputs(config, process.env, values.routes);
    lock = await holdScope(store, 'replay');
    const opened = routes;
    return await withSummary(
      io,
      'replay',
      async () => {
        await replayFiles({
          config,
          rules,
          inputs,
          store,
          sinks: [output.sink, ...(opened?.sinks ?? [])],
          ...(asOf !== undefined ? { asOf } : {}),
          ...(values['db-system'] ? { dbSystem: values['db-system'] } : {}),
          threads: commitThread ? threadCount - 1 : threadCount,
          onOpen: (result) => {
            run = result;
          },
          onProgress: (p) => {
            const now = Date.now();
            if (now - lastProgress < 1000) return;
            lastProgress = now;
            stderr.write(`${printable(progressLine(p))}\n`);
          },
        });
        return 0;
      },
      summary,
    );
  } finally {
    await routes?.close();
    await output.close();
    await lock?.release();
    await store.close();
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

const PROGRESS_INPUTS = 3;

/** `  N records, A alerts (a.log 1,200; b.json 300; +2 inputs)`: the inputs that gave most so far. */
export function progressLine(p: ReplayProgress): string {
  const top = [...p.inputs]
    .filter((i) => i.records > 0)
    .sort((a, b) => b.records - a.records)
    .slice(0, PROGRESS_INPUTS);
  const rest = p.inputs.filter((i) => i.records > 0).length - top.length;
  const parts = top.map((i) => `${i.path} ${grouped(i.records)}`);
  if (rest > 0) parts.push(`+${rest} input${rest === 1 ? '' : 's'}`);
  return `  ${grouped(p.records)} records, ${p.alerts} alerts${parts.length > 0 ? ` (${parts.join('; ')})` : ''}`;
}

export const replayCommand: CliCommand = {
  name: 'replay',
  summary: 'correlate audit inputs into alerts and a session ledger',
  usage: REPLAY_HELP,
  run: runReplay,
};
