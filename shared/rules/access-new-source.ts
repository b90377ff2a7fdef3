import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import type { DbEvent, IamEvent } from '../../schemas/events.js';
import { defineRule, sessionFields } from '../detect/rule.js';
import { at, db, GROUPS, iam, type RuleCase, USERS } from '../detect/timeline.js';
import { Memo } from '../memo.js';
import { baselineBoundaryCases, baselineParams, firstSeen, maxValuesParam } from './first-seen.js';

const DAYS = 24 * 60;

/**
 * The network of `ip`: its IPv4 /`v4` or IPv6 /`v6` prefix; any other text stands for itself. An
 * IPv6 address that embeds an IPv4 address in its last 32 bits is that IPv4 address, however
 * written (`::ffff:10.0.1.5`, `::ffff:a00:105`, `0:0:0:0:0:ffff:10.0.1.5`), not one /`v6` network
 * holding every IPv4 address: IPv4-mapped (`::ffff:0:0/96`), NAT64 (the well-known prefix
 * `64:ff9b::/96`, RFC 6052) and IPv4-compatible (`::/96`, deprecated; `::` and `::1` are not IPv4).
 */
export function networkOf(ip: string, v4: number, v6: number): string {
  if (isIPv4(ip)) return masked(ip.split('.').map(Number), 8, v4, '.', 10);
  const groups = isIPv6(ip) ? ipv6Groups(ip) : undefined;
  if (groups === undefined) return ip;
  const [hi, lo] = groups.slice(6) as [number, number];
  if (embedsIpv4(groups)) return masked([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff], 8, v4, '.', 10);
  return masked(groups, 16, v6, ':', 16);
}

/**
 * Whether an IPv6 address (its eight groups) embeds an IPv4 address in its last 32 bits: under
 * `::ffff:0:0/96`, `64:ff9b::/96` or `::/96`, but for `::` and `::1`.
 */
function embedsIpv4(groups: number[]): boolean {
  const prefix = groups
    .slice(0, 6)
    .map((g) => g.toString(16))
    .join(':');
  if (prefix === '0:0:0:0:0:0') return groups[6] !== 0 || groups[7]! > 1;
  return prefix === '0:0:0:0:0:ffff' || prefix === '64:ff9b:0:0:0:0';
}

/**
 * Networks by source address, per pair of prefixes (a rule's parameters): a fleet's sessions come
 * from few addresses, where each connect parsed and masked its own.
 */
const networks = new Memo(64, (prefixes: string) => {
  const [v4, v6] = prefixes.split('/').map(Number) as [number, number];
  return new Memo(50_000, (ip: string) => networkOf(ip, v4, v6));
});

function masked(parts: number[], width: number, prefix: number, sep: string, radix: number): string {
  const out = parts.map((p, i) => {
    const keep = Math.max(0, Math.min(width, prefix - i * width));
    return (keep === 0 ? 0 : p & ~((1 << (width - keep)) - 1) & ((1 << width) - 1)).toString(radix);
  });
  return `${out.join(sep)}/${prefix}`;
}

/** The eight 16-bit groups of an IPv6 address (zone dropped, `::` and an IPv4 tail expanded). */
function ipv6Groups(ip: string): number[] {
  let text = ip.split('%')[0]!;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

const alice = (ts: number, conn: number, ip: string) =>
  db.connect({ at: ts, conn, account: 'dba_proxy', user: 'alice', ip, proxy: true });
const bob = (ts: number, conn: number, ip: string) =>
  db.connect({ at: ts, conn, account: 'dev_proxy', user: 'bob', ip, proxy: true });

/**
 * Bob's first session, and group logins nobody is named behind: from 10.0.0.9, then on day 15 from
 * 203.0.113.9, which `bobSignedOn` (arriving later than the lateness) names as his; then `more`.
 */
const unnamedThenBob = (...more: (DbEvent | IamEvent)[]) => [
  bob(at(0), 9, '10.0.1.5'),
  db.unnamed({ at: at(0), conn: 1, ip: '10.0.0.9' }),
  db.unnamed({ at: at(15 * DAYS), conn: 2, ip: '203.0.113.9' }),
  ...more,
];
const bobSignedOn = () => iam.signOn({ at: at(15 * DAYS - 5), user: USERS.bob, ip: '203.0.113.9' });
/**
 * Alice's first session from the first of `ips`, then on day 15 from the others, IPv6 addresses
 * embedding 10.0.1.0/24 or 203.0.113.0/24 addresses: one alert, for 203.0.113.0/24.
 */
const embeddedIpv4Case = (name: string, ips: string[]): RuleCase => ({
  name,
  events: () => ips.map((ip, i) => alice(at(i === 0 ? 0 : 15 * DAYS + (i - 1) * 30), i + 1, ip)),
  expect: { alerts: 1, severity: 'medium', match: { details: { network: '203.0.113.0/24' } } },
});
/** Alerts of a case on 203.0.113.0/24, one of them resolved as re-attributed. */
const namedLate = (alerts: number, note?: string) => ({
  alerts,
  severity: 'medium' as const,
  match: { details: { network: '203.0.113.0/24' } },
  resolutions: 1,
  resolution: { time: '2026-11-17T09:00:00.000Z', reason: 'attributed' as const, ...(note ? { note } : {}) },
});

/**
 * Alice removed from DBAdmins on day 15 (`late`: the removal arrives after her next session was
 * judged), connecting from 192.0.2.10, added back, then connecting from 192.0.2.11: a network the
 * session after the removal showed is no network of hers, so both sessions are alerts.
 */
function sessionAfterRemoval(name: string, late: boolean): RuleCase {
  const removal = () => iam.removed({ at: at(15 * DAYS), user: USERS.alice, group: GROUPS.dba });
  const back = () => [
    iam.added({ at: at(15 * DAYS + 100), user: USERS.alice, group: GROUPS.dba }),
    alice(at(16 * DAYS), 3, '192.0.2.11'),
  ];
  const before = () => [
    alice(at(0), 1, '10.0.1.5'),
    ...(late ? [] : [removal()]),
    alice(at(15 * DAYS + 10), 2, '192.0.2.10'),
  ];
  const alerts = {
    alerts: 2,
    severity: 'medium' as const,
    match: { identity: { principalId: USERS.alice }, details: { network: '192.0.2.0/24' } },
  };
  if (!late) return { name, events: () => [...before(), ...back()], expect: alerts };
  const clock = () => iam.signOn({ at: at(15 * DAYS + 90), user: USERS.dave, ip: '10.9.9.9' });
  return { name, events: () => [...before(), clock()], later: () => [removal(), ...back()], expect: alerts };
}

/** The memo of networks for a rule's prefixes, kept with its parameters (they do not change). */
const byParams = new WeakMap<object, Memo<string, string>>();
function networksOf(params: { ipv4Prefix: number; ipv6Prefix: number }): Memo<string, string> {
  let memo = byParams.get(params);
  if (memo === undefined) {
    memo = networks.get(`${params.ipv4Prefix}/${params.ipv6Prefix}`);
    byParams.set(params, memo);
  }
  return memo;
}

export const accessNewSource = defineRule({
  id: 'access.new-source',
  title: 'Database reached from a network new for the person',
  description:
    'A person (not an account) reaches a DB system from a source network absent from their baseline (an IPv4 /`ipv4Prefix`, IPv6 /`ipv6Prefix` prefix); sessions nobody is named behind are baselined per account. Silent while the subject is learning.',
  severity: 'medium',
  attack: ['T1078', 'T1133'],
  runbook:
    'Ask the person whether they connected from this network (travel, new laptop, new VPN pool); if not, treat their IAM credentials as stolen: revoke their sessions and tokens.',
  falsePositives: ['A new VPN address pool or office network.', 'Travel or working from home.'],
  params: z.strictObject({
    ...baselineParams,
    maxValues: maxValuesParam(256),
    ipv4Prefix: z.number().int().min(0).max(32).default(24),
    ipv6Prefix: z.number().int().min(0).max(128).default(48),
  }),
  suppressFor: 0,
  on: {
    session: (f, ctx) => {
      const { session } = f;
      if (!session.sourceIp) return [];
      const network = networksOf(ctx.params).get(session.sourceIp);
      return firstSeen(f, ctx, [network], (baseline, subject) => {
        if (baseline.knows(network, f.authenticated.ts)) return [];
        const who = session.identity?.name ?? session.mysqlAccount;
        return [
          {
            subject: `${subject}|${network}`,
            occurrence: String(f.authenticated.ts),
            ts: f.authenticated.ts,
            title: `${who} reached ${session.dbSystem.name} from ${network}, a network new for them`,
            ...sessionFields(session),
            evidence: session.attribution.evidence,
            details: { sessionId: session.id, network, baseline: session.identity ? 'person' : 'account' },
          },
        ];
      });
    },
  },
  cases: [
    {
      name: 'a person on a network never used before',
      events: () => [
        alice(at(0), 1, '10.0.1.5'),
        alice(at(DAYS), 2, '10.0.1.7'),
        alice(at(15 * DAYS), 3, '192.0.2.10'),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          identity: { principalId: USERS.alice, attribution: { method: 'login-name' } },
          mysqlAccount: 'dba_proxy@%',
          sourceIp: '192.0.2.10',
          title: 'alice@example.com reached prod-orders from 192.0.2.0/24, a network new for them',
          details: { network: '192.0.2.0/24', baseline: 'person' },
        },
      },
    },
    {
      name: 'another address of a known network is silent',
      events: () => [alice(at(0), 1, '10.0.1.5'), alice(at(15 * DAYS), 2, '10.0.1.200')],
      expect: { alerts: 0 },
    },
    {
      name: 'the usual second laptop, learned too, is silent',
      events: () => [
        alice(at(0), 1, '10.0.1.5'),
        alice(at(2 * DAYS), 2, '10.9.0.5'),
        alice(at(15 * DAYS), 3, '10.0.1.5'),
        alice(at(15 * DAYS + 60), 4, '10.9.0.5'),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a new hire inside the learning period is silent',
      events: () => [alice(at(0), 1, '10.0.1.5'), alice(at(3 * DAYS), 2, '192.0.2.10')],
      expect: { alerts: 0 },
    },
    {
      name: 'a shared account is baselined per person behind it',
      events: () => [
        db.connect({ at: at(0), conn: 1, account: 'dev_proxy', user: 'bob', ip: '10.0.1.5', proxy: true }),
        db.connect({ at: at(1), conn: 2, account: 'dev_proxy', user: 'dave', ip: '10.0.2.5', proxy: true }),
        db.connect({
          at: at(15 * DAYS),
          conn: 3,
          account: 'dev_proxy',
          user: 'dave',
          ip: '10.0.1.9',
          proxy: true,
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          identity: { principalId: USERS.dave },
          details: { network: '10.0.1.0/24', baseline: 'person' },
        },
      },
    },
    {
      name: 'sessions nobody is named behind are baselined per account',
      events: () => [
        db.connect({ at: at(0), conn: 1, account: 'app', ip: '10.20.0.5' }),
        db.connect({ at: at(15 * DAYS), conn: 2, account: 'app', ip: '10.20.0.6' }),
        db.connect({ at: at(15 * DAYS + 1), conn: 3, account: 'app', ip: '203.0.113.9' }),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          identity: null,
          mysqlAccount: 'app@%',
          title: 'app@% reached prod-orders from 203.0.113.0/24, a network new for them',
          details: { baseline: 'account' },
        },
      },
    },
    sessionAfterRemoval('a session after revocation is reported but never learned', false),
    sessionAfterRemoval('a removal arriving late takes back what the session after it taught', true),
    {
      name: 'ipv4Prefix: an address just inside the known prefix is silent',
      boundary: { param: 'ipv4Prefix', side: 'inside' },
      config: { rules: { 'access.new-source': { ipv4Prefix: 23 } } },
      events: () => [alice(at(0), 1, '10.0.2.5'), alice(at(15 * DAYS), 2, '10.0.3.255')],
      expect: { alerts: 0 },
    },
    {
      name: 'ipv4Prefix: an address just outside the known prefix is new',
      boundary: { param: 'ipv4Prefix', side: 'outside' },
      config: { rules: { 'access.new-source': { ipv4Prefix: 23 } } },
      events: () => [alice(at(0), 1, '10.0.2.5'), alice(at(15 * DAYS), 2, '10.0.4.0')],
      expect: { alerts: 1, severity: 'medium', match: { details: { network: '10.0.4.0/23' } } },
    },
    {
      name: 'ipv6Prefix: an address just inside the known /48 is silent',
      boundary: { param: 'ipv6Prefix', side: 'inside' },
      events: () => [alice(at(0), 1, '2001:db8:1::5'), alice(at(15 * DAYS), 2, '2001:db8:1:ffff:ffff::1')],
      expect: { alerts: 0 },
    },
    {
      name: 'ipv6Prefix: an address just outside the known /48 is new',
      boundary: { param: 'ipv6Prefix', side: 'outside' },
      events: () => [alice(at(0), 1, '2001:db8:1::5'), alice(at(15 * DAYS), 2, '2001:db8:2::')],
      expect: { alerts: 1, severity: 'medium', match: { details: { network: '2001:db8:2:0:0:0:0:0/48' } } },
    },
    {
      name: 'a session named late: the account it was judged as is resolved and unlearns the network',
      events: () => unnamedThenBob(iam.signOn({ at: at(15 * DAYS + 60), user: USERS.dave, ip: '10.9.9.9' })),
      later: () => [bobSignedOn(), db.unnamed({ at: at(16 * DAYS), conn: 3, ip: '203.0.113.10' })],
      expect: namedLate(
        3,
        'the session was re-attributed to bob@example.com (signon-correlated) and judged against their baseline',
      ),
    },
    {
      name: "a session named late, whose network the person's own later session raised already: one alert for them",
      events: () =>
        unnamedThenBob(
          bob(at(15 * DAYS + 30), 3, '203.0.113.9'),
          iam.signOn({ at: at(15 * DAYS + 90), user: USERS.dave, ip: '10.9.9.9' }),
        ),
      later: () => [bobSignedOn()],
      expect: namedLate(2),
    },
    {
      name: "a session named late beside the account's own session at the same instant and network: the account's alert and network stay",
      events: () =>
        unnamedThenBob(
          db.unnamed({ at: at(15 * DAYS), conn: 3, ip: '203.0.113.10' }),
          iam.signOn({ at: at(15 * DAYS + 60), user: USERS.dave, ip: '10.9.9.9' }),
        ),
      later: () => [bobSignedOn(), db.unnamed({ at: at(16 * DAYS), conn: 4, ip: '203.0.113.11' })],
      expect: { alerts: 2, severity: 'medium', match: { details: { network: '203.0.113.0/24' } } },
    },
    {
      name: "a first session named late: the account's learning starts at its next session",
      events: () => [
        db.unnamed({ at: at(0), conn: 1, ip: '10.0.0.9' }),
        db.unnamed({ at: at(60), conn: 2, ip: '10.1.0.9' }),
        iam.signOn({ at: at(180), user: USERS.dave, ip: '10.9.9.9' }),
      ],
      later: () => [
        iam.signOn({ at: at(-5), user: USERS.bob, ip: '10.0.0.9' }),
        db.unnamed({ at: at(14 * DAYS + 30), conn: 3, ip: '203.0.113.9' }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a session taken from a person late: their alert is resolved',
      events: () => [
        bob(at(0), 1, '10.0.1.5'),
        db.unnamed({ at: at(0), conn: 2, ip: '203.0.113.9' }),
        iam.signOn({ at: at(15 * DAYS - 5), user: USERS.bob, ip: '198.51.100.7' }),
        db.unnamed({ at: at(15 * DAYS), conn: 3, ip: '198.51.100.7' }),
        iam.signOn({ at: at(15 * DAYS + 60), user: USERS.dave, ip: '10.9.9.9' }),
      ],
      later: () => [iam.signOn({ at: at(15 * DAYS - 3), user: USERS.dave, ip: '198.51.100.7' })],
      expect: {
        alerts: 2,
        severity: 'medium',
        match: { details: { network: '198.51.100.0/24' } },
        resolutions: 1,
        resolution: {
          reason: 'attributed',
          note: "the session was re-attributed to nobody (dev_proxy@%, unattributed) and judged against the account's baseline",
        },
      },
    },
    embeddedIpv4Case('an IPv4-mapped address written out in full is its IPv4 network', [
      '0:0:0:0:0:ffff:10.0.1.5',
      '0:0:0:0:0:ffff:203.0.113.9',
      '::ffff:cb00:710a',
    ]),
    embeddedIpv4Case(
      'NAT64 addresses are their embedded IPv4 network: one client behind NAT64 is not every other',
      ['64:ff9b::10.0.1.5', '64:ff9b::a00:109', '64:ff9b::203.0.113.9', '64:ff9b:0:0:0:0:cb00:710a'],
    ),
    embeddedIpv4Case('IPv4-compatible addresses are their embedded IPv4 network', [
      '::10.0.1.5',
      '::a00:109',
      '::203.0.113.9',
    ]),
    ...baselineBoundaryCases(
      'access.new-source',
      (ts, conn, variant) => [alice(ts, conn, `10.${variant}.0.5`)],
      {
        severity: 'medium',
        match: { identity: { principalId: USERS.alice }, details: { baseline: 'person' } },
      },
    ),
  ],
});
