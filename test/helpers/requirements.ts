// What some tests need beyond the repository: a MySQL-protocol server, the shared sample corpus
// and the OCSF schemas beside the repository, a headless Chromium. A test whose requirement is missing is reported as
// skipped, with the reason in its suite's name, and the run ends with a line saying how to run it
// (test/setup/skip-reporter.ts). Under CI=true a missing requirement fails the run instead.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT_URL = new URL('../../', import.meta.url);

/** The repository root, with a trailing separator. */
export const REPO_ROOT = fileURLToPath(ROOT_URL);

/** `../shared/<relative>` beside the repository. */
export function besideRepo(relative: string): string {
  return fileURLToPath(new URL(`../shared/${relative}`, ROOT_URL));
}

export type Requirement = {
  /** What the tests need, as the suite names and the summary line say it. */
  what: string;
  /** Why it is missing here, or undefined when it is present. */
  missing(): string | undefined;
  /** How to provide it and run the tests. */
  howTo: string;
};

export const MYSQL_SERVER: Requirement = {
  what: 'a MySQL server',
  missing: () => (process.env.TEST_MYSQL_URL?.trim() ? undefined : 'TEST_MYSQL_URL is unset'),
  howTo: 'source .ci/start-mariadb.sh && hwaudit_mariadb_start && npm test; hwaudit_mariadb_stop',
};

export const SHARED_FIXTURES: Requirement = {
  what: 'the shared sample corpus',
  missing: () => (existsSync(besideRepo('fixtures')) ? undefined : `${besideRepo('fixtures')} is absent`),
  howTo: 'place the shared sample corpus in ../shared/fixtures beside the repository',
};

export const OCSF_SCHEMAS: Requirement = {
  what: 'the OCSF 1.8.0 schemas',
  missing: () =>
    existsSync(besideRepo('ocsf/1.8.0/index.json')) ? undefined : `${besideRepo('ocsf/1.8.0')} is absent`,
  howTo: 'place the OCSF 1.8.0 JSON Schemas in ../shared/ocsf/1.8.0 beside the repository',
};

/** Debian's `chromium` (or HWAUDIT_CHROMIUM), which the HTML report tests drive with playwright-core. */
export const CHROMIUM: Requirement & { path: string } = {
  what: 'a headless Chromium',
  path: process.env.HWAUDIT_CHROMIUM ?? '/usr/bin/chromium',
  missing() {
    return existsSync(this.path) ? undefined : `${this.path} is absent (set HWAUDIT_CHROMIUM)`;
  },
  howTo:
    "install Debian's chromium (apt-get install chromium), or set HWAUDIT_CHROMIUM to a Chromium, and run npm test",
};

export const REQUIREMENTS: readonly Requirement[] = [MYSQL_SERVER, SHARED_FIXTURES, OCSF_SCHEMAS, CHROMIUM];

/** The tag a skipped suite's name carries; the summary counts skipped tests by it. */
export function skipTag(req: Requirement): string {
  return `[skipped: needs ${req.what}]`;
}
