// Ground truth of the first-seen rules. The generator knows who is really behind every session it
// planned, so it walks them in time order with the rules' documented meaning (each person's own
// history, the learning period after their first session, networks, DB systems and accounts, UTC
// hours within the margin) and expects an alert for each first use it finds: by an incident, by
// churn (a mover's new team, an on-call night), or by normal work (a benign first use).
import { accessNewDatabase } from '../rules/access-new-database.js';
import { accessNewSource, networkOf } from '../rules/access-new-source.js';
import { accessUnusualHour } from '../rules/access-unusual-hour.js';
import { DAY, PRIVILEGED } from './fleet.js';
import { type Story, sec } from './story.js';

type Baseline = { since: number; networks: Set<string>; access: Set<string>; hours: Set<number> };

export function expectFirstUses(story: Story): void {
  // The demo configuration leaves these rules at their defaults.
  const source = accessNewSource.params.parse({});
  const hours = accessUnusualHour.params.parse({});
  const { learningPeriod, expireAfter } = accessNewDatabase.params.parse({});
  const span = (story.fleet.history + story.fleet.days) * DAY;
  if (expireAfter <= span) throw new Error('the demo assumes nothing expires within its span');

  const baselines = new Map<string, Baseline>();
  const sessions = story.sessions
    .filter((s) => s.status === 0)
    .map((s) => ({ s, ts: sec(s.start) }))
    .sort((a, b) => a.ts - b.ts);
  for (const { s, ts } of sessions) {
    const subject = s.person?.id ?? `${s.account.user}@${s.account.host}`;
    const b = baselines.get(subject);
    const network = networkOf(s.login.ip, source.ipv4Prefix, source.ipv6Prefix);
    const access = `${s.db.id}|${s.account.user}@${s.account.host}`;
    const hour = new Date(ts).getUTCHours();
    const privileged = PRIVILEGED.includes(s.account.user);
    if (b && ts >= b.since + learningPeriod) {
      const expect = (
        rule: string,
        what: string,
        extra: { severity?: 'low' | 'high'; sourceIp?: string } = {},
      ) =>
        story.expect(rule, s.purpose?.kind ?? 'churn', `${s.purpose?.story ?? 'normal work'}: ${what}`, {
          at: ts,
          dbSystemId: s.db.id,
          ...(s.person
            ? { principalId: s.person.id }
            : { mysqlAccount: `${s.account.user}@${s.account.host}` }),
          ...extra,
        });
      const who = s.person?.name ?? `${s.account.user}@${s.account.host}`;
      if (!b.networks.has(network))
        expect('access.new-source', `${who} from ${network}, new for them`, { sourceIp: s.login.ip });
      if (!b.access.has(access))
        expect('access.new-database', `${who} on ${s.db.name} as ${s.account.user} for the first time`, {
          severity: privileged ? 'high' : 'low',
        });
      const usual = [...b.hours].some(
        (h) => Math.min((h - hour + 24) % 24, (hour - h + 24) % 24) <= hours.margin,
      );
      if (privileged && !usual)
        expect('access.unusual-hour', `${who} privileged at ${hour}:00 UTC, unusual for them`);
    }
    if (s.finding) continue;
    const learned = b ?? { since: ts, networks: new Set(), access: new Set(), hours: new Set() };
    baselines.set(subject, learned);
    learned.networks.add(network);
    learned.access.add(access);
    learned.hours.add(hour);
  }
}
