import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONFIG_FILE,
  DEFAULT_DEADLINE_MARGIN_MS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_STATE_PATH,
  FUNCTION_ENV_VARS,
  readFunctionEnv,
} from '../../functions/function-env.js';
import { OUTPUT_FORMATS } from '../../shared/emit/formats/format.js';
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
      state: { kind: 'sqlite', spec: DEFAULT_STATE_PATH },
      scope: 'function',
      alertsFile: undefined,
      alertFormat: 'jsonl',
      alertStreamId: undefined,
      alertBucket: undefined,
      notificationsTopicId: undefined,
      notificationsPerMinute: 60,
      report: { bucket: undefined, prefix: 'reports/', topicId: undefined },
      ociAuth: { kind: 'config-file' },
      dbSystem: undefined,
      maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
      deadlineMarginMs: DEFAULT_DEADLINE_MARGIN_MS,
    });
  });

  it('picks the resource principal inside OCI Functions', () => {
    const env = readFunctionEnv({ ...CONFIG, OCI_RESOURCE_PRINCIPAL_VERSION: '2.2' });
    expect(env.ociAuth).toEqual({ kind: 'resource-principal' });
  });

  it('reads every variable', () => {
    const env = readFunctionEnv({
      HWAUDIT_CONFIG_FILE: ' /function/config/audit.yaml ',
      HWAUDIT_STATE: ' mysql://hwaudit@heatwave.example:3306/hwaudit?ssl-mode=required ',
      HWAUDIT_STATE_PASSWORD: 'pw-123',
      HWAUDIT_SCOPE: 'prod:eu-frankfurt-1/fn',
      HWAUDIT_ALERTS_FILE: '/tmp/alerts.jsonl',
      HWAUDIT_ALERT_FORMAT: ' OCSF ',
      HWAUDIT_ALERT_STREAM_ID: 'ocid1.stream.oc1.eu-frankfurt-1.amaaaaaaalerts',
      HWAUDIT_ALERT_BUCKET: ' siem-alerts ',
      HWAUDIT_ALERT_BUCKET_FORMATS: 'ecs, OCSF,ecs',
      HWAUDIT_ALERT_BUCKET_PREFIX: 'hwaudit/prod/',
      HWAUDIT_OCI_ENDPOINT_OBJECTSTORAGE: 'https://objectstorage.eu-frankfurt-1.oraclecloud.com',
      HWAUDIT_NOTIFICATIONS_TOPIC_ID: 'ocid1.onstopic.oc1.eu-frankfurt-1.aaaaaaaatopic',
      HWAUDIT_NOTIFICATIONS_PER_MINUTE: '10',
      HWAUDIT_OCI_AUTH: 'resource-principal',
      HWAUDIT_OCI_REGION: 'eu-frankfurt-1',
      HWAUDIT_OCI_ENDPOINT_STREAMING: 'https://cell-1.streaming.eu-frankfurt-1.oci.oraclecloud.com',
      HWAUDIT_OCI_ENDPOINT_NOTIFICATIONS: 'https://notification.eu-frankfurt-1.oraclecloud.com',
      HWAUDIT_REPORT_BUCKET: 'audit-reports',
      HWAUDIT_REPORT_PREFIX: 'weekly/',
      HWAUDIT_DB_SYSTEM: 'prod-orders',
      HWAUDIT_MAX_BODY_BYTES: '1048576',
      HWAUDIT_DEADLINE_MARGIN_MS: '0',
    });
    expect(env).toEqual({
      config: { kind: 'file', path: '/function/config/audit.yaml' },
      state: { kind: 'mysql', spec: 'mysql://hwaudit@heatwave.example:3306/hwaudit?ssl-mode=required' },
      scope: 'prod:eu-frankfurt-1/fn',
      alertsFile: '/tmp/alerts.jsonl',
      alertFormat: 'ocsf',
      alertStreamId: 'ocid1.stream.oc1.eu-frankfurt-1.amaaaaaaalerts',
      alertBucket: { name: 'siem-alerts', formats: ['ecs', 'ocsf'], prefix: 'hwaudit/prod/' },
      notificationsTopicId: 'ocid1.onstopic.oc1.eu-frankfurt-1.aaaaaaaatopic',
      notificationsPerMinute: 10,
      // The report message goes to the alert topic unless HWAUDIT_REPORT_TOPIC_ID names another.
      report: {
        bucket: 'audit-reports',
        prefix: 'weekly/',
        topicId: 'ocid1.onstopic.oc1.eu-frankfurt-1.aaaaaaaatopic',
      },
      ociAuth: { kind: 'resource-principal' },
      dbSystem: 'prod-orders',
      maxBodyBytes: 1048576,
      deadlineMarginMs: 0,
    });
    // The password is used by openStore; it is not part of the settings (which may be logged).
    expect(JSON.stringify(env)).not.toContain('pw-123');
  });

  it('reads the report settings: a topic of their own, a bucket name and a prefix that are ones', () => {
    const topic = 'ocid1.onstopic.oc1.eu-frankfurt-1.aaaaaaaareports';
    expect(readFunctionEnv({ ...CONFIG, HWAUDIT_REPORT_TOPIC_ID: topic }).report.topicId).toBe(topic);
    expect(failure({ ...CONFIG, HWAUDIT_REPORT_TOPIC_ID: 'topic' }).message).toMatch(
      /^HWAUDIT_REPORT_TOPIC_ID:/,
    );
    expect(failure({ ...CONFIG, HWAUDIT_REPORT_BUCKET: 'a/b' }).message).toMatch(/^HWAUDIT_REPORT_BUCKET:/);
    expect(failure({ ...CONFIG, HWAUDIT_REPORT_PREFIX: '/reports/' }).message).toMatch(
      /^HWAUDIT_REPORT_PREFIX:/,
    );
  });

  it.each(OUTPUT_FORMATS)('accepts HWAUDIT_ALERT_FORMAT=%s', (format) => {
    expect(readFunctionEnv({ ...CONFIG, HWAUDIT_ALERT_FORMAT: format }).alertFormat).toBe(format);
  });

  it('reads the configuration file beside func.yaml unless told otherwise; blank counts as unset', () => {
    const file = { kind: 'file', path: DEFAULT_CONFIG_FILE };
    expect(DEFAULT_CONFIG_FILE).toBe('/function/config/audit.yaml');
    expect(readFunctionEnv({}).config).toEqual(file);
    expect(readFunctionEnv({ HWAUDIT_CONFIG: '  ', HWAUDIT_CONFIG_FILE: '' }).config).toEqual(file);
    expect(failure({ ...CONFIG, HWAUDIT_CONFIG_FILE: '/x.yaml' }).message).toMatch(/not both/);
  });

  it.each([
    ['HWAUDIT_MAX_BODY_BYTES', '6MB'],
    ['HWAUDIT_MAX_BODY_BYTES', '0'],
    ['HWAUDIT_MAX_BODY_BYTES', '-1'],
    ['HWAUDIT_DEADLINE_MARGIN_MS', '1.5'],
    ['HWAUDIT_DEADLINE_MARGIN_MS', '99999999999999999999'],
    ['HWAUDIT_NOTIFICATIONS_PER_MINUTE', '1'],
    ['HWAUDIT_NOTIFICATIONS_PER_MINUTE', 'sixty'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    const error = failure({ ...CONFIG, [name]: value });
    expect(error.message.startsWith(`${name}: expected an integer`)).toBe(true);
    expect(error.details).toEqual({ variable: name });
  });

  it('validates a mysql:// HWAUDIT_STATE up front, naming the variable and never echoing the URL', () => {
    const bad: [string, RegExp][] = [
      ['mysql://heatwave.example:3306/audit?pw-123', /^HWAUDIT_STATE: the mysql:\/\/ URL names no user/],
      [
        'mysql://audit:pw-123@heatwave.example:3306/',
        /^HWAUDIT_STATE: the mysql:\/\/ URL must name exactly one database/,
      ],
      ['mysql://audit:pw-123@heatwave.example/audit?sslmode=pw-123', /^HWAUDIT_STATE: unknown URL parameter/],
      [
        'mysqlx://audit:pw-123@heatwave.example:33060/audit',
        /^HWAUDIT_STATE: the X Protocol \(mysqlx:\/\/\) is not supported/,
      ],
      ['postgres://u:pw-123@h/db', /^HWAUDIT_STATE: unsupported URL scheme "postgres"/],
    ];
    for (const [spec, message] of bad) {
      const e = failure({ ...CONFIG, HWAUDIT_STATE: spec });
      expect(e.message).toMatch(message);
      expect(e.details).toEqual({ variable: 'HWAUDIT_STATE' });
      expect(`${e.message}${JSON.stringify(e.details)}`).not.toContain('pw-123');
    }
    // A password in the URL is accepted (openStore warns about it); the setting keeps the spec.
    expect(readFunctionEnv({ ...CONFIG, HWAUDIT_STATE: 'mysql://a:b@h/db' }).state.kind).toBe('mysql');
  });

  it('checks the scope, the format and the OCIDs, naming the variable', () => {
    for (const scope of ['-x', 'a b', 'x'.repeat(129), 'é']) {
      expect(failure({ ...CONFIG, HWAUDIT_SCOPE: scope }).details).toEqual({ variable: 'HWAUDIT_SCOPE' });
    }
    expect(failure({ ...CONFIG, HWAUDIT_ALERT_FORMAT: 'json' }).message).toBe(
      'HWAUDIT_ALERT_FORMAT: expected one of jsonl, ocsf, cef, ecs',
    );
    const streamEndpoint = { HWAUDIT_OCI_ENDPOINT_STREAMING: 'https://cell-1.streaming.example' };
    expect(
      failure({ ...CONFIG, ...streamEndpoint, HWAUDIT_ALERT_STREAM_ID: 'ocid1.onstopic.oc1..x' }).message,
    ).toMatch(/^HWAUDIT_ALERT_STREAM_ID: expected an OCID of the form ocid1\.stream\./);
    expect(failure({ ...CONFIG, HWAUDIT_NOTIFICATIONS_TOPIC_ID: 'my-topic' }).message).toMatch(
      /^HWAUDIT_NOTIFICATIONS_TOPIC_ID: expected an OCID of the form ocid1\.onstopic\./,
    );
  });

  it('writes the bucket in the alert format unless formats are listed; checks names, formats and prefix', () => {
    expect(
      readFunctionEnv({ ...CONFIG, HWAUDIT_ALERT_BUCKET: 'b', HWAUDIT_ALERT_FORMAT: 'cef' }).alertBucket,
    ).toEqual({ name: 'b', formats: ['cef'], prefix: 'alerts/' });
    expect(failure({ ...CONFIG, HWAUDIT_ALERT_BUCKET: 'my bucket' }).details).toEqual({
      variable: 'HWAUDIT_ALERT_BUCKET',
    });
    expect(
      failure({ ...CONFIG, HWAUDIT_ALERT_BUCKET: 'b', HWAUDIT_ALERT_BUCKET_FORMATS: 'ocsf,xml' }).message,
    ).toBe('HWAUDIT_ALERT_BUCKET_FORMATS: expected one of jsonl, ocsf, cef, ecs');
    expect(
      failure({ ...CONFIG, HWAUDIT_ALERT_BUCKET: 'b', HWAUDIT_ALERT_BUCKET_PREFIX: '/abs/' }).details,
    ).toEqual({
      variable: 'HWAUDIT_ALERT_BUCKET_PREFIX',
    });
  });

  it('needs the messages endpoint for an alert stream; checks endpoint URLs', () => {
    const stream = { ...CONFIG, HWAUDIT_ALERT_STREAM_ID: 'ocid1.stream.oc1..alerts' };
    const missing = failure(stream);
    expect(missing.message).toMatch(/^HWAUDIT_OCI_ENDPOINT_STREAMING: required with HWAUDIT_ALERT_STREAM_ID/);
    expect(missing.details).toEqual({ variable: 'HWAUDIT_OCI_ENDPOINT_STREAMING' });
    // The shared endpoint (an emulator, a proxy) serves too.
    expect(readFunctionEnv({ ...stream, HWAUDIT_OCI_ENDPOINT: 'http://127.0.0.1:9' }).alertStreamId).toBe(
      'ocid1.stream.oc1..alerts',
    );
    expect(
      failure({ ...CONFIG, HWAUDIT_OCI_ENDPOINT_NOTIFICATIONS: 'https://u:pw-123@ons.example' }).message,
    ).toMatch(/^HWAUDIT_OCI_ENDPOINT_NOTIFICATIONS: credentials in the URL are not allowed/);
    expect(failure({ ...CONFIG, HWAUDIT_OCI_AUTH: 'api-key' }).details).toEqual({
      variable: 'HWAUDIT_OCI_AUTH',
    });
  });

  it('takes the endpoints of the services {"action":"sync"} calls: IAM and the MySQL service', () => {
    const endpoints = {
      HWAUDIT_OCI_ENDPOINT_IDENTITY: 'https://identity.private.example',
      HWAUDIT_OCI_ENDPOINT_MYSQL: 'https://mysql.private.example',
    };
    expect(readFunctionEnv({ ...CONFIG, ...endpoints }).config).toEqual({
      kind: 'inline',
      text: CONFIG.HWAUDIT_CONFIG,
    });
    expect(
      failure({ ...CONFIG, HWAUDIT_OCI_ENDPOINT_MYSQL: 'https://u:pw-123@mysql.example' }).message,
    ).toMatch(/^HWAUDIT_OCI_ENDPOINT_MYSQL: credentials in the URL are not allowed/);
  });

  it('checks every endpoint variable it knows at start, naming it', () => {
    const endpoints = FUNCTION_ENV_VARS.map((v) => v.name).filter((n) =>
      n.startsWith('HWAUDIT_OCI_ENDPOINT_'),
    );
    expect(endpoints).toContain('HWAUDIT_OCI_ENDPOINT_SECRETS');
    for (const name of endpoints) {
      const withCredentials = failure({ ...CONFIG, [name]: 'https://u:pw-123@service.example' });
      expect(withCredentials.message).toMatch(new RegExp(`^${name}: credentials in the URL are not allowed`));
      expect(withCredentials.message).not.toContain('pw-123');
      expect(failure({ ...CONFIG, [name]: 'ftp://service.example' }).details).toEqual({ variable: name });
    }
  });

  it('rejects an unknown HWAUDIT_ variable (a typo must not fall back to a default silently)', () => {
    expect(failure({ ...CONFIG, HWAUDIT_STATE_PATH: '/tmp/x' }).message).toMatch(
      /^HWAUDIT_STATE_PATH: unknown variable/,
    );
    // OCI variables of services the function does not call are unknown to it as well.
    expect(failure({ ...CONFIG, HWAUDIT_OCI_ENDPOINT_AUDIT: 'http://x' }).message).toMatch(
      /^HWAUDIT_OCI_ENDPOINT_AUDIT: unknown variable/,
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
