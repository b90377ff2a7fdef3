// The function's settings, read from environment variables only: OCI Functions hands function and
// application configuration to the container as env vars (and the FDK's ctx.getConfig() throws).
// Every variable is listed in FUNCTION_ENV_VARS, which docs/function-config.md mirrors (a test
// keeps the two in step). Error messages name the variable, never its value: HWAUDIT_STATE may
// hold a database URL (with a password, against advice) and HWAUDIT_STATE_PASSWORD is one.
import { isOutputFormat, OUTPUT_FORMATS, type OutputFormat } from '../shared/emit/formats/format.js';
import { ONS_MESSAGES_PER_MINUTE } from '../shared/emit/notifications-sink.js';
import { AuditError } from '../shared/errors.js';
import {
  OCI_AUTH_ENV_VARS,
  type OciAuthSpec,
  type OciEnvVar,
  ociAuthSpecFromEnv,
} from '../shared/oci/auth.js';
import { endpointVariable, OCI_CLIENT_ENV_VARS, ociEndpointOverride } from '../shared/oci/clients.js';
import { parseStoreSpec, STATE_PASSWORD_VAR } from '../shared/state/open-store.js';

/** config/audit.yaml beside func.yaml, in the image (fn copies the function folder to /function). */
export const DEFAULT_CONFIG_FILE = '/function/config/audit.yaml';
export const DEFAULT_STATE_PATH = '/tmp/heatwave-iam-audit.sqlite';
export const DEFAULT_SCOPE = 'function';
/** The OCI Functions invoke body limit. */
export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;
export const DEFAULT_DEADLINE_MARGIN_MS = 2000;
export const DEFAULT_ALERT_FORMAT: OutputFormat = 'jsonl';
export const DEFAULT_BUCKET_PREFIX = 'alerts/';
export const DEFAULT_REPORT_PREFIX = 'reports/';

export type FunctionEnvVar = { name: string; default: string; description: string };

/**
 * The services the function calls, whose endpoint variables it takes: each is checked at start.
 * {"action":"sync"} calls IAM (classic) and the MySQL service (DB systems and their read replicas).
 */
const ENDPOINT_SERVICES = [
  'streaming',
  'notifications',
  'objectstorage',
  'secrets',
  'identity',
  'mysql',
] as const;

/** The OCI variables the function reads (auth, region, the endpoints of the services it calls). */
const OCI_VARS = [
  'HWAUDIT_OCI_AUTH',
  'HWAUDIT_OCI_CONFIG_FILE',
  'HWAUDIT_OCI_PROFILE',
  'HWAUDIT_OCI_REGION',
  'HWAUDIT_OCI_ENDPOINT',
  ...ENDPOINT_SERVICES.map(endpointVariable),
];

function ociVar(name: string): FunctionEnvVar {
  const v = [...OCI_AUTH_ENV_VARS, ...OCI_CLIENT_ENV_VARS].find((x: OciEnvVar) => x.name === name);
  if (v === undefined) throw new Error(`no OCI variable ${name}`);
  return v;
}

/** One row per variable, in the order of the docs table. */
export const FUNCTION_ENV_VARS: readonly FunctionEnvVar[] = [
  {
    name: 'HWAUDIT_CONFIG',
    default: '(none)',
    description:
      'Pipeline configuration inline, YAML or JSON (schemas/config.ts). Set this or HWAUDIT_CONFIG_FILE, not both.',
  },
  {
    name: 'HWAUDIT_CONFIG_FILE',
    default: DEFAULT_CONFIG_FILE,
    description:
      'Path of the pipeline configuration file inside the image (config/audit.yaml beside func.yaml), read when HWAUDIT_CONFIG is unset. For configurations larger than the function config size limit.',
  },
  {
    name: 'HWAUDIT_STATE',
    default: DEFAULT_STATE_PATH,
    description:
      'State store: a SQLite file path (per container) or mysql://USER@HOST:PORT/DATABASE[?ssl-mode=...] (the shared MySQL/HeatWave store, reloaded at every invocation).',
  },
  {
    name: STATE_PASSWORD_VAR,
    default: '(none)',
    description: 'Password of the mysql:// state store user. Never echoed in errors or logs.',
  },
  {
    name: 'HWAUDIT_SCOPE',
    default: DEFAULT_SCOPE,
    description:
      'State store scope (seen keys, correlation state, pending events) of this function. On a shared store, invocations of one scope run one at a time under the scope lock (docs/function-config.md, "State store and scope").',
  },
  {
    name: 'HWAUDIT_ALERTS_FILE',
    default: '(none: stdout)',
    description:
      'File that alerts are appended to, one per line in HWAUDIT_ALERT_FORMAT. Unset: alerts go to stdout, that is to the function log.',
  },
  {
    name: 'HWAUDIT_ALERT_FORMAT',
    default: DEFAULT_ALERT_FORMAT,
    description: `Format of the alerts written to stdout, HWAUDIT_ALERTS_FILE and the alert stream: ${OUTPUT_FORMATS.join(', ')}.`,
  },
  {
    name: 'HWAUDIT_ALERT_STREAM_ID',
    default: '(none)',
    description:
      'OCID of an OCI stream that every alert is published to (PutMessages, key = DB system OCID). Needs HWAUDIT_OCI_ENDPOINT_STREAMING.',
  },
  {
    name: 'HWAUDIT_ALERT_BUCKET',
    default: '(none)',
    description:
      'Object Storage bucket that alerts are written to for SIEM batch pickup: one gzipped object per format and hour of the alert time, <prefix><format>/YYYY/MM/DD/HH.jsonl.gz (cef: .log.gz), one alert per line.',
  },
  {
    name: 'HWAUDIT_ALERT_BUCKET_FORMATS',
    default: '(HWAUDIT_ALERT_FORMAT)',
    description: `Formats written to HWAUDIT_ALERT_BUCKET, comma-separated: ${OUTPUT_FORMATS.join(', ')}.`,
  },
  {
    name: 'HWAUDIT_ALERT_BUCKET_PREFIX',
    default: DEFAULT_BUCKET_PREFIX,
    description: 'Object name prefix in HWAUDIT_ALERT_BUCKET.',
  },
  {
    name: 'HWAUDIT_NOTIFICATIONS_TOPIC_ID',
    default: '(none)',
    description:
      'OCID of a Notifications topic that alert digests (per rule and severity) are published to, before the invocation answers.',
  },
  {
    name: 'HWAUDIT_NOTIFICATIONS_PER_MINUTE',
    default: String(ONS_MESSAGES_PER_MINUTE),
    description: 'Digests per minute this container may publish (10 for topics with e-mail subscriptions).',
  },
  {
    name: 'HWAUDIT_COLLECT_STREAM_ID',
    default: '(none)',
    description:
      'OCID of an OCI stream that {"action":"collect"} also writes the collector records it reads to (key = DB system OCID), before committing them, for other consumers. Needs HWAUDIT_OCI_ENDPOINT_STREAMING.',
  },
  {
    name: 'HWAUDIT_REPORT_BUCKET',
    default: '(none)',
    description:
      'Object Storage bucket that {"action":"report"} writes the compliance reports to. Required by that action.',
  },
  {
    name: 'HWAUDIT_REPORT_PREFIX',
    default: DEFAULT_REPORT_PREFIX,
    description: 'Object name prefix of the reports: <prefix><from>_<to>/<report>.<format>.',
  },
  {
    name: 'HWAUDIT_REPORT_TOPIC_ID',
    default: '(HWAUDIT_NOTIFICATIONS_TOPIC_ID)',
    description:
      'OCID of the Notifications topic that one message per report run goes to, naming the objects; unset with no HWAUDIT_NOTIFICATIONS_TOPIC_ID either, no message is sent.',
  },
  {
    name: 'HWAUDIT_DB_SYSTEM',
    default: '(the only configured DB system)',
    description:
      'DB system (OCID or configured name) of raw MySQL audit events that carry none; collector records name their own.',
  },
  {
    name: 'HWAUDIT_MAX_BODY_BYTES',
    default: String(DEFAULT_MAX_BODY_BYTES),
    description:
      'Largest request body accepted; a larger one is refused with PAYLOAD_TOO_LARGE (status 413).',
  },
  {
    name: 'HWAUDIT_DEADLINE_MARGIN_MS',
    default: String(DEFAULT_DEADLINE_MARGIN_MS),
    description:
      'Time kept free before Fn-Deadline. A batch that would not finish before deadline minus this margin is refused (DEADLINE) before any state is written, so the redelivery does the work.',
  },
  ...OCI_VARS.map(ociVar),
];

export type StateSetting = { kind: 'sqlite' | 'mysql'; spec: string };

export type FunctionEnv = {
  /** Exactly one of the two is set once validated. */
  config: { kind: 'inline'; text: string } | { kind: 'file'; path: string };
  /** The store spec for openStore (validated; a mysql:// URL's password comes from HWAUDIT_STATE_PASSWORD). */
  state: StateSetting;
  scope: string;
  alertsFile: string | undefined;
  alertFormat: OutputFormat;
  alertStreamId: string | undefined;
  /** HWAUDIT_ALERT_BUCKET and how its objects are written. */
  alertBucket: { name: string; formats: OutputFormat[]; prefix: string } | undefined;
  collectStreamId: string | undefined;
  notificationsTopicId: string | undefined;
  notificationsPerMinute: number;
  /** {"action":"report"}: where the reports go, and the topic of the message naming them. */
  report: { bucket: string | undefined; prefix: string; topicId: string | undefined };
  /** How to authenticate to OCI; only used when a stream or topic is configured. */
  ociAuth: OciAuthSpec;
  dbSystem: string | undefined;
  maxBodyBytes: number;
  deadlineMarginMs: number;
};

type Env = Readonly<Record<string, string | undefined>>;

/** HWAUDIT_MAX_BODY_BYTES for the body guard in front of the FDK (the default when unset or invalid). */
export function bodyLimit(env: Env): number {
  const n = Number(env.HWAUDIT_MAX_BODY_BYTES?.trim());
  return Number.isSafeInteger(n) && n >= 1 ? n : DEFAULT_MAX_BODY_BYTES;
}

function invalid(name: string, problem: string): AuditError {
  return new AuditError('CONFIG_INVALID', `${name}: ${problem}`, { details: { variable: name } });
}

/** A set, non-blank value; blank counts as unset (the Console cannot delete a key in place). */
function text(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number): number {
  const value = text(env, name);
  if (value === undefined) return fallback;
  if (!/^\s*\d+\s*$/.test(value)) throw invalid(name, `expected an integer >= ${min}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw invalid(name, `expected an integer >= ${min}`);
  return n;
}

/** Validates the spec with the store factory's own parser, re-labelled with the variable's name. */
function state(env: Env): StateSetting {
  const spec = text(env, 'HWAUDIT_STATE')?.trim() ?? DEFAULT_STATE_PATH;
  try {
    return { kind: parseStoreSpec(spec, env as NodeJS.ProcessEnv).kind, spec };
  } catch (error) {
    // Its messages name the problem, never the spec (which may hold a password).
    if (error instanceof AuditError && error.code === 'CONFIG_INVALID') {
      throw invalid('HWAUDIT_STATE', error.message.replace(/^state store: /, ''));
    }
    throw error;
  }
}

/** Scopes are store keys: keep them short and printable, so logs and SQL consoles show them as set. */
const SCOPE = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

function scope(env: Env): string {
  const value = text(env, 'HWAUDIT_SCOPE')?.trim() ?? DEFAULT_SCOPE;
  if (!SCOPE.test(value)) {
    throw invalid(
      'HWAUDIT_SCOPE',
      'expected 1 to 128 characters: letters, digits and . _ : @ / - (starting with a letter or digit)',
    );
  }
  return value;
}

function outputFormat(name: string, value: string): OutputFormat {
  const format = value.trim().toLowerCase();
  if (!isOutputFormat(format)) throw invalid(name, `expected one of ${OUTPUT_FORMATS.join(', ')}`);
  return format;
}

function alertFormat(env: Env): OutputFormat {
  return outputFormat('HWAUDIT_ALERT_FORMAT', text(env, 'HWAUDIT_ALERT_FORMAT') ?? DEFAULT_ALERT_FORMAT);
}

/** Object Storage bucket names: letters, digits, dashes, underscores and periods. */
const BUCKET = /^[A-Za-z0-9._-]{1,256}$/;
const PREFIX = /^(?!\/)[A-Za-z0-9._\-/=@]{0,512}$/;

/** An Object Storage bucket name, when the variable is set. */
function bucketName(env: Env, variable: string): string | undefined {
  const name = text(env, variable)?.trim();
  if (name !== undefined && !BUCKET.test(name)) {
    throw invalid(variable, 'expected a bucket name: letters, digits, - _ and . (at most 256)');
  }
  return name;
}

/** An object name prefix: the variable's value, else `fallback`. */
function objectPrefix(env: Env, variable: string, fallback: string): string {
  const prefix = text(env, variable)?.trim() ?? fallback;
  if (!PREFIX.test(prefix)) {
    throw invalid(variable, 'expected at most 512 letters, digits and . _ - / = @, not starting with /');
  }
  return prefix;
}

function alertBucket(env: Env, format: OutputFormat): FunctionEnv['alertBucket'] {
  const name = bucketName(env, 'HWAUDIT_ALERT_BUCKET');
  if (name === undefined) return undefined;
  const listed = text(env, 'HWAUDIT_ALERT_BUCKET_FORMATS');
  const formats =
    listed === undefined
      ? [format]
      : [...new Set(listed.split(',').map((f) => outputFormat('HWAUDIT_ALERT_BUCKET_FORMATS', f)))];
  return { name, formats, prefix: objectPrefix(env, 'HWAUDIT_ALERT_BUCKET_PREFIX', DEFAULT_BUCKET_PREFIX) };
}

function ocid(env: Env, name: string, type: string): string | undefined {
  const value = text(env, name)?.trim();
  if (value === undefined) return undefined;
  if (!new RegExp(`^ocid1\\.${type}\\.[a-z0-9-]*\\.[a-z0-9-]*\\.[A-Za-z0-9._-]+$`).test(value)) {
    throw invalid(name, `expected an OCID of the form ocid1.${type}.<realm>.<region>.<id>`);
  }
  return value;
}

const KNOWN = new Set(FUNCTION_ENV_VARS.map((v) => v.name));

/**
 * Reads and validates every HWAUDIT_ variable; throws AuditError CONFIG_INVALID naming the
 * variable. `alsoKnown`: variables the pipeline configuration names (collector passwords).
 */
export function readFunctionEnv(
  env: Env = process.env,
  alsoKnown: ReadonlySet<string> = new Set(),
): FunctionEnv {
  // A misspelt variable would otherwise be ignored silently and its default used.
  const unknown = Object.keys(env).filter(
    (k) => k.startsWith('HWAUDIT_') && !KNOWN.has(k) && !alsoKnown.has(k),
  );
  if (unknown.length > 0)
    throw invalid(unknown.sort()[0]!, `unknown variable (known: ${[...KNOWN].join(', ')})`);
  const inline = text(env, 'HWAUDIT_CONFIG');
  const file = text(env, 'HWAUDIT_CONFIG_FILE');
  if (inline !== undefined && file !== undefined) {
    throw invalid('HWAUDIT_CONFIG', 'set HWAUDIT_CONFIG or HWAUDIT_CONFIG_FILE, not both');
  }

  const alertStreamId = ocid(env, 'HWAUDIT_ALERT_STREAM_ID', 'stream');
  const collectStreamId = ocid(env, 'HWAUDIT_COLLECT_STREAM_ID', 'stream');
  const notificationsTopicId = ocid(env, 'HWAUDIT_NOTIFICATIONS_TOPIC_ID', 'onstopic');
  // Endpoint overrides are checked now (not at the first alert), naming the variable at fault.
  for (const service of ENDPOINT_SERVICES) if (service !== 'streaming') ociEndpointOverride(service, env);
  const streamingEndpoint = ociEndpointOverride('streaming', env);
  const streamVar =
    alertStreamId !== undefined
      ? 'HWAUDIT_ALERT_STREAM_ID'
      : collectStreamId !== undefined
        ? 'HWAUDIT_COLLECT_STREAM_ID'
        : undefined;
  if (streamVar !== undefined && streamingEndpoint === undefined) {
    // The messages endpoint belongs to the stream pool (cell-N.streaming.<region>...): no regional default.
    throw invalid(
      endpointVariable('streaming'),
      `required with ${streamVar}: the stream pool's messages endpoint (Stream.messagesEndpoint)`,
    );
  }
  const format = alertFormat(env);
  return {
    config:
      inline !== undefined
        ? { kind: 'inline', text: inline }
        : { kind: 'file', path: file?.trim() ?? DEFAULT_CONFIG_FILE },
    state: state(env),
    scope: scope(env),
    alertsFile: text(env, 'HWAUDIT_ALERTS_FILE')?.trim(),
    alertFormat: format,
    alertStreamId,
    alertBucket: alertBucket(env, format),
    collectStreamId,
    notificationsTopicId,
    notificationsPerMinute: integer(env, 'HWAUDIT_NOTIFICATIONS_PER_MINUTE', ONS_MESSAGES_PER_MINUTE, 2),
    report: {
      bucket: bucketName(env, 'HWAUDIT_REPORT_BUCKET'),
      prefix: objectPrefix(env, 'HWAUDIT_REPORT_PREFIX', DEFAULT_REPORT_PREFIX),
      topicId: ocid(env, 'HWAUDIT_REPORT_TOPIC_ID', 'onstopic') ?? notificationsTopicId,
    },
    ociAuth: ociAuthSpecFromEnv(env),
    dbSystem: text(env, 'HWAUDIT_DB_SYSTEM')?.trim(),
    maxBodyBytes: integer(env, 'HWAUDIT_MAX_BODY_BYTES', DEFAULT_MAX_BODY_BYTES, 1),
    deadlineMarginMs: integer(env, 'HWAUDIT_DEADLINE_MARGIN_MS', DEFAULT_DEADLINE_MARGIN_MS, 0),
  };
}
