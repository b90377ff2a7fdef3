// How a pipeline's correlation state follows the snapshots `sync` stores. The first snapshot a
// state sees is its baseline: its memberships, accounts and user states are seeded, like the
// configuration's. Each later one is compared with the one before, part by part: what changed
// becomes an event of source `sync` at the later snapshot's time, which the correlator checks
// against the audit trail up to then (an audited change is nothing new; an unaudited one is
// drift, applied and shown to the rules). A part that is new (a new identity domain, a DB system
// whose accounts are read for the first time) is seeded instead: nothing was known before it.
import type {
  AccountDefinition,
  SyncAccountEvent,
  SyncDirectoryEvent,
  SyncEvent,
} from '../../schemas/events.js';
import type { Snapshot, SnapshotAccount, SnapshotMembership, SnapshotUser } from '../../schemas/snapshot.js';
import { PART } from '../../schemas/snapshot.js';
import { type Seed, snapshotSeedKey } from '../correlate/correlator.js';
import { accountKey, accountName } from '../correlate/mappings.js';

export type Following = { seeds: Seed[]; events: SyncEvent[] };

/** Seeds and drift events for a state whose last applied snapshot is `base` (none: a new state). */
export function followSnapshots(base: Snapshot | undefined, newer: readonly Snapshot[]): Following {
  const out: Following = { seeds: [], events: [] };
  let previous = base;
  for (const snapshot of newer) {
    const fresh = partsWithData(snapshot).filter((p) => !previous || !hasData(previous, p));
    out.seeds.push(seedOf(snapshot, new Set(fresh), previous));
    if (previous) out.events.push(...changes(previous, snapshot));
    previous = snapshot;
  }
  return out;
}

/**
 * What a snapshot seeds: every user and group (names and aliases), and the timelines of `parts`;
 * and the lock state of every other account it read at its own time, which holds from then.
 */
function seedOf(s: Snapshot, parts: ReadonlySet<string>, previous: Snapshot | undefined): Seed {
  const lockStates = s.dbSystems
    .filter((d) => !parts.has(PART.accounts(d.id)) && s.parts[PART.accounts(d.id)]?.readAt === s.time)
    .flatMap((d) =>
      (d.accounts ?? []).map((a) => ({ db: d.id, user: a.user, host: a.host, locked: a.locked })),
    );
  return {
    key: snapshotSeedKey(s.id),
    time: Date.parse(s.time),
    users: s.directory.users.map(({ part, ...u }) => u),
    groups: s.directory.groups.map(({ part, ...g }) => g),
    memberships: s.directory.memberships
      .filter((m) => parts.has(m.part))
      .map((m) => ({
        user: m.user,
        group: m.group,
        id: m.id,
        since: m.since ? Date.parse(m.since) : undefined,
      })),
    accounts: s.dbSystems
      .filter((d) => d.accounts && parts.has(PART.accounts(d.id)))
      .flatMap((d) =>
        (d.accounts ?? []).map((a) => ({
          db: d.id,
          user: a.user,
          host: a.host,
          plugin: a.plugin,
          authenticationString: a.authenticationString,
          locked: a.locked,
        })),
      ),
    ...(previous && lockStates.length > 0
      ? {
          lockStates: {
            snapshot: s.id,
            previous: { id: previous.id, time: previous.time },
            accounts: lockStates,
          },
        }
      : {}),
  };
}

/** Parts whose data the snapshot holds: read now, or kept from an earlier read after a failure. */
function partsWithData(s: Snapshot): string[] {
  return Object.keys(s.parts).filter((p) => hasData(s, p));
}

function hasData(s: Snapshot, part: string): boolean {
  const p = s.parts[part];
  if (!p || (p.status === 'failed' && p.readAt === s.time)) return false;
  if (!part.startsWith('accounts:')) return true;
  return s.dbSystems.some((d) => PART.accounts(d.id) === part && d.accounts !== undefined);
}

/** What changed from `before` to `after` in the parts both hold. */
function changes(before: Snapshot, after: Snapshot): SyncEvent[] {
  const both = new Set(partsWithData(after).filter((p) => hasData(before, p)));
  const observed = (change: string, changedAt?: string) => ({
    snapshot: after.id,
    previousSnapshot: before.id,
    since: before.time,
    ...(changedAt ? { changedAt } : {}),
    change,
  });
  const head = { source: 'sync' as const, time: after.time, ts: Date.parse(after.time) };
  const names = new Map([...before.directory.users, ...after.directory.users].map((u) => [u.id, u.name]));
  const groupNames = new Map(
    [...before.directory.groups, ...after.directory.groups].map((g) => [g.id, g.name]),
  );
  const events: SyncEvent[] = [];

  const membership = (kind: SyncDirectoryEvent['kind'], m: SnapshotMembership): SyncDirectoryEvent => {
    const user = names.get(m.user) ?? m.user;
    const group = groupNames.get(m.group) ?? m.group;
    return {
      ...head,
      kind,
      key: `sync:${after.id}:${kind}:${m.user}:${m.group}`,
      observed: observed(
        `${user} ${kind === 'membership_added' ? 'added to' : 'removed from'} ${group}`,
        kind === 'membership_added' ? m.since : undefined,
      ),
      actor: {},
      user: { id: m.user, name: user },
      group: { id: m.group, name: group },
      ...(m.id ? { membershipId: m.id } : {}),
    };
  };
  const memberships = (s: Snapshot) =>
    new Map(
      s.directory.memberships.filter((m) => both.has(m.part)).map((m) => [`${m.user}\u0000${m.group}`, m]),
    );
  const [was, is] = [memberships(before), memberships(after)];
  for (const [k, m] of is) if (!was.has(k)) events.push(membership('membership_added', m));
  for (const [k, m] of was) if (!is.has(k)) events.push(membership('membership_removed', m));

  const users = (s: Snapshot) =>
    new Map(s.directory.users.filter((u) => both.has(u.part)).map((u) => [u.id, u]));
  const [usersBefore, usersAfter] = [users(before), users(after)];
  const userEvent = (u: SnapshotUser, state: SnapshotUser['state']): SyncDirectoryEvent => {
    const kind =
      state === 'deleted' ? 'user_deleted' : state === 'inactive' ? 'user_deactivated' : 'user_reactivated';
    return {
      ...head,
      kind,
      key: `sync:${after.id}:${kind}:${u.id}`,
      observed: observed(
        `${u.name} ${state === 'deleted' ? 'deleted' : state === 'inactive' ? 'deactivated' : 'reactivated'}`,
      ),
      actor: {},
      user: { id: u.id, name: u.name },
    };
  };
  for (const [id, u] of usersBefore) {
    const now = usersAfter.get(id);
    if (!now) events.push(userEvent(u, 'deleted'));
    else if (now.state !== u.state) events.push(userEvent(now, now.state));
  }

  for (const db of after.dbSystems) {
    const old = before.dbSystems.find((d) => d.id === db.id);
    if (!both.has(PART.accounts(db.id)) || !old?.accounts || !db.accounts) continue;
    const accounts = (list: SnapshotAccount[]) => new Map(list.map((a) => [accountKey(a), a]));
    const [a0, a1] = [accounts(old.accounts), accounts(db.accounts)];
    const accountEvent = (
      kind: SyncAccountEvent['kind'],
      a: SnapshotAccount,
      b: SnapshotAccount | undefined,
      c: SnapshotAccount | undefined,
    ): SyncAccountEvent => {
      const was = b && definition(b, scoped(b, c));
      const now = c && definition(c, scoped(b, c));
      return {
        ...head,
        kind,
        key: `sync:${after.id}:${kind}:${db.id}:${accountName(a)}`,
        observed: observed(describeAccountChange(kind, was, now)),
        dbSystemId: db.id,
        target: { user: a.user, host: a.host },
        ...(was ? { before: was } : {}),
        ...(now ? { after: now } : {}),
      };
    };
    for (const [k, a] of a1) {
      const prior = a0.get(k);
      if (!prior) events.push(accountEvent('account_created', a, undefined, a));
      else if (
        JSON.stringify(definition(prior, scoped(prior, a))) !==
        JSON.stringify(definition(a, scoped(prior, a)))
      )
        events.push(accountEvent('account_changed', a, prior, a));
    }
    for (const [k, a] of a0) if (!a1.has(k)) events.push(accountEvent('account_dropped', a, a, undefined));
  }
  return events;
}

/** Whether database and table privileges are compared: where each snapshot holding the account read them. */
function scoped(...sides: (SnapshotAccount | undefined)[]): boolean {
  return sides.every((a) => a === undefined || a.grants !== undefined);
}

/**
 * An account as a drift event shows it; `scoped`: with its database and table privileges
 * (`PRIVILEGE ON scope`), else its global ones alone.
 */
function definition(a: SnapshotAccount, scoped: boolean): AccountDefinition {
  return {
    plugin: a.plugin,
    ...(a.authenticationString !== undefined ? { authenticationString: a.authenticationString } : {}),
    locked: a.locked,
    privileges: scoped ? a.privileges : a.privileges.filter((p) => !p.includes(' ON ')),
  };
}

function describeAccountChange(
  kind: SyncAccountEvent['kind'],
  before: AccountDefinition | undefined,
  after: AccountDefinition | undefined,
): string {
  if (kind === 'account_created') return `account created (${after?.plugin})`;
  if (kind === 'account_dropped') return 'account dropped';
  const parts: string[] = [];
  if (before?.plugin !== after?.plugin) parts.push(`plugin ${before?.plugin} -> ${after?.plugin}`);
  else if (before?.authenticationString !== after?.authenticationString) parts.push('IAM mapping changed');
  if (before?.locked !== after?.locked) parts.push(after?.locked ? 'account locked' : 'account unlocked');
  const added = (after?.privileges ?? []).filter((p) => !before?.privileges.includes(p));
  const removed = (before?.privileges ?? []).filter((p) => !after?.privileges.includes(p));
  if (added.length + removed.length > 0)
    parts.push(`privileges ${[...added.map((p) => `+${p}`), ...removed.map((p) => `-${p}`)].join(' ')}`);
  return parts.join('; ');
}
