// The demo fleet: DB systems, IAM users and groups, MySQL accounts and group mappings, and the
// pipeline configuration that describes them. Everything is drawn from a seeded Rng.
import type { ConfigInput } from '../../schemas/config.js';
import { Rng } from './rng.js';

export const TEAMS = ['orders', 'payments', 'logistics', 'analytics'] as const;
export type Team = (typeof TEAMS)[number];
export type Env = 'prod' | 'staging' | 'dev';
export type Role = 'dba' | 'developer' | 'analyst' | 'staff' | 'admin';

/**
 * How a person's client logs in through a group mapping: the plugin sets `login.os`
 * (external-user), the client sends the person's name (login-name), or it sends the proxied
 * account's name and only a sign-on from the same IP tells who it was (account-name).
 */
export type LoginStyle = 'external-user' | 'login-name' | 'account-name';

export type Person = {
  id: string;
  /** IAM user name (an e-mail address). */
  name: string;
  /** Short name the person types as MySQL user (`grace.hopper`). */
  alias: string;
  display: string;
  role: Role;
  team: Team;
  /** VPN address used for sign-ons and database connections. */
  ip: string;
  /** The address of the person's second laptop (another network), for some people. */
  laptop?: string;
  style: LoginStyle;
  /** Classic console sign-on, or an identity-domain sign-on with an MFA factor. */
  signOn: 'classic' | 'domain';
  mfa: string;
  program: string;
  /** Has a 1-to-1 authentication_oci account on the team's DB systems. */
  oneToOne: boolean;
  /** In the directory snapshot (false for joiners, who arrive through IAM events). */
  inSnapshot: boolean;
};

export type GroupKey = 'dba' | 'bg' | 'ro' | 'contractors' | 'finance' | 'admins' | `dev-${Team}`;
export type Group = { key: GroupKey; id: string; name: string; breakGlass?: string };

export type AppAccount = { user: string; host: string; ips: string[]; program: string; weight: number };

export type DbSystem = {
  index: number;
  id: string;
  name: string;
  team: Team;
  env: Env;
  iamOnly: boolean;
  /** Raw audit file, or collector records (JSONL) as a stream consumer would ship them. */
  format: 'file' | 'collector';
  schema: string;
  tables: string[];
  apps: AppAccount[];
  /** Relative traffic. */
  load: number;
  /** Extra local accounts in mysql.user (beyond admin, apps and monitor). */
  extraLocal: string[];
  /** A maintenance restart (epoch ms): connection ids start again at 1. */
  restartTs?: number;
};

export type Fleet = {
  seed: number;
  scale: number;
  tenancy: string;
  /** First instant of the two working days (a Monday, 00:00 UTC). */
  start: number;
  /** Days of history before `start`: sessions and sign-ons only, so that baselines have learned. */
  history: number;
  days: number;
  end: number;
  snapshotTime: number;
  people: Person[];
  groups: Record<GroupKey, Group>;
  dbs: DbSystem[];
  /** Memberships of the directory snapshot. */
  memberships: { id: string; user: string; group: GroupKey }[];
  /** The authentication policy (mysql_dp_auth). */
  authPolicy: { id: string; name: string; statements: string[] };
  /**
   * The reporting application's IAM user, with a 1-to-1 account on the first production DB system:
   * the administrator rotates its API key, which the configuration acknowledges as expected.
   */
  serviceUser: { id: string; name: string; alias: string; db: string };
};

export const DAY = 86_400_000;
export const HOUR = 3_600_000;
export const MINUTE = 60_000;
const DEMO_START = Date.parse('2026-11-02T00:00:00Z');

const SCHEMAS: Record<Team, { schema: string; tables: string[] }> = {
  orders: { schema: 'orders', tables: ['orders', 'order_line', 'customer', 'inventory', 'cart_item'] },
  payments: { schema: 'payments', tables: ['payment', 'ledger_entry', 'refund', 'settlement', 'card_token'] },
  logistics: { schema: 'logistics', tables: ['shipment', 'parcel_event', 'carrier', 'route', 'warehouse'] },
  analytics: { schema: 'analytics', tables: ['fact_sales', 'dim_customer', 'dim_product', 'daily_kpi'] },
};

export const PROXY_ACCOUNTS = {
  dba: 'dba_proxy',
  bg: 'emergency_admin',
  ro: 'ro_proxy',
  dev: 'dev_proxy',
} as const;

/** What each proxied account may do on a DB system (`SHOW GRANTS` lines, for the access review). */
function proxyGrants(db: DbSystem): Record<string, string[]> {
  const schema = SCHEMAS[db.team].schema;
  return {
    [PROXY_ACCOUNTS.dba]: ['GRANT ALL PRIVILEGES ON *.* TO `dba_proxy`@`%` WITH GRANT OPTION'],
    [PROXY_ACCOUNTS.bg]: ['GRANT ALL PRIVILEGES ON *.* TO `emergency_admin`@`%` WITH GRANT OPTION'],
    [PROXY_ACCOUNTS.ro]: ['GRANT SELECT, SHOW VIEW ON *.* TO `ro_proxy`@`%`'],
    [PROXY_ACCOUNTS.dev]: [
      `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON \`${schema}\`.* TO \`dev_proxy\`@\`%\``,
    ],
  };
}

const ALLOWED_LOCAL = ['admin@%', 'app_%@10.20.%', 'batch_%@10.20.%', 'monitor@10.30.%'];
export const PRIVILEGED = [PROXY_ACCOUNTS.dba, PROXY_ACCOUNTS.bg, 'admin'];

const FIRST = [
  'ada',
  'alan',
  'grace',
  'linus',
  'barbara',
  'ken',
  'dennis',
  'margaret',
  'edsger',
  'donald',
  'frances',
  'john',
  'radia',
  'tim',
  'sophie',
  'leslie',
  'katherine',
  'niklaus',
  'bjarne',
  'guido',
  'yukihiro',
  'james',
  'anders',
  'hedy',
  'shafi',
  'silvio',
  'judea',
  'whitfield',
  'martin',
  'carol',
  'joan',
  'mary',
  'karen',
  'adele',
  'jean',
  'evelyn',
  'annie',
  'lynn',
  'susan',
  'ivan',
  'robin',
  'tony',
  'peter',
  'ole',
  'kristen',
  'bertrand',
  'rasmus',
  'larry',
  'sergey',
  'vint',
  'bob',
  'hal',
  'marvin',
  'herbert',
  'allen',
  'cynthia',
  'daphne',
  'fei',
  'jeff',
  'lisa',
];
const LAST = [
  'lovelace',
  'turing',
  'hopper',
  'torvalds',
  'liskov',
  'thompson',
  'ritchie',
  'hamilton',
  'dijkstra',
  'knuth',
  'allen',
  'mccarthy',
  'perlman',
  'berners',
  'wilson',
  'lamport',
  'johnson',
  'wirth',
  'stroustrup',
  'rossum',
  'matsumoto',
  'gosling',
  'hejlsberg',
  'lamarr',
  'goldwasser',
  'micali',
  'pearl',
  'diffie',
  'hellman',
  'shaw',
  'clarke',
  'kenyon',
  'jones',
  'goldberg',
  'sammet',
  'boyd',
  'easley',
  'conway',
  'kare',
  'sutherland',
  'milner',
  'hoare',
  'naur',
  'dahl',
  'nygaard',
  'meyer',
  'lerdorf',
  'wall',
  'page',
  'brin',
  'cerf',
  'kahn',
  'abelson',
  'minsky',
  'simon',
  'newell',
  'dwork',
  'koller',
  'li',
  'dean',
];
const PROGRAMS = ['mysqlsh', 'mysql', 'MySQLWorkbench', 'DBeaver'];
const MFA = ['TOTP', 'PUSH', 'FIDO2', 'SMS'];

/** DB system roles by position: the first four are the production systems of each team. */
const ENV_CYCLE: Env[] = ['prod', 'prod', 'staging', 'dev', 'prod'];

export function ocid(rng: Rng, type: string, region = ''): string {
  return `ocid1.${type}.oc1.${region}.aaaaaaaa${rng.base32(52)}`;
}

export function buildFleet(seed: number, scale: number, days = 2, history = 21): Fleet {
  const rng = new Rng(seed).fork('fleet');
  const tenancy = ocid(rng, 'tenancy');
  const start = DEMO_START;
  const s = (n: number, min: number) => Math.max(min, Math.round(n * scale));

  const groupDefs: [GroupKey, string, string?][] = [
    ['dba', 'DBAdmins'],
    ['bg', 'DB-BreakGlass', 'PT4H'],
    ['ro', 'DB-ReadOnly'],
    ...TEAMS.map((t): [GroupKey, string] => [`dev-${t}`, `Dev-${t[0]!.toUpperCase()}${t.slice(1)}`]),
    ['contractors', 'Contractors'],
    ['finance', 'Finance'],
    ['admins', 'Administrators'],
  ];
  const groups = Object.fromEntries(
    groupDefs.map(([key, name, bg]) => {
      const g: Group = { key, id: ocid(rng, 'group'), name };
      if (bg) g.breakGlass = bg;
      return [key, g];
    }),
  ) as Record<GroupKey, Group>;

  // People.
  const names = rng.shuffle(FIRST.flatMap((f) => LAST.map((l) => [f, l] as const)));
  let n = 0;
  const people: Person[] = [];
  const add = (role: Role, team: Team, extra: Partial<Person> = {}): Person => {
    const [first, last] = names[n % names.length]!;
    const suffix = n >= names.length ? String(Math.floor(n / names.length) + 1) : '';
    const alias = `${first}.${last}${suffix}`;
    const k = n++;
    const style: LoginStyle =
      role === 'dba'
        ? rng.weighted<LoginStyle>([
            ['external-user', 5],
            ['login-name', 5],
          ])
        : rng.weighted<LoginStyle>([
            ['external-user', 3],
            ['login-name', 5],
            ['account-name', 2],
          ]);
    const signOn = rng.chance(0.5) ? 'classic' : 'domain';
    const net = `${1 + Math.floor(k / 200)}.${10 + (k % 200)}`;
    const person: Person = {
      id: ocid(rng, 'user'),
      name: `${alias}@example.com`,
      alias,
      display: `${cap(first)} ${cap(last)}${suffix ? ` ${suffix}` : ''}`,
      role,
      team,
      ip: `10.8.${net}`,
      ...(k % 5 === 2 ? { laptop: `10.9.${net}` } : {}),
      style,
      // The MFA policy of DBAs is enforced by the identity domain.
      signOn: role === 'dba' ? 'domain' : signOn,
      mfa: rng.pick(MFA),
      program: rng.pick(PROGRAMS),
      oneToOne: role === 'developer' && rng.chance(0.15),
      inSnapshot: true,
      ...extra,
    };
    people.push(person);
    return person;
  };
  for (let i = 0; i < 2; i++) add('admin', 'orders', { style: 'login-name' });
  for (let i = 0; i < s(8, 5); i++) add('dba', TEAMS[i % TEAMS.length]!);
  for (const team of TEAMS) for (let i = 0; i < s(25, 6); i++) add('developer', team);
  for (let i = 0; i < s(50, 6); i++) add('analyst', TEAMS[i % TEAMS.length]!);
  for (let i = 0; i < s(35, 3); i++) add('staff', 'orders');
  // Some senior developers have personal (1-to-1) accounts; at least two, whatever the draw.
  for (const p of people.filter((x) => x.role === 'developer').slice(0, 2)) p.oneToOne = true;
  // Joiners: provisioned during the demo window.
  add('developer', 'orders', { inSnapshot: false, style: 'login-name', oneToOne: true });
  add('dba', 'payments', { inSnapshot: false, style: 'external-user' });
  add('analyst', 'analytics', { inSnapshot: false, style: 'login-name' });
  const memberships: Fleet['memberships'] = [];
  const member = (p: Person, group: GroupKey) =>
    memberships.push({ id: ocid(rng, 'groupmembership'), user: p.id, group });
  for (const p of people) {
    if (!p.inSnapshot) continue;
    if (p.role === 'admin') member(p, 'admins');
    if (p.role === 'dba') member(p, 'dba');
    if (p.role === 'developer') member(p, `dev-${p.team}`);
    if (p.role === 'analyst') member(p, 'ro');
    if (p.role === 'staff') member(p, 'finance');
  }

  // DB systems.
  const dbCount = s(20, 4);
  const perName = new Map<string, number>();
  const dbs: DbSystem[] = [];
  for (let i = 0; i < dbCount; i++) {
    const team = TEAMS[i % TEAMS.length]!;
    const env = ENV_CYCLE[Math.floor(i / TEAMS.length) % ENV_CYCLE.length]!;
    const stem = `${env}-${team}`;
    const nn = (perName.get(stem) ?? 0) + 1;
    perName.set(stem, nn);
    const { schema, tables } = SCHEMAS[team];
    const appIps = [1, 2, 3].map((k) => `10.20.${i + 1}.${10 + k}`);
    dbs.push({
      index: i,
      id: ocid(rng, 'mysqldbsystem', 'eu-frankfurt-1'),
      name: `${stem}-${String(nn).padStart(2, '0')}`,
      team,
      env,
      iamOnly: env !== 'dev',
      format: i % 5 === 3 ? 'collector' : 'file',
      schema,
      tables,
      apps: [
        { user: `app_${team}`, host: '10.20.%', ips: appIps, program: 'order-service', weight: 0.8 },
        {
          user: `batch_${team}`,
          host: '10.20.%',
          ips: appIps.slice(0, 1),
          program: 'nightly-batch',
          weight: 0.2,
        },
      ],
      load: env === 'prod' ? 1 : env === 'staging' ? 0.5 : 0.3,
      extraLocal: [],
    });
  }
  const devDb = dbs.find((d) => d.env === 'dev') ?? dbs[dbs.length - 1]!;
  devDb.restartTs = start + DAY + 4 * HOUR;

  const authPolicy = {
    id: ocid(rng, 'policy'),
    name: 'mysql-iam-auth',
    statements: [
      'ALLOW service mysql_dp_auth TO {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT, DYNAMIC_GROUP_INSPECT} IN TENANCY',
    ],
  };

  // Its own generator: the fleet's draws stay as they were.
  const reporting = dbs.find((d) => d.env === 'prod')!;
  const serviceUser = {
    id: ocid(new Rng(seed).fork('service-user'), 'user'),
    name: 'svc-reporting@example.com',
    alias: 'svc_reporting',
    db: reporting.id,
  };

  return {
    seed,
    scale,
    tenancy,
    start,
    history,
    days,
    end: start + days * DAY,
    snapshotTime: start - DAY,
    people,
    groups,
    dbs,
    memberships,
    authPolicy,
    serviceUser,
  };
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function groupMapping(fleet: Fleet, db: DbSystem, extra: Record<string, string> = {}): string {
  const g = fleet.groups;
  return JSON.stringify({
    tenancy: fleet.tenancy,
    group_mapping: {
      [g.dba.id]: PROXY_ACCOUNTS.dba,
      [g.bg.id]: PROXY_ACCOUNTS.bg,
      [g.ro.id]: PROXY_ACCOUNTS.ro,
      [g[`dev-${db.team}`].id]: PROXY_ACCOUNTS.dev,
      ...extra,
    },
  });
}

export function oneToOneString(fleet: Fleet, person: Pick<Person, 'id'>): string {
  return JSON.stringify({ tenancy: fleet.tenancy, user: person.id });
}

/** The pipeline configuration for the fleet as it was at the snapshot. */
export function fleetConfig(fleet: Fleet): ConfigInput {
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
  return {
    tenancy: fleet.tenancy,
    lateness: 'PT20M',
    tokenLifetime: 'PT1H',
    directory: {
      snapshotTime: iso(fleet.snapshotTime),
      users: [...fleet.people.filter((p) => p.inSnapshot), fleet.serviceUser].map((p) => ({
        id: p.id,
        name: p.name,
        aliases: [p.alias],
      })),
      groups: Object.values(fleet.groups).map((g) =>
        g.breakGlass
          ? { id: g.id, name: g.name, breakGlass: { maxDuration: g.breakGlass } }
          : { id: g.id, name: g.name },
      ),
      memberships: fleet.memberships.map((m) => ({
        id: m.id,
        user: m.user,
        group: fleet.groups[m.group].id,
      })),
    },
    rules: {
      // Break-glass access needs a phishing-resistant or push sign-on.
      'access.without-mfa': { breakGlassMinimumFactor: 'push' },
      // The administrator keeps the reporting service's API key: its rotations are acknowledged.
      'iam.credential-change': {
        expected: [
          {
            actors: [fleet.people.find((p) => p.role === 'admin')!.name],
            users: [fleet.serviceUser.name],
            credentials: ['api-key'],
            reason: 'reporting service key rotation',
          },
        ],
      },
    },
    dbSystems: fleet.dbs.map((db) => ({
      id: db.id,
      name: db.name,
      iamOnly: db.iamOnly,
      allowedLocalAccounts: ALLOWED_LOCAL,
      privilegedAccounts: PRIVILEGED,
      accounts: [
        { user: '', host: '%', plugin: 'authentication_oci', authenticationString: groupMapping(fleet, db) },
        ...Object.values(PROXY_ACCOUNTS).map((user) => ({
          user,
          host: '%',
          plugin: 'mysql_no_login',
          grants: proxyGrants(db)[user]!,
        })),
        ...fleet.people
          .filter((p) => p.inSnapshot && p.oneToOne && p.team === db.team)
          .map((p) => ({
            user: p.alias,
            host: '%',
            plugin: 'authentication_oci',
            authenticationString: oneToOneString(fleet, p),
            grants: [
              `GRANT SELECT, INSERT, UPDATE, DELETE ON \`${SCHEMAS[db.team].schema}\`.* TO \`${p.alias}\`@\`%\``,
            ],
          })),
        ...(db.id === fleet.serviceUser.db
          ? [
              {
                user: fleet.serviceUser.alias,
                host: '%',
                plugin: 'authentication_oci',
                authenticationString: oneToOneString(fleet, fleet.serviceUser),
                grants: [
                  `GRANT SELECT ON \`${SCHEMAS[db.team].schema}\`.* TO \`${fleet.serviceUser.alias}\`@\`%\``,
                ],
              },
            ]
          : []),
        { user: 'admin', host: '%', plugin: 'caching_sha2_password' },
        ...db.apps.map((a) => ({ user: a.user, host: a.host, plugin: 'caching_sha2_password' })),
        { user: 'monitor', host: '10.30.%', plugin: 'caching_sha2_password' },
        ...db.extraLocal.map((user) => ({ user, host: '%', plugin: 'caching_sha2_password' })),
      ],
    })),
    ...demoRoutes(fleet, iso),
  };
}

/**
 * Who would be told what (README "Routes"): the security on-call paged for critical findings and
 * break-glass use, the DBAs' daily digest of privilege, mapping and IAM changes, the payments
 * owners' digest of their DB systems, everything to the SIEM stream, high findings to a local file;
 * and the payments DB systems' night maintenance, muted for their owners and the pager.
 */
function demoRoutes(fleet: Fleet, iso: (ms: number) => string): Pick<ConfigInput, 'routes' | 'maintenance'> {
  const topic = (name: string) => `ocid1.onstopic.oc1.eu-frankfurt-1.demo-${name}`;
  const payments = fleet.dbs.filter((d) => d.team === 'payments' && d.env === 'prod').map((d) => d.name);
  const night = fleet.start + DAY;
  return {
    routes: [
      {
        name: 'page-critical',
        match: { minSeverity: 'critical' },
        output: { notifications: topic('security') },
      },
      {
        name: 'break-glass',
        match: { rules: ['break-glass.*'] },
        output: { notifications: topic('security') },
        suppress: 'PT1H',
      },
      {
        name: 'dba-daily',
        match: { rules: ['privilege.change', 'mapping.change', 'iam.*'] },
        output: { notifications: topic('dba'), perMinute: 10 },
        delivery: { digest: 'P1D' },
      },
      ...(payments.length > 0
        ? [
            {
              name: 'payments-owners',
              match: { dbSystems: payments },
              output: { notifications: topic('payments'), perMinute: 10 },
              delivery: { digest: 'PT4H' },
            },
          ]
        : []),
      { name: 'siem', output: { stream: 'ocid1.stream.oc1.eu-frankfurt-1.demo-siem', format: 'ocsf' } },
      { name: 'local-high', match: { minSeverity: 'high' }, output: { file: 'alerts-high.jsonl' } },
    ],
    maintenance:
      payments.length > 0
        ? [
            {
              from: iso(night),
              to: iso(night + 6 * HOUR),
              reason: 'planned night maintenance of the payments DB systems',
              dbSystems: payments,
              routes: ['page-critical', 'payments-owners'],
            },
          ]
        : [],
  };
}
