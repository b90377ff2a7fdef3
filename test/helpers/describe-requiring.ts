// Declares tests that need something beyond the repository (see requirements.ts): run when it is
// present; skipped (visible in vitest's summary, reason in the suite name) when it is absent; a
// failing test under CI=true, where every requirement must be met.
import { describe, it } from 'vitest';
import { type Requirement, skipTag } from './requirements.js';

export function describeRequiring(req: Requirement, name: string, body: () => void): void {
  const reason = req.missing();
  if (reason === undefined) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it(`needs ${req.what}`, () => {
        throw new Error(`CI=true but ${reason}: these tests need ${req.what} (${req.howTo})`);
      });
    });
  } else {
    describe.skip(`${name} ${skipTag(req)} ${reason}`, body);
  }
}
