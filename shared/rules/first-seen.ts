// What the first-seen rules (access.new-source, access.new-database, access.unusual-hour) share:
// whose baseline a session belongs to, which sessions a baseline learns from, their parameters,
// and the boundary cases of those parameters.
import { z } from 'zod';
import type { Severity } from '../../schemas/alert.js';
import { type ConfigInput, Duration } from '../../schemas/config.js';
import type { DbEvent, IamEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import type { Baseline, BaselineOptions } from '../detect/baselines.js';
import type { Finding, Outcome, RuleContext, SessionFact } from '../detect/rule.js';
import { type AlertMatch, type RuleCase, T0 } from '../detect/timeline.js';
import { Memo } from '../memo.js';
import { isAccessAfterRevocation } from './access-after-revocation.js';
import { isIdentityMismatch } from './access-identity-mismatch.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** `learningPeriod` and `expireAfter`. */
export const baselineParams = {
  learningPeriod: Duration.default(14 * DAY),
  expireAfter: Duration.default(90 * DAY),
};

/** `maxValues`, with the rule's default. */
export const maxValuesParam = (n: number) => z.number().int().min(1).default(n);

/** Subjects by person or account: the same few come back session after session (see `Baselines.open`). */
const subjects = {
  person: new Memo(50_000, (id: string) => `person:${id}`),
  account: new Memo(50_000, (account: string) => `account:${account}`),
};

/** Shared accounts are baselined per person behind them; sessions nobody is named behind, per account. */
export function baselineSubject(s: Pick<Session, 'identity' | 'mysqlAccount'>): string {
  return s.identity ? subjects.person.get(s.identity.id) : subjects.account.get(s.mysqlAccount);
}

/** A baseline that knows nothing: what a check finds against it is every finding it can make. */
const NOTHING_KNOWN: Baseline = {
  learning: () => false,
  knows: () => false,
  seenAfter: () => false,
  sharedAt: () => false,
  learn: () => undefined,
  unlearn: () => undefined,
};

/**
 * One first-seen check: `check` sees the subject's baseline (and its key) as it was before this
 * session, never while the subject is learning; then the baseline learns `values` from the session, unless the
 * session is itself a finding of access.after-revocation or access.identity-mismatch (also when it
 * becomes one late: a removal later than the lateness takes back what the session alone taught).
 *
 * A session that late IAM data re-attributes to another subject was judged against the wrong
 * baseline: that baseline unlearns what only this session taught it, and the alerts it raised
 * there are resolved (`attributed`), unless another session of that subject made at the same
 * instant showed the same value (their alert is one, and that value stays learned), while the session is judged again as its new subject's. A
 * value the new subject first showed in a later session counts as known then: that session was
 * judged with it new already, and raised what there was to raise.
 */
export function firstSeen(
  f: SessionFact,
  ctx: RuleContext<BaselineOptions>,
  values: readonly string[],
  check: (baseline: Baseline, subject: string) => Finding[],
): Outcome[] {
  const { session } = f;
  const subject = baselineSubject(session);
  const baseline = ctx.baseline(subject, ctx.params);
  const ts = f.authenticated.ts;
  const judged: Baseline =
    f.reattributed === undefined
      ? baseline
      : {
          ...NOTHING_KNOWN,
          learning: (at) => baseline.learning(at),
          knows: (value, at) => baseline.knows(value, at) || baseline.seenAfter(value, at),
        };
  const outcomes: Outcome[] = baseline.learning(ts) ? [] : check(judged, subject);
  if (!isAccessAfterRevocation(f) && !isIdentityMismatch(f)) baseline.learn(values, ts, session.id);
  // Judged again as a finding of one of those (a removal that came late): what it taught goes.
  else if (f.reattributed !== undefined) baseline.unlearn(values, ts, session.id);
  if (f.reattributed === undefined) return outcomes;
  const former = baselineSubject({ identity: f.reattributed.from, mysqlAccount: session.mysqlAccount });
  if (former === subject) return outcomes;
  const formerBaseline = ctx.baseline(former, ctx.params);
  // An alert another session of the former subject raised at the same instant is theirs too: it stays.
  const shared: Baseline = {
    ...NOTHING_KNOWN,
    knows: (value) => formerBaseline.sharedAt(value, ts, session.id),
  };
  const wrongs = check(shared, former);
  formerBaseline.unlearn(values, ts, session.id);
  const { method } = session.attribution;
  const now = session.identity
    ? `${session.identity.name} (${method}) and judged against their baseline`
    : `nobody (${session.mysqlAccount}, ${method}) and judged against the account's baseline`;
  for (const wrong of wrongs)
    outcomes.push({
      resolves: { subject: wrong.subject, occurrence: wrong.occurrence },
      ts,
      reason: 'attributed',
      note: `the session was re-attributed to ${now}`,
      evidence: session.attribution.evidence,
    });
  return outcomes;
}

type Events = (DbEvent | IamEvent)[];

/**
 * Boundary cases of the baseline parameters, for a rule whose learned value does not depend on the
 * time of day: `session(ts, conn, variant)` is one session of one subject whose values are
 * `variant`'s (0, 1, 2: three different sets of `valuesPerSession` values each); `found` is what
 * each alert of a finding case has.
 */
export function baselineBoundaryCases(
  rule: string,
  session: (ts: number, conn: number, variant: number) => Events,
  found: { severity: Severity; match: AlertMatch },
  valuesPerSession = 1,
  config: Partial<ConfigInput> = {},
): RuleCase[] {
  const maxValues = 2 * valuesPerSession;
  const seq =
    (...steps: [minutes: number, variant: number, secondsEarlier?: number][]) =>
    () =>
      steps.flatMap(([minutes, variant, early = 0], i) =>
        session(T0 + minutes * 60_000 - early * 1000, i + 1, variant),
      );
  const withParams = (params: Record<string, unknown>): Partial<ConfigInput> => ({
    ...config,
    rules: { [rule]: params },
  });
  const learnHour = withParams({ learningPeriod: 'PT1H', expireAfter: 'PT12H' });
  const finding = { alerts: 1, ...found };
  const boundary = (param: string, side: 'inside' | 'outside') => ({ param, side });
  return [
    {
      name: 'learningPeriod: just inside, a new value is only learned',
      boundary: boundary('learningPeriod', 'inside'),
      config: withParams({ learningPeriod: 'PT12H' }),
      events: seq([0, 0], [720, 1, 1]),
      expect: { alerts: 0 },
    },
    {
      name: 'learningPeriod: just outside, a new value is a finding',
      boundary: boundary('learningPeriod', 'outside'),
      config: withParams({ learningPeriod: 'PT12H' }),
      events: seq([0, 0], [720, 1]),
      expect: finding,
    },
    {
      name: 'expireAfter: a value seen just inside it is still known',
      boundary: boundary('expireAfter', 'inside'),
      config: learnHour,
      events: seq([0, 0], [30, 1], [720, 0, 1]),
      expect: { alerts: 0 },
    },
    {
      name: 'expireAfter: a value seen just outside it is forgotten and new again',
      boundary: boundary('expireAfter', 'outside'),
      config: learnHour,
      events: seq([0, 0], [30, 1], [720, 0]),
      expect: finding,
    },
    {
      name: 'expireAfter: a subject back just inside it keeps its baseline',
      boundary: boundary('expireAfter', 'inside'),
      config: learnHour,
      events: seq([0, 0], [720, 1, 1]),
      expect: finding,
    },
    {
      name: 'expireAfter: a subject back just outside it has an expired baseline and learns again',
      boundary: boundary('expireAfter', 'outside'),
      config: learnHour,
      events: seq([0, 0], [720, 1]),
      expect: { alerts: 0 },
    },
    {
      name: 'maxValues: just inside, every value is kept',
      boundary: boundary('maxValues', 'inside'),
      config: withParams({ learningPeriod: 'PT1H', maxValues }),
      events: seq([0, 0], [10, 1], [120, 0]),
      expect: { alerts: 0 },
    },
    {
      name: 'maxValues: just outside, the least recently seen value is forgotten',
      boundary: boundary('maxValues', 'outside'),
      config: withParams({ learningPeriod: 'PT1H', maxValues }),
      events: seq([0, 0], [10, 1], [20, 2], [120, 0]),
      expect: finding,
    },
  ];
}
