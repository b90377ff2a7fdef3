// `backfill`: reads past OCI IAM audit events of a compartment (Audit API or Logging Search)
// window by window into the pipeline, resumable from a checkpoint file. docs/consume-backfill.md.
import { resolve } from 'node:path';
import { parseDuration } from '../../schemas/config.js';
import { loadConfigFile } from '../../shared/config/load-config.js';
import { AuditError } from '../../shared/errors.js';
import { ociAuthProvider, ociAuthSpecFromEnv } from '../../shared/oci/auth.js';
import { createOciClient } from '../../shared/oci/clients.js';
import {
  BACKFILL_SOURCES,
  type BackfillOptions,
  type BackfillResult,
  type BackfillSource,
  backfill,
  DEFAULT_OVERLAP_MS,
  fileCheckpoint,
} from '../../shared/sources/backfill.js';
import { parseStoreSpec } from '../../shared/state/open-store.js';
import { toIso } from '../../shared/time.js';
import {
  alertOutput,
  type CliDeps,
  COMPARTMENT_OCID,
  ocidOption,
  openScopedPipeline,
  stateOption,
  stopSignal,
  timeRange,
  warnOnce,
} from './host.js';
import { type CliCommand, type CliIo, formatOption, parseCommandArgs } from './io.js';
import { withSummary } from './summary.js';

export const BACKFILL_HELP = `Usage: heatwave-iam-audit backfill --compartment OCID --from TIME --config FILE [options]

Reads the OCI audit events of a compartment between two times, from the Audit API (ListEvents)
or from Logging Search (the _Audit log), in minute-aligned windows whose queries overlap (events
appear up to ~15 minutes late; duplicates are dropped), and writes one alert per line. After each
window it records its end in the checkpoint: a second run with the same checkpoint, --state and
--scope continues where the first one stopped.

Options:
  --compartment OCID  compartment whose audit events are read             (required)
  --from TIME         start, ISO 8601 (rounded down to the minute)        (required)
  --to TIME           end, ISO 8601 (rounded up to the minute)            (default: now)
  --source SOURCE     audit (Audit API) or logging (Logging Search)       (default: audit)
  --config FILE       pipeline configuration (YAML or JSON)               (required)
  --state FILE|URL    state store: a SQLite file or a mysql:// URL      (default: temporary)
  --scope NAME        state scope the events are correlated in            (default: default,
                      the scope replay uses)
  --checkpoint FILE   checkpoint file, bound to --state and --scope; needs --state
                      (default: <state file>.backfill-<source>-<scope>.json with a SQLite
                      --state; none otherwise, and the run cannot be resumed)
  --window DURATION   window length, ISO 8601, whole minutes (default: PT1H for audit;
                      P14D minus the overlap for logging, the longest search Logging
                      Search allows)
  --overlap DURATION  how far each window's query reaches back, whole minutes, at least
                      PT15M                                          (default: PT20M)
  --include-subcompartments
                      read the compartments below --compartment as well: audit lists
                      the compartment tree (Identity ListCompartments; ListEvents has no
                      sub-compartment option) and reads each; logging searches
                      _Audit_Include_Subcompartment. Without it only --compartment itself
                      is read (identity domains often live in sub-compartments)
  --endpoint URL      service endpoint (default: HWAUDIT_OCI_ENDPOINT_AUDIT or
                      HWAUDIT_OCI_ENDPOINT_LOGGINGSEARCH, HWAUDIT_OCI_ENDPOINT, the region)
  --format FORMAT     alert format: jsonl, ocsf, cef or ecs               (default: jsonl)
  --out FILE          alerts file (appended to)                           (default: stdout)
  -h, --help          this help

At the end the timeline is finished as of min(--to, now): buffered events are applied and timers
fire. SIGTERM or SIGINT stop at the next page; the window in progress was not checkpointed and
is read again by the next run (duplicates are dropped), so nothing is lost.

Exit codes: 0 the range was read, or the run was stopped by SIGTERM or SIGINT; 2 bad usage, or an
invalid configuration or OCI setting; 1 an internal failure, or an OCI call, the state store or
an output that failed (the message says which).
`;

const MIN_OVERLAP_MS = 15 * 60_000;

export type BackfillDeps = CliDeps & {
  /** Tuning passed to the backfill (retries, sleeps, page sizes). */
  backfill?: Partial<Pick<BackfillOptions, 'retry' | 'sleep' | 'pageLimit' | 'batchSize' | 'now'>>;
};

/** The store as a checkpoint names it: a SQLite file's absolute path; a MySQL server and database. */
function storeName(spec: string, env: NodeJS.ProcessEnv): string {
  const parsed = parseStoreSpec(spec, env);
  if (parsed.kind === 'sqlite') return resolve(parsed.path);
  const { host, port, database } = parsed.connection;
  return `mysql://${host.includes(':') ? `[${host}]` : host}:${port}/${database}`;
}

/** A whole number of minutes: the Audit API takes query times to the minute (seconds must be 0). */
function minutesOption(name: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0)
    throw new AuditError('USAGE', `${name} expects an ISO 8601 duration such as PT1H`);
  if (ms % 60_000 !== 0)
    throw new AuditError(
      'USAGE',
      `${name} must be a whole number of minutes: windows and queries start on the minute`,
    );
  return ms;
}

export async function runBackfill(argv: string[], io: CliIo, deps: BackfillDeps = {}): Promise<number> {
  const { values } = parseCommandArgs('backfill', argv, {
    compartment: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    source: { type: 'string', default: 'audit' },
    config: { type: 'string' },
    state: { type: 'string' },
    scope: { type: 'string', default: 'default' },
    checkpoint: { type: 'string' },
    window: { type: 'string' },
    overlap: { type: 'string' },
    'include-subcompartments': { type: 'boolean', default: false },
    endpoint: { type: 'string' },
    format: { type: 'string', default: 'jsonl' },
    out: { type: 'string' },
  });
  for (const required of ['compartment', 'from', 'config'] as const) {
    if (!values[required])
      throw new AuditError('USAGE', `backfill needs --${required} (see backfill --help)`);
  }
  ocidOption('--compartment', values.compartment!, COMPARTMENT_OCID);
  if (!(BACKFILL_SOURCES as readonly string[]).includes(values.source)) {
    throw new AuditError('USAGE', `--source expects one of: ${BACKFILL_SOURCES.join(', ')}`);
  }
  const source = values.source as BackfillSource;
  const now = deps.backfill?.now ?? Date.now;
  const range = timeRange('backfill', values);
  const from = range.from!;
  const to = range.to ?? now();
  if (!(to > from)) throw new AuditError('USAGE', `backfill: --from ${toIso(from)} is in the future`);
  const overlapMs =
    values.overlap === undefined ? DEFAULT_OVERLAP_MS : minutesOption('--overlap', values.overlap);
  if (overlapMs < MIN_OVERLAP_MS) {
    throw new AuditError(
      'USAGE',
      '--overlap must be at least PT15M: audit events appear up to 15 minutes late',
    );
  }
  const windowMs = values.window === undefined ? undefined : minutesOption('--window', values.window);
  const format = formatOption('--format', values.format);
  if (values.checkpoint !== undefined && values.state === undefined) {
    throw new AuditError(
      'USAGE',
      'backfill: --checkpoint needs --state: without it the state is temporary, and a resumed run would lack what the windows before it established',
    );
  }
  const env = deps.env ?? process.env;
  const state = stateOption(values.state, env);
  const { config, rules } = await loadConfigFile(values.config!);
  const auth = await ociAuthProvider(ociAuthSpecFromEnv(env));
  const endpoint = values.endpoint !== undefined ? { endpoint: values.endpoint } : {};
  const includeSub = values['include-subcompartments'];
  const clients =
    source === 'audit'
      ? {
          audit: await createOciClient('audit', { auth, env, ...endpoint }),
          ...(includeSub ? { identity: await createOciClient('identity', { auth, env }) } : {}),
        }
      : { logSearch: await createOciClient('loggingsearch', { auth, env, ...endpoint }) };

  const checkpointPath =
    values.checkpoint ??
    (!state.temporary && state.kind === 'sqlite'
      ? `${state.spec}.backfill-${source}-${encodeURIComponent(values.scope)}.json`
      : undefined);
  if (checkpointPath === undefined) {
    io.stderr.write(
      'backfill: no --checkpoint (and no SQLite --state to put one beside): this run cannot be resumed\n',
    );
  }
  const output = await alertOutput(io, values.out, format);
  const stop = stopSignal(io, deps, 'backfill');
  const progressMs = deps.progressMs ?? 1000;
  let lastProgress = 0;
  const started = Date.now();
  const partition = await openScopedPipeline({
    spec: state.spec,
    scope: values.scope,
    config,
    rules,
    sinks: [output.sink],
    env,
    warn: warnOnce(io, 'backfill'),
    command: 'backfill',
  });
  let run: Readonly<BackfillResult> | undefined;
  /** What the backfill did (also when it failed). */
  const summary = async (failed: boolean): Promise<string[]> => {
    if (run === undefined) return [];
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const covered = !includeSub
      ? `compartment ${values.compartment} only, not the compartments below it (--include-subcompartments reads them)`
      : source === 'audit'
        ? `${run.compartments} compartments (${values.compartment} and those below it)`
        : `${values.compartment} and the compartments below it`;
    const ended = failed ? 'failed' : run.completed ? 'complete' : 'stopped';
    return [
      `backfill: covered ${covered}`,
      `backfill: ${ended}${run.resumed ? ` (resumed at ${toIso(run.startedAt)})` : ''}; ` +
        `${run.windows} windows, ${run.pages} pages, ${run.records} records (${run.events} events, ${run.ignored} ignored, ${run.dead} dead letters), ` +
        `${run.alerts} alerts in ${seconds} s; ${run.calls} calls, throttled ${run.throttled}; ` +
        `committed until ${toIso(run.completedUntil)}`,
    ];
  };
  try {
    return await withSummary(
      io,
      'backfill',
      async () => {
        await backfill({
          ...deps.backfill,
          ...clients,
          source,
          compartmentId: values.compartment!,
          from,
          to,
          pipeline: partition.pipeline,
          target: { scope: values.scope, store: storeName(state.spec, env) },
          overlapMs,
          includeSubcompartments: includeSub,
          signal: stop.signal,
          ...(windowMs !== undefined ? { windowMs } : {}),
          ...(checkpointPath !== undefined ? { checkpoint: fileCheckpoint(checkpointPath) } : {}),
          onStart: (result) => {
            run = result;
          },
          onProgress: (p) => {
            const t = Date.now();
            if (t - lastProgress < progressMs && p.windowsDone < p.windowsTotal) return;
            lastProgress = t;
            io.stderr.write(
              `backfill: window ${p.windowsDone}/${p.windowsTotal} done (to ${toIso(p.windowEnd)}), ${p.pages} pages, ${p.records} records, ${p.alerts} alerts\n`,
            );
          },
        });
        return 0;
      },
      summary,
    );
  } finally {
    stop.dispose();
    await partition.close();
    await output.close();
    state.cleanup();
  }
}

export const backfillCommand: CliCommand = {
  name: 'backfill',
  summary: 'read past OCI IAM audit events (Audit API or Logging Search), resumable',
  usage: BACKFILL_HELP,
  run: (args, io) => runBackfill(args, io),
};
