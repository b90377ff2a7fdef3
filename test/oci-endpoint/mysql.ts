// MySQL HeatWave (20190415), the read operations `sync` uses, shaped like oci-mysql's
// DbSystemSummary (with its endpoints) and ReplicaSummary: ListDbSystems and ListReplicas of one
// compartment (no sub-compartments, as the API does), paged with opaque tokens.
import { ociPage } from './paging.js';
import { type EndpointRequest, type HandlerContext, ociError, type ServiceHandler } from './server.js';

/**
 * Handler hook (`faults.arm('mysql', DENIED_COMPARTMENTS, Infinity, [ocid])`): compartments the
 * caller's policy does not cover (one scoped to other compartments), where OCI answers 404
 * NotAuthorizedOrNotFound.
 */
export const DENIED_COMPARTMENTS = 'denied-compartments';

function refused(req: EndpointRequest, ctx: HandlerContext) {
  if (!req.query.compartmentId) return ociError(400, 'MissingParameter', 'compartmentId is required.');
  if (ctx.faults.take<string[]>(req.route, DENIED_COMPARTMENTS)?.includes(req.query.compartmentId))
    return ociError(404, 'NotAuthorizedOrNotFound', 'Authorization failed or requested resource not found.');
  return undefined;
}

export type TestReplica = {
  id: string;
  displayName: string;
  ipAddress: string;
  port: number;
  lifecycleState?: string;
};

export type TestDbSystem = {
  id: string;
  compartmentId: string;
  displayName: string;
  mysqlVersion?: string;
  isHighlyAvailable?: boolean;
  lifecycleState?: string;
  /** The primary endpoint: `hostname` when the DB system has a DNS label. */
  endpoint: { ipAddress: string; port: number; hostname?: string };
  replicas?: TestReplica[];
};

const CREATED = '2026-01-05T08:00:00.000Z';

export function mysqlService(
  fleet: { dbSystems: TestDbSystem[] },
  pages: { oci?: number } = {},
): { handler: ServiceHandler } {
  const max = pages.oci ?? 1000;
  const handler: ServiceHandler = {
    name: 'mysql',
    basePath: '/20190415',
    routes: [
      {
        name: 'listDbSystems',
        method: 'GET',
        pattern: '/dbSystems',
        handle: (req, ctx) => {
          const refusal = refused(req, ctx);
          if (refusal) return refusal;
          const items = fleet.dbSystems
            .filter((d) => d.compartmentId === req.query.compartmentId)
            .filter(
              (d) => !req.query.lifecycleState || (d.lifecycleState ?? 'ACTIVE') === req.query.lifecycleState,
            )
            .map((d) => ({
              id: d.id,
              displayName: d.displayName,
              compartmentId: d.compartmentId,
              isHighlyAvailable: d.isHighlyAvailable ?? false,
              endpoints: [
                {
                  ...(d.endpoint.hostname ? { hostname: d.endpoint.hostname } : {}),
                  ipAddress: d.endpoint.ipAddress,
                  port: d.endpoint.port,
                  portX: 33060,
                  modes: ['READ', 'WRITE'],
                  status: 'ACTIVE',
                  resourceType: 'DBSYSTEM',
                  resourceId: d.id,
                },
              ],
              lifecycleState: d.lifecycleState ?? 'ACTIVE',
              mysqlVersion: d.mysqlVersion ?? '8.4.3',
              timeCreated: CREATED,
              timeUpdated: CREATED,
              databaseMode: 'READ_WRITE',
              accessMode: 'UNRESTRICTED',
            }));
          return ociPage(req, items, max, ['compartmentId', 'lifecycleState']);
        },
      },
      {
        name: 'listReplicas',
        method: 'GET',
        pattern: '/replicas',
        handle: (req, ctx) => {
          const refusal = refused(req, ctx);
          if (refusal) return refusal;
          const items = fleet.dbSystems
            .filter((d) => d.compartmentId === req.query.compartmentId)
            .filter((d) => !req.query.dbSystemId || d.id === req.query.dbSystemId)
            .flatMap((d) =>
              (d.replicas ?? []).map((r) => ({
                id: r.id,
                dbSystemId: d.id,
                compartmentId: d.compartmentId,
                displayName: r.displayName,
                lifecycleState: r.lifecycleState ?? 'ACTIVE',
                timeCreated: CREATED,
                mysqlVersion: d.mysqlVersion ?? '8.4.3',
                ipAddress: r.ipAddress,
                port: r.port,
                portX: 33060,
              })),
            );
          return ociPage(req, items, max, ['compartmentId', 'dbSystemId']);
        },
      },
    ],
  };
  return { handler };
}
