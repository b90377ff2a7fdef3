// IAM policies as a timeline per policy OCID, by event time, so that a change that restores an
// earlier set of statements (or deletes a policy just created) is known as a revert.
import type { IamEvent } from '../../schemas/events.js';
import type { Reverts } from '../detect/rule.js';
import type { EntityCache } from '../state/entity-cache.js';
import { ABSENT, undone, type Version } from './reverts.js';

type PolicyVersion = { ts: number; key: string; kind: string; state: string };

const POLICY = 'policy';
/** Versions kept per policy: reverts are looked for among the latest changes only. */
const MAX_VERSIONS = 50;

export class Policies {
  constructor(private readonly cache: EntityCache) {}

  /** Records a policy event; returns the earlier changes it undoes (none for a policy without id, or a refused request). */
  apply(ev: IamEvent): Reverts {
    const id = ev.policy?.id;
    // A refused request (OCI reports 4xx / 5xx) changed nothing.
    const failed = ev.status !== undefined && !/^2\d\d$/.test(ev.status);
    if (id === undefined || failed) return { undone: [], complete: false };
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
    // Before a creation the policy did not exist; before any other first sight, its state is unknown.
    const changes = undone(
      list,
      kept.findIndex((v) => v.key === ev.key),
      kept[0]?.kind === 'policy_created' ? ABSENT : undefined,
    );
    return { undone: changes, complete: changes.length > 0 };
  }
}
