// The MySQL accounts of each DB system and their authentication_oci mappings, versioned by event
// time: seeded from the config, then changed by CREATE / ALTER / DROP / RENAME USER in the audit.
import { Memo } from '../memo.js';
import type { EntityCache } from '../state/entity-cache.js';
import { BEGINNING_OF_TIME, inForceAt } from '../time.js';
import { ABSENT, type Undone, undone } from './reverts.js';
import type { AccountChange, AccountRef } from './sql-facts.js';

export const OCI_PLUGIN = 'authentication_oci';

export type AccountVersion = {
  ts: number;
  key: string;
  plugin?: string;
  authenticationString?: string;
  dropped?: true;
};
/**
 * An audited change of whether an account can be logged in to without IAM: `open` when a statement
 * gave a proxied user name a password, another plugin, an unlocked account or an account on another
 * host; closed by ACCOUNT LOCK or DROP USER.
 */
export type DirectLogin = { ts: number; key: string; open: boolean };
export type AccountRow = {
  db: string;
  user: string;
  host: string;
  versions: AccountVersion[];
  direct?: DirectLogin[];
};

/** What an authentication_oci `AS '...'` string says. */
export type OciMapping = {
  tenancy?: string;
  user?: string;
  /** Each group and the account it maps to: a user name, or `user@host` (parsed: `parseAccountName`). */
  groupMapping: [groupId: string, target: MappingTarget][];
};

/** The account a group mapping names: its user, and its host where it names one. */
export type MappingTarget = { user: string; host?: string };

const ACCOUNT = 'account';

export type AccountSeed = AccountRef & {
  db: string;
  plugin: string;
  authenticationString?: string | undefined;
};

/** `user@host` as people read it; the anonymous account that carries group mappings is `''@%`. */
export function accountName(a: AccountRef): string {
  return `${a.user === '' ? "''" : a.user}@${a.host}`;
}

function rowKey(db: string, a: AccountRef): string {
  return `${db}\u0000${accountName(a)}`;
}

/** Parsed authentication_oci strings: the same few are read at every connect. */
const parsed = new Memo(10_000, parseMapping);

/** Parses an authentication_oci string; null when it is not the JSON the plugin expects. */
export function parseOciMapping(text: string): OciMapping | null {
  return parsed.get(text);
}

function parseMapping(text: string): OciMapping | null {
  let result: OciMapping | null = null;
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const v = value as Record<string, unknown>;
      const gm = v.group_mapping;
      result = {
        groupMapping:
          gm && typeof gm === 'object' && !Array.isArray(gm)
            ? Object.entries(gm).flatMap(([groupId, account]): [string, MappingTarget][] =>
                typeof account === 'string' ? [[groupId, parseAccountName(account)]] : [],
              )
            : [],
      };
      if (typeof v.tenancy === 'string') result.tenancy = v.tenancy;
      if (typeof v.user === 'string') result.user = v.user;
    }
  } catch {
    result = null;
  }
  return result;
}

export class Mappings {
  /**
   * Per DB system, the account rows that have had an authentication_oci group mapping, sorted by
   * row key: the only ones a group login can resolve through (local accounts and the accounts of
   * single IAM users are most rows, and a busy fleet's logins would scan them all).
   */
  private readonly mappingRows = new Map<string, { key: string; row: AccountRow }[]>();

  constructor(private readonly cache: EntityCache) {
    for (const [key, row] of cache.entries<AccountRow>(ACCOUNT))
      if (row.versions.some(mapsGroups)) this.indexMapping(key, row);
  }

  /** Accounts a seed (the configuration, a snapshot) lists, known from the beginning of time under its key. */
  seed(key: string, accounts: readonly AccountSeed[]): void {
    for (const a of accounts) {
      const row = this.row(a.db, a);
      if (row.versions.some((v) => v.key === key)) continue;
      const version: AccountVersion = { ts: BEGINNING_OF_TIME, key, plugin: a.plugin.toLowerCase() };
      if (a.authenticationString !== undefined) version.authenticationString = a.authenticationString;
      this.insert(a.db, row, version);
    }
  }

  /** Applies account changes learned from a statement; idempotent by event key. */
  apply(db: string, change: AccountChange, ts: number, key: string): void {
    const version = (v: Omit<AccountVersion, 'ts' | 'key'>): AccountVersion => ({ ts, key, ...v });
    if (change.op === 'drop') {
      this.insertOnce(db, change.account, version({ dropped: true }));
    } else if (change.op === 'rename') {
      const before = this.versionAt(db, change.account, ts);
      this.insertOnce(db, change.account, version({ dropped: true }));
      const moved: Omit<AccountVersion, 'ts' | 'key'> = {};
      if (before?.plugin) moved.plugin = before.plugin;
      if (before?.authenticationString) moved.authenticationString = before.authenticationString;
      this.insertOnce(db, change.to, version(moved));
    } else if (change.plugin || change.op === 'create') {
      const v: Omit<AccountVersion, 'ts' | 'key'> = {};
      if (change.plugin) v.plugin = change.plugin;
      if (change.authenticationString !== undefined) v.authenticationString = change.authenticationString;
      this.insertOnce(db, change.account, version(v));
    }
  }

  /** The account definition in force at `ts`: exact host first, then any host of that user. */
  versionAt(db: string, account: AccountRef, ts: number): AccountVersion | undefined {
    const exact = this.versionOf(rowKey(db, account), ts);
    if (exact || account.host === '%') return exact?.dropped ? undefined : exact;
    const wildcard = this.versionOf(rowKey(db, { user: account.user, host: '%' }), ts);
    return wildcard?.dropped ? undefined : wildcard;
  }

  /** The mapping of an authentication_oci account at `ts`, or null for any other account. */
  ociMappingAt(db: string, account: AccountRef, ts: number): OciMapping | null {
    const v = this.versionAt(db, account, ts);
    if (v?.plugin !== OCI_PLUGIN || v.authenticationString === undefined) return null;
    return parseOciMapping(v.authenticationString);
  }

  /**
   * Groups whose mapping resolves to account `proxied` at `ts`, in mapping order, with the mapping
   * account: by user name (case-sensitive), and by host (not) where the mapping names one.
   */
  groupsMappedTo(
    db: string,
    proxied: AccountRef,
    ts: number,
  ): { groupId: string; via: string; key: string }[] {
    const out: { groupId: string; via: string; key: string }[] = [];
    forEachGroupMapping(this.mappingRows.get(db) ?? [], ts, (row, key, groupId, target) => {
      if (
        target.user === proxied.user &&
        (target.host === undefined || target.host.toLowerCase() === proxied.host.toLowerCase())
      )
        out.push({ groupId, via: accountName(row), key });
    });
    return out;
  }

  /** The account a group mapping at `ts` names with MySQL user `user` (a proxied account), if any. */
  proxiedTarget(db: string, user: string, ts: number): MappingTarget | undefined {
    let found: MappingTarget | undefined;
    forEachGroupMapping(this.mappingRows.get(db) ?? [], ts, (_row, _key, _groupId, target) => {
      if (target.user === user) found ??= target;
    });
    return found;
  }

  /** Records that an audited statement opened (or closed) an account to logins without IAM; idempotent by key. */
  noteDirectLogin(db: string, account: AccountRef, change: DirectLogin): void {
    const row = this.row(db, account);
    if (row.direct?.some((d) => d.key === change.key)) return;
    row.direct = [...(row.direct ?? []), change].sort((a, b) => a.ts - b.ts || (a.key < b.key ? -1 : 1));
    this.cache.touch(ACCOUNT, rowKey(db, account));
  }

  /** The audited change in force at `ts` that left this account open to logins without IAM, if any. */
  directLoginAt(db: string, account: AccountRef, ts: number): DirectLogin | undefined {
    const d = inForceAt(this.cache.get<AccountRow>(ACCOUNT, rowKey(db, account))?.direct ?? [], ts);
    return d?.open ? d : undefined;
  }

  /** Every DB system and MySQL user a group maps to at `ts`. */
  accountsMappedFrom(groupId: string, ts: number): { db: string; account: string }[] {
    const out: { db: string; account: string }[] = [];
    for (const rows of this.mappingRows.values())
      forEachGroupMapping(rows, ts, (row, _key, g, target) => {
        if (g === groupId) out.push({ db: row.db, account: target.user });
      });
    // In a fixed order: DB systems are met in the order they became known.
    return out.sort((a, b) => (a.db === b.db ? (a.account < b.account ? -1 : 1) : a.db < b.db ? -1 : 1));
  }

  /**
   * Every DB system and MySQL user IAM user `userId` can log in to at `ts`: the accounts mapped to
   * them one to one, then those of the mapped groups `isMember` says they belong to (`group`).
   */
  accountsReachedBy(
    userId: string,
    ts: number,
    isMember: (groupId: string) => boolean,
  ): { db: string; account: string; group?: string }[] {
    const out: { db: string; account: string; group?: string }[] = [];
    for (const row of this.cache.values<AccountRow>(ACCOUNT)) {
      const v = inForceAt(row.versions, ts);
      if (v && !v.dropped && isMapping(v) && parseOciMapping(v.authenticationString)?.user === userId)
        out.push({ db: row.db, account: row.user });
    }
    for (const rows of this.mappingRows.values())
      forEachGroupMapping(rows, ts, (row, _key, groupId, { user }) => {
        if (isMember(groupId) && !out.some((o) => o.db === row.db && o.account === user))
          out.push({ db: row.db, account: user, group: groupId });
      });
    return out;
  }

  /** Every account row of every DB system, with its versions, for reports. */
  rows(): AccountRow[] {
    return [...this.cache.values<AccountRow>(ACCOUNT)];
  }

  /**
   * The earlier audited changes of this account that the change `key` undoes (its definition is
   * back to what it was before them); empty when it undoes none.
   */
  undoneBy(db: string, account: AccountRef, key: string): Undone[] {
    const versions = (this.cache.get<AccountRow>(ACCOUNT, rowKey(db, account))?.versions ?? []).map((v) => ({
      key: v.key,
      kind: 'account',
      state: v.dropped ? ABSENT : `${v.plugin ?? ''}\u0000${v.authenticationString ?? ''}`,
      // Seeds (the configuration, snapshots) are known from the beginning of time: not changes.
      change: v.ts !== BEGINNING_OF_TIME,
    }));
    return undone(
      versions,
      versions.findIndex((v) => v.key === key),
      ABSENT,
    );
  }

  private versionOf(key: string, ts: number): AccountVersion | undefined {
    return inForceAt(this.cache.get<AccountRow>(ACCOUNT, key)?.versions ?? [], ts);
  }

  private insertOnce(db: string, account: AccountRef, version: AccountVersion): void {
    const row = this.row(db, account);
    if (!row.versions.some((v) => v.key === version.key)) this.insert(db, row, version);
  }

  private row(db: string, account: AccountRef): AccountRow {
    const key = rowKey(db, account);
    const existing = this.cache.get<AccountRow>(ACCOUNT, key);
    if (existing) return existing;
    return this.cache.set<AccountRow>(ACCOUNT, key, {
      db,
      user: account.user,
      host: account.host,
      versions: [],
    });
  }

  private insert(db: string, row: AccountRow, version: AccountVersion): void {
    row.versions.push(version);
    row.versions.sort((a, b) => a.ts - b.ts || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const key = rowKey(db, row);
    this.cache.touch(ACCOUNT, key);
    if (mapsGroups(version)) this.indexMapping(key, row);
  }

  private indexMapping(key: string, row: AccountRow): void {
    let rows = this.mappingRows.get(row.db);
    if (!rows) {
      rows = [];
      this.mappingRows.set(row.db, rows);
    }
    if (rows.some((r) => r.row === row)) return;
    rows.push({ key, row });
    rows.sort((a, b) => (a.key < b.key ? -1 : 1));
  }
}

/**
 * An account name as written (`user@host`, each part maybe quoted): its user, and its host where it
 * names one. A group mapping names a user, or `user@host`.
 */
export function parseAccountName(value: string): MappingTarget {
  const at = value.lastIndexOf('@');
  const unquote = (part: string) => part.trim().replace(/^(['"`])(.*)\1$/, '$2');
  return at < 0 ? { user: value } : { user: unquote(value.slice(0, at)), host: unquote(value.slice(at + 1)) };
}

/** Whether two accounts are one: user names compare exactly, host names without case (`%` when none). */
export function sameAccount(a: MappingTarget, b: MappingTarget): boolean {
  return a.user === b.user && (a.host ?? '%').toLowerCase() === (b.host ?? '%').toLowerCase();
}

/** Calls `visit` for each group-to-user entry of the mappings in force at `ts` on these rows, in order. */
function forEachGroupMapping(
  rows: readonly { row: AccountRow }[],
  ts: number,
  visit: (row: AccountRow, key: string, groupId: string, target: MappingTarget) => void,
): void {
  for (const { row } of rows) {
    const v = inForceAt(row.versions, ts);
    if (!v || v.dropped || !isMapping(v)) continue;
    for (const [groupId, target] of parseOciMapping(v.authenticationString)?.groupMapping ?? [])
      visit(row, v.key, groupId, target);
  }
}

/** A version that maps IAM groups to MySQL users. */
function mapsGroups(v: AccountVersion): boolean {
  return isMapping(v) && (parseOciMapping(v.authenticationString)?.groupMapping.length ?? 0) > 0;
}

/** A version that maps IAM groups or a user (authentication_oci with its mapping). */
function isMapping(v: AccountVersion): v is AccountVersion & { authenticationString: string } {
  return v.plugin === OCI_PLUGIN && v.authenticationString !== undefined;
}
