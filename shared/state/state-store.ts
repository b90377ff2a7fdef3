// The state store port (architecture section 6): batch-oriented, one transaction per commit, so
// that the embedded SQLite adapter and a shared MySQL adapter implement the same contract.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Alert } from '../../schemas/alert.js';
import type { DeadLetter } from '../../schemas/dead-letter.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import { type Snapshot, SnapshotSchema } from '../../schemas/snapshot.js';
import { AuditError } from '../errors.js';
import type { EntityChange, EntityRow } from './entity-cache.js';
import type { DeadLetterQuery, LedgerQuery, SessionCount, StoredDeadLetter } from './ledger.js';

export type CommitBatch = {
  entities: EntityChange[];
  /** Events waiting for the watermark: added, and released (by key). */
  pending: { put: CanonicalEvent[]; remove: string[] };
  /** Dedupe keys (with event times) of every event applied in this batch. */
  seen: { key: string; ts: number }[];
  /** Sessions to write in full: new ones, and those with any change but to their counts. */
  sessions: Session[];
  /**
   * Sessions written before whose only change since is to their counts (a connection's routine
   * statements), and for one that closed since, its `disconnectTime` (set last, so its last key): a
   * store may write those typed columns alone, and read them over the body's (`readSession`). Never
   * one of `sessions`.
   */
  counted: Session[];
  /** New records: alerts and resolutions, stored under `recordKey` at `recordTime`. */
  alerts: Alert[];
  alertUpdates: { id: string; occurrences: number; lastTime: string }[];
  deadLetters: DeadLetter[];
  /** Drop seen keys older than this (the retention horizon). */
  pruneSeenBefore?: number;
  /**
   * Record keys this instance claims and has not finished delivering (a digest's records, records
   * whose delivery waits): the commit renews their claims in its transaction, when a third of the
   * lease passed since the store last did (`RenewalClock`), and says which it lost (`CommitResult.lost`).
   */
  renew?: string[];
  /**
   * Drop sessions that connected and alerts raised before this (`auditRetention`), with their rows,
   * and the dead letters stored before it (wall time, which event time follows in a live fleet);
   * but not the sessions still open whose last activity is at or after `keepOpenSince`.
   */
  pruneLedgerBefore?: number;
  /**
   * With `pruneLedgerBefore` (and by default the same): the retention horizon, since which an open
   * session must have been active to be remembered as open (Correlator.evict).
   */
  keepOpenSince?: number;
};

/** A batch holding only `parts`, the rest empty. */
export function commitBatch(parts: Partial<CommitBatch> = {}): CommitBatch {
  return {
    entities: [],
    pending: { put: [], remove: [] },
    seen: [],
    sessions: [],
    counted: [],
    alerts: [],
    alertUpdates: [],
    deadLetters: [],
    ...parts,
  };
}

/**
 * Seen keys are stored in event-time buckets (one row per bucket and commit) rather than one row
 * per event: a batch writes a handful of rows, and a lookup reads the buckets of the events asked.
 */
const SEEN_BUCKET_MS = 60_000;

/** The seen bucket of an event time: a store prunes seen keys by whole buckets (`pruneSeenBefore`). */
export const seenBucket = (ts: number): number => Math.floor(ts / SEEN_BUCKET_MS);

/** Groups keys by seen bucket. */
export function seenBuckets(events: readonly { key: string; ts: number }[]): Map<number, string[]> {
  const buckets = new Map<number, string[]>();
  for (const e of events) {
    const b = seenBucket(e.ts);
    const list = buckets.get(b);
    if (list) list.push(e.key);
    else buckets.set(b, [e.key]);
  }
  return buckets;
}

/** An exclusive hold on the store's scope (see `StateStore.lockScope`). */
export type ScopeLock = {
  /**
   * Gives the scope up. Idempotent (a second call does nothing) and never rejects: a hold whose
   * connection was lost is already gone. Closing the store releases its holds as well.
   */
  release(): Promise<void>;
};

export type LockScopeOptions = {
  /** How long to wait for another holder to release; 0 tries once. */
  timeoutMs: number;
};

/** Who holds a scope lock: recorded with the lock so that a process kept waiting can say. */
export type LockHolder = { pid: number; host: string; since: string };

/** This process, as a lock holder. */
export function thisHolder(): LockHolder {
  return { pid: process.pid, host: hostname(), since: new Date().toISOString() };
}

/** The error of a scope lock that stayed busy: it names the holder when the store knows it. */
export function scopeBusy(scope: string, holder: LockHolder | undefined): AuditError {
  return new AuditError(
    'STORE_FAILED',
    'scope is busy',
    holder === undefined
      ? { details: { scope } }
      : { details: { scope, holderPid: holder.pid, holderHost: holder.host, since: holder.since } },
  );
}

/**
 * How long the instance whose commit stored a record has to deliver it (its claim) before another
 * instance may take it over (`StateStore.undelivered`): twice the longest OCI Functions invocation
 * (300 s), so that a claimant still sending is never overtaken, short enough that the alerts of a
 * container that died are sent by the next invocation after it.
 */
export const CLAIM_LEASE_MS = 10 * 60_000;

/**
 * How often an instance renews the claims it holds on records it has not finished delivering (a
 * digest's records, a send under way): a third of the lease, so that a renewal can be late or fail
 * once and the claim still holds.
 */
export const CLAIM_RENEW_MS = CLAIM_LEASE_MS / 3;

/**
 * A record's claim given up (`releaseClaims`): it ends at once, and a look at the claims that
 * ended (`lapsed`) finds it whatever the clocks of the instance that gave it up and the one looking.
 */
export const GIVEN_UP = 0;

/**
 * How far before the time a look stored for a sink (`lapsed`) the first look of a pipeline that
 * opens starts: claims are timed by the clock of each instance, the look's time by the one that
 * looked, and a given-up record's mark is cleared to a lease after the look that clears it. The
 * lease: the difference the claims themselves allow between two instances' clocks (a claim's end,
 * set by one, is read by another's), more than any look takes. A look storing its time reads at
 * most the claims that ended within the last two leases again.
 */
export const LOOK_MARGIN_MS = CLAIM_LEASE_MS;

/** The claims' ends a look for a sink reads, besides given-up claims (`lapsed`). */
export type LookWindow = { from: number; to: number };

/**
 * The window of a look at `now` for a sink: after this store's last look for it (`own`), else after
 * the last look stored for it (`stored`, by any store) less the margin; undefined when there is
 * neither, or the time stored is more than the margin ahead of `now`: the full look. A pipeline
 * that opens (`opening`) reads up to the end of a claim made now too, so that the claims it may
 * take before they end (its own, a dead process's) are taken as the full look took them; a sweep,
 * only the claims that ended.
 */
export function lookWindow(
  own: number | undefined,
  stored: number | undefined,
  now: number,
  opening: boolean,
): LookWindow | undefined {
  // A time stored more than the margin ahead of this clock came from a clock the claims do not
  // allow (an instance's wrong by more than the lease): the records whose claims ended since it
  // was stored ended before it, and only the full look finds those it did not take.
  const trusted = stored !== undefined && stored - LOOK_MARGIN_MS <= now ? stored : undefined;
  const from = own ?? (trusted === undefined ? undefined : trusted - LOOK_MARGIN_MS);
  return from === undefined ? undefined : { from, to: opening ? now + CLAIM_LEASE_MS : now };
}

/**
 * Unmarks the given-up records every one of `sinks` received (a send that failed part-way gives up
 * what the output had taken too): no one takes those again, and each look at the claims that ended
 * would read them for ever. Each is left to no instance (no claimant: any look takes it for an
 * output that lacks it), its claim ending a lease after the look's time (`now`, by its clock: first
 * parameter). A lease later, not at the look's time: a pipeline kept open looks from its own last
 * look, which may be later than the look's time (the clocks differ, looks run at once), and would
 * never read a claim that ended before it; one that opens reads it at once (up to a lease from
 * now). Then GIVEN_UP, then each sink's stored name; `alias` is the alerts table's name.
 */
export function clearReceivedGivenUpSql(sinks: number, alias = 'alerts'): string {
  const received = Array.from(
    { length: sinks },
    () => `EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = ${alias}.id AND d.sink = ?)`,
  );
  return `UPDATE alerts${alias === 'alerts' ? '' : ` ${alias}`} SET claimant = NULL, claimed_until = ? + ${CLAIM_LEASE_MS} WHERE claimed_until = ? AND ${received.join(' AND ')}`;
}

/**
 * The alerts the ledger's prune removes (`alias`: the alerts table's name), as a WHERE condition
 * (its parameters: `prunedAlertsParams`): raised before a horizon and not repeated since. An alert whose repeats go on (merged within
 * its rule's suppression window) outlives its first occurrence's retention: pruned, its later
 * repeats would be merged into a row that is gone, and lost.
 */
export function prunedAlerts(alias: string): string {
  return `${alias}.finding_ts < ? AND (${alias}.last_time IS NULL OR ${alias}.last_time < ?)`;
}

/** The parameters of `prunedAlerts` for a horizon. */
export function prunedAlertsParams(before: number): [number, string] {
  // A horizon before (after) every time a date can hold: no (every) last repeat is before it.
  const time = new Date(before);
  return [before, Number.isNaN(time.getTime()) ? (before < 0 ? '' : '~') : time.toISOString()];
}

/** Who claims deliveries through a store, and by which clock (see `StateStore.undelivered`). */
export type ClaimOptions = {
  /** Default: this process and the store's scope (`processClaimant`). */
  claimant?: string;
  /** The clock of claims (epoch ms): the wall clock by default. */
  now?: () => number;
};

/** A store's claims, resolved (see `resolveClaims`). */
export type Claims = { claimant: string; now: () => number };

/** This process, as a claimant: its PID, host and a random tag (a PID is reused in time). */
const PROCESS_CLAIMANT = `${process.pid}@${hostname()}#${randomBytes(4).toString('hex')}`;

/**
 * The default claimant of a store: this process and the scope, so that the pipelines of one
 * process on different scopes (a consumer's partitions) are different instances, and a pipeline
 * re-opened in the same process on the same scope (after a failure) takes its claims back.
 */
export function processClaimant(scope: string): string {
  return `${PROCESS_CLAIMANT}/${scope}`;
}

/** Whether `processClaimant` made this claimant in this very process (on any scope). */
export function claimantOfThisProcess(claimant: string): boolean {
  return claimant.startsWith(`${PROCESS_CLAIMANT}/`);
}

/** The PID and host of a claimant `processClaimant` made; undefined for another one. */
export function claimantProcess(claimant: string): { pid: number; host: string } | undefined {
  const m = /^(\d+)@([^#/]*)#[0-9a-f]+\//.exec(claimant);
  return m ? { pid: Number(m[1]), host: m[2]! } : undefined;
}

/** The claims of a store on `scope`, defaults filled in. */
export function resolveClaims(scope: string, opts: ClaimOptions = {}): Claims {
  return { claimant: opts.claimant ?? processClaimant(scope), now: opts.now ?? Date.now };
}

/** A claim for `claims`' instance, from `now` (by its clock) for the lease. */
export type NewClaim = { claimant: string; until: number };

export function newClaim(claims: Claims, now = claims.now()): NewClaim {
  return { claimant: claims.claimant, until: now + CLAIM_LEASE_MS };
}

/** A stored record's claim: who, and until when (epoch ms; null: none; GIVEN_UP: given up). */
export type StoredClaim = { claimant: string | null; until: number | null };

/**
 * Whether `claims`' instance may take a record over: no live claim is on it, or it is its own.
 * `abandoned` tells a claimant known to be gone (a dead process on this host) before its lease ends.
 */
export function claimable(
  claim: StoredClaim,
  claims: Claims,
  now: number,
  abandoned: (claimant: string) => boolean = () => false,
): boolean {
  return (
    claim.until === null ||
    claim.until <= now ||
    claim.claimant === null ||
    claim.claimant === claims.claimant ||
    abandoned(claim.claimant)
  );
}

export type CommitResult = {
  /**
   * Record keys (`recordKey`) this commit stored first: only these are delivered by this instance,
   * which the commit claimed them for (see `StateStore.undelivered`).
   */
  newAlerts: Set<string>;
  /**
   * Of `CommitBatch.renew`, when the commit renewed them: the keys whose claim is no longer this
   * instance's (another took the record over) or whose record is gone.
   */
  lost?: Set<string>;
};

/**
 * Which of `keys` a renewal lost, given the claimants of the records found: those not found, and
 * those another instance claims.
 */
export function lostClaims(
  keys: readonly string[],
  found: ReadonlyMap<string, string | null>,
  claims: Claims,
): Set<string> {
  return new Set(keys.filter((k) => found.get(k) !== claims.claimant));
}

/**
 * When a store renews the claims a commit lists (`CommitBatch.renew`): once `CLAIM_RENEW_MS` passed
 * by its clock since a commit last renewed them, not at every commit. `renewClaims` does not count:
 * it may renew some of them only (a digest's due records), and the others would lapse meanwhile.
 */
export class RenewalClock {
  private last = Number.NEGATIVE_INFINITY;

  constructor(private readonly claims: Claims) {}

  /** The claim to renew them with, when it is time; undefined otherwise. */
  due(keys: readonly string[] | undefined): NewClaim | undefined {
    if (keys === undefined || keys.length === 0) return undefined;
    const now = this.claims.now();
    return now - this.last >= CLAIM_RENEW_MS ? newClaim(this.claims, now) : undefined;
  }

  /** Notes a renewal made now (the claim's start). */
  renewed(claim: NewClaim): void {
    this.last = claim.until - CLAIM_LEASE_MS;
  }
}

/**
 * Seen keys, entities and pending events belong to the store's *scope* (one pipeline instance:
 * a function, a consumer of one partition), so instances sharing a store each keep their own
 * correlation state; sessions, alerts and deliveries are shared, so an alert raised by two
 * instances is stored and delivered once.
 */
export interface StateStore {
  /**
   * Whether calls take effect in the order they are made, even while earlier ones are in flight:
   * a read made while a commit is pending sees that commit, and commits are applied in order. A
   * pipeline may then build its next batch before its last commit resolves (Pipeline.ingest).
   */
  readonly ordered: boolean;
  loadEntities(): Promise<EntityRow[]>;
  loadPending(): Promise<CanonicalEvent[]>;
  /** Open sessions and those that connected at or after `since`. */
  loadSessions(since: number): Promise<Session[]>;
  /** The keys of `events` already seen (event time narrows the search). */
  filterSeen(events: { key: string; ts: number }[]): Promise<Set<string>>;
  /** The subset of `keys` (record keys: alert ids, and `<id>:resolved` for resolutions) already stored. */
  knownAlerts(keys: string[]): Promise<Set<string>>;
  /** The stored records of these keys (those that exist), as `alerts()` gives them. */
  loadAlerts(keys: string[]): Promise<Alert[]>;
  commit(batch: CommitBatch): Promise<CommitResult>;
  /** Records that a sink received these records (by record key). */
  markDelivered(sink: string, keys: string[]): Promise<void>;
  /** The subset of `keys` recorded as received by `sink`. */
  delivered(sink: string, keys: string[]): Promise<Set<string>>;
  /**
   * Stored records a sink has not received yet, in time order (after a crash between commit and
   * send, a failed sink, a digest not due), that this instance may deliver, claimed for it.
   *
   * Each record is claimed by the instance whose commit stored it, in that transaction, for a lease
   * (CLAIM_LEASE_MS, by the store's clock): another instance sharing the store skips it while the
   * claim holds and is not recorded as delivered, so that a record is sent by the instance that
   * stored it. A record whose claim ran out (its instance died, or never delivered it), was given up
   * (`releaseClaims`), or is this instance's own, is returned and claimed again for this instance,
   * atomically: of instances asking at once, one gets it.
   *
   * This reads every stored record: `lapsed` is the look of a pipeline, at open too. It stores the
   * time of the look for `sink` (as `lapsed` does).
   */
  undelivered(sink: string): Promise<Alert[]>;
  /**
   * What `undelivered` gives each of `sinks`, among the records whose claim ended (ran out, or was
   * given up) since a look, found by the claims' end (an index), not by reading every record: a
   * pipeline looks so when it opens and at each sweep. The look starts from the last look this
   * store made for that sink; for a sink it never looked for, from the time the last look of any
   * store stored for it, less LOOK_MARGIN_MS (`lookWindow`). Where no look was ever stored for a
   * sink (a new output, a store from before they were stored), it reads every record
   * (`undelivered`), once. `opening`: the look of a pipeline that opens, which takes the claims it
   * may take before they end too (its own, a dead process's), as `undelivered` does. Each look
   * stores its time for each sink (kept if a later one is stored), once the records it took are
   * claimed: a look that fails before that is made again from the time stored before.
   */
  lapsed(sinks: readonly string[], opts?: { opening?: boolean }): Promise<Map<string, Alert[]>>;
  /**
   * Renews this instance's claims on these records (a send under way); returns the keys whose claim
   * is no longer this instance's (another instance took the record over) or whose record is gone.
   */
  renewClaims(keys: string[]): Promise<Set<string>>;
  /**
   * Gives up this instance's claims on these records (a sink failed to deliver them), so that
   * the next instance to ask (`undelivered`, `lapsed`) sends them without waiting for the lease.
   */
  releaseClaims(keys: string[]): Promise<void>;
  /**
   * Whether no other instance can use this store (a SQLite `:memory:` store): nothing another
   * instance claims can then lapse, and a pipeline kept open need not look (`lapsed`).
   */
  readonly isolated?: boolean;
  /**
   * Sessions by connect time (and id), those the query selects: connected in [from, to) (or, with
   * `active`, active at some time in it), on a DB system. A session an `active` query reads knows
   * its last activity (lastActivity), so that activeUntil is the one the query went by.
   */
  sessions(query?: LedgerQuery): AsyncIterable<Session>;
  /**
   * Every session of the ledger, counted by outcome and attribution method and confidence (from
   * the typed columns: no body is read).
   */
  sessionCounts(): Promise<SessionCount[]>;
  /**
   * Stored records by time (and id), those the query selects (raised in [from, to), on a DB system,
   * of rules): alerts (`status: open`) and resolutions (`status: resolved`).
   */
  alerts(query?: LedgerQuery): AsyncIterable<Alert>;
  /** Stored dead letters in the order they were stored, those the query selects (stored in [from, to)). */
  deadLetters(query?: DeadLetterQuery): AsyncIterable<StoredDeadLetter>;
  /**
   * Stores a fleet snapshot (`sync`); snapshots are shared by every scope. Older ones than
   * `pruneBefore` (epoch ms) are deleted, the one stored last always kept.
   */
  putSnapshot(snapshot: Snapshot, pruneBefore?: number): Promise<void>;
  /** The snapshots taken at or after `since` (epoch ms), oldest first; only the latest when `since` is undefined. */
  snapshots(since?: number): Promise<Snapshot[]>;
  /**
   * Takes the exclusive lock of this store's scope, waiting up to `timeoutMs` for its holder to
   * release it. Pipeline instances that may run at the same time on one scope (containers of one
   * function on a shared store) hold it from loading the scope's state (Pipeline.open) to their
   * last commit, so that one instance's correlation updates (entities, watermark clock, pending
   * events, seen keys) are never overwritten by another's. Reads and commits work without it:
   * taking it is the caller's choice. Scopes are independent: holding one never blocks another.
   *
   * While this store holds the lock, a commit checks first that the hold is still in force and
   * fails with STORE_FAILED otherwise (where the adapter can lose it, e.g. a dropped connection).
   *
   * Rejects with `scopeBusy` (AuditError STORE_FAILED 'scope is busy', naming the scope and, where
   * the store records it, the holder's PID, host and since when) when the lock is still held
   * elsewhere after `timeoutMs`: a retry later can succeed. Other processes are excluded too.
   */
  lockScope(opts: LockScopeOptions): Promise<ScopeLock>;
  close(): Promise<void>;
}

/**
 * A record as stored, with the occurrences merged into an alert since (kept in their own columns).
 * Alerts stored before records had a status are open.
 */
export function mergeAlert(body: string, occurrences: number, lastTime: string | null): Alert {
  const alert = JSON.parse(body) as Alert;
  alert.status ??= 'open';
  if (occurrences > 1) alert.details = { ...alert.details, occurrences, ...(lastTime ? { lastTime } : {}) };
  return alert;
}

/** Splits `items` into runs of at most `size` (bounded statements and IN lists). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A stored snapshot, checked: one this version cannot read is STORE_FAILED, not a crash later. */
export function readSnapshot(body: string): Snapshot {
  const parsed = SnapshotSchema.safeParse(JSON.parse(body));
  if (!parsed.success)
    throw new AuditError('STORE_FAILED', 'a stored snapshot cannot be read (written by another version?)', {
      details: { path: parsed.error.issues[0]?.path.join('.') ?? '' },
    });
  return parsed.data;
}
