// Fleet readiness: for every DB system instance, can the collector audit it? Each check passes,
// warns or fails with the fix. What the checks read is listed in docs/collector.md ("doctor").
import type { Config, DbSystemConfig } from '../../schemas/config.js';
import { accountKey, accountName, type DirectLogin } from '../correlate/mappings.js';
import type { AccountRef } from '../correlate/sql-facts.js';
import { AuditError } from '../errors.js';
import { inGroups } from '../in-groups.js';
import { allowListed } from '../rules/access-local-account.js';
import { grantsFix, readAccounts } from '../sync/read-accounts.js';
import { BEGINNING_OF_TIME, toIso } from '../time.js';
import { auditFlavorOf } from './audit-log-reader.js';
import { describePrincipal, type IamPrincipal, TOKEN_REFRESH_MARGIN_MS } from './iam-login.js';
import { type InstanceTarget, instanceError, type SqlSession } from './mysql-connection.js';

export type CheckStatus = 'pass' | 'warn' | 'fail';

export type Check = { name: string; status: CheckStatus; detail: string; fix?: string };

export type InstanceDiagnosis = {
  dbSystem: { id: string; name: string };
  instance: string;
  address: string;
  checks: Check[];
  /** No check failed: the collector can read this instance. */
  ready: boolean;
};

/** The filter `doctor` proposes: connections, statements and table access of every account. */
export const RECOMMENDED_FILTER =
  '{"filter":{"class":[{"name":"connection"},{"name":"general"},{"name":"table_access"}]}}';

const FILTER_FIX = `SELECT audit_log_filter_set_filter('heatwave_iam_audit', '${RECOMMENDED_FILTER}'); SELECT audit_log_filter_set_user('%', 'heatwave_iam_audit');`;

type Classes = { connection: boolean; general: boolean; table_access: boolean };

/**
 * Which classes a filter definition logs. `{"filter":{}}` and `{"log":true}` log everything;
 * with `class` items, the listed classes (unless `"log": false`) and the rest only under a
 * top-level `"log": true`. Event-level conditions count as logging the class.
 */
export function loggedClasses(definition: unknown): Classes {
  const none: Classes = { connection: false, general: false, table_access: false };
  const filter = (definition as { filter?: unknown } | null)?.filter;
  if (typeof filter !== 'object' || filter === null) return none;
  const f = filter as { log?: unknown; class?: unknown };
  const items = f.class === undefined ? [] : Array.isArray(f.class) ? f.class : [f.class];
  const rest = f.log === undefined ? items.length === 0 : f.log === true;
  const out: Classes = { connection: rest, general: rest, table_access: rest };
  for (const item of items) {
    if (typeof item !== 'object' || item === null) continue;
    const { name, log } = item as { name?: unknown; log?: unknown };
    const names: unknown[] = Array.isArray(name) ? name : [name];
    for (const n of names) {
      if (n === 'connection' || n === 'general' || n === 'table_access') out[n] = log !== false;
    }
  }
  return out;
}

type Probe = (sql: string) => Promise<Record<string, unknown>[]>;

/** What to do about an instance that cannot be reached: a name that does not resolve is not a route. */
function unreachableFix(code: unknown, retryable: boolean, port: number): string | undefined {
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return "the host name does not resolve from here: check the endpoint's host (a DB system's private endpoint resolves only where its VCN's DNS answers; its IP address does not need it)";
  return retryable
    ? `open the path from the collector (the function's subnet) to the DB system's endpoint: route, security list or NSG on port ${port}`
    : undefined;
}

/** Where the accounts a DB system's configuration holds come from, as the IAM accounts check says. */
export type AccountsKnown = 'the configuration' | 'the configuration or the last sync';

/** Runs every check on one instance; a check that cannot run says why and what to grant. */
export async function diagnose(
  target: InstanceTarget,
  db: DbSystemConfig,
  connect: (target: InstanceTarget) => Promise<SqlSession>,
  known: AccountsKnown = 'the configuration',
): Promise<InstanceDiagnosis> {
  const checks: Check[] = [];
  const add = (name: string, status: CheckStatus, detail: string, fix?: string) =>
    checks.push(fix === undefined ? { name, status, detail } : { name, status, detail, fix });
  const result = (): InstanceDiagnosis => ({
    dbSystem: target.db,
    instance: target.instance,
    address: `${target.endpoint.host}:${target.endpoint.port}`,
    checks,
    ready: checks.every((c) => c.status !== 'fail'),
  });

  let session: SqlSession;
  try {
    session = await connect(target);
  } catch (error) {
    const e = instanceError(target, error, 'while connecting');
    if (target.settings.auth === 'iam' && (e.details.errno === 1045 || e.cause instanceof AuditError)) {
      add('IAM login', 'fail', e.message, iamFix(target, e.details));
      return result();
    }
    add('reachable', 'fail', e.message, unreachableFix(e.details.code, e.retryable, target.endpoint.port));
    return result();
  }
  const probe: Probe = (sql) => session.query(sql);
  try {
    add('reachable', 'pass', `connected as ${target.settings.user}`);
    if (session.principal) await checkIamLogin(probe, session.principal, add);
    await checkTls(probe, target, add);
    const variables = await checkServer(probe, add);
    const prefix = auditFlavorOf([...variables.keys()])?.prefix;
    if (prefix === undefined) {
      add(
        'audit log',
        'fail',
        'no audit log plugin or component is installed',
        'on HeatWave, use MySQL 8.0.34-u2 or later (auditing is built in); elsewhere install MySQL Enterprise Audit',
      );
    } else {
      await checkAuditLog(probe, variables, prefix, target, add);
    }
    await checkIam(probe, db, target, add, known);
    if (target.endpoint.role === 'primary') await checkPrivileges(session, target, add);
  } finally {
    await session.close();
  }
  return result();
}

type Add = (name: string, status: CheckStatus, detail: string, fix?: string) => void;

async function checkTls(probe: Probe, target: InstanceTarget, add: Add): Promise<void> {
  const version = String(
    (await probe("SHOW SESSION STATUS LIKE 'Ssl_version'").catch(() => []))[0]?.Value ?? '',
  );
  if (target.settings.tls === 'disabled' || version === '')
    add(
      'TLS',
      target.settings.tls === 'disabled' ? 'warn' : 'fail',
      version === '' ? 'the session is not encrypted' : `${version}, but the configuration allows plaintext`,
      'set collector.tls to required (or verify-identity with the CA file)',
    );
  else
    add(
      'TLS',
      'pass',
      `${version}${target.settings.tls === 'verify-identity' ? ', server certificate verified' : ' (certificate not verified: use verify-identity with the CA file to verify it)'}`,
    );
}

async function checkServer(probe: Probe, add: Add): Promise<Map<string, string>> {
  const [info] = await probe('SELECT @@version AS version, @@server_uuid AS server_uuid');
  const version = String(info?.version ?? '');
  const [major = 0, minor = 0, patch = 0] = (/^(\d+)\.(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
  const old = major < 8 || (major === 8 && minor === 0 && patch < 34);
  add(
    'server version',
    old ? 'warn' : 'pass',
    `MySQL ${version}`,
    old ? 'HeatWave needs 8.0.34-u2 or later for audit filters and audit_log_read()' : undefined,
  );
  const rows = await probe("SHOW GLOBAL VARIABLES LIKE 'audit\\_log%'");
  return new Map(rows.map((r) => [String(r.Variable_name), String(r.Value)]));
}

async function checkAuditLog(
  probe: Probe,
  variables: Map<string, string>,
  prefix: string,
  target: InstanceTarget,
  add: Add,
): Promise<void> {
  const flavor = auditFlavorOf([...variables.keys()])!.flavor;
  add(
    'audit log',
    'pass',
    `installed (${flavor === 'plugin' ? 'audit_log plugin' : flavor === 'component' ? 'audit log component' : "Percona's audit log filter component"})`,
  );
  // audit_log_disable (8.0.28 and later; audit_log.disable for the component) stops every event.
  const disable = `${prefix}disable`;
  const disabled = /^(ON|1)$/i.test(variables.get(disable) ?? '');
  add(
    'audit logging',
    disabled ? 'fail' : 'pass',
    disabled
      ? `${disable} = ON: the server writes no audit events, so collect reads nothing`
      : `on${variables.has(disable) ? ` (${disable} = ${variables.get(disable)})` : ''}`,
    disabled
      ? `set ${disable} to OFF (on HeatWave, in the DB system's configuration: a custom configuration with ${disable} OFF, applied to the DB system)`
      : undefined,
  );
  const format = variables.get(`${prefix}format`);
  add(
    'JSON format',
    format === undefined || /^JSON/i.test(format) ? 'pass' : 'fail',
    `${prefix}format = ${format ?? 'unknown'}`,
    format === undefined || /^JSON/i.test(format)
      ? undefined
      : `set ${prefix}format=JSON (audit_log_read() reads JSON logs only)`,
  );

  // The filter tables live in `audit_log_database` (default mysql).
  const database = variables.get(`${prefix}database`) ?? 'mysql';
  try {
    const filters = await probe(`SELECT NAME, FILTER FROM \`${database}\`.audit_log_filter`);
    const users = await probe(`SELECT USER, HOST, FILTERNAME FROM \`${database}\`.audit_log_user`);
    const assigned = users.find((u) => String(u.USER) === '%');
    const filter = assigned && filters.find((f) => String(f.NAME) === String(assigned.FILTERNAME));
    const classes = filter ? loggedClasses(parseJson(filter.FILTER)) : undefined;
    if (!classes)
      add(
        'audit filter',
        'fail',
        "no filter is assigned to the default account '%': HeatWave logs nothing",
        FILTER_FIX,
      );
    else if (!classes.connection || !classes.general)
      add(
        'audit filter',
        'fail',
        `filter ${String(assigned!.FILTERNAME)} for '%' does not log ${[!classes.connection && 'connection', !classes.general && 'general'].filter(Boolean).join(' and ')} events`,
        FILTER_FIX,
      );
    else
      add(
        'audit filter',
        classes.table_access ? 'pass' : 'warn',
        `filter ${String(assigned!.FILTERNAME)} for '%' logs connections and statements${classes.table_access ? ' and table access' : ', not table access'}`,
        classes.table_access ? undefined : FILTER_FIX,
      );
  } catch {
    add(
      'audit filter',
      'warn',
      'cannot read the audit filter tables',
      `GRANT SELECT ON ${database}.audit_log_filter TO ${target.settings.user}; GRANT SELECT ON ${database}.audit_log_user TO ${target.settings.user};`,
    );
  }

  try {
    await probe('SELECT audit_log_read_bookmark() AS bookmark');
    await probe(
      `SELECT audit_log_read('{"start":{"timestamp":"2999-01-01"},"max_array_length":1}') AS events`,
    );
    await probe("SELECT audit_log_read('null') AS events");
    add('audit_log_read()', 'pass', `${target.settings.user} may read the audit log`);
  } catch (error) {
    add(
      'audit_log_read()',
      'fail',
      `${target.settings.user} cannot read the audit log (${(error as { errno?: number }).errno ?? 'error'})`,
      `GRANT AUDIT_ADMIN ON *.* TO ${target.settings.user};`,
    );
  }

  const name = `${prefix}read_buffer_size`;
  const current = Number(variables.get(name));
  const wanted = target.settings.readBufferSize;
  if (!variables.has(name)) add('read buffer', 'warn', `the server has no ${name}`);
  else if (current >= wanted) add('read buffer', 'pass', `${name} = ${current} bytes`);
  else {
    const raised = await probe(`SET SESSION ${name} = ${wanted}`).then(
      () => true,
      () => false,
    );
    add(
      'read buffer',
      raised ? 'pass' : 'warn',
      raised
        ? `${name} = ${current} bytes, raised to ${wanted} for the collector's sessions`
        : `${name} = ${current} bytes and cannot be raised per session: events larger than that are skipped (reported as audit.gap)`,
      raised ? undefined : `raise ${name} in the DB system's configuration`,
    );
  }
}

/** Whether sync can read every account's privileges here (it reads the primary's grant tables). */
async function checkPrivileges(session: SqlSession, target: InstanceTarget, add: Add): Promise<void> {
  let read: Awaited<ReturnType<typeof readAccounts>>;
  try {
    read = await readAccounts(session, target.settings.user);
  } catch {
    return; // mysql.user cannot be read: the IAM accounts check says so, and the grant.
  }
  if (read.missing.length > 0)
    add(
      'privileges',
      'warn',
      `cannot read ${read.missing.join(', ')}: sync cannot tell the accounts' privileges (the access review's, the privileged accounts, privilege drift) from there`,
      grantsFix(read.missing, target.settings.user),
    );
  else
    add(
      'privileges',
      'pass',
      `sync can read the privileges of ${read.accounts.length} account(s), ${read.privilegedAccounts.length} of them privileged`,
    );
}

async function checkIam(
  probe: Probe,
  db: DbSystemConfig,
  target: InstanceTarget,
  add: Add,
  known: AccountsKnown,
): Promise<void> {
  const plugins = await probe(
    "SELECT PLUGIN_NAME, PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME IN ('audit_log', 'authentication_oci')",
  ).catch(() => []);
  const oci = plugins.find((p) => String(p.PLUGIN_NAME) === 'authentication_oci');
  add(
    'authentication_oci',
    oci && String(oci.PLUGIN_STATUS) === 'ACTIVE' ? 'pass' : 'warn',
    oci ? `plugin ${String(oci.PLUGIN_STATUS)}` : 'plugin not loaded: no IAM logins on this DB system',
  );
  try {
    const rows = await probe(
      'SELECT User, Host, plugin, authentication_string, account_locked FROM mysql.user',
    );
    const iam = rows.filter((r) => String(r.plugin) === 'authentication_oci');
    const groups = iam.filter((r) => String(r.authentication_string).includes('group_mapping')).length;
    // One account per user name and host in lowercase, as MySQL tells them apart.
    const configured = new Set(db.accounts.filter((a) => a.plugin === 'authentication_oci').map(accountKey));
    const missing = iam.filter(
      (r) => !configured.has(accountKey({ user: String(r.User), host: String(r.Host) })),
    );
    add(
      'IAM accounts',
      missing.length > 0 ? 'warn' : 'pass',
      `${iam.length} authentication_oci account(s): ${groups} group mapping(s), ${iam.length - groups} 1-to-1${missing.length > 0 ? `; ${missing.length} not in ${known} (${missing.map((r) => `'${String(r.User)}'@'${String(r.Host)}'`).join(', ')})` : ''}`,
      missing.length > 0
        ? 'run sync (it reads them; then doctor --state), or list them under dbSystems[].accounts, so that sessions through them are attributed'
        : undefined,
    );
  } catch {
    add(
      'IAM accounts',
      'warn',
      'cannot read mysql.user',
      `GRANT SELECT ON mysql.user TO ${target.settings.user};`,
    );
  }
  if (db.iamOnly && target.settings.auth === 'iam')
    add(
      'collector account',
      'pass',
      `${target.settings.user} logs in through authentication_oci, not as a local account`,
    );
  else if (db.iamOnly) {
    const exempt = allowListed(db.allowedLocalAccounts, target.settings.user, '%');
    add(
      'collector account',
      exempt ? 'pass' : 'warn',
      exempt
        ? `${target.settings.user} is allow-listed on this IAM-only DB system`
        : `${target.settings.user} is a local account on an IAM-only DB system: each collector login raises access.local-account`,
      exempt ? undefined : `add "${target.settings.user}@%" to dbSystems[].allowedLocalAccounts`,
    );
  }
}

/** Who logged in, as which account, and how long a token lasts. */
async function checkIamLogin(probe: Probe, principal: IamPrincipal, add: Add): Promise<void> {
  const [row] = await probe('SELECT CURRENT_USER() AS account').catch(() => []);
  const account = row?.account === undefined ? '' : `, as account ${String(row.account)}`;
  const tenancy = principal.tenancy ? ` of tenancy ${principal.tenancy}` : '';
  const until = principal.tokenExpiresAt;
  const short =
    principal.kind === 'session-token' && until !== undefined && until - Date.now() < TOKEN_REFRESH_MARGIN_MS;
  add(
    'IAM login',
    short ? 'warn' : 'pass',
    `${describePrincipal(principal)}${tenancy}${account}${until === undefined ? '' : `; token valid until ${new Date(until).toISOString()}`}`,
    short
      ? 'the session token could not be refreshed: run `oci session authenticate` before it expires'
      : undefined,
  );
}

/** How to let the principal in: its account, its grant, the tenancy's policy (or its credentials). */
function iamFix(target: InstanceTarget, details: AuditError['details']): string {
  if (details.errno !== 1045)
    return 'check HWAUDIT_OCI_AUTH, HWAUDIT_OCI_CONFIG_FILE and HWAUDIT_OCI_PROFILE: docs/iam-authentication.md';
  const user = target.settings.user;
  const mapping = JSON.stringify({
    tenancy: details.tenancy ?? '<tenancy OCID>',
    user: details.principal ?? '<principal OCID>',
  });
  const principals =
    details.principalKind === 'resource-principal' || details.principalKind === 'instance-principal'
      ? ' (whether HeatWave accepts resource and instance principals is unconfirmed: docs/iam-authentication.md)'
      : '';
  return `CREATE USER '${user}'@'%' IDENTIFIED WITH 'authentication_oci' AS '${mapping}'; GRANT AUDIT_ADMIN ON *.* TO '${user}'@'%'; and in the tenancy's root compartment: Allow service mysql_dp_auth to {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT, DYNAMIC_GROUP_INSPECT} in tenancy${principals}`;
}

/** A JSON column's value: the driver parses it (MySQL's JSON type), else it is text. */
function parseJson(value: unknown): unknown {
  if (typeof value !== 'string' && !Buffer.isBuffer(value)) return value;
  try {
    return JSON.parse(value.toString());
  } catch {
    return undefined;
  }
}

const PROXIED_ACCOUNTS = 'proxied accounts';

/** A proxied account the state holds open to logins without IAM, and the statement or snapshot since which it is. */
export type OpenProxied = { account: AccountRef; since: DirectLogin };

/**
 * The check of what the state says of a DB system's proxied accounts (group mapping targets): a
 * warning naming those open to logins without IAM now, whose logins by password bypass IAM.
 */
export function proxiedAccountsCheck(open: readonly OpenProxied[]): Check {
  const name = PROXIED_ACCOUNTS;
  if (open.length === 0)
    return { name, status: 'pass', detail: 'none is open to logins without IAM, as the state holds them' };
  const since = ({ ts, key }: DirectLogin) => (ts === BEGINNING_OF_TIME ? key : `${toIso(ts)}, ${key}`);
  return {
    name,
    status: 'warn',
    detail: `open to logins without IAM, as the state holds them: ${open
      .map((o) => `${accountName(o.account)} (since ${since(o.since)})`)
      .join('; ')}; their logins that name no proxy account are local-account sessions`,
    fix: "lock each (ALTER USER '<user>'@'<host>' ACCOUNT LOCK) or give it mysql_no_login, then review its sessions since",
  };
}

/**
 * The check of a DB system whose accounts the state's scope does not hold (no pipeline correlated
 * it there): nothing is known of its proxied accounts, which is no pass.
 */
export function unknownAccountsCheck(scope: string): Check {
  return {
    name: PROXIED_ACCOUNTS,
    status: 'warn',
    detail: `the state's scope ${scope} holds no account of this DB system: nothing is known of its proxied accounts`,
    fix: 'run doctor with the --scope the pipeline correlates this DB system in (the function: --scope function)',
  };
}

/** Instances diagnosed at once. */
const CONCURRENCY = 8;

/**
 * Diagnoses every target, several at once (an unreachable instance waits for its connect timeout
 * alone), in the targets' order.
 */
export async function diagnoseFleet(
  targets: readonly InstanceTarget[],
  config: Config,
  connect: (target: InstanceTarget) => Promise<SqlSession>,
  known?: AccountsKnown,
): Promise<InstanceDiagnosis[]> {
  return inGroups(targets, CONCURRENCY, (t) =>
    diagnose(t, config.dbSystems.find((d) => d.id === t.db.id)!, connect, known),
  );
}
