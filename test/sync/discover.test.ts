// `sync` discovery against the local signed OCI endpoint (Identity, Identity Domains, MySQL, with
// the real SDK clients) and MySQL-protocol test servers (accounts and grants over mysql2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../shared/config/load-config.js';
import { DB, GROUPS, USERS } from '../../shared/detect/timeline.js';
import { followSnapshots } from '../../shared/sync/drift.js';
import { runSync } from '../../shared/sync/sync.js';
import { DOMAIN, PROD2, type SyncFleet, startSyncFleet } from '../helpers/sync-fleet.js';
import { DENIED_COMPARTMENTS } from '../oci-endpoint/mysql.js';

let fleet: SyncFleet;

beforeAll(async () => {
  // Small pages: every list operation is read across several pages.
  fleet = await startSyncFleet({ pageSize: 2, scimPageSize: 1 });
});
afterAll(() => fleet.close());

async function sync(extra = {}, previous?: Parameters<typeof runSync>[0]['previous'], on = fleet) {
  const { config } = validateConfig(on.config(extra));
  return runSync({
    config,
    previous,
    ...(await on.syncOptions()),
    now: () => Date.parse('2026-11-02T08:00:00Z'),
  });
}

describe('sync discovery', () => {
  it('reads classic users, groups and memberships, and the domain users and groups with both ids', async () => {
    const { snapshot, failed } = await sync();
    expect(failed).toEqual([]);
    const { users, groups, memberships } = snapshot.directory;
    expect(users.map((u) => u.id)).toEqual(
      [USERS.alice, USERS.bob, USERS.carol, USERS.dave, DOMAIN.erin.ocid].sort(),
    );
    expect(users.find((u) => u.id === DOMAIN.erin.ocid)).toMatchObject({
      name: 'erin@example.com',
      aliases: expect.arrayContaining([DOMAIN.erin.id, 'erin.ops@example.com']),
      state: 'active',
      part: `domain:${DOMAIN.id}`,
    });
    expect(groups.find((g) => g.id === DOMAIN.ddba.ocid)).toMatchObject({
      name: 'DomainDBAs',
      aliases: [DOMAIN.ddba.id],
      domain: DOMAIN.id,
    });
    expect(memberships).toContainEqual(
      expect.objectContaining({
        user: USERS.alice,
        group: GROUPS.dba,
        id: 'ocid1.groupmembership.oc1..alice-dba',
      }),
    );
    expect(memberships).toContainEqual(
      expect.objectContaining({
        user: DOMAIN.erin.ocid,
        group: DOMAIN.ddba.ocid,
        since: '2026-10-01T08:00:00.000Z',
      }),
    );
    expect(Object.keys(snapshot.parts).sort()).toEqual(
      [
        `accounts:${DB.id}`,
        `accounts:${PROD2.id}`,
        'dbSystems',
        `domain:${DOMAIN.id}`,
        'domains',
        'iam',
      ].sort(),
    );
  });

  it('reads identity domains in every compartment of the tenancy, each compartment listed once', async () => {
    const ops = {
      id: 'ocid1.domain.oc1..ops',
      displayName: 'Ops',
      key: 'idcs-ops',
      compartmentId: 'ocid1.compartment.oc1..analytics',
      users: [{ id: 'ops-user-id', ocid: 'ocid1.user.oc1..ops', userName: 'ops@example.com' }],
      groups: [
        {
          id: 'ops-group-id',
          ocid: 'ocid1.group.oc1..ops',
          displayName: 'Ops',
          members: [{ value: 'ops-user-id' }],
        },
      ],
    };
    fleet.directory.domains.push(ops);
    try {
      const { snapshot, failed } = await sync();
      expect(failed).toEqual([]);
      expect(snapshot.parts[`domain:${ops.id}`]).toMatchObject({ status: 'ok' });
      expect(snapshot.directory.memberships).toContainEqual(
        expect.objectContaining({ user: 'ocid1.user.oc1..ops', group: 'ocid1.group.oc1..ops' }),
      );
      // The tenancy and its two compartments, walked once for domains and DB systems alike.
      expect(snapshot.requests.oci['identity.listDomains']).toBe(3);
      expect(snapshot.requests.oci['identity.listCompartments']).toBe(1);
    } finally {
      fleet.directory.domains.pop();
    }
  });

  it('finds DB systems in the compartment tree with endpoints and read replicas, and reads their accounts', async () => {
    const { snapshot } = await sync();
    const prod = snapshot.dbSystems.find((d) => d.id === DB.id)!;
    expect(prod).toMatchObject({ name: DB.name, highlyAvailable: true, state: 'ACTIVE' });
    expect(prod.endpoints).toEqual([
      { host: 'localhost', port: fleet.servers.get(DB.id)!.address.port, role: 'primary' },
      { host: '127.0.0.9', port: 3306, role: 'replica' },
    ]);
    const mapping = prod.accounts!.find((a) => a.user === '' && a.host === '%')!;
    expect(mapping.plugin).toBe('authentication_oci');
    expect(JSON.parse(mapping.authenticationString!).group_mapping[DOMAIN.ddba.ocid]).toBe('dba_proxy');
    expect(prod.accounts!.find((a) => a.user === 'dba_proxy')).toMatchObject({
      locked: true,
      privileges: expect.arrayContaining(['SUPER', 'CREATE USER', 'GRANT OPTION']),
    });
    // Only authentication_oci strings are kept: other plugins store password hashes there.
    expect(
      prod
        .accounts!.filter((a) => a.plugin !== 'authentication_oci')
        .every((a) => a.authenticationString === undefined),
    ).toBe(true);
    // Derived: ALL + GRANT OPTION, a role granting SYSTEM_USER, AUDIT_ADMIN; not SELECT-only accounts.
    expect(prod.privilegedAccounts).toEqual([
      'admin',
      'admin_role',
      'dba_proxy',
      'emergency_admin',
      'hwaudit',
    ]);
    expect(snapshot.dbSystems.find((d) => d.id === PROD2.id)!.privilegedAccounts).toEqual([
      'billing_admin',
      'hwaudit',
    ]);
  });

  it('searches the other compartments when the policy denies one, and keeps the DB systems it held', async () => {
    const analytics = 'ocid1.compartment.oc1..analytics';
    const { snapshot: first } = await sync();
    fleet.endpoint.faults.arm('mysql', DENIED_COMPARTMENTS, Number.POSITIVE_INFINITY, [analytics]);
    try {
      const { snapshot, failed } = await sync({}, first);
      expect(failed).toEqual([]);
      expect(snapshot.parts.dbSystems!.warning).toMatch(`compartments not searched`);
      expect(snapshot.parts.dbSystems!.warning).toContain(analytics);
      expect(snapshot.dbSystems.map((d) => d.id)).toEqual([DB.id, PROD2.id].sort());
      // Nothing known before: only what the readable compartments hold.
      const { snapshot: fresh } = await sync();
      expect(fresh.dbSystems.map((d) => d.id)).toEqual([DB.id]);
      expect(fresh.dbSystems[0]!.endpoints).toHaveLength(2);
    } finally {
      fleet.endpoint.faults.clear();
    }
  });

  it('keeps a read replica that is not active, and drops one deleted, being deleted or failed', async () => {
    const replica = fleet.dbSystems.find((d) => d.id === DB.id)!.replicas![0]!;
    const roles: Record<string, string[]> = {};
    try {
      for (const state of ['UPDATING', 'NEEDS_ATTENTION', 'INACTIVE', 'DELETING', 'DELETED', 'FAILED']) {
        replica.lifecycleState = state;
        const { snapshot } = await sync();
        roles[state] = snapshot.dbSystems.find((d) => d.id === DB.id)!.endpoints.map((e) => e.role);
      }
    } finally {
      delete replica.lifecycleState;
    }
    const both = ['primary', 'replica'];
    expect(roles).toEqual({
      UPDATING: both,
      NEEDS_ATTENTION: both,
      INACTIVE: both,
      DELETING: ['primary'],
      DELETED: ['primary'],
      FAILED: ['primary'],
    });
  });

  it("reads every account's privileges from the grant tables, as SHOW GRANTS writes them, with SELECT on each table alone", async () => {
    const { snapshot } = await sync();
    const prod = snapshot.dbSystems.find((d) => d.id === DB.id)!;
    const grants = (user: string) => prod.accounts!.find((a) => a.user === user)!.grants;
    expect(snapshot.parts[`accounts:${DB.id}`]!.warning).toBeUndefined();
    expect(grants('dba_proxy')).toEqual([
      'GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, SHUTDOWN, PROCESS, FILE, REFERENCES, INDEX, ALTER, SHOW DATABASES, SUPER, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, CREATE TABLESPACE, CREATE ROLE, DROP ROLE ON *.* TO `dba_proxy`@`%` WITH GRANT OPTION',
    ]);
    expect(grants('dev_proxy')).toEqual([
      'GRANT USAGE ON *.* TO `dev_proxy`@`%`',
      'GRANT SELECT, INSERT ON `orders`.* TO `dev_proxy`@`%`',
    ]);
    expect(grants('app')).toEqual([
      'GRANT SELECT ON *.* TO `app`@`%`',
      'GRANT UPDATE ON `orders`.`items` TO `app`@`%`',
    ]);
    // A partial revoke (partial_revokes) follows the database grants.
    expect(grants('admin')).toEqual([
      'GRANT SELECT ON *.* TO `admin`@`%`',
      'GRANT AUDIT_ADMIN ON *.* TO `admin`@`%`',
      'REVOKE SELECT ON `mysql`.* FROM `admin`@`%`',
    ]);
    // Through its role: the role's privileges, and the role itself.
    expect(grants('emergency_admin')).toEqual([
      'GRANT CREATE USER ON *.* TO `emergency_admin`@`%`',
      'GRANT SYSTEM_USER ON *.* TO `emergency_admin`@`%`',
      'GRANT `admin_role`@`%` TO `emergency_admin`@`%`',
    ]);
    expect(grants('hwaudit')).toEqual([
      'GRANT USAGE ON *.* TO `hwaudit`@`%`',
      'GRANT AUDIT_ADMIN ON *.* TO `hwaudit`@`%`',
      'GRANT SELECT ON `mysql`.`db` TO `hwaudit`@`%`',
      'GRANT SELECT ON `mysql`.`global_grants` TO `hwaudit`@`%`',
      'GRANT SELECT ON `mysql`.`role_edges` TO `hwaudit`@`%`',
      'GRANT SELECT ON `mysql`.`tables_priv` TO `hwaudit`@`%`',
      'GRANT SELECT ON `mysql`.`user` TO `hwaudit`@`%`',
    ]);
    // Its privileges: global ones (none), then database and table ones, which drift compares.
    expect(prod.accounts!.find((a) => a.user === 'dev_proxy')!.privileges).toEqual([
      'SELECT ON `orders`.*',
      'INSERT ON `orders`.*',
    ]);
  });

  it('a database grant completed to every privilege is drift of the one privilege added', async () => {
    const devProxy = fleet.servers.get(DB.id)!.catalogue.accounts.find((a) => a.user === 'dev_proxy')!;
    const saved = devProxy.grants!;
    try {
      devProxy.grants = [
        'SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, GRANT OPTION, REFERENCES, INDEX, ALTER, CREATE TEMPORARY TABLES, LOCK TABLES, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EXECUTE, EVENT ON orders.*',
      ];
      const { snapshot: first } = await sync();
      devProxy.grants = ['ALL PRIVILEGES, GRANT OPTION ON orders.*'];
      const { snapshot: second } = await sync({}, first);
      const grants = (s: typeof first) =>
        s.dbSystems.find((d) => d.id === DB.id)!.accounts!.find((a) => a.user === 'dev_proxy')!.grants;
      // SHOW GRANTS writes it as ALL PRIVILEGES; what changed is TRIGGER.
      expect(grants(second)).toContain(
        'GRANT ALL PRIVILEGES ON `orders`.* TO `dev_proxy`@`%` WITH GRANT OPTION',
      );
      const events = followSnapshots(first, [second]).events;
      expect(events.map((e) => e.observed.change)).toEqual(['privileges +TRIGGER ON `orders`.*']);
    } finally {
      devProxy.grants = saved;
    }
  });

  it('without SELECT on a grant table, says which grant is missing and keeps no grants, but reads the rest', async () => {
    const prod = fleet.servers.get(DB.id)!.catalogue.accounts;
    const collector = prod.find((a) => a.user === 'hwaudit')!;
    const saved = collector.grants!;
    collector.grants = saved.filter((g) => g !== 'SELECT ON mysql.db' && g !== 'SELECT ON mysql.role_edges');
    try {
      const { snapshot, failed } = await sync();
      expect(failed).toEqual([]);
      expect(snapshot.parts[`accounts:${DB.id}`]!.warning).toBe(
        "cannot read mysql.role_edges, mysql.db: privileges from there are not known, nor the accounts' grants (GRANT SELECT ON mysql.role_edges TO hwaudit; GRANT SELECT ON mysql.db TO hwaudit;)",
      );
      const db = snapshot.dbSystems.find((d) => d.id === DB.id)!;
      expect(db.accounts!.every((a) => a.grants === undefined)).toBe(true);
      expect(db.privilegedAccounts).toContain('dba_proxy');
    } finally {
      collector.grants = saved;
    }
  });

  it('pages every list and retries throttled calls, counting each request', async () => {
    fleet.endpoint.faults.failNext('identity.listUserGroupMemberships', 2, 429);
    fleet.endpoint.faults.failNext('identitydomains.listGroups', 1, 429);
    fleet.endpoint.faults.failNext('mysql.listDbSystems', 1, 503);
    const before = fleet.endpoint.requests.length;
    const { snapshot, failed } = await sync();
    expect(failed).toEqual([]);
    expect(fleet.endpoint.faults.pending()).toBe(0);
    const sent = fleet.endpoint.requests.slice(before);
    const counted = Object.values(snapshot.requests.oci).reduce((a, b) => a + b, 0);
    expect(counted).toBe(sent.length);
    // 4 users in pages of 2: 2 calls; the one domain group, once throttled: 2 calls.
    expect(snapshot.requests.oci['identity.listUsers']).toBe(2);
    expect(snapshot.requests.oci['identitydomains.listGroups']).toBe(2);
    expect(snapshot.requests.sql).toBeGreaterThan(0);
    expect(snapshot.directory.memberships).toHaveLength(4);
  });

  it('a part that fails keeps the previous data, marked failed with the reason', async () => {
    const { snapshot: first } = await sync();
    fleet.endpoint.faults.failNext('identitydomains.listUsers', Number.POSITIVE_INFINITY, 500);
    await fleet.servers.get(PROD2.id)!.stop();
    try {
      const { snapshot, failed } = await sync({}, first);
      expect(failed.map((f) => f.part).sort()).toEqual([`accounts:${PROD2.id}`, `domain:${DOMAIN.id}`]);
      expect(snapshot.parts[`domain:${DOMAIN.id}`]).toMatchObject({ status: 'failed', readAt: first.time });
      expect(snapshot.parts[`domain:${DOMAIN.id}`]!.error).toMatch(
        /identitydomains.listUsers failed \(status 500/,
      );
      expect(snapshot.directory.users.map((u) => u.id)).toContain(DOMAIN.erin.ocid);
      expect(snapshot.directory.memberships).toEqual(first.directory.memberships);
      const billing = snapshot.dbSystems.find((d) => d.id === PROD2.id)!;
      expect(billing.accounts).toEqual(first.dbSystems.find((d) => d.id === PROD2.id)!.accounts);
      expect(snapshot.parts[`accounts:${PROD2.id}`]!.error).toMatch(/cannot reach/);
    } finally {
      fleet.endpoint.faults.clear();
      await fleet.servers.get(PROD2.id)!.restart();
    }
  });

  it("keeps the default domain's ids and group domains on what classic IAM lists too, also while the domain fails", async () => {
    // The default domain lists alice and DBAdmins too, under its own ids.
    const domain = fleet.directory.domains[0]!;
    domain.users.push({ id: 'alice-scim-id', ocid: USERS.alice, userName: 'alice@example.com' });
    domain.groups.push({
      id: 'dba-scim-id',
      ocid: GROUPS.dba,
      displayName: 'DBAdmins',
      members: [{ value: 'alice-scim-id' }],
    });
    const dba = {
      id: GROUPS.dba,
      name: 'DBAdmins',
      aliases: ['dba-scim-id'],
      domain: DOMAIN.id,
      part: 'iam',
    };
    const alice = expect.objectContaining({ id: USERS.alice, aliases: ['alice-scim-id'], part: 'iam' });
    try {
      const { snapshot: first } = await sync();
      expect(first.directory.groups).toContainEqual(dba);
      expect(first.directory.users).toContainEqual(alice);
      fleet.endpoint.faults.failNext('identitydomains.listUsers', Number.POSITIVE_INFINITY, 500);
      const { snapshot, failed } = await sync({}, first);
      expect(failed.map((f) => f.part)).toEqual([`domain:${DOMAIN.id}`]);
      expect(snapshot.directory.groups).toContainEqual(dba);
      expect(snapshot.directory.users).toContainEqual(alice);
    } finally {
      fleet.endpoint.faults.clear();
      domain.users.pop();
      domain.groups.pop();
    }
  });

  it('a sync that can read nothing fails and says the previous snapshot stays in use', async () => {
    const { snapshot: first } = await sync();
    fleet.endpoint.faults.failNext('*', Number.POSITIVE_INFINITY, 401);
    const servers = [...fleet.servers.values()];
    await Promise.all(servers.map((s) => s.stop()));
    try {
      await expect(sync({}, first)).rejects.toThrow(`the snapshot of ${first.time} stays in use`);
    } finally {
      fleet.endpoint.faults.clear();
      await Promise.all(servers.map((s) => s.restart()));
    }
  });

  it('needs the tenancy', async () => {
    await expect(sync({ tenancy: undefined })).rejects.toThrow(/tenancy/);
  });
});

describe('sync discovery: a group of more than 10,000 members', () => {
  // The service's page sizes: 10,001 domain users are listed in 11 requests.
  let large: SyncFleet;
  beforeAll(async () => {
    large = await startSyncFleet();
  });
  afterAll(() => large.close());

  it('reads its members whole, 1,000 a request, although no response may carry more than 10,000', async () => {
    const domain = large.directory.domains[0]!;
    const users = Array.from({ length: 10_001 }, (_, i) => ({
      id: `everyone-${i}`,
      ocid: `ocid1.user.oc1..everyone-${i}`,
      userName: `everyone-${i}@example.com`,
    }));
    domain.users.push(...users);
    domain.groups.push({
      id: 'everyone-id',
      ocid: 'ocid1.group.oc1..everyone',
      displayName: 'Everyone',
      members: users.map((u) => ({ value: u.id })),
    });
    const { snapshot, failed } = await sync({}, undefined, large);
    expect(failed).toEqual([]);
    const everyone = snapshot.directory.memberships.filter((m) => m.group === 'ocid1.group.oc1..everyone');
    expect(everyone.map((m) => m.user).sort()).toEqual(users.map((u) => u.ocid).sort());
    // 11 pages of Everyone's members, and one of DomainDBAs'.
    expect(snapshot.requests.oci['identitydomains.getGroup']).toBe(12);
  });
});
