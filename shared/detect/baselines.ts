// First-seen memory of rules: per rule and subject (a person, or an account nobody is named
// behind), the values seen with their first and last sighting in event time. Rows live in the
// entity cache, so the state store persists them with each batch; they expire and are bounded.
//
// Sessions reach the rules in one total order of event time, so a baseline depends on the events
// only, never on how they were batched. Pruning by the watermark drops only what every later check
// treats as expired anyway, and a value learned again after it expired starts afresh, so a row
// does not depend on when it was pruned either.
import { createHash } from 'node:crypto';
import { Memo } from '../memo.js';
import type { EntityCache } from '../state/entity-cache.js';

export type BaselineOptions = {
  /** A subject first seen less than this long ago only learns. */
  learningPeriod: number;
  /** A value not seen for this long is forgotten; so is a subject, which then learns again. */
  expireAfter: number;
  /** Values kept per subject (default: no limit); beyond it, the least recently seen are forgotten. */
  maxValues?: number;
};

export type Baseline = {
  /** Whether the subject is learning at `ts`: new, first seen less than the learning period ago, or expired. */
  learning(ts: number): boolean;
  /** Whether `value` was seen before `ts` and not longer than `expireAfter` ago. */
  knows(value: string, ts: number): boolean;
  /** Whether `value` was first seen after `ts` (by a later session, judged before this one). */
  seenAfter(value: string, ts: number): boolean;
  /** Records a sighting of each value at `ts`, by session `by` (the same session again adds nothing). */
  learn(values: readonly string[], ts: number, by?: string): void;
  /**
   * Takes back what a sighting at `ts` by session `by` alone taught (a session judged again as
   * someone else's): each of `values` seen only then and by no other session at that instant, and
   * the subject itself when nothing else was seen of it; a subject first seen then is first seen
   * at the earliest sighting it keeps (its learning period runs from there).
   */
  unlearn(values: readonly string[], ts: number, by?: string): void;
  /** Whether another session than `by` showed `value` first at `ts` too (an alert they share). */
  sharedAt(value: string, ts: number, by?: string): boolean;
};

/**
 * `values`: digest of the value -> [first, last] sighting, and who made the first: a digest of the
 * session, or MANY when several sessions did at that instant (absent in rows stored before).
 */
type BaselineRow = {
  since: number;
  last: number;
  ttl: number;
  values: Record<string, Sighting>;
};
type Sighting = [first: number, last: number, by?: string];

/** The first sighting of a value was made by more than one session (at the same instant). */
const MANY = '*';

/** A session's mark on the first sighting of a value: short, as the values' digests. */
const sessionMark = (session: string) => createHash('sha256').update(session).digest('base64url').slice(0, 8);

const BASELINE = 'baseline';

/**
 * Values are kept as short digests: OCIDs and addresses cost memory in every row. The same
 * networks, DB systems and hours come back session after session.
 */
const digests = new Memo(50_000, (value: string) =>
  createHash('sha256').update(value).digest('base64url').slice(0, 12),
);

export class Baselines {
  /** Per row, a time before which none of its values expires (so pruning can skip it). */
  private readonly nextExpiry = new Map<string, number>();
  /**
   * Row keys by rule and subject: a key built for every check was hashed at its first lookup,
   * where one kept is hashed once (a subject is itself kept: `baselineSubject`).
   */
  private readonly keys = new Memo(
    1000,
    (rule: string) => new Memo(50_000, (subject: string) => `${rule}\u0000${subject}`),
  );

  constructor(private readonly cache: EntityCache) {}

  /**
   * The baseline of `subject` for one check: its row is looked up when it is opened, so a handle
   * must not be kept past the session it was opened for.
   */
  open(rule: string, subject: string, opts: BaselineOptions): Baseline {
    const key = this.keys.get(rule).get(subject);
    return new SubjectBaseline(
      this.cache,
      this.nextExpiry,
      key,
      opts,
      this.cache.get<BaselineRow>(BASELINE, key),
    );
  }

  /** Forgets values and subjects not seen for their `expireAfter` before `before`. */
  prune(before: number): void {
    for (const [key, r] of this.cache.entries<BaselineRow>(BASELINE)) {
      if (r.last + r.ttl <= before) {
        this.cache.delete(BASELINE, key);
        this.nextExpiry.delete(key);
        continue;
      }
      if ((this.nextExpiry.get(key) ?? before) > before) continue;
      let next = Number.POSITIVE_INFINITY;
      let pruned = false;
      for (const [k, seen] of Object.entries(r.values)) {
        if (seen[1] + r.ttl > before) next = Math.min(next, seen[1] + r.ttl);
        else {
          delete r.values[k];
          pruned = true;
        }
      }
      this.nextExpiry.set(key, next);
      if (pruned) this.cache.touch(BASELINE, key);
    }
  }
}

/**
 * A subject's baseline for one check (`Baselines.open`): an object, where closures per check made
 * four functions and their context for every first-seen rule of every connect.
 */
class SubjectBaseline implements Baseline {
  constructor(
    private readonly cache: EntityCache,
    private readonly nextExpiry: Map<string, number>,
    private readonly key: string,
    private readonly opts: BaselineOptions,
    private row: BaselineRow | undefined,
  ) {}

  learning(ts: number): boolean {
    const { row } = this;
    return !row || ts < row.since + this.opts.learningPeriod || this.expired(row, ts);
  }

  knows(value: string, ts: number): boolean {
    const seen = this.row?.values[digests.get(value)];
    return seen !== undefined && seen[0] < ts && ts - seen[1] < this.opts.expireAfter;
  }

  seenAfter(value: string, ts: number): boolean {
    const seen = this.row?.values[digests.get(value)];
    return seen !== undefined && seen[0] > ts;
  }

  sharedAt(value: string, ts: number, by?: string): boolean {
    const seen = this.row?.values[digests.get(value)];
    if (seen === undefined || seen[0] !== ts) return false;
    return seen[2] === MANY || (by !== undefined && seen[2] !== undefined && seen[2] !== sessionMark(by));
  }

  learn(values: readonly string[], ts: number, by?: string): void {
    const { opts, key, nextExpiry } = this;
    // The session's mark is hashed only for a first sighting: most values are known already.
    let mark: string | undefined;
    const markOf = () => {
      if (by !== undefined) mark ??= sessionMark(by);
      return mark;
    };
    const fresh = !this.row || this.expired(this.row, ts);
    if (fresh) this.row = { since: ts, last: ts, ttl: 0, values: {} };
    const r = this.row!;
    r.since = Math.min(r.since, ts);
    r.last = Math.max(r.last, ts);
    r.ttl = opts.expireAfter;
    // A row restored from the state store has no next expiry yet, and values older than this one:
    // it is left without, so that the next prune works it out from the values.
    const expiry = ts + opts.expireAfter;
    const next = nextExpiry.get(key);
    if (next === undefined ? fresh : expiry < next) nextExpiry.set(key, expiry);
    const max = opts.maxValues;
    // The row's values, counted once at the first new value rather than listed for each.
    let count: number | undefined;
    for (const value of values) {
      const k = digests.get(value);
      const seen = r.values[k];
      if (seen && ts - seen[1] < opts.expireAfter) {
        if (ts < seen[0]) r.values[k] = firstSighting(ts, seen[1], markOf());
        else {
          if (ts === seen[0] && seen[2] !== markOf()) seen[2] = MANY;
          seen[1] = Math.max(seen[1], ts);
        }
        continue;
      }
      r.values[k] = firstSighting(ts, ts, markOf());
      if (max === undefined) continue;
      if (count === undefined) count = Object.keys(r.values).length;
      else if (seen === undefined) count++;
      if (count > max) {
        evictBeyond(r.values, max);
        count = max;
      }
    }
    this.cache.set(BASELINE, key, r);
  }

  unlearn(values: readonly string[], ts: number, by?: string): void {
    const r = this.row;
    if (!r) return;
    const mark = by === undefined ? undefined : sessionMark(by);
    // A first sighting without a mark (stored before they were) is taken as this session's alone.
    const only = (seen: Sighting | undefined) =>
      seen?.[0] === ts && seen[1] === ts && (seen[2] === undefined || seen[2] === mark);
    const taught = values.map((v) => digests.get(v)).filter((k) => only(r.values[k]));
    if (taught.length === 0) return;
    for (const k of taught) delete r.values[k];
    const left = Object.values(r.values);
    if (r.since === ts && left.length === 0) {
      this.cache.delete(BASELINE, this.key);
      this.nextExpiry.delete(this.key);
      this.row = undefined;
      return;
    }
    // Every session leaves its time on a value it learned: the latest of those is the last sighting,
    // and the earliest the first, from which the subject's learning period runs.
    if (r.since === ts) r.since = Math.min(...left.map((seen) => seen[0]));
    if (r.last === ts) r.last = Math.max(r.since, ...left.map((seen) => seen[1]));
    this.cache.set(BASELINE, this.key, r);
  }

  private expired(r: BaselineRow, ts: number): boolean {
    return ts - r.last >= this.opts.expireAfter;
  }
}

/** A value's sighting, first seen at `first` by the session marked `mark` (when it has one). */
function firstSighting(first: number, last: number, mark: string | undefined): Sighting {
  return mark === undefined ? [first, last] : [first, last, mark];
}

/** Keeps the `max` most recently seen values (ties: by digest, so the choice is deterministic). */
function evictBeyond(values: BaselineRow['values'], max: number): void {
  const keys = Object.keys(values);
  for (let excess = keys.length - max; excess > 0; excess--) {
    let oldest: string | undefined;
    for (const k of Object.keys(values)) {
      const last = values[k]![1];
      if (oldest === undefined || last < values[oldest]![1] || (last === values[oldest]![1] && k < oldest))
        oldest = k;
    }
    delete values[oldest!];
  }
}
