// Snapshots as the pipeline's baseline: real syncs against the local OCI endpoint and MySQL test
// servers, stored in a real SQLite state, then audit events through the real pipeline.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Alert } from '../../schemas/alert.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import { parseConfigText, validateConfig } from '../../shared/config/load-config.js';
import { type DecodedItem, decodeBatch } from '../../shared/decode/read-input.js';
import { at, DB, db, GROUPS, USERS } from '../../shared/detect/timeline.js';
import { Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { configWithSnapshot } from '../../shared/sync/baseline.js';
import { runSync } from '../../shared/sync/sync.js';
import {
  DOMAIN,
  GROUP_MAPPING,
  PROD2,
  type SyncFleet,
  startSyncFleet,
  TENANCY,
  testDirectory,
} from '../helpers/sync-fleet.js';
import { type AuditEventPair, domainMembershipEvent, membershipChangeEvent } from '../oci-endpoint/audit.js';

let fleet: SyncFleet;
let store: SqliteStore;

beforeAll(async () => {
  fleet = await startSyncFleet();
});
afterAll(() => fleet.close());
beforeEach(() => {
  Object.assign(fleet.directory, testDirectory());
  store = SqliteStore.open(':memory:');
});

const CONFIG = () => validateConfig(fleet.config());

/** A real sync at `time`, stored; returns the snapshot. */
async function sync(time: number) {
  const [previous] = await store.snapshots();
  const { snapshot } = await runSync({
    config: CONFIG().config,
    previous,
    ...(await fleet.syncOptions()),
    now: () => time,
  });
  await store.putSnapshot(snapshot);
  return snapshot;
}

async function audit(...pairs: AuditEventPair[]): Promise<DecodedItem[]> {
  return decodeBatch(JSON.stringify(pairs.map((p) => p.listEvent)), 'test');
}

const items = (events: CanonicalEvent[]): DecodedItem[] => events.map((event) => ({ type: 'event', event }));

/**
 * Runs the pipeline on the store: `input`, then each step (a sync while it runs, say), then the
 * end of input at `asOf`. The alerts and sessions stored, and the correlation counters.
 */
async function run(
  input: DecodedItem[],
  asOf: number,
  loaded = CONFIG(),
  on = store,
  ...steps: ((p: Pipeline) => Promise<unknown>)[]
) {
  const pipeline = await Pipeline.open({ ...loaded, store: on });
  await pipeline.ingest(input);
  for (const step of steps) await step(pipeline);
  await pipeline.finish(asOf);
  const alerts: Alert[] = [];
  for await (const a of on.alerts()) alerts.push(a);
  const sessions: Session[] = [];
  for await (const s of on.sessions()) sessions.push(s);
  return { alerts, sessions, stats: pipeline.correlation };
}

const erinJoins = (time: number) =>
  domainMembershipEvent({
    kind: 'add',
    eventId: 'ev-erin-joins',
    time,
    domain: { id: DOMAIN.id, name: 'Default' },
    group: { id: DOMAIN.ddba.id, name: 'DomainDBAs' },
    user: { id: DOMAIN.erin.id, name: 'erin@example.com' },
  });

describe('identity domains', () => {
  it('a domain membership event (domain ids) reaches the group mapped by OCID: no false identity mismatch', async () => {
    fleet.directory.domains[0]!.groups[0]!.members = [];
    await sync(at(-60));
    const input = [
      ...(await audit(erinJoins(at(10)))),
      ...items([
        db.connect({ at: at(15), conn: 1, account: 'dba_proxy', user: 'erin@example.com', proxy: true }),
      ]),
    ];
    const { alerts, sessions, stats } = await run(input, at(30));
    expect(sessions[0]).toMatchObject({
      identity: { id: DOMAIN.erin.ocid },
      group: { id: DOMAIN.ddba.ocid, name: 'DomainDBAs' },
      attribution: { method: 'login-name', confidence: 'asserted' },
    });
    expect(sessions[0]!.attribution?.problem).toBeUndefined();
    expect(alerts.map((a) => a.rule)).not.toContain('access.identity-mismatch');
    // DomainDBAs maps to dba_proxy, privileged by its grants (derived, not configured).
    expect(alerts.find((a) => a.rule === 'iam.privileged-group-change')).toMatchObject({
      group: { id: DOMAIN.ddba.ocid },
      identity: { principalId: DOMAIN.erin.ocid },
    });
    expect(stats.unknownGroups).toBe(0);
  });

  const handWritten = (groups: { id: string; name: string }[]) =>
    validateConfig({
      tenancy: TENANCY,
      directory: { users: [{ id: DOMAIN.erin.ocid, name: 'erin@example.com' }], groups },
      dbSystems: [
        {
          id: DB.id,
          name: DB.name,
          privilegedAccounts: ['dba_proxy'],
          accounts: [
            { user: '', host: '%', plugin: 'authentication_oci', authenticationString: GROUP_MAPPING },
          ],
        },
      ],
    });
  const erinConnects = async () => [
    ...(await audit(erinJoins(at(10)))),
    ...items([
      db.connect({ at: at(15), conn: 1, account: 'dba_proxy', user: 'erin@example.com', proxy: true }),
    ]),
  ];

  it('a hand-written config naming the group by OCID and name: the event finds it by name', async () => {
    const loaded = handWritten([{ id: DOMAIN.ddba.ocid, name: 'DomainDBAs' }]);
    const { alerts, sessions, stats } = await run(await erinConnects(), at(30), loaded);
    expect(sessions[0]).toMatchObject({
      group: { id: DOMAIN.ddba.ocid },
      attribution: { method: 'login-name' },
    });
    expect(alerts.map((a) => a.rule)).toEqual(['iam.privileged-group-change']);
    expect(stats.unknownGroups).toBe(0);
  });

  it('a group nothing names (not by OCID, domain id or name): the false mismatch, and the event counted', async () => {
    const { alerts, sessions, stats } = await run(await erinConnects(), at(30), handWritten([]));
    expect(sessions[0]!.attribution?.problem).toBe('not-member');
    expect(alerts.map((a) => a.rule)).toEqual(['access.identity-mismatch']);
    expect(stats.unknownGroups).toBe(1);
  });
});

describe('drift between two snapshots', () => {
  it('an unaudited change in either direction is an event the rules see; an audited one is not drift', async () => {
    await sync(at(-60));
    const input = [
      ...(await audit(
        membershipChangeEvent({
          kind: 'remove',
          eventId: 'ev-alice-leaves',
          time: at(20),
          userId: USERS.alice,
          groupId: GROUPS.dba,
          membershipId: 'ocid1.groupmembership.oc1..alice-dba',
          compartmentId: TENANCY,
        }),
      )),
      ...items([
        db.query({
          at: at(40),
          conn: 3,
          account: 'admin',
          sqlCommand: 'grant',
          sql: "GRANT PROCESS ON *.* TO 'admin'@'%'",
        }),
      ]),
    ];
    const secondSync = async (pipeline: Pipeline) => {
      const dir = fleet.directory;
      // Unaudited: bob into BreakGlass (the directory dates it), dave out of Developers.
      dir.memberships.push({
        id: 'ocid1.groupmembership.oc1..bob-bg',
        userId: USERS.bob,
        groupId: GROUPS.bg,
        timeCreated: new Date(at(30)).toISOString(),
      });
      // Audited (the events above): alice leaves DBAdmins, admin gets PROCESS.
      dir.memberships = dir.memberships.filter((m) => m.userId !== USERS.dave && m.userId !== USERS.alice);
      const prod = fleet.servers.get(DB.id)!.catalogue.accounts;
      const billing = fleet.servers.get(PROD2.id)!.catalogue.accounts;
      const saved = [structuredClone(prod), structuredClone(billing)];
      try {
        prod.find((a) => a.user === 'app')!.grants!.push('SUPER');
        prod.find((a) => a.user === 'dev_proxy')!.grants = ['SELECT, INSERT, DELETE ON orders.*'];
        prod.find((a) => a.user === 'admin')!.grants!.push('PROCESS');
        prod.find((a) => a.user === '')!.authenticationString = GROUP_MAPPING.replace(
          'dev_proxy',
          'dba_proxy',
        );
        prod.push({ user: 'intruder', plugin: 'caching_sha2_password', grants: ['SELECT'] });
        billing.splice(
          billing.findIndex((a) => a.user === 'report'),
          1,
        );
        await sync(at(120));
      } finally {
        prod.splice(0, prod.length, ...saved[0]!);
        billing.splice(0, billing.length, ...saved[1]!);
      }
      return pipeline.followSnapshots();
    };
    const { alerts, stats } = await run(input, at(300), CONFIG(), store, secondSync);
    const observed = alerts.filter((a) => a.details?.observed);
    const byRule = (rule: string) => observed.filter((a) => a.rule === rule);

    expect(byRule('iam.privileged-group-change')).toHaveLength(1);
    const bg = byRule('iam.privileged-group-change')[0]!;
    expect(bg.title).toBe(
      'bob@example.com added to privileged group BreakGlass (observed by sync, not audited)',
    );
    expect(bg.details?.observed).toMatchObject({
      by: 'sync',
      change: 'bob@example.com added to BreakGlass',
      since: new Date(at(-60)).toISOString(),
      changedAt: new Date(at(30)).toISOString(),
    });
    // The unaudited membership is a break-glass grant from when the directory says it began.
    expect(alerts.find((a) => a.rule === 'break-glass.stale')).toMatchObject({
      identity: { principalId: USERS.bob },
      details: { grantedAt: new Date(at(30)).toISOString() },
    });

    const changes = byRule('privilege.change').map((a) => [a.title, a.severity]);
    expect(changes).toEqual(
      expect.arrayContaining([
        [`GRANT on app@% in ${DB.name} (observed by sync, not audited)`, 'high'],
        [`GRANT on dev_proxy@% in ${DB.name} (observed by sync, not audited)`, expect.any(String)],
        [`CREATE USER on intruder@% in ${DB.name} (observed by sync, not audited)`, 'medium'],
        [`DROP USER on report@% in ${PROD2.name} (observed by sync, not audited)`, 'medium'],
        [`ALTER USER on ''@% in ${DB.name} (observed by sync, not audited)`, 'medium'],
      ]),
    );
    expect(changes).toHaveLength(5);
    // A database privilege granted unaudited is drift too, named by its scope.
    expect(
      byRule('privilege.change').find((a) => a.title.includes('dev_proxy'))?.details?.observed,
    ).toMatchObject({
      change: 'privileges +DELETE ON `orders`.*',
    });
    expect(byRule('mapping.change').map((a) => a.title)).toEqual([
      `IAM mapping changed on ${DB.name}: alter ''@% (observed by sync, not audited)`,
    ]);
    // The audited changes raise their own alerts, from the audit events, and no observed one.
    expect(alerts.filter((a) => a.evidence.includes('ev-alice-leaves'))).toHaveLength(1);
    expect(observed.some((a) => a.title.includes('alice') || a.title.includes('admin@'))).toBe(false);
    // bob + dave, app, dev_proxy, intruder, report, mapping; alice and admin were audited.
    expect(stats).toMatchObject({ drift: 7, audited: 2 });
  });

  it('a break-glass membership removed unaudited ends its grant: the stale alert is resolved', async () => {
    await sync(at(-60));
    const bobInBreakGlass = {
      id: 'ocid1.groupmembership.oc1..bob-bg',
      userId: USERS.bob,
      groupId: GROUPS.bg,
      timeCreated: new Date(at(30)).toISOString(),
    };
    const added = async (pipeline: Pipeline) => {
      fleet.directory.memberships.push(bobInBreakGlass);
      await sync(at(120));
      return pipeline.followSnapshots();
    };
    // Past the grant's deadline (at(30) + 4 h), bob is gone with no audit event saying so.
    const removed = async (pipeline: Pipeline) => {
      fleet.directory.memberships = fleet.directory.memberships.filter((m) => m !== bobInBreakGlass);
      await sync(at(400));
      return pipeline.followSnapshots();
    };
    const { alerts } = await run([], at(500), CONFIG(), store, added, removed);
    const stale = alerts.filter((a) => a.rule === 'break-glass.stale');
    expect(stale.map((a) => a.status)).toEqual(['open', 'resolved']);
    expect(stale[1]).toMatchObject({
      id: stale[0]!.id,
      resolution: { reason: 'membership-removed', time: new Date(at(400)).toISOString() },
    });
  });

  it('a part read for the first time is a baseline, not drift', async () => {
    await fleet.servers.get(PROD2.id)!.stop();
    try {
      const first = await sync(at(-60));
      expect(first.parts[`accounts:${PROD2.id}`]?.status).toBe('failed');
    } finally {
      await fleet.servers.get(PROD2.id)!.restart();
    }
    const { alerts, stats } = await run([], at(120), CONFIG(), store, async (pipeline) => {
      await sync(at(60));
      return pipeline.followSnapshots();
    });
    expect((await store.snapshots())[0]!.parts[`accounts:${PROD2.id}`]?.status).toBe('ok');
    expect(alerts).toEqual([]);
    expect(stats.drift).toBe(0);
  });
});

describe('a snapshot as the baseline', () => {
  it('gives the same attribution as a hand-written configuration of the same facts', async () => {
    const snapshot = await sync(at(-60));
    const timeline = async () => [
      ...(await audit(erinJoins(at(5)))),
      ...items([
        db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
        db.connect({ at: at(11), conn: 2, account: 'carol' }),
        db.connect({ at: at(12), conn: 3, account: 'dba_proxy', user: 'erin@example.com', proxy: true }),
        db.connect({ at: at(13), conn: 4, account: 'dev_proxy', user: 'bob@example.com', proxy: true }),
        db.connect({ at: at(14), conn: 5, account: 'dev_proxy', user: 'mallory', proxy: true }),
        db.connect({ at: at(15), conn: 6, account: 'app' }),
      ]),
    ];
    const withSnapshot = await run(await timeline(), at(60));

    const printed = stringify(configWithSnapshot(fleet.config(), snapshot));
    const other = SqliteStore.open(':memory:');
    const handWritten = await run(await timeline(), at(60), parseConfigText(printed, 'printed'), other);

    const attribution = (s: Session) => [
      s.id,
      s.identity?.id,
      s.group?.id,
      s.attribution?.method,
      s.attribution?.confidence,
      s.attribution?.problem,
    ];
    expect(withSnapshot.sessions.map(attribution)).toEqual(handWritten.sessions.map(attribution));
    expect(withSnapshot.sessions).toHaveLength(6);
    const rules = (r: { alerts: Alert[] }) => r.alerts.map((a) => `${a.rule} ${a.title}`).sort();
    expect(rules(withSnapshot)).toEqual(rules(handWritten));
    expect(rules(withSnapshot).some((r) => r.startsWith('access.local-account'))).toBe(true);
  });
});
