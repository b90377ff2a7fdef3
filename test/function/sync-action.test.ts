// {"action":"sync"} in the function host: the real SDK clients against the signed local endpoint
// (Identity, Identity Domains, MySQL), accounts from MySQL-protocol test servers, a SQLite state.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FunctionError, FunctionHost } from '../../functions/function-host.js';
import { DB, GROUPS, USERS } from '../../shared/detect/timeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { removeTempDirs, tempDir } from '../helpers/fdk-harness.js';
import { Lines } from '../helpers/host-batches.js';
import { PROD2, type SyncFleet, startSyncFleet, testDirectory } from '../helpers/sync-fleet.js';

let fleet: SyncFleet;

beforeAll(async () => {
  fleet = await startSyncFleet();
});
afterAll(async () => {
  await fleet.close();
  removeTempDirs();
});
beforeEach(() => {
  Object.assign(fleet.directory, testDirectory());
});

function host(statePath: string, stdout: Lines, now?: () => number): FunctionHost {
  return new FunctionHost({
    env: { ...fleet.env, HWAUDIT_CONFIG: JSON.stringify(fleet.config()), HWAUDIT_STATE: statePath },
    stdout,
    stderr: new Lines(),
    ...(now ? { now } : {}),
  });
}

const SYNC = JSON.stringify({ action: 'sync' });

describe('{"action":"sync"}', () => {
  it('stores a snapshot; the next one turns an unaudited change into an alert once the watermark passes it', async () => {
    const statePath = `${tempDir('hwaudit-sync-fn-')}/state.sqlite`;
    const stdout = new Lines();
    let clock = Date.parse('2026-11-02T08:00:00Z');
    const fn = host(statePath, stdout, () => clock);

    const first = await fn.invoke(SYNC);
    expect(first).toMatchObject({ action: 'sync', alerts: 0, sync: { failed: [] } });
    expect(first.sync!.requests).toBeGreaterThan(0);

    fleet.directory.memberships.push({
      id: 'ocid1.groupmembership.oc1..bob-bg',
      userId: USERS.bob,
      groupId: GROUPS.bg,
    });
    clock += 3_600_000;
    const second = await fn.invoke(SYNC);
    expect(second.sync!.snapshot).not.toBe(first.sync!.snapshot);
    // The change waits, like any event, for the watermark (the audit trail up to the snapshot).
    expect(second.alerts).toBe(0);
    clock += 2 * 60_000;
    const sweep = await fn.invoke(JSON.stringify({ action: 'sweep' }));
    expect(sweep.alerts).toBeGreaterThanOrEqual(1);
    const titles = stdout.lines.map((l) => (JSON.parse(l) as { title: string }).title);
    expect(titles).toContain(
      'bob@example.com added to privileged group BreakGlass (observed by sync, not audited)',
    );

    const store = SqliteStore.open(statePath);
    expect(await store.snapshots(0)).toHaveLength(2);
    await store.close();
  });

  it('a part read in part says what it lacks and the fix, in the summary and as a warning', async () => {
    const collector = fleet.servers.get(DB.id)!.catalogue.accounts.find((a) => a.user === 'hwaudit')!;
    const saved = collector.grants!;
    collector.grants = saved.filter((g) => g !== 'SELECT ON mysql.tables_priv');
    const stderr = new Lines();
    try {
      const fn = new FunctionHost({
        env: {
          ...fleet.env,
          HWAUDIT_CONFIG: JSON.stringify(fleet.config()),
          HWAUDIT_STATE: `${tempDir('hwaudit-sync-fn-')}/state.sqlite`,
        },
        stdout: new Lines(),
        stderr,
      });
      const summary = await fn.invoke(SYNC);
      expect(summary.sync).toMatchObject({
        failed: [],
        // The collector's grants are the same on both DB systems.
        warnings: [DB.id, PROD2.id].map(
          (id) =>
            `accounts:${id}: cannot read mysql.tables_priv: privileges from there are not known, nor the accounts' grants (GRANT SELECT ON mysql.tables_priv TO hwaudit;)`,
        ),
      });
      expect(stderr.lines.map((l) => JSON.parse(l) as { level: string }).at(-1)?.level).toBe('warn');
    } finally {
      collector.grants = saved;
    }
  });

  it('stops at Fn-Deadline: nothing stored, a DEADLINE error the schedule retries', async () => {
    const statePath = `${tempDir('hwaudit-sync-fn-')}/state.sqlite`;
    const fn = host(statePath, new Lines());
    fleet.endpoint.faults.delayNext('identity', Number.POSITIVE_INFINITY, 400);
    try {
      const call = fn.invoke(SYNC, { deadline: new Date(Date.now() + 2_500) });
      await expect(call).rejects.toBeInstanceOf(FunctionError);
      await expect(call).rejects.toThrow(/^DEADLINE: sync ran out of time/);
    } finally {
      fleet.endpoint.faults.clear();
    }
    const store = SqliteStore.open(statePath);
    expect(await store.snapshots()).toEqual([]);
    await store.close();
  });
});
