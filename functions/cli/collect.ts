// `collect`: reads the configured DB systems' audit logs with audit_log_read() and runs them through
// the pipeline (the same alerts, ledger and summary as `replay`). docs/collector.md.

import { parseDuration } from '../../schemas/config.js';
import { loadConfigFile } from '../../shared/config/load-config.js';
import { AuditError } from '../../shared/errors.js';
import { ociAuthProvider, ociAuthSpecFromEnv } from '../../shared/oci/auth.js';
import { vaultSecretFetcher } from '../../shared/oci/vault.js';
import { Pipeline } from '../../shared/pipeline.js';
import type { OpenRoutes } from '../../shared/route/routes.js';
import { collect, type InstanceReport } from '../../shared/sources/collector.js';
import { iamLogin } from '../../shared/sources/iam-login.js';
import {
  checkPasswordVariables,
  connectInstance,
  type InstanceTarget,
  instanceTargets,
  NO_ENDPOINTS,
  type SqlSession,
  secretReader,
  withDiscoveredFleet,
} from '../../shared/sources/mysql-connection.js';
import { abortableSleep } from '../../shared/sources/stream-consumer.js';
import { openStore } from '../../shared/state/open-store.js';
import { grouped } from '../../shared/text.js';
import {
  alertOutput,
  type CliDeps,
  holdScope,
  routeOutputs,
  stateOption,
  stopSignal,
  timeOption,
  warnOnce,
} from './host.js';
import { type CliCommand, type CliIo, formatOption, parseCommandArgs, printable } from './io.js';
import { checkOutputPath } from './output-file.js';
import { pipelineReport, readLedger, routeReport, withSummary } from './summary.js';

export const COLLECT_HELP = `Usage: heatwave-iam-audit collect --config FILE [options]

Reads the audit log of every configured DB system instance (dbSystems[].endpoints, or those the
state's last sync discovered; not of a DB system set collect: false) with audit_log_read(), from
where the last run stopped, and writes one alert per line, as replay does.
Where each instance stands is kept in the state with the events, so a run that is stopped or
crashes goes on where it was, with no event lost or read twice.

Options:
  --config FILE       pipeline configuration (YAML or JSON)               (required)
  --state FILE|URL    state store: a SQLite file or mysql://USER@HOST[:PORT]/DB
                      (password from HWAUDIT_STATE_PASSWORD)       (default: temporary)
  --db-system ID      read only this DB system (id or name); repeatable (default: all)
  --from TIME         where an instance read for the first time starts (ISO 8601); one
                      with no event there yet starts there again at the next run
                      (default: collector.start, else the oldest event it keeps)
  --follow            keep reading until SIGTERM or SIGINT
  --interval DURATION pause between passes with --follow (ISO 8601)   (default: PT1M)
  --format FORMAT     alert format: jsonl, ocsf, cef or ecs               (default: jsonl)
  --out FILE          alerts file, appended to                            (default: stdout)
  --sessions FILE     write the session ledger at the end
  --sessions-format FORMAT
                      ledger format: jsonl, ocsf, cef or ecs              (default: jsonl)
  --routes            also deliver through the configuration's routes (digests are sent
                      when their period is over, and at the end without --follow)
  -h, --help          this help

Exit codes: 0 every instance was read; 3 some instance could not be read (the summary says
which and why; the others were read and committed); 2 bad usage or configuration; 1 an internal
failure, or the state store or an output (the alerts file or a route) that failed.

Passwords come from the environment or OCI Vault (collector.password), never from the command
line. Vault secrets and IAM logins (collector.auth: iam) use HWAUDIT_OCI_AUTH and the other OCI
settings (see the README).
`;

/** Exit code of a run in which some instance could not be read. */
export const EXIT_PARTIAL = 3;

export async function runCollect(argv: string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  const { values } = parseCommandArgs('collect', argv, {
    config: { type: 'string' },
    state: { type: 'string' },
    'db-system': { type: 'string', multiple: true },
    from: { type: 'string' },
    follow: { type: 'boolean', default: false },
    interval: { type: 'string', default: 'PT1M' },
    format: { type: 'string', default: 'jsonl' },
    out: { type: 'string' },
    sessions: { type: 'string' },
    'sessions-format': { type: 'string', default: 'jsonl' },
    routes: { type: 'boolean', default: false },
  });
  if (!values.config) throw new AuditError('USAGE', 'collect needs --config FILE (see collect --help)');
  const format = formatOption('--format', values.format);
  const sessionsFormat = formatOption('--sessions-format', values['sessions-format']);
  if (values.sessions !== undefined) checkOutputPath('--sessions', values.sessions);
  const from = values.from === undefined ? undefined : timeOption('--from', values.from);
  if (!values.follow && values.interval !== 'PT1M')
    throw new AuditError(
      'USAGE',
      '--interval is the pause between passes of --follow: add --follow, or leave it out',
    );
  const intervalMs = parseDuration(values.interval);
  if (intervalMs === undefined || intervalMs <= 0)
    throw new AuditError('USAGE', '--interval expects an ISO 8601 duration such as PT1M');
  const env = deps.env ?? process.env;
  const { config, rules } = await loadConfigFile(values.config);
  const state = stateOption(values.state, env);
  if (state.temporary)
    io.stderr.write('collect: no --state: positions and state are temporary and lost at exit\n');
  const store = await openStore(state.spec, {
    env: env as NodeJS.ProcessEnv,
    onWarning: warnOnce(io, 'collect'),
  });
  let targets: InstanceTarget[];
  try {
    const fleet = await withDiscoveredFleet(config, store);
    targets = instanceTargets(fleet, values['db-system'] ?? []);
    if (targets.length === 0) throw new AuditError('USAGE', `collect: ${NO_ENDPOINTS}`);
    checkPasswordVariables(fleet, targets, env, values.config);
  } catch (error) {
    await store.close();
    state.cleanup();
    throw error;
  }
  const output = await alertOutput(io, values.out, format);
  const stop = stopSignal(io, deps, 'collect');
  const started = Date.now();
  let routes: OpenRoutes | undefined;
  try {
    routes = await routeOutputs(config, env, values.routes);
    const lock = await holdScope(store, 'collect', env);
    try {
      const pipeline = await Pipeline.open({
        config,
        rules,
        store,
        sinks: [output.sink, ...(routes?.sinks ?? [])],
      });
      const connect = instanceConnector(env, warnOnce(io, 'collect'));
      const retryAt = new Map<string, { at: number; failures: number }>();
      /** The instances of the last pass that ended (none when the first one failed). */
      let last: InstanceReport[] = [];
      let lastProgress = 0;
      /** What the run did (also when it failed: without the session ledger, which it then does not write). */
      const summary = async (failed: boolean): Promise<string[]> => {
        const coverage = failed
          ? undefined
          : await readLedger(store, { path: values.sessions, format: sessionsFormat });
        const seconds = (Date.now() - started) / 1000;
        const read = last.reduce((n, r) => n + r.records, 0);
        return [
          failed && last.length === 0
            ? `collect: ${targets.length} instance(s), ${seconds.toFixed(1)} s; the first pass did not end`
            : `collect: ${last.length} instance(s), ${grouped(read)} records in the last pass, ${seconds.toFixed(1)} s`,
          ...instanceLines(last),
          ...pipelineReport(pipeline, coverage, [], state.temporary ? undefined : state.spec),
          ...routeReport(routes?.sinks ?? []),
        ];
      };
      return await withSummary(
        io,
        'collect',
        async () => {
          for (;;) {
            const due = targets.filter(
              (t) => (retryAt.get(`${t.db.id}/${t.instance}`)?.at ?? 0) <= Date.now(),
            );
            const result = await collect({
              pipeline,
              targets: due,
              connect,
              ...(from !== undefined ? { from } : {}),
              signal: stop.signal,
              onBatch: (p) => {
                const now = Date.now();
                if (now - lastProgress < (deps.progressMs ?? 1000)) return;
                lastProgress = now;
                io.stderr.write(`  ${grouped(p.records)} records, ${p.alerts} alerts\n`);
              },
            });
            last = result.instances;
            for (const r of result.instances) {
              const key = `${r.dbSystem.id}/${r.instance}`;
              if (!r.error) retryAt.delete(key);
              else {
                const failures = (retryAt.get(key)?.failures ?? 0) + 1;
                retryAt.set(key, {
                  at: Date.now() + Math.min(intervalMs * 2 ** (failures - 1), 30 * 60_000),
                  failures,
                });
              }
            }
            if (!values.follow || stop.signal.aborted) break;
            // Following runs without end: an output that failed when the state opened fails the pass.
            await pipeline.settle();
            const busy = result.instances.filter((r) => r.records > 0 || r.error);
            if (busy.length > 0) io.stderr.write(`${instanceLines(busy).join('\n')}\n`);
            // While sources are quiet, timers (break-glass maximum duration) fire by the clock.
            const target = Date.now() - config.lateness;
            if (target > (pipeline.watermark ?? Number.NEGATIVE_INFINITY)) await pipeline.advance(target);
            await abortableSleep(intervalMs, stop.signal);
            if (stop.signal.aborted) break;
          }
          // A run stopped while following settles: an output that failed at the open fails it.
          if (!values.follow) await pipeline.finish();
          else await pipeline.settle();
          const failed = last.filter((r) => r.error);
          return failed.length > 0 || last.length < targets.length ? EXIT_PARTIAL : 0;
        },
        summary,
      );
    } finally {
      await lock.release();
    }
  } finally {
    stop.dispose();
    await routes?.close();
    await output.close();
    await store.close();
    state.cleanup();
  }
}

/**
 * Sessions to the instances: passwords from the environment or OCI Vault, IAM logins as the
 * HWAUDIT_OCI_AUTH principal (only built when an instance logs in with `auth: iam`).
 */
export function instanceConnector(
  env: Readonly<Record<string, string | undefined>>,
  onWarning: (text: string) => void,
): (target: InstanceTarget) => Promise<SqlSession> {
  const readSecret = secretReader(env, async () =>
    vaultSecretFetcher({ auth: await ociAuthProvider(ociAuthSpecFromEnv(env)), env }),
  );
  let iam: ReturnType<typeof iamLogin> | undefined;
  return (target) => {
    if (target.settings.auth === 'iam') iam ??= iamLogin(ociAuthSpecFromEnv(env), { env, onWarning });
    return connectInstance(target, readSecret, iam);
  };
}

function instanceLines(reports: readonly InstanceReport[]): string[] {
  return reports.map((r) => {
    const server = r.server ? `, MySQL ${r.server.version}, audit log ${r.server.flavor ?? 'absent'}` : '';
    const state = r.error ? `NOT READ: ${r.error}` : r.caughtUp ? 'caught up' : 'stopped before the end';
    const gaps = r.gaps > 0 ? `, ${r.gaps} gap(s) reported` : '';
    const note = r.server?.bufferNote ? ` (${r.server.bufferNote})` : '';
    return printable(
      `  ${r.dbSystem.name}/${r.instance} (${r.address}${server}): ${grouped(r.records)} records${gaps}, ${state}${note}`,
    );
  });
}

export const collectCommand: CliCommand = {
  name: 'collect',
  summary: 'read the DB systems audit logs (audit_log_read) into alerts',
  usage: COLLECT_HELP,
  run: (args, io) => runCollect(args, io),
};
