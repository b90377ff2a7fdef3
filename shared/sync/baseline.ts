// The configuration as the pipeline uses it once `sync` has run: the latest snapshot is the
// baseline, and the configuration keeps what cannot be discovered (break-glass groups, iamOnly,
// allow-lists, rule settings) and wins over what was discovered where it says something else.
//
// Merge rules (the same for `applySnapshot`, which the pipeline and the collector use, and for
// `configWithSnapshot`, which `sync --print` renders):
// - DB systems: discovered ones are added; a configured one keeps its keys; its name, when the
//   config gives none, and its endpoints, when it lists none, are the discovered ones;
//   `privilegedAccounts` is the union of the configured and the derived ones. Discovered
//   endpoints are used only where collector settings exist (top-level or the DB system's).
// - Users and groups: by id; the config's name and break-glass setting win, aliases add up.
// - Memberships and accounts: the union (the configuration's win for the same account); an
//   account the configuration lists without `grants` shows those sync read.
// How the pipeline's correlation state follows snapshots (seeding, drift) is shared/sync/drift.ts.
import type { Config, DbSystemConfig } from '../../schemas/config.js';
import type { Snapshot, SnapshotAccount, SnapshotDbSystem } from '../../schemas/snapshot.js';
import { accountKey } from '../correlate/mappings.js';

/** The configuration with the snapshot's DB systems merged in (see top). */
export function applySnapshot(config: Config, snapshot: Snapshot | undefined): Config {
  if (!snapshot) return config;
  return { ...config, dbSystems: mergeDbSystems(config, snapshot.dbSystems) };
}

export function mergeDbSystems(config: Config, discovered: readonly SnapshotDbSystem[]): DbSystemConfig[] {
  const found = new Map(discovered.map((d) => [d.id, d]));
  const collectable = (db?: DbSystemConfig) => config.collector !== undefined || db?.collector !== undefined;
  const merged = config.dbSystems.map((db): DbSystemConfig => {
    const d = found.get(db.id);
    if (!d) return db;
    return {
      ...db,
      name: db.name === db.id ? d.name : db.name,
      endpoints: db.endpoints.length > 0 || !collectable(db) ? db.endpoints : d.endpoints,
      privilegedAccounts: union(db.privilegedAccounts, d.privilegedAccounts),
      accounts: mergeAccounts(db.accounts, d.accounts),
    };
  });
  const configured = new Set(config.dbSystems.map((db) => db.id));
  for (const d of discovered) {
    if (configured.has(d.id)) continue;
    merged.push({
      id: d.id,
      name: d.name,
      iamOnly: false,
      allowedLocalAccounts: [],
      privilegedAccounts: d.privilegedAccounts ?? [],
      accounts: mergeAccounts([], d.accounts),
      endpoints: collectable() ? d.endpoints : [],
      collect: true,
    });
  }
  return merged;
}

/**
 * A DB system's MySQL accounts: the configuration's, with the grants the snapshot read where it
 * lists none, and those the snapshot read that the configuration does not list.
 */
function mergeAccounts(
  configured: DbSystemConfig['accounts'],
  found: readonly SnapshotAccount[] = [],
): DbSystemConfig['accounts'] {
  const unlisted = new Map(found.map((a) => [keyOf(a), a]));
  const listed = configured.map((a) => {
    const read = unlisted.get(keyOf(a));
    unlisted.delete(keyOf(a));
    return withGrants(a, read);
  });
  return [...listed, ...[...unlisted.values()].map(configAccount)];
}

/** An account the configuration lists, with the grants sync read where it lists none. */
function withGrants<T extends { grants?: G }, G>(listed: T, read: { grants?: G } | undefined): T {
  return listed.grants === undefined && read?.grants !== undefined
    ? { ...listed, grants: read.grants }
    : listed;
}

/** An account as MySQL tells it from the others (`accountKey`): `app@LocalHost` is `app@localhost`. */
function keyOf(a: { user?: unknown; host?: unknown }): string {
  return accountKey({ user: String(a.user), host: String(a.host ?? '%') });
}

/** An account a snapshot read, as a configuration lists it. */
function configAccount({ user, host, plugin, authenticationString, grants }: SnapshotAccount) {
  return {
    user,
    host,
    plugin,
    ...(authenticationString === undefined ? {} : { authenticationString }),
    ...(grants === undefined ? {} : { grants }),
  };
}

function union(a: readonly string[], b: readonly string[] | undefined): string[] {
  return [...new Set([...a, ...(b ?? [])])];
}

type Raw = Record<string, unknown>;
type Keyed = Raw & { id?: unknown };

/**
 * The configuration file with everything the snapshot knows written into it (see top): what
 * `sync --print` shows for review, and a configuration that gives the same attribution without
 * the snapshot. `input` is the file's value as parsed (before validation).
 */
export function configWithSnapshot(input: unknown, snapshot: Snapshot): Raw {
  const config = isRecord(input) ? input : {};
  const directory = isRecord(config.directory) ? config.directory : {};
  const collectorSet = config.collector !== undefined;
  const discovered = {
    users: snapshot.directory.users.map((u) => ({
      id: u.id,
      name: u.name,
      ...(u.aliases.length > 0 ? { aliases: u.aliases } : {}),
      ...(u.state !== 'active' ? { state: u.state } : {}),
    })),
    groups: snapshot.directory.groups.map((g) => ({
      id: g.id,
      name: g.name,
      ...(g.aliases.length > 0 ? { aliases: g.aliases } : {}),
    })),
    memberships: snapshot.directory.memberships.map((m) => ({
      ...(m.id ? { id: m.id } : {}),
      user: m.user,
      group: m.group,
      ...(m.since ? { since: m.since } : {}),
    })),
    dbSystems: snapshot.dbSystems.map((d) => ({
      id: d.id,
      name: d.name,
      ...(d.privilegedAccounts?.length ? { privilegedAccounts: d.privilegedAccounts } : {}),
      ...(d.accounts
        ? {
            accounts: d.accounts.map(configAccount),
          }
        : {}),
    })),
  };
  const foundEndpoints = new Map(snapshot.dbSystems.map((d) => [d.id, d.endpoints]));
  const dbSystems = mergeById(discovered.dbSystems, list(config.dbSystems), (found, mine) => ({
    ...found,
    ...mine,
    privilegedAccounts: [
      ...new Set([...strings(found.privilegedAccounts), ...strings(mine.privilegedAccounts)]),
    ],
    accounts: mergeBy(list(found.accounts), list(mine.accounts), keyOf, (read, listed) =>
      withGrants(listed, read),
    ),
  })).map(({ endpoints, ...db }) => {
    const listed = list(endpoints);
    const found = foundEndpoints.get(String(db.id)) ?? [];
    const collectable = collectorSet || db.collector !== undefined;
    const use = listed.length > 0 ? listed : collectable ? found : [];
    return use.length > 0 ? { ...db, endpoints: use } : db;
  });
  return {
    ...config,
    ...(config.tenancy === undefined && snapshot.tenancy ? { tenancy: snapshot.tenancy } : {}),
    directory: {
      ...directory,
      snapshotTime: directory.snapshotTime ?? snapshot.time,
      users: mergeById(discovered.users, list(directory.users), withAliases),
      groups: mergeById(discovered.groups, list(directory.groups), withAliases),
      memberships: mergeBy(
        discovered.memberships,
        list(directory.memberships),
        (m) => `${String(m.user)}\u0000${String(m.group)}`,
      ),
    },
    dbSystems,
  };
}

/** The configuration's keys win; aliases add up. */
function withAliases(found: Keyed, mine: Keyed): Keyed {
  const aliases = [...new Set([...strings(found.aliases), ...strings(mine.aliases)])];
  return { ...found, ...mine, ...(aliases.length > 0 ? { aliases } : {}) };
}

function mergeById(found: Keyed[], mine: Keyed[], merge: (found: Keyed, mine: Keyed) => Keyed): Keyed[] {
  const byId = new Map(mine.map((m) => [String(m.id), m]));
  const out = found.map((f) => {
    const m = byId.get(String(f.id));
    byId.delete(String(f.id));
    return m ? merge(f, m) : f;
  });
  return [...out, ...mine.filter((m) => byId.has(String(m.id)))];
}

/** The union by key; for the same key the configuration's entry (or `merge` of the two). */
function mergeBy(
  found: Raw[],
  mine: Raw[],
  key: (r: Raw) => string,
  merge: (found: Raw, mine: Raw) => Raw = (_found, m) => m,
): Raw[] {
  const byKey = new Map(found.map((f) => [key(f), f]));
  const keys = new Set(mine.map(key));
  return [
    ...found.filter((f) => !keys.has(key(f))),
    ...mine.map((m) => {
      const f = byKey.get(key(m));
      return f ? merge(f, m) : m;
    }),
  ];
}

function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: unknown): Keyed[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
