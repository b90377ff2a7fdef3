// The SIEM output formats: one registry mapping a format name to pure formatters. Each formatter
// returns one line (no trailing newline) or `undefined` when the format has no record for that input.
import type { Alert } from '../../../schemas/alert.js';
import { type Session, type SessionSwitch, sessionSwitches } from '../../../schemas/session.js';
import { RULES } from '../../detect/registry.js';
import { cefAlert, cefSession, cefSwitch } from './cef.js';
import { ecsAlert, ecsSession, ecsSwitch } from './ecs.js';
import { ocsfAlert, ocsfSession, ocsfSessionEnd, ocsfSwitch } from './ocsf.js';

export const OUTPUT_FORMATS = ['jsonl', 'ocsf', 'cef', 'ecs'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function isOutputFormat(value: string): value is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(value);
}

/**
 * One JSON record as a line. JSON.stringify leaves DEL, the C1 controls and the Unicode line
 * separators raw; they are escaped too, so no record can move a terminal's cursor or split a line.
 */
export function jsonLine(value: unknown): string {
  return jsonText(value);
}

/** JSON text escaped like jsonLine; `indent` spaces per level (0: one line). */
export function jsonText(value: unknown, indent = 0): string {
  return JSON.stringify(value, null, indent).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Kept equal to package.json `version` by a test (the bundles do not read package.json). */
export const PRODUCT_VERSION = '0.1.0';

export type Product = { name: string; vendor: string; version: string };

export const PRODUCT: Product = {
  name: 'heatwave-iam-audit',
  vendor: 'heatwave-iam-audit',
  version: PRODUCT_VERSION,
};

/** The SIEM category of what a rule watches (ECS `event.category`, OCSF `finding_info.types`, CEF `cat`). */
export type RuleCategory = 'authentication' | 'database' | 'iam';

export type RuleInfo = {
  id: string;
  title: string;
  description?: string;
  /** What to do when it fires. */
  runbook?: string;
  /** First one is the primary category. */
  categories: readonly RuleCategory[];
  /** Outcome of the activity the alert is about, when the rule implies one (a login that succeeded). */
  outcome?: 'success' | 'failure';
};

/** What the formatters need besides the record: injected so tests can pin the version. */
export type FormatContext = { product: Product; rule: (id: string) => RuleInfo };

type Classification = Pick<RuleInfo, 'categories' | 'outcome'>;

const LOGIN: Classification = { categories: ['authentication'], outcome: 'success' };

/** Rules whose category differs from their id namespace's. */
const RULE_CLASSIFICATION: Record<string, Classification> = {
  'auth.failure-burst': { categories: ['authentication'], outcome: 'failure' },
  'break-glass.stale': { categories: ['iam'] },
  'privilege.change': { categories: ['database', 'iam'] },
  'mapping.change': { categories: ['database', 'iam'] },
};

/** By rule id namespace (the part before the first dot). */
const NAMESPACE_CLASSIFICATION: Record<string, Classification> = {
  access: LOGIN,
  auth: LOGIN,
  'break-glass': LOGIN,
  privilege: { categories: ['database'] },
  mapping: { categories: ['database'] },
  audit: { categories: ['database'] },
  dbsystem: { categories: ['database'] },
  iam: { categories: ['iam'] },
};

/** Namespaces with a classification: a rule outside them falls back to `database` (see the format tests). */
export const CLASSIFIED_NAMESPACES: readonly string[] = Object.keys(NAMESPACE_CLASSIFICATION);

/** Own keys only: an id like `constructor` must not find Object.prototype members. */
function own<T>(table: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

export function classifyRule(id: string): Classification {
  const namespace = id.split('.')[0] ?? '';
  return (
    own(RULE_CLASSIFICATION, id) ?? own(NAMESPACE_CLASSIFICATION, namespace) ?? { categories: ['database'] }
  );
}

const RULE_INFO = new Map<string, RuleInfo>(
  RULES.map((r) => [
    r.id,
    { id: r.id, title: r.title, description: r.description, runbook: r.runbook, ...classifyRule(r.id) },
  ]),
);

/** Rule metadata from the registry; an id it does not know (a retired rule) still formats. */
export function ruleInfo(id: string): RuleInfo {
  return RULE_INFO.get(id) ?? { id, title: id, ...classifyRule(id) };
}

export const DEFAULT_CONTEXT: FormatContext = { product: PRODUCT, rule: ruleInfo };

export function formatAlert(
  format: OutputFormat,
  alert: Alert,
  ctx: FormatContext = DEFAULT_CONTEXT,
): string {
  switch (format) {
    case 'jsonl':
      return jsonLine(alert);
    case 'ocsf':
      return jsonLine(ocsfAlert(alert, ctx));
    case 'cef':
      return cefAlert(alert, ctx);
    case 'ecs':
      return jsonLine(ecsAlert(alert, ctx));
  }
}

/**
 * The session's connect record (OCSF Logon or Account Switch, a CEF line, an ECS event), of what the
 * connection first authenticated as; jsonl gives the whole session.
 */
export function formatSession(
  format: OutputFormat,
  session: Session,
  ctx: FormatContext = DEFAULT_CONTEXT,
): string | undefined {
  switch (format) {
    case 'jsonl':
      return jsonLine(session);
    case 'ocsf':
      return jsonLine(ocsfSession(session, ctx));
    case 'cef':
      return cefSession(session, ctx);
    case 'ecs':
      return jsonLine(ecsSession(session, ctx));
  }
}

type SwitchFormatter = (session: Session, sw: SessionSwitch, ctx: FormatContext) => string;

const SWITCH_FORMATTERS: Record<Exclude<OutputFormat, 'jsonl'>, SwitchFormatter> = {
  ocsf: (session, sw, ctx) => jsonLine(ocsfSwitch(session, sw, ctx)),
  cef: cefSwitch,
  ecs: (session, sw, ctx) => jsonLine(ecsSwitch(session, sw, ctx)),
};

/**
 * A record per switch of the session (each `change_user` that changed the account or the person,
 * `sessionSwitches`), in order: OCSF Account Switch, a CEF line, an ECS event; jsonl has none (the
 * session carries them).
 */
export function formatSessionSwitches(
  format: OutputFormat,
  session: Session,
  ctx: FormatContext = DEFAULT_CONTEXT,
): string[] {
  if (format === 'jsonl') return [];
  const formatter = SWITCH_FORMATTERS[format];
  return sessionSwitches(session).map((sw) => formatter(session, sw, ctx));
}

/** The session's disconnect record: OCSF Logoff once `disconnectTime` is known; other formats have none. */
export function formatSessionEnd(
  format: OutputFormat,
  session: Session,
  ctx: FormatContext = DEFAULT_CONTEXT,
): string | undefined {
  if (format !== 'ocsf') return undefined;
  const record = ocsfSessionEnd(session, ctx);
  return record && jsonLine(record);
}
