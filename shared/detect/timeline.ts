// A small language for writing event timelines: rule cases and scenario tests build canonical
// events with it against a standard test fleet.
import type { Alert, Resolution, Severity } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent, DbEvent, GapEvent, IamEvent, IamEventKind } from '../../schemas/events.js';
import { grantsDbAuthentication } from '../normalize/auth-policy.js';
import { toIso } from '../time.js';

export const T0 = Date.parse('2026-11-02T09:00:00Z');
export const DB = { id: 'ocid1.mysqldbsystem.oc1..prod1', name: 'prod-orders' };
export const USERS = {
  alice: 'ocid1.user.oc1..alice',
  bob: 'ocid1.user.oc1..bob',
  carol: 'ocid1.user.oc1..carol',
  dave: 'ocid1.user.oc1..dave',
} as const;
export const GROUPS = {
  dba: 'ocid1.group.oc1..dba',
  bg: 'ocid1.group.oc1..bg',
  dev: 'ocid1.group.oc1..dev',
} as const;

/** The standard test fleet: one iamOnly DB system with group, 1-to-1 and local accounts. */
export function baseConfig(): ConfigInput {
  return {
    tenancy: 'ocid1.tenancy.oc1..example',
    directory: {
      snapshotTime: '2026-11-01T00:00:00Z',
      users: [
        { id: USERS.alice, name: 'alice@example.com', aliases: ['alice'] },
        { id: USERS.bob, name: 'bob@example.com', aliases: ['bob'] },
        { id: USERS.carol, name: 'carol@example.com', aliases: ['carol'] },
        { id: USERS.dave, name: 'dave@example.com', aliases: ['dave'] },
      ],
      groups: [
        { id: GROUPS.dba, name: 'DBAdmins' },
        { id: GROUPS.bg, name: 'BreakGlass', breakGlass: { maxDuration: 'PT4H' } },
        { id: GROUPS.dev, name: 'Developers' },
      ],
      memberships: [
        { id: 'ocid1.groupmembership.oc1..alice-dba', user: USERS.alice, group: GROUPS.dba },
        { id: 'ocid1.groupmembership.oc1..bob-dev', user: USERS.bob, group: GROUPS.dev },
        { id: 'ocid1.groupmembership.oc1..dave-dev', user: USERS.dave, group: GROUPS.dev },
      ],
    },
    dbSystems: [
      {
        id: DB.id,
        name: DB.name,
        iamOnly: true,
        allowedLocalAccounts: ['admin@%'],
        privilegedAccounts: ['dba_proxy', 'emergency_admin'],
        accounts: [
          {
            user: '',
            host: '%',
            plugin: 'authentication_oci',
            authenticationString: JSON.stringify({
              tenancy: 'ocid1.tenancy.oc1..example',
              group_mapping: {
                [GROUPS.dba]: 'dba_proxy',
                [GROUPS.bg]: 'emergency_admin',
                [GROUPS.dev]: 'dev_proxy',
              },
            }),
          },
          {
            user: 'carol',
            host: '%',
            plugin: 'authentication_oci',
            authenticationString: JSON.stringify({
              tenancy: 'ocid1.tenancy.oc1..example',
              user: USERS.carol,
            }),
          },
          { user: 'admin', host: '%', plugin: 'caching_sha2_password' },
          { user: 'app', host: '%', plugin: 'caching_sha2_password' },
        ],
      },
    ],
  };
}

/** Minutes after T0. */
export const at = (minutes: number): number => T0 + minutes * 60_000;

type ConnectSpec = {
  at: number;
  conn: number;
  /** MySQL account (CURRENT_USER) user. */
  account: string;
  /** Its host; defaults to %. */
  host?: string;
  /** Name the client sent; defaults to the account. */
  user?: string;
  os?: string;
  ip?: string;
  proxy?: boolean;
  status?: number;
  db?: string;
  /** Connection attributes the client sent (`program_name`, `_client_name`, ...). */
  attributes?: Record<string, string>;
};

let seq = 0;

/** The audit log's own records, by kind. */
const SERVER_EVENTS: Partial<Record<DbEvent['kind'], string>> = {
  server_start: 'startup',
  server_stop: 'shutdown',
};

function dbEvent(ts: number, kind: DbEvent['kind'], fields: Partial<DbEvent>, dbId = DB.id): DbEvent {
  const recordId = seq++;
  const timestamp = toIso(ts).slice(0, 19).replace('T', ' ');
  const conn = fields.connectionId ?? null;
  return {
    source: 'mysql',
    kind,
    key: `${dbId}:${timestamp}:${recordId}:${conn ?? '-'}`,
    time: toIso(ts),
    ts,
    dbSystemId: dbId,
    recordId,
    connectionId: conn,
    class: kind === 'query' ? 'general' : SERVER_EVENTS[kind] ? 'audit' : 'connection',
    event: kind === 'query' ? 'status' : (SERVER_EVENTS[kind] ?? kind),
    login: null,
    account: null,
    status: 0,
    ...fields,
  };
}

function login(kind: 'connect' | 'change_user', s: ConnectSpec): DbEvent {
  return dbEvent(
    s.at,
    kind,
    {
      connectionId: s.conn,
      login: { user: s.user ?? s.account, os: s.os ?? '', ip: s.ip ?? '', proxy: s.proxy ? "''@'%'" : '' },
      account: { user: s.account, host: s.host ?? '%' },
      status: s.status ?? 0,
      connectionType: 'ssl',
      ...(s.attributes && { attributes: s.attributes }),
    },
    s.db,
  );
}

export const db = {
  connect(s: ConnectSpec): DbEvent {
    return login('connect', s);
  },
  /** A successful COM_CHANGE_USER on connection `conn`: its new login and account. */
  changeUser(s: Omit<ConnectSpec, 'status'>): DbEvent {
    return login('change_user', s);
  },
  /** A group-proxied login that names nobody (the client sent the shared account's own name). */
  unnamed(s: { at: number; conn: number; account?: string; ip?: string; db?: string }): DbEvent {
    const account = s.account ?? 'dev_proxy';
    return db.connect({
      at: s.at,
      conn: s.conn,
      account,
      user: account,
      ip: s.ip ?? '10.0.0.9',
      proxy: true,
      ...(s.db ? { db: s.db } : {}),
    });
  },
  disconnect(s: { at: number; conn: number; account: string; db?: string }): DbEvent {
    return dbEvent(
      s.at,
      'disconnect',
      {
        connectionId: s.conn,
        account: { user: s.account, host: '%' },
        login: { user: s.account, os: '', ip: '', proxy: '' },
      },
      s.db,
    );
  },
  query(s: {
    at: number;
    conn: number;
    account: string;
    sql: string;
    sqlCommand: string;
    status?: number;
    db?: string;
  }): DbEvent {
    return dbEvent(
      s.at,
      'query',
      {
        connectionId: s.conn,
        account: { user: s.account, host: '%' },
        login: { user: s.account, os: '', ip: '', proxy: '' },
        status: s.status ?? 0,
        sql: { command: 'Query', sqlCommand: s.sqlCommand, text: s.sql, status: s.status ?? 0 },
      },
      s.db,
    );
  },
  startup(s: { at: number; db?: string }): DbEvent {
    return dbEvent(s.at, 'server_start', {}, s.db);
  },
  shutdown(s: { at: number; db?: string }): DbEvent {
    return dbEvent(s.at, 'server_stop', {}, s.db);
  },
};

/** Who makes the IAM changes of the test timelines. */
const IAM_ADMIN = { id: 'ocid1.user.oc1..admin', name: 'iam-admin' };

function iamEvent(ts: number, kind: IamEventKind, fields: Partial<IamEvent>): IamEvent {
  return {
    source: 'iam',
    kind,
    key: `iam-${kind}-${seq++}`,
    time: toIso(ts),
    ts,
    eventType: `test.${kind}`,
    flavor: 'classic',
    actor: { ...IAM_ADMIN },
    extraction: {},
    ...fields,
  };
}

export const iam = {
  /** `actor`: who made the change (default iam-admin). */
  added(s: {
    at: number;
    user: string;
    name?: string;
    group: string;
    membershipId?: string;
    actor?: { id?: string; name?: string };
  }): IamEvent {
    return iamEvent(s.at, 'membership_added', {
      user: { id: s.user, ...(s.name ? { name: s.name } : {}) },
      group: { id: s.group },
      ...(s.membershipId ? { membershipId: s.membershipId } : {}),
      ...(s.actor ? { actor: s.actor } : {}),
    });
  },
  removed(s: { at: number; user?: string; group?: string; membershipId?: string }): IamEvent {
    return iamEvent(s.at, 'membership_removed', {
      ...(s.user ? { user: { id: s.user } } : {}),
      ...(s.group ? { group: { id: s.group } } : {}),
      ...(s.membershipId ? { membershipId: s.membershipId } : {}),
    });
  },
  signOn(s: { at: number; user: string; ip: string; mfa?: string; success?: boolean }): IamEvent {
    const success = s.success ?? true;
    return iamEvent(s.at, success ? 'signon_success' : 'signon_failure', {
      user: { id: s.user },
      signOn: { success, ip: s.ip, ...(s.mfa ? { mfaFactor: s.mfa } : {}) },
    });
  },
  userState(s: {
    at: number;
    user: string;
    kind: 'user_deleted' | 'user_deactivated' | 'user_reactivated';
  }): IamEvent {
    return iamEvent(s.at, s.kind, { user: { id: s.user } });
  },
  groupDeleted(s: { at: number; group: string }): IamEvent {
    return iamEvent(s.at, 'group_deleted', { group: { id: s.group } });
  },
  /** A credential of `user` (`id`: the one it names) created by iam-admin, or by `by` (`user` itself: self-service). */
  credential(s: {
    at: number;
    user: string;
    by?: string;
    type?: string;
    id?: string;
    change?: NonNullable<IamEvent['credential']>['change'];
  }): IamEvent {
    return iamEvent(s.at, 'credential_change', {
      user: { id: s.user },
      credential: {
        type: s.type ?? 'api-key',
        change: s.change ?? 'created',
        ...(s.id === undefined ? {} : { id: s.id }),
      },
      ...(s.by ? { actor: { id: s.by } } : {}),
    });
  },
  /** A DB system operation by iam-admin on the standard DB system (`db`: another one). */
  dbSystem(s: {
    at: number;
    operation: NonNullable<IamEvent['dbSystemChange']>['operation'];
    db?: string;
    resource?: string;
    configuration?: { from?: string; to?: string };
  }): IamEvent {
    const dbSystem = { id: s.db ?? DB.id };
    return iamEvent(s.at, 'dbsystem_change', {
      dbSystemChange: {
        operation: s.operation,
        dbSystem,
        resource: s.resource ? { id: s.resource } : dbSystem,
        ...(s.configuration ? { configuration: s.configuration } : {}),
      },
    });
  },
  /** IdP group `idpGroupName` of identity provider `idp` mapped onto `group` (or the mapping changed or deleted). */
  idpMapping(s: {
    at: number;
    kind: 'idp_mapping_created' | 'idp_mapping_updated' | 'idp_mapping_deleted';
    group: string;
    idpGroupName: string;
  }): IamEvent {
    return iamEvent(s.at, s.kind, {
      group: { id: s.group },
      idpGroupMapping: { idpId: 'ocid1.saml2idp.oc1..idp', idpGroupName: s.idpGroupName },
    });
  },
  /** Dynamic group `id` created, changed (`previous` -> `rule`) or deleted. */
  dynamicGroup(s: {
    at: number;
    kind: 'dynamic_group_created' | 'dynamic_group_updated' | 'dynamic_group_deleted';
    id: string;
    rule?: string;
    previous?: string;
  }): IamEvent {
    return iamEvent(s.at, s.kind, {
      dynamicGroup: {
        id: s.id,
        name: s.id.slice(s.id.lastIndexOf('.') + 1),
        ...(s.rule ? { matchingRule: s.rule } : {}),
        ...(s.previous ? { previousMatchingRule: s.previous } : {}),
      },
    });
  },
  /** A change of policy `p` by iam-admin; `name: null` for a record that gives only the OCID. */
  policy(s: {
    at: number;
    kind: 'policy_created' | 'policy_updated' | 'policy_deleted';
    statements: string[];
    name?: string | null;
    actorIp?: string;
  }): IamEvent {
    const mysqlAuth = s.statements.some(grantsDbAuthentication);
    const name = s.name === undefined ? 'p' : s.name;
    return iamEvent(s.at, s.kind, {
      policy: { id: 'ocid1.policy.oc1..p', ...(name ? { name } : {}), statements: s.statements, mysqlAuth },
      ...(s.actorIp ? { actor: { ...IAM_ADMIN, ip: s.actorIp } } : {}),
    });
  },
};

export const gap = {
  /**
   * A gap in the MySQL audit trail of the standard DB system's instance `instance` (default: its
   * primary endpoint, named `primary`, whose events carry no instance).
   */
  mysql(s: {
    from: number;
    to?: number;
    reason: GapEvent['reason'];
    instance?: string;
    skipped?: number;
  }): GapEvent {
    const time = s.to ?? s.from;
    const event: GapEvent = {
      source: 'gap',
      kind: 'audit_gap',
      key: `gap-${seq++}`,
      time: toIso(time),
      ts: time,
      trail: 'mysql-audit',
      dbSystemId: DB.id,
      dbSystemName: DB.name,
      instance: s.instance ?? 'primary',
      reason: s.reason,
      from: toIso(s.from),
    };
    event.primary = s.instance === undefined;
    if (s.to !== undefined) event.to = toIso(s.to);
    if (s.skipped !== undefined) event.skipped = s.skipped;
    return event;
  },
};

type DeepPartial<T> = T extends readonly (infer U)[]
  ? DeepPartial<U>[]
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** Fields an alert must have (a deep partial match: nested objects need only the keys named). */
export type AlertMatch = DeepPartial<Alert>;

/** One rule case: a timeline on the standard fleet and what alerts of the rule it must give. */
export type RuleCase = {
  name: string;
  /** Config overrides merged over `baseConfig()` (top-level keys replace). */
  config?: Partial<ConfigInput>;
  /**
   * The events (and `later`'s), built anew at each call: the builders number every event they
   * make, so two builds are different input (other keys, so other evidence and other ids of alerts
   * raised on an event). Runs that are compared take one build.
   */
  events: () => CanonicalEvent[];
  /** A second batch, ingested after the first was committed: events later than the lateness. */
  later?: () => CanonicalEvent[];
  /**
   * Alerts of this rule expected. A case that expects alerts also names their severity and, in
   * `match`, the fields that matter (who, attributed how, with what details): every alert has them.
   * `resolutions`: resolution records of this rule expected (default 0); `resolution`: what every
   * one of them says (its reason, and the note and evidence that matter), required when some are.
   */
  expect: {
    alerts: number;
    severity?: Severity;
    match?: AlertMatch;
    resolutions?: number;
    resolution?: Partial<Resolution>;
  };
  /**
   * The case sits just inside or just outside the limit of a numeric parameter (a window, threshold,
   * duration, `suppressFor` or a fleet setting the rule depends on, such as `maxDuration`). Every
   * numeric parameter needs a case on each side, with different outcomes.
   */
  boundary?: { param: string; side: 'inside' | 'outside' };
  /** Watermark at the end (ISO), as `replay --as-of`. */
  asOf?: string;
};
