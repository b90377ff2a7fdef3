// OCSF 1.8.0 records. Alerts are Detection Findings (2004); sessions are Authentication (3002):
// Logon for direct logins, Account Switch for group-proxied ones (the IAM person in `user`, the
// proxied MySQL account they switched to in `user.account`) and for each `change_user` that changed
// the account or the person (who the connection was before it in `actor.user`), after the connect's
// own record.
// Every record validates against the OCSF 1.8.0 JSON Schemas (test/emit/ocsf.test.ts). No profile
// is used.

import { isIP } from 'node:net';
import { type Alert, recordKey, type Severity } from '../../../schemas/alert.js';
import {
  connectedSession,
  noDisconnectLogged,
  type Session,
  type SessionSwitch,
  switchedLogin,
} from '../../../schemas/session.js';
import { redactLiterals } from '../../normalize/redact.js';
import type { FormatContext } from './format.js';
import { compact } from './json.js';

export const OCSF_VERSION = '1.8.0';

/** An OCSF event as plain JSON: no `undefined` or `null`, no empty objects or arrays. */
export type OcsfRecord = { class_uid: number; activity_id: number; time: number } & Record<string, unknown>;

/** Stands in for a required name the source does not tell (OCSF has no null). */
export const UNKNOWN = 'unknown';

type OcsfClass = { class_uid: number; class_name: string; category_uid: number; category_name: string };

const IAM_CATEGORY = { category_uid: 3, category_name: 'Identity & Access Management' };

export const OCSF_CLASSES = {
  detectionFinding: {
    class_uid: 2004,
    class_name: 'Detection Finding',
    category_uid: 2,
    category_name: 'Findings',
  },
  authentication: { class_uid: 3002, class_name: 'Authentication', ...IAM_CATEGORY },
} as const satisfies Record<string, OcsfClass>;

export const OCSF_SEVERITY_ID: Record<Severity, number> = {
  info: 1,
  low: 2,
  medium: 3,
  high: 4,
  critical: 5,
};
const SEVERITY_NAMES = ['Unknown', 'Informational', 'Low', 'Medium', 'High', 'Critical'];

/** MySQL client errors a login or statement commonly fails with (status_detail). */
const MYSQL_ERRORS: Readonly<Record<number, string>> = {
  1040: 'ER_CON_COUNT_ERROR',
  1044: 'ER_DBACCESS_DENIED_ERROR',
  1045: 'ER_ACCESS_DENIED_ERROR',
  1049: 'ER_BAD_DB_ERROR',
  1064: 'ER_PARSE_ERROR',
  1130: 'ER_HOST_NOT_PRIVILEGED',
  1142: 'ER_TABLEACCESS_DENIED_ERROR',
  1226: 'ER_USER_LIMIT_REACHED',
  1227: 'ER_SPECIFIC_ACCESS_DENIED_ERROR',
  1251: 'ER_NOT_SUPPORTED_AUTH_MODE',
  1820: 'ER_MUST_CHANGE_PASSWORD',
  1862: 'ER_MUST_CHANGE_PASSWORD_LOGIN',
  3118: 'ER_ACCOUNT_HAS_BEEN_LOCKED',
};

export function mysqlErrorName(errno: number): string | undefined {
  return Object.hasOwn(MYSQL_ERRORS, errno) ? MYSQL_ERRORS[errno] : undefined;
}

type Json = Record<string, unknown>;
type Ref = { id: string; name: string };
type Person = { uid: string | null; name: string | null };

function alertPerson(identity: Alert['identity']): Person | null {
  return identity && { uid: identity.principalId, name: identity.name };
}

function sessionPerson(identity: Session['identity'] | undefined): Person | null {
  return identity ? { uid: identity.id, name: identity.name } : null;
}

function record(
  cls: OcsfClass,
  activity: { id: number; name: string },
  fields: { time: number; severityId: number; metadata: Json } & Json,
  ctx: FormatContext,
): OcsfRecord {
  const { time, severityId, metadata, ...rest } = fields;
  return compact({
    activity_id: activity.id,
    activity_name: activity.name,
    category_uid: cls.category_uid,
    category_name: cls.category_name,
    class_uid: cls.class_uid,
    class_name: cls.class_name,
    type_uid: cls.class_uid * 100 + activity.id,
    type_name: `${cls.class_name}: ${activity.name}`,
    severity_id: severityId,
    severity: SEVERITY_NAMES[severityId],
    time,
    metadata: {
      version: OCSF_VERSION,
      product: { name: ctx.product.name, vendor_name: ctx.product.vendor, version: ctx.product.version },
      ...metadata,
    },
    ...rest,
  });
}

/** OCSF `ip_t` allows at most 40 characters (a long IPv6 zone or a full-width mapped IPv4 exceeds it). */
const IP_MAX_LENGTH = 40;

/** A network endpoint for an address: `ip` when it is one OCSF accepts, else `hostname`. */
export function addressEndpoint(address: string): Json {
  return isIP(address) && address.length <= IP_MAX_LENGTH ? { ip: address } : { hostname: address };
}

/** The DB system as the endpoint and service authenticated against. */
function dbEndpoint(db: Ref): Json {
  return { uid: db.id, name: db.name };
}

function mysqlAccount(name: string | undefined): Json | undefined {
  return name ? { name, type: 'MySQL Account', type_id: 99 } : undefined;
}

/**
 * A user object carrying both identities: the person (IAM user OCID and name) and the MySQL account
 * whose privileges applied; `undefined` when neither is known.
 */
function user(person: Person | null, account?: string, group?: Ref): Json | undefined {
  const known = Boolean(person?.uid || person?.name);
  const u = compact({
    uid: person?.uid ?? undefined,
    name: person?.name ?? undefined,
    type: known ? 'User' : undefined,
    type_id: known ? 1 : undefined,
    account: mysqlAccount(account),
    groups: group ? [{ uid: group.id, name: group.name }] : undefined,
  });
  return Object.keys(u).length > 0 ? u : undefined;
}

function attackOf(technique: string): Json {
  const dot = technique.indexOf('.');
  if (dot < 0) return { technique: { uid: technique } };
  return { technique: { uid: technique.slice(0, dot) }, sub_technique: { uid: technique } };
}

function successStatus(ok: boolean, code: string | undefined, detail?: string): Json {
  return {
    status: ok ? 'Success' : 'Failure',
    status_id: ok ? 1 : 2,
    status_code: code,
    status_detail: detail,
  };
}

/** Redacts SQL text in rule details again: rules already do it, this keeps raw literals out by construction. */
function safeDetails(details: Alert['details']): Json | undefined {
  if (!details) return undefined;
  return typeof details.sql === 'string' ? { ...details, sql: redactLiterals(details.sql) } : details;
}

/**
 * The attribution (`unmapped.attribution` of a login, `evidences[].data.attribution` of an alert),
 * with the credentials another principal created on the person that were in force at the login
 * (`planted_credentials`; OCSF has no attribute for a credential the login may have used).
 */
function attributionOf(a: Session['attribution']): Json | undefined {
  return a
    ? {
        method: a.method,
        confidence: a.confidence,
        problem: a.problem,
        evidence: a.evidence,
        planted_credentials: a.plantedCredentials?.map((c) => ({
          type: c.type,
          uid: c.id,
          created_time: Date.parse(c.time),
          actor: { user: user({ uid: c.actor.id ?? null, name: c.actor.name ?? null }) },
          event_uid: c.key,
        })),
      }
    : undefined;
}

/**
 * An alert is a Detection Finding created (status New); its resolution is the same finding
 * closed (activity Close, status Resolved, `status_detail` saying why), at the resolution's time.
 */
export function ocsfAlert(alert: Alert, ctx: FormatContext): OcsfRecord {
  const rule = ctx.rule(alert.rule);
  const severityId = OCSF_SEVERITY_ID[alert.severity];
  const sessionId = typeof alert.details?.sessionId === 'string' ? alert.details.sessionId : undefined;
  const occurrences = typeof alert.details?.occurrences === 'number' ? alert.details.occurrences : undefined;
  const time = Date.parse(alert.time);
  const resolution = alert.resolution;
  const end = resolution && Date.parse(resolution.time);
  return record(
    OCSF_CLASSES.detectionFinding,
    resolution ? { id: 3, name: 'Close' } : { id: 1, name: 'Create' },
    {
      time: end ?? time,
      severityId,
      metadata: { uid: recordKey(alert), correlation_uid: sessionId, event_code: alert.rule },
      message: resolution ? `Resolved: ${alert.title} (${resolution.note})` : alert.title,
      ...(resolution
        ? { status: 'Resolved', status_id: 4, status_detail: resolution.note, end_time: end }
        : { status: 'New', status_id: 1 }),
      is_alert: true,
      count: occurrences,
      finding_info: {
        uid: alert.id,
        title: alert.title,
        desc: rule.description,
        types: rule.categories,
        first_seen_time: time,
        analytic: { uid: rule.id, name: rule.title, type: 'Rule', type_id: 1 },
        attacks: (alert.attack ?? []).map(attackOf),
        related_events: alert.evidence.filter((k) => !k.startsWith('config:')).map((uid) => ({ uid })),
      },
      remediation: !resolution && rule.runbook !== undefined ? { desc: rule.runbook } : undefined,
      resources: [
        alert.dbSystem && {
          uid: alert.dbSystem.id,
          name: alert.dbSystem.name,
          type: 'MySQL HeatWave DB System',
        },
        alert.group && { uid: alert.group.id, name: alert.group.name, type: 'OCI IAM Group' },
      ].filter(Boolean),
      evidences: [
        {
          // Who made a change to someone else; `user` is the person the alert is about.
          actor: actorOf(
            alert.client,
            alert.actor && user({ uid: alert.actor.principalId, name: alert.actor.name }),
          ),
          user: user(alertPerson(alert.identity), alert.mysqlAccount, alert.group),
          src_endpoint: alert.sourceIp ? addressEndpoint(alert.sourceIp) : undefined,
          dst_endpoint: alert.dbSystem ? dbEndpoint(alert.dbSystem) : undefined,
          data: {
            evidence: alert.evidence,
            login_user: alert.loginUser,
            attribution: attributionOf(alert.identity?.attribution ?? null),
            details: safeDetails(alert.details),
            resolution: resolution && { reason: resolution.reason, evidence: resolution.evidence },
            muted: alert.muted,
          },
        },
      ],
    },
    ctx,
  );
}

function sessionFields(s: Session): Json {
  return {
    user: user(sessionPerson(s.identity), s.mysqlAccount, s.group ?? undefined) ?? {
      name: s.login.user || UNKNOWN,
    },
    service: { uid: s.dbSystem.id, name: s.dbSystem.name },
    dst_endpoint: dbEndpoint(s.dbSystem),
    src_endpoint: s.sourceIp ? addressEndpoint(s.sourceIp) : undefined,
    // The client program the connection named (its name and version are unmapped: `client`).
    actor: actorOf(s.client),
    session: { uid: s.id, created_time: s.connectTs, is_remote: isRemote(s.connectionType) },
    is_remote: isRemote(s.connectionType),
    unmapped: {
      login: {
        user: s.login.user,
        external_user: s.login.os || undefined,
        proxy: s.login.proxy || undefined,
      },
      connection_id: s.connectionId,
      connection_type: s.connectionType,
      client: s.client,
      attribution: attributionOf(s.attribution),
      break_glass_grant: s.breakGlassGrant ?? undefined,
    },
  };
}

/** The actor of a session's records: the client program, and on a switch who switched (`user`). */
function actorOf(client: Session['client'], switcher?: Json): Json | undefined {
  const app = client?.program ?? client?.name;
  if (app === undefined && switcher === undefined) return undefined;
  return { ...(switcher && { user: switcher }), ...(app !== undefined && { app_name: app }) };
}

/** Socket, named-pipe and shared-memory connections are local; TCP (plain or TLS) is remote. */
function isRemote(connectionType: string | undefined): boolean | undefined {
  if (!connectionType) return undefined;
  return /^(tcp|ssl)/i.test(connectionType);
}

/** OCI sign-on factor names (`ssoAuthFactor`: TOTP, PUSH, SMS, EMAIL, FIDO_AUTHENTICATOR, ...), first match wins. */
const FACTOR_TYPES: [RegExp, number, string][] = [
  [/fido|webauthn|passkey|u2f/i, 10, 'WebAuthn'],
  [/push/i, 5, 'Push Notification'],
  [/sms/i, 1, 'SMS'],
  [/e-?mail/i, 8, 'Email'],
  [/phone|call/i, 3, 'Phone Call'],
  [/security.?question/i, 2, 'Security Question'],
  [/totp|hotp|otp|passcode|authenticator/i, 7, 'OTP'],
];

function authFactor(factor: string): Json {
  const match = FACTOR_TYPES.find(([re]) => re.test(factor));
  const totp = /totp/i.test(factor) || undefined;
  return match
    ? { factor_type_id: match[1], factor_type: match[2], is_totp: totp }
    : { factor_type_id: 99, factor_type: factor };
}

/** A switch as its record shows it (`switchedLogin`). */
type Change = ReturnType<typeof switchedLogin>;

function sessionMessage(s: Session, switched: Change | undefined): string {
  const who = s.identity?.name ?? (s.proxied ? 'An unattributed IAM user' : `Account ${s.mysqlAccount}`);
  const via = s.group ? ` through IAM group ${s.group.name}` : '';
  if (switched)
    return `${who} changed user on ${s.dbSystem.name} from ${switched.fromName} to ${s.mysqlAccount}${via}`;
  const verb = s.outcome === 'success' ? 'logged in to' : `failed to log in (MySQL error ${s.status}) to`;
  return `${who} ${verb} ${s.dbSystem.name} as ${s.mysqlAccount}${via}`;
}

/** A login's record: Logon (1), or Account Switch (7, Substitute User) when `switched`; `change` for a `change_user`. */
function loginRecord(
  s: Session,
  login: {
    time: number;
    uid: string;
    eventCode: string;
    switched: boolean;
    change?: Change;
    omitted?: number | undefined;
  },
  ctx: FormatContext,
): OcsfRecord {
  const ok = s.outcome === 'success';
  const { switched, change } = login;
  const activity = switched ? { id: 7, name: 'Account Switch' } : { id: 1, name: 'Logon' };
  // Its actor is the one below, with who switched.
  const { actor: _actor, ...fields } = sessionFields(s);
  return record(
    OCSF_CLASSES.authentication,
    activity,
    {
      time: login.time,
      severityId: ok ? 1 : 2,
      metadata: { uid: login.uid, correlation_uid: s.id, event_code: login.eventCode },
      message: sessionMessage(s, change),
      ...successStatus(ok, String(s.status), ok ? undefined : mysqlErrorName(s.status)),
      account_switch_type: switched ? 'Substitute User' : undefined,
      account_switch_type_id: switched ? 1 : undefined,
      is_mfa: s.mfaFactor ? true : undefined,
      auth_factors: s.mfaFactor ? [authFactor(s.mfaFactor)] : undefined,
      // Who switched: the person and account the connection was before the change_user.
      actor: actorOf(s.client, change && user(sessionPerson(change.from.identity), change.from.mysqlAccount)),
      ...fields,
      unmapped: { ...(fields.unmapped as Json), switches_omitted: login.omitted },
    },
    ctx,
  );
}

/**
 * The connect record, of what the connection first authenticated as: Logon, or Account Switch for
 * a group-proxied login.
 */
export function ocsfSession(session: Session, ctx: FormatContext): OcsfRecord {
  const s = connectedSession(session);
  const login = {
    time: s.connectTs,
    uid: s.connectKey,
    eventCode: 'connection/connect',
    switched: s.proxied,
  };
  return loginRecord(s, login, ctx);
}

/**
 * A switch (a `change_user` that changed the account or the person): Account Switch from who the
 * connection was (`actor`) to the person and account it authenticated (`user`), at its time.
 */
export function ocsfSwitch(session: Session, sw: SessionSwitch, ctx: FormatContext): OcsfRecord {
  const change = switchedLogin(session, sw);
  const login = {
    time: sw.ts,
    uid: sw.key,
    eventCode: 'connection/change_user',
    switched: true,
    change,
    omitted: sw.omittedBefore,
  };
  return loginRecord(change.session, login, ctx);
}

/**
 * The disconnect record (Logoff, 2), once the session has ended; `undefined` before. A session its
 * server ended without logging a disconnect (`endReason`) says so: `status_detail`, the message, and
 * `metadata.event_code` `session/<reason>` instead of `connection/disconnect`.
 */
export function ocsfSessionEnd(s: Session, ctx: FormatContext): OcsfRecord | undefined {
  if (s.disconnectTime === undefined || s.outcome !== 'success') return undefined;
  const who = s.identity?.name ?? s.mysqlAccount;
  const reason = s.endReason;
  const ended = reason === undefined ? undefined : noDisconnectLogged(reason);
  return record(
    OCSF_CLASSES.authentication,
    { id: 2, name: 'Logoff' },
    {
      time: Date.parse(s.disconnectTime),
      severityId: 1,
      metadata: {
        uid: `${s.id}:disconnect`,
        correlation_uid: s.id,
        event_code: reason === undefined ? 'connection/disconnect' : `session/${reason}`,
      },
      message:
        ended === undefined
          ? `${who} disconnected from ${s.dbSystem.name}`
          : `${who}'s session on ${s.dbSystem.name} ended, ${ended}`,
      ...successStatus(true, undefined, ended),
      ...sessionFields(s),
    },
    ctx,
  );
}
