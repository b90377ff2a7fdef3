// `sync`: discovers the fleet (IAM directory, identity domains, DB systems, their MySQL accounts)
// into one snapshot. A part that fails (a domain, a DB system that cannot be reached) keeps the
// previous snapshot's data for it, marked failed with the reason, so that a failure is never read
// as "everything there was deleted"; a sync in which nothing could be read fails as a whole and
// the previous snapshot stays in use.
import { createHash } from 'node:crypto';
import type { AuthenticationDetailsProvider } from 'oci-common';
import type { Alert } from '../../schemas/alert.js';
import type { Config } from '../../schemas/config.js';
import {
  PART,
  SNAPSHOT_VERSION,
  type Snapshot,
  type SnapshotDbSystem,
  type SnapshotPart,
} from '../../schemas/snapshot.js';
import { AuditError } from '../errors.js';
import { inGroups } from '../in-groups.js';
import { createOciClient, type RetryPolicy } from '../oci/clients.js';
import { compartmentTree } from '../oci/compartments.js';
import type { Pipeline } from '../pipeline.js';
import {
  type InstanceTarget,
  instanceError,
  instanceTargets,
  type SqlSession,
} from '../sources/mysql-connection.js';
import type { StateStore } from '../state/state-store.js';
import { toIso } from '../time.js';
import { mergeDbSystems } from './baseline.js';
import { type DbSystemClients, discoverDbSystems } from './discover-db-systems.js';
import { absorb, type DirectoryClients, discoverDirectory, reason } from './discover-directory.js';
import { OciCalls } from './oci-calls.js';
import { readAccounts } from './read-accounts.js';

export type SyncClients = DirectoryClients & DbSystemClients;

export type SyncOptions = {
  config: Config;
  /** The latest stored snapshot: what a failed part keeps. */
  previous?: Snapshot | undefined;
  /** Where DB systems are looked for (with the compartments below it); default the tenancy. */
  compartment?: string | undefined;
  clients: () => Promise<SyncClients>;
  connect: (target: InstanceTarget) => Promise<SqlSession>;
  now?: () => number;
  retry?: RetryPolicy;
  /** Aborted when the time is up (Fn-Deadline): the sync fails and nothing is stored. */
  signal?: AbortSignal;
};

export type SyncResult = {
  snapshot: Snapshot;
  /** Parts that could not be read (their previous data was kept), with the reason. */
  failed: { part: string; error: string }[];
};

/** Lifecycle states in which a DB system is running: its accounts are read. */
export const RUNNING_STATES: ReadonlySet<string> = new Set(['ACTIVE', 'UPDATING']);
const SQL_CONCURRENCY = 4;

export async function runSync(opts: SyncOptions): Promise<SyncResult> {
  const { config, previous } = opts;
  const tenancy = config.tenancy;
  if (!tenancy)
    throw new AuditError('CONFIG_INVALID', 'invalid configuration: tenancy: sync needs the tenancy OCID', {
      details: { paths: ['tenancy'] },
    });
  const time = toIso((opts.now ?? Date.now)());
  const calls = new OciCalls(opts.retry, opts.signal);
  const clients = await opts.clients();

  // Identity domains are looked for in the tenancy's tree, DB systems in the compartment's.
  const tree = (root: string) =>
    compartmentTree(root, clients.identity, (operation, fn) => calls.call(operation, fn));
  let walked: Promise<string[]> | undefined;
  const tenancyTree = () => (walked ??= tree(tenancy));
  const directory = await discoverDirectory(tenancy, tenancyTree, clients, calls, time);
  const parts: Record<string, SnapshotPart> = { ...directory.parts };
  let dbSystems: SnapshotDbSystem[];
  try {
    const root = opts.compartment ?? tenancy;
    const found = await discoverDbSystems(
      await (root === tenancy ? tenancyTree() : tree(root)),
      clients,
      calls,
    );
    // Not searched is not gone: what a denied compartment held before is kept.
    const kept = (previous?.dbSystems ?? []).filter((d) => found.denied.includes(d.compartmentId ?? ''));
    dbSystems = [...found.dbSystems, ...kept.map(withoutAccounts)];
    const warning = [deniedCompartments(found.denied), sharedNames(mergeDbSystems(config, dbSystems))]
      .filter((w) => w !== undefined)
      .join('; ');
    parts[PART.dbSystems] = { status: 'ok', readAt: time, ...(warning ? { warning } : {}) };
  } catch (error) {
    if ((error as { code?: unknown }).code === 'DEADLINE') throw error;
    parts[PART.dbSystems] = { status: 'failed', readAt: time, error: reason(error) };
    dbSystems = (previous?.dbSystems ?? []).map(withoutAccounts);
  }

  const sql = await readFleetAccounts(config, dbSystems, opts, parts, time);
  const snapshot: Snapshot = {
    version: SNAPSHOT_VERSION,
    id: '',
    time,
    tenancy,
    parts,
    directory: { users: directory.users, groups: directory.groups, memberships: directory.memberships },
    dbSystems,
    requests: { oci: { ...calls.counts }, sql },
  };
  carryOver(snapshot, previous);
  const failed = Object.entries(snapshot.parts)
    .filter(([, p]) => p.status === 'failed')
    .map(([part, p]) => ({ part, error: p.error ?? 'failed' }));
  if (failed.length > 0 && failed.length === Object.keys(snapshot.parts).length)
    throw new AuditError(
      'SOURCE_FAILED',
      `sync could not read anything (${failed.map((f) => `${f.part}: ${f.error}`).join('; ')}); ${previous ? `the snapshot of ${previous.time} stays in use` : 'there is no snapshot yet'}`,
      { details: { parts: failed.map((f) => f.part) } },
    );
  snapshot.id = `${time}-${contentHash(snapshot)}`;
  return { snapshot, failed };
}

/** A DB system as discovery lists it: its accounts are read (or carried over) later. */
function withoutAccounts({ accounts, privilegedAccounts, ...d }: SnapshotDbSystem): SnapshotDbSystem {
  return d;
}

function deniedCompartments(ids: readonly string[]): string | undefined {
  if (ids.length === 0) return undefined;
  return `compartments not searched, the policy does not let this caller list their DB systems (401/404): ${ids.join(', ')}; DB systems found there before are kept`;
}

/**
 * DB systems that end up with one name (display names need not be unique in OCI): a name picks a
 * DB system (raw audit files, --db-system, routes), so the configuration should tell them apart.
 */
function sharedNames(dbSystems: readonly { id: string; name: string }[]): string | undefined {
  const byName = new Map<string, string[]>();
  for (const d of dbSystems) byName.set(d.name, [...(byName.get(d.name) ?? []), d.id]);
  const shared = [...byName].filter(([, ids]) => ids.length > 1);
  if (shared.length === 0) return undefined;
  const list = shared.map(([name, ids]) => `${name} (${ids.join(', ')})`).join('; ');
  return `DB systems with one name: ${list}; give each its own dbSystems[].name in the configuration`;
}

/** Reads `mysql.user` and privileges of every DB system the collector can log in to. */
async function readFleetAccounts(
  config: Config,
  dbSystems: SnapshotDbSystem[],
  opts: SyncOptions,
  parts: Record<string, SnapshotPart>,
  time: string,
): Promise<number> {
  const merged = { ...config, dbSystems: mergeDbSystems(config, dbSystems) };
  const found = new Map(dbSystems.map((d) => [d.id, d]));
  const targets = instanceTargets(merged).filter(
    (t) => t.endpoint.role === 'primary' && RUNNING_STATES.has(found.get(t.db.id)?.state ?? 'ACTIVE'),
  );
  let statements = 0;
  const read = async (target: InstanceTarget) => {
    const part = PART.accounts(target.db.id);
    let session: SqlSession | undefined;
    try {
      if (opts.signal?.aborted) throw new AuditError('DEADLINE', 'sync ran out of time before it was done');
      session = await opts.connect(target);
      const result = await readAccounts(session, target.settings.user);
      statements += result.statements;
      let row = found.get(target.db.id);
      if (!row) {
        // A DB system only the configuration lists (another tenancy, a compartment not searched).
        row = { id: target.db.id, name: target.db.name, endpoints: [] };
        found.set(row.id, row);
        dbSystems.push(row);
      }
      row.accounts = result.accounts;
      row.privilegedAccounts = result.privilegedAccounts;
      parts[part] = { status: 'ok', readAt: time, ...(result.warning ? { warning: result.warning } : {}) };
    } catch (error) {
      if ((error as { code?: unknown }).code === 'DEADLINE') throw error;
      parts[part] = {
        status: 'failed',
        readAt: time,
        error: instanceError(target, error, 'while reading accounts').message,
      };
    } finally {
      await session?.close();
    }
  };
  await inGroups(targets, SQL_CONCURRENCY, read);
  dbSystems.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return statements;
}

/**
 * Parts that failed this time, or were not read because the list naming them failed, keep the
 * previous snapshot's data (with the time it was read); a DB system whose accounts were not read
 * this time (stopped, say) keeps its previous accounts.
 */
function carryOver(snapshot: Snapshot, previous: Snapshot | undefined): void {
  if (!previous) return;
  const { parts, directory } = snapshot;
  const domainsFailed = parts[PART.domains]?.status === 'failed';
  for (const [name, before] of Object.entries(previous.parts)) {
    const now = parts[name];
    if (name.startsWith('accounts:')) {
      const row = snapshot.dbSystems.find((d) => d.id === name.slice('accounts:'.length));
      const old = previous.dbSystems.find((d) => d.id === row?.id);
      if (now?.status === 'ok' || !row || !old?.accounts) continue;
      row.accounts = old.accounts;
      row.privilegedAccounts = old.privilegedAccounts ?? [];
      parts[name] = now ? { ...now, readAt: before.readAt } : before;
      continue;
    }
    const unread = now === undefined && domainsFailed && name.startsWith('domain:');
    if (now?.status !== 'failed' && !unread) continue;
    parts[name] = {
      status: 'failed',
      readAt: before.readAt,
      error: now?.error ?? `not read: ${parts[PART.domains]?.error ?? 'the identity domain list failed'}`,
    };
    const keep = <T extends { part: string }>(rows: T[], old: T[], key: (r: T) => string) => {
      const have = new Set(rows.map(key));
      for (const r of old) if (r.part === name && !have.has(key(r))) rows.push(r);
      rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    };
    keep(directory.users, previous.directory.users, (u) => u.id);
    keep(directory.groups, previous.directory.groups, (g) => g.id);
    keep(directory.memberships, previous.directory.memberships, (m) => `${m.user}\u0000${m.group}`);
    if (!name.startsWith('domain:')) continue;
    // The default domain's users and groups are listed by classic IAM too: still there, they keep
    // what the domain added, its own ids (aliases) and a group's domain.
    const domain = name.slice('domain:'.length);
    const listed = new Map([...directory.users, ...directory.groups].map((r) => [r.id, r]));
    const old = previous.directory;
    for (const r of [...old.users, ...old.groups.filter((g) => g.domain === domain)]) {
      const row = listed.get(r.id);
      if (row && r.part === PART.iam) absorb(row, r);
    }
  }
}

function contentHash(snapshot: Snapshot): string {
  return createHash('sha256')
    .update(JSON.stringify([snapshot.directory, snapshot.dbSystems]))
    .digest('hex')
    .slice(0, 12);
}

/** The SDK clients `sync` uses, with one authentication; identity domains at their own URLs. */
export async function ociSyncClients(
  auth: AuthenticationDetailsProvider,
  env: Readonly<Record<string, string | undefined>>,
): Promise<SyncClients> {
  const [identity, mysql, replicas] = await Promise.all([
    createOciClient('identity', { auth, env }),
    createOciClient('mysql', { auth, env }),
    createOciClient('mysqlreplicas', { auth, env }),
  ]);
  return {
    identity,
    mysql,
    replicas,
    domain: (url) => createOciClient('identitydomains', { auth, env, endpoint: url }),
  };
}

/**
 * One `sync` run on a state: discovers the fleet, stores the snapshot (older ones than the
 * retention pruned) and brings the open pipeline up to it, which turns what changed into events.
 */
export async function syncState(
  opts: Omit<SyncOptions, 'previous'> & { store: StateStore; pipeline: Pipeline },
): Promise<SyncResult & { previous: Snapshot | undefined; alerts: Alert[] }> {
  const [previous] = await opts.store.snapshots();
  const result = await runSync({ ...opts, previous });
  const taken = Date.parse(result.snapshot.time);
  await opts.store.putSnapshot(result.snapshot, taken - opts.config.retention);
  const alerts = await opts.pipeline.followSnapshots();
  return { ...result, previous, alerts };
}
