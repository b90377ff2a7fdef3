// `doctor`: a readiness checklist of every DB system instance the collector reads. docs/collector.md.
import { loadConfigFile } from '../../shared/config/load-config.js';
import type { Mappings } from '../../shared/correlate/mappings.js';
import { AuditError } from '../../shared/errors.js';
import { AuditFacts } from '../../shared/report/audit-facts.js';
import {
  diagnoseFleet,
  type InstanceDiagnosis,
  proxiedAccountsCheck,
  unknownAccountsCheck,
} from '../../shared/sources/doctor.js';
import {
  checkPasswordVariables,
  instanceTargets,
  NO_ENDPOINTS,
  withDiscoveredFleet,
} from '../../shared/sources/mysql-connection.js';
import { EXIT_PARTIAL, instanceConnector } from './collect.js';
import { type CliDeps, openStateToRead, warnOnce } from './host.js';
import { type CliCommand, type CliIo, parseCommandArgs, printable } from './io.js';

export const DOCTOR_HELP = `Usage: heatwave-iam-audit doctor --config FILE [options]

Checks that every DB system instance collect reads (dbSystems[].endpoints, and with --state those
the last sync discovered; not of a DB system set collect: false) can be audited: reachable, TLS,
server version, audit log installed and writing JSON, an audit filter that logs connections and
statements for every account, audit_log_read() permitted to the collector user, the read buffer,
the authentication_oci plugin and the accounts that use it, and with collector.auth: iam which IAM
principal logged in. Each failure comes with its fix. With --state it also warns of the proxied
accounts (those a group mapping resolves to) that the state holds open to logins without IAM now:
unlocked, with a plugin other than authentication_oci or mysql_no_login.

Options:
  --config FILE       pipeline configuration (YAML or JSON)               (required)
  --state FILE|URL    also check the DB systems and endpoints the state's last sync discovered,
                      and the proxied accounts the state holds open to logins without IAM
  --scope NAME        the state's scope whose accounts are read: the one the pipeline correlates
                      the DB systems in (the function's is function); needs --state
                                                                          (default: default)
  --db-system ID      check only this DB system (id or name); repeatable  (default: all)
  --json              print the checks as JSON instead of a checklist
  -h, --help          this help

Exit codes: 0 every instance can be audited; 3 some cannot (a check failed); 2 bad usage or
configuration; 1 internal error.
`;

const MARK = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' } as const;

function checklist(results: readonly InstanceDiagnosis[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.dbSystem.name}/${r.instance} (${r.address})`);
    const width = Math.max(...r.checks.map((c) => c.name.length));
    for (const c of r.checks) {
      lines.push(`  ${MARK[c.status]}  ${c.name.padEnd(width)}  ${printable(c.detail)}`);
      if (c.fix && c.status !== 'pass') lines.push(`  ${' '.repeat(6 + width)}  fix: ${printable(c.fix)}`);
    }
  }
  const ready = results.filter((r) => r.ready).length;
  lines.push(
    `doctor: ${ready} of ${results.length} instance(s) can be audited${ready < results.length ? `; ${results.length - ready} cannot (see FAIL above)` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}

export async function runDoctor(argv: string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  const { values } = parseCommandArgs('doctor', argv, {
    config: { type: 'string' },
    state: { type: 'string' },
    scope: { type: 'string' },
    'db-system': { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
  });
  if (!values.config) throw new AuditError('USAGE', 'doctor needs --config FILE (see doctor --help)');
  if (values.scope !== undefined && values.state === undefined)
    throw new AuditError(
      'USAGE',
      'doctor: --scope needs --state: it names the scope of the state whose accounts are read',
    );
  const scope = values.scope ?? 'default';
  const env = deps.env ?? process.env;
  const warn = warnOnce(io, 'doctor');
  const loaded = (await loadConfigFile(values.config)).config;
  let config = loaded;
  let accounts: { open: ReturnType<Mappings['openProxiedAccounts']>; known: Set<string> } | undefined;
  if (values.state !== undefined) {
    const store = await openStateToRead(values.state, 'doctor', env, warn, scope);
    try {
      config = await withDiscoveredFleet(loaded, store);
      // Every statement and snapshot the scope applied: what holds now.
      const { mappings } = new AuditFacts(await store.loadEntities());
      accounts = {
        open: mappings.openProxiedAccounts(Number.POSITIVE_INFINITY),
        known: new Set(mappings.rows().map((r) => r.db)),
      };
    } finally {
      await store.close();
    }
  }
  const targets = instanceTargets(config, values['db-system'] ?? []);
  if (targets.length === 0) throw new AuditError('USAGE', `doctor: ${NO_ENDPOINTS}`);
  checkPasswordVariables(config, targets, env, values.config);
  const results = await diagnoseFleet(
    targets,
    config,
    instanceConnector(env, warn),
    values.state === undefined ? 'the configuration' : 'the configuration or the last sync',
  );
  if (accounts)
    for (const r of results) {
      const db = r.dbSystem.id;
      r.checks.push(
        accounts.known.has(db)
          ? proxiedAccountsCheck(accounts.open.filter((o) => o.db === db))
          : unknownAccountsCheck(scope),
      );
    }
  io.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : checklist(results));
  return results.every((r) => r.ready) ? 0 : EXIT_PARTIAL;
}

export const doctorCommand: CliCommand = {
  name: 'doctor',
  summary: 'check that every DB system instance can be audited',
  usage: DOCTOR_HELP,
  run: (args, io) => runDoctor(args, io),
};
