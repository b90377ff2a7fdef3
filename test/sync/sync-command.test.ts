// The sync command as users run it: the built CLI against the local signed OCI endpoint and the
// MySQL-protocol test servers, on a SQLite state.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { Alert } from '../../schemas/alert.js';
import type { ReportDocument } from '../../schemas/report.js';
import { validateConfig } from '../../shared/config/load-config.js';
import { DB, GROUPS, USERS } from '../../shared/detect/timeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { DOMAIN, PROD2, type SyncFleet, startSyncFleet, testDirectory } from '../helpers/sync-fleet.js';

const execFileAsync = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs');

type Result = { code: number; stdout: string; stderr: string };

let fleet: SyncFleet;
let config: string;
let runs = 0;

beforeAll(async () => {
  fleet = await startSyncFleet();
  config = fleet.file('config.yaml', stringify(fleet.config()));
});
afterAll(() => fleet.close());
beforeEach(() => {
  Object.assign(fleet.directory, testDirectory());
  fleet.endpoint.faults.clear();
});

async function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...fleet.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const newState = () => fleet.file(`state-${++runs}.sqlite`);

/** A configuration file that sets these keys on the second DB system (prod-billing). */
const withBilling = (file: string, billing: Record<string, unknown>) =>
  fleet.file(
    file,
    stringify(
      fleet.config({
        dbSystems: [
          { id: DB.id, iamOnly: true },
          { id: PROD2.id, ...billing },
        ],
      }),
    ),
  );

async function stored(state: string) {
  const store = SqliteStore.open(state);
  try {
    return await store.snapshots(0);
  } finally {
    await store.close();
  }
}

describe('sync --print', () => {
  it('prints the configuration the pipeline would use, valid as a configuration, and stores nothing', async () => {
    const state = newState();
    const r = await cli(['sync', '--config', config, '--print', '--state', state]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# The configuration as the pipeline uses it with the snapshot of /);
    const printed = parse(r.stdout) as Record<string, unknown>;
    const { config: read } = validateConfig(printed, 'printed');
    expect(read.directory.groups.find((g) => g.id === DOMAIN.ddba.ocid)).toMatchObject({
      name: 'DomainDBAs',
      aliases: [DOMAIN.ddba.id],
    });
    // What only the configuration says stays: break-glass, iamOnly, allow-lists.
    expect(read.directory.groups.find((g) => g.id === GROUPS.bg)).toMatchObject({
      name: 'BreakGlass',
      breakGlass: { maxDuration: 4 * 3_600_000 },
    });
    const prod = read.dbSystems.find((d) => d.id === DB.id)!;
    expect(prod).toMatchObject({
      name: DB.name,
      iamOnly: true,
      allowedLocalAccounts: ['admin@%', 'hwaudit@%'],
    });
    expect(prod.endpoints.map((e) => e.role)).toEqual(['primary', 'replica']);
    expect(prod.privilegedAccounts).toContain('dba_proxy');
    expect(prod.accounts.find((a) => a.user === '')?.plugin).toBe('authentication_oci');
    expect(prod.accounts.find((a) => a.user === 'dev_proxy')?.grants).toEqual([
      'GRANT USAGE ON *.* TO `dev_proxy`@`%`',
      'GRANT SELECT, INSERT ON `orders`.* TO `dev_proxy`@`%`',
    ]);
    expect(read.directory.memberships).toContainEqual(
      expect.objectContaining({ user: USERS.alice, group: GROUPS.dba }),
    );
    expect(r.stderr).toMatch(/every part was read/);
    // Nothing was stored: not "the first snapshot of this state".
    expect(r.stderr).toMatch(/\n {2}printed for review: nothing was stored\n$/);
    expect(r.stderr).toMatch(/cost: \d+ OCI API request\(s\), \d+ SQL statement\(s\)/);
    expect(await stored(state)).toEqual([]);
  });
});

describe('sync: DB systems of one name', () => {
  it('says so, naming them, until the configuration tells them apart', async () => {
    const billing = fleet.dbSystems.find((d) => d.id === PROD2.id)!;
    billing.displayName = DB.name;
    try {
      const r = await cli(['sync', '--config', config, '--print']);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(
        `  warning dbSystems: DB systems with one name: ${DB.name} (${DB.id}, ${PROD2.id}); give each its own dbSystems[].name in the configuration\n`,
      );
      const named = withBilling('named.yaml', { name: 'billing' });
      const apart = await cli(['sync', '--config', named, '--print']);
      expect(apart.code).toBe(0);
      expect(apart.stderr).not.toContain('warning dbSystems');
    } finally {
      billing.displayName = PROD2.name;
    }
  });
});

describe('sync --state', () => {
  it('stores the baseline, then reports an unaudited change as an alert that says it was observed', async () => {
    const state = newState();
    const first = await cli(['sync', '--config', config, '--state', state]);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/first snapshot of this state: it is the baseline/);
    expect(first.stdout).toBe('');
    // The access review shows the privileges sync read, which the configuration does not list.
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const review = await cli([
      'report',
      'access-review',
      '--state',
      state,
      '--period',
      'P2D',
      '--to',
      tomorrow,
      '--format',
      'json',
    ]);
    expect(review.code).toBe(0);
    const entitlements = (JSON.parse(review.stdout) as ReportDocument).sections.find(
      (s) => s.id === 'entitlements',
    )!.table!;
    const privileges = entitlements.columns.findIndex((c) => c.id === 'privileges');
    const bob = entitlements.rows.find((r) => r[0] === 'bob@example.com')!;
    expect(bob[privileges]).toEqual([
      'GRANT USAGE ON *.* TO `dev_proxy`@`%`',
      'GRANT SELECT, INSERT ON `orders`.* TO `dev_proxy`@`%`',
    ]);
    fleet.directory.memberships.push({
      id: 'ocid1.groupmembership.oc1..bob-bg',
      userId: USERS.bob,
      groupId: GROUPS.bg,
    });
    const second = await cli(['sync', '--config', config, '--state', state]);
    expect(second.code).toBe(0);
    const alerts = second.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Alert);
    expect(alerts.map((a) => [a.rule, a.title])).toEqual([
      [
        'iam.privileged-group-change',
        'bob@example.com added to privileged group BreakGlass (observed by sync, not audited)',
      ],
    ]);
    expect(second.stderr).toMatch(/changes between snapshots: 0 audited, 1 observed without an audit event/);
    expect(await stored(state)).toHaveLength(2);
  });

  it('doctor and collect reach the instances a sync discovered: doctor with --state, collect from the state', async () => {
    const state = newState();
    // The configuration lists no endpoint: without the state, there is nothing to check or read.
    const none = await cli(['doctor', '--config', config]);
    expect(none).toMatchObject({ code: 2, stdout: '' });
    expect(none.stderr).toContain(
      'doctor: no DB system has endpoints: list them in dbSystems[].endpoints, or run sync to discover them (a DB system set collect: false is not read)',
    );
    expect((await cli(['collect', '--config', config, '--state', state])).stderr).toContain(
      'collect: no DB system has endpoints',
    );
    expect((await cli(['sync', '--config', config, '--state', state])).code).toBe(0);
    const r = await cli(['doctor', '--config', config, '--state', state, '--json']);
    const checked = (
      JSON.parse(r.stdout) as { dbSystem: { name: string }; instance: string; address: string }[]
    ).map((d) => `${d.dbSystem.name}/${d.instance} ${d.address}`);
    const port = (id: string) => fleet.servers.get(id)!.address.port;
    expect(checked).toEqual([
      `${DB.name}/localhost:${port(DB.id)} localhost:${port(DB.id)}`,
      `${DB.name}/127.0.0.9:3306 127.0.0.9:3306`,
      `${PROD2.name}/127.0.0.1:${port(PROD2.id)} 127.0.0.1:${port(PROD2.id)}`,
    ]);
    // The test servers keep no audit log, and the replica answers nowhere.
    expect(r.code).toBe(3);
    // The IAM accounts the sync read are known to attribution: none is missing from what it knows.
    const iam = (
      JSON.parse(r.stdout) as { checks: { name: string; status: string; detail: string }[] }[]
    )[0]!.checks.find((c) => c.name === 'IAM accounts');
    expect(iam).toMatchObject({
      status: 'pass',
      detail: expect.stringMatching(/^2 authentication_oci account/),
    });
    const only = await cli(['doctor', '--config', config, '--state', state, '--db-system', PROD2.name]);
    expect(only.stdout).toMatch(new RegExp(`^${PROD2.name}/127\\.0\\.0\\.1:${port(PROD2.id)} `));
    const collected = await cli(['collect', '--config', config, '--state', state]);
    expect(collected.code).toBe(3);
    expect(collected.stderr).toContain('collect: 3 instance(s)');
    expect(collected.stderr).toContain(`${PROD2.name}/127.0.0.1:${port(PROD2.id)} (127.0.0.1:`);
    expect(await cli(['doctor', '--config', config, '--state', fleet.file('missing.sqlite')])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('doctor: there is no state file'),
    });
  });

  it('leaves a DB system set collect: false alone: not checked, collected or logged in to', async () => {
    const state = newState();
    const quiet = withBilling('quiet.yaml', { collect: false });
    const billing = fleet.servers.get(PROD2.id)!;
    const logins = () => billing.statements.filter((q) => /mysql\.user/i.test(q)).length;
    const before = logins();
    const synced = await cli(['sync', '--config', quiet, '--state', state]);
    expect(synced.stderr).toContain('  DB systems: 2, accounts read on 1\n');
    expect(logins()).toBe(before);
    const doctor = await cli(['doctor', '--config', quiet, '--state', state, '--json']);
    expect(
      (JSON.parse(doctor.stdout) as { dbSystem: { name: string } }[]).map((d) => d.dbSystem.name),
    ).toEqual([DB.name, DB.name]);
    const named = await cli(['doctor', '--config', quiet, '--state', state, '--db-system', PROD2.name]);
    expect(named).toMatchObject({ code: 2, stdout: '' });
    expect(named.stderr).toContain(`--db-system ${PROD2.name}: the configuration sets collect: false for it`);
    expect((await cli(['collect', '--config', quiet, '--state', state])).stderr).toContain(
      'collect: 2 instance(s)',
    );
  });

  it('names the DB systems that are not running, whose accounts it could not read', async () => {
    const state = newState();
    const billing = fleet.dbSystems.find((d) => d.id === PROD2.id)!;
    billing.lifecycleState = 'INACTIVE';
    try {
      const stopped = await cli(['sync', '--config', config, '--state', state]);
      expect(stopped.code).toBe(0);
      expect(stopped.stderr).toContain(
        `  DB systems: 2, accounts read on 1; not running: ${PROD2.name} (INACTIVE)\n`,
      );
      billing.lifecycleState = 'ACTIVE';
      const running = await cli(['sync', '--config', config, '--state', state]);
      expect(running.stderr).toContain('  DB systems: 2, accounts read on 2\n');
    } finally {
      billing.lifecycleState = 'ACTIVE';
    }
  });

  it('a part that fails keeps its previous data and says so (exit 3)', async () => {
    const state = newState();
    expect((await cli(['sync', '--config', config, '--state', state])).code).toBe(0);
    const [before] = await stored(state);
    // What a missing policy statement looks like (not retried).
    fleet.endpoint.faults.failNext('identitydomains.listGroups', Number.POSITIVE_INFINITY, 404);
    const r = await cli(['sync', '--config', config, '--state', state]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      `NOT READ domain:${DOMAIN.id}: identitydomains.listGroups failed (status 404, NotAuthorizedOrNotFound) (data of ${before!.time} kept)`,
    );
    // The summary alone: not the SDK's own line per failed call ("Request cannot be retried. ...").
    expect(r.stderr).toMatch(/^sync: snapshot /);
    expect(r.stderr).not.toMatch(/Request cannot be retried|retry attempts|\[object Object\]/);
    const [, after] = await stored(state);
    expect(after!.directory.groups).toEqual(before!.directory.groups);
  });

  it('a sync that reads nothing stores nothing: the previous snapshot stays in use (exit 1)', async () => {
    const state = newState();
    expect((await cli(['sync', '--config', config, '--state', state])).code).toBe(0);
    const [before] = await stored(state);
    fleet.endpoint.faults.failNext('*', Number.POSITIVE_INFINITY, 401);
    const servers = [...fleet.servers.values()];
    await Promise.all(servers.map((s) => s.stop()));
    try {
      const r = await cli(['sync', '--config', config, '--state', state]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`the snapshot of ${before!.time} stays in use`);
      expect(r.stderr).not.toContain('sync-pw');
      expect(await stored(state)).toEqual([before]);
    } finally {
      await Promise.all(servers.map((s) => s.restart()));
    }
  });

  it('refuses bad usage and a configuration without the tenancy (exit 2, with the key path)', async () => {
    expect((await cli(['sync', '--config', config])).stderr).toMatch(/sync needs --state/);
    const noTenancy = fleet.file('no-tenancy.yaml', stringify({ ...fleet.config(), tenancy: undefined }));
    const r = await cli(['sync', '--config', noTenancy, '--print']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tenancy: sync needs the tenancy OCID/);
    // Where no OCI credentials can be built either, the one error is still the configuration's.
    const bare = await cli(['sync', '--config', noTenancy, '--print'], {
      HWAUDIT_OCI_CONFIG_FILE: fleet.file('no-such-oci-config'),
    });
    expect(bare.code).toBe(2);
    expect(bare.stderr.trim().split('\n')).toEqual([expect.stringMatching(/sync needs the tenancy OCID/)]);
    const named = await cli(['sync', '--config', config, '--print', '--compartment', 'databases']);
    expect(named).toMatchObject({ code: 2, stdout: '' });
    expect(named.stderr).toContain(
      '--compartment expects an OCID (ocid1.compartment... or ocid1.tenancy...)',
    );
  });
});
