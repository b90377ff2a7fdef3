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
 * replacement); `log-reset`: its instance's log went back in time (a restored or replaced server).
 * For the last two the end is the audit gap's time: the last event read from the server before.
 */
export const SESSION_END_REASONS = [
  'server-shutdown',
  'server-restart',
  'server-changed',
  'log-reset',
] as const;
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

/** Bounds on what a session record keeps of its activity (the counts count everything). */
export const SESSION_TABLES_MAX = 100;
export const SESSION_STATEMENTS_MAX = 50;
export const STATEMENT_SQL_MAX = 500;
/** Longest `schema.table` name kept (MySQL's are at most 64 + 1 + 64 characters). */
export const TABLE_NAME_MAX = 200;

export const RefSchema = z.object({ id: z.string(), name: z.string() });

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

export const SessionSchema = SessionBaseSchema.extend({
  /**
   * What the connection first authenticated as, once a `change_user` replaced it (as it was
   * attributed then). Sessions stored before it was kept have none.
   */
  connected: LoginStateSchema.optional(),
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

/** A session whose connect and last `change_user` are two logins, each with its own record. */
export type ChangedSession = Session & {
  changedUser: NonNullable<Session['changedUser']>;
  connected: LoginState;
};

export function isChanged(s: Session): s is ChangedSession {
  return s.changedUser !== undefined && s.connected !== undefined;
}

/** The session as its connect authenticated it, before any `change_user`. */
export function connectedSession(s: Session): Session {
  if (!s.connected) return s;
  const { mfaFactor: _mfa, changedUser: _change, connected, ...rest } = s;
  return { ...rest, ...connected };
}
