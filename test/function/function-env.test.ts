import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DEADLINE_MARGIN_MS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_STATE_PATH,
  FUNCTION_ENV_VARS,
  readFunctionEnv,
} from '../../functions/function-env.js';
import { AuditError } from '../../shared/errors.js';

const CONFIG = { HWAUDIT_CONFIG: 'tenancy: ocid1.tenancy.oc1..example' };

function failure(env: Record<string, string>): AuditError {
  try {
    readFunctionEnv(env);
  } catch (error) {
    expect(error).toBeInstanceOf(AuditError);
    expect((error as AuditError).code).toBe('CONFIG_INVALID');
    return error as AuditError;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('readFunctionEnv', () => {
  it('applies the defaults', () => {
    expect(readFunctionEnv({ ...CONFIG, PATH: '/usr/bin', FN_FORMAT: 'http-stream' })).toEqual({
      config: { kind: 'inline', text: CONFIG.HWAUDIT_CONFIG },
      statePath: DEFAULT_STATE_PATH,
      alertsFile: undefined,
      dbSystem: undefined,
      maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
      deadlineMarginMs: DEFAULT_DEADLINE_MARGIN_MS,
    });
  });

  it('reads every variable', () => {
    const env = readFunctionEnv({
      HWAUDIT_CONFIG_FILE: ' /function/config/audit.yaml ',
      HWAUDIT_STATE: '/tmp/state.sqlite',
      HWAUDIT_ALERTS_FILE: '/tmp/alerts.jsonl',
      HWAUDIT_DB_SYSTEM: 'prod-orders',
      HWAUDIT_MAX_BODY_BYTES: '1048576',
      HWAUDIT_DEADLINE_MARGIN_MS: '0',
    });
    expect(env).toEqual({
      config: { kind: 'file', path: '/function/config/audit.yaml' },
      statePath: '/tmp/state.sqlite',
      alertsFile: '/tmp/alerts.jsonl',
      dbSystem: 'prod-orders',
      maxBodyBytes: 1048576,
      deadlineMarginMs: 0,
    });
  });

  it('needs exactly one configuration source; blank counts as unset', () => {
    expect(failure({}).message).toMatch(/^HWAUDIT_CONFIG: no pipeline configuration/);
    expect(failure({ HWAUDIT_CONFIG: '  ' }).message).toMatch(/^HWAUDIT_CONFIG: no pipeline configuration/);
    expect(failure({ ...CONFIG, HWAUDIT_CONFIG_FILE: '/x.yaml' }).message).toMatch(/not both/);
  });

  it.each([
    ['HWAUDIT_MAX_BODY_BYTES', '6MB'],
    ['HWAUDIT_MAX_BODY_BYTES', '0'],
    ['HWAUDIT_MAX_BODY_BYTES', '-1'],
    ['HWAUDIT_DEADLINE_MARGIN_MS', '1.5'],
    ['HWAUDIT_DEADLINE_MARGIN_MS', '99999999999999999999'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    const error = failure({ ...CONFIG, [name]: value });
    expect(error.message.startsWith(`${name}: expected an integer`)).toBe(true);
    expect(error.details).toEqual({ variable: name });
  });

  it('rejects mysql:// and other URLs for HWAUDIT_STATE without echoing them', () => {
    const mysql = failure({ ...CONFIG, HWAUDIT_STATE: 'mysql://audit:pw-123@heatwave.example:3306/audit' });
    expect(mysql.message).toBe(
      'HWAUDIT_STATE: a MySQL state store (mysql:// URL) is not supported yet; use a SQLite file path',
    );
    const other = failure({ ...CONFIG, HWAUDIT_STATE: 'postgres://u:pw-123@h/db' });
    expect(other.message).toMatch(/unsupported URL scheme "postgres"/);
    for (const e of [mysql, other])
      expect(`${e.message}${JSON.stringify(e.details)}`).not.toContain('pw-123');
  });

  it('rejects an unknown HWAUDIT_ variable (a typo must not fall back to a default silently)', () => {
    expect(failure({ ...CONFIG, HWAUDIT_STATE_PATH: '/tmp/x' }).message).toMatch(
      /^HWAUDIT_STATE_PATH: unknown variable/,
    );
  });
});

describe('docs/function-config.md', () => {
  it('documents every variable with its default, in the order of FUNCTION_ENV_VARS', () => {
    const doc = readFileSync(new URL('../../docs/function-config.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `(HWAUDIT_[A-Z_]+)` *\| ([^|]+) \|/gm)].map((m) => [
      m[1],
      m[2]!.trim().replaceAll('`', ''),
    ]);
    expect(rows).toEqual(FUNCTION_ENV_VARS.map((v) => [v.name, v.default]));
  });
});
