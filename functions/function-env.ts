// The function's settings, read from environment variables only: OCI Functions hands function and
// application configuration to the container as env vars (and the FDK's ctx.getConfig() throws).
// Every variable is listed in FUNCTION_ENV_VARS, which docs/function-config.md mirrors (a test
// keeps the two in step). Error messages name the variable, never its value: HWAUDIT_STATE may
// one day hold a database URL with a password.
import { AuditError } from '../shared/errors.js';

export const DEFAULT_STATE_PATH = '/tmp/heatwave-iam-audit.sqlite';
/** The OCI Functions invoke body limit (domain.md section 4). */
export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;
export const DEFAULT_DEADLINE_MARGIN_MS = 2000;

export type FunctionEnvVar = { name: string; default: string; description: string };

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
    default: '(none)',
    description:
      'Path of the pipeline configuration file inside the image, e.g. /function/config/audit.yaml. For configurations larger than the function config size limit.',
  },
  {
    name: 'HWAUDIT_STATE',
    default: DEFAULT_STATE_PATH,
    description:
      'State store: a SQLite file path. `mysql://` URLs (a shared HeatWave store) are not supported yet and fail with CONFIG_INVALID.',
  },
  {
    name: 'HWAUDIT_ALERTS_FILE',
    default: '(none: stdout)',
    description:
      'File that alerts are appended to as JSON lines. Unset: alerts go to stdout as JSON lines, that is to the function log.',
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
];

export type FunctionEnv = {
  /** Exactly one of the two is set once validated. */
  config: { kind: 'inline'; text: string } | { kind: 'file'; path: string };
  statePath: string;
  alertsFile: string | undefined;
  dbSystem: string | undefined;
  maxBodyBytes: number;
  deadlineMarginMs: number;
};

type Env = Readonly<Record<string, string | undefined>>;

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

function statePath(env: Env): string {
  const value = text(env, 'HWAUDIT_STATE');
  if (value === undefined) return DEFAULT_STATE_PATH;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value.trim())?.[1]?.toLowerCase();
  if (scheme === 'mysql' || scheme === 'mysqlx') {
    throw invalid(
      'HWAUDIT_STATE',
      'a MySQL state store (mysql:// URL) is not supported yet; use a SQLite file path',
    );
  }
  if (scheme !== undefined)
    throw invalid('HWAUDIT_STATE', `unsupported URL scheme "${scheme}"; use a SQLite file path`);
  return value.trim();
}

const KNOWN = new Set(FUNCTION_ENV_VARS.map((v) => v.name));

/** Reads and validates every HWAUDIT_ variable; throws AuditError CONFIG_INVALID naming the variable. */
export function readFunctionEnv(env: Env = process.env): FunctionEnv {
  // A misspelt variable would otherwise be ignored silently and its default used.
  const unknown = Object.keys(env).filter((k) => k.startsWith('HWAUDIT_') && !KNOWN.has(k));
  if (unknown.length > 0)
    throw invalid(unknown.sort()[0]!, `unknown variable (known: ${[...KNOWN].join(', ')})`);
  const inline = text(env, 'HWAUDIT_CONFIG');
  const file = text(env, 'HWAUDIT_CONFIG_FILE');
  if (inline !== undefined && file !== undefined) {
    throw invalid('HWAUDIT_CONFIG', 'set HWAUDIT_CONFIG or HWAUDIT_CONFIG_FILE, not both');
  }
  if (inline === undefined && file === undefined) {
    throw invalid('HWAUDIT_CONFIG', 'no pipeline configuration: set HWAUDIT_CONFIG or HWAUDIT_CONFIG_FILE');
  }
  return {
    config: inline !== undefined ? { kind: 'inline', text: inline } : { kind: 'file', path: file!.trim() },
    statePath: statePath(env),
    alertsFile: text(env, 'HWAUDIT_ALERTS_FILE')?.trim(),
    dbSystem: text(env, 'HWAUDIT_DB_SYSTEM')?.trim(),
    maxBodyBytes: integer(env, 'HWAUDIT_MAX_BODY_BYTES', DEFAULT_MAX_BODY_BYTES, 1),
    deadlineMarginMs: integer(env, 'HWAUDIT_DEADLINE_MARGIN_MS', DEFAULT_DEADLINE_MARGIN_MS, 0),
  };
}
