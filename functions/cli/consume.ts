// `consume`: reads an OCI stream as one instance of a consumer group until stopped. SIGTERM /
// SIGINT finish the in-flight batch, commit it and exit 0. docs/consume-backfill.md.

import { hostname } from 'node:os';
import { loadConfigFile } from '../../shared/config/load-config.js';
import { dbSystemResolver } from '../../shared/decode/input-db-system.js';
import { AuditError } from '../../shared/errors.js';
import { ociAuthProvider, ociAuthSpecFromEnv } from '../../shared/oci/auth.js';
import { createOciClient } from '../../shared/oci/clients.js';
import {
  type ConsumerOptions,
  type ConsumerStats,
  StreamConsumer,
  type StreamStart,
} from '../../shared/sources/stream-consumer.js';
import { grouped } from '../../shared/text.js';
import {
  alertOutput,
  type CliDeps,
  ocidOption,
  openScopedPipeline,
  routeOutputs,
  stateOption,
  stopSignal,
  timeOption,
  warnOnce,
} from './host.js';
import { type CliCommand, type CliIo, formatOption, parseCommandArgs } from './io.js';
import { recordOutcomes, routeReport, withSummary } from './summary.js';

export const CONSUME_HELP = `Usage: heatwave-iam-audit consume --stream OCID --group NAME --config FILE [options]

Reads an OCI stream (collector records, OCI audit CloudEvents, Connector Hub payloads) as one
instance of a consumer group, correlates it and writes one alert per line, until stopped.
SIGTERM or SIGINT finishes the batch in progress, commits it and exits 0. Instances of one
group share the stream's partitions; state is kept per partition, so any number of instances
gives the same alerts.

Options:
  --stream OCID       stream to read                                      (required)
  --group NAME        consumer group                                      (required)
  --instance NAME     instance name within the group         (default: <hostname>-<pid>)
  --config FILE       pipeline configuration (YAML or JSON)               (required)
  --state FILE|URL    state store: a SQLite file, or mysql://user@host:port/db for a
                      store shared by instances on several hosts (password from
                      HWAUDIT_STATE_PASSWORD)                         (default: temporary)
  --endpoint URL      the stream pool's messages endpoint
                      (default: HWAUDIT_OCI_ENDPOINT_STREAMING, then HWAUDIT_OCI_ENDPOINT)
  --start WHERE       where a new group starts: trim-horizon, latest or an ISO 8601 time
                                                                     (default: trim-horizon)
  --limit N           messages per GetMessages, 1..10000                  (default: 5000)
  --db-system ID      DB system of raw MySQL records that name none
  --format FORMAT     alert format: jsonl, ocsf, cef or ecs               (default: jsonl)
  --out FILE          alerts file (appended to)                           (default: stdout)
  --until-idle        exit 0 once the instance's partitions are drained
  -h, --help          this help

Alerts also go out through the configuration's routes, when it has some (README "Routes"):
digests when the watermark passes the end of their period.

Authentication: HWAUDIT_OCI_AUTH (config-file, session-token, resource-principal,
instance-principal), HWAUDIT_OCI_CONFIG_FILE, HWAUDIT_OCI_PROFILE.

Exit codes: 0 stopped by SIGTERM or SIGINT (or drained, with --until-idle); 2 bad usage, or an
invalid configuration or OCI setting; 1 an internal failure, or the stream, the state store or an
output that failed (the message says which).
`;

export type ConsumeDeps = CliDeps & {
  /** Tuning passed to the consumer (pacing, retries, sleeps). */
  consumer?: Partial<Omit<ConsumerOptions, 'client' | 'openPartition' | 'streamId' | 'group' | 'instance'>>;
};

function startOption(value: string): StreamStart {
  const v = value.toLowerCase();
  if (v === 'trim-horizon') return 'TRIM_HORIZON';
  if (v === 'latest') return 'LATEST';
  return { atTime: new Date(timeOption('--start', value)) };
}

export async function runConsume(argv: string[], io: CliIo, deps: ConsumeDeps = {}): Promise<number> {
  const { values } = parseCommandArgs('consume', argv, {
    stream: { type: 'string' },
    group: { type: 'string' },
    instance: { type: 'string' },
    config: { type: 'string' },
    state: { type: 'string' },
    endpoint: { type: 'string' },
    start: { type: 'string', default: 'trim-horizon' },
    limit: { type: 'string', default: '5000' },
    'db-system': { type: 'string' },
    format: { type: 'string', default: 'jsonl' },
    out: { type: 'string' },
    'until-idle': { type: 'boolean', default: false },
  });
  for (const required of ['stream', 'group', 'config'] as const) {
    if (!values[required]) throw new AuditError('USAGE', `consume needs --${required} (see consume --help)`);
  }
  ocidOption('--stream', values.stream!, ['stream']);
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new AuditError('USAGE', '--limit expects an integer from 1 to 10000');
  }
  const format = formatOption('--format', values.format);
  const start = startOption(values.start);
  const env = deps.env ?? process.env;
  const state = stateOption(values.state, env);
  const instance = values.instance ?? `${hostname()}-${process.pid}`;
  const { config, rules } = await loadConfigFile(values.config!);
  const auth = await ociAuthProvider(ociAuthSpecFromEnv(env));
  const client = await createOciClient('streaming', {
    auth,
    env,
    ...(values.endpoint !== undefined ? { endpoint: values.endpoint } : {}),
  });

  if (state.temporary) {
    io.stderr.write('consume: no --state: correlation state is temporary and lost at exit\n');
  }
  const output = await alertOutput(io, values.out, format);
  const routes = await routeOutputs(config, env, config.routes.length > 0);
  const sinks = [output.sink, ...(routes?.sinks ?? [])];
  const warn = warnOnce(io, 'consume');
  const stop = stopSignal(io, deps, 'consume');
  const progressMs = deps.progressMs ?? 1000;
  let lastProgress = 0;
  const started = Date.now();
  const consumer = new StreamConsumer({
    // While the stream is quiet, timers (break-glass maximum duration) still fire by the clock.
    idleSweep: { latenessMs: config.lateness },
    ...deps.consumer,
    client,
    streamId: values.stream!,
    group: values.group!,
    instance,
    start,
    limit,
    signal: stop.signal,
    decode: { resolveDbSystem: dbSystemResolver(config, values['db-system']) },
    ...(values['until-idle'] ? { stopAfterEmptyGets: 1 } : {}),

    openPartition: (scope) =>
      openScopedPipeline({
        spec: state.spec,
        scope,
        config,
        rules,
        sinks,
        env,
        warn,
        command: 'consume',
        hold: 'batch',
      }),
    onBatch: (stats) => {
      const now = Date.now();
      if (now - lastProgress < progressMs) return;
      lastProgress = now;
      io.stderr.write(`consume: ${progressLine(stats, now - started)}\n`);
    },
  });
  try {
    return await withSummary(
      io,
      'consume',
      async () => {
        await consumer.run();
        return 0;
      },
      // What the consumer did (also when it failed).
      async (failed) => {
        const { stats } = consumer;
        return [
          `consume: ${failed ? 'failed' : 'stopped'}; ${progressLine(stats, Date.now() - started)}; calls: ${Object.entries(
            stats.calls,
          )
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}; throttled ${stats.throttled}, cursor re-creations ${stats.cursorRecreations}`,
          ...routeReport(routes?.sinks ?? []),
        ];
      },
    );
  } finally {
    stop.dispose();
    await routes?.close();
    await output.close();
    state.cleanup();
  }
}

function progressLine(
  stats: Pick<ConsumerStats, 'messages' | 'batches' | 'records' | 'pipeline' | 'alerts' | 'offsets'>,
  elapsedMs: number,
): string {
  const rate = elapsedMs > 0 ? Math.round((stats.messages * 1000) / elapsedMs) : 0;
  const offsets = Object.entries(stats.offsets)
    .map(([p, o]) => `p${p}@${o}`)
    .join(' ');
  return `${grouped(stats.messages)} messages in ${stats.batches} batches (${rate}/s), ${grouped(stats.records)} records: ${recordOutcomes(stats.pipeline)}; ${grouped(stats.alerts)} alerts${offsets ? `, offsets ${offsets}` : ''}`;
}

export const consumeCommand: CliCommand = {
  name: 'consume',
  summary: 'read an OCI stream as a consumer-group instance until stopped',
  usage: CONSUME_HELP,
  run: (args, io) => runConsume(args, io),
};
