// The DB systems `sync` finds (oci-mysql): every DB system of a compartment and the compartments
// below it, with its version, HA, primary endpoint and read replicas, so that the collector's
// instances come from here. ListDbSystems does not look into sub-compartments: the compartment
// tree is walked first (from the tenancy in one paged call, from another compartment level by
// level).
import type { requests } from 'oci-identity';
import type { models } from 'oci-mysql';
import type { Endpoint } from '../../schemas/config.js';
import type { SnapshotDbSystem } from '../../schemas/snapshot.js';
import type { OciClientTypes } from '../oci/clients.js';
import type { OciCalls } from './oci-calls.js';

export type DbSystemClients = {
  identity: OciClientTypes['identity'];
  mysql: OciClientTypes['mysql'];
  replicas: OciClientTypes['mysqlreplicas'];
};

const PAGE = 1000;
const CONCURRENCY = 4;
const GONE = new Set(['DELETED', 'DELETING']);

export async function discoverDbSystems(
  root: string,
  tenancy: string,
  clients: DbSystemClients,
  calls: OciCalls,
): Promise<SnapshotDbSystem[]> {
  const compartments = [root, ...(await compartmentsBelow(root, tenancy, clients.identity, calls))];
  const found: SnapshotDbSystem[] = [];
  for (let i = 0; i < compartments.length; i += CONCURRENCY) {
    const batch = await Promise.all(
      compartments.slice(i, i + CONCURRENCY).map((c) => inCompartment(c, clients, calls)),
    );
    found.push(...batch.flat());
  }
  return found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

async function compartmentsBelow(
  root: string,
  tenancy: string,
  client: OciClientTypes['identity'],
  calls: OciCalls,
): Promise<string[]> {
  const list = (compartmentId: string, subtree: boolean) =>
    calls.list('identity.listCompartments', (page) =>
      client.listCompartments({
        compartmentId,
        limit: PAGE,
        ...(subtree
          ? {
              compartmentIdInSubtree: true,
              accessLevel: 'ACCESSIBLE' as requests.ListCompartmentsRequest.AccessLevel,
            }
          : {}),
        ...(page ? { page } : {}),
      }),
    );
  const active = (cs: { id: string; lifecycleState: string }[]) =>
    cs.filter((c) => c.lifecycleState === 'ACTIVE').map((c) => c.id);
  if (root === tenancy) return active(await list(tenancy, true));
  const out: string[] = [];
  for (let level = [root]; level.length > 0; ) {
    const next: string[] = [];
    for (const c of level) next.push(...active(await list(c, false)));
    out.push(...next);
    level = next;
  }
  return out;
}

async function inCompartment(
  compartmentId: string,
  clients: DbSystemClients,
  calls: OciCalls,
): Promise<SnapshotDbSystem[]> {
  const systems = (
    await calls.list('mysql.listDbSystems', (page) =>
      clients.mysql.listDbSystems({ compartmentId, limit: PAGE, ...(page ? { page } : {}) }),
    )
  ).filter((d) => !GONE.has(d.lifecycleState));
  if (systems.length === 0) return [];
  const replicas = (
    await calls.list('mysql.listReplicas', (page) =>
      clients.replicas.listReplicas({ compartmentId, limit: PAGE, ...(page ? { page } : {}) }),
    )
  ).filter((r) => r.lifecycleState === 'ACTIVE');
  return systems.map((d) => {
    const endpoints: Endpoint[] = [];
    const primary =
      d.endpoints?.find(
        (e) => e.resourceType === 'DBSYSTEM' && e.modes?.includes('WRITE' as models.DbSystemEndpoint.Modes),
      ) ?? d.endpoints?.[0];
    if (primary)
      endpoints.push({ host: primary.hostname || primary.ipAddress, port: primary.port, role: 'primary' });
    for (const r of replicas.filter((x) => x.dbSystemId === d.id))
      endpoints.push({ host: r.ipAddress, port: r.port, role: 'replica' });
    const row: SnapshotDbSystem = {
      id: d.id,
      name: d.displayName,
      compartmentId,
      version: d.mysqlVersion,
      highlyAvailable: d.isHighlyAvailable ?? false,
      state: d.lifecycleState,
      endpoints,
    };
    return row;
  });
}
