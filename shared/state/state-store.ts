// The state store port (architecture section 6): batch-oriented, one transaction per commit, so
// that the embedded SQLite adapter and a shared MySQL adapter implement the same contract.
import type { Alert } from '../../schemas/alert.js';
import type { DeadLetter } from '../../schemas/dead-letter.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import type { EntityChange, EntityRow } from './entity-cache.js';

export type CommitBatch = {
  entities: EntityChange[];
  /** Events waiting for the watermark: added, and released (by key). */
  pending: { put: CanonicalEvent[]; remove: string[] };
  /** Dedupe keys (with event times) of every event applied in this batch. */
  seen: { key: string; ts: number }[];
  sessions: Session[];
  alerts: Alert[];
  alertUpdates: { id: string; occurrences: number; lastTime: string }[];
  deadLetters: DeadLetter[];
  /** Drop seen keys older than this (the retention horizon). */
  pruneSeenBefore?: number;
};

/**
 * Seen keys are stored in event-time buckets (one row per bucket and commit) rather than one row
 * per event: a batch writes a handful of rows, and a lookup reads the buckets of the events asked.
 */
export const SEEN_BUCKET_MS = 60_000;

/** Groups keys by seen bucket. */
export function seenBuckets(events: readonly { key: string; ts: number }[]): Map<number, string[]> {
  const buckets = new Map<number, string[]>();
  for (const e of events) {
    const b = Math.floor(e.ts / SEEN_BUCKET_MS);
    const list = buckets.get(b);
    if (list) list.push(e.key);
    else buckets.set(b, [e.key]);
  }
  return buckets;
}

export type CommitResult = {
  /** Ids of the alerts this commit stored first: only these are delivered by this instance. */
  newAlerts: Set<string>;
};

/**
 * Seen keys, entities and pending events belong to the store's *scope* (one pipeline instance:
 * a function, a consumer of one partition), so instances sharing a store each keep their own
 * correlation state; sessions, alerts and deliveries are shared, so an alert raised by two
 * instances is stored and delivered once.
 */
export interface StateStore {
  loadEntities(): Promise<EntityRow[]>;
  loadPending(): Promise<CanonicalEvent[]>;
  /** Open sessions and those that connected at or after `since`. */
  loadSessions(since: number): Promise<Session[]>;
  /** The keys of `events` already seen (event time narrows the search). */
  filterSeen(events: { key: string; ts: number }[]): Promise<Set<string>>;
  /** The subset of `ids` already stored as alerts. */
  knownAlerts(ids: string[]): Promise<Set<string>>;
  commit(batch: CommitBatch): Promise<CommitResult>;
  /** Records that a sink received these alerts. */
  markDelivered(sink: string, ids: string[]): Promise<void>;
  /** Stored alerts a sink has not received yet (after a crash between commit and send). */
  undelivered(sink: string): Promise<Alert[]>;
  sessions(): AsyncIterable<Session>;
  alerts(): AsyncIterable<Alert>;
  deadLetterCount(): Promise<number>;
  close(): Promise<void>;
}

/** An alert as stored, with the occurrences merged into it since (kept in their own columns). */
export function mergeAlert(body: string, occurrences: number, lastTime: string | null): Alert {
  const alert = JSON.parse(body) as Alert;
  if (occurrences > 1) alert.details = { ...alert.details, occurrences, ...(lastTime ? { lastTime } : {}) };
  return alert;
}
