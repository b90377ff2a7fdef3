// Normal IAM churn: joiners, movers and leavers, with the DBA work that follows them (personal
// accounts created and dropped). Changes to privileged groups and to authentication_oci accounts
// alert by design: the story records them as expected churn.
import { DAY, type DbSystem, HOUR, MINUTE, oneToOneString, type Person, TEAMS } from './fleet.js';
import { actorOf, IamEvents } from './oci-events.js';
import { type Cast, type Story, sec } from './story.js';

/** `day` (0-based) at hh:mm plus some seconds. */
export function clock(story: Story, day: number, hh: number, mm: number, ss?: number): number {
  return (
    story.fleet.start +
    day * DAY +
    hh * HOUR +
    mm * MINUTE +
    (ss ?? story.rng.int(0, 59)) * 1000 +
    story.rng.int(0, 999)
  );
}

/** A short DBA session that runs `statements` (one every ~30 s), each expected to alert. */
export function dbaChange(
  story: Story,
  dba: Person,
  db: DbSystem,
  start: number,
  statements: { sqlCommand: string; query: string; expect: { rule: string; story: string }[] }[],
  kind: 'incident' | 'churn',
): number[] {
  const begin = sec(start);
  const times = statements.map((_, i) => begin + (45 + 30 * i) * 1000);
  story.proxiedSession(dba, db, 'dba', begin, 3 + statements.length, {
    purpose: { kind, story: statements[0]?.expect[0]?.story ?? `${dba.name} changes ${db.name}` },
    statements: statements.map((s, i) => ({ at: times[i]!, sqlCommand: s.sqlCommand, query: s.query })),
  });
  statements.forEach((s, i) => {
    for (const e of s.expect) story.expect(e.rule, kind, e.story, { at: times[i]!, dbSystemId: db.id });
  });
  return times;
}

export function planChurn(story: Story, cast: Cast): void {
  const { fleet } = story;
  const { devJoiner, dbaJoiner, analystJoiner, teamMover, dbaMover, dbaLeaver, analystLeaver } = cast;

  // Joiners: the IAM user first, then the group; the developer also gets personal accounts.
  const joined = (
    p: Person,
    day: number,
    hh: number,
    mm: number,
    group: Parameters<Story['addMember']>[2],
  ) => {
    const created = clock(story, day, hh, mm);
    story.created.set(p.id, created);
    story.emit(story.iam.userCreated(created, actorOf(story.admin), p));
    story.addMember(created + 3 * MINUTE, p, group, {
      story: `joiner ${p.name} added to ${fleet.groups[group].name}`,
    });
  };
  joined(devJoiner, 0, 8, 31, `dev-${devJoiner.team}`);
  joined(dbaJoiner, 0, 9, 2, 'dba');
  joined(analystJoiner, 1, 8, 12, 'ro');

  const dba = story.stableDba();
  fleet.dbs
    .filter((db) => db.team === devJoiner.team)
    .forEach((db, i) => {
      const [at] = dbaChange(
        story,
        dba,
        db,
        clock(story, 0, 11, 2 + 4 * i),
        [
          {
            sqlCommand: 'create_user',
            query: `CREATE USER '${devJoiner.alias}'@'%' IDENTIFIED WITH 'authentication_oci' AS '${oneToOneString(fleet, devJoiner)}'`,
            expect: [
              {
                rule: 'mapping.change',
                story: `personal IAM account for joiner ${devJoiner.name} on ${db.name}`,
              },
              { rule: 'privilege.change', story: `CREATE USER for joiner ${devJoiner.name} on ${db.name}` },
            ],
          },
        ],
        'churn',
      );
      story.roster.openAccount(db, devJoiner, at! + 1000);
    });

  // Movers: between development teams, and from development to the DBA team.
  const to = TEAMS[(TEAMS.indexOf(teamMover.team) + 1) % TEAMS.length]!;
  // (These two arrive through the Audit API's ListEvents pages.)
  story.removeMember(clock(story, 0, 12, 40), teamMover, `dev-${teamMover.team}`, { channel: 'listevents' });
  story.addMember(clock(story, 0, 12, 41), teamMover, `dev-${to}`, { channel: 'listevents' });

  story.addMember(clock(story, 1, 10, 5), dbaMover, 'dba', {
    story: `${dbaMover.name} moves to the DBA team`,
  });
  story.removeMember(clock(story, 1, 10, 7), dbaMover, `dev-${dbaMover.team}`);

  // Leavers: groups first, then the user is deactivated or deleted.
  story.removeMember(clock(story, 0, 16, 2), dbaLeaver, 'dba', {
    story: `leaver ${dbaLeaver.name} removed from DBAdmins`,
  });
  const blocked = clock(story, 0, 16, 9);
  story.emit(story.iam.userDeactivated(blocked, actorOf(story.admin), dbaLeaver));
  story.roster.deactivate(dbaLeaver.id, blocked);

  story.removeMember(clock(story, 1, 15, 3), analystLeaver, 'ro');
  const deleted = clock(story, 1, 15, 6);
  story.emit(story.iam.userDeleted(deleted, actorOf(story.admin), analystLeaver));
  story.roster.deactivate(analystLeaver.id, deleted);
}

/**
 * The administrator puts a new API key on the reporting service's IAM user (its rotation) on the
 * second evening. The configuration expects it (rules.iam.credential-change.expected): its alert is
 * raised and resolved at once as acknowledged, and the key is not followed into the service's
 * sessions that follow (no access.planted-credential).
 */
export function planServiceKeyRotation(story: Story): void {
  const { fleet, admin } = story;
  const svc = fleet.serviceUser;
  // In the evening, after the day's findings on its DB system: their connection ids stay as they were.
  const ts = fleet.start + DAY + 21 * HOUR + 12 * MINUTE + 7_250;
  // Its own generator: the draws of the other IAM records stay as they were.
  story.emit(
    new IamEvents(fleet, story.rng.fork('service-key-rotation')).apiKeyUploaded(ts, svc, actorOf(admin)),
  );
  story.expect(
    'iam.credential-change',
    'churn',
    `${admin.name} rotated the API key of ${svc.name} (expected)`,
    {
      at: ts,
      principalId: svc.id,
      severity: 'high',
    },
  );
  // The service logs in with its new key: verified by its 1-to-1 account, with no planted credential.
  const db = fleet.dbs.find((d) => d.id === svc.db)!;
  for (const start of [ts + 20 * MINUTE, ts + 2 * HOUR + 3 * MINUTE].map(sec))
    story.session({
      db,
      start,
      end: start + 3 * MINUTE,
      account: { user: svc.alias, host: '%' },
      login: { user: svc.alias, os: '', ip: '10.20.7.21', proxy: '' },
      workload: 'analyst',
      program: 'reporting-service',
    });
}
