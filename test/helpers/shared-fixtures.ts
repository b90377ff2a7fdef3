// Tests over the captured samples in ../shared/fixtures (beside the repository): skipped when the
// corpus is absent (failed under CI=true), see requirements.ts.
import { describeRequiring } from './describe-requiring.js';
import { besideRepo, SHARED_FIXTURES } from './requirements.js';

/** Declares the tests in `body` for `../shared/fixtures/<relative>`. */
export function describeSharedFixture(relative: string, body: (path: string) => void): void {
  describeRequiring(SHARED_FIXTURES, `shared fixture ${relative}`, () =>
    body(besideRepo(`fixtures/${relative}`)),
  );
}
