// Snapshots of the standard test fleet's MySQL accounts, as `sync` stores them, and runs of the real
// pipeline on a state that holds them (the pipeline follows them when it opens).
import type { CanonicalEvent } from '../../schemas/events.js';
import { PART, SNAPSHOT_VERSION, type Snapshot, type SnapshotAccount } from '../../schemas/snapshot.js';
import { baseConfig, DB } from '../../shared/detect/timeline.js';
import { toIso } from '../../shared/time.js';
import { type Opened, runBatches } from './run-timeline.js';

/** A local account as `sync` reads it: a password plugin, locked or not. */
export function localAccount(user: string, locked: boolean, host = '%'): SnapshotAccount {
  return { user, host, plugin: 'caching_sha2_password', locked, privileges: [] };
}

/**
 * The standard fleet's accounts at `time` (the configuration's, unlocked), its proxied accounts
 * locked unless `unlocked` names them, and `extra` (which replace those of the same user and host).
 */
export function accountSnapshot(
  id: string,
  time: number,
  opts: { unlocked?: string[]; extra?: SnapshotAccount[] } = {},
): Snapshot {
  const configured = baseConfig().dbSystems![0]!.accounts!.map(
    (a): SnapshotAccount => ({
      user: a.user,
      host: a.host ?? '%',
      plugin: a.plugin ?? 'caching_sha2_password',
      ...(a.authenticationString === undefined ? {} : { authenticationString: a.authenticationString }),
      locked: false,
      privileges: [],
    }),
  );
  const proxied = ['dba_proxy', 'emergency_admin', 'dev_proxy'].map((user) =>
    localAccount(user, !(opts.unlocked ?? []).includes(user)),
  );
  const extra = opts.extra ?? [];
  const accounts = [...configured, ...proxied].filter(
    (a) => !extra.some((e) => e.user === a.user && e.host === a.host),
  );
  return {
    version: SNAPSHOT_VERSION,
    id,
    time: toIso(time),
    parts: { [PART.accounts(DB.id)]: { status: 'ok', readAt: toIso(time) } },
    directory: { users: [], groups: [], memberships: [] },
    dbSystems: [{ id: DB.id, name: DB.name, endpoints: [], accounts: [...accounts, ...extra] }],
    requests: { oci: {}, sql: 0 },
  };
}

/** Stores `snapshots` one by one, as `sync` would, the open pipeline following each (the first is its baseline). */
export function following(snapshots: readonly Snapshot[]): Opened {
  return async (pipeline, store) => {
    for (const s of snapshots) {
      await store.putSnapshot(s);
      await pipeline.followSnapshots();
    }
  };
}

/** `runBatches` on a state whose pipeline follows `snapshots` before the first batch. */
export function runWithSnapshots(snapshots: readonly Snapshot[], batches: CanonicalEvent[][]) {
  return runBatches(batches, { opened: following(snapshots) });
}
