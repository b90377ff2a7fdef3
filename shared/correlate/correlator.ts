// Applies canonical events, in event-time order, to the correlation models (directory, memberships,
// mappings, sign-ons, sessions, break-glass grants) and hands the resulting facts to the detector.
import type { Config, DbSystemConfig } from '../../schemas/config.js';
import type {
  CanonicalEvent,
  DbEvent,
  GapEvent,
  IamEvent,
  SyncAccountEvent,
  SyncDirectoryEvent,
  SyncEvent,
} from '../../schemas/events.js';
import {
  CLIENT_FIELD_MAX,
  LAST_ACTIVITY,
  lastActivity,
  loginStateOf,
  SESSION_STATEMENTS_MAX,
  SESSION_SWITCHES_MAX,
  SESSION_TABLES_MAX,
  type Session,
  type SessionEndReason,
  STATEMENT_SQL_MAX,
  type Switch,
  sessionSwitches,
  TABLE_NAME_MAX,
} from '../../schemas/session.js';
import type { Detector } from '../detect/detector.js';
import {
  authenticationOf,
  type IamFact,
  type MappedToOpen,
  madeBySelf,
  type OpenedSession,
  type Reverts,
  type Revocation,
  type SessionFact,
} from '../detect/rule.js';
import { Memo } from '../memo.js';
import { redactLiterals } from '../normalize/redact.js';
import {
  type Acknowledged,
  type ExpectedCredential,
  expectedCredential,
  expectedCredentialsOf,
} from '../rules/expected-changes.js';
import type { EntityCache } from '../state/entity-cache.js';
import { cutAt } from '../text.js';
import { toIso } from '../time.js';
import { type AttributionResult, attribute, type Models } from './attribute.js';
import { recordDbCatalog } from './db-catalog.js';
import { Directory, type DirectorySeed, type UserState } from './directory.js';
import {
  type AccountSeed,
  accountKey,
  accountName,
  type GroupTarget,
  type LockState,
  Mappings,
  nameKey,
  OCI_PLUGIN,
  reaches,
  SNAPSHOT_SEED,
} from './mappings.js';
import { type MembershipSeed, Memberships } from './memberships.js';
import { OpenSessions } from './open-sessions.js';
import { PlantedCredentials } from './planted-credentials.js';
import { Policies } from './policies.js';
import { SignOns } from './signons.js';
import { type AccountChange, type AccountRef, hasFacts, statementFacts } from './sql-facts.js';

type Credential = NonNullable<IamEvent['credential']>;

/** What a seed brings (the configuration, a snapshot part new to this state): all under one key. */
export type Seed = DirectorySeed & {
  memberships: MembershipSeed[];
  accounts: AccountSeed[];
  /** The lock states a later snapshot read of accounts it does not seed (`Mappings.observeLock`), at `time`. */
  lockStates?: SnapshotLockStates;
};

/** A later snapshot's lock states, with the snapshot before it (the window of what changed unaudited). */
export type SnapshotLockStates = {
  snapshot: string;
  previous: { id: string; time: string };
  accounts: LockState[];
};

/** Keys of the configuration's seeds; a snapshot's are `snapshot:<id>`. */
const CONFIG_DIRECTORY = 'config:directory';
const CONFIG_ACCOUNTS = 'config:dbSystems';

/** A break-glass membership: opened by an add event (or the snapshot), closed by a removal. */
export type GrantRow = {
  id: string;
  addKey: string;
  user: string;
  group: string;
  startTs: number;
  deadlineTs: number;
  done: boolean;
};

const GRANT = 'grant';
/** A snapshot's lock states, waiting for the watermark to pass its time (`Mappings.observeLock`). */
const SNAPSHOT_LOCKS = 'snapshot-locks';
type SnapshotLocks = SnapshotLockStates & { ts: number; key: string };
/** When audited statements last targeted an account: a snapshot's account drift they explain is not drift. */
const ACCOUNT_AUDIT = 'account-audit';
const ACCOUNT_AUDIT_KEEP = 8;
/** A server's last shutdown record not yet followed by its startup, by DB system and instance. */
const SERVER_STOP = 'server-stop';
type ServerStop = { ts: number; time: string };

/**
 * Whether an audit gap ends the sessions open on its instance: `server-changed` (another server
 * answers there). Not `log-reset`: the log is then read again from its start, and the sessions of
 * the log that answers now, all older than the gap, cannot be told by time from those before it.
 */
export function gapEndsSessions(ev: GapEvent): boolean {
  return ev.trail === 'mysql-audit' && ev.dbSystemId !== undefined && ev.reason === 'server-changed';
}

export type CorrelatorStats = {
  /** Membership events whose user or group could not be determined (not applied). */
  unresolvedMemberships: number;
  /** Membership events naming a group the directory does not know by OCID, domain id or name (applied under the id they give). */
  unknownGroups: number;
  /** MySQL events of connections whose connect is not in the input (or incomplete connects). */
  orphanEvents: number;
  /** Changes between two snapshots that no audit event explains: observed, not audited. */
  drift: number;
  /** Changes between two snapshots that audit events had already applied. */
  audited: number;
};

export class Correlator {
  readonly models: Models;
  readonly stats: CorrelatorStats = {
    unresolvedMemberships: 0,
    unknownGroups: 0,
    orphanEvents: 0,
    drift: 0,
    audited: 0,
  };
  private dbs: Map<string, DbSystemConfig>;
  private readonly open = new OpenSessions();
  /** Sessions that late IAM data may still re-attribute (connected within the lookback). */
  private recent: Session[] = [];
  /** Sessions changed since the last drain, to write in full. */
  private dirty = new Map<string, Session>();
  /** Sessions written before whose counts alone changed since, or their counts and disconnect (see `drainSessions`). */
  private counted = new Map<string, Session>();
  private nextDeadline = Number.POSITIVE_INFINITY;
  private readonly policies: Policies;
  private readonly expectedCredentials: readonly ExpectedCredential[];

  constructor(
    private readonly cache: EntityCache,
    private readonly config: Config,
    private readonly detector: Detector,
  ) {
    this.dbs = new Map(config.dbSystems.map((d) => [d.id, d]));
    this.models = {
      directory: new Directory(cache),
      memberships: new Memberships(cache),
      mappings: new Mappings(cache),
      signOns: new SignOns(cache),
      credentials: new PlantedCredentials(cache, config.retention),
    };
    this.policies = new Policies(cache);
    this.mergeAuditedHostsByCase();
    this.expectedCredentials = expectedCredentialsOf(config);
    for (const seed of configSeeds(config)) this.seed(seed);
    recordDbCatalog(cache, config.dbSystems);
    this.computeNextDeadline();
  }

  /** Adds what a seed brings; idempotent (by its key). Break-glass memberships open their grant. */
  seed(seed: Seed): void {
    const { directory, memberships, mappings } = this.models;
    directory.seed(seed);
    memberships.seed(seed.key, seed.memberships);
    mappings.seed(seed.key, seed.accounts, seed.time);
    if (
      seed.time !== undefined &&
      seed.lockStates?.accounts.length &&
      !this.cache.get(SNAPSHOT_LOCKS, seed.key)
    ) {
      this.cache.set<SnapshotLocks>(SNAPSHOT_LOCKS, seed.key, {
        ...seed.lockStates,
        ts: seed.time,
        key: seed.key,
      });
      this.nextDeadline = Math.min(this.nextDeadline, seed.time);
    }
    for (const m of seed.memberships) {
      const bg = directory.group(m.group)?.breakGlassMs;
      const start = m.since ?? seed.time;
      if (bg === undefined || start === undefined) continue;
      if (memberships.changes(m.user, m.group).some((c) => c.key === seed.key))
        this.openGrant(seed.key, m.user, m.group, start, bg);
    }
  }

  /** The DB systems as configured (after a new snapshot's discoveries were merged in). */
  useDbSystems(dbSystems: readonly DbSystemConfig[]): void {
    this.dbs = new Map(dbSystems.map((d) => [d.id, d]));
    recordDbCatalog(this.cache, dbSystems);
  }

  /** Restores sessions read from the store: open ones and those within the lookback. */
  restoreSessions(sessions: Session[]): void {
    for (const s of sessions) {
      if (s.outcome === 'success' && s.disconnectTime === undefined) this.open.set(s);
      this.recent.push(s);
    }
    this.recent.sort((a, b) => a.connectTs - b.connectTs);
  }

  /** Applies one event. `late` marks an event older than what was already released. */
  process(event: CanonicalEvent, late: boolean): void {
    if (event.source === 'mysql') this.processDb(event);
    else if (event.source === 'iam') this.processIam(event, late);
    else if (event.source === 'sync') this.processSync(event, late);
    else {
      if (gapEndsSessions(event))
        this.endServer(
          event.dbSystemId!,
          event.primary ? undefined : event.instance,
          event,
          'server-changed',
        );
      this.detector.run('gap', { event, db: event.dbSystemId ? this.dbs.get(event.dbSystemId) : undefined });
    }
  }

  /**
   * Fires break-glass timers whose deadline the watermark has passed, and records the lock states
   * of snapshots whose time it has passed (every statement up to then applied).
   */
  fireTimers(upTo: number): void {
    if (upTo < this.nextDeadline) return;
    const { memberships, directory, mappings } = this.models;
    const seen = [...this.cache.values<SnapshotLocks>(SNAPSHOT_LOCKS)]
      .filter((l) => l.ts <= upTo)
      .sort((a, b) => a.ts - b.ts || (a.key < b.key ? -1 : 1));
    for (const l of seen) {
      this.cache.delete(SNAPSHOT_LOCKS, l.key);
      const recorded = l.accounts.filter((a) => mappings.observeLock(a, l.ts, l.key));
      // Sessions already attributed after its time (a snapshot followed late) are again.
      if (recorded.length > 0) this.reevaluate(l.ts, true);
      for (const a of recorded) this.openedBySnapshot(l, a);
    }
    const due = [...this.cache.values<GrantRow>(GRANT)]
      .filter((g) => !g.done && g.deadlineTs <= upTo)
      .sort((a, b) => a.deadlineTs - b.deadlineTs || (a.id < b.id ? -1 : 1));
    for (const g of due) {
      g.done = true;
      this.cache.touch(GRANT, g.id);
      if (memberships.stateAt(g.user, g.group, g.deadlineTs)?.key !== g.addKey) continue;
      this.detector.run('grantExpired', {
        grant: g.id,
        user: { id: g.user, name: directory.user(g.user)?.name ?? g.user },
        group: { id: g.group, name: directory.group(g.group)?.name ?? g.group },
        startTs: g.startTs,
        deadlineTs: g.deadlineTs,
      });
    }
    this.computeNextDeadline();
  }

  /**
   * Forgets closed sessions that connected before `before` (they stay in the store), and open
   * ones idle for longer than the retention, whose disconnect was never seen (bounded memory).
   */
  evict(before: number): void {
    const stale = before + this.config.lookback - this.config.retention;
    this.open.deleteWhere((s) => lastActivity(s) < stale);
    // A connection applied up to the retention late is attributed as it would have been on time.
    this.models.signOns.prune(stale - this.config.tokenLifetime);
    this.models.credentials.prune(stale);
    this.models.mappings.compact(stale);
    if (this.recent.length === 0 || this.recent[0]!.connectTs >= before) return;
    this.recent = this.recent.filter((s) => s.connectTs >= before || this.open.isOpen(s));
  }

  /**
   * Sessions changed since the last call: in full, and (`counted`) those whose only change was to
   * their counts, or to their counts and their disconnect (CommitBatch.counted). A session not in
   * the last drain's full list was written before: it was restored from the store, or drained by
   * an earlier call (whose commit, if it failed, ended the pipeline).
   */
  drainSessions(): { sessions: Session[]; counted: Session[] } {
    const sessions = [...this.dirty.values()];
    const counted: Session[] = [];
    for (const [id, s] of this.counted) if (!this.dirty.has(id)) counted.push(s);
    this.dirty = new Map();
    this.counted = new Map();
    return { sessions, counted };
  }

  get openSessions(): number {
    return this.open.size;
  }

  // --- MySQL events ---------------------------------------------------------------------------

  private processDb(ev: DbEvent): void {
    switch (ev.kind) {
      case 'server_start':
        this.endServer(ev.dbSystemId, ev.instance, ev, 'server-restart');
        return;
      case 'server_stop':
        // Its sessions end when it starts again: the server may still log their disconnects.
        this.cache.set<ServerStop>(SERVER_STOP, serverKey(ev.dbSystemId, ev.instance), {
          ts: ev.ts,
          time: ev.time,
        });
        return;
      case 'connect':
        this.connect(ev);
        return;
      case 'change_user':
        this.changeUser(ev);
        return;
      case 'disconnect': {
        const s = this.sessionOf(ev);
        if (!s) return;
        s.disconnectTime = ev.time;
        this.open.delete(s);
        // Its last key: a session written before needs only its columns to say it closed.
        this.counted.set(s.id, s);
        return;
      }
      case 'query':
      case 'table_access':
        this.statement(ev);
        return;
      default:
        return;
    }
  }

  /**
   * The server of an instance no longer holds its sessions (it started again, or another server
   * answers there): each session still open there that connected before `at` ends, at the server's
   * shutdown record when one came after the session's last event, else at `at` (the startup, the
   * gap), with the reason. Those that connected at `at` or later are the new server's: a startup
   * applied late comes after them, and a gap's time is the last second read from the old server,
   * which the new one may have logged in too.
   */
  private endServer(
    dbSystemId: string,
    instance: string | undefined,
    at: { ts: number; time: string },
    reason: SessionEndReason,
  ): void {
    const key = serverKey(dbSystemId, instance);
    const stop = this.cache.get<ServerStop>(SERVER_STOP, key);
    if (stop !== undefined) this.cache.delete(SERVER_STOP, key);
    for (const s of this.open.closeServer(dbSystemId, instance, at.ts)) {
      const stopped = stop !== undefined && stop.ts >= lastActivity(s);
      s.disconnectTime = stopped ? stop.time : at.time;
      s.endReason = stopped ? 'server-shutdown' : reason;
      this.touch(s);
    }
  }

  private connect(ev: DbEvent): void {
    if (ev.connectionId === null || !ev.account || !ev.login) {
      this.stats.orphanEvents++;
      return;
    }
    const db = this.dbs.get(ev.dbSystemId);
    const session: Session = {
      id: `${ev.instance === undefined ? ev.dbSystemId : `${ev.dbSystemId}/${ev.instance}`}:${ev.connectionId}:${ev.time}`,
      dbSystem: { id: ev.dbSystemId, name: db?.name ?? ev.dbSystemName ?? ev.dbSystemId },
      connectionId: ev.connectionId,
      connectTime: ev.time,
      connectTs: ev.ts,
      outcome: ev.status === 0 ? 'success' : 'failed',
      status: ev.status,
      login: ev.login,
      account: ev.account,
      mysqlAccount: accountName(ev.account),
      identity: null,
      group: null,
      proxied: false,
      attribution: null,
      breakGlassGrant: null,
      counts: { queries: 0, tableAccess: 0, changeUser: 0, failedStatements: 0 },
      connectKey: ev.key,
      [LAST_ACTIVITY]: ev.ts,
    };
    if (ev.instance !== undefined) session.instance = ev.instance;
    if (ev.login.ip) session.sourceIp = ev.login.ip;
    if (ev.connectionType) session.connectionType = ev.connectionType;
    const client = clientOf(ev.attributes);
    if (client) session.client = client;
    this.touch(session);
    this.recent.push(session);
    if (session.outcome === 'failed') {
      this.detector.run('failedLogin', { session });
      return;
    }
    this.open.set(session);
    this.attributeAndDetect(session, db);
  }

  private changeUser(ev: DbEvent): void {
    const s = this.sessionOf(ev);
    if (!s || !ev.account || !ev.login || ev.status !== 0) return;
    // Who the connection was: objects the change replaces, never changes, so kept as they are.
    const { login, account, mysqlAccount, identity } = s;
    // A session stored before switches were kept has its last change_user's as its first.
    s.switches ??= sessionSwitches(s);
    s.connected ??= loginStateOf(s);
    s.account = ev.account;
    s.login = ev.login;
    s.mysqlAccount = accountName(ev.account);
    s.counts.changeUser++;
    s.changedUser = { time: ev.time, ts: ev.ts, key: ev.key };
    active(s, ev.ts);
    this.attributeAndDetect(s, this.dbs.get(ev.dbSystemId));
    if (s.mysqlAccount === mysqlAccount && s.identity?.id === identity?.id) return;
    keepSwitch(s, {
      time: ev.time,
      ts: ev.ts,
      key: ev.key,
      from: { login, account, mysqlAccount, identity },
      ...loginStateOf(s),
    });
  }

  /**
   * Counts the first `n` of a connection's statements on their session, and notes its last activity,
   * with one lookup: all that routine statements do (shared/decode/statement-runs.ts). Returns the
   * session, if it is open.
   */
  statements(run: readonly DbEvent[], n: number): Session | undefined {
    const session = this.sessionOf(run[0]!);
    if (!session) {
      this.stats.orphanEvents += n;
      return undefined;
    }
    const { counts } = session;
    let noted = false;
    for (let i = 0; i < n; i++) {
      const ev = run[i]!;
      if (ev.kind === 'table_access') counts.tableAccess++;
      else counts.queries++;
      if (ev.status !== 0) counts.failedStatements++;
      if (noteActivity(session, ev)) noted = true;
    }
    active(session, run[n - 1]!.ts);
    if (noted) this.touch(session);
    else this.counted.set(session.id, session);
    if (session.identity !== null) this.checkRevoked(session, run, n);
    return session;
  }

  /**
   * A session whose person lost the access it authenticated with (left the group it resolved
   * through, or was deleted or deactivated) and that runs statements after that: MySQL does not
   * end a session when IAM revokes access, so the session goes on. Raised at the first statement
   * after the revocation; a session that was a revoked login already is its connect's finding.
   */
  private checkRevoked(session: Session, run: readonly DbEvent[], n: number): void {
    if (session.attribution?.problem !== undefined) return;
    const revocation = this.revocationAt(session, run[n - 1]!.ts);
    if (revocation === undefined) return;
    const event = run.slice(0, n).find((ev) => ev.ts > revocation.ts);
    if (event) this.detector.run('revokedActivity', { session: session as OpenedSession, event, revocation });
  }

  /** The revocation in force at `ts` of the access a session authenticated with, if any. */
  private revocationAt(s: Session, ts: number): Revocation | undefined {
    const person = s.identity!;
    const since = authenticationOf(s).ts;
    const { memberships, directory } = this.models;
    const left = s.group ? memberships.stateAt(person.id, s.group.id, ts) : undefined;
    if (left?.op === 'remove' && left.ts > since)
      return { ts: left.ts, key: left.key, why: `left group ${s.group!.name}` };
    const state = directory.userStateAt(person.id, ts);
    if (state.state !== 'active' && state.key && state.ts !== undefined && state.ts > since)
      return { ts: state.ts, key: state.key, why: `IAM user ${state.state}` };
    return undefined;
  }

  private statement(ev: DbEvent): void {
    const session = this.statements([ev], 1);
    if (ev.kind !== 'query' || !ev.sql) return;
    const facts = statementFacts(ev);
    if (!hasFacts(facts)) return;
    const { mappings } = this.models;
    const targets = [...(facts.privilege?.targets ?? []), ...(facts.accounts ?? []).map((c) => c.account)];
    for (const target of targets) this.noteAudited(ev.dbSystemId, target, ev.ts);
    const mappingChanges: AccountChange[] = [];
    const bypassesIam: AccountRef[] = [];
    const parts = facts.accounts ?? [];
    const mappedBefore = parts.length > 0 ? mappings.groupTargets(ev.dbSystemId, ev.ts) : [];
    for (const [i, change] of parts.entries()) {
      const before = mappings.versionAt(ev.dbSystemId, change.account, ev.ts);
      const touchesOci =
        before?.plugin === OCI_PLUGIN || ('plugin' in change && change.plugin === OCI_PLUGIN);
      // A change MySQL skips (CREATE USER IF NOT EXISTS of an account that exists, ALTER USER IF
      // EXISTS of one that does not) changes no mapping and opens nothing.
      if (!mappings.apply(ev.dbSystemId, change, ev.ts, ev.key, parts.length > 1 ? i : undefined)) continue;
      if (touchesOci) mappingChanges.push(change);
      const opened = this.openedToDirectLogin(ev, change);
      if (opened) bypassesIam.push(opened);
    }
    this.detector.run('statement', {
      event: ev,
      session,
      db: this.dbs.get(ev.dbSystemId),
      facts,
      mappingChanges,
      reverts: this.mappingReverts(ev, mappingChanges),
      bypassesIam,
      mappedToOpen: mappingChanges.length > 0 ? this.mappedToOpen(ev.dbSystemId, ev.ts, mappedBefore) : [],
    });
  }

  /**
   * The accounts open to logins without IAM at `ts` that a group mapping added since `before` (the
   * entries in force before the change: a group mapped, or remapped, to an account) names: an
   * opening earlier than the mapping raised nothing about the group, whose logins to it are now
   * taken for local ones.
   */
  private mappedToOpen(db: string, ts: number, before: readonly GroupTarget[]): MappedToOpen[] {
    const { mappings } = this.models;
    // An account the group reached before, by any entry (one naming its user alone reaches every
    // host), is not newly mapped: a target named another way (`dev_proxy` as `dev_proxy@%`) adds nothing.
    const reachedBefore = (groupId: string, account: AccountRef) =>
      before.some((m) => m.groupId === groupId && reaches(m.target, account));
    const out: MappedToOpen[] = [];
    for (const { groupId, target } of mappings.groupTargets(db, ts))
      for (const { account, since } of mappings.openAccountsOf(db, target, ts))
        if (!reachedBefore(groupId, account)) out.push({ groupId, account, since: since.key });
    return out;
  }

  /**
   * The proxied account (a group mapping's target) an applied account change left open to logins
   * without IAM (`Mappings.directLoginAt`), when the change is one that opens: a password, another
   * plugin, ACCOUNT UNLOCK, an account of its user name created unlocked (on any host), or renamed
   * onto it. ACCOUNT LOCK, DROP USER or mysql_no_login close it again.
   */
  private openedToDirectLogin(
    ev: { dbSystemId: string; ts: number },
    change: AccountChange,
  ): AccountRef | undefined {
    if (change.op === 'drop') return undefined;
    const { mappings } = this.models;
    const account = change.op === 'rename' ? change.to : change.account;
    const opens =
      change.op !== 'alter' ||
      change.password === true ||
      change.locked === false ||
      (change.plugin !== undefined && change.plugin !== OCI_PLUGIN);
    return opens &&
      mappings.proxiedTarget(ev.dbSystemId, account.user, ev.ts) &&
      mappings.directLoginAt(ev.dbSystemId, account, ev.ts)
      ? account
      : undefined;
  }

  /** The earlier mapping changes a statement undoes, account by account (a rename touches two). */
  private mappingReverts(
    ev: { dbSystemId: string; key: string },
    changes: readonly AccountChange[],
  ): Reverts {
    const touched = changes.flatMap((c) => (c.op === 'rename' ? [c.account, c.to] : [c.account]));
    const undone = touched.map((a) => this.models.mappings.undoneBy(ev.dbSystemId, a, ev.key));
    const byKey = new Map(undone.flat().map((u) => [u.key, u]));
    return {
      undone: [...byKey.values()],
      complete: undone.length > 0 && undone.every((list) => list.length > 0),
    };
  }

  private sessionOf(ev: DbEvent): Session | undefined {
    return ev.connectionId === null ? undefined : this.open.get(ev.dbSystemId, ev.instance, ev.connectionId);
  }

  private attributeAndDetect(session: Session, db: DbSystemConfig | undefined): void {
    const result = this.attributeLogin(session);
    this.applyResult(session, result);
    this.detector.run('session', this.sessionFact(session, result, db));
  }

  /** Who was behind the session's login (its connect, or its last change_user) when it authenticated. */
  private attributeLogin(s: Session): AttributionResult {
    const { ts, key } = authenticationOf(s);
    return attribute(
      { db: s.dbSystem.id, ts, key, login: s.login, account: s.account },
      this.models,
      this.config.tokenLifetime,
    );
  }

  private applyResult(session: Session, r: AttributionResult): void {
    session.identity = r.identity;
    session.group = r.group;
    session.proxied = r.proxied;
    session.attribution = r.attribution;
    session.breakGlassGrant = this.grantFor(r)?.id ?? null;
    if (r.signOn?.mfaFactor) session.mfaFactor = r.signOn.mfaFactor;
    else delete session.mfaFactor;
    const planted = r.attribution.plantedCredentials;
    if (r.identity && planted)
      this.models.credentials.noteUse(
        r.identity.id,
        planted.map((p) => p.key),
        authenticationOf(session).ts,
      );
    // The last change_user's switch says what it authenticated as, as the session does.
    const { switches, changedUser } = session;
    const latest = switches?.at(-1);
    if (switches && latest && latest.key === changedUser?.key) {
      const { time, ts, key, from } = latest;
      switches[switches.length - 1] = { time, ts, key, from, ...loginStateOf(session) };
    }
    this.touch(session);
  }

  private sessionFact(
    session: Session,
    result: AttributionResult,
    db: DbSystemConfig | undefined,
  ): SessionFact {
    // Only successful logins get here, and applyResult has just set their attribution.
    const authenticated = authenticationOf(session);
    const fact: SessionFact = { session: session as OpenedSession, result, db, authenticated };
    const signOn = result.identity
      ? (result.signOn ??
        this.models.signOns.latestBefore(
          result.identity.id,
          authenticated.ts,
          this.config.tokenLifetime,
          undefined,
        ))
      : undefined;
    if (signOn) fact.signOn = { ...signOn, corroborates: signOn === result.signOn };
    const grant = this.grantFor(result);
    const maxDuration = result.group ? this.models.directory.group(result.group.id)?.breakGlassMs : undefined;
    if (grant && maxDuration !== undefined)
      fact.breakGlass = { grant: grant.id, startTs: grant.startTs, maxDuration };
    return fact;
  }

  private grantFor(r: AttributionResult): GrantRow | undefined {
    if (!r.grantKey || !r.group || !r.identity) return undefined;
    return this.cache.get<GrantRow>(GRANT, grantId(r.grantKey, r.identity.id, r.group.id));
  }

  private touch(s: Session): void {
    this.dirty.set(s.id, s);
  }

  // --- IAM events -----------------------------------------------------------------------------

  // An `other` event is read here for the user and group it names, and for nothing else: decoding
  // keeps of the others only their time (shared/normalize/oci-audit.ts concernsNothing).
  private processIam(ev: IamEvent, late: boolean): void {
    const { directory, memberships, signOns } = this.models;
    const user = directory.noteUser(ev.user?.id, ev.user?.name, ev.ts);
    const noted = ev.group ? directory.noteGroup(ev.group.id, ev.group.name, ev.domain?.id) : undefined;
    let group = noted?.row;
    let userId = user?.id;

    switch (ev.kind) {
      case 'membership_added':
      case 'membership_removed': {
        let groupId = group?.id;
        if ((!userId || !groupId) && ev.membershipId) {
          const known = memberships.resolveId(ev.membershipId);
          userId ??= known?.user;
          groupId ??= known?.group;
          group = groupId ? directory.group(groupId) : group;
        }
        if (!userId || !groupId) {
          this.stats.unresolvedMemberships++;
          break;
        }
        if (noted?.known === false) this.stats.unknownGroups++;
        const op = ev.kind === 'membership_added' ? 'add' : 'remove';
        const change = {
          ts: ev.ts,
          op,
          key: ev.key,
          ...(ev.membershipId ? { membershipId: ev.membershipId } : {}),
        } as const;
        if (!memberships.apply(userId, groupId, change)) return;
        const bg = directory.group(groupId)?.breakGlassMs;
        if (op === 'add' && bg !== undefined) this.openGrant(ev.key, userId, groupId, ev.ts, bg);
        if (op === 'remove' && bg !== undefined) this.endGrant(ev, userId, groupId);
        if (late) this.reevaluate(ev.ts);
        this.detector.run('iam', this.iamFact(ev, userId, groupId));
        return;
      }
      case 'user_deleted':
      case 'user_deactivated':
      case 'user_reactivated':
        if (userId) {
          directory.setUserState(
            userId,
            ev.kind === 'user_reactivated' ? 'active' : ev.kind === 'user_deleted' ? 'deleted' : 'inactive',
            ev.ts,
            ev.key,
          );
          if (late) this.reevaluate(ev.ts);
        }
        break;
      case 'group_deleted':
        if (!group) break;
        directory.markGroupDeleted(group.id, ev.ts);
        // An identity domain deletes a group with its members, and writes no removal for them.
        for (const member of memberships.membersAt(group.id, ev.ts)) {
          if (!memberships.apply(member, group.id, { ts: ev.ts, op: 'remove', key: ev.key })) continue;
          if (group.breakGlassMs !== undefined) this.endGrant(ev, member, group.id);
        }
        if (late) this.reevaluate(ev.ts);
        break;
      case 'policy_created':
      case 'policy_updated':
      case 'policy_deleted':
        this.detector.run('iam', { ...this.iamFact(ev, userId, group?.id), ...this.policies.apply(ev) });
        return;
      case 'credential_change': {
        const fact = this.iamFact(ev, userId, group?.id);
        if (fact.user && ev.credential) {
          const expected = this.expectedCredential(ev, ev.credential, fact);
          if (expected) fact.expected = expected;
          this.noteCredential(ev, ev.credential, fact, late);
        }
        this.detector.run('iam', fact);
        return;
      }
      case 'signon_success':
      case 'signon_failure':
        if (userId && ev.signOn) {
          signOns.add(userId, {
            ts: ev.ts,
            key: ev.key,
            success: ev.signOn.success,
            ...(ev.signOn.ip ? { ip: ev.signOn.ip } : {}),
            ...(ev.signOn.mfaFactor ? { mfaFactor: ev.signOn.mfaFactor } : {}),
          });
          if (late) this.reevaluate(ev.ts);
        }
        break;
      default:
        break;
    }
    // A dynamic group is judged, like a group, by the accounts group mappings give it.
    this.detector.run('iam', this.iamFact(ev, userId, group?.id ?? ev.dynamicGroup?.id));
  }

  private iamFact(
    event: IamEvent | SyncDirectoryEvent,
    userId: string | undefined,
    groupId: string | undefined,
  ): IamFact {
    const { directory, mappings, memberships } = this.models;
    const fact: IamFact = { event };
    if (userId) fact.user = { id: userId, name: directory.user(userId)?.name ?? userId };
    const actor =
      directory.findUser(event.actor.id, event.ts) ?? directory.findUser(event.actor.name, event.ts);
    if (actor) fact.actor = { id: actor.id, name: actor.name };
    if (userId && event.kind === 'credential_change')
      fact.reach = mappings
        .accountsReachedBy(userId, event.ts, (g) => memberships.isMember(userId, g, event.ts))
        .map((a) => ({
          ...a,
          privileged: this.dbs.get(a.db)?.privilegedAccounts.includes(a.account) ?? false,
        }));
    const changed = event.source === 'iam' ? event.dbSystemChange?.dbSystem?.id : undefined;
    const db = changed === undefined ? undefined : this.dbs.get(changed);
    if (db) fact.db = db;
    if (groupId) {
      const g = directory.group(groupId);
      fact.group = {
        id: groupId,
        name: g?.name ?? groupId,
        breakGlass: g?.breakGlassMs !== undefined,
        // A deleted group is judged by what it mapped to just before.
        mappedAccounts: mappings.accountsMappedFrom(groupId, event.ts - 1).map((a) => ({
          ...a,
          privileged: this.dbs.get(a.db)?.privilegedAccounts.includes(a.account) ?? false,
        })),
      };
    }
    return fact;
  }

  /**
   * The entry of `rules.iam.credential-change.expected` that acknowledges a credential another
   * principal created on the user, matched by the ids, names and aliases the event and the directory
   * give the actor and the user; none for any other change.
   */
  private expectedCredential(ev: IamEvent, credential: Credential, fact: IamFact): Acknowledged | undefined {
    if (credential.change !== 'created' || madeBySelf(fact) || this.expectedCredentials.length === 0)
      return undefined;
    const { directory } = this.models;
    const known = (ref: { id: string } | undefined) => {
      const row = ref ? directory.user(ref.id) : undefined;
      return row ? [row.id, row.name, ...row.aliases] : [];
    };
    return expectedCredential(this.expectedCredentials, {
      ts: ev.ts,
      type: credential.type,
      actor: [ev.actor.id, ev.actor.name, ...known(fact.actor)],
      user: [ev.user?.id, ev.user?.name, ...known(fact.user)],
    });
  }

  /**
   * A credential another principal created on a user is in force until it is deleted; a password the
   * user sets themselves replaces one planted (PlantedCredentials). The user's sessions then carry
   * it in their attribution; a late change re-attributes those it affects. One the configuration
   * expects (`fact.expected`) is the organisation's own: it is not followed.
   */
  private noteCredential(ev: IamEvent, credential: Credential, fact: IamFact, late: boolean): void {
    const { credentials } = this.models;
    const user = fact.user!.id;
    const self = madeBySelf(fact);
    const ref = {
      key: ev.key,
      ts: ev.ts,
      type: credential.type,
      ...(credential.id === undefined ? {} : { id: credential.id }),
    };
    const actor = { id: fact.actor?.id ?? ev.actor.id, name: fact.actor?.name ?? ev.actor.name };
    if (credential.change === 'created' && !self && !fact.expected)
      credentials.plant(user, {
        ...ref,
        actor: {
          ...(actor.id === undefined ? {} : { id: actor.id }),
          ...(actor.name === undefined ? {} : { name: actor.name }),
        },
      });
    else if (credential.change === 'deleted' || (self && credential.type === 'password'))
      credentials.end(user, ref);
    else return;
    if (late) this.reevaluate(ev.ts);
  }

  /**
   * Late IAM data: re-attributes sessions connected at or after `from`; changed ones are re-detected.
   * `access`: an account's lock state changed then, which can make a group login local or the
   * reverse, so local-account sessions are revisited too.
   */
  private reevaluate(from: number, access = false): void {
    for (const s of this.recent) {
      if (
        authenticationOf(s).ts < from ||
        s.outcome !== 'success' ||
        (!access && s.attribution?.method === 'local-account')
      )
        continue;
      const before = JSON.stringify([s.identity, s.group, s.attribution, s.breakGlassGrant]);
      const db = this.dbs.get(s.dbSystem.id);
      const result = this.attributeLogin(s);
      const after = JSON.stringify([
        result.identity,
        result.group,
        result.attribution,
        this.grantFor(result)?.id ?? null,
      ]);
      if (before === after) continue;
      const judgedAs = s.identity;
      this.applyResult(s, result);
      this.detector.run('session', {
        ...this.sessionFact(s, result, db),
        reattributed: { from: judgedAs },
      });
    }
  }

  // --- what a snapshot observed (source sync) ---------------------------------------------------

  /**
   * A change between two snapshots. It is released after every event up to the snapshot's time,
   * so the models already hold what the audit trail said: if they agree with the snapshot, audit
   * events explain the change; if not, it happened unaudited, is applied, and the rules see it.
   */
  private processSync(ev: SyncEvent, late: boolean): void {
    if ('target' in ev) {
      this.syncAccount(ev, late);
      return;
    }
    const { directory, memberships } = this.models;
    const userId = directory.findUser(ev.user.id)?.id ?? ev.user.id;
    if (!userId) return;
    if (ev.kind === 'membership_added' || ev.kind === 'membership_removed') {
      const groupId = directory.findGroup(ev.group?.id, ev.group?.name)?.id ?? ev.group?.id;
      if (!groupId) return;
      const add = ev.kind === 'membership_added';
      if (memberships.isMember(userId, groupId, ev.ts) === add) {
        this.stats.audited++;
        return;
      }
      // An addition the directory dates (creation time) is recorded then, within the window.
      const changedAt = add && ev.observed.changedAt ? Date.parse(ev.observed.changedAt) : Number.NaN;
      const ts = Number.isNaN(changedAt)
        ? ev.ts
        : Math.min(ev.ts, Math.max(changedAt, Date.parse(ev.observed.since) + 1));
      memberships.apply(userId, groupId, {
        ts,
        op: add ? 'add' : 'remove',
        key: ev.key,
        ...(ev.membershipId ? { membershipId: ev.membershipId } : {}),
      });
      const bg = directory.group(groupId)?.breakGlassMs;
      if (add && bg !== undefined) this.openGrant(ev.key, userId, groupId, ts, bg);
      if (!add && bg !== undefined) this.endGrant({ ts, key: ev.key }, userId, groupId);
      if (late || ts < ev.ts) this.reevaluate(ts);
      this.stats.drift++;
      this.detector.run('iam', this.iamFact(ev, userId, groupId));
      return;
    }
    const state: UserState =
      ev.kind === 'user_deleted' ? 'deleted' : ev.kind === 'user_deactivated' ? 'inactive' : 'active';
    if (directory.userStateAt(userId, ev.ts).state === state) {
      this.stats.audited++;
      return;
    }
    directory.setUserState(userId, state, ev.ts, ev.key);
    if (late) this.reevaluate(ev.ts);
    this.stats.drift++;
    this.detector.run('iam', this.iamFact(ev, userId, undefined));
  }

  /**
   * An account created, changed or dropped between two snapshots. Audited statements that
   * targeted it in that window explain it; so does a mapping the models already hold (a change of
   * privileges or lock state needs the statement: the models do not track privileges). The lock
   * state the later snapshot saw is recorded either way: it holds from the snapshot's time.
   */
  private syncAccount(ev: SyncAccountEvent, late: boolean): void {
    const db = ev.dbSystemId;
    const { mappings } = this.models;
    const since = Date.parse(ev.observed.since);
    const audited = (this.cache.get<number[]>(ACCOUNT_AUDIT, auditKey(db, ev.target)) ?? []).some(
      (ts) => ts > since && ts <= ev.ts,
    );
    const before = mappings.versionAt(db, ev.target, ev.ts);
    const { after } = ev;
    const modelAgrees = after
      ? before?.plugin === after.plugin && before.authenticationString === after.authenticationString
      : before === undefined;
    const definition =
      ev.kind !== 'account_changed' ||
      ev.before?.plugin !== after?.plugin ||
      ev.before?.authenticationString !== after?.authenticationString;
    const rights =
      ev.kind === 'account_changed' &&
      (ev.before?.locked !== after?.locked || ev.before?.privileges.join() !== after?.privileges.join());
    const change: AccountChange =
      ev.kind === 'account_dropped' || !after
        ? { op: 'drop', account: ev.target }
        : {
            op: ev.kind === 'account_created' ? 'create' : 'alter',
            account: ev.target,
            plugin: after.plugin,
            ...(after.authenticationString !== undefined
              ? { authenticationString: after.authenticationString }
              : {}),
            locked: after.locked,
          };
    const explained = audited || (!rights && modelAgrees);
    const applied = definition && !explained;
    const relocked = !applied && after !== undefined && ev.before?.locked !== after.locked;
    const mappedBefore = applied ? mappings.groupTargets(db, ev.ts) : [];
    if (applied) mappings.apply(db, change, ev.ts, ev.key);
    else if (relocked)
      mappings.apply(db, { op: 'alter', account: ev.target, locked: after.locked }, ev.ts, ev.key);
    // A snapshot followed once the watermark passed its time: sessions since are attributed again.
    if (late && (applied || relocked)) this.reevaluate(ev.ts, true);
    // A proxied account this change left open to logins without IAM (unlocked, say), which no
    // statement opened: raised even where statements explain the rest (a GRANT to it in the window,
    // an account the configuration lists created unlocked), and for that alone.
    const opened =
      mappings.proxiedTarget(db, ev.target.user, ev.ts) !== undefined &&
      mappings.directLoginAt(db, ev.target, ev.ts)?.key === ev.key;
    if (explained && !opened) {
      this.stats.audited++;
      return;
    }
    const touchesOci = [before?.plugin, ev.before?.plugin, after?.plugin].includes(OCI_PLUGIN);
    const added = (after?.privileges ?? []).filter((p) => !ev.before?.privileges.includes(p));
    const removed = (ev.before?.privileges ?? []).filter((p) => !after?.privileges.includes(p));
    const verbs =
      ev.kind === 'account_created'
        ? ['CREATE USER']
        : ev.kind === 'account_dropped'
          ? ['DROP USER']
          : explained
            ? ['ALTER USER']
            : [
                ...(definition || ev.before?.locked !== after?.locked ? ['ALTER USER'] : []),
                ...(added.length > 0 ? ['GRANT'] : []),
                ...(removed.length > 0 ? ['REVOKE'] : []),
              ];
    const mappingChanges = applied && touchesOci ? [change] : [];
    this.stats.drift++;
    this.detector.run('statement', {
      event: ev,
      session: undefined,
      db: this.dbs.get(db),
      facts: {
        privilege: { verb: verbs.join(', '), targets: [ev.target] },
        ...(applied ? { accounts: [change] } : {}),
      },
      mappingChanges,
      reverts: this.mappingReverts(ev, mappingChanges),
      bypassesIam: opened ? [ev.target] : [],
      mappedToOpen: mappingChanges.length > 0 ? this.mappedToOpen(db, ev.ts, mappedBefore) : [],
    });
  }

  /**
   * A proxied account a snapshot shows unlocked where the statements up to its time had it locked
   * (unlocked again, unaudited, after an audited lock; both snapshots saw it unlocked, so no drift
   * event says so): can now be logged in to without IAM, as a drift event that unlocked it says.
   */
  private openedBySnapshot(l: SnapshotLocks, a: LockState): void {
    const { mappings } = this.models;
    const target = { user: a.user, host: a.host };
    if (mappings.proxiedTarget(a.db, a.user, l.ts) === undefined) return;
    if (mappings.directLoginAt(a.db, target, l.ts)?.key !== l.key) return;
    const ev: SyncAccountEvent = {
      source: 'sync',
      key: `sync:${l.snapshot}:account_unlocked:${a.db}:${accountName(a)}`,
      time: toIso(l.ts),
      ts: l.ts,
      kind: 'account_changed',
      observed: {
        snapshot: l.snapshot,
        previousSnapshot: l.previous.id,
        since: l.previous.time,
        change: 'account unlocked',
      },
      dbSystemId: a.db,
      target,
    };
    this.stats.drift++;
    this.detector.run('statement', {
      event: ev,
      session: undefined,
      db: this.dbs.get(a.db),
      facts: { privilege: { verb: 'ALTER USER', targets: [target] } },
      mappingChanges: [],
      reverts: this.mappingReverts(ev, []),
      bypassesIam: [target],
    });
  }

  /** Remembers that an audited statement targeted an account (the latest few times). */
  private noteAudited(db: string, account: AccountRef, ts: number): void {
    const key = auditKey(db, account);
    if (this.cache.get<number[]>(ACCOUNT_AUDIT, key)?.includes(ts)) return;
    this.keepAudited(key, [ts]);
  }

  private keepAudited(key: string, times: readonly number[]): void {
    const all = new Set([...(this.cache.get<number[]>(ACCOUNT_AUDIT, key) ?? []), ...times]);
    this.cache.set(ACCOUNT_AUDIT, key, [...all].sort((a, b) => a - b).slice(-ACCOUNT_AUDIT_KEEP));
  }

  /**
   * Times a state stored when accounts were told apart by the case of their host (`app@LocalHost`):
   * each is kept under the account's key (`auditKey`, the host in lowercase), as MySQL has one account.
   */
  private mergeAuditedHostsByCase(): void {
    for (const [key, times] of [...this.cache.entries<number[]>(ACCOUNT_AUDIT)]) {
      const lower = nameKey(key);
      if (lower === key) continue;
      this.cache.delete(ACCOUNT_AUDIT, key);
      this.keepAudited(lower, times);
    }
  }

  // --- break-glass grants ---------------------------------------------------------------------

  private openGrant(addKey: string, user: string, group: string, startTs: number, maxDuration: number): void {
    const id = grantId(addKey, user, group);
    if (this.cache.get(GRANT, id)) return;
    this.cache.set<GrantRow>(GRANT, id, {
      id,
      addKey,
      user,
      group,
      startTs,
      deadlineTs: startTs + maxDuration,
      done: false,
    });
    this.nextDeadline = Math.min(this.nextDeadline, startTs + maxDuration);
  }

  /** A break-glass membership was removed: the grant it closes has ended (its alert, if any, is over). */
  private endGrant(removal: { ts: number; key: string }, user: string, group: string): void {
    const { memberships, directory } = this.models;
    const opened = memberships.stateAt(user, group, removal.ts - 1);
    if (opened?.op !== 'add') return;
    const g = this.cache.get<GrantRow>(GRANT, grantId(opened.key, user, group));
    if (!g) return;
    this.detector.run('grantEnded', {
      grant: g.id,
      user: { id: user, name: directory.user(user)?.name ?? user },
      group: { id: group, name: directory.group(group)?.name ?? group },
      startTs: g.startTs,
      deadlineTs: g.deadlineTs,
      endTs: removal.ts,
      removal: removal.key,
    });
  }

  private computeNextDeadline(): void {
    this.nextDeadline = Number.POSITIVE_INFINITY;
    for (const g of this.cache.values<GrantRow>(GRANT))
      if (!g.done) this.nextDeadline = Math.min(this.nextDeadline, g.deadlineTs);
    for (const l of this.cache.values<SnapshotLocks>(SNAPSHOT_LOCKS))
      this.nextDeadline = Math.min(this.nextDeadline, l.ts);
  }
}

/** `schema.table` names by schema and table, made once (most statements name a table seen before). */
const TABLE_NAMES_MAX = 100_000;
const tableNames = new Memo(
  TABLE_NAMES_MAX,
  (db: string) => new Memo(TABLE_NAMES_MAX, (table: string) => `${db}.${table}`),
);

/** A table's `schema.table` name: the same string each time, which a session's list compares at once. */
function tableName(t: { db: string; table: string }): string {
  return tableNames.get(t.db).get(t.table);
}

/**
 * Adds a switch to a session's, up to SESSION_SWITCHES_MAX: beyond it the latest takes the last
 * place, and the one it replaces is counted as omitted.
 */
function keepSwitch(session: Session, sw: Switch): void {
  const switches = session.switches ?? [];
  if (switches.length < SESSION_SWITCHES_MAX) switches.push(sw);
  else {
    switches[switches.length - 1] = sw;
    session.switchesOmitted = (session.switchesOmitted ?? 0) + 1;
  }
  session.switches = switches;
}

/** Notes that a session did something at `ts` (a late event may be older than its last). */
function active(session: Session, ts: number): void {
  if (ts > lastActivity(session)) session[LAST_ACTIVITY] = ts;
}

/**
 * Keeps the tables a session touched and, under break-glass, what it ran (bounded, see Session).
 * True when the session changed.
 */
function noteActivity(session: Session, ev: DbEvent): boolean {
  let changed = false;
  // Read once: a worker's statement makes its parts at each read (decode/transfer.ts).
  const { table } = ev;
  if (table) {
    const name = tableName(table);
    const tables = session.tables ?? [];
    if (tables.length < SESSION_TABLES_MAX && name.length <= TABLE_NAME_MAX && !tables.includes(name)) {
      tables.push(name);
      tables.sort();
      session.tables = tables;
      changed = true;
    }
  }
  if (session.breakGlassGrant === null || ev.kind !== 'query') return changed;
  // Read once, as the table above: a worker's statement decodes its text at each read.
  const { sql } = ev;
  if (sql?.text === undefined) return changed;
  const statements = session.statements ?? [];
  if (statements.length >= SESSION_STATEMENTS_MAX) return changed;
  session.statements = statements;
  statements.push({
    time: ev.time,
    command: sql.sqlCommand ?? ev.event,
    sql: cutAt(redactLiterals(sql.text), STATEMENT_SQL_MAX),
    status: sql.status ?? ev.status,
  });
  return true;
}

/** The break-glass grants recorded in the correlation state. */
export function breakGlassGrants(cache: EntityCache): GrantRow[] {
  return [...cache.values<GrantRow>(GRANT)];
}

/** Seeded grants share the seed's key, so they are told apart by user and group. */
function grantId(addKey: string, user: string, group: string): string {
  if (addKey === CONFIG_DIRECTORY) return `config:${user}:${group}`;
  return addKey.startsWith(SNAPSHOT_SEED) ? `${addKey}:${user}:${group}` : addKey;
}

/** A server's key: its DB system and the instance its events carry. */
function serverKey(db: string, instance: string | undefined): string {
  return instance === undefined ? db : `${db}\u0000${instance}`;
}

function auditKey(db: string, account: AccountRef): string {
  return `${db}\u0000${accountKey(account)}`;
}

/** What the configuration seeds: its directory, and its DB systems' accounts. */
function configSeeds(config: Config): Seed[] {
  const d = config.directory;
  return [
    {
      key: CONFIG_DIRECTORY,
      time: d.snapshotTime,
      users: d.users,
      groups: d.groups.map((g) => ({
        id: g.id,
        name: g.name,
        aliases: g.aliases,
        ...(g.breakGlass ? { breakGlassMs: g.breakGlass.maxDuration } : {}),
      })),
      memberships: d.memberships,
      accounts: [],
    },
    {
      key: CONFIG_ACCOUNTS,
      users: [],
      groups: [],
      memberships: [],
      accounts: config.dbSystems.flatMap((db) => db.accounts.map((a) => ({ db: db.id, ...a }))),
    },
  ];
}

/** The key of a snapshot's seeds. */
export function snapshotSeedKey(snapshotId: string): string {
  return `${SNAPSHOT_SEED}${snapshotId}`;
}

/** Whether a membership or account change came from a seed (the configuration, a snapshot), not an event. */
export function isSeedKey(key: string): boolean {
  return key === CONFIG_DIRECTORY || key === CONFIG_ACCOUNTS || key.startsWith(SNAPSHOT_SEED);
}

/** The client program a connect's attributes name (`Session.client`), if they name any. */
export function clientOf(attributes: DbEvent['attributes']): Session['client'] {
  if (!attributes) return undefined;
  const client: NonNullable<Session['client']> = {};
  const put = (field: keyof typeof client, value: string | undefined) => {
    if (value?.trim()) client[field] = cutAt(value, CLIENT_FIELD_MAX);
  };
  put('program', attributes.program_name);
  put('name', attributes._client_name);
  put('version', attributes._client_version);
  return Object.keys(client).length > 0 ? client : undefined;
}
