// iam.auth-policy-change when a policy's database authentication grant is taken away by a record
// that names only the statements after the change: the policy's earlier version tells.
import { describe, expect, it } from 'vitest';
import { at, iam } from '../../shared/detect/timeline.js';
import { runBatches } from '../helpers/run-timeline.js';

const AUTH =
  "Allow any-user to {AUTHENTICATION_INSPECT} in tenancy where request.principal.type = 'mysqldbsystem'";

describe('iam.auth-policy-change', () => {
  it('says a grant was taken away, by an update or by a deletion whose record names no statements', async () => {
    const { alerts } = await runBatches([
      [
        // First seen at an update: what it was before is not known.
        iam.policy({ at: at(1), kind: 'policy_updated', statements: [AUTH], name: 'db-auth' }),
        iam.policy({
          at: at(2),
          kind: 'policy_updated',
          statements: ['Allow group A to read buckets in tenancy'],
          name: 'db-auth',
        }),
        // Back to its first statements: resolves the change before, raises nothing.
        iam.policy({ at: at(3), kind: 'policy_updated', statements: [AUTH], name: 'db-auth' }),
        iam.policy({ at: at(4), kind: 'policy_deleted', statements: [], name: 'db-auth' }),
      ],
    ]);
    const titles = alerts
      .filter((a) => a.rule === 'iam.auth-policy-change' && a.status === 'open')
      .map((a) => a.title);
    expect(titles).toEqual([
      'Policy db-auth granting database authentication updated',
      'Policy db-auth no longer grants database authentication (updated)',
      'Policy db-auth no longer grants database authentication (deleted)',
    ]);
  });
});
