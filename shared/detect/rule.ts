// What a rule is: metadata plus small pure handlers over correlated facts, and its own cases.
import type { z } from 'zod';
import type { ResolutionReason, Severity } from '../../schemas/alert.js';
import type { DbSystemConfig } from '../../schemas/config.js';
import type {
  DbEvent,
  GapEvent,
  IamEvent,
  SyncAccountEvent,
  SyncDirectoryEvent,
} from '../../schemas/events.js';
import type { Attribution, Session } from '../../schemas/session.js';
import type { AttributionResult, Ref } from '../correlate/attribute.js';
import { accountName } from '../correlate/mappings.js';
import type { Undone } from '../correlate/reverts.js';
import type { SignOn } from '../correlate/signons.js';
import type { AccountChange, AccountRef, StatementFacts } from '../correlate/sql-facts.js';
import { redactLiterals } from '../normalize/redact.js';
import type { Acknowledged } from '../rules/expected-changes.js';
import type { Baseline, BaselineOptions } from './baselines.js';
import type { RuleCase } from './timeline.js';

/** A successful login, attributed: what session handlers see (failed ones are FailedLoginFact). */
export type OpenedSession = Session & { outcome: 'success'; attribution: Attribution };

/** The login a session fact judges: the connect, or the last change_user (`Session.changedUser`). */
export type Authentication = { ts: number; key: string };

export function authenticationOf(s: Session): Authentication {
  return s.changedUser
    ? { ts: s.changedUser.ts, key: s.changedUser.key }
    : { ts: s.connectTs, key: s.connectKey };
}

/**
 * A session was opened (or re-attributed by late IAM data, or by CHANGE USER). Rules judge it at
 * `authenticated`, and tell a change_user's finding from the connect's by `loginOccurrence`.
 */
export type SessionFact = {
  session: OpenedSession;
  result: AttributionResult;
  db: DbSystemConfig | undefined;
  authenticated: Authentication;
  /** The break-glass grant the session used: its start and maximum duration. */
  breakGlass?: { grant: string; startTs: number; maxDuration: number };
  /**
   * The person's IAM sign-on behind the session: the one that corroborated the attribution
   * (`corroborates`), else their latest successful sign-on within the token lifetime.
   */
  signOn?: SignOn & { corroborates: boolean };
  /**
   * Late IAM data changed the session's attribution (it was judged before): `from` is the person
   * it was judged as then (null: nobody was named).
   */
  reattributed?: { from: Session['identity'] };
};

/** An alert occurrence per login of a session: `base` for its connect, `base@<change_user key>` after one. */
export function loginOccurrence(f: SessionFact, base: string): string {
  return f.session.changedUser ? `${base}@${f.authenticated.key}` : base;
}

/** What ended a person's access: a removal from a group, or the user deleted or deactivated. */
export type Revocation = { ts: number; key: string; why: string };

/** A session that ran a statement after its person's access was revoked (Correlator.checkRevoked). */
export type RevokedActivityFact = {
  session: OpenedSession;
  /** The session's first statement after the revocation. */
  event: DbEvent;
  revocation: Revocation;
};

/**
 * A statement that changed privileges, mappings or the audit configuration; or an account change
 * between two snapshots that no statement explains (`event.source` is `sync`: observed, not audited).
 */
export type StatementFact = {
  event: DbEvent | SyncAccountEvent;
  session: Session | undefined;
  db: DbSystemConfig | undefined;
  facts: StatementFacts;
  /** Account changes that touch an authentication_oci account (before or after the change). */
  mappingChanges: AccountChange[];
  /** Earlier mapping changes this statement undoes (see `Reverts`). */
  reverts: Reverts;
  /** Proxied accounts (group mapping targets) the statement opens to logins without IAM. */
  bypassesIam?: AccountRef[];
  /**
   * Accounts the group mappings a mapping change added (a group mapped or remapped to an account)
   * name that are open to logins without IAM then: the group's logins to them are taken for local
   * ones. `since` is the key of the statement or snapshot since which each has been open.
   */
  mappedToOpen?: MappedToOpen[];
};

/** An account open to logins without IAM that a group mapping names (`StatementFact.mappedToOpen`). */
export type MappedToOpen = { groupId: string; account: AccountRef; since: string };

/**
 * Earlier changes that a change undoes (event key and kind): the latest changes of the same thing,
 * back to one whose state before equals the state after this change. `complete` when the change
 * only restores earlier states (every thing it touched is back to a state it had).
 */
export type Reverts = { undone: Undone[]; complete: boolean };

/** A failed login (connect with a non-zero status). */
export type FailedLoginFact = { session: Session };

export type GroupInfo = Ref & {
  breakGlass: boolean;
  /** DB systems and MySQL accounts the group maps to, and whether each is privileged. */
  mappedAccounts: { db: string; account: string; privileged: boolean }[];
};

/**
 * An IAM event, with what the directory knows of its user and group; or a membership or user
 * state change between two snapshots that no IAM event explains (`event.source` is `sync`).
 */
export type IamFact = {
  event: IamEvent | SyncDirectoryEvent;
  user?: Ref;
  /** The directory user who made the change, when the directory knows them (by id, else by name). */
  actor?: Ref;
  group?: GroupInfo;
  /** For policy events: earlier changes of the policy this one undoes. */
  reverts?: Reverts;
  /** For policy events: the policy's version recorded before this one granted database authentication. */
  grantedBefore?: boolean;
  /** For credential changes: the MySQL accounts the user can log in to then (`group`: through that group). */
  reach?: { db: string; account: string; privileged: boolean; group?: string }[];
  /**
   * For a credential created on another's user: the entry of `rules.iam.credential-change.expected`
   * that acknowledges it. Decided once, by the correlator, which then does not follow the credential
   * into the user's sessions; the rule resolves its alert at once.
   */
  expected?: Acknowledged;
  /** For DB system changes: the configured DB system the change touched, if it is one. */
  db?: DbSystemConfig;
};

/**
 * Whether the user an IAM event is about made it themselves: the directory resolves an actor named
 * by name, or by another of their ids, to the user.
 */
export function madeBySelf({ event, user, actor }: IamFact): boolean {
  return user !== undefined && (actor?.id ?? event.actor.id) === user.id;
}

/** A break-glass grant that reached its maximum duration still open (fired from the watermark). */
export type GrantExpiredFact = {
  grant: string;
  user: Ref;
  group: Ref;
  startTs: number;
  deadlineTs: number;
};

/** A break-glass membership was removed (whether or not its maximum duration had passed). */
export type GrantEndedFact = GrantExpiredFact & { endTs: number; removal: string };

/** Part of an audit trail could not be read (shared/sources/audit-log-reader.ts, delivery outages). */
export type GapFact = { event: GapEvent; db: DbSystemConfig | undefined };

export type FindingIdentity = {
  principalId: string | null;
  name: string | null;
  attribution: Session['attribution'];
};

export type Finding = {
  /** What the alert is about; with `occurrence` it makes the alert id. */
  subject: string;
  occurrence: string;
  ts: number;
  title: string;
  severity?: Severity;
  identity?: FindingIdentity | null;
  dbSystem?: Ref | null;
  mysqlAccount?: string;
  loginUser?: string;
  group?: Ref;
  /** Who made the change, when that is not `identity` (Alert.actor). */
  actor?: { principalId: string | null; name: string | null };
  sourceIp?: string;
  client?: Session['client'];
  evidence: string[];
  details?: Record<string, unknown>;
};

/**
 * The end of a finding: the alert of (`subject`, `occurrence`) of the same rule, if one was raised,
 * gets a resolution record (same id, `status: resolved`). Nothing happens when there is no such
 * alert or it is already resolved.
 */
export type Resolution = {
  resolves: { subject: string; occurrence: string };
  ts: number;
  reason: ResolutionReason;
  note: string;
  evidence: string[];
};

/** What a handler returns: new findings, and ends of earlier ones. */
export type Outcome = Finding | Resolution;

export function isResolution(o: Outcome): o is Resolution {
  return 'resolves' in o;
}

export type RuleContext<P> = {
  params: P;
  /**
   * Counts occurrences under `key` in (ts - window, ts], including this one (keyed by `id`), kept
   * with `tag` when given; `tags`: those of the occurrences counted, oldest first (built when read,
   * so read them before counting under the same key again).
   */
  countInWindow(
    key: string,
    id: string,
    ts: number,
    window: number,
    tag?: string,
  ): { count: number; first: string; tags: string[] };
  /** The rule's first-seen memory of `subject` (kept in the state store, expiring, bounded). */
  baseline(subject: string, opts: BaselineOptions): Baseline;
};

export type Handlers<P> = {
  session?: (fact: SessionFact, ctx: RuleContext<P>) => Outcome[];
  revokedActivity?: (fact: RevokedActivityFact, ctx: RuleContext<P>) => Outcome[];
  statement?: (fact: StatementFact, ctx: RuleContext<P>) => Outcome[];
  failedLogin?: (fact: FailedLoginFact, ctx: RuleContext<P>) => Outcome[];
  iam?: (fact: IamFact, ctx: RuleContext<P>) => Outcome[];
  grantExpired?: (fact: GrantExpiredFact, ctx: RuleContext<P>) => Outcome[];
  grantEnded?: (fact: GrantEndedFact, ctx: RuleContext<P>) => Outcome[];
  gap?: (fact: GapFact, ctx: RuleContext<P>) => Outcome[];
};

export type RuleDefinition<P = unknown> = {
  id: string;
  title: string;
  description: string;
  severity: Severity;
  /** MITRE ATT&CK technique ids. */
  attack: string[];
  runbook: string;
  falsePositives: string[];
  /** Parameters with defaults; `rules.<id>` in the config overrides them. */
  params: z.ZodType<P>;
  /** Findings of one subject within this many ms merge into the first alert (0: never). */
  suppressFor: number;
  on: Handlers<P>;
  cases: RuleCase[];
};

/** Keeps the rule's parameter type while registering it as a plain definition. */
export function defineRule<P>(rule: RuleDefinition<P>): RuleDefinition<P> {
  return rule;
}

export function sessionIdentity(s: Session): FindingIdentity | null {
  return s.identity
    ? { principalId: s.identity.id, name: s.identity.name, attribution: s.attribution }
    : null;
}

/** A session on an account the DB system lists as privileged, or through a break-glass group. */
export function privilegedSession(f: SessionFact): boolean {
  return f.breakGlass !== undefined || (f.db?.privilegedAccounts.includes(f.session.account.user) ?? false);
}

/** The alert fields every session-based finding shares. */
export function sessionFields(
  s: Session,
): Pick<Finding, 'identity' | 'dbSystem' | 'mysqlAccount' | 'loginUser'> &
  Partial<Pick<Finding, 'group' | 'sourceIp' | 'client'>> {
  return {
    identity: sessionIdentity(s),
    dbSystem: s.dbSystem,
    mysqlAccount: s.mysqlAccount,
    loginUser: s.login.user,
    ...(s.group ? { group: s.group } : {}),
    ...(s.sourceIp ? { sourceIp: s.sourceIp } : {}),
    ...(s.client ? { client: s.client } : {}),
  };
}

/** The alert fields of a statement finding: its session's, or what the statement itself says. */
export function statementFields(
  f: StatementFact,
): ReturnType<typeof sessionFields> | Pick<Finding, 'identity' | 'dbSystem' | 'mysqlAccount'> {
  if (f.session) return sessionFields(f.session);
  const { event } = f;
  return {
    identity: null,
    dbSystem: { id: event.dbSystemId, name: f.db?.name ?? event.dbSystemId },
    ...(event.source === 'mysql' && event.account ? { mysqlAccount: accountName(event.account) } : {}),
  };
}

/**
 * `via`: how a statement's privilege or tamper facts come about when they are not its own: the body
 * of a stored program it creates, the statement it prepares, or one held in a user variable.
 */
export function deferredVia(facts: StatementFacts): { via?: string } {
  if (facts.storedProgram) return { via: 'stored program' };
  if (facts.prepared) return { via: 'prepared statement' };
  return facts.held ? { via: 'user variable' } : {};
}

/** The statement's SQL with literals redacted; empty for a change no statement explains. */
export function statementSql(f: StatementFact): string {
  return f.event.source === 'mysql' ? redactLiterals(f.event.sql?.text ?? '') : '';
}
