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
// - Memberships and accounts: the union (the configuration's win for the same account).
// How the pipeline's correlation state follows snapshots (seeding, drift) is shared/sync/drift.ts.
import type { Config, DbSystemConfig } from '../../schemas/config.js';
import type { Snapshot, SnapshotDbSystem } from '../../schemas/snapshot.js';

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
      accounts: [],
      endpoints: collectable() ? d.endpoints : [],
    });
  }
  return merged;
}

function union(a: readonly string[], b: readonly string[] | undefined): string[] {
  return [...new Set([...a, ...(b ?? [])])];
}
