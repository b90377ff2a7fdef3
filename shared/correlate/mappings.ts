// The MySQL accounts of each DB system and their authentication_oci mappings, versioned by event
// time: seeded from the config, then changed by CREATE / ALTER / DROP / RENAME USER in the audit.
import { Memo } from '../memo.js';
import type { EntityCache } from '../state/entity-cache.js';
import { BEGINNING_OF_TIME } from '../time.js';
import { ABSENT, type Undone, undone } from './reverts.js';
import type { AccountChange, AccountRef } from './sql-facts.js';

export const OCI_PLUGIN = 'authentication_oci';
/**
 * Plugins no one logs in to an account with but through IAM or a proxy: authentication_oci, and
 * mysql_no_login (MySQL's own answer to "a proxied account nobody logs in to directly").
 */
const NO_DIRECT_LOGIN: ReadonlySet<string | undefined> = new Set([OCI_PLUGIN, 'mysql_no_login']);

export type AccountVersion = {
  ts: number;
  key: string;
  plugin?: string;
  authenticationString?: string;
  dropped?: true;
  /**
   * ACCOUNT LOCK (true) or UNLOCK (false), where the statement or the snapshot says it; a CREATE
   * USER without either creates the account unlocked (false).
   */
  locked?: boolean;
  /**
   * A statement gave the account a way in of its own: a password, a plugin that logs in without
   * IAM, or a rename onto it. Where its lock state is not known, that opens it (`directLoginAt`).
   */
  credential?: true;
  /** Changes only how the account can be logged in to (`locked`, `credential`): its definition is the version before's. */
  accessOnly?: true;
  /**
   * Its place among the changes of a statement that changes several accounts one after another
   * (`RENAME USER a TO b, c TO a`): each part is a version of its own, in this order.
   */
  part?: number;
};
/** Since when (the version, by time and key) an account can be logged in to without IAM. */
export type DirectLogin = { ts: number; key: string };
export type AccountRow = {
  db: string;
  user: string;
  host: string;
  versions: AccountVersion[];
  /** Rows stored before versions carried the lock state: audited openings and closings, folded into `versions` when read. */
  direct?: (DirectLogin & { open: boolean })[];
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

/** An entry of a group mapping: the group, and the account it maps to. */
export type GroupTarget = { groupId: string; target: MappingTarget };

const ACCOUNT = 'account';
/** Per DB system, the time of the earliest snapshot that listed its every account (`{ ts }`). */
const ACCOUNTS_LISTED = 'accounts-listed';
/** Keys of a snapshot's seeds: a snapshot lists every account of the DB systems it seeds. */
export const SNAPSHOT_SEED = 'snapshot:';

export type AccountSeed = AccountRef & {
  db: string;
  plugin: string;
  authenticationString?: string | undefined;
  /** Whether the account is locked, where the seed knows (a snapshot; not the configuration). */
  locked?: boolean | undefined;
};

/** The lock state a snapshot read for an account (`account_locked`), at the snapshot's time. */
export type LockState = AccountRef & { db: string; locked: boolean };

/** `user@host` as people read it; the anonymous account that carries group mappings is `''@%`. */
export function accountName(a: AccountRef): string {
  return `${a.user === '' ? "''" : a.user}@${a.host}`;
}

/**
 * An account as MySQL tells it from the others: its user name exactly, its host name in lowercase
 * (MySQL stores host names in lowercase and compares them without case).
 */
export function accountKey(a: AccountRef): string {
  return accountName({ user: a.user, host: hostKey(a.host) });
}

/** An `accountName` (`user@host`; a user name may hold an `@`, a host not) keyed as `accountKey` keys it. */
export function nameKey(name: string): string {
  const at = name.lastIndexOf('@');
  return name.slice(0, at) + hostKey(name.slice(at));
}

/** A host name as MySQL compares it. */
function hostKey(host: string): string {
  return host.toLowerCase();
}

/** Whether two versions are one change: the same event key and part (`insertOnce` keeps one). */
function sameVersion(a: AccountVersion, b: AccountVersion): boolean {
  return a.key === b.key && a.part === b.part;
}

function rowKey(db: string, a: AccountRef): string {
  return `${db}\u0000${accountKey(a)}`;
}

/** The key of a user name's rows on a DB system (`Mappings.userRows`). */
function userKey(db: string, user: string): string {
  return `${db}\u0000${user}`;
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
  /**
   * Per DB system and user name (`userKey`), its account rows by row key, in the order the cache
   * holds them: the accounts a group mapping's target can name (`openAccountsOf`), without a scan
   * of every account of the fleet for each entry of each mapping change.
   */
  private readonly userRows = new Map<string, Map<string, AccountRow>>();
  /**
   * Per DB system, the entries of its group mappings (`groupTargets`) in force from `from` on: the
   * latest definition of its mapping rows. Forgotten when a definition (not a change of access
   * alone) is added to a row of the DB system: only that changes them, or which rows map groups.
   */
  private readonly latestTargets = new Map<string, { from: number; targets: readonly GroupTarget[] }>();
  /** Rows with lock states of access only `compact` has yet to look at: the earliest one's time. */
  private readonly locking = new Map<string, number>();
  /** The earliest time in `locking`: `compact` has nothing to do before the watermark passes it. */
  private compactDue = Number.POSITIVE_INFINITY;
  constructor(private readonly cache: EntityCache) {
    this.mergeHostsByCase();
    for (const [key, row] of cache.entries<AccountRow>(ACCOUNT)) {
      this.indexUser(key, row);
      if (row.direct) this.foldLegacyDirect(key, row);
      if (row.versions.some(mapsGroups)) this.indexMapping(key, row);
      for (const v of row.versions) if (isLockOnly(v)) this.noteLock(key, v.ts);
    }
  }

  /**
   * Accounts a seed (the configuration, a snapshot taken at `time`) lists, known from the beginning
   * of time under its key. A lock state it knows holds from the beginning too, and again from its
   * time, over what statements before it said: what the snapshot saw is what was in force then.
   */
  seed(key: string, accounts: readonly AccountSeed[], time?: number): void {
    for (const a of accounts) {
      const row = this.row(a.db, a);
      if (key.startsWith(SNAPSHOT_SEED) && time !== undefined) this.noteListed(a.db, time);
      if (row.versions.some((v) => v.key === key)) continue;
      const plugin = a.plugin.toLowerCase();
      const version: AccountVersion = { ts: BEGINNING_OF_TIME, key, plugin };
      if (a.authenticationString !== undefined) version.authenticationString = a.authenticationString;
      if (a.locked !== undefined) version.locked = a.locked;
      this.insert(a.db, row, version);
      if (a.locked !== undefined && time !== undefined && !NO_DIRECT_LOGIN.has(plugin))
        this.insert(a.db, row, { ts: time, key, locked: a.locked, accessOnly: true });
    }
  }

  /**
   * Applies account changes learned from a statement (or seen by a snapshot); idempotent by event
   * key and `part` (the change's place in a statement that makes several, one after another). A
   * change of the lock state or a password alone is a version of access only. CREATE USER IF NOT
   * EXISTS leaves an account that exists before it as it is (MySQL only warns), and ALTER USER IF
   * EXISTS one known not to exist then (MySQL only notes it): returns false for those, which
   * change nothing.
   */
  apply(db: string, change: AccountChange, ts: number, key: string, part?: number): boolean {
    const version = (v: Omit<AccountVersion, 'ts' | 'key'>): AccountVersion => ({
      ts,
      key,
      ...v,
      ...(part === undefined ? {} : { part }),
    });
    if (change.op === 'create' && change.ifNotExists && this.existsBefore(rowKey(db, change.account), ts))
      return false;
    if (change.op === 'alter' && change.ifExists && this.absentBefore(db, change.account, ts)) return false;
    if (change.op === 'drop') {
      this.insertOnce(db, change.account, version({ dropped: true }));
    } else if (change.op === 'rename') {
      const before = this.versionAt(db, change.account, ts);
      const { locked } = this.accessOf(rowKey(db, change.account), ts);
      this.insertOnce(db, change.account, version({ dropped: true }));
      const moved: Omit<AccountVersion, 'ts' | 'key'> = { credential: true };
      if (before?.plugin) moved.plugin = before.plugin;
      if (before?.authenticationString) moved.authenticationString = before.authenticationString;
      if (locked !== undefined) moved.locked = locked;
      this.insertOnce(db, change.to, version(moved));
    } else {
      const v: Omit<AccountVersion, 'ts' | 'key'> = {};
      if (change.plugin) v.plugin = change.plugin;
      if (change.authenticationString !== undefined) v.authenticationString = change.authenticationString;
      if (change.op === 'create' || change.locked !== undefined) v.locked = change.locked ?? false;
      if (change.password || (change.plugin !== undefined && !NO_DIRECT_LOGIN.has(change.plugin)))
        v.credential = true;
      if (change.plugin || change.op === 'create') this.insertOnce(db, change.account, version(v));
      else if (v.locked !== undefined || v.credential)
        this.insertOnce(db, change.account, version({ ...v, accessOnly: true }));
    }
    return true;
  }

  /**
   * What a snapshot taken at `ts` read of an account's lock state, applied once every statement up
   * to `ts` is: where the models say otherwise (an audited UNLOCK undone by a lock nothing audited,
   * a state stored before lock states were kept), it is recorded at `ts` under the snapshot's key,
   * as what was in force then. Returns whether it was; an account the models do not hold as it, or
   * one nobody logs in to directly, is left alone (drift events say what changed in those).
   */
  observeLock(state: LockState, ts: number, key: string): boolean {
    const definition = this.versionOf(rowKey(state.db, state), ts);
    if (!definition || definition.dropped || NO_DIRECT_LOGIN.has(definition.plugin)) return false;
    if (this.accessOf(rowKey(state.db, state), ts).locked === state.locked) return false;
    const row = this.row(state.db, state);
    if (row.versions.some((v) => v.key === key)) return false;
    this.insert(state.db, row, { ts, key, locked: state.locked, accessOnly: true });
    return true;
  }

  /** The account definition in force at `ts`: exact host first, then any host of that user. */
  versionAt(db: string, account: AccountRef, ts: number): AccountVersion | undefined {
    const exact = this.versionOf(rowKey(db, account), ts);
    if (exact || account.host === '%') return exact?.dropped ? undefined : exact;
    const wildcard = this.versionOf(rowKey(db, { user: account.user, host: '%' }), ts);
    return wildcard?.dropped ? undefined : wildcard;
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
      if (reaches(target, proxied)) out.push({ groupId, via: accountName(row), key });
    });
    return out;
  }

  /**
   * Each group-to-account entry of the group mappings in force at `ts` on a DB system, in mapping
   * order. Read before every account statement: those from the latest definition of the DB
   * system's mapping rows on are kept (`latestTargets`) until a definition changes on it.
   */
  groupTargets(db: string, ts: number): readonly GroupTarget[] {
    const latest = this.latestTargets.get(db);
    if (latest && ts >= latest.from) return latest.targets;
    const rows = this.mappingRows.get(db) ?? [];
    const targets: GroupTarget[] = [];
    forEachGroupMapping(rows, ts, (_row, _key, groupId, target) => targets.push({ groupId, target }));
    let from = Number.NEGATIVE_INFINITY;
    for (const { row } of rows)
      from = Math.max(from, definitionAt(row.versions, Number.POSITIVE_INFINITY)?.ts ?? from);
    if (ts >= from) this.latestTargets.set(db, { from, targets });
    return targets;
  }

  /**
   * The accounts a group mapping's target names (its user, on the host it names where it names
   * one) that are open to logins without IAM at `ts` (`directLoginAt`), each with since when.
   */
  openAccountsOf(
    db: string,
    target: MappingTarget,
    ts: number,
  ): { account: AccountRef; since: DirectLogin }[] {
    const out: { account: AccountRef; since: DirectLogin }[] = [];
    for (const row of this.userRows.get(userKey(db, target.user))?.values() ?? []) {
      if (!reaches(target, row)) continue;
      const since = this.directLoginAt(db, row, ts);
      if (since) out.push({ account: { user: row.user, host: row.host }, since });
    }
    return out;
  }

  /** The account a group mapping at `ts` names with MySQL user `user` (a proxied account), if any. */
  proxiedTarget(db: string, user: string, ts: number): MappingTarget | undefined {
    return this.groupTargets(db, ts).find((t) => t.target.user === user)?.target;
  }

  /**
   * Whether this account (exactly: user and host) can be logged in to without IAM at `ts`, and
   * since when; undefined when it cannot. Derived from its state in force then: it exists, its
   * plugin is neither authentication_oci nor mysql_no_login, and it is unlocked (a password is not
   * needed: an unlocked account without one lets anyone in). Where no statement or snapshot said
   * its lock state (an account only the configuration lists), only a statement that gave it a way
   * in of its own opens it. Locking does not stop proxying: a locked account still serves group logins.
   */
  directLoginAt(db: string, account: AccountRef, ts: number): DirectLogin | undefined {
    const { since } = this.accessOf(rowKey(db, account), ts);
    return since && { ts: since.ts, key: since.key };
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
      const v = definitionAt(row.versions, ts);
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

  /**
   * The proxied accounts (those a group mapping resolves to, `groupsMappedTo`) open to logins
   * without IAM at `ts` (`directLoginAt`), on every DB system, each with since when.
   */
  openProxiedAccounts(ts: number): { db: string; account: AccountRef; since: DirectLogin }[] {
    const out: { db: string; account: AccountRef; since: DirectLogin }[] = [];
    for (const row of this.cache.values<AccountRow>(ACCOUNT)) {
      const since = this.directLoginAt(row.db, row, ts);
      if (since && this.groupsMappedTo(row.db, row, ts).length > 0)
        out.push({ db: row.db, account: { user: row.user, host: row.host }, since });
    }
    return out.sort((a, b) =>
      a.db === b.db ? rowKey(a.db, a.account).localeCompare(rowKey(b.db, b.account)) : a.db < b.db ? -1 : 1,
    );
  }

  /**
   * The times within (from, to) at which an account's definition changed (its plugin or
   * authentication string: what groups and IAM users map to), sorted, for reports.
   */
  definitionChanges(from: number, to: number): number[] {
    const times = new Set<number>();
    for (const row of this.cache.values<AccountRow>(ACCOUNT))
      for (const v of row.versions) if (!v.accessOnly && v.ts > from && v.ts < to) times.add(v.ts);
    return [...times].sort((a, b) => a - b);
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
    const all = (this.cache.get<AccountRow>(ACCOUNT, rowKey(db, account))?.versions ?? []).filter(
      (v) => !v.accessOnly,
    );
    // A statement that changed the account in several parts (a rename swap) is one change: its last.
    const definitions = all.filter((v, i) => all[i + 1]?.key !== v.key);
    const versions = definitions.map((v) => ({
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
    return definitionAt(this.cache.get<AccountRow>(ACCOUNT, key)?.versions ?? [], ts);
  }

  /**
   * The account's lock state at `ts` as its versions say (undefined: not known), and the version
   * since which it has been open to logins without IAM, if it is (see `directLoginAt`).
   */
  private accessOf(key: string, ts: number): { locked?: boolean; since?: AccountVersion } {
    let plugin: string | undefined;
    let locked: boolean | undefined;
    let credential = false;
    let dropped = false;
    let since: AccountVersion | undefined;
    for (const v of this.cache.get<AccountRow>(ACCOUNT, key)?.versions ?? []) {
      if (v.ts > ts) break;
      if (v.dropped) [plugin, locked, credential, dropped] = [undefined, undefined, false, true];
      else {
        if (!v.accessOnly) [plugin, dropped] = [v.plugin, false];
        if (v.locked !== undefined) locked = v.locked;
        if (v.credential) credential = true;
      }
      const open =
        !dropped &&
        !NO_DIRECT_LOGIN.has(plugin) &&
        (locked === false || (locked === undefined && credential));
      since = open ? (since ?? v) : undefined;
    }
    return { ...(locked === undefined ? {} : { locked }), ...(since ? { since } : {}) };
  }

  /**
   * Forgets the lock states of access only before `before` that change nothing (ACCOUNT LOCK of an
   * account already locked, a snapshot that agrees with a statement): only a late event can still
   * come before them, so what the account was at any time stays as it was. Repeated lock
   * statements leave a row one version per change of its lock state.
   */
  compact(before: number): void {
    if (before <= this.compactDue) return;
    this.compactDue = Number.POSITIVE_INFINITY;
    for (const [key, from] of this.locking) {
      if (from >= before) {
        this.compactDue = Math.min(this.compactDue, from);
        continue;
      }
      this.locking.delete(key);
      const row = this.cache.get<AccountRow>(ACCOUNT, key);
      if (!row) continue;
      let locked: boolean | undefined;
      const kept = row.versions.filter((v) => {
        const same = isLockOnly(v) && v.locked === locked;
        if (v.dropped) locked = undefined;
        else if (v.locked !== undefined) locked = v.locked;
        if (v.ts >= before && isLockOnly(v)) this.noteLock(key, v.ts);
        return !same || v.ts >= before;
      });
      if (kept.length < row.versions.length) {
        row.versions = kept;
        this.cache.touch(ACCOUNT, key);
      }
    }
  }

  private noteLock(key: string, ts: number): void {
    this.locking.set(key, Math.min(this.locking.get(key) ?? ts, ts));
    this.compactDue = Math.min(this.compactDue, ts);
  }

  /** Whether the account exists just before `ts` (strictly: what happened in the same instant is not known to be before). */
  private existsBefore(key: string, ts: number): boolean {
    let exists = false;
    for (const v of this.cache.get<AccountRow>(ACCOUNT, key)?.versions ?? []) {
      if (v.ts >= ts) break;
      exists = !v.dropped;
    }
    return exists;
  }

  /**
   * Whether the account is known not to exist just before `ts` (strictly, as `existsBefore`): its
   * versions say it was dropped, or none says anything of it and a snapshot taken before `ts`
   * listed every account of its DB system. A snapshot says what existed at its time: an account it
   * does not list may have existed before (dropped since), and a statement before it on one the
   * state does not know, as on a DB system no snapshot listed, is not known to be absent.
   */
  private absentBefore(db: string, account: AccountRef, ts: number): boolean {
    const earlier = (this.cache.get<AccountRow>(ACCOUNT, rowKey(db, account))?.versions ?? []).filter(
      (v) => v.ts < ts,
    );
    const last = earlier.at(-1);
    if (last) return last.dropped === true;
    const listed = this.cache.get<{ ts: number }>(ACCOUNTS_LISTED, db);
    return listed !== undefined && listed.ts < ts;
  }

  /** A snapshot taken at `ts` listed every account of the DB system: the earliest such time is kept. */
  private noteListed(db: string, ts: number): void {
    const listed = this.cache.get<{ ts: number }>(ACCOUNTS_LISTED, db);
    if (listed === undefined || ts < listed.ts) this.cache.set(ACCOUNTS_LISTED, db, { ts });
  }

  /**
   * A row stored when audited openings and closings were kept apart from the versions: each becomes
   * the lock state it stood for (an opening left the account open until a lock or a drop).
   */
  private foldLegacyDirect(key: string, row: AccountRow): void {
    for (const d of row.direct ?? []) {
      const same = row.versions.find((v) => v.key === d.key);
      if (!same) row.versions.push({ ts: d.ts, key: d.key, locked: !d.open, accessOnly: true });
      else if (!same.dropped && same.locked === undefined) same.locked = !d.open;
    }
    row.versions.sort(byTimeAndKey);
    delete row.direct;
    this.cache.touch(ACCOUNT, key);
  }

  /**
   * Rows stored when accounts were told apart by the case of their host (`app@LocalHost` and
   * `app@localhost`): each is merged into the row of its host in lowercase, one account as in MySQL.
   */
  private mergeHostsByCase(): void {
    // Runs at every open: a row whose host is in lowercase (every row, once merged) builds no key.
    const stale: [string, AccountRow][] = [];
    for (const entry of this.cache.entries<AccountRow>(ACCOUNT))
      if (entry[1].host !== hostKey(entry[1].host)) stale.push(entry);
    for (const [key, row] of stale) {
      this.cache.delete(ACCOUNT, key);
      const into = this.row(row.db, row);
      // Against what the row held before: one key can stand for several versions of a row (a
      // snapshot's definition and the lock state it read), each of which is kept.
      const held = [...into.versions];
      into.versions.push(...row.versions.filter((v) => !held.some((h) => sameVersion(h, v))));
      into.versions.sort(byTimeAndKey);
      if (row.direct) into.direct = [...(into.direct ?? []), ...row.direct];
      this.cache.touch(ACCOUNT, rowKey(row.db, row));
    }
  }

  private insertOnce(db: string, account: AccountRef, version: AccountVersion): void {
    const row = this.row(db, account);
    if (row.versions.some((v) => sameVersion(v, version))) return;
    if (version.credential && !this.firstCredential(row, version)) return;
    this.insert(db, row, version);
  }

  /**
   * Whether `version` is the earliest way in of its own (`credential`) since the account was last
   * dropped: one is enough, until a drop, to open an account whose lock state nothing said, so a
   * password alone after another (a rotation) adds nothing, and the later passwords alone it comes
   * before are removed. The row keeps the earliest, whatever the order they came in.
   */
  private firstCredential(row: AccountRow, version: AccountVersion): boolean {
    let start = 0;
    let end = row.versions.length;
    for (const [i, v] of row.versions.entries())
      if (v.dropped && byTimeAndKey(v, version) < 0) start = i + 1;
      else if (v.dropped) {
        end = i;
        break;
      }
    const span = row.versions.slice(start, end).filter((v) => v.credential);
    if (span.some((v) => byTimeAndKey(v, version) < 0)) return !passwordOnly(version);
    const later = new Set(span.filter(passwordOnly));
    if (later.size > 0) row.versions = row.versions.filter((v) => !later.has(v));
    return true;
  }

  private row(db: string, account: AccountRef): AccountRow {
    const key = rowKey(db, account);
    const existing = this.cache.get<AccountRow>(ACCOUNT, key);
    if (existing) return existing;
    const row = this.cache.set<AccountRow>(ACCOUNT, key, {
      db,
      user: account.user,
      host: hostKey(account.host),
      versions: [],
    });
    this.indexUser(key, row);
    return row;
  }

  /**
   * Adds a row to `userRows`, after the rows the cache holds before it: a row the merge at open
   * made is indexed again by the constructor's pass over the cache, which puts it in its place.
   */
  private indexUser(key: string, row: AccountRow): void {
    const k = userKey(row.db, row.user);
    let rows = this.userRows.get(k);
    if (!rows) {
      rows = new Map();
      this.userRows.set(k, rows);
    }
    rows.delete(key);
    rows.set(key, row);
  }

  private insert(db: string, row: AccountRow, version: AccountVersion): void {
    row.versions.push(version);
    row.versions.sort(byTimeAndKey);
    const key = rowKey(db, row);
    this.cache.touch(ACCOUNT, key);
    if (!version.accessOnly) this.latestTargets.delete(db);
    if (isLockOnly(version)) this.noteLock(key, version.ts);
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

/** The mapping of an account version (`Mappings.versionAt`), or null for any account not authentication_oci's. */
export function ociMappingOf(v: AccountVersion | undefined): OciMapping | null {
  if (v?.plugin !== OCI_PLUGIN || v.authenticationString === undefined) return null;
  return parseOciMapping(v.authenticationString);
}

/** Parsed account names (`user@host`): a group login's proxy and mapping accounts, at every connect. */
const accountNames = new Memo(10_000, parseAccountName);

/** `parseAccountName`, made once per name: the object it gives is shared, and must not be changed. */
export function parsedAccountName(value: string): Readonly<MappingTarget> {
  return accountNames.get(value);
}

/** Whether a group mapping's target names the account: its user (exactly), on any host unless it names one (without case). */
export function reaches(target: MappingTarget, account: AccountRef): boolean {
  return target.host === undefined ? target.user === account.user : sameAccount(target, account);
}

/** Whether two accounts are one: user names compare exactly, host names without case (`%` when none). */
export function sameAccount(a: MappingTarget, b: MappingTarget): boolean {
  return a.user === b.user && hostKey(a.host ?? '%') === hostKey(b.host ?? '%');
}

/** Calls `visit` for each group-to-user entry of the mappings in force at `ts` on these rows, in order. */
function forEachGroupMapping(
  rows: readonly { row: AccountRow }[],
  ts: number,
  visit: (row: AccountRow, key: string, groupId: string, target: MappingTarget) => void,
): void {
  for (const { row } of rows) {
    const v = definitionAt(row.versions, ts);
    if (!v || v.dropped || !isMapping(v)) continue;
    for (const [groupId, target] of parseOciMapping(v.authenticationString)?.groupMapping ?? [])
      visit(row, v.key, groupId, target);
  }
}

/** Versions in event-time order, those of one time by key, then by part of their statement. */
function byTimeAndKey(a: AccountVersion, b: AccountVersion): number {
  return a.ts - b.ts || (a.key < b.key ? -1 : a.key > b.key ? 1 : (a.part ?? 0) - (b.part ?? 0));
}

/**
 * The definition in force at `ts`: the latest version up to it that is not one of access only.
 * Read from the latest version back (they are in time order): most reads are of the present, and
 * a row's history (a mapping changed again and again) is not walked for them.
 */
function definitionAt(versions: readonly AccountVersion[], ts: number): AccountVersion | undefined {
  for (let i = versions.length - 1; i >= 0; i--) {
    const v = versions[i]!;
    if (v.ts <= ts && !v.accessOnly) return v;
  }
  return undefined;
}

/** A version that only sets the account's lock state (no password, no definition). */
function isLockOnly(v: AccountVersion): boolean {
  return v.accessOnly === true && v.credential !== true && v.locked !== undefined;
}

/** A version that only gives the account a password (no lock state, no definition). */
function passwordOnly(v: AccountVersion): boolean {
  return v.accessOnly === true && v.credential === true && v.locked === undefined;
}

/** A version that maps IAM groups to MySQL users. */
function mapsGroups(v: AccountVersion): boolean {
  return isMapping(v) && (parseOciMapping(v.authenticationString)?.groupMapping.length ?? 0) > 0;
}

/** A version that maps IAM groups or a user (authentication_oci with its mapping). */
function isMapping(v: AccountVersion): v is AccountVersion & { authenticationString: string } {
  return v.plugin === OCI_PLUGIN && v.authenticationString !== undefined;
}
