// The DB systems `sync` finds (oci-mysql): every DB system of a compartment and the compartments
// below it, with its version, HA, primary endpoint and read replicas, so that the collector's
// instances come from here. ListDbSystems does not look into sub-compartments: it is called in
// each compartment of the tree (shared/oci/compartments.ts).
import type { models } from 'oci-mysql';
import type { Endpoint } from '../../schemas/config.js';
import type { SnapshotDbSystem } from '../../schemas/snapshot.js';
import { AuditError } from '../errors.js';
import { inGroups } from '../in-groups.js';
import type { OciClientTypes } from '../oci/clients.js';
import type { OciCalls } from './oci-calls.js';

export type DbSystemClients = {
  mysql: OciClientTypes['mysql'];
  replicas: OciClientTypes['mysqlreplicas'];
};

const PAGE = 1000;
const CONCURRENCY = 4;
const GONE = new Set(['DELETED', 'DELETING']);
/**
 * A read replica is kept in every other state (UPDATING, NEEDS_ATTENTION, a stopped one): collect
 * keeps reading it, or reports it as not read, as it does a DB system's primary.
 */
const REPLICA_GONE = new Set([...GONE, 'FAILED']);

export type DiscoveredDbSystems = {
  dbSystems: SnapshotDbSystem[];
  /** Compartments the caller may not read (401, 404 NotAuthorizedOrNotFound): not searched. */
  denied: string[];
};

export async function discoverDbSystems(
  compartments: readonly string[],
  clients: DbSystemClients,
  calls: OciCalls,
): Promise<DiscoveredDbSystems> {
  const denied: string[] = [];
  const found = await inGroups(compartments, CONCURRENCY, async (c) => {
    try {
      return await inCompartment(c, clients, calls);
    } catch (error) {
      // A policy may cover some compartments only: the others are still searched.
      const status = error instanceof AuditError ? error.details.status : undefined;
      if (status !== 401 && status !== 404) throw error;
      denied.push(c);
      return [];
    }
  });
  return {
    dbSystems: found.flat().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    denied: compartments.filter((c) => denied.includes(c)),
  };
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
  ).filter((r) => !REPLICA_GONE.has(r.lifecycleState));
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
