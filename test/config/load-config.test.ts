// A configuration file read as a command reads it: its paths are relative to its own folder.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfigFile, parseConfigText } from '../../shared/config/load-config.js';
import { baseConfig } from '../../shared/detect/timeline.js';
import { runCli } from '../helpers/cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadConfigFile', () => {
  it('reads the paths it holds from the folder of the file, not of the command', async () => {
    const base = baseConfig();
    const text = stringify({
      ...base,
      collector: { user: 'hwaudit', password: { env: 'PW' }, tls: 'verify-identity', ca: 'certs/ca.pem' },
      dbSystems: [
        { ...base.dbSystems![0]!, collector: { tls: 'verify-identity', ca: '/etc/hw/other-ca.pem' } },
      ],
      routes: [
        { name: 'high', output: { file: 'alerts/high.jsonl' } },
        { name: 'all', output: { file: '/var/log/hw/all.jsonl' } },
      ],
    });
    const file = join(dir, 'audit.yaml');
    writeFileSync(file, text);
    const { config } = await loadConfigFile(file);
    expect(config.collector?.ca).toBe(join(dir, 'certs', 'ca.pem'));
    expect(config.dbSystems[0]!.collector?.ca).toBe('/etc/hw/other-ca.pem');
    expect(config.routes.map((r) => r.output.file)).toEqual([
      join(dir, 'alerts', 'high.jsonl'),
      '/var/log/hw/all.jsonl',
    ]);
    // Text with no file (the function's HWAUDIT_CONFIG) keeps them as written.
    expect(parseConfigText(text).config.collector?.ca).toBe('certs/ca.pem');
  });
});

describe('validateConfig', () => {
  /** The paths of the problems a configuration text has (it must have some). */
  const problems = (text: string): string[] => {
    try {
      parseConfigText(text);
    } catch (error) {
      return (error as { problems?: string[] }).problems ?? [];
    }
    throw new Error('the configuration was accepted');
  };

  // A mistyped key is named by its own path, in a rule's parameters as anywhere else; a duration or
  // a time written as a number says what it must look like.
  it.each([
    ['directory: { snapshotTim: 2026-11-01 }', 'directory.snapshotTim: unknown key'],
    ['rules: { auth.failure-burst: { thresold: 3 } }', 'rules["auth.failure-burst"].thresold: unknown key'],
    [
      'rules: { mapping.change: { expected: [{ from: 2026-11-05, to: 2026-11-06, reason: r, dbSystem: [x] }] } }',
      'rules["mapping.change"].expected[0].dbSystem: unknown key',
    ],
    ['lateness: 20', 'lateness: expected an ISO 8601 duration such as PT20M or P1D'],
    [
      'rules: { auth.failure-burst: { window: 10 } }',
      'rules["auth.failure-burst"].window: expected an ISO 8601 duration such as PT20M or P1D',
    ],
    [
      'maintenance: [{ from: 2026, to: 2026-11-02, reason: patching, rules: [audit.gap] }]',
      'maintenance[0].from: expected an ISO 8601 time such as 2026-11-01T00:00:00Z (UTC where it has no offset)',
    ],
    // A key left out says so, not what its value should look like.
    [
      'rules: { mapping.change: { expected: [{ from: 2026-11-05, reason: r }] } }',
      'rules["mapping.change"].expected[0].to: missing',
    ],
    [
      'rules: { iam.auth-policy-change: { expected: [{ to: 2026-11-06, reason: r }] } }',
      'rules["iam.auth-policy-change"].expected[0].from: missing',
    ],
    [
      'maintenance: [{ to: 2026-11-02, reason: patching, rules: [audit.gap] }]',
      'maintenance[0].from: missing',
    ],
    ['directory: { users: [{ id: u1 }] }', 'directory.users[0].name: missing'],
    [
      'directory: { groups: [{ id: g1, breakGlass: {} }] }',
      'directory.groups[0].breakGlass.maxDuration: missing',
    ],
    // A secret is a reference, never the secret itself; a mistyped reference says what one is.
    ...[
      ['collector: { password: hunter2 }', 'collector'],
      ['collector: { password: 12345 }', 'collector'],
      ['collector: { password: [hunter2] }', 'collector'],
      ['dbSystems: [{ id: x, collector: { password: hunter2 } }]', 'dbSystems[0].collector'],
    ].map(([text, at]) => [
      text,
      `${at}.password: a secret is never written in the configuration: give { env: NAME } or { secret: <Vault secret OCID> }`,
    ]),
    ...['{ envv: X }', '{ hunter2 }', '{ env: PW, secret: ocid1.vaultsecret.oc1..a }', '{}'].map((ref) => [
      `collector: { password: ${ref} }`,
      'collector.password: expected one of { env: NAME } or { secret: <Vault secret OCID> }',
    ]),
    ...['{ digest: 15 }', '{ digest: PT15X }', 'hourly'].map((delivery) => [
      `routes: [{ name: r, output: { notifications: ocid1.onstopic.oc1..aaaa }, delivery: ${delivery} }]`,
      'routes[0].delivery: expected immediate, or { digest: an ISO 8601 duration such as PT15M or P1D }',
    ]),
  ])('%s: %s', (text, problem) => {
    expect(problems(`${text}\n`)).toEqual([problem]);
  });
});

describe('a password written in the configuration', () => {
  // What a user might paste where the reference goes: it must not come back in any message.
  const PASSWORD = 'Tr0ub4dor&3-hunter2';
  const text = stringify({
    ...baseConfig(),
    collector: { user: 'hwaudit', password: PASSWORD },
    dbSystems: [{ ...baseConfig().dbSystems![0]!, collector: { password: { envv: PASSWORD } } }],
  });
  const PROBLEMS = [
    'dbSystems[0].collector.password: expected one of { env: NAME } or { secret: <Vault secret OCID> }',
    'collector.password: a secret is never written in the configuration: give { env: NAME } or { secret: <Vault secret OCID> }',
  ];
  /** Everything an error carries: message, stack, details, problems, cause. */
  const everything = (error: unknown) =>
    `${inspect(error, { depth: null, showHidden: true })}${JSON.stringify(error)}`;

  it('is refused without being quoted: the error of the file (CLI) and of HWAUDIT_CONFIG (function)', async () => {
    const file = join(dir, 'written-password.yaml');
    writeFileSync(file, text);
    const errors = await Promise.all([
      loadConfigFile(file).then(
        () => undefined,
        (e: unknown) => e,
      ),
      (async () => parseConfigText(text, 'HWAUDIT_CONFIG'))().then(
        () => undefined,
        (e: unknown) => e,
      ),
    ]);
    for (const error of errors) {
      expect(error).toMatchObject({ code: 'CONFIG_INVALID', problems: PROBLEMS });
      expect(everything(error)).not.toContain(PASSWORD);
    }
  });

  it('is refused with exit 2 without being quoted on stderr: collect --config, and invoke with HWAUDIT_CONFIG', async () => {
    const file = join(dir, 'written-password-cli.yaml');
    writeFileSync(file, text);
    const env = { PATH: process.env.PATH, HWAUDIT_STATE: join(dir, 'invoke-state.sqlite') };
    const runs = await Promise.all([
      runCli(['collect', '--config', file], env),
      runCli(['invoke', '--body', file], { ...env, HWAUDIT_CONFIG: text }),
    ]);
    for (const r of runs) {
      expect(r.code).toBe(2);
      for (const problem of PROBLEMS) expect(r.stderr).toContain(`  ${problem}\n`);
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    }
  });
});
