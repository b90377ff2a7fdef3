// A tenancy for `sync` tests, served for real: the local signed OCI endpoint with the Identity,
// Identity Domains and MySQL APIs, and one MySQL-protocol test server per DB system holding its
// accounts and grants. It mirrors the standard test fleet (shared/detect/timeline.ts): the classic
// users and groups, and an identity domain whose group "DomainDBAs" maps to dba_proxy, so that a
// domain membership event (which names the group by the domain's own id) can be checked to reach it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../schemas/config.js';
import { baseConfig, DB, GROUPS, USERS } from '../../shared/detect/timeline.js';
import { ociAuthProvider } from '../../shared/oci/auth.js';
import type { RetryPolicy } from '../../shared/oci/clients.js';
import { connectInstance, secretReader } from '../../shared/sources/mysql-connection.js';
import { ociSyncClients, type SyncOptions } from '../../shared/sync/sync.js';
import { HeatWaveTestServer, type TestAccount } from '../mysql-server/server.js';
import { type TlsMaterial, tlsMaterial } from '../mysql-server/tls.js';
import { identityService, type TestDirectory } from '../oci-endpoint/identity.js';
import { identityDomainsService } from '../oci-endpoint/identity-domains.js';
import { mysqlService, type TestDbSystem } from '../oci-endpoint/mysql.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, type TestPrincipal } from '../oci-endpoint/signature.js';

export const TENANCY = 'ocid1.tenancy.oc1..example';
export const DB_COMPARTMENT = 'ocid1.compartment.oc1..databases';
export const DOMAIN = {
  id: 'ocid1.domain.oc1..default',
  key: 'idcs-default',
  /** A domain user and group: the SCIM `id`s are the domain's own, the OCIDs what mappings name. */
  erin: { id: '7a1c3e5f9b2d4f6a8c0e1b3d5f7a9c2e', ocid: 'ocid1.user.oc1..erin' },
  ddba: { id: '4e6a8c0b2d4f6e8a0c2e4b6d8f0a2c4e', ocid: 'ocid1.group.oc1..ddba' },
};
export const PASSWORD_VAR = 'HW_TEST_SYNC_PW';
const PASSWORD = 'sync-pw';
export const COLLECTOR: TestAccount = {
  user: 'hwaudit',
  password: PASSWORD,
  grants: [
    'AUDIT_ADMIN',
    'SELECT ON mysql.user',
    'SELECT ON mysql.global_grants',
    'SELECT ON mysql.role_edges',
    'SELECT ON mysql.db',
    'SELECT ON mysql.tables_priv',
  ],
};

export const GROUP_MAPPING = JSON.stringify({
  tenancy: TENANCY,
  group_mapping: {
    [GROUPS.dba]: 'dba_proxy',
    [GROUPS.bg]: 'emergency_admin',
    [GROUPS.dev]: 'dev_proxy',
    [DOMAIN.ddba.ocid]: 'dba_proxy',
  },
});

/** The accounts of prod-orders, as in the standard fleet, with privileges. */
export function prodAccounts(): TestAccount[] {
  return [
    COLLECTOR,
    { user: '', plugin: 'authentication_oci', authenticationString: GROUP_MAPPING },
    {
      user: 'carol',
      plugin: 'authentication_oci',
      authenticationString: JSON.stringify({ tenancy: TENANCY, user: USERS.carol }),
    },
    { user: 'dba_proxy', locked: true, grants: ['ALL PRIVILEGES', 'GRANT OPTION'] },
    { user: 'emergency_admin', locked: true, roles: ['admin_role'] },
    { user: 'admin_role', locked: true, grants: ['SYSTEM_USER', 'CREATE USER'] },
    { user: 'dev_proxy', locked: true, grants: ['SELECT, INSERT ON orders.*'] },
    {
      user: 'admin',
      plugin: 'caching_sha2_password',
      grants: ['SELECT', 'AUDIT_ADMIN'],
      restrictions: [{ database: 'mysql', privileges: ['SELECT'] }],
    },
    { user: 'app', plugin: 'caching_sha2_password', grants: ['SELECT', 'UPDATE ON orders.items'] },
  ];
}

export function testDirectory(): TestDirectory {
  const since = '2026-10-01T08:00:00.000Z';
  return {
    tenancy: TENANCY,
    compartments: [
      { id: DB_COMPARTMENT, parentId: TENANCY, name: 'databases' },
      { id: 'ocid1.compartment.oc1..analytics', parentId: DB_COMPARTMENT, name: 'analytics' },
    ],
    users: [
      { id: USERS.alice, name: 'alice@example.com', email: 'alice@example.com' },
      { id: USERS.bob, name: 'bob@example.com' },
      { id: USERS.carol, name: 'carol@example.com' },
      { id: USERS.dave, name: 'dave@example.com' },
    ],
    groups: [
      { id: GROUPS.dba, name: 'DBAdmins' },
      { id: GROUPS.bg, name: 'BreakGlass' },
      { id: GROUPS.dev, name: 'Developers' },
    ],
    memberships: [
      {
        id: 'ocid1.groupmembership.oc1..alice-dba',
        userId: USERS.alice,
        groupId: GROUPS.dba,
        timeCreated: since,
      },
      {
        id: 'ocid1.groupmembership.oc1..bob-dev',
        userId: USERS.bob,
        groupId: GROUPS.dev,
        timeCreated: since,
      },
      {
        id: 'ocid1.groupmembership.oc1..dave-dev',
        userId: USERS.dave,
        groupId: GROUPS.dev,
        timeCreated: since,
      },
    ],
    domains: [
      {
        id: DOMAIN.id,
        displayName: 'Default',
        key: DOMAIN.key,
        users: [
          {
            id: DOMAIN.erin.id,
            ocid: DOMAIN.erin.ocid,
            userName: 'erin@example.com',
            displayName: 'Erin Example',
            emails: ['erin@example.com', 'erin.ops@example.com'],
          },
        ],
        groups: [
          {
            id: DOMAIN.ddba.id,
            ocid: DOMAIN.ddba.ocid,
            displayName: 'DomainDBAs',
            members: [{ value: DOMAIN.erin.id, dateAdded: since }],
          },
        ],
      },
    ],
  };
}

export type SyncFleet = {
  endpoint: OciEndpoint;
  directory: TestDirectory;
  dbSystems: TestDbSystem[];
  /** The server of each DB system, by DB system id. */
  servers: Map<string, HeatWaveTestServer>;
  env: Record<string, string>;
  /** The user's configuration: what cannot be discovered, and the collector settings. */
  config(extra?: Partial<ConfigInput>): ConfigInput;
  /** The options runSync needs (real SDK clients, real mysql2 sessions). */
  syncOptions(): Promise<Pick<SyncOptions, 'clients' | 'connect' | 'retry'>>;
  /** A file under a temporary folder removed by close(). */
  file(name: string, text?: string): string;
  close(): Promise<void>;
};

export const PROD2 = { id: 'ocid1.mysqldbsystem.oc1..prod2', name: 'prod-billing' };

/** A fast retry policy for tests (real backoff shape, millisecond delays). */
export const FAST_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 };

let tls: TlsMaterial | undefined;

export async function startSyncFleet(
  opts: { pageSize?: number; scimPageSize?: number } = {},
): Promise<SyncFleet> {
  tls ??= await tlsMaterial();
  const principal: TestPrincipal = createTestPrincipal();
  const directory = testDirectory();
  const servers = new Map<string, HeatWaveTestServer>();
  const start = async (id: string, accounts: TestAccount[]) => {
    const s = await HeatWaveTestServer.start({ accounts, tls: { key: tls!.key, cert: tls!.cert } });
    servers.set(id, s);
    return s;
  };
  const prod = await start(DB.id, prodAccounts());
  const billing = await start(PROD2.id, [
    COLLECTOR,
    { user: 'billing_admin', grants: ['SUPER'] },
    { user: 'report', grants: ['SELECT'] },
  ]);
  const dbSystems: TestDbSystem[] = [
    {
      id: DB.id,
      compartmentId: DB_COMPARTMENT,
      displayName: DB.name,
      isHighlyAvailable: true,
      endpoint: { ipAddress: '127.0.0.1', port: prod.address.port, hostname: 'localhost' },
      replicas: [
        { id: 'ocid1.mysqlreplica.oc1..r1', displayName: 'replica-1', ipAddress: '127.0.0.9', port: 3306 },
      ],
    },
    {
      id: PROD2.id,
      compartmentId: 'ocid1.compartment.oc1..analytics',
      displayName: PROD2.name,
      endpoint: { ipAddress: '127.0.0.1', port: billing.address.port },
    },
  ];
  const pages = { oci: opts.pageSize ?? 1000, scim: opts.scimPageSize ?? 1000 };
  const endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    handlers: [
      identityService(directory, pages).handler,
      identityDomainsService(directory, pages).handler,
      mysqlService({ dbSystems }, pages).handler,
    ],
  });
  const dir = mkdtempSync(join(tmpdir(), 'sync-fleet-'));
  const env: Record<string, string> = {
    [PASSWORD_VAR]: PASSWORD,
    HWAUDIT_OCI_AUTH: 'config-file',
    HWAUDIT_OCI_CONFIG_FILE: principal.configFile,
    HWAUDIT_OCI_ENDPOINT: endpoint.url,
  };
  return {
    endpoint,
    directory,
    dbSystems,
    servers,
    env,
    config: (extra = {}) => {
      const base = baseConfig();
      return {
        tenancy: TENANCY,
        lateness: 'PT1M',
        directory: { groups: [{ id: GROUPS.bg, breakGlass: { maxDuration: 'PT4H' } }] },
        dbSystems: [{ id: DB.id, iamOnly: true, allowedLocalAccounts: ['admin@%', 'hwaudit@%'] }],
        collector: { user: 'hwaudit', password: { env: PASSWORD_VAR }, tls: 'required' },
        rules: base.rules ?? {},
        ...extra,
      };
    },
    syncOptions: async () => {
      const auth = await ociAuthProvider({ kind: 'config-file', configFile: principal.configFile });
      const read = secretReader(env, () => Promise.reject(new Error('no vault in this test')));
      return {
        clients: () => ociSyncClients(auth, env),
        connect: (t) => connectInstance(t, read),
        retry: FAST_RETRY,
      };
    },
    file: (name, text) => {
      const path = join(dir, name);
      if (text !== undefined) writeFileSync(path, text);
      return path;
    },
    close: async () => {
      await endpoint.close();
      await Promise.all([...servers.values()].map((s) => s.stop()));
      principal.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
