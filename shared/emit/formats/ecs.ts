// Elastic Common Schema documents. `user.name` is the person, `user.effective.name` the MySQL
// account whose privileges applied; fields ECS has no place for go under `heatwave`.

import type { Alert, Severity } from '../../../schemas/alert.js';
import {
  connectedSession,
  type Session,
  type SessionSwitch,
  switchedLogin,
} from '../../../schemas/session.js';
import { redactLiterals } from '../../normalize/redact.js';
import type { FormatContext, RuleCategory } from './format.js';
import { isIpAddressField } from './ip-address.js';
import { compact } from './json.js';

export const ECS_VERSION = '8.11.0';

export type EcsDocument = { '@timestamp': string; event: Record<string, unknown> } & Record<string, unknown>;

/** Same scale as OCSF `severity_id`. */
export const ECS_SEVERITY: Record<Severity, number> = { info: 1, low: 2, medium: 3, high: 4, critical: 5 };

/** The `event.type` each category allows that fits what the rules report. */
const EVENT_TYPE: Record<RuleCategory, string> = {
  authentication: 'start',
  database: 'change',
  iam: 'change',
};

/** The `event.type` of a resolution: the end of what was found, where the category has one. */
const RESOLVED_TYPE: Record<RuleCategory, string> = {
  authentication: 'end',
  database: 'change',
  iam: 'change',
};

const MODULE = 'heatwave_iam_audit';

type Json = Record<string, unknown>;

function unique(values: (string | null | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => Boolean(v)))];
}

/** The DB system as destination (its name is not an IP, so ECS wants it in `domain` too) and service. */
function dbSystemFields(db: { id: string; name: string } | null | undefined): Json {
  if (!db) return {};
  return {
    destination: { address: db.name, domain: db.name },
    service: { id: db.id, name: db.name, type: 'mysql' },
  };
}

/** ECS `source.ip` is an IP field: anything else the log recorded goes to `address` and `domain`. */
function sourceFields(address: string | undefined): Json {
  if (!address) return {};
  return { source: isIpAddressField(address) ? { ip: address, address } : { address, domain: address } };
}

function threat(attack: readonly string[] | undefined): Json | undefined {
  if (!attack || attack.length === 0) return undefined;
  const subs = attack.filter((t) => t.includes('.'));
  return {
    framework: 'MITRE ATT&CK',
    technique: {
      id: unique(attack.map((t) => t.split('.')[0])),
      subtechnique: { id: subs },
    },
  };
}

function accountUser(account: string | undefined): string | undefined {
  if (!account) return undefined;
  const at = account.lastIndexOf('@');
  return at < 0 ? account : account.slice(0, at);
}

/**
 * `heatwave.attribution`: how the person was named, and the credentials another principal created
 * on them that were in force at the login (`planted_credentials`).
 */
function attributionOf(a: Session['attribution'] | undefined): Json | undefined {
  return a
    ? {
        method: a.method,
        confidence: a.confidence,
        problem: a.problem,
        planted_credentials: a.plantedCredentials?.map((c) => ({
          type: c.type,
          id: c.id,
          created: c.time,
          actor: { id: c.actor.id, name: c.actor.name },
          event_key: c.key,
        })),
      }
    : undefined;
}

function safeDetails(details: Alert['details']): Json | undefined {
  if (!details) return undefined;
  return typeof details.sql === 'string' ? { ...details, sql: redactLiterals(details.sql) } : details;
}

/**
 * An alert (`event.kind: alert`); its resolution is the same alert with `event.action: resolved`,
 * `event.type` its end, `event.outcome: success`, `event.reason` why, at the resolution's time.
 */
export function ecsAlert(alert: Alert, ctx: FormatContext): EcsDocument {
  const rule = ctx.rule(alert.rule);
  const person = alert.identity;
  const attribution = person?.attribution;
  const resolution = alert.resolution;
  return compact({
    '@timestamp': resolution?.time ?? alert.time,
    ecs: { version: ECS_VERSION },
    message: resolution ? `Resolved: ${alert.title} (${resolution.note})` : alert.title,
    event: {
      kind: 'alert',
      category: rule.categories,
      type: unique(rule.categories.map((c) => (resolution ? RESOLVED_TYPE : EVENT_TYPE)[c])),
      id: alert.id,
      severity: ECS_SEVERITY[alert.severity],
      outcome: resolution ? 'success' : rule.outcome,
      ...(resolution
        ? { action: 'resolved', reason: resolution.note, start: alert.time, end: resolution.time }
        : {}),
      module: MODULE,
      dataset: `${MODULE}.alert`,
    },
    rule: {
      id: rule.id,
      name: rule.title,
      description: rule.description,
      ruleset: ctx.product.name,
    },
    observer: { vendor: ctx.product.vendor, product: ctx.product.name, version: ctx.product.version },
    // `user` acts; a change an actor made to someone else targets the person (`user.target`).
    user: alert.actor
      ? {
          name: alert.actor.name ?? undefined,
          id: alert.actor.principalId ?? undefined,
          target: { name: person?.name ?? undefined, id: person?.principalId ?? undefined },
        }
      : {
          name: person?.name ?? undefined,
          id: person?.principalId ?? undefined,
          effective: { name: alert.mysqlAccount },
        },
    group: alert.group && { id: alert.group.id, name: alert.group.name },
    ...sourceFields(alert.sourceIp),
    ...dbSystemFields(alert.dbSystem),
    related: {
      user: unique([
        alert.actor?.name,
        alert.actor?.principalId,
        person?.name,
        person?.principalId,
        alert.mysqlAccount,
        accountUser(alert.mysqlAccount),
        alert.loginUser,
      ]),
      ip: [alert.sourceIp].filter(isIpAddressField),
    },
    threat: threat(alert.attack),
    heatwave: {
      db_system: alert.dbSystem ?? undefined,
      login_user: alert.loginUser,
      client: alert.client,
      attribution: attributionOf(attribution),
      evidence: alert.evidence,
      details: safeDetails(alert.details),
      status: resolution ? alert.status : undefined,
      resolution: resolution && { reason: resolution.reason, evidence: resolution.evidence },
      muted: alert.muted,
    },
  });
}

/** The session's connect, of what it first authenticated as (`event.action` login or proxied-login). */
export function ecsSession(session: Session, ctx: FormatContext): EcsDocument {
  const s = connectedSession(session);
  const ok = s.outcome === 'success';
  return loginDocument(s, ctx, {
    time: s.connectTime,
    id: s.id,
    action: s.proxied ? 'proxied-login' : 'login',
    message: `${s.identity?.name ?? s.mysqlAccount} ${ok ? 'logged in to' : 'failed to log in to'} ${s.dbSystem.name} as ${s.mysqlAccount}`,
  });
}

/**
 * A switch (`event.action: change-user`: a `change_user` that changed the account or the person): the
 * person and account it authenticated, at its time; who the connection was before it in the message
 * and `related.user`.
 */
export function ecsSwitch(session: Session, sw: SessionSwitch, ctx: FormatContext): EcsDocument {
  const { session: s, from, fromName } = switchedLogin(session, sw);
  return loginDocument(s, ctx, {
    time: sw.time,
    id: sw.key,
    action: 'change-user',
    message: `${s.identity?.name ?? s.mysqlAccount} changed user on ${s.dbSystem.name} from ${fromName} to ${s.mysqlAccount}`,
    from,
    omitted: sw.omittedBefore,
  });
}

/** Who a login names: the person and the MySQL account, as `related.user` lists them. */
function names(l: SessionSwitch['from']): (string | undefined)[] {
  return [l.identity?.name, l.identity?.id, l.mysqlAccount, l.account.user, l.login.user];
}

function loginDocument(
  s: Session,
  ctx: FormatContext,
  login: {
    time: string;
    id: string;
    action: string;
    message: string;
    from?: SessionSwitch['from'];
    omitted?: number | undefined;
  },
): EcsDocument {
  const ok = s.outcome === 'success';
  return compact({
    '@timestamp': login.time,
    ecs: { version: ECS_VERSION },
    message: login.message,
    event: {
      kind: 'event',
      category: ['authentication'],
      type: ['start'],
      action: login.action,
      outcome: ok ? 'success' : 'failure',
      id: login.id,
      start: login.time,
      end: s.disconnectTime,
      module: MODULE,
      dataset: `${MODULE}.session`,
    },
    error: ok ? undefined : { code: String(s.status) },
    observer: { vendor: ctx.product.vendor, product: ctx.product.name, version: ctx.product.version },
    user: {
      name: s.identity?.name,
      id: s.identity?.id,
      effective: { name: s.mysqlAccount },
    },
    group: s.group && { id: s.group.id, name: s.group.name },
    ...sourceFields(s.sourceIp),
    ...dbSystemFields(s.dbSystem),
    related: {
      user: unique([...names(s), ...(login.from ? names(login.from) : [])]),
      ip: [s.sourceIp].filter(isIpAddressField),
    },
    heatwave: {
      session_id: s.id,
      connection_id: s.connectionId,
      connection_type: s.connectionType,
      client: s.client,
      login_user: s.login.user,
      external_user: s.login.os || undefined,
      proxied: s.proxied,
      mfa_factor: s.mfaFactor,
      break_glass_grant: s.breakGlassGrant ?? undefined,
      // `event.end` is then no disconnect the server logged (Session.endReason).
      end_reason: s.endReason,
      switches_omitted: login.omitted,
      attribution: attributionOf(s.attribution),
    },
  });
}
