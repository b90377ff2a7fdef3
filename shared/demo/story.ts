// The demo's timeline while it is being written: who is in which group when, which IAM events
// and database sessions happen, and which alerts they should raise. Normal activity, churn and
// incidents all write through it, so the ground truth follows from what was generated.
import type { GapRecord } from '../../schemas/envelopes.js';
import { inForceAt } from '../time.js';
import { type DbSystem, type Fleet, type GroupKey, ocid, type Person, PROXY_ACCOUNTS } from './fleet.js';
import type { AlertMatcher, Expectation, ExpectationKind } from './ground-truth.js';
import {
  type Account,
  type Login,
  PROXY_LOGIN,
  type SessionPlan,
  type Statement,
  type Workload,
} from './mysql-audit-writer.js';
import { type Actor, actorOf, type Channel, IamEvents, type IamRecord, iso } from './oci-events.js';
import { Rng } from './rng.js';

type Change = { ts: number; op: 'add' | 'remove' };

/** Group membership, user state and 1-to-1 accounts over time, as the generator decides them. */
export class Roster {
  private readonly changes = new Map<string, Change[]>();
  private readonly inactiveFrom = new Map<string, number>();
  /** `${db}|${user}` -> [from, to) during which the 1-to-1 account exists. */
  private readonly accounts = new Map<string, [number, number]>();

  constructor(fleet: Fleet) {
    for (const m of fleet.memberships)
      this.change(m.user, m.group, { ts: Number.NEGATIVE_INFINITY, op: 'add' });
    for (const p of fleet.people) {
      if (!p.inSnapshot || !p.oneToOne) continue;
      for (const db of fleet.dbs) if (db.team === p.team) this.openAccount(db, p, Number.NEGATIVE_INFINITY);
    }
  }

  change(user: string, group: GroupKey, c: Change): void {
    const key = `${user}|${group}`;
    const list = this.changes.get(key) ?? [];
    list.push(c);
    list.sort((a, b) => a.ts - b.ts || (a.op === b.op ? 0 : a.op === 'add' ? -1 : 1));
    this.changes.set(key, list);
  }

  /** The memberships of a group that began in the story (not in the snapshot): from, and to once removed. */
  stretches(group: GroupKey): { user: string; from: number; to: number | undefined }[] {
    const out: { user: string; from: number; to: number | undefined }[] = [];
    for (const [key, changes] of this.changes) {
      const [user, g] = key.split('|') as [string, string];
      if (g !== group) continue;
      let open: { user: string; from: number; to: number | undefined } | undefined;
      for (const c of changes) {
        if (c.op === 'add' && open === undefined) {
          open = { user, from: c.ts, to: undefined };
          if (Number.isFinite(c.ts)) out.push(open);
        } else if (c.op === 'remove' && open !== undefined) {
          open.to = c.ts;
          open = undefined;
        }
      }
    }
    return out.sort((a, b) => a.from - b.from || (a.user < b.user ? -1 : 1));
  }

  isMember(user: string, group: GroupKey, ts: number): boolean {
    return inForceAt(this.changes.get(`${user}|${group}`) ?? [], ts)?.op === 'add';
  }

  /** A member at `from` and no change until `to`. */
  memberThroughout(user: string, group: GroupKey, from: number, to: number): boolean {
    if (!this.isMember(user, group, from)) return false;
    return !(this.changes.get(`${user}|${group}`) ?? []).some((c) => c.ts > from && c.ts <= to);
  }

  deactivate(user: string, ts: number): void {
    this.inactiveFrom.set(user, Math.min(ts, this.inactiveFrom.get(user) ?? Number.POSITIVE_INFINITY));
  }

  /** Still active (not blocked or deleted) at `to`. */
  activeUntil(user: string, to: number): boolean {
    const off = this.inactiveFrom.get(user);
    return off === undefined || to < off;
  }

  openAccount(db: DbSystem, user: Person, ts: number): void {
    this.accounts.set(`${db.index}|${user.id}`, [ts, Number.POSITIVE_INFINITY]);
  }

  dropAccount(db: DbSystem, user: Person, ts: number): void {
    const a = this.accounts.get(`${db.index}|${user.id}`);
    if (a) a[1] = ts;
  }

  hasAccountThroughout(db: DbSystem, user: Person, from: number, to: number): boolean {
    const a = this.accounts.get(`${db.index}|${user.id}`);
    return a !== undefined && a[0] <= from && to < a[1];
  }
}

/** Whole seconds: MySQL audit timestamps have no fractions, so alerts on them neither. */
export function sec(ts: number): number {
  return Math.floor(ts / 1000) * 1000;
}

export class Story {
  readonly rng: Rng;
  readonly iam: IamEvents;
  readonly roster: Roster;
  readonly iamRecords: IamRecord[] = [];
  readonly sessions: SessionPlan[] = [];
  readonly expected: Expectation[] = [];
  /** Gaps the collector reports in DB systems' audit trails (written with their collector records). */
  readonly gaps: GapRecord[] = [];
  /** Credentials someone created on another person's IAM user: when, on whom, by whom (never deleted). */
  readonly plantedCredentials: { ts: number; person: Person; actor: string }[] = [];
  /** The identity team's administrator (actor of routine IAM changes). */
  readonly admin: Person;
  /** People with a part in churn or incidents: normal activity leaves their special moments alone. */
  readonly cast = new Set<string>();
  /** Creation time of joiners (people not in the snapshot). */
  readonly created = new Map<string, number>();
  private readonly membershipIds = new Map<string, string>();
  private readonly signOns = new Map<string, { ts: number; ip: string }[]>();
  private sessionSeq = 0;

  constructor(
    readonly fleet: Fleet,
    seed: number,
  ) {
    this.rng = new Rng(seed).fork('story');
    this.iam = new IamEvents(fleet, new Rng(seed).fork('iam'));
    this.roster = new Roster(fleet);
    this.admin = fleet.people.find((p) => p.role === 'admin')!;
    for (const m of fleet.memberships) this.membershipIds.set(`${m.user}|${m.group}`, m.id);
  }

  person(role: Person['role'], filter: (p: Person) => boolean = () => true): Person {
    const found = this.rng
      .shuffle(this.fleet.people)
      .find((p) => p.role === role && p.inSnapshot && !this.cast.has(p.id) && filter(p));
    if (!found) throw new Error(`demo fleet has no free ${role}`);
    this.cast.add(found.id);
    return found;
  }

  /** A DBA whose membership never changes (not in the cast), for scripted DBA work. */
  stableDba(): Person {
    const dbas = this.fleet.people.filter((p) => p.role === 'dba' && p.inSnapshot && !this.cast.has(p.id));
    return this.rng.pick(dbas);
  }

  /** The IAM user exists at `ts` (joiners only after their CreateUser). */
  existsAt(p: Person, ts: number): boolean {
    return p.inSnapshot || (this.created.get(p.id) ?? Number.POSITIVE_INFINITY) <= ts;
  }

  /** The first DB system of a team and environment (prod by default). */
  db(team: DbSystem['team'], env: DbSystem['env'] = 'prod'): DbSystem {
    return (
      this.fleet.dbs.find((d) => d.team === team && d.env === env) ??
      this.fleet.dbs.find((d) => d.team === team)!
    );
  }

  emit(record: IamRecord): IamRecord {
    this.iamRecords.push(record);
    return record;
  }

  expect(
    rule: string,
    kind: ExpectationKind,
    story: string,
    match: Omit<AlertMatcher, 'from' | 'to'> & { at: number; until?: number },
  ): void {
    const { at, until, ...rest } = match;
    this.expected.push({
      id: `${kind === 'incident' ? 'inc' : 'churn'}-${String(this.expected.length + 1).padStart(3, '0')}`,
      rule,
      kind,
      story,
      match: { from: iso(at), to: iso(until ?? at), ...rest },
    });
  }

  private isPrivilegedGroup(group: GroupKey): boolean {
    return group === 'dba' || group === 'bg';
  }

  addMember(
    ts: number,
    user: Person,
    group: GroupKey,
    opts: { actor?: Actor; channel?: Channel; kind?: ExpectationKind; story?: string } = {},
  ): IamRecord {
    const id = ocid(this.rng, 'groupmembership');
    this.membershipIds.set(`${user.id}|${group}`, id);
    this.roster.change(user.id, group, { ts, op: 'add' });
    const g = this.fleet.groups[group];
    if (this.isPrivilegedGroup(group)) {
      this.expect(
        'iam.privileged-group-change',
        opts.kind ?? 'churn',
        opts.story ?? `${user.name} added to ${g.name}`,
        {
          at: ts,
          principalId: user.id,
          groupId: g.id,
        },
      );
    }
    return this.emit(
      this.iam.membershipAdded(ts, opts.actor ?? actorOf(this.admin), user, g.id, id, opts.channel),
    );
  }

  removeMember(
    ts: number,
    user: Person,
    group: GroupKey,
    opts: { actor?: Actor; channel?: Channel; kind?: ExpectationKind; story?: string } = {},
  ): IamRecord {
    const id = this.membershipIds.get(`${user.id}|${group}`) ?? ocid(this.rng, 'groupmembership');
    this.roster.change(user.id, group, { ts, op: 'remove' });
    const g = this.fleet.groups[group];
    if (this.isPrivilegedGroup(group)) {
      this.expect(
        'iam.privileged-group-change',
        opts.kind ?? 'churn',
        opts.story ?? `${user.name} removed from ${g.name}`,
        {
          at: ts,
          principalId: user.id,
          groupId: g.id,
        },
      );
    }
    return this.emit(
      this.iam.membershipRemoved(ts, opts.actor ?? actorOf(this.admin), user, g.id, id, opts.channel),
    );
  }

  /**
   * A sign-on in the person's usual flavor (classic console or identity domain) and factor, unless
   * `as` says otherwise.
   */
  signOn(ts: number, p: Person, success = true, as: Partial<Pick<Person, 'signOn' | 'mfa'>> = {}): void {
    const who = { ...p, ...as };
    this.emit(
      who.signOn === 'classic'
        ? this.iam.classicSignOn(ts, who, success)
        : this.iam.domainSignOn(ts, who, success),
    );
    if (!success) return;
    const list = this.signOns.get(p.id);
    if (list) list.push({ ts, ip: p.ip });
    else this.signOns.set(p.id, [{ ts, ip: p.ip }]);
  }

  /** Whether `p` signed on successfully in [from, to] from the address they use (`p.ip`). */
  signedOnBetween(p: Person, from: number, to: number): boolean {
    return (this.signOns.get(p.id) ?? []).some((s) => s.ts >= from && s.ts <= to && s.ip === p.ip);
  }

  /** What the client of `p` sends for a group login to `proxied` (see LoginStyle). */
  groupLogin(p: Person, proxied: string, style = p.style): Login {
    // Joiners are known to the directory by their IAM name only (learned from CreateUser).
    const name = p.inSnapshot ? p.alias : p.name;
    switch (style) {
      case 'external-user':
        return { user: name, os: p.id, ip: p.ip, proxy: PROXY_LOGIN };
      case 'login-name':
        return { user: name, os: '', ip: p.ip, proxy: PROXY_LOGIN };
      case 'account-name':
        return { user: proxied, os: '', ip: p.ip, proxy: PROXY_LOGIN };
    }
  }

  /** Adds a session plan; returns it so that callers can add statements. */
  session(
    plan: {
      db: DbSystem;
      start: number;
      end: number;
      account: Account;
      login: Login;
      workload: Workload;
      program: string;
      status?: number;
      statements?: Statement[];
    } & Purpose,
  ): SessionPlan {
    const s: SessionPlan = {
      ...purposeOf(plan),
      db: plan.db,
      start: plan.start,
      end: plan.end,
      account: plan.account,
      login: plan.login,
      status: plan.status ?? 0,
      program: plan.program,
      workload: plan.workload,
      statements: plan.statements ?? [],
      key: `s${this.sessionSeq++}`,
    };
    this.sessions.push(s);
    return s;
  }

  /** A group login of `p` through `group`'s proxied account, with the person's usual client. */
  proxiedSession(
    p: Person,
    db: DbSystem,
    group: 'dba' | 'bg' | 'ro' | 'dev',
    start: number,
    minutes: number,
    opts: { statements?: Statement[]; login?: Login; workload?: Workload } & Purpose = {},
  ): SessionPlan {
    const account = { user: PROXY_ACCOUNTS[group], host: '%' };
    return this.session({
      ...purposeOf(opts),
      person: p,
      db,
      start,
      end: start + minutes * 60_000,
      account,
      login: opts.login ?? this.groupLogin(p, account.user),
      workload: opts.workload ?? (group === 'ro' ? 'analyst' : group === 'dev' ? 'developer' : 'dba'),
      program: p.program,
      ...(opts.statements ? { statements: opts.statements } : {}),
    });
  }
}

/** Who is behind a session and why (see SessionPlan). */
type Purpose = Pick<SessionPlan, 'person' | 'purpose' | 'finding' | 'quiet'>;

function purposeOf(p: Purpose): Purpose {
  const out: Purpose = {};
  if (p.person) out.person = p.person;
  if (p.purpose) out.purpose = p.purpose;
  if (p.finding) out.finding = true;
  if (p.quiet) out.quiet = true;
  return out;
}

/** The people with a part in churn and incidents, chosen before anything is planned. */
export type Cast = {
  devJoiner: Person;
  dbaJoiner: Person;
  analystJoiner: Person;
  teamMover: Person;
  dbaMover: Person;
  dbaLeaver: Person;
  analystLeaver: Person;
  /** Keeps a break-glass membership past its maximum duration. */
  staleBreakGlass: Person;
  /** A DBA removed from DBAdmins who connects anyway (the removal arrives late). */
  revokedDba: Person;
  /** Leaves the company; still has a personal account the next morning. */
  leaverWithAccount: Person;
  /** An analyst who logs in as the DBA account. */
  impostor: Person;
  /** A developer whose IAM credentials are misused at night. */
  compromised: Person;
  /** A DBA who signs on once with a password only. */
  passwordOnlyDba: Person;
};

export function pickCast(story: Story): Cast {
  const joiners = story.fleet.people.filter((p) => !p.inSnapshot);
  for (const j of joiners) story.cast.add(j.id);
  const joiner = (role: Person['role']) => joiners.find((p) => p.role === role)!;
  const cast: Cast = {
    devJoiner: joiner('developer'),
    dbaJoiner: joiner('dba'),
    analystJoiner: joiner('analyst'),
    leaverWithAccount: story.person('developer', (p) => p.oneToOne),
    teamMover: story.person('developer'),
    dbaMover: story.person('developer', (p) => !p.oneToOne),
    staleBreakGlass: story.person('developer'),
    compromised: story.person('developer', (p) => !p.oneToOne),
    dbaLeaver: story.person('dba'),
    revokedDba: story.person('dba'),
    analystLeaver: story.person('analyst'),
    impostor: story.person('analyst'),
    passwordOnlyDba: story.person('dba'),
  };
  // Like the DBAs, the people the story takes to a privileged account sign on with MFA.
  for (const p of [cast.dbaMover, cast.impostor]) p.signOn = 'domain';
  return cast;
}
