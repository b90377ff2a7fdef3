import { z } from 'zod';
import { defineRule, loginOccurrence, privilegedSession, sessionFields } from '../detect/rule.js';
import { at, db, GROUPS, iam, USERS } from '../detect/timeline.js';
import { toIso } from '../time.js';

/** Second factors from weakest to strongest; each level accepts itself and the stronger ones. */
export const FACTOR_LEVELS = ['any', 'totp', 'push', 'fido2'] as const;
type FactorLevel = (typeof FACTOR_LEVELS)[number];

const NO_FACTOR = new Set(['', 'NONE', 'PASSWORD', 'USERNAME_PASSWORD', 'USERNAMEPASSWORD']);

/**
 * How strong the factor a sign-on reports is, as an index into FACTOR_LEVELS (-1: no second
 * factor). Names are matched loosely (`FIDO_AUTHENTICATOR`, `OMA_PUSH`); an unknown name is some
 * second factor of unknown strength.
 */
export function factorStrength(factor: string | undefined): number {
  const f = (factor ?? '').trim().toUpperCase();
  if (NO_FACTOR.has(f)) return -1;
  if (/FIDO|WEBAUTHN|PASSKEY|SECURITY.?KEY/.test(f)) return 3;
  if (f.includes('PUSH')) return 2;
  if (f.includes('TOTP')) return 1;
  return 0;
}

const Level = z.enum(FACTOR_LEVELS);

const dba = (minutes: number, conn: number, extra: { os?: string; ip?: string; at?: number } = {}) =>
  db.connect({
    at: at(minutes),
    conn,
    account: 'dba_proxy',
    user: 'alice',
    proxy: true,
    ip: '10.0.0.5',
    ...extra,
  });
const signOn = (minutes: number, mfa?: string, user: string = USERS.alice) =>
  iam.signOn({ at: at(minutes), user, ip: '10.0.0.5', ...(mfa ? { mfa } : {}) });
const breakGlass = (mfa: string) => [
  iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
  signOn(5, mfa, USERS.bob),
  db.connect({ at: at(10), conn: 1, account: 'emergency_admin', user: 'bob', ip: '10.0.0.5', proxy: true }),
];
const params = (p: Record<string, unknown>) => ({ rules: { 'access.without-mfa': p } });
/** `alerts` findings about Alice's DBA sessions, each with `details` (and `title`). */
const weakDba = (alerts: number, details: Record<string, unknown>, title?: string) => ({
  alerts,
  severity: 'high' as const,
  match: {
    identity: { principalId: USERS.alice },
    mysqlAccount: 'dba_proxy@%',
    details,
    ...(title === undefined ? {} : { title }),
  },
});

export const accessWithoutMfa = defineRule({
  id: 'access.without-mfa',
  title: 'Privileged database session without a strong enough second factor',
  description:
    "A session on a privileged account or through a break-glass group whose IAM sign-on (the one that corroborated the attribution, else the person's latest within `tokenLifetime`) shows no second factor, or one weaker than `minimumFactor` (`breakGlassMinimumFactor` through a break-glass group). A session with no known sign-on is a finding only with `requireSignOn`.",
  severity: 'high',
  attack: ['T1078', 'T1556.006'],
  runbook:
    'Confirm with the person that they signed on; enforce the MFA policy (sign-on policy of the identity domain) for the groups mapped to privileged accounts, and review what the session did.',
  falsePositives: [
    'Classic console sign-ons, whose events may not report the factor used.',
    'A sign-on recorded by another identity domain or provider that is not ingested.',
  ],
  params: z.strictObject({
    minimumFactor: Level.default('any'),
    breakGlassMinimumFactor: Level.optional(),
    requireSignOn: z.boolean().default(false),
  }),
  suppressFor: 3_600_000,
  on: {
    session: (f, { params }) => {
      const { session, signOn } = f;
      if (session.attribution.method === 'local-account') return [];
      if (!privilegedSession(f)) return [];
      if (!signOn && !params.requireSignOn) return [];
      const required: FactorLevel =
        (f.breakGlass ? params.breakGlassMinimumFactor : undefined) ?? params.minimumFactor;
      const strength = factorStrength(signOn?.mfaFactor);
      if (signOn && strength >= FACTOR_LEVELS.indexOf(required)) return [];
      const who = session.identity?.name ?? `nobody named (${session.mysqlAccount})`;
      const seen = !signOn
        ? 'no IAM sign-on within the token lifetime'
        : strength < 0
          ? 'a sign-on without a second factor'
          : `a sign-on with ${signOn.mfaFactor}, below the required ${required}`;
      return [
        {
          subject: `${session.identity?.id ?? session.mysqlAccount}|${signOn?.key ?? 'no-sign-on'}`,
          occurrence: loginOccurrence(f, session.id),
          ts: f.authenticated.ts,
          title: `${who} reached ${session.mysqlAccount} on ${session.dbSystem.name} after ${seen}`,
          ...sessionFields(session),
          evidence: [f.authenticated.key, ...(signOn ? [signOn.key] : [])],
          details: {
            sessionId: session.id,
            factor: signOn?.mfaFactor ?? null,
            required,
            signOn: signOn
              ? { key: signOn.key, time: toIso(signOn.ts), corroborates: signOn.corroborates }
              : null,
          },
        },
      ];
    },
  },
  cases: [
    {
      name: 'the sign-on that corroborates a DBA login has no second factor',
      events: () => [signOn(0), dba(5, 1)],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: {
            principalId: USERS.alice,
            attribution: { method: 'login-name', confidence: 'corroborated' },
          },
          mysqlAccount: 'dba_proxy@%',
          title:
            'alice@example.com reached dba_proxy@% on prod-orders after a sign-on without a second factor',
          details: { factor: null, required: 'any', signOn: { corroborates: true } },
        },
      },
    },
    {
      name: 'a DBA who signed on with TOTP is silent',
      events: () => [signOn(0, 'TOTP'), dba(5, 1)],
      expect: { alerts: 0 },
    },
    {
      name: 'a verified login is judged by the latest sign-on within the token lifetime',
      events: () => [signOn(0, 'PUSH'), signOn(10), dba(20, 1, { os: USERS.alice, ip: '10.9.9.9' })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: {
            principalId: USERS.alice,
            attribution: { method: 'external-user', confidence: 'verified' },
          },
          details: { factor: null, signOn: { time: '2026-11-02T09:10:00.000Z', corroborates: false } },
        },
      },
    },
    {
      name: 'tokenLifetime: a sign-on just inside it is the one judged',
      boundary: { param: 'tokenLifetime', side: 'inside' },
      events: () => [
        iam.signOn({ at: at(0) + 1000, user: USERS.alice, ip: '10.0.0.5' }),
        dba(60, 1, { os: USERS.alice }),
      ],
      expect: weakDba(1, { signOn: { time: '2026-11-02T09:00:01.000Z' } }),
    },
    {
      name: 'tokenLifetime: a sign-on just outside it is not judged',
      boundary: { param: 'tokenLifetime', side: 'outside' },
      events: () => [
        iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.5' }),
        dba(60, 1, { os: USERS.alice }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'requireSignOn: no sign-on at all is a finding',
      config: params({ requireSignOn: true }),
      events: () => [dba(5, 1, { os: USERS.alice })],
      expect: weakDba(
        1,
        { signOn: null },
        'alice@example.com reached dba_proxy@% on prod-orders after no IAM sign-on within the token lifetime',
      ),
    },
    {
      name: 'requireSignOn: a local account is not an IAM session',
      config: params({ requireSignOn: true }),
      events: () => [db.connect({ at: at(5), conn: 1, account: 'admin' })],
      expect: { alerts: 0 },
    },
    {
      name: 'a non-privileged account is silent',
      events: () => [
        signOn(0, undefined, USERS.bob),
        db.connect({ at: at(5), conn: 1, account: 'dev_proxy', user: 'bob', ip: '10.0.0.5', proxy: true }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'several sessions after one weak sign-on give one alert',
      events: () => [signOn(0), dba(5, 1), dba(20, 2), dba(40, 3)],
      expect: weakDba(1, { occurrences: 3 }),
    },
    {
      name: 'a session exactly suppressFor (1 h) after the first merges into its alert',
      boundary: { param: 'suppressFor', side: 'inside' },
      config: params({ requireSignOn: true }),
      events: () => [dba(5, 1, { os: USERS.alice }), dba(65, 2, { os: USERS.alice })],
      expect: weakDba(1, { occurrences: 2 }),
    },
    {
      name: 'a session one second after the suppression window is a new alert',
      boundary: { param: 'suppressFor', side: 'outside' },
      config: params({ requireSignOn: true }),
      events: () => [dba(5, 1, { os: USERS.alice }), dba(65, 2, { os: USERS.alice, at: at(65) + 1_000 })],
      expect: weakDba(2, { occurrences: 1 }),
    },
    {
      name: 'minimumFactor: fido2 rejects TOTP',
      config: params({ minimumFactor: 'fido2' }),
      events: () => [signOn(0, 'TOTP'), dba(5, 1)],
      expect: weakDba(
        1,
        { factor: 'TOTP', required: 'fido2' },
        'alice@example.com reached dba_proxy@% on prod-orders after a sign-on with TOTP, below the required fido2',
      ),
    },
    {
      name: 'minimumFactor: any accepts a factor of unknown strength',
      events: () => [signOn(0, 'SMS'), dba(5, 1)],
      expect: { alerts: 0 },
    },
    {
      name: 'breakGlassMinimumFactor: push rejects TOTP through a break-glass group',
      config: params({ breakGlassMinimumFactor: 'push' }),
      events: () => breakGlass('TOTP'),
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: { principalId: USERS.bob },
          mysqlAccount: 'emergency_admin@%',
          group: { id: GROUPS.bg },
          details: { factor: 'TOTP', required: 'push' },
        },
      },
    },
    {
      name: 'breakGlassMinimumFactor: push accepts PUSH and FIDO2',
      config: params({ breakGlassMinimumFactor: 'push' }),
      events: () => [
        ...breakGlass('PUSH'),
        signOn(20, 'FIDO_AUTHENTICATOR', USERS.bob),
        db.connect({
          at: at(25),
          conn: 2,
          account: 'emergency_admin',
          user: 'bob',
          ip: '10.0.0.5',
          proxy: true,
        }),
      ],
      expect: { alerts: 0 },
    },
  ],
});
