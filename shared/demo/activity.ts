// Normal activity: people signing on and working in the databases during the working day,
// application connection pools around the clock, monitoring, and routine IAM traffic. Human
// sessions are only planned where the roster says the person may connect, so normal activity
// raises no alert except the DBA grants it records as expected churn.
import { DAY, type DbSystem, type Fleet, HOUR, MINUTE, type Person, PROXY_ACCOUNTS, TEAMS } from './fleet.js';
import type { SessionPlan, Statement, Workload } from './mysql-audit-writer.js';
import { actorOf } from './oci-events.js';
import { Rng } from './rng.js';
import { type Story, sec } from './story.js';

/** Application statements per minute per DB system at full load (before the time-of-day curve). */
export const APP_RATE = 4;

type Option = { db: DbSystem; group: 'dba' | 'ro' | 'dev' | null; workload: Workload; weight: number };

function envWeight(db: DbSystem, prod: number, staging: number, dev: number): number {
  return db.env === 'prod' ? prod : db.env === 'staging' ? staging : dev;
}

/** Where `p` may connect for the whole of [from, to], and as what. */
function options(story: Story, p: Person, from: number, to: number): Option[] {
  const { roster, fleet } = story;
  if (!roster.activeUntil(p.id, to)) return [];
  const out: Option[] = [];
  if (roster.memberThroughout(p.id, 'dba', from, to)) {
    for (const db of fleet.dbs)
      out.push({ db, group: 'dba', workload: 'dba', weight: envWeight(db, 3, 1, 1) });
  }
  for (const team of TEAMS) {
    if (!roster.memberThroughout(p.id, `dev-${team}`, from, to)) continue;
    for (const db of fleet.dbs) {
      if (db.team === team)
        out.push({ db, group: 'dev', workload: 'developer', weight: envWeight(db, 1, 2, 3) });
    }
  }
  if (roster.memberThroughout(p.id, 'ro', from, to)) {
    for (const db of fleet.dbs) {
      if (db.env !== 'dev')
        out.push({ db, group: 'ro', workload: 'analyst', weight: db.team === p.team ? 3 : 1 });
    }
  }
  for (const db of fleet.dbs) {
    if (roster.hasAccountThroughout(db, p, from, to))
      out.push({ db, group: null, workload: 'developer', weight: 2 });
  }
  return out;
}

const DURATION: Record<string, [number, number]> = {
  dba: [5, 45],
  developer: [5, 60],
  analyst: [10, 90],
};

/** The two working days for everyone with database access, and sign-ons for everyone. */
export function planHumanActivity(story: Story): void {
  const { fleet } = story;
  const rng = story.rng.fork('humans');
  const days = Array.from({ length: fleet.days }, (_, d) => fleet.start + d * DAY);
  addDbaChanges(story, rng.fork('dba-changes'), planWorkingDays(story, rng, days, false));
}

/**
 * The weeks before the two days (weekends off), so that first-seen baselines have learned: sessions
 * without statements, and sign-ons. Over them each person uses every database access they have and
 * both their laptops: their habits, which the two days repeat.
 */
export function planHistory(story: Story): void {
  const { fleet } = story;
  const days: number[] = [];
  for (let d = fleet.history; d > 0; d--) {
    const day = fleet.start - d * DAY;
    if (new Date(day).getUTCDay() % 6 !== 0) days.push(day);
  }
  planWorkingDays(story, story.rng.fork('history'), days, true);
}

/** Plans `days` of work for everyone; returns each day's DBA sessions. */
function planWorkingDays(story: Story, rng: Rng, days: number[], history: boolean): SessionPlan[][] {
  const dbaSessions: SessionPlan[][] = days.map(() => []);
  for (const p of story.fleet.people) {
    const prng = rng.fork(p.id);
    const used = history ? new Set<string>() : undefined;
    let laptopDue = history;
    days.forEach((day, d) => {
      if (!prng.chance(0.92)) return;
      if (p.role === 'staff' || p.role === 'admin') {
        if (history) return;
        for (let k = prng.int(1, 2); k > 0; k--) {
          const ts = day + prng.normal(10 * HOUR, 2.5 * HOUR, 7 * HOUR, 18 * HOUR);
          if (story.existsAt(p, ts - HOUR)) signOnWithTypos(story, prng, p, ts);
        }
        return;
      }
      const starts = [
        prng.normal(8.75 * HOUR, 0.6 * HOUR, 6.5 * HOUR, 11 * HOUR),
        prng.normal(13.5 * HOUR, 0.8 * HOUR, 12 * HOUR, 15 * HOUR),
        prng.normal(16.25 * HOUR, 0.6 * HOUR, 15.5 * HOUR, 19 * HOUR),
      ].slice(0, prng.int(1, 3));
      for (const offset of starts) {
        let t = sec(day + offset);
        if (!story.existsAt(p, t - 15 * MINUTE)) continue;
        // Some people also work from a second laptop, on another network.
        const device = p.laptop && (laptopDue || prng.chance(0.3)) ? { ...p, ip: p.laptop } : p;
        laptopDue &&= device === p;
        if (p.style !== 'account-name' && prng.chance(0.85))
          signOnWithTypos(story, prng, device, t - prng.int(1, 10) * MINUTE);
        for (let k = prng.int(1, 3); k > 0; k--) {
          const plan = planHumanSession(story, prng, device, t, used);
          if (plan && plan.workload === 'dba') dbaSessions[d]!.push(plan);
          t = (plan?.end ?? t) + prng.int(5, 40) * MINUTE;
        }
      }
    });
  }
  return dbaSessions;
}

function signOnWithTypos(story: Story, rng: Rng, p: Person, ts: number): void {
  if (rng.chance(0.05)) story.signOn(sec(ts) - rng.int(20, 90) * 1000, p, false);
  story.signOn(sec(ts) + rng.int(0, 999), p);
}

/**
 * One session of `p` starting at `start`, where the roster lets them connect. With `used` (the
 * history), a database access `p` has not used yet comes first, and the session has no statements.
 */
function planHumanSession(
  story: Story,
  rng: Rng,
  p: Person,
  start: number,
  used?: Set<string>,
): SessionPlan | undefined {
  const role = p.role === 'dba' ? 'dba' : p.role === 'analyst' ? 'analyst' : 'developer';
  const [lo, hi] = DURATION[role]!;
  const minutes = Math.min(hi, lo + rng.exp((hi - lo) / 2));
  const end = start + Math.round(minutes * MINUTE);
  const choices = options(story, p, start - 5 * MINUTE, end);
  if (choices.length === 0) return undefined;
  const access = (c: Option) => `${c.db.index}|${c.group}`;
  const unused = choices.filter((c) => used && !used.has(access(c)));
  const choice =
    unused.length > 0 ? rng.pick(unused) : rng.weighted(choices.map((c) => [c, c.weight] as const));
  used?.add(access(choice));
  const { db, group } = choice;
  const who = { person: p, ...(used ? { quiet: true } : {}) };
  if (group === null) {
    // A 1-to-1 account: the account names the person.
    const account = { user: p.alias, host: '%' };
    const login = { user: p.alias, os: '', ip: p.ip, proxy: '' };
    if (rng.chance(0.03)) {
      story.session({
        ...who,
        db,
        start: start - rng.int(5, 40) * 1000,
        end: start,
        account,
        login,
        workload: choice.workload,
        program: p.program,
        status: 1045,
      });
    }
    return story.session({
      ...who,
      db,
      start,
      end,
      account,
      login,
      workload: choice.workload,
      program: p.program,
    });
  }
  const proxied = PROXY_ACCOUNTS[group];
  // A client that sends only the account name is attributed by a recent sign-on from the same IP.
  if (p.style === 'account-name' && !story.signedOnBetween(p, start - 45 * MINUTE, start)) {
    signOnWithTypos(story, rng, p, start - rng.int(2, 20) * MINUTE);
  }
  const login = story.groupLogin(p, proxied);
  if (p.style !== 'account-name' && rng.chance(0.03)) {
    // An expired token: the first attempt fails (clients that send only the shared account name
    // are left out: their failures would all count for that one login name).
    story.session({
      ...who,
      db,
      start: start - rng.int(5, 40) * 1000,
      end: start,
      account: { user: login.user, host: '%' },
      login: { ...login, proxy: '' },
      workload: choice.workload,
      program: p.program,
      status: 1045,
    });
  }
  return story.session({
    ...who,
    db,
    start,
    end,
    account: { user: proxied, host: '%' },
    login,
    workload: choice.workload,
    program: p.program,
  });
}

/** DBAs change grants now and then: each change is a `privilege.change` alert, expected churn. */
function addDbaChanges(story: Story, rng: Rng, byDay: SessionPlan[][]): void {
  const perDay = Math.max(2, Math.round(6 * story.fleet.scale));
  let nearMissDone = false;
  for (const sessions of byDay) {
    const long = rng.shuffle(sessions.filter((s) => s.end - s.start > 4 * MINUTE));
    for (const s of long.slice(0, perDay)) {
      const at = sec(s.start + rng.int(60, 150) * 1000);
      const { schema, team } = s.db;
      const st: Statement = rng.pick<Statement>([
        { at, sqlCommand: 'grant', query: `GRANT SELECT ON ${schema}.* TO 'ro_proxy'@'%'` },
        { at, sqlCommand: 'revoke', query: `REVOKE INSERT, UPDATE ON ${schema}.* FROM 'dev_proxy'@'%'` },
        {
          at,
          sqlCommand: 'grant',
          query: `GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}.* TO 'app_${team}'@'10.20.%'`,
        },
      ]);
      s.statements.push(st);
      story.expect(
        'privilege.change',
        'churn',
        `routine ${st.sqlCommand.toUpperCase()} by a DBA on ${s.db.name}`,
        {
          at,
          dbSystemId: s.db.id,
        },
      );
    }
    const spare = long[perDay];
    if (!nearMissDone && spare) {
      // A statement that failed to parse is logged verbatim, password included: redacted, no alert.
      spare.statements.push({
        at: sec(spare.start + 40_000),
        sqlCommand: 'error',
        query: `GRANT SELECT ON ${spare.db.schema}.* TO 'report'@'%' IDENTIFIED BY 'Winter2026!'`,
        status: 1064,
      });
      nearMissDone = true;
    }
  }
}

/** Routine IAM traffic that alerts on nothing: API keys, an unrelated policy, other services. */
export function planIamNoise(story: Story): void {
  const { fleet } = story;
  const rng = story.rng.fork('iam-noise');
  const people = fleet.people.filter((p) => p.inSnapshot);
  for (let d = 0; d < fleet.days; d++) {
    const day = fleet.start + d * DAY;
    const daytime = () => day + rng.int(7 * 60, 19 * 60) * MINUTE + rng.int(0, 59_999);
    for (let k = Math.max(1, Math.round(3 * fleet.scale)); k > 0; k--) {
      const ts = daytime();
      const person = rng.pick(people);
      story.emit(story.iam.apiKeyUploaded(ts, person, actorOf(person)));
    }
    for (let k = Math.round(400 * fleet.scale); k > 0; k--)
      story.emit(story.iam.otherService(daytime(), rng.pick(people)));
  }
  const policy = { id: `ocid1.policy.oc1..aaaaaaaa${rng.base32(52)}`, name: 'object-storage-readers' };
  story.emit(
    story.iam.policyUpdated(
      fleet.start + 15 * HOUR + 31 * MINUTE,
      actorOf(story.admin),
      policy,
      ['Allow group Finance to read objects in compartment reports'],
      [
        'Allow group Finance to read objects in compartment reports',
        'Allow group Finance to read buckets in compartment reports',
      ],
    ),
  );
}

/**
 * Application pools, the nightly batch, monitoring and the ops automation of one DB system, over
 * the history (without statements) and the two days. Generated per DB system at write time (they
 * are most of the volume).
 */
export function machineSessions(fleet: Fleet, db: DbSystem, seed: number, appRate = APP_RATE): SessionPlan[] {
  const historyStart = fleet.start - fleet.history * DAY;
  const history = machines(fleet, db, new Rng(seed).fork(`machines-history/${db.index}`), {
    segments: [[historyStart, fleet.start, false]],
    days: Array.from({ length: fleet.history }, (_, d) => historyStart + d * DAY),
    appRate,
    history: true,
  });
  const days = machines(fleet, db, new Rng(seed).fork(`machines/${db.index}`), {
    segments: db.restartTs
      ? [
          [fleet.start, db.restartTs - 90_000, false],
          [db.restartTs + 120_000, fleet.end, true],
        ]
      : [[fleet.start, fleet.end, true]],
    days: Array.from({ length: fleet.days }, (_, d) => fleet.start + d * DAY),
    appRate,
    history: false,
  });
  return [...history, ...days];
}

/** Machine sessions over `segments` of uptime ([from, to, last]) and the daily jobs of `days`. */
function machines(
  fleet: Fleet,
  db: DbSystem,
  rng: Rng,
  o: { segments: [number, number, boolean][]; days: number[]; appRate: number; history: boolean },
): SessionPlan[] {
  const plans: SessionPlan[] = [];
  const prefix = o.history ? `h${db.index}` : `m${db.index}`;
  const extra = o.history ? { quiet: true } : {};
  const add = (p: Omit<SessionPlan, 'db' | 'status' | 'statements' | 'key'>) =>
    plans.push({ ...p, ...extra, db, status: 0, statements: [], key: `${prefix}-${plans.length}` });
  const POOL = 3;
  for (const [from, to, last] of o.segments) {
    for (const app of db.apps) {
      if (app.user.startsWith('batch_')) continue;
      for (let k = 0; k < POOL; k++) {
        let t = from + rng.int(0, 30_000);
        while (t < to) {
          const life = rng.int(1 * HOUR, 6 * HOUR);
          const end = t + life >= to && !last ? to : t + life;
          add({
            start: t,
            end,
            account: { user: app.user, host: app.host },
            login: { user: app.user, os: '', ip: rng.pick(app.ips), proxy: '' },
            program: app.program,
            workload: 'app',
            rate: (o.appRate * db.load * app.weight) / POOL,
          });
          t = end + rng.int(1000, 5000);
        }
      }
    }
    add({
      start: from + rng.int(5_000, 60_000),
      end: last ? fleet.end + HOUR : to,
      account: { user: 'monitor', host: '10.30.%' },
      login: { user: 'monitor', os: '', ip: '10.30.0.5', proxy: '' },
      program: 'mysqld_exporter',
      workload: 'monitor',
    });
  }
  const batch = db.apps.find((a) => a.user.startsWith('batch_'));
  for (const [d, day] of o.days.entries()) {
    if (batch) {
      const start = day + HOUR + rng.int(0, 300_000);
      add({
        start,
        end: start + rng.int(30, 50) * MINUTE,
        account: { user: batch.user, host: batch.host },
        login: { user: batch.user, os: '', ip: batch.ips[0]!, proxy: '' },
        program: batch.program,
        workload: 'batch',
      });
    }
    const ops = day + 2 * HOUR + rng.int(0, 600_000);
    plans.push({
      ...extra,
      db,
      start: ops,
      end: ops + 50_000,
      account: { user: 'admin', host: '%' },
      login: { user: 'admin', os: '', ip: '10.30.0.9', proxy: '' },
      status: 0,
      program: 'ops-automation',
      workload: 'scripted',
      statements: [
        { at: ops + 5_000, sqlCommand: 'select', query: 'SELECT @@version, @@read_only, @@super_read_only' },
        { at: ops + 9_000, sqlCommand: 'show_binlogs', query: 'SHOW BINARY LOGS' },
      ],
      key: `${prefix}-ops-${d}`,
    });
  }
  return plans;
}
