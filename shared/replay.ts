// Replays input files as one event-time timeline: MySQL audit inputs are streamed (they are
// written in time order), each IAM input is put in order first (ListEvents follows processing
// time), and a k-way merge feeds the pipeline in batches, so memory stays bounded and the order
// of files on the command line does not matter. A batch is a number of records, whose routine
// statements are folded into one run per connection (shared/decode/statement-runs.ts).
import { Heap } from 'heap-js';
import type { Config } from '../schemas/config.js';
import type { DeadLetter, DeadLetterCode } from '../schemas/dead-letter.js';
import { compareDbSystems } from '../schemas/events.js';
import type { ActiveRule } from './config/active-rules.js';
import { DecodePool } from './decode/decode-pool.js';
import { dbSystemResolver } from './decode/input-db-system.js';
import {
  compareTimed,
  type InputCounts,
  type InputReader,
  readInput,
  type TimedItem,
} from './decode/read-input.js';
import { type BatchItem, StatementRuns } from './decode/statement-runs.js';
import type { AlertSink } from './emit/sink.js';
import { type DecodedItem, Pipeline, type PipelineStats } from './pipeline.js';
import type { StateStore } from './state/state-store.js';

/** Records fed to the pipeline so far, in all and per input (the merge interleaves inputs). */
export type ReplayProgress = {
  records: number;
  alerts: number;
  inputs: readonly { path: string; records: number }[];
};

export type ReplayOptions = {
  config: Config;
  rules: readonly ActiveRule[];
  inputs: string[];
  store: StateStore;
  sinks: readonly AlertSink[];
  asOf?: number;
  dbSystem?: string;
  batchSize?: number;
  /**
   * Batches written to the store in one commit (default 4): the others are ingested with `hold`
   * (Pipeline.ingest), which gives the same records in the same order.
   */
  batchesPerCommit?: number;
  /**
   * Threads in all (default 1): with more, `threads - 1` workers read and decode the inputs
   * (shared/decode/decode-pool.ts; needs the bundled worker, dist/decode-worker.cjs).
   */
  threads?: number;
  onProgress?: (p: ReplayProgress) => void;
  /**
   * Called once the pipeline is open, with the result the replay returns, counted as it goes: a host
   * whose replay fails can still tell what it did.
   */
  onOpen?: (result: Readonly<ReplayResult>) => void;
};

export type InputReport = {
  path: string;
  counts: InputCounts;
  deadCodes: Set<DeadLetterCode>;
  /** Items of this input fed to the pipeline so far. */
  records: number;
};

export type ReplayResult = {
  stats: PipelineStats;
  /** Per input: what was read, and which dead-letter codes it gave. */
  inputs: InputReport[];
  /** The first dead letters, for the summary (all of them are counted in stats and stored). */
  deadLetters: DeadLetter[];
  pipeline: Pipeline;
};

const KEEP_DEAD_LETTERS = 20;

/**
 * An input in the merge: its items one decoded chunk at a time, positioned on its next event (or
 * ignored event: its time moves the watermark, so it takes its place in time like an event).
 */
type Source = {
  input: InputReport;
  /** Position in the command line: breaks ties between equal events of different inputs. */
  order: number;
  chunks: AsyncIterator<DecodedItem[]> | undefined;
  buffer: DecodedItem[];
  i: number;
  /**
   * The time of its next event, kept where `skipDead` finds it: the merge's comparisons read it
   * from this one shape of object rather than from events of many shapes.
   */
  ts: number;
  /**
   * The DB system of its next event if that is a MySQL event (`NO_DB` if not): read from the event
   * at the first tie in time that asks (`compareTied`), null until then. Audit times are whole
   * seconds, so ties between inputs are common.
   */
  db: DbRank | null;
  /** The last DB system ranked for it: an input is most often of one DB system, whose id is one string. */
  lastRanked: DbRank;
};

/** A DB system's place among those the merge has met, in `compareDbSystems` order. */
type DbRank = { id: string; rank: number };

/** Not a MySQL event: ties go to `compareEvents`. */
const NO_DB: DbRank = { id: '', rank: -1 };

/**
 * The DB systems met in ties, ranked: comparing two ranks is one subtraction, where
 * `compareDbSystems` compares two OCIDs that share their first 70 characters or so. A DB system
 * met for the first time ranks the others again (a fleet has few).
 */
export class DbRanks {
  private readonly byId = new Map<string, DbRank>();
  private readonly sorted: DbRank[] = [];

  of(id: string): DbRank {
    let rank = this.byId.get(id);
    if (rank === undefined) {
      rank = { id, rank: 0 };
      this.byId.set(id, rank);
      let at = this.sorted.length;
      while (at > 0 && compareDbSystems(this.sorted[at - 1]!.id, id) > 0) at--;
      this.sorted.splice(at, 0, rank);
      for (const [i, r] of this.sorted.entries()) r.rank = i;
    }
    return rank;
  }
}

const headOf = (s: Source) => s.buffer[s.i] as TimedItem;

/** Orders the merge's inputs by their next events (`compareEvents`), then by the command line. */
function sourceOrder(ranks: DbRanks): (a: Source, b: Source) => number {
  const rankOf = (s: Source): DbRank => {
    if (s.db === null) {
      const head = headOf(s);
      const ev = head.type === 'event' ? head.event : undefined;
      if (ev?.source !== 'mysql') s.db = NO_DB;
      else {
        if (s.lastRanked.id !== ev.dbSystemId) s.lastRanked = ranks.of(ev.dbSystemId);
        s.db = s.lastRanked;
      }
    }
    return s.db;
  };
  /** Events at the same time: MySQL events of two DB systems by DB system, as `compareEvents` orders them. */
  const compareTied = (a: Source, b: Source): number => {
    const dbA = rankOf(a);
    const dbB = rankOf(b);
    return (dbA !== NO_DB && dbB !== NO_DB && dbA.rank - dbB.rank) || compareTimed(headOf(a), headOf(b));
  };
  return (a, b) => a.ts - b.ts || compareTied(a, b) || a.order - b.order;
}

export async function replayFiles(opts: ReplayOptions): Promise<ReplayResult> {
  // Checks --db-system before any worker starts.
  const resolveDbSystem = dbSystemResolver(opts.config, opts.dbSystem);
  const threads = opts.threads ?? 1;
  const pool =
    threads > 1
      ? new DecodePool(threads - 1, {
          dbSystems: opts.config.dbSystems.map((d) => ({ id: d.id, name: d.name })),
          lateness: opts.config.lateness,
          ...(opts.dbSystem === undefined ? {} : { dbSystem: opts.dbSystem }),
        })
      : undefined;
  try {
    const { lateness } = opts.config;
    return await replayInputs(
      opts,
      (path) => pool?.read(path) ?? readInput(path, { resolveDbSystem, lateness }),
    );
  } finally {
    await pool?.close();
  }
}

/** An input's counts and decoded chunks, read here or on a worker. */
type Reader = Pick<InputReader, 'counts' | 'batches'>;

async function replayInputs(opts: ReplayOptions, read: (path: string) => Reader): Promise<ReplayResult> {
  // A replay can be run again after a crash: buffered events need not be written to the store.
  const pipeline = await Pipeline.open({
    config: opts.config,
    rules: opts.rules,
    store: opts.store,
    sinks: opts.sinks,
    durablePending: false,
  });
  const batchSize = opts.batchSize ?? 10_000;
  // A replay can be run again, so it may hold batches for a later commit: a long session's counts
  // or a busy subject's baseline, changed batch after batch, are then written once a commit. With
  // 4, a replay at scale 3 wrote 743 MB instead of 1,092, in a quarter less system time
  // (docs/testing.md).
  const batchesPerCommit = opts.batchesPerCommit ?? 4;
  let batches = 0;
  const deadLetters: DeadLetter[] = [];
  // A batch is `batchSize` records, whatever runs fold them into (the commits stay where they were).
  let batch: BatchItem[] = [];
  let batchRecords = 0;
  const runs = new StatementRuns();
  let records = 0;
  const reports: InputReport[] = [];
  const result: ReplayResult = { stats: pipeline.stats, inputs: reports, deadLetters, pipeline };
  opts.onOpen?.(result);
  const progress = () => opts.onProgress?.({ records, alerts: pipeline.stats.alerts, inputs: reports });

  /** Counts an item and adds it to the batch; the caller flushes. */
  const take = (item: DecodedItem, from: InputReport): void => {
    records++;
    from.records++;
    if (item.type === 'dead') {
      from.deadCodes.add(item.dead.code);
      if (deadLetters.length < KEEP_DEAD_LETTERS) deadLetters.push(item.dead);
    }
    batchRecords++;
    const folded = runs.fold(item);
    if (folded !== undefined) batch.push(folded);
  };
  // With a store whose calls are ordered, the next batch is read and built while the last one is
  // committed (on the store's commit thread, when it has one): one commit waits at most.
  let committing: Promise<unknown> = Promise.resolve();
  const flush = async (): Promise<void> => {
    if (batchRecords < batchSize) return;
    // The last commit's batches are delivered first: their sinks' marks are written before this
    // batch's commit.
    await committing;
    const hold = ++batches % batchesPerCommit !== 0;
    const ingested = pipeline.ingest(batch, undefined, { hold });
    batch = [];
    batchRecords = 0;
    runs.reset();
    if (hold) {
      // Delivered after the commit that writes it, which a later batch makes; its failure fails
      // the calls after it too.
      ingested.catch(() => undefined);
    } else if (opts.store.ordered) {
      // Reported by the next flush, or by the end of the replay.
      ingested.catch(() => undefined);
      committing = ingested;
    } else await ingested;
    progress();
  };

  /** Takes the dead letters before the source's next event; true when it has one. */
  const skipDead = (s: Source): boolean => {
    for (; s.i < s.buffer.length; s.i++) {
      const item = s.buffer[s.i]!;
      if (item.type !== 'dead') {
        s.ts = item.type === 'event' ? item.event.ts : item.ts;
        s.db = null;
        return true;
      }
      take(item, s.input);
    }
    return false;
  };
  /** Positions a source on its next event, reading chunks as needed; false at its end. */
  const settle = async (s: Source): Promise<boolean> => {
    while (!skipDead(s)) {
      await flush();
      const r = await s.chunks?.next();
      if (r === undefined || r.done) return false;
      s.buffer = r.value;
      s.i = 0;
    }
    return true;
  };

  // Every input is opened first: workers start decoding all of them at once.
  const readers = opts.inputs.map(read);
  const sources: Source[] = [];
  for (const [order, path] of opts.inputs.entries()) {
    const reader = readers[order]!;
    const input: InputReport = { path, counts: reader.counts, deadCodes: new Set(), records: 0 };
    reports.push(input);
    const source: Source = {
      input,
      order,
      chunks: reader.batches()[Symbol.asyncIterator](),
      buffer: [],
      i: 0,
      ts: 0,
      db: null,
      lastRanked: NO_DB,
    };
    if (!(await settle(source))) continue;
    const head = headOf(source);
    if (head.type === 'ignored' || head.event.source === 'iam') {
      // IAM exports are not in event-time order: read the whole input and sort it (of the events
      // that concern nothing, only their times are kept).
      const events: TimedItem[] = [];
      do events.push(source.buffer[source.i++] as TimedItem);
      while (await settle(source));
      events.sort(compareTimed);
      Object.assign(source, { chunks: undefined, buffer: events, i: 0, db: null });
      skipDead(source);
    }
    sources.push(source);
  }

  // A heap of sources by their next event: O(log k) per record with k inputs, and none while one
  // input stays ahead of all others (audit files of one DB system are in time order).
  const compareSources = sourceOrder(new DbRanks());
  const heap = new Heap<Source>(compareSources);
  heap.init(sources);
  let s = heap.pop();
  while (s !== undefined) {
    const next = heap.peek();
    // Most records are before the next source's head by time alone.
    const nextTs = next === undefined ? Number.POSITIVE_INFINITY : next.ts;
    do {
      take(s.buffer[s.i++]!, s.input);
      if (batchRecords >= batchSize || !skipDead(s)) break;
    } while (s.ts < nextTs || (s.ts === nextTs && compareSources(s, next!) < 0));
    // Awaited only when a batch is full or the source needs its next chunk: most turns need neither.
    if (batchRecords >= batchSize) await flush();
    if (!(skipDead(s) || (await settle(s)))) s = heap.pop();
    // A source that is no longer first trades places with the one that is: one sift of the heap
    // where a push and a pop would take two (with many interleaved inputs, most turns end so).
    else if (next !== undefined && compareSources(s, next) > 0) s = heap.replace(s);
  }
  await committing;
  if (batch.length > 0) await pipeline.ingest(batch);
  await pipeline.finish(opts.asOf);
  progress();
  return result;
}
