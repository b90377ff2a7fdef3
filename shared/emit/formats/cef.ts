// ArcSight CEF: `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension`, one line per
// record. Header fields escape `\` and `|`; they cannot hold a line break, so CR/LF become spaces.
// Extension values escape `\`, `=`, and CR/LF as `\r`/`\n`; keys are fixed names, never data.
// Other control characters are shown as symbols in both (shared/text.ts `visible`).
import { createHash } from 'node:crypto';
import type { Alert, Severity } from '../../../schemas/alert.js';
import {
  clientLabel,
  connectedSession,
  type Session,
  type SessionSwitch,
  switchedLogin,
} from '../../../schemas/session.js';
import { redactLiterals } from '../../normalize/redact.js';
import { visible } from '../../text.js';
import type { FormatContext } from './format.js';
import { isIpAddressField } from './ip-address.js';

/** CEF severity 0-10 (Low 0-3, Medium 4-6, High 7-8, Very-High 9-10). */
export const CEF_SEVERITY: Record<Severity, number> = { info: 1, low: 3, medium: 5, high: 8, critical: 10 };

export function escapeCefHeader(value: string): string {
  return visible(value.replace(/[\\|]/g, (c) => `\\${c}`).replace(/\r\n|[\r\n]/g, ' '));
}

export function escapeCefValue(value: string): string {
  return visible(value.replace(/[\\=\r\n]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\${c}`)));
}

type Extension = [key: string, value: string | number | undefined][];

/** Custom string slots: each value goes with its label (`cs1Label=...`); empty values are left out. */
function custom(slots: [key: string, label: string, value: string | undefined][]): Extension {
  return slots.flatMap(
    ([key, label, value]): Extension =>
      value
        ? [
            [`${key}Label`, label],
            [key, value],
          ]
        : [],
  );
}

/**
 * `cn2` (`plantedCredentials`): how many credentials another principal created on the person were in
 * force at the login (`attribution.plantedCredentials`; the session id leads to which).
 */
function planted(
  a: Session['attribution'] | undefined,
): [key: string, label: string, value: string | undefined] {
  return ['cn2', 'plantedCredentials', a?.plantedCredentials?.length.toString()];
}

/** Source address: `src` for an IP address, `shost` for anything else the log recorded. */
function source(address: string | undefined): Extension {
  return [[isIpAddressField(address) ? 'src' : 'shost', address]];
}

function line(ctx: FormatContext, signature: string, name: string, severity: number, ext: Extension): string {
  const header = ['CEF:0', ctx.product.vendor, ctx.product.name, ctx.product.version, signature, name]
    .map(escapeCefHeader)
    .join('|');
  const extension = ext
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${escapeCefValue(String(v))}`)
    .join(' ');
  return `${header}|${severity}|${extension}`;
}

/** One line per alert; a resolution is the same alert with `act=resolved`, `reason` and `end`. */
export function cefAlert(alert: Alert, ctx: FormatContext): string {
  const rule = ctx.rule(alert.rule);
  const attribution = alert.identity?.attribution;
  const sql = typeof alert.details?.sql === 'string' ? redactLiterals(alert.details.sql) : undefined;
  const occurrences = typeof alert.details?.occurrences === 'number' ? alert.details.occurrences : undefined;
  const resolution = alert.resolution;
  const name = resolution ? `Resolved: ${alert.title}` : alert.title;
  return line(ctx, alert.rule, name, CEF_SEVERITY[alert.severity], [
    ['rt', Date.parse(resolution?.time ?? alert.time)],
    ['externalId', alert.id],
    ['act', resolution ? 'resolved' : undefined],
    ['reason', resolution?.note],
    ['start', resolution ? Date.parse(alert.time) : undefined],
    ['end', resolution ? Date.parse(resolution.time) : undefined],
    ['cat', rule.categories.join(',')],
    // The acting user is the source: the actor of a change made to someone else, else the person.
    ['suser', (alert.actor ?? alert.identity)?.name ?? undefined],
    ['suid', (alert.actor ?? alert.identity)?.principalId ?? undefined],
    ['duser', alert.mysqlAccount ?? (alert.actor ? (alert.identity?.name ?? undefined) : undefined)],
    ['duid', alert.actor ? (alert.identity?.principalId ?? undefined) : undefined],
    ...source(alert.sourceIp),
    ['dvchost', alert.dbSystem?.name],
    ['deviceExternalId', alert.dbSystem?.id],
    ['requestClientApplication', clientLabel(alert.client)],
    ['cnt', occurrences],
    ['msg', sql],
    ...custom([
      ['cs1', 'rule', alert.rule],
      ['cs2', 'attributionMethod', attribution?.method],
      ['cs3', 'attributionConfidence', attribution?.confidence],
      ['cs4', 'iamGroup', alert.group?.name],
      ['cs5', 'iamGroupId', alert.group?.id],
      ['cs6', 'ruleTitle', rule.title],
      planted(attribution),
      ['flexString1', 'attackTechniques', alert.attack?.join(',')],
      ['flexString2', 'loginUser', alert.loginUser],
    ]),
  ]);
}

/** One line per session connect, of what it authenticated as: `session.logon` or `session.logon-failed`. */
export function cefSession(session: Session, ctx: FormatContext): string {
  const s = connectedSession(session);
  const ok = s.outcome === 'success';
  const name = ok ? (s.proxied ? 'Group-proxied database login' : 'Database login') : 'Failed database login';
  return loginLine(s, ctx, {
    signature: ok ? 'session.logon' : 'session.logon-failed',
    name,
    time: s.connectTs,
    id: s.id,
    // A failed login's reason is its error; a session its server ended without a disconnect says why.
    reason: ok ? s.endReason : s.status,
  });
}

/**
 * A switch (`session.change-user`: a `change_user` that changed the account or the person): the
 * person and account it authenticated, at its time, `msg` naming who the connection was before it.
 * `end` is the session's, as on every login line of it; `reason` is left out, where it would read
 * as the switch's: what ended a session its server logged no disconnect for is on its logon line.
 */
export function cefSwitch(session: Session, sw: SessionSwitch, ctx: FormatContext): string {
  const { session: s, fromName } = switchedLogin(session, sw);
  return loginLine(s, ctx, {
    signature: 'session.change-user',
    name: 'Database change user',
    time: sw.ts,
    id: sw.key,
    msg: `change_user from ${fromName} to ${s.mysqlAccount}`,
    omitted: sw.omittedBefore,
  });
}

function loginLine(
  s: Session,
  ctx: FormatContext,
  login: {
    signature: string;
    name: string;
    time: number;
    id: string;
    msg?: string;
    reason?: string | number | undefined;
    omitted?: number | undefined;
  },
): string {
  const ok = s.outcome === 'success';
  return line(ctx, login.signature, login.name, ok ? 1 : 3, [
    ['rt', login.time],
    ['externalId', externalId(login.id)],
    ['cat', 'authentication'],
    ['outcome', ok ? 'success' : 'failure'],
    ['reason', login.reason],
    ['suser', s.identity?.name],
    ['suid', s.identity?.id],
    ['duser', s.mysqlAccount],
    ...source(s.sourceIp),
    ['dvchost', s.dbSystem.name],
    ['deviceExternalId', s.dbSystem.id],
    ['requestClientApplication', clientLabel(s.client)],
    ['end', s.disconnectTime === undefined ? undefined : Date.parse(s.disconnectTime)],
    ['msg', login.msg],
    ...custom([
      ['cs1', 'mfaFactor', s.mfaFactor],
      ['cs2', 'attributionMethod', s.attribution?.method],
      ['cs3', 'attributionConfidence', s.attribution?.confidence],
      ['cs4', 'iamGroup', s.group?.name],
      ['cs5', 'iamGroupId', s.group?.id],
      ['cs6', 'breakGlassGrant', s.breakGlassGrant ?? undefined],
      ['cn1', 'switchesOmitted', login.omitted?.toString()],
      planted(s.attribution),
      ['flexString1', 'sessionId', s.id],
      ['flexString2', 'loginUser', s.login.user],
    ]),
  ]);
}

/**
 * `externalId` holds 40 characters (CEF's extension dictionary); a session's id or an event key is
 * longer (the DB system's OCID first), and cut there, all of a DB system's would be one. A login
 * record's id is the first 32 hex digits of the SHA-256 of its id; the session id is in
 * `flexString1` (`sessionId`).
 */
function externalId(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}
