// The pipeline core shared by every host: dedupe, an event-time reorder buffer released by the
// watermark, correlation, detection, one state-store transaction per batch (or per few batches,
// for a host that can read its input again: `ingest`'s hold), then the sinks.
//
// Events wait until the watermark (latest event time minus `lateness`) passes them and are then
// applied in one total order (compareEvents), so any arrival order within the lateness, any
// batching and any redelivery give the same sessions and alerts. Events older than what was
// already released are applied at once ("late"); late IAM events re-attribute recent sessions.
// A run (a connection's routine statements, shared/decode/statement-runs.ts) waits as one item
// and is applied in pieces: up to the watermark, and up to the next buffered event that could
// change its session; what it does is what its statements do one by one. An OCI Audit event that
// concerns nothing (DecodedItem `ignored`) is counted and moves the clock, nothing else.
import { type Alert, recordKey } from '../schemas/alert.js';
import type { Config } from '../schemas/config.js';
import type { DeadLetter, DeadLetterCode } from '../schemas/dead-letter.js';
import { type CanonicalEvent, compareEvents, type DbEvent } from '../schemas/events.js';
import type { ActiveRule } from './config/active-rules.js';
import { Correlator, type CorrelatorStats, gapEndsSessions } from './correlate/correlator.js';
import type { BatchItem } from './decode/statement-runs.js';
import { Detector } from './detect/detector.js';
import type { AlertSink, SinkState } from './emit/sink.js';
import { AuditError } from './errors.js';
import { LogPositions } from './log-positions.js';
import { EntityCache } from './state/entity-cache.js';
import {
  CLAIM_RENEW_MS,
  type CommitBatch,
  type CommitResult,
  commitBatch,
  type StateStore,
  seenBucket,
} from './state/state-store.js';
import { applySnapshot } from './sync/baseline.js';
import { followSnapshots } from './sync/drift.js';
import { BEGINNING_OF_TIME, toIso } from './time.js';

export type { DecodedItem } from './decode/read-input.js';

export type PipelineStats = {
  received: number;
  processed: number;
  duplicates: number;
  /**
   * OCI Audit events that concern nothing the pipeline reads (shared/normalize/oci-audit.ts
   * `concernsNothing`), counted and not kept: their time moves the clock, nothing else.
   */
  ignored: number;
  /** Accepted after the watermark had passed them (applied out of order). */
  late: number;
  deadLetters: Partial<Record<DeadLetterCode, number>>;
  alerts: number;
  alertsByRule: Record<string, number>;
  /** Resolution records: alerts found to be over. */
  resolutions: number;
};

type Clock = { maxTs: number; releasedTs: number };

/** A call's end, once its work is done: waits for its commit, then delivers what it stored first. */
type Delivery = () => Promise<Alert[]>;

/**
 * The writes of batches ingested with `hold`, which go to the store with the next commit, and what
 * reads of the store must see of them meanwhile (see `ingest`).
 */
type HeldWrites = Pick<CommitBatch, 'alerts' | 'alertUpdates' | 'seen' | 'deadLetters'>;
type Held = HeldWrites & {
  /** The record keys of `alerts`, and the keys of `seen`. */
  alertKeys: Set<string>;
  seenKeys: Set<string>;
  /** Where the last held batch would have pruned the seen keys (`pruneSeenBefore`). */
  seenHorizon: number;
  /** Settles with the commit that writes them. */
  committed: Promise<CommitResult>;
  settle: { resolve(result: CommitResult): void; reject(error: unknown): void };
};

function newHeld(): Held {
  let settle!: Held['settle'];
  const committed = new Promise<CommitResult>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // Its deliveries report a failure; a group that fails before any is asked for is no unhandled rejection.
  committed.catch(() => undefined);
  return {
    alerts: [],
    alertUpdates: [],
    seen: [],
    deadLetters: [],
    alertKeys: new Set(),
    seenKeys: new Set(),
    seenHorizon: 0,
    committed,
    settle,
  };
}

const META = 'meta';
const CLOCK = 'clock';
/** The last snapshot applied to this scope's state (id and time). */
const SNAPSHOT = 'snapshot';
/** Read positions of sources (shared/sources/collector.ts), committed with the batch they end. */
const POSITION = 'position';
/** Before any event: JSON-safe, so the clock row survives a store round trip unchanged. */
const NEVER = BEGINNING_OF_TIME;
/** No audit trail we read is older: an earlier date is a broken clock or a forged record. */
const DAY_MS = 86_400_000;
export const EARLIEST_EVENT = Date.parse('2010-01-01T00:00:00Z');

/** Whether an event time may move the clock: from 2010 up to `latest` (now plus clockSkew). */
const inClockRange = (ts: number, latest: number): boolean => ts <= latest && ts >= EARLIEST_EVENT;

/**
 * A connection's routine statements taken together (shared/decode/statement-runs.ts), in log
 * order. It waits in the buffer where its first statement would; what a release leaves of it waits
 * again as a run of its own.
 */
class Run {
  constructor(readonly run: DbEvent[]) {}
}
/** What waits for the watermark: an event, or a run. */
type Buffered = CanonicalEvent | Run;

/** By class: `'run' in b` was a key lookup in events of many shapes (megamorphic). */
const isRun = (b: Buffered): b is Run => b instanceof Run;
/** The event that places a buffered item in the order: a run's first statement. */
const firstOf = (b: Buffered): CanonicalEvent => (isRun(b) ? b.run[0]! : b);
const compareBuffered = (a: Buffered, b: Buffered) => compareEvents(firstOf(a), firstOf(b));

/** A sink that threw while sent `records`: the pipeline gives up their claims once every sink was sent. */
class SinkFailure {
  constructor(
    readonly error: unknown,
    readonly records: readonly Alert[],
  ) {}
}

/** An output that threw, and what it threw. */
type OutputFailure = { sink: string; error: unknown };

/**
 * The error of a delivery whose outputs failed: the first one's, or, when several failed, one
 * naming each (with the first one's code), so that an output failing after another is reported too.
 * An output that failed more than once (at open, then in the call that reports it) is named once,
 * with its first error.
 */
function failedOutputs(all: readonly OutputFailure[]): unknown {
  const failures = all.filter((f, i) => all.findIndex((g) => g.sink === f.sink) === i);
  const [first] = failures;
  if (failures.length === 1) return first!.error;
  const code = first!.error instanceof AuditError ? first!.error.code : 'SINK_FAILED';
  return new AuditError(code, `${failures.length} outputs failed`, {
    details: { sinks: failures.map((f) => f.sink) },
    problems: failures.map(
      ({ sink, error }) => `${sink}: ${error instanceof Error ? error.message : String(error)}`,
    ),
    cause: first!.error,
  });
}

/** Merges two arrays sorted by compareBuffered; appends when `b` starts after `a` (the usual case). */
function mergeSorted(a: Buffered[], b: Buffered[]): Buffered[] {
  if (b.length === 0) return a;
  if (a.length === 0 || compareBuffered(a[a.length - 1]!, b[0]!) <= 0) {
    for (const e of b) a.push(e);
    return a;
  }
  const out: Buffered[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(compareBuffered(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

/**
 * Which runs a buffered event must see applied only up to itself: all runs (`ALL`) for an event
 * that may change any session in order (a snapshot change re-attributes sessions, a server's start,
 * or an audit gap that says another server answers, ends them), the runs of its connection (that
 * connection's key) for a connection's own event, none for the rest. (IAM events re-attribute
 * sessions only when late, and late events are applied as they arrive, not in order.)
 */
function barrierFor(b: Buffered): string | undefined {
  if (isRun(b)) return undefined;
  if (b.source === 'sync' || (b.source === 'gap' && gapEndsSessions(b))) return ALL;
  if (b.source !== 'mysql') return undefined;
  // A startup's or shutdown's connection id is 0 (or none): it is no connection's.
  return b.connectionId === null || SERVER_KINDS.has(b.kind) ? ALL : connectionKey(b);
}

const SERVER_KINDS: ReadonlySet<DbEvent['kind']> = new Set(['server_start', 'server_stop']);

/** Not a connection key (those start with a DB system id): a barrier for every run. */
const ALL = '';

/** A MySQL connection: its DB system, instance and connection id. */
function connectionKey(ev: DbEvent): string {
  return `${ev.dbSystemId}\u0000${ev.instance ?? ''}\u0000${ev.connectionId}`;
}

/** Stats before any record. */
export function emptyStats(): PipelineStats {
  return {
    received: 0,
    processed: 0,
    duplicates: 0,
    ignored: 0,
    late: 0,
    deadLetters: {},
    alerts: 0,
    alertsByRule: {},
    resolutions: 0,
  };
}

/** What became of the records a pipeline read: the counters a run's summary adds up. */
export type RecordCounts = Pick<
  PipelineStats,
  'received' | 'processed' | 'duplicates' | 'ignored' | 'late' | 'deadLetters'
>;

/** A copy of a pipeline's record counters, which it updates in place: the start of a later count. */
export function recordCounts(stats: RecordCounts): RecordCounts {
  const { received, processed, duplicates, ignored, late, deadLetters } = stats;
  return { received, processed, duplicates, ignored, late, deadLetters: { ...deadLetters } };
}

/** Adds to `total` what the counters gained from `before` to `after`; returns `total`. */
export function addCountsSince(total: RecordCounts, before: RecordCounts, after: RecordCounts): RecordCounts {
  for (const key of ['received', 'processed', 'duplicates', 'ignored', 'late'] as const)
    total[key] += after[key] - before[key];
  for (const [code, n] of Object.entries(after.deadLetters) as [DeadLetterCode, number][]) {
    const diff = n - (before.deadLetters[code] ?? 0);
    if (diff > 0) total.deadLetters[code] = (total.deadLetters[code] ?? 0) + diff;
  }
  return total;
}

export class Pipeline {
  /** Cumulative since open. */
  readonly stats = emptyStats();
  private readonly cache: EntityCache;
  private readonly detector: Detector;
  private readonly correlator: Correlator;
  private clock: Clock;
  /** Waiting for the watermark, sorted by compareBuffered. */
  private pending: Buffered[];
  /** Pending events written to the store (so that releasing them deletes their rows). */
  private readonly persisted: Set<CanonicalEvent>;
  /** Persisted events released since the last commit (their rows go with it). */
  private released: CanonicalEvent[] = [];
  /** Events applied since the last commit (their keys are remembered unless their position suffices). */
  private seenBatch: CanonicalEvent[] = [];
  /** The same for runs: the first `n` statements of each. */
  private seenRuns: { run: DbEvent[]; n: number }[] = [];
  private readonly logPositions: LogPositions;
  /** The day (of the ledger's retention horizon) the ledger was last pruned for, in this process. */
  private ledgerPrunedDay: number | undefined;
  private deadBatch: DeadLetter[] = [];
  /** Where the last call stands (see `inTurn`): its work done, and its records delivered. */
  private turn: { worked: Promise<void>; delivered: Promise<void> } = {
    worked: Promise.resolve(),
    delivered: Promise.resolve(),
  };
  /** The failure of a call, which every later call reports. */
  private failure: unknown;
  /**
   * The errors with which outputs failed a call's delivery (`eachSink`, `inTurn`): the store is then
   * as that call's commit left it, and the calls whose commits were asked before still deliver.
   */
  private readonly outputErrors = new WeakSet<object>();
  /** Set while opening: an output that fails then fails no call yet (see `open`, `kept`). */
  private opening = false;
  /**
   * The outputs that failed while opening (the backlog, the snapshots followed): calls do their work
   * and their delivery all the same; `finish` or `settle` then fails with these, or the first call
   * whose own delivery fails, with these and its own (`eachSink`).
   */
  private kept: OutputFailure[] = [];
  /** The last commit asked of the store, settled once it is applied (or its failure recorded). */
  private committing: Promise<void> = Promise.resolve();
  /** What batches ingested with `hold` wrote, until a commit takes it. */
  private held: Held | undefined;
  /**
   * By sink that acknowledges itself: the records it was given and had not acknowledged at the last
   * look at the backlog (a digest not due), which it holds and is not given again (`deliverBacklog`).
   */
  private readonly handed = new Map<string, Set<string>>();
  /**
   * Records this pipeline's commits stored first (and claimed) whose delivery has not finished: a
   * look at the backlog leaves them to that delivery, and their claims are renewed meanwhile.
   */
  private readonly owed = new Set<string>();

  private constructor(
    private readonly config: Config,
    rules: readonly ActiveRule[],
    private readonly store: StateStore,
    private readonly sinks: readonly AlertSink[],
    cache: EntityCache,
    pending: CanonicalEvent[],
    private readonly durablePending: boolean,
    private readonly now: () => number,
  ) {
    this.cache = cache;
    this.clock = cache.get<Clock>(META, CLOCK) ?? { maxTs: NEVER, releasedTs: NEVER };
    this.detector = new Detector(rules, cache);
    this.correlator = new Correlator(cache, config, this.detector);
    this.logPositions = new LogPositions(cache, config.lateness);
    this.pending = pending.sort(compareEvents);
    this.persisted = new Set(pending);
  }

  /**
   * Opens the pipeline on a store, restoring its state and sending the alerts a sink has not
   * received that are this instance's to send (`StateStore.undelivered`: not under another
   * instance's claim). An output that fails meanwhile (a stream deleted, a policy missing) does not
   * fail the open, nor the calls that process input (`ingest`, `advance`, `followSnapshots`): they
   * commit it and send its records to every output as usual. `finish` or `settle`, the end of a
   * host's work, then fails with that output's error (and those of its own delivery:
   * `failedOutputs`), as does an earlier call whose own delivery fails. What the output did not
   * receive stays undelivered for it in the store.
   * `durablePending` (default true) writes buffered events to the store with each batch, so a
   * host that acknowledges its input after `ingest` loses nothing. A replay that can simply be
   * run again turns it off: buffered events are then neither stored nor marked seen until
   * they are applied, so a rerun after a crash reads them again.
   */
  static async open(opts: {
    config: Config;
    rules: readonly ActiveRule[];
    store: StateStore;
    sinks?: readonly AlertSink[];
    durablePending?: boolean;
    /** The clock that bounds event times (events after now + clockSkew are dead letters). */
    now?: () => number;
  }): Promise<Pipeline> {
    const cache = new EntityCache();
    for (const row of await opts.store.loadEntities()) cache.load(row);
    const pipeline = new Pipeline(
      opts.config,
      opts.rules,
      opts.store,
      opts.sinks ?? [],
      cache,
      await opts.store.loadPending(),
      opts.durablePending ?? true,
      opts.now ?? Date.now,
    );
    const released = pipeline.clock.releasedTs;
    const since = released > NEVER ? released - opts.config.lookback : NEVER;
    pipeline.correlator.restoreSessions(await opts.store.loadSessions(since));
    pipeline.opening = true;
    await pipeline.deliverBacklog(false, true);
    await pipeline.followSnapshots();
    pipeline.opening = false;
    return pipeline;
  }

  /**
   * Brings the correlation state up to the latest snapshot `sync` stored (shared/sync/drift.ts):
   * the DB systems it discovered, the seeds of what is new, and what changed since the snapshot
   * last applied, as events that wait for the watermark like any other. Pipeline.open calls it;
   * a host that stores a snapshot while the pipeline is open calls it again.
   */
  followSnapshots(): Promise<Alert[]> {
    return this.inTurn(async () => {
      const applied = this.cache.get<{ id: string; time: string }>(META, SNAPSHOT);
      const snapshots = await this.store.snapshots(applied ? Date.parse(applied.time) : undefined);
      const latest = snapshots.at(-1);
      if (!latest) return async () => [];
      this.correlator.useDbSystems(applySnapshot(this.config, latest).dbSystems);
      if (latest.id === applied?.id) return async () => [];
      const at = snapshots.findIndex((s) => s.id === applied?.id);
      const { seeds, events } = followSnapshots(snapshots[at], snapshots.slice(at + 1));
      for (const seed of seeds) this.correlator.seed(seed);
      this.cache.set(META, SNAPSHOT, { id: latest.id, time: latest.time });
      return this.applyItems(events.map((event) => ({ type: 'event' as const, event })));
    });
  }

  /** The event-time watermark up to which events have been applied and timers fired. */
  get watermark(): number | undefined {
    return this.clock.releasedTs > NEVER ? this.clock.releasedTs : undefined;
  }

  /**
   * Whether an event at `ts` may move the clock now (see `ingest`); later calls accept it too. A host
   * that folds ignored events (`DecodedItem` with a `count`) keeps the latest time accepted.
   */
  acceptsTime(ts: number): boolean {
    return inClockRange(ts, this.now() + this.config.clockSkew);
  }

  get latestEventTime(): number | undefined {
    return this.clock.maxTs > NEVER ? this.clock.maxTs : undefined;
  }

  get openSessions(): number {
    return this.correlator.openSessions;
  }

  /** Events applied without effect: memberships naming no known user or group, statements of unknown connections. */
  get correlation(): Readonly<CorrelatorStats> {
    return this.correlator.stats;
  }

  get ruleErrors(): ReadonlyMap<string, number> {
    return this.detector.ruleErrors;
  }

  /** The position a source reached in the last batch committed with it (see `ingest`). */
  position<T>(source: string): T | undefined {
    return this.cache.get<T>(POSITION, source);
  }

  /**
   * Ingests one batch (one transaction): dedupe, buffer, release what the watermark passed.
   * `positions` (by source) are where the sources stand after these items: they are committed in
   * the same transaction, so a source that resumes from them neither loses nor repeats a record.
   *
   * With `hold` (and `durablePending` off: a host that can read its input again), the batch's
   * writes wait for the next call that commits, which writes them with its own in one transaction;
   * the batch's records are delivered after that commit, before the committing call's. Every
   * record, its content and its order are those of committing each batch: reads of the store see
   * what is held (the alerts and seen keys it holds; an alert it holds is loaded once it is
   * committed), and a batch that prunes the ledger commits. Rows written again batch after batch (a
   * long session's counts, a busy subject's baseline) are then written once per commit.
   */
  ingest(
    items: Iterable<BatchItem>,
    positions?: Readonly<Record<string, unknown>>,
    opts: { hold?: boolean } = {},
  ): Promise<Alert[]> {
    return this.inTurn(() => {
      this.setPositions(positions);
      return this.applyItems(items, opts.hold === true);
    });
  }

  /** `ingest`'s work, up to the commit asked of the store (or the batch held for the next one). */
  private async applyItems(items: Iterable<BatchItem>, hold = false): Promise<Delivery> {
    const fresh: Buffered[] = [];
    // MySQL events after all their connection gave need no key lookup (log-positions.ts); the keys
    // of this batch's MySQL events, and of the buffered runs, are gathered only once one needs them.
    let mysqlKeys: Set<string> | undefined;
    let runKeys: Set<string> | undefined;
    const otherKeys = new Set<string>();
    const steps: CanonicalEvent[] = [];
    const admit = (ev: CanonicalEvent, ahead: boolean): void => {
      if (ahead) {
        mysqlKeys?.add(ev.key);
        fresh.push(ev);
        return;
      }
      if (ev.source === 'mysql' && mysqlKeys === undefined) {
        mysqlKeys = new Set(
          fresh.flatMap((e) => (isRun(e) ? e.run : e.source === 'mysql' ? [e] : [])).map((e) => e.key),
        );
        runKeys = new Set(this.pending.flatMap((b) => (isRun(b) ? b.run.map((e) => e.key) : [])));
      }
      const inBatch = ev.source === 'mysql' ? mysqlKeys! : otherKeys;
      if (inBatch.has(ev.key) || this.isPending(ev) || (ev.source === 'mysql' && runKeys!.has(ev.key))) {
        this.stats.duplicates++;
        return;
      }
      inBatch.add(ev.key);
      fresh.push(ev);
      if (ev.source === 'gap' && ev.reason === 'clock-step') steps.push(ev);
    };
    const latest = this.now() + this.config.clockSkew;
    for (const item of items) {
      if (item.type === 'dead') {
        this.stats.received++;
        this.dead(item.dead);
      } else if (item.type === 'ignored') {
        const n = item.count ?? 1;
        this.stats.received += n;
        this.stats.ignored += n;
        // The audit trail reached its time, as it would have with an event there: the watermark
        // moves as before, so a quiet tenancy's pending events are released and its timers fire.
        if (inClockRange(item.ts, latest) && item.ts > this.clock.maxTs) this.clock.maxTs = item.ts;
      } else if (item.type === 'event') {
        this.stats.received++;
        this.logPositions.noteGap(item.event);
        admit(item.event, this.logPositions.isAhead(item.event));
      } else {
        const { events } = item;
        this.stats.received += events.length;
        // A host that stores what it buffers (durablePending) keeps events one by one.
        const ahead = this.durablePending ? 0 : this.logPositions.aheadCount(events);
        if (ahead === events.length && events.length > 0) {
          if (mysqlKeys !== undefined) for (const e of events) mysqlKeys.add(e.key);
          fresh.push(new Run(events));
          continue;
        }
        for (const [i, ev] of events.entries()) admit(ev, i < ahead || this.logPositions.isAhead(ev));
      }
    }
    // A run waits as a whole when all of it is after the watermark and in range: otherwise its
    // statements go one by one (late, out of range), as they would have come.
    const whole = (r: Run) => r.run.every((e) => e.ts > this.clock.releasedTs && inClockRange(e.ts, latest));
    const events = fresh.flatMap((b): Buffered | Buffered[] => (isRun(b) && !whole(b) ? b.run : b));
    // A clock step changes which events of its log positions tell as redeliveries, from this
    // batch's on (it is taken again, in its place, when accepted below); one seen before (a
    // redelivery) does not open its step again.
    if (steps.length > 0) {
      const known = await this.filterSeen(steps.filter((e) => e.ts <= this.clock.releasedTs));
      for (const ev of steps) if (!known.has(ev.key)) this.logPositions.accepted(ev);
    }
    // Every seen key belongs to an applied event, so its time is at or before the released
    // watermark: only events that old can be redeliveries the store knows of. MySQL events far
    // enough behind their log's position are redeliveries without a lookup (log-positions.ts).
    const old = events.filter((e): e is CanonicalEvent => !isRun(e) && e.ts <= this.clock.releasedTs);
    const redelivered = new Set(old.filter((e) => this.logPositions.isRedelivery(e)));
    const lookup = old.filter((e) => !redelivered.has(e));
    const seen = lookup.length > 0 ? await this.filterSeen(lookup) : new Set<string>();
    const late: CanonicalEvent[] = [];
    const buffered: Buffered[] = [];
    const horizon = this.clock.releasedTs - this.config.retention;
    for (const ev of events) {
      if (isRun(ev)) {
        for (const e of ev.run) if (e.ts > this.clock.maxTs) this.clock.maxTs = e.ts;
        this.logPositions.acceptedAll(ev.run);
        buffered.push(ev);
        continue;
      }
      // Only events that old can be duplicates: the rest skip hashing their key.
      if (ev.ts <= this.clock.releasedTs && (seen.has(ev.key) || redelivered.has(ev))) {
        this.stats.duplicates++;
        continue;
      }
      // One event dated 9999 would move the watermark there for good: every later one would be late.
      if (!inClockRange(ev.ts, latest)) {
        this.dead({
          code: 'TIME_OUT_OF_RANGE',
          source: 'pipeline',
          message: `event time ${toIso(ev.ts)} is ${ev.ts < EARLIEST_EVENT ? 'before 2010' : `after now plus clockSkew (${toIso(latest)})`}`,
        });
        continue;
      }
      if (ev.ts < horizon) {
        this.dead({
          code: 'TOO_LATE',
          source: 'pipeline',
          message: `event older than the retention horizon (${toIso(horizon)})`,
        });
        continue;
      }
      // A snapshot's time is the clock's, not the audit trail's: it does not move the watermark,
      // which the audit events (or a sweep, or the end of input) bring past it.
      if (ev.ts > this.clock.maxTs && ev.source !== 'sync') this.clock.maxTs = ev.ts;
      this.logPositions.accepted(ev);
      if (ev.ts <= this.clock.releasedTs) {
        late.push(ev);
      } else {
        buffered.push(ev);
      }
    }
    this.pending = mergeSorted(this.pending, buffered.sort(compareBuffered));
    late.sort(compareEvents);
    for (const ev of late) {
      this.stats.late++;
      this.apply(ev, true);
    }
    this.release(this.clock.maxTs - this.config.lateness);
    return this.commit(false, hold);
  }

  /** The events' keys the store has seen, or held batches have (as if they were committed: `ingest`). */
  private async filterSeen(events: CanonicalEvent[]): Promise<Set<string>> {
    const held = this.held;
    if (held === undefined) return this.store.filterSeen(events);
    const found = await this.store.filterSeen(events.filter((e) => !held.seenKeys.has(e.key)));
    // What the last held batch's commit would have pruned is not seen.
    const horizon = seenBucket(held.seenHorizon);
    for (const e of events) {
      if (seenBucket(e.ts) < horizon) found.delete(e.key);
      else if (held.seenKeys.has(e.key)) found.add(e.key);
    }
    return found;
  }

  /** The records the store holds of these keys, or held batches do. */
  private async knownAlerts(keys: string[]): Promise<Set<string>> {
    const held = this.held;
    if (held === undefined) return this.store.knownAlerts(keys);
    const found = await this.store.knownAlerts(keys.filter((k) => !held.alertKeys.has(k)));
    for (const k of keys) if (held.alertKeys.has(k)) found.add(k);
    return found;
  }

  /** Stored alerts: held ones are committed first (the store merges their later occurrences in). */
  private async loadAlerts(ids: string[]): Promise<Alert[]> {
    const held = this.held;
    if (held !== undefined && ids.some((id) => held.alertKeys.has(id))) {
      await (await this.commitHeld({})).committed;
    }
    return this.store.loadAlerts(ids);
  }

  /**
   * Runs a call (`ingest`, `advance`, `finish`, `followSnapshots`): its work on the pipeline's
   * state after that of the calls made before it, then the end of its commit and its delivery
   * after theirs. A host may so make its next call before the last resolves, with a store whose
   * calls are `ordered`: the next batch is built while the last one is written (replay does).
   * A call that fails leaves memory the store may not match: every later call fails with it. When
   * only outputs failed its delivery, the calls whose work was done before (their commits asked)
   * still deliver, then fail with it: what their commits stored reaches every output that works.
   * `reportKept` (`finish`, `settle`: the end of a host's work) fails the call, once its records
   * were sent, with the outputs that failed while opening (`kept`); other calls leave them to it,
   * so that a run of many calls (a collect, a replay) processes all of its input.
   */
  private inTurn(work: () => Promise<Delivery>, reportKept = false): Promise<Alert[]> {
    const { worked, delivered } = this.turn;
    const healthy = () => {
      if (this.failure !== undefined) throw this.failure;
    };
    const failed = (error: unknown) => {
      this.failure ??= error;
      // Held batches are committed by no later call: their deliveries fail with this one.
      this.held?.settle.reject(error);
      this.held = undefined;
    };
    // Each `failed` is attached before the next call can see this one settle. A call whose work
    // ends after a failure fails there: what it holds or commits is no later call's to deliver.
    const done = worked
      .then(healthy)
      .then(work)
      .then((deliver) => {
        healthy();
        return deliver;
      });
    done.catch(failed);
    const result = done.then(async (deliver) => {
      await delivered;
      // After a call whose outputs failed, this one's commit (asked before that failure: no call
      // works after it) stored records the outputs that work must still get, as must every output
      // once the store reopens; a temporary store does not reopen. It fails all the same.
      const before = this.failure;
      if (before !== undefined && !this.isOutputError(before)) throw before;
      const mine = await deliver();
      if (before !== undefined) throw before;
      // An output that failed while opening fails the end of the work, once its records were sent.
      if (reportKept && this.kept.length > 0) throw this.outputError(this.kept.splice(0));
      return mine;
    });
    result.catch(failed);
    const settle = () => undefined;
    this.turn = { worked: done.then(settle, settle), delivered: result.then(settle, settle) };
    return result;
  }

  /**
   * Waits for the calls made so far, and fails as a call would when an output failed while opening
   * and no call reported it yet (`open`): a host calls it (or `finish`) once its work is done, or
   * after each step when it runs without end (a stream consumer, a collect that follows).
   */
  async settle(): Promise<void> {
    await this.inTurn(async () => async () => [], true);
  }

  /**
   * Advances the watermark (a scheduled sweep when sources are quiet) and fires due timers;
   * `positions` are committed with it, as with `ingest`.
   */
  advance(watermark: number, positions?: Readonly<Record<string, unknown>>): Promise<Alert[]> {
    return this.inTurn(async () => {
      this.setPositions(positions);
      this.release(watermark);
      return this.thenBacklog(await this.commit(), false);
    });
  }

  /**
   * A call's delivery, then what the store gives this instance to send (`deliverBacklog`): a
   * pipeline kept open (a sweep, a consumer's idle sweep, the end of input) so takes over the
   * records of an instance whose claim ran out, as one opening would.
   */
  private thenBacklog(deliver: Delivery, final: boolean): Delivery {
    return async () => {
      const mine = await deliver();
      await this.deliverBacklog(final);
      return mine;
    };
  }

  /**
   * Sends each sink the records it has not received that the store gives this instance (claimed),
   * among those whose claim ended since the last look (`lapsed`: on opening, the last look the
   * store made or any instance stored for the sink, and the claims it may take before they end;
   * every record for a sink none looked for), and nothing later on a store no other instance uses.
   * Those this pipeline gave the sink already, which it holds still, and those whose own delivery
   * is under way are left out.
   */
  private async deliverBacklog(final: boolean, opening = false): Promise<void> {
    if (this.sinks.length === 0 || (!opening && this.store.isolated === true)) return;
    const found = await this.store.lapsed(
      this.sinks.map((s) => s.name),
      { opening },
    );
    await this.eachSink(async (sink) => {
      const held = this.handed.get(sink.name);
      const fresh = (found.get(sink.name) ?? []).filter((a) => {
        const key = recordKey(a);
        return !this.owed.has(key) && held?.has(key) !== true;
      });
      if (fresh.length > 0)
        await this.deliver(sink, fresh, { backlog: true, final, watermark: this.watermark });
    });
  }

  /** The records this pipeline claims and has not finished delivering (see `owed`, `handed`). */
  private claimedKeys(): string[] {
    const keys = new Set(this.owed);
    for (const held of this.handed.values()) for (const key of held) keys.add(key);
    return [...keys];
  }

  /** Forgets the records whose claims another instance took over: they are its to deliver now. */
  private forgetLost(lost: ReadonlySet<string> | undefined): void {
    if (lost === undefined) return;
    for (const key of lost) {
      for (const held of this.handed.values()) held.delete(key);
    }
  }

  private setPositions(positions: Readonly<Record<string, unknown>> | undefined): void {
    for (const [source, position] of Object.entries(positions ?? {}))
      this.cache.set(POSITION, source, position);
  }

  /**
   * End of input: applies everything buffered; timers fire up to `asOf` (default the latest
   * event); sinks that hold records back (digests) send them. Fails, once they were sent, with the
   * outputs that failed while opening (see `settle`).
   */
  finish(asOf?: number): Promise<Alert[]> {
    return this.inTurn(async () => {
      const end = asOf ?? this.clock.maxTs;
      this.release(Math.max(this.clock.maxTs, end), end);
      return this.thenBacklog(await this.commit(true), true);
    }, true);
  }

  private release(watermark: number, timersUpTo = watermark): void {
    const barriers = this.barriers(watermark);
    let i = 0;
    for (; i < this.pending.length; i++) {
      const item = this.pending[i]!;
      const ev = firstOf(item);
      if (ev.ts > watermark) break;
      this.correlator.fireTimers(Math.min(ev.ts - 1, timersUpTo));
      if (!isRun(item)) {
        this.apply(ev, false);
        if (this.persisted.has(ev)) this.released.push(ev);
        continue;
      }
      // A run's statements are applied up to the watermark and to the first later event that could
      // change what they do (barriers): the rest waits, placed by its next statement.
      const barrier = barriers.has(item) ? barriers.get(item) : this.barrierAfter(i, item.run[0]!, watermark);
      const rest = this.applyRun(item.run, watermark, barrier && firstOf(barrier));
      if (rest.length > 0) this.insertPending(new Run(rest), i + 1);
    }
    if (i > 0) this.pending = this.pending.slice(i);
    this.correlator.fireTimers(timersUpTo);
    if (watermark > this.clock.releasedTs) {
      this.clock.releasedTs = watermark;
      this.correlator.evict(watermark - this.config.lookback);
      this.detector.prune(watermark - this.config.lookback);
    }
  }

  /**
   * For each run the watermark reaches, the first later buffered event that must see the run's
   * statements after it rather than before (`barrierFor`). Other events do not touch the run's session.
   */
  private barriers(watermark: number): Map<Run, Buffered | undefined> {
    const out = new Map<Run, Buffered | undefined>();
    let end = 0;
    let firstRun = -1;
    for (; end < this.pending.length; end++) {
      const item = this.pending[end]!;
      if (firstOf(item).ts > watermark) break;
      if (firstRun === -1 && isRun(item)) firstRun = end;
    }
    // What comes before the first run is no run's barrier.
    if (firstRun === -1) return out;
    let global: Buffered | undefined;
    const byConnection = new Map<string, Buffered>();
    for (let i = end - 1; i >= firstRun; i--) {
      const item = this.pending[i]!;
      if (isRun(item)) {
        const own = byConnection.get(connectionKey(item.run[0]!));
        out.set(
          item,
          own === undefined || (global !== undefined && compareBuffered(global, own) < 0) ? global : own,
        );
        continue;
      }
      const barrier = barrierFor(item);
      if (barrier === ALL) global = item;
      else if (barrier !== undefined) byConnection.set(barrier, item);
    }
    return out;
  }

  /** The barrier (see `barriers`) of a run's rest, which waits at `from` and after. */
  private barrierAfter(from: number, first: DbEvent, watermark: number): Buffered | undefined {
    const key = connectionKey(first);
    for (let i = from; i < this.pending.length; i++) {
      const item = this.pending[i]!;
      if (firstOf(item).ts > watermark) return undefined;
      const barrier = barrierFor(item);
      if (barrier === ALL || barrier === key) return item;
    }
    return undefined;
  }

  /**
   * Applies a run's statements up to the watermark and before `barrier`; returns the rest. The
   * first is always applied: the release reached it, and a barrier comes after it in the buffer.
   */
  private applyRun(run: DbEvent[], watermark: number, barrier: CanonicalEvent | undefined): DbEvent[] {
    let n = 0;
    while (n < run.length) {
      const ev = run[n]!;
      if (n > 0 && (ev.ts > watermark || (barrier !== undefined && compareEvents(ev, barrier) > 0))) break;
      n++;
    }
    this.seenRuns.push({ run, n });
    this.correlator.statements(run, n);
    this.stats.processed += n;
    return n === run.length ? [] : run.slice(n);
  }

  /** Puts a buffered item in its place, at `from` or after. */
  private insertPending(item: Buffered, from: number): void {
    let lo = from;
    let hi = this.pending.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareBuffered(this.pending[mid]!, item) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.pending.splice(lo, 0, item);
  }

  /** Whether an event waits in the buffer as itself or a run's first statement (see `ingest` for the rest of runs). */
  private isPending(ev: CanonicalEvent): boolean {
    let lo = 0;
    let hi = this.pending.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = compareEvents(firstOf(this.pending[mid]!), ev);
      if (c === 0) return true;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  private apply(ev: CanonicalEvent, late: boolean): void {
    this.seenBatch.push(ev);
    this.correlator.process(ev, late);
    this.stats.processed++;
  }

  private dead(d: DeadLetter): void {
    this.deadBatch.push(d);
    this.stats.deadLetters[d.code] = (this.stats.deadLetters[d.code] ?? 0) + 1;
  }

  /**
   * Asks the store to commit the batch; returns what is left once the commit resolves: counting
   * and delivering its new records (alerts, then resolutions).
   */
  private async commit(final = false, hold = false): Promise<Delivery> {
    const { created, updates } = await this.detector.finalize({
      known: (keys) => this.knownAlerts(keys),
      load: (keys) => this.loadAlerts(keys),
    });
    for (const sink of this.sinks) sink.stage?.(created, this.sinkState(sink));
    this.cache.set(META, CLOCK, { ...this.clock });
    // Runs never wait in a store that keeps what is buffered (ingest takes them apart there).
    const put = this.durablePending
      ? this.pending.filter((e): e is CanonicalEvent => !isRun(e) && !this.persisted.has(e))
      : [];
    const remove = this.released.map((e) => e.key);
    const seen = [
      ...this.seenBatch.filter((e) => this.logPositions.needsKey(e)),
      ...this.seenRuns.flatMap(({ run, n }) => this.logPositions.needingKeys(run, n)),
    ];
    const pruneSeenBefore = this.clock.releasedTs - this.config.retention;
    const prune = this.ledgerPrune();
    const writes = { alerts: created, alertUpdates: updates, seen, deadLetters: this.deadBatch };
    const { committed } =
      hold && !this.durablePending && prune.pruneLedgerBefore === undefined
        ? this.holdWrites(writes, pruneSeenBefore)
        : await this.commitHeld({
            ...prune,
            ...writes,
            pending: { put, remove },
            pruneSeenBefore,
            renew: this.claimedKeys(),
          });
    // Owed from the commit on: a look at the backlog meanwhile leaves them to this delivery.
    const owing = committed.then(({ newAlerts, lost }) => {
      this.forgetLost(lost);
      for (const a of created) if (newAlerts.has(recordKey(a))) this.owed.add(recordKey(a));
    });
    owing.catch(() => undefined);
    // What follows assumes the commit succeeds: if it fails, so does every later call (inTurn).
    this.logPositions.forgetBehind();
    for (const e of put) this.persisted.add(e);
    for (const e of this.released) this.persisted.delete(e);
    this.released = [];
    this.seenBatch = [];
    this.seenRuns = [];
    this.deadBatch = [];
    // Sinks see the watermark of this batch, not of one built while it was written (digests).
    const { watermark } = this;
    return async () => {
      const { newAlerts } = await committed;
      // Another instance sharing the store may have stored (and will deliver) the same record.
      const mine = created.filter((a) => newAlerts.has(recordKey(a)));
      for (const a of mine) {
        if (a.status === 'resolved') {
          this.stats.resolutions++;
          continue;
        }
        this.stats.alerts++;
        this.stats.alertsByRule[a.rule] = (this.stats.alertsByRule[a.rule] ?? 0) + 1;
      }
      await owing;
      await this.eachSink((sink) => this.deliver(sink, mine, { final, watermark }));
      for (const a of mine) this.owed.delete(recordKey(a));
      return mine;
    };
  }

  /** Keeps a batch's writes for the next commit (`ingest`'s `hold`), with which it is delivered. */
  private holdWrites(writes: HeldWrites, seenHorizon: number): { committed: Promise<CommitResult> } {
    if (this.held === undefined) this.held = newHeld();
    const held = this.held;
    held.alerts.push(...writes.alerts);
    for (const a of writes.alerts) held.alertKeys.add(recordKey(a));
    held.alertUpdates.push(...writes.alertUpdates);
    held.seen.push(...writes.seen);
    for (const e of writes.seen) held.seenKeys.add(e.key);
    held.deadLetters.push(...writes.deadLetters);
    held.seenHorizon = seenHorizon;
    return held;
  }

  /**
   * Asks the store to commit what held batches hold, then `batch`, with the entities and sessions
   * changed since the last commit, once the last commit succeeded (one commit in flight: each is
   * built on the last); the held batches are delivered once it is applied. A failure before it is
   * asked for fails them too (`inTurn`).
   */
  private async commitHeld(batch: Partial<CommitBatch>): Promise<{ committed: Promise<CommitResult> }> {
    await this.committing;
    if (this.failure !== undefined) throw this.failure;
    const held = this.held;
    this.held = undefined;
    const own = commitBatch(batch);
    const pruneSeenBefore = batch.pruneSeenBefore ?? held?.seenHorizon;
    const committed = this.store.commit({
      ...own,
      entities: this.cache.drainChanges(),
      ...this.correlator.drainSessions(),
      // What is held goes first, in the order it was held.
      ...(held === undefined
        ? {}
        : {
            seen: [...held.seen, ...own.seen],
            alerts: [...held.alerts, ...own.alerts],
            alertUpdates: [...held.alertUpdates, ...own.alertUpdates],
            deadLetters: [...held.deadLetters, ...own.deadLetters],
          }),
      ...(pruneSeenBefore === undefined ? {} : { pruneSeenBefore }),
    });
    if (held !== undefined) committed.then(held.settle.resolve, held.settle.reject);
    // A failed commit fails the calls whose deliveries await it, and every later call.
    this.committing = committed.then(
      () => undefined,
      (error: unknown) => {
        this.failure ??= error;
      },
    );
    return { committed };
  }

  /**
   * The ledger's retention horizon, once a day of event time (a prune is a few statements); the
   * sessions still open in memory (active within the retention) keep their rows.
   */
  private ledgerPrune(): { pruneLedgerBefore?: number; keepOpenSince?: number } {
    const { releasedTs } = this.clock;
    const horizon = releasedTs - this.config.auditRetention;
    const day = Math.floor(horizon / DAY_MS);
    if (day === this.ledgerPrunedDay) return {};
    this.ledgerPrunedDay = day;
    return { pruneLedgerBefore: horizon, keepOpenSince: releasedTs - this.config.retention };
  }

  private async deliver(
    sink: AlertSink,
    records: Alert[],
    {
      final = false,
      backlog = false,
      watermark,
    }: { final?: boolean; backlog?: boolean; watermark: number | undefined },
  ): Promise<void> {
    if (records.length === 0 && !sink.acknowledges) return;
    const acknowledged = new Set<string>();
    const delivered = async (keys: string[]) => {
      if (keys.length > 0) await this.store.markDelivered(sink.name, keys);
      for (const key of keys) acknowledged.add(key);
    };
    // A send can outlast the lease (a long backlog, an output retrying): the claims are renewed meanwhile.
    const renewing =
      records.length > 0 && this.store.isolated !== true
        ? setInterval(() => this.renewClaims(records), CLAIM_RENEW_MS)
        : undefined;
    try {
      await sink.send(records, {
        watermark,
        final,
        backlog,
        state: this.sinkState(sink),
        delivered,
        received: (keys) => this.store.delivered(sink.name, keys),
        claimed: (keys) => this.stillClaimed(keys),
      });
    } catch (error) {
      throw new SinkFailure(error, records);
    } finally {
      clearInterval(renewing);
    }
    if (!sink.acknowledges) await delivered(records.map(recordKey));
    else this.hold(sink.name, records, acknowledged);
  }

  /**
   * Runs `send` for every sink, whichever fail, then throws their failures, after those of the
   * outputs that failed while opening (`kept`; while opening, keeps them there instead): an output
   * that is down (a stream, a bucket, a topic) must not keep records from the outputs after it, such
   * as the route that pages. What a failing sink did not receive stays undelivered in the store for it.
   * Its claims are given up once every sink was sent, not while a sink after it still sends them:
   * another instance sharing the store may send them now, to every sink that has not received them
   * (a retry here takes them back). Those a sink that acknowledges itself holds (`handed`) keep
   * their claims: that sink sends them later, and another instance would send them to it too.
   */
  private async eachSink(send: (sink: AlertSink) => Promise<void>): Promise<void> {
    const failures: OutputFailure[] = [];
    const given = new Set<string>();
    // A failure around a send (the store marking what a sink got) is the store's, not the output's.
    let storeFailed = false;
    for (const sink of this.sinks) {
      try {
        await send(sink);
      } catch (error) {
        const failed = error instanceof SinkFailure ? error : undefined;
        if (failed === undefined) storeFailed = true;
        for (const r of failed?.records ?? []) given.add(recordKey(r));
        failures.push({ sink: sink.name, error: failed ? failed.error : error });
      }
    }
    if (failures.length === 0) return;
    // Those a sink that acknowledges itself holds (a digest not due) are still this pipeline's to send.
    for (const held of this.handed.values()) for (const key of held) given.delete(key);
    if (given.size > 0) await this.store.releaseClaims([...given]).catch(() => undefined);
    if (this.opening) {
      this.kept.push(...failures);
      return;
    }
    const all = [...this.kept.splice(0), ...failures];
    // Later calls deliver after an output's failure (`inTurn`), not after the store's: what they
    // sent would stay unmarked, and be sent again.
    throw storeFailed ? failedOutputs(all) : this.outputError(all);
  }

  /** The error of a delivery whose outputs failed (`failedOutputs`), noted as such (see `inTurn`). */
  private outputError(failures: readonly OutputFailure[]): unknown {
    const error = failedOutputs(failures);
    if (typeof error === 'object' && error !== null) this.outputErrors.add(error);
    return error;
  }

  /** Whether a call failed only because outputs failed in its delivery. */
  private isOutputError(error: unknown): boolean {
    return typeof error === 'object' && error !== null && this.outputErrors.has(error);
  }

  /**
   * Renews the claims of the records being sent and of all this pipeline holds; a failed renewal
   * is tried again at the next tick, or by the next commit.
   */
  private renewClaims(sending: readonly Alert[]): void {
    const keys = new Set([...sending.map(recordKey), ...this.claimedKeys()]);
    this.store.renewClaims([...keys]).then(
      (lost) => this.forgetLost(lost),
      () => undefined,
    );
  }

  /** Which of these records are still this instance's (`SendContext.claimed`): their claims, renewed. */
  private async stillClaimed(keys: string[]): Promise<Set<string>> {
    if (keys.length === 0 || this.store.isolated === true) return new Set(keys);
    const lost = await this.store.renewClaims(keys);
    this.forgetLost(lost);
    return new Set(keys.filter((k) => !lost.has(k)));
  }

  /** Notes what an acknowledging sink was given and holds (`handed`), and what it let go. */
  private hold(sink: string, records: readonly Alert[], acknowledged: ReadonlySet<string>): void {
    const held = this.handed.get(sink) ?? new Set<string>();
    for (const key of acknowledged) held.delete(key);
    for (const r of records) {
      const key = recordKey(r);
      if (!acknowledged.has(key)) held.add(key);
    }
    if (held.size > 0) this.handed.set(sink, held);
    else this.handed.delete(sink);
  }

  /** A sink's rows in the entity cache (kind `sink:<name>`), committed with the batches. */
  private sinkState(sink: AlertSink): SinkState {
    const kind = `sink:${sink.name}`;
    const cache = this.cache;
    return {
      get: (key) => cache.get(kind, key),
      set: (key, body) => void cache.set(kind, key, body),
      delete: (key) => cache.delete(kind, key),
      entries: () => cache.entries(kind),
    };
  }
}
