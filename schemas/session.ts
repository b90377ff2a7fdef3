// One database session as the session ledger records it: who connected, through which IAM group,
// as which MySQL account, with which evidence.
import { z } from 'zod';
import { AccountSchema, LoginSchema } from './events.js';

export const ATTRIBUTION_METHODS = [
  'mapped-user', // 1-to-1 authentication_oci account: its user OCID
  'external-user', // login.os (set by the plugin) names a directory user
  'login-name', // login.user (sent by the client) names a member of a mapped group
  'signon-correlated', // exactly one member of a mapped group signed on from the same IP
  'unattributed', // an IAM-proxied session that cannot be tied to a person
  'local-account', // a non-IAM MySQL account
] as const;
export const CONFIDENCES = ['verified', 'corroborated', 'asserted', 'none'] as const;
/**
 * How a session ended that its server logged no disconnect for. `server-shutdown`: its server
 * wrote a shutdown record after the session's last event (the end is that record's time);
 * `server-restart`: its server started again with no such record (the end is the startup's time,
 * an upper bound); `server-changed`: another server took over its instance (an HA failover, a
 * replacement; the end is the audit gap's time: the last event read from the server before).
 */
export const SESSION_END_REASONS = ['server-shutdown', 'server-restart', 'server-changed'] as const;
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

/** What ended a session its server logged no disconnect for, and what its end time is then. */
const ENDED_BY: Record<SessionEndReason, string> = {
  'server-shutdown': 'its server shut down',
  'server-restart': 'its server restarted (the end is the startup time, an upper bound)',
  'server-changed':
    'another server took over its instance (the end is the last event read from the server before)',
};

/** `no disconnect logged: <what ended it>`, for the SIEM records and reports of such a session. */
export function noDisconnectLogged(reason: SessionEndReason): string {
  return `no disconnect logged: ${ENDED_BY[reason]}`;
}

/** Bounds on what a session record keeps of its activity (the counts count everything). */
export const SESSION_TABLES_MAX = 100;
export const SESSION_STATEMENTS_MAX = 50;
export const STATEMENT_SQL_MAX = 500;
/** Longest `schema.table` name kept (MySQL's are at most 64 + 1 + 64 characters). */
export const TABLE_NAME_MAX = 200;
/**
 * Most switches a session keeps (`Session.switches`): the first SESSION_SWITCHES_MAX - 1 and the
 * latest; `switchesOmitted` counts those left out between them.
 */
export const SESSION_SWITCHES_MAX = 20;
/** Longest value of `Session.client` kept (a client may send up to 1 KB per attribute). */
export const CLIENT_FIELD_MAX = 128;

export const RefSchema = z.object({ id: z.string(), name: z.string() });

/** The client program a connection named (`Session.client`). */
export const ClientSchema = z.object({
  program: z.string().optional(),
  name: z.string().optional(),
  version: z.string().optional(),
});

export const AttributionSchema = z.object({
  method: z.enum(ATTRIBUTION_METHODS),
  confidence: z.enum(CONFIDENCES),
  /** Dedupe keys of the events and config facts behind the decision. */
  evidence: z.array(z.string()),
  /** Why an IAM-proxied session could not be resolved cleanly, when it could not. */
  problem: z
    .enum(['not-member', 'left-group', 'user-inactive', 'ambiguous', 'no-evidence', 'unknown-user'])
    .optional(),
  /**
   * Credentials another principal created on the person's IAM user and had not deleted when the
   * login authenticated (access.planted-credential): whoever holds one may have made the login.
   * Their event keys are in `evidence` too.
   */
  plantedCredentials: z
    .array(
      z.object({
        /** `api-key`, `auth-token`, `password`, ... */
        type: z.string(),
        /** The credential (an API key's fingerprint), when the IAM event names it. */
        id: z.string().optional(),
        /** Who created it. */
        actor: z.object({ id: z.string().optional(), name: z.string().optional() }),
        /** When it was created (ISO 8601). */
        time: z.string(),
        /** The creation's IAM event key. */
        key: z.string(),
      }),
    )
    .optional(),
});
export type Attribution = z.infer<typeof AttributionSchema>;

const SessionBaseSchema = z.object({
  /** Stable id: DB system (and instance) + connection id + connect time. */
  id: z.string(),
  dbSystem: RefSchema,
  /** The instance the session was on (primary, read replica), when the collector read its log. */
  instance: z.string().optional(),
  connectionId: z.number(),
  connectTime: z.string(),
  connectTs: z.number(),
  /** When the session ended: its disconnect, or what `endReason` says. */
  disconnectTime: z.string().optional(),
  /** Set when the server logged no disconnect: what ended the session (SESSION_END_REASONS). */
  endReason: z.enum(SESSION_END_REASONS).optional(),
  /** `success`, or `failed` with the MySQL errno in `status`. */
  outcome: z.enum(['success', 'failed']),
  status: z.number(),
  login: LoginSchema,
  account: AccountSchema,
  sourceIp: z.string().optional(),
  connectionType: z.string().optional(),
  /**
   * The client program as the connection named it (its connection attributes: `program_name`,
   * `_client_name`, `_client_version`), each cut at CLIENT_FIELD_MAX characters. The client sets
   * them: they tell an operator which tool ran the session, not who did.
   */
  client: ClientSchema.optional(),
  /** The person behind the session, when known. */
  identity: RefSchema.nullable(),
  /** The IAM group the session resolved through (group-proxied logins). */
  group: RefSchema.nullable(),
  /** The MySQL account whose privileges applied, `user@host`. */
  mysqlAccount: z.string(),
  proxied: z.boolean(),
  attribution: AttributionSchema.nullable(),
  /** The break-glass grant the session used, if any. */
  breakGlassGrant: z.string().nullable(),
  /** An MFA factor of the sign-on that corroborates the attribution. */
  mfaFactor: z.string().optional(),
  counts: z.object({
    queries: z.number(),
    tableAccess: z.number(),
    changeUser: z.number(),
    failedStatements: z.number(),
  }),
  /** Tables the session read or wrote (`schema.table`, sorted; at most SESSION_TABLES_MAX). */
  tables: z.array(z.string()).optional(),
  /**
   * What a break-glass session ran (statements, SQL with literals redacted and cut at
   * STATEMENT_SQL_MAX characters; at most SESSION_STATEMENTS_MAX).
   */
  statements: z
    .array(z.object({ time: z.string(), command: z.string(), sql: z.string(), status: z.number() }))
    .optional(),
  /** Evidence key of the connect event. */
  connectKey: z.string(),
  /**
   * The last successful `change_user` on the connection: the login, account and attribution are
   * those it authenticated, judged at its time.
   */
  changedUser: z.object({ time: z.string(), ts: z.number(), key: z.string() }).optional(),
});

/** What a login authenticated as and who was behind it: what a `change_user` replaces. */
export const LoginStateSchema = SessionBaseSchema.pick({
  login: true,
  account: true,
  mysqlAccount: true,
  identity: true,
  group: true,
  proxied: true,
  attribution: true,
  breakGlassGrant: true,
  mfaFactor: true,
});
export type LoginState = z.infer<typeof LoginStateSchema>;

/** Who a login named: what a switch's record says it switched from. */
export const SwitchedFromSchema = LoginStateSchema.pick({
  login: true,
  account: true,
  mysqlAccount: true,
  identity: true,
});
export type SwitchedFrom = z.infer<typeof SwitchedFromSchema>;

/**
 * A `change_user` that changed the account or the person: its time and event key, who the
 * connection was before it (`from`), and what it authenticated as (as attributed at its time, and
 * again by late IAM data while it is the session's last `change_user`).
 */
export const SwitchSchema = LoginStateSchema.extend({
  time: z.string(),
  ts: z.number(),
  key: z.string(),
  from: SwitchedFromSchema,
});
export type Switch = z.infer<typeof SwitchSchema>;

export const SessionSchema = SessionBaseSchema.extend({
  /**
   * What the connection first authenticated as, once a `change_user` replaced it (as it was
   * attributed then). Sessions stored before it was kept have none.
   */
  connected: LoginStateSchema.optional(),
  /**
   * With `connected`: the `change_user`s that changed the account or the person, in order (one
   * to the same account and person, as a connection pool makes, is counted in `counts` alone).
   * At most SESSION_SWITCHES_MAX: the first ones and the latest. Sessions stored before it was
   * kept have none.
   */
  switches: z.array(SwitchSchema).optional(),
  /** Switches left out of `switches` (between its last two) once it was full. */
  switchesOmitted: z.number().optional(),
});
/**
 * When a session last did something (epoch ms of its latest event): an open session idle for longer
 * than `retention` is forgotten as open. Not part of the record: a symbol, which JSON leaves out; the
 * stores keep it in a column of its own.
 */
export const LAST_ACTIVITY: unique symbol = Symbol('lastActivity');
export type Session = z.infer<typeof SessionSchema> & { [LAST_ACTIVITY]?: number };

/** When a session last did something: its latest event, or its connect for one that never said. */
export const lastActivity = (s: Session): number => s[LAST_ACTIVITY] ?? s.connectTs;

/**
 * Until when a session was active (epoch ms), from what the ledger keeps of it: a failed login
 * only at its connect; a session that ended, until its end (the disconnect, or the end the server
 * implied: `endReason`) or its last activity when that is later; one still open, until its last
 * activity.
 */
export function activeUntilOf(s: {
  outcome: string;
  connectTs: number;
  disconnectTime: string | null | undefined;
  lastActivity: number | null | undefined;
}): number {
  const last = s.lastActivity ?? s.connectTs;
  if (s.outcome !== 'success') return s.connectTs;
  const end = s.disconnectTime ? Date.parse(s.disconnectTime) : Number.NaN;
  return Number.isFinite(end) ? Math.max(end, last) : last;
}

/** Until when a session was active (activeUntilOf). */
export const activeUntil = (s: Session): number =>
  activeUntilOf({
    outcome: s.outcome,
    connectTs: s.connectTs,
    disconnectTime: s.disconnectTime,
    lastActivity: s[LAST_ACTIVITY],
  });

/** What a session's login authenticated as now: a copy, sharing no object with the session. */
export function loginStateOf(s: Session): LoginState {
  return structuredClone({
    login: s.login,
    account: s.account,
    mysqlAccount: s.mysqlAccount,
    identity: s.identity,
    group: s.group,
    proxied: s.proxied,
    attribution: s.attribution,
    breakGlassGrant: s.breakGlassGrant,
    ...(s.mfaFactor === undefined ? {} : { mfaFactor: s.mfaFactor }),
  });
}

/** A switch as its record shows it; the latest, after switches were left out, says how many. */
export type SessionSwitch = Switch & { omittedBefore?: number };

/**
 * The switches a session has a record of each: those it kept, or for a session stored before they
 * were, its last `change_user` (from what it connected as).
 */
export function sessionSwitches(s: Session): SessionSwitch[] {
  const { switches, switchesOmitted } = s;
  if (switches) {
    if (!switchesOmitted) return switches;
    return switches.map((sw, i) =>
      i === switches.length - 1 ? { ...sw, omittedBefore: switchesOmitted } : sw,
    );
  }
  if (!s.changedUser || !s.connected) return [];
  const { login, account, mysqlAccount, identity } = s.connected;
  return [{ ...s.changedUser, from: { login, account, mysqlAccount, identity }, ...loginStateOf(s) }];
}

/** A planted credential as a login's attribution names it. */
export type PlantedCredentialRef = NonNullable<Attribution['plantedCredentials']>[number];

/**
 * The credentials planted on a person that were in force at any login of the session (its connect,
 * each switch it kept, the last), each once, with the login that first named it.
 */
export function sessionPlantedCredentials(
  s: Session,
): { login: LoginState; credential: PlantedCredentialRef }[] {
  const found = new Map<string, { login: LoginState; credential: PlantedCredentialRef }>();
  for (const login of [s.connected, ...(s.switches ?? []), s])
    for (const credential of login?.attribution?.plantedCredentials ?? [])
      if (!found.has(credential.key)) found.set(credential.key, { login: login!, credential });
  return [...found.values()];
}

/** A session's parts that describe its logins rather than the connection. */
function connectionOf(s: Session): Session {
  const {
    mfaFactor: _mfa,
    changedUser: _change,
    connected: _connected,
    switches: _switches,
    switchesOmitted: _omitted,
    ...rest
  } = s;
  return rest;
}

/** The session as its connect authenticated it, before any `change_user`. */
export function connectedSession(s: Session): Session {
  return s.connected ? { ...connectionOf(s), ...s.connected } : s;
}

/**
 * A switch as its record shows it: the session as the switch authenticated it, who the connection
 * was before it, and their name in a message (the account, and the person when known).
 */
export function switchedLogin(
  s: Session,
  sw: SessionSwitch,
): { session: Session; from: SwitchedFrom; fromName: string } {
  const { time: _time, ts: _ts, key: _key, from, omittedBefore: _omitted, ...state } = sw;
  const fromName = from.identity ? `${from.mysqlAccount} (${from.identity.name})` : from.mysqlAccount;
  return { session: { ...connectionOf(s), ...state }, from, fromName };
}

/** A session's client as one line (`order-service (mysql-connector-java 9.1.0)`), when it named one. */
export function clientLabel(client: Session['client']): string | undefined {
  if (!client) return undefined;
  const library = [client.name, client.version].filter(Boolean).join(' ');
  if (!client.program) return library || undefined;
  return library ? `${client.program} (${library})` : client.program;
}
