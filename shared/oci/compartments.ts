// The compartment tree below a compartment (oci-identity ListCompartments). APIs such as the Audit
// API's ListEvents and MySQL's ListDbSystems read one compartment, with no sub-compartment option,
// while identity domains and DB systems often live in sub-compartments. ListCompartments looks
// into the whole sub-tree only from the tenancy (`compartmentIdInSubtree`, one paged call); below
// it the tree is walked level by level. Only ACTIVE compartments the caller can inspect are kept.
import type { IdentityClient, requests } from 'oci-identity';

export type CompartmentLister = Pick<IdentityClient, 'listCompartments'>;

/** Runs one API call (with the caller's retries and counters). */
export type OciCall = <T>(operation: string, fn: () => Promise<T>) => Promise<T>;

const PAGE = 1000;

/** `root` and every compartment below it, root first, then in the order listed. */
export async function compartmentTree(
  root: string,
  client: CompartmentLister,
  call: OciCall = (_operation, fn) => fn(),
): Promise<string[]> {
  const list = async (compartmentId: string, subtree: boolean): Promise<string[]> => {
    const ids: string[] = [];
    let page: string | undefined;
    do {
      const res = await call('identity.listCompartments', () =>
        client.listCompartments({
          compartmentId,
          limit: PAGE,
          // The SDK puts query values into the URL as they are: page tokens are encoded here.
          ...(page !== undefined ? { page: encodeURIComponent(page) } : {}),
          ...(subtree
            ? {
                compartmentIdInSubtree: true,
                accessLevel: 'ACCESSIBLE' as requests.ListCompartmentsRequest.AccessLevel,
              }
            : {}),
        }),
      );
      for (const c of res.items ?? []) if (c.lifecycleState === 'ACTIVE') ids.push(c.id);
      page = res.opcNextPage || undefined;
    } while (page);
    return ids;
  };
  if (root.startsWith('ocid1.tenancy.')) return [root, ...(await list(root, true))];
  const out = [root];
  for (let level = [root]; level.length > 0; ) {
    const next: string[] = [];
    for (const c of level) next.push(...(await list(c, false)));
    out.push(...next);
    level = next;
  }
  return out;
}
