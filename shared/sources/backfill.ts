// Backfill of OCI IAM audit events into the pipeline, from the Audit API (ListEvents) or from
// Logging Search (the `_Audit` log), window by window, resumable from a checkpoint.
//
// - Windows are minute-aligned and tile [from, to). Events become visible up to ~15 minutes
//   late, so every window's query starts `overlapMs` (default 20 min)
//   before the window, except the very first window of a fresh run; what is fetched twice is
//   dropped by the pipeline's dedupe on event id.
// - Audit API: ListEvents reads one compartment and has no sub-compartment option: with
//   `includeSubcompartments` the compartment tree is listed first (ListCompartments) and every
//   window reads each compartment of it.
// - Audit API: filters on processing time. The SDK formats query-string Dates with local-time
//   getters (wrong outside TZ=UTC, and with an unpadded hour): times are handed to it
//   pre-formatted as RFC 3339 UTC strings, so the process time zone does not matter. A window's
//   events are collected over all pages, sorted by event time and ingested. Only the events the
//   pipeline reads are kept: those that concern nothing (most of a busy tenancy's, other
//   services') are counted and folded into their number and latest time as they are decoded, and
//   ingested after the window's events, so the watermark ends the window where it did with them.
// - Logging Search: at most 14 days per query (window + overlap), `| sort by datetime asc`, so
//   each page is ingested in order as it arrives (memory stays bounded over 14-day windows).
// - Page tokens are URL-encoded: the SDK puts query values into the URL verbatim.
// - Checkpoint: after a window's events are committed by the pipeline, `completedUntil` = the
//   window's end is saved. A crash between the two re-reads one window, deduped. It names the
//   scope and store the windows were committed to: from any other state they were never read.
import { randomUUID } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { AuditClient } from 'oci-audit';
import type { LogSearchClient } from 'oci-loggingsearch';
import {
  compareTimed,
  type DecodedItem,
  decodeBatch,
  type IgnoredItem,
  type ReadOptions,
} from '../decode/read-input.js';
import { AuditError } from '../errors.js';
import { type CompartmentLister, compartmentTree } from '../oci/compartments.js';
import type { Pipeline } from '../pipeline.js';
import { toIso } from '../time.js';
import { callWithRetries, DEFAULT_RETRY_BUDGET, type RetryBudget } from './stream-consumer.js';

export const BACKFILL_SOURCES = ['audit', 'logging'] as const;
export type BackfillSource = (typeof BACKFILL_SOURCES)[number];

export type AuditApi = Pick<AuditClient, 'listEvents'>;
export type LogSearchApi = Pick<LogSearchClient, 'searchLogs'>;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const LOG_SEARCH_MAX_SPAN_MS = 14 * DAY;
export const DEFAULT_OVERLAP_MS = 20 * MINUTE;
const DEFAULT_AUDIT_WINDOW_MS = HOUR;

export type Checkpoint = {
  version: 1;
  source: BackfillSource;
  compartmentId: string;
  includeSubcompartments: boolean;
  /** The state scope the windows were committed to. */
  scope: string;
  /** The store of that scope, as `BackfillOptions.target.store` names it. */
  store: string;
  /** Start of the range the checkpoint covers (ISO). */
  from: string;
  /** The requested end (ISO). */
  to: string;
  /** Every window before this time is committed (ISO). */
  completedUntil: string;
  windows: number;
  records: number;
  updatedAt: string;
};

export interface CheckpointStore {
  load(): Promise<Checkpoint | undefined>;
  save(checkpoint: Checkpoint): Promise<void>;
}

/** A JSON checkpoint file, replaced atomically (write a temporary file, then rename). */
export function fileCheckpoint(path: string): CheckpointStore {
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
        throw new AuditError('INPUT_UNREADABLE', 'cannot read the checkpoint file', {
          details: { path },
          cause: error,
        });
      }
      try {
        const value = JSON.parse(text) as Partial<Checkpoint>;
        if (value.version !== 1 || typeof value.completedUntil !== 'string')
          throw new Error('not a checkpoint');
        return value as Checkpoint;
      } catch (cause) {
        throw new AuditError('INPUT_UNREADABLE', 'the checkpoint file is not a backfill checkpoint', {
          details: { path },
          cause,
        });
      }
    },
    async save(checkpoint) {
      const tmp = `${path}.${randomUUID()}.tmp`;
      await writeFile(tmp, `${JSON.stringify(checkpoint, null, 2)}\n`);
      await rename(tmp, path);
    },
  };
}

export function memoryCheckpoint(
  initial?: Checkpoint,
): CheckpointStore & { current: Checkpoint | undefined } {
  const store = {
    current: initial,
    async load() {
      return store.current;
    },
    async save(c: Checkpoint) {
      store.current = { ...c };
    },
  };
  return store;
}

export type BackfillProgress = {
  windowStart: number;
  windowEnd: number;
  windowsDone: number;
  windowsTotal: number;
  pages: number;
  records: number;
  alerts: number;
};

export type BackfillOptions = {
  source: BackfillSource;
  compartmentId: string;
  from: number;
  to: number;
  pipeline: Pipeline;
  /**
   * Where the pipeline commits: its scope, and its store named without a password. A checkpoint
   * is refused unless it was written for the same two.
   */
  target: { scope: string; store: string };
  audit?: AuditApi;
  logSearch?: LogSearchApi;
  /** Audit with `includeSubcompartments`: lists the compartment tree. */
  identity?: CompartmentLister;
  checkpoint?: CheckpointStore;
  /** Window length. Default 1 hour (audit), 14 days minus the overlap (logging). */
  windowMs?: number;
  /** How far each window's query reaches back into the previous one. Default 20 minutes. */
  overlapMs?: number;
  /** Logging: `_Audit_Include_Subcompartment`; audit: every compartment below as well. */
  includeSubcompartments?: boolean;
  /** Logging rows per page (<= 1000). Default 1000. */
  pageLimit?: number;
  /** Events per pipeline.ingest (one transaction). Default 5000. */
  batchSize?: number;
  /** Bound on pages per window. Default 100000. */
  maxPagesPerWindow?: number;
  /** Apply everything buffered and fire timers at the end (as of min(to, now)). Default true. */
  finish?: boolean;
  retry?: Partial<RetryBudget>;
  decode?: ReadOptions;
  signal?: AbortSignal;
  onProgress?(p: BackfillProgress): void;
  /**
   * Called once the range is planned, with the result the backfill returns, counted as it goes: a
   * host whose backfill fails can still tell what it did.
   */
  onStart?(result: Readonly<BackfillResult>): void;
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
  now?(): number;
};

export type BackfillResult = {
  /** False when stopped before `to`. */
  completed: boolean;
  /** Where this run started (a checkpoint's completedUntil when it resumed). */
  startedAt: number;
  resumed: boolean;
  /** Compartments read: the one asked for, and with `includeSubcompartments` (audit) those below. */
  compartments: number;
  windows: number;
  pages: number;
  records: number;
  /** Records the pipeline reads (a copy fetched again by an overlapping query included). */
  events: number;
  /** Events that concern nothing the pipeline reads (`DecodedItem` `ignored`): counted, not kept. */
  ignored: number;
  dead: number;
  alerts: number;
  calls: number;
  throttled: number;
  serverErrors: number;
  completedUntil: number;
};

/** Refuses a checkpoint of another source, compartment, scope or store. */
function sameBackfill(saved: Checkpoint, opts: BackfillOptions, includeSub: boolean): void {
  if (
    saved.source !== opts.source ||
    saved.compartmentId !== opts.compartmentId ||
    saved.includeSubcompartments !== includeSub
  ) {
    throw new AuditError(
      'USAGE',
      'the checkpoint belongs to another backfill (source or compartment); use another --checkpoint',
      { details: { source: saved.source, compartment: saved.compartmentId } },
    );
  }
  const { scope, store } = opts.target;
  if (saved.scope !== scope || saved.store !== store) {
    const named = (c: { scope?: string; store?: string }) =>
      `scope ${c.scope ?? '(not recorded)'} of ${c.store ?? '(not recorded)'}`;
    throw new AuditError(
      'USAGE',
      `the checkpoint records windows committed to ${named(saved)}, not to ${named(opts.target)} ` +
        'where this run commits; use the same --state and --scope, or another --checkpoint',
      { details: { checkpointScope: saved.scope, scope } },
    );
  }
}

/** RFC 3339 UTC without milliseconds: what the Audit API's query parameters take. */
export function formatQueryTime(ms: number): string {
  return toIso(ms).replace(/\.\d{3}Z$/, 'Z');
}

/** The Logging Search query for a compartment's audit log. */
export function auditSearchQuery(compartmentId: string, includeSubcompartments: boolean): string {
  if (!/^[\w.:-]+$/.test(compartmentId)) {
    throw new AuditError('USAGE', 'the compartment must be an OCID', { details: { option: 'compartment' } });
  }
  const log = includeSubcompartments ? '_Audit_Include_Subcompartment' : '_Audit';
  return `search "${compartmentId}/${log}" | sort by datetime asc`;
}

const floorMinute = (ms: number) => Math.floor(ms / MINUTE) * MINUTE;
const ceilMinute = (ms: number) => Math.ceil(ms / MINUTE) * MINUTE;

type Window = { start: number; end: number; queryStart: number };

/** Minute-aligned windows tiling [start, to); each query reaches `overlap` back, not before `floor`. */
export function planWindows(
  start: number,
  to: number,
  windowMs: number,
  overlapMs: number,
  fresh: boolean,
  floor: number,
): Window[] {
  const windows: Window[] = [];
  const step = Math.max(MINUTE, floorMinute(windowMs));
  for (let s = start; s < to; s += step) {
    const first = windows.length === 0 && fresh;
    windows.push({
      start: s,
      end: Math.min(s + step, to),
      queryStart: first ? s : Math.max(floor, s - overlapMs),
    });
  }
  return windows;
}

export async function backfill(opts: BackfillOptions): Promise<BackfillResult> {
  // Rounded up to the minute: the Audit API refuses query times with seconds.
  const overlap = ceilMinute(opts.overlapMs ?? DEFAULT_OVERLAP_MS);
  if (!(overlap >= 0)) throw new AuditError('USAGE', 'the overlap must not be negative');
  const now = opts.now ?? Date.now;
  const from = floorMinute(opts.from);
  // Nothing is processed in the future: a later run (resuming) reads what comes.
  const to = Math.min(ceilMinute(opts.to), ceilMinute(now()));
  if (!(to > from)) throw new AuditError('USAGE', '--from must be before --to and before now');
  const includeSub = opts.includeSubcompartments ?? false;
  let windowMs =
    opts.windowMs ?? (opts.source === 'audit' ? DEFAULT_AUDIT_WINDOW_MS : LOG_SEARCH_MAX_SPAN_MS - overlap);
  if (opts.source === 'logging') {
    windowMs = Math.min(windowMs, LOG_SEARCH_MAX_SPAN_MS - overlap);
    if (windowMs < MINUTE)
      throw new AuditError('USAGE', 'the overlap leaves no room in a 14-day Logging Search window');
  }
  const fetcher = opts.source === 'audit' ? auditFetcher(opts) : loggingFetcher(opts, includeSub);
  if (opts.source === 'audit' && includeSub && !opts.identity) {
    throw new AuditError('INTERNAL', 'backfill of sub-compartments needs an Identity client');
  }

  // Resume: the checkpoint covers [cp.from, cp.completedUntil) of the same source and compartment,
  // committed to the same scope of the same store.
  const saved = await opts.checkpoint?.load();
  if (saved) sameBackfill(saved, opts, includeSub);
  const savedFrom = saved ? Date.parse(saved.from) : Number.NaN;
  const savedUntil = saved ? Date.parse(saved.completedUntil) : Number.NaN;
  const resumed = saved !== undefined && savedFrom <= from && savedUntil > from;
  const start = resumed ? Math.min(savedUntil, to) : from;
  const rangeFrom = resumed ? savedFrom : from;
  const windows = planWindows(start, to, windowMs, overlap, !resumed, rangeFrom);

  const result: BackfillResult = {
    completed: false,
    startedAt: start,
    resumed,
    compartments: 1,
    windows: 0,
    pages: 0,
    records: 0,
    events: 0,
    ignored: 0,
    dead: 0,
    alerts: 0,
    calls: 0,
    throttled: 0,
    serverErrors: 0,
    completedUntil: start,
  };
  opts.onStart?.(result);
  const retry = { ...DEFAULT_RETRY_BUDGET, ...opts.retry };
  const call = <T>(operation: string, fn: () => Promise<T>): Promise<T> =>
    callWithRetries(operation, fn, {
      retry,
      counters: result,
      onAttempt: () => {
        result.calls++;
      },
      signal: opts.signal,
      ...(opts.sleep ? { sleep: opts.sleep } : {}),
    });
  // A stopped run ends the work: an output that failed when the pipeline opened fails it (settle).
  const stopped = async (): Promise<BackfillResult> => {
    await opts.pipeline.settle();
    return result;
  };
  const batchSize = opts.batchSize ?? 5000;
  const { stats } = opts.pipeline;
  const ingest = async (items: DecodedItem[]) => {
    for (let i = 0; i < items.length; i += batchSize) {
      const before = stats.alerts + stats.resolutions;
      // Its records, alerts and resolutions: counted also when an output fails their delivery (they
      // were stored, and sent to the outputs that work).
      try {
        await opts.pipeline.ingest(items.slice(i, i + batchSize));
      } finally {
        result.alerts += stats.alerts + stats.resolutions - before;
      }
    }
  };
  const maxPages = opts.maxPagesPerWindow ?? 100_000;
  // Logging Search covers the sub-tree in its query; ListEvents is asked compartment by compartment.
  let compartments = [opts.compartmentId];
  if (opts.source === 'audit' && includeSub && windows.length > 0) {
    try {
      compartments = await compartmentTree(opts.compartmentId, opts.identity!, call);
    } catch (error) {
      if (opts.signal?.aborted) return stopped();
      throw error;
    }
  }
  result.compartments = compartments.length;

  for (const [i, w] of windows.entries()) {
    if (opts.signal?.aborted) return stopped();
    const collected: Kept[] = [];
    const ignored = new IgnoredFold(opts.pipeline);
    for (const compartment of compartments) {
      let page: string | undefined;
      let pages = 0;
      do {
        if (opts.signal?.aborted) return stopped();
        if (++pages > maxPages) {
          throw new AuditError('OCI_REQUEST_FAILED', 'too many pages in one window; use a shorter --window', {
            details: { window: formatQueryTime(w.start), pages: maxPages },
          });
        }
        let got: Fetched;
        try {
          got = await fetcher(w, page, call, compartment);
        } catch (error) {
          // Stopped during a backoff: the window was not checkpointed, the next run reads it.
          if (opts.signal?.aborted) return stopped();
          throw error;
        }
        result.pages++;
        const items =
          got.rows.length === 0 ? [] : await decodeBatch(JSON.stringify(got.rows), got.source, opts.decode);
        const kept: Kept[] = [];
        for (const item of items) {
          if (item.type === 'ignored') {
            result.ignored++;
            ignored.add(item);
            continue;
          }
          if (item.type === 'event') result.events++;
          else result.dead++;
          kept.push(item);
        }
        result.records += items.length;
        if (got.ordered) await ingest([...sortItems(kept), ...ignored.take()]);
        else for (const item of kept) collected.push(item);
        page = got.next;
      } while (page);
    }
    const rest = [...sortItems(collected), ...ignored.take()];
    if (rest.length > 0) await ingest(rest);
    result.windows++;
    result.completedUntil = w.end;
    await opts.checkpoint?.save({
      version: 1,
      source: opts.source,
      compartmentId: opts.compartmentId,
      includeSubcompartments: includeSub,
      scope: opts.target.scope,
      store: opts.target.store,
      from: toIso(rangeFrom),
      to: toIso(to),
      completedUntil: toIso(w.end),
      windows: (resumed ? (saved?.windows ?? 0) : 0) + result.windows,
      records: (resumed ? (saved?.records ?? 0) : 0) + result.records,
      updatedAt: toIso(now()),
    });
    opts.onProgress?.({
      windowStart: w.start,
      windowEnd: w.end,
      windowsDone: i + 1,
      windowsTotal: windows.length,
      pages: result.pages,
      records: result.records,
      alerts: result.alerts,
    });
  }
  result.completed = true;
  if (opts.finish ?? true) {
    result.alerts += (await opts.pipeline.finish(Math.min(to, now()))).length;
  }
  return result;
}

/** What a window keeps of its records: events and dead letters. */
type Kept = Exclude<DecodedItem, IgnoredItem>;

/** Dead letters first (they carry no time), then events in the pipeline's total order. */
function sortItems(items: Kept[]): Kept[] {
  return items.sort((a, b) => {
    if (a.type === 'dead' || b.type === 'dead') return a.type === b.type ? 0 : a.type === 'dead' ? -1 : 1;
    return compareTimed(a, b);
  });
}

/**
 * Ignored events folded into one item: their number, and the latest time the pipeline accepts of
 * them (one far in the future would otherwise hide the others' times).
 */
class IgnoredFold {
  private count = 0;
  private ts = Number.NEGATIVE_INFINITY;

  constructor(private readonly pipeline: Pick<Pipeline, 'acceptsTime'>) {}

  add(item: IgnoredItem): void {
    this.count += item.count ?? 1;
    if (item.ts > this.ts && this.pipeline.acceptsTime(item.ts)) this.ts = item.ts;
  }

  /** The item for what was added since the last call (none when nothing was). */
  take(): IgnoredItem[] {
    if (this.count === 0) return [];
    const item: IgnoredItem = { type: 'ignored', ts: this.ts, count: this.count };
    this.count = 0;
    this.ts = Number.NEGATIVE_INFINITY;
    return [item];
  }
}

type Call = <T>(operation: string, fn: () => Promise<T>) => Promise<T>;
type Fetched = { rows: unknown[]; next: string | undefined; source: string; ordered: boolean };
type Fetcher = (w: Window, page: string | undefined, call: Call, compartmentId: string) => Promise<Fetched>;

function auditFetcher(opts: BackfillOptions): Fetcher {
  const client = opts.audit;
  if (!client) throw new AuditError('INTERNAL', 'backfill from the Audit API needs an Audit client');
  return async (w, page, call, compartmentId) => {
    const res = await call('listEvents', () =>
      client.listEvents({
        compartmentId,
        // Pre-formatted on purpose: the SDK would format a Date with local-time getters.
        startTime: formatQueryTime(w.queryStart) as unknown as Date,
        endTime: formatQueryTime(w.end) as unknown as Date,
        ...(page !== undefined ? { page: encodeURIComponent(page) } : {}),
      }),
    );
    return {
      rows: res.items ?? [],
      next: res.opcNextPage || undefined,
      source: `audit ${formatQueryTime(w.queryStart)}/${formatQueryTime(w.end)}`,
      ordered: false,
    };
  };
}

function loggingFetcher(opts: BackfillOptions, includeSub: boolean): Fetcher {
  const client = opts.logSearch;
  if (!client) throw new AuditError('INTERNAL', 'backfill from Logging Search needs a LogSearch client');
  const searchQuery = auditSearchQuery(opts.compartmentId, includeSub);
  const limit = opts.pageLimit ?? 1000;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new AuditError('USAGE', 'the Logging Search page limit must be an integer from 1 to 1000');
  }
  return async (w, page, call) => {
    const res = await call('searchLogs', () =>
      client.searchLogs({
        searchLogsDetails: {
          timeStart: new Date(w.queryStart),
          timeEnd: new Date(w.end),
          searchQuery,
          isReturnFieldInfo: false,
        },
        limit,
        ...(page !== undefined ? { page: encodeURIComponent(page) } : {}),
      }),
    );
    return {
      rows: res.searchResponse?.results ?? [],
      next: res.opcNextPage || undefined,
      source: `logging ${formatQueryTime(w.queryStart)}/${formatQueryTime(w.end)}`,
      ordered: true,
    };
  };
}
