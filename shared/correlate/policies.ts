// IAM policies as a timeline per policy OCID, by event time, so that a change that restores an
// earlier set of statements (or deletes a policy just created) is known as a revert.
import type { IamEvent } from '../../schemas/events.js';
import type { Reverts } from '../detect/rule.js';
import { grantsDbAuthentication } from '../normalize/auth-policy.js';
import type { EntityCache } from '../state/entity-cache.js';
import { ABSENT, undone, type Version } from './reverts.js';

type PolicyVersion = { ts: number; key: string; kind: string; state: string };

const POLICY = 'policy';
/** Versions kept per policy: reverts are looked for among the latest changes only. */
const MAX_VERSIONS = 50;

export class Policies {
  constructor(private readonly cache: EntityCache) {}

  /**
   * Records a policy event; returns the earlier changes it undoes (none for a policy without id, or
   * a refused request), and whether the version recorded before it granted database
   * authentication (an update or a deletion that names no statements can take that grant away).
   */
  apply(ev: IamEvent): { reverts: Reverts; grantedBefore: boolean } {
    const id = ev.policy?.id;
    // A refused request (OCI reports 4xx / 5xx) changed nothing.
    const failed = ev.status !== undefined && !/^2\d\d$/.test(ev.status);
    if (id === undefined || failed) return { reverts: { undone: [], complete: false }, grantedBefore: false };
    const versions = this.cache.get<PolicyVersion[]>(POLICY, id) ?? [];
    if (!versions.some((v) => v.key === ev.key)) {
      versions.push({
        ts: ev.ts,
        key: ev.key,
        // Statement order carries no meaning in a policy.
        state:
          ev.kind === 'policy_deleted' ? ABSENT : JSON.stringify([...(ev.policy?.statements ?? [])].sort()),
        kind: ev.kind,
      });
      versions.sort((a, b) => a.ts - b.ts || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      this.cache.set(POLICY, id, versions.slice(-MAX_VERSIONS));
    }
    const kept = this.cache.get<PolicyVersion[]>(POLICY, id)!;
    const list: Version[] = kept.map((v) => ({ ...v, change: true }));
    const at = kept.findIndex((v) => v.key === ev.key);
    // Before a creation the policy did not exist; before any other first sight, its state is unknown.
    const changes = undone(list, at, kept[0]?.kind === 'policy_created' ? ABSENT : undefined);
    const before = kept[at - 1]?.state;
    const grantedBefore =
      before !== undefined &&
      before !== ABSENT &&
      (JSON.parse(before) as string[]).some(grantsDbAuthentication);
    return { reverts: { undone: changes, complete: changes.length > 0 }, grantedBefore };
  }
}
