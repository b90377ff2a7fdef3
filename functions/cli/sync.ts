// `sync`: discovers the fleet into a snapshot in the state store, the pipeline's baseline; what
// changed since the previous snapshot without an audit event becomes an alert (observed, not
// audited). `--print` shows the configuration the pipeline would use, as YAML. docs/sync.md.
import { stringify } from 'yaml';
import type { Snapshot } from '../../schemas/snapshot.js';
import { loadConfigFile } from '../../shared/config/load-config.js';
import { AuditError } from '../../shared/errors.js';
import { lazyOciAuth, ociAuthSpecFromEnv } from '../../shared/oci/auth.js';
import { Pipeline } from '../../shared/pipeline.js';
import { openStore } from '../../shared/state/open-store.js';
import { configWithSnapshot } from '../../shared/sync/baseline.js';
import {
  ociSyncClients,
  RUNNING_STATES,
  runSync,
  type SyncOptions,
  type SyncResult,
  syncState,
} from '../../shared/sync/sync.js';
import { EXIT_PARTIAL, instanceConnector } from './collect.js';
import {
  alertOutput,
  type CliDeps,
  COMPARTMENT_OCID,
  holdScope,
  ocidOption,
  stateOption,
  warnOnce,
} from './host.js';
import { type CliCommand, type CliIo, formatOption, LineWriter, parseCommandArgs, printable } from './io.js';
import { pipelineReport } from './summary.js';

export const SYNC_HELP = `Usage: heatwave-iam-audit sync --config FILE --state FILE|URL [options]
       heatwave-iam-audit sync --config FILE --print [--state FILE|URL]

Discovers the fleet: IAM users, groups and memberships (classic IAM and every identity domain),
the DB systems of a compartment and those below it (endpoints, read replicas), and each DB
system's MySQL accounts and privileges over the collector's connection (SELECT on mysql.user,
global_grants, role_edges, db and tables_priv; doctor says which it lacks). The result is a snapshot
in the state store, which the pipeline uses as its baseline; the configuration keeps what cannot
be discovered and wins where it says otherwise. A change since the previous snapshot that no audit
event in the state explains is an alert, marked observed, not audited: run it after the audit
trail of the period is in (collect, backfill).

Options:
  --config FILE        pipeline configuration (YAML or JSON); needs tenancy    (required)
  --state FILE|URL     state store: a SQLite file or mysql://USER@HOST[:PORT]/DB
                       (password from HWAUDIT_STATE_PASSWORD)   (required unless --print)
  --compartment OCID   where DB systems are looked for, with the compartments below it
                                                                   (default: the tenancy)
  --print              print the configuration the pipeline would use, as YAML, and store
                       nothing (with --state, parts that fail keep the stored snapshot's data)
  --format FORMAT      alert format: jsonl, ocsf, cef or ecs                   (default: jsonl)
  --out FILE           alerts file, appended to (the YAML with --print)       (default: stdout)
  -h, --help           this help

Exit codes: 0 everything was read; 3 some part could not be read (its previous data is kept,
the summary says which and why); 2 bad usage or configuration; 1 nothing could be read (the
previous snapshot stays in use) or an internal error.

Authentication: HWAUDIT_OCI_AUTH (config-file, session-token, resource-principal,
instance-principal), HWAUDIT_OCI_CONFIG_FILE, HWAUDIT_OCI_PROFILE; collector passwords as for collect.
`;

export async function runSyncCommand(argv: string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  const { values } = parseCommandArgs('sync', argv, {
    config: { type: 'string' },
    state: { type: 'string' },
    compartment: { type: 'string' },
    print: { type: 'boolean', default: false },
    format: { type: 'string', default: 'jsonl' },
    out: { type: 'string' },
  });
  if (!values.config) throw new AuditError('USAGE', 'sync needs --config FILE (see sync --help)');
  if (!values.state && !values.print)
    throw new AuditError(
      'USAGE',
      'sync needs --state FILE|URL to keep the snapshot (or --print to review it)',
    );
  if (values.compartment !== undefined) ocidOption('--compartment', values.compartment, COMPARTMENT_OCID);
  const format = formatOption('--format', values.format);
  const env = deps.env ?? process.env;
  const loaded = await loadConfigFile(values.config);
  const { config, rules } = loaded;
  const state = stateOption(values.state, env);
  const store = await openStore(state.spec, {
    env: env as NodeJS.ProcessEnv,
    onWarning: warnOnce(io, 'sync'),
  });
  const auth = lazyOciAuth(ociAuthSpecFromEnv(env));
  const options: Omit<SyncOptions, 'previous'> = {
    config,
    compartment: values.compartment,
    clients: async () => ociSyncClients(await auth(), env),
    connect: instanceConnector(env, warnOnce(io, 'sync')),
  };
  try {
    if (values.print) {
      const [previous] = await store.snapshots();
      const result = await runSync({ ...options, previous });
      const out = values.out ? await LineWriter.toFile(values.out) : new LineWriter(io.stdout, false);
      await out.line(
        `# The configuration as the pipeline uses it with the snapshot of ${result.snapshot.time}\n# (${values.config} and what sync discovered; nothing was stored).\n${stringify(configWithSnapshot(loaded.input, result.snapshot)).trimEnd()}`,
      );
      await out.close();
      io.stderr.write(`${report(result, undefined, false).join('\n')}\n`);
      return result.failed.length > 0 ? EXIT_PARTIAL : 0;
    }
    const lock = await holdScope(store, 'sync', env);
    try {
      const output = await alertOutput(io, values.out, format);
      try {
        const pipeline = await Pipeline.open({ config, rules, store, sinks: [output.sink] });
        const result = await syncState({ ...options, store, pipeline });
        // Changes are judged against the audit trail the state holds up to the snapshot's time.
        await pipeline.finish(Date.parse(result.snapshot.time));
        io.stderr.write(
          `${[...report(result, result.previous), ...pipelineReport(pipeline, undefined, [])].join('\n')}\n`,
        );
        return result.failed.length > 0 ? EXIT_PARTIAL : 0;
      } finally {
        await output.close();
      }
    } finally {
      await lock.release();
    }
  } finally {
    await store.close();
    state.cleanup();
  }
}

/**
 * What was discovered, what it cost, what could not be read, and how it compares with before (or,
 * `stored` false for --print, that nothing was stored).
 */
function report(result: SyncResult, previous: Snapshot | undefined, stored = true): string[] {
  const { snapshot: s, failed } = result;
  const domains = Object.keys(s.parts).filter((p) => p.startsWith('domain:')).length;
  const requests = Object.values(s.requests.oci).reduce((a, b) => a + b, 0);
  const lines = [
    `sync: snapshot ${s.id}`,
    `  directory: ${s.directory.users.length} users, ${s.directory.groups.length} groups, ${s.directory.memberships.length} memberships (classic IAM and ${domains} identity domain(s))`,
    `  DB systems: ${s.dbSystems.length}, accounts read on ${s.dbSystems.filter((d) => d.accounts).length}${stoppedLine(s)}`,
    `  cost: ${requests} OCI API request(s), ${s.requests.sql} SQL statement(s)`,
  ];
  for (const [part, p] of Object.entries(s.parts)) {
    if (p.status === 'failed')
      lines.push(printable(`  NOT READ ${part}: ${p.error} (data of ${p.readAt} kept)`));
    else if (p.warning) lines.push(printable(`  warning ${part}: ${p.warning}`));
  }
  if (failed.length === 0) lines.push('  every part was read');
  if (!stored) lines.push('  printed for review: nothing was stored');
  else if (previous) lines.push(`  compared with the snapshot of ${previous.time}`);
  else lines.push('  first snapshot of this state: it is the baseline');
  return lines;
}

/**
 * `; not running: name (INACTIVE)`: DB systems whose accounts were not read, and whose instances
 * collect will report as not read until they run again.
 */
function stoppedLine(s: Snapshot): string {
  const stopped = s.dbSystems.filter((d) => d.state !== undefined && !RUNNING_STATES.has(d.state));
  if (stopped.length === 0) return '';
  return `; not running: ${stopped.map((d) => `${d.name} (${d.state})`).join(', ')}`;
}

export const syncCommand: CliCommand = {
  name: 'sync',
  summary: 'discover IAM users and groups, DB systems and MySQL accounts into the baseline',
  usage: SYNC_HELP,
  run: (args, io) => runSyncCommand(args, io),
};
