// What one `sync` costs: OCI API requests by operation and SQL statements, for a tenancy on
// identity domains (the classic IAM API and the default domain's SCIM API both list the same
// users and groups) with DB systems spread over compartments, each with a read replica, served
// by the local signed OCI endpoint and MySQL-protocol servers (test/), counted at the endpoint.
import { performance } from 'node:perf_hooks';
import { validateConfig } from '../shared/config/load-config.js';
import { ociAuthProvider } from '../shared/oci/auth.js';
import { connectInstance, secretReader } from '../shared/sources/mysql-connection.js';
import { readSnapshot } from '../shared/state/state-store.js';
import { ociSyncClients, runSync } from '../shared/sync/sync.js';
import { HeatWaveTestServer, type TestAccount } from '../test/mysql-server/server.js';
import { identityService, type TestDirectory } from '../test/oci-endpoint/identity.js';
import { identityDomainsService } from '../test/oci-endpoint/identity-domains.js';
import { mysqlService, type TestDbSystem } from '../test/oci-endpoint/mysql.js';
import { startOciEndpoint } from '../test/oci-endpoint/server.js';
import { createTestPrincipal } from '../test/oci-endpoint/signature.js';

export type SyncCostFleet = { users: number; groups: number; dbSystems: number; compartments: number };

export type SyncCost = {
  requests: Record<string, number>;
  /** Requests the endpoint received (the count the snapshot records must match it). */
  received: number;
  sqlStatements: number;
  ms: number;
  memberships: number;
  /** The snapshot as stored (JSON), and how long reading it back takes (what each pipeline open pays). */
  snapshotKB: number;
  snapshotReadMs: number;
};

const TENANCY = 'ocid1.tenancy.oc1..bench';
const PASSWORD = 'bench-sync';

export async function syncCostBench(f: SyncCostFleet): Promise<SyncCost> {
  const users = Array.from({ length: f.users }, (_, i) => ({
    id: `ocid1.user.oc1..u${i}`,
    name: `user${i}@example.com`,
  }));
  const groups = Array.from({ length: f.groups }, (_, i) => ({
    id: `ocid1.group.oc1..g${i}`,
    name: `Group${i}`,
  }));
  // Everyone is in two groups.
  const memberships = users.flatMap((u, i) =>
    [i % f.groups, (i * 7 + 3) % f.groups].map((g, k) => ({
      id: `ocid1.groupmembership.oc1..m${i}-${k}`,
      userId: u.id,
      groupId: groups[g]!.id,
    })),
  );
  const compartments = Array.from({ length: f.compartments }, (_, i) => ({
    id: `ocid1.compartment.oc1..c${i}`,
    parentId: TENANCY,
    name: `c${i}`,
  }));
  const directory: TestDirectory = {
    tenancy: TENANCY,
    compartments,
    users,
    groups,
    memberships,
    domains: [
      {
        id: 'ocid1.domain.oc1..default',
        displayName: 'Default',
        key: 'idcs-default',
        users: users.map((u, i) => ({ id: `scim-u${i}`, ocid: u.id, userName: u.name, emails: [u.name] })),
        groups: groups.map((g, i) => ({
          id: `scim-g${i}`,
          ocid: g.id,
          displayName: g.name,
          members: memberships
            .filter((m) => m.groupId === g.id)
            .map((m) => ({ value: `scim-u${users.findIndex((u) => u.id === m.userId)}` })),
        })),
      },
    ],
  };
  const accounts: TestAccount[] = [
    {
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
    },
    {
      user: '',
      plugin: 'authentication_oci',
      authenticationString: JSON.stringify({
        tenancy: TENANCY,
        group_mapping: { [groups[0]!.id]: 'dba_proxy', [groups[1]!.id]: 'ro_proxy' },
      }),
    },
    { user: 'dba_proxy', locked: true, grants: ['ALL PRIVILEGES'] },
    { user: 'ro_proxy', locked: true, grants: ['SELECT, SHOW VIEW ON orders.*'] },
    ...Array.from({ length: 8 }, (_, i) => ({ user: `app${i}`, grants: ['SELECT', 'INSERT'] })),
  ];
  const servers = await Promise.all(
    Array.from({ length: f.dbSystems }, () => HeatWaveTestServer.start({ accounts })),
  );
  const dbSystems: TestDbSystem[] = servers.map((s, i) => ({
    id: `ocid1.mysqldbsystem.oc1..db${i}`,
    compartmentId: compartments[i % f.compartments]!.id,
    displayName: `db${i}`,
    endpoint: { ipAddress: '127.0.0.1', port: s.address.port },
    replicas: [
      {
        id: `ocid1.mysqlreplica.oc1..r${i}`,
        displayName: `db${i}-replica`,
        ipAddress: '127.0.0.2',
        port: 3306,
      },
    ],
  }));
  const principal = createTestPrincipal();
  const endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    handlers: [
      identityService(directory).handler,
      identityDomainsService(directory).handler,
      mysqlService({ dbSystems }).handler,
    ],
  });
  const env = { HWAUDIT_OCI_ENDPOINT: endpoint.url, BENCH_SYNC_PW: PASSWORD };
  try {
    const { config } = validateConfig({
      tenancy: TENANCY,
      collector: {
        user: 'hwaudit',
        password: { env: 'BENCH_SYNC_PW' },
        tls: 'disabled',
        allowPlaintext: true,
      },
    });
    const auth = await ociAuthProvider({ kind: 'config-file', configFile: principal.configFile });
    const read = secretReader(env, () => Promise.reject(new Error('no vault in the bench')));
    const started = performance.now();
    const { snapshot } = await runSync({
      config,
      clients: () => ociSyncClients(auth, env),
      connect: (t) => connectInstance(t, read),
    });
    const body = JSON.stringify(snapshot);
    readSnapshot(body); // once to warm up: a function container reads it at every invocation
    const read0 = performance.now();
    readSnapshot(body);
    return {
      requests: snapshot.requests.oci,
      received: endpoint.requests.length,
      sqlStatements: snapshot.requests.sql,
      ms: Math.round(performance.now() - started),
      memberships: snapshot.directory.memberships.length,
      snapshotKB: Math.round(Buffer.byteLength(body) / 1024),
      snapshotReadMs: Math.round((performance.now() - read0) * 10) / 10,
    };
  } finally {
    await endpoint.close();
    await Promise.all(servers.map((s) => s.stop()));
    principal.cleanup();
  }
}
