// A real headless Chromium for the HTML report tests: Debian's `chromium` (.ci/run installs it when
// missing), driven by playwright-core with its executable path and a fresh profile per launch. On a
// machine without it the tests are skipped with the reason (requirements.ts); under CI=true they fail.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { describeRequiring } from './describe-requiring.js';
import { CHROMIUM } from './requirements.js';

/** The flags of a quiet, offline, sandbox-free headless browser. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export type Browser = { context: BrowserContext; close(): Promise<void> };

/** Starts Chromium with a fresh user-data-dir (removed on close). */
export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'hwaudit-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM.path,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export function describeChromium(name: string, body: () => void): void {
  describeRequiring(CHROMIUM, name, body);
}

/** Where tests leave files for people to look at (screenshots): HWAUDIT_TEST_ARTIFACTS or .artifacts/. */
export function artifactsDir(): string {
  return process.env.HWAUDIT_TEST_ARTIFACTS ?? join(process.cwd(), '.artifacts');
}
