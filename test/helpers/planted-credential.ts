// A session whose person had a credential another principal created on their IAM user in force at
// the login (Attribution.plantedCredentials), for the formats' tests.
import type { Session } from '../../schemas/session.js';
import { at } from '../../shared/detect/timeline.js';
import { toIso } from '../../shared/time.js';

/** An API key iam-admin created on the person. */
export const PLANTED_KEY = {
  type: 'api-key',
  id: 'aa:bb:cc',
  actor: { id: 'ocid1.user.oc1..admin', name: 'iam-admin' },
  time: toIso(at(3)),
  key: 'iam-credential_change-1',
};

/** The session with PLANTED_KEY in force at its login (its attribution then `asserted`). */
export function withPlantedKey(s: Session): Session {
  return {
    ...s,
    attribution: { ...s.attribution!, confidence: 'asserted', plantedCredentials: [PLANTED_KEY] },
  };
}
