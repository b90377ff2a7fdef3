// One collection pass over a fleet: every instance's audit log is read from where the last pass
// stopped (its position, kept in the state store) to its end, the instances' records are merged
// into one event-time timeline (as `replay` merges files), and the pipeline ingests them in
// batches. Each batch commits, in one transaction, its events and the positions the instances
// reached with them: a crash at any point neither loses nor repeats a record (a re-read overlap is
// skipped in log order, and the pipeline's dedupe covers what is left).
//
// An instance whose first read (from `collect --from` or `collector.start`) commits no event (it
// finds none at or after its start, fails, or is stopped by the signal or the deadline first)
// keeps that start, so that the next pass begins there too, not at an earlier default. One that
// finds only events skipped for size keeps a bookmark past them instead (AuditLogReader,
// `skippedThrough`), so that they are reported once. The start, and such a bookmark of an event
// skipped, not read (`skippedKey`), are kept apart from the bookmark of an event read
// (`positionKey`): a release that reads a bookmark there finds none, and reads as it did (it
// would take a bookmark there for an event read, and drop that event when it comes back).
//
// An instance that cannot be reached or read is retried a few times within the pass and then
// reported; the others are read regardless. A pass stops early at `deadline` or on `signal`,
// committing what it read; the next pass goes on from there.
import { Heap } from 'heap-js';
import type { Alert } from '../../schemas/alert.js';
import { compareEvents } from '../../schemas/events.js';
import { type DecodedItem, decodeValue } from '../decode/read-input.js';
import { inGroups } from '../in-groups.js';
import type { Pipeline } from '../pipeline.js';
import { toIso } from '../time.js';
import { type AuditFlavor, AuditLogReader, type InstancePosition } from './audit-log-reader.js';
import { InstanceError, type InstanceTarget, instanceError, type SqlSession } from './mysql-connection.js';

export type CollectorOptions = {
  pipeline: Pipeline;
  targets: readonly InstanceTarget[];
  connect(target: InstanceTarget): Promise<SqlSession>;
  /** Where an instance read for the first time starts (epoch ms; `collect --from`), over its settings' `start`. */
  from?: number;
  /** Records per pipeline batch (one transaction). Default 5000. */
  batchSize?: number;
  /** Stop reading when aborted; what was read is committed. */
  signal?: AbortSignal;
  /** Stop reading at this time (epoch ms); what was read is committed. */
  deadline?: number;
  now?(): number;
  /** Attempts after the first, per instance and pass, when an instance is unreachable or drops. Default 2. */
  retries?: number;
  /** Wait before retry n (0-based). Default 500 ms doubling. */
  retryDelayMs?(retry: number): number;
  sleep?(ms: number): Promise<void>;
  /** Receives each batch's records before the batch is committed (other consumers: a stream). */
  forward?(records: Record<string, unknown>[]): Promise<void>;
  onBatch?(progress: { records: number; alerts: number }): void;
};

export type InstanceReport = {
  dbSystem: { id: string; name: string };
  instance: string;
  address: string;
  server?: { version: string; flavor: AuditFlavor | undefined; readBufferSize?: number; bufferNote?: string };
  /** Records read in this pass (events, and gap records). */
  records: number;
  /** Events read again at the resume position (already collected). */
  repeated: number;
  gaps: number;
  /** Where the instance stands after this pass. */
  position?: StoredPosition;
  /** The read reached the end of the log. */
  caughtUp: boolean;
  attempts: number;
  /** Why the instance was not read to the end (log-safe). */
  error?: string;
};

export type CollectResult = {
  instances: InstanceReport[];
  records: number;
  alerts: Alert[];
  /** The pass stopped at the deadline or on the signal before every instance was read. */
  stopped: boolean;
};

/**
 * Where an instance from which no event was read yet starts: the start of its first read
 * (`collect --from`, `collector.start`), kept when that read found nothing at or after it.
 */
export type StartPosition = { start: string };

/** What the state keeps of an instance: the last event read, or where its first read starts. */
export type StoredPosition = InstancePosition | StartPosition;

/** The pipeline position key of an instance: its bookmark (an InstancePosition), only. */
export function positionKey(target: InstanceTarget): string {
  return `collect:${target.db.id}/${target.instance}`;
}

/** The pipeline position key of an instance's start (a StartPosition), until an event is read. */
export function startKey(target: InstanceTarget): string {
  return `collect-start:${target.db.id}/${target.instance}`;
}

/**
 * The pipeline position key of an instance's bookmark of an event skipped for size, not read (an
 * InstancePosition marked `skipped`), until an event is read.
 */
export function skippedKey(target: InstanceTarget): string {
  return `collect-skipped:${target.db.id}/${target.instance}`;
}

/** A record read and the position it ends at. */
type Entry = { record: Record<string, unknown>; item: DecodedItem; position?: InstancePosition };

type Source = {
  target: InstanceTarget;
  report: InstanceReport;
  entries: AsyncGenerator<Entry>;
  head?: Entry & { item: { type: 'event' } };
  /** A start is stored: the first bookmark removes it. */
  started: boolean;
  /**
   * A bookmark of an event skipped is stored: the first bookmark of an event read removes it, and
   * so does the end of a pass whose first read `--from` started instead (`dropSkipped`).
   */
  skipped: boolean;
  dropSkipped?: true;
  /** The start to keep at the end of the pass, unless a bookmark is committed before. */
  keep?: StartPosition;
};

/**
 * Where an instance is read from: its bookmark, else the start of a first read (`collect --from`,
 * else the start kept, else `collector.start`); and the start to keep until an event is committed,
 * when it is not the one kept already.
 */
type FirstRead = { position?: InstancePosition; from?: number; keep?: StartPosition; dropSkipped?: true };

function firstRead(target: InstanceTarget, opts: CollectorOptions, report: InstanceReport): FirstRead {
  const read = opts.pipeline.position<InstancePosition>(positionKey(target));
  const skipped = opts.pipeline.position<InstancePosition | null>(skippedKey(target)) ?? undefined;
  const start = opts.pipeline.position<StartPosition | null>(startKey(target)) ?? undefined;
  const storedStart = start && Date.parse(start.start);
  // A bookmark of events skipped, none read yet: a later `--from` other than the start of that
  // read still wins, as over a start kept.
  const fromWins = skipped !== undefined && !read && opts.from !== undefined && opts.from !== storedStart;
  const position = fromWins ? undefined : (skipped ?? read);
  const kept = position ? undefined : start;
  const stored = position ?? kept;
  if (stored) report.position = stored;
  if (position) return { position };
  const from = opts.from ?? storedStart ?? target.settings.start;
  if (from === undefined) return {};
  const first: FirstRead = from === storedStart ? { from } : { from, keep: { start: toIso(from) } };
  return fromWins ? { ...first, dropSkipped: true } : first;
}

/** Instances whose first read runs at once. */
const CONNECT_CONCURRENCY = 8;

export async function collect(opts: CollectorOptions): Promise<CollectResult> {
  const now = opts.now ?? Date.now;
  const stopping = () =>
    opts.signal?.aborted === true || (opts.deadline !== undefined && now() >= opts.deadline);
  const reports = opts.targets.map(
    (t): InstanceReport => ({
      dbSystem: t.db,
      instance: t.instance,
      address: `${t.endpoint.host}:${t.endpoint.port}`,
      records: 0,
      repeated: 0,
      gaps: 0,
      caughtUp: false,
      attempts: 0,
    }),
  );
  const batchSize = opts.batchSize ?? 5000;
  const alerts: Alert[] = [];
  let items: DecodedItem[] = [];
  let records: Record<string, unknown>[] = [];
  let positions: Record<string, StoredPosition | null> = {};
  let total = 0;

  const flush = async () => {
    if (items.length === 0 && Object.keys(positions).length === 0) return;
    if (opts.forward && records.length > 0) await opts.forward(records);
    alerts.push(...(await opts.pipeline.ingest(items, positions)));
    total += items.length;
    items = [];
    records = [];
    positions = {};
    opts.onBatch?.({ records: total, alerts: alerts.length });
  };
  const push = async (source: Source, entry: Entry) => {
    items.push(entry.item);
    records.push(entry.record);
    if (entry.position?.skipped) {
      // The start stays kept (for a release that does not know this key).
      positions[skippedKey(source.target)] = entry.position;
      source.skipped = true;
      delete source.dropSkipped;
      source.report.position = entry.position;
    } else if (entry.position) {
      positions[positionKey(source.target)] = entry.position;
      if (source.started) positions[startKey(source.target)] = null;
      if (source.skipped) positions[skippedKey(source.target)] = null;
      source.started = false;
      source.skipped = false;
      delete source.dropSkipped;
      delete source.keep;
      source.report.position = entry.position;
    }
    if (items.length >= batchSize) await flush();
  };
  /**
   * Moves a source to its next event (from `first`, a result already read, when given); dead
   * letters go straight into the batch.
   */
  const advance = async (s: Source, first?: IteratorResult<Entry>): Promise<void> => {
    delete s.head;
    for (let next = first; ; next = undefined) {
      if (stopping()) return;
      const r = next ?? (await s.entries.next());
      if (r.done) return;
      if (r.value.item.type === 'event') {
        s.head = r.value as NonNullable<Source['head']>;
        return;
      }
      await push(s, r.value);
    }
  };

  const sources: Source[] = opts.targets.map((target, i) => {
    const report = reports[i]!;
    const { keep, dropSkipped, ...first } = firstRead(target, opts, report);
    return {
      target,
      report,
      entries: instanceEntries(target, first, report, opts, stopping),
      started: !!opts.pipeline.position(startKey(target)),
      skipped: !!opts.pipeline.position(skippedKey(target)),
      ...(keep ? { keep } : {}),
      ...(dropSkipped ? { dropSkipped } : {}),
    };
  });
  try {
    // The first reads (connect, log in, position) of several instances at once: an instance that
    // is slow to answer or unreachable (its connect timeout, its retries) holds up the pass by its
    // own wait, not by the sum of them all. What they give goes into the batch in order.
    const firsts = await inGroups(sources, CONNECT_CONCURRENCY, (s) => s.entries.next());
    for (const [i, s] of sources.entries()) await advance(s, firsts[i]);
    const heap = new Heap<Source>((a, b) => compareEvents(a.head!.item.event, b.head!.item.event));
    heap.init(sources.filter((s) => s.head));
    for (let s = heap.pop(); s !== undefined; s = heap.pop()) {
      await push(s, s.head!);
      await advance(s);
      if (s.head) heap.push(s);
    }
    // No event committed (nothing at or after the start, a read that failed or was stopped): the
    // next pass starts there again, not at a bookmark of events skipped that `--from` overrode.
    for (const s of sources) {
      if (s.dropSkipped) positions[skippedKey(s.target)] = null;
      if (!s.keep) continue;
      positions[startKey(s.target)] = s.keep;
      s.report.position = s.keep;
    }
    await flush();
  } finally {
    // Ends the readers left early (deadline, signal, a failure): their sessions close.
    await Promise.all(sources.map((s) => s.entries.return(undefined)));
  }
  return {
    instances: reports,
    records: total,
    alerts,
    stopped: stopping() && reports.some((r) => !r.caughtUp && !r.error),
  };
}

/** One instance's records, decoded, with reconnects (from the last record handed out) within the pass. */
async function* instanceEntries(
  target: InstanceTarget,
  first: FirstRead,
  report: InstanceReport,
  opts: CollectorOptions,
  stopping: () => boolean,
): AsyncGenerator<Entry> {
  let { position } = first;
  const { from } = first;
  const retries = opts.retries ?? 2;
  const delay = opts.retryDelayMs ?? ((n: number) => 500 * 2 ** n);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const loc = { source: `collect:${target.db.name}/${target.instance}` };
  for (let attempt = 0; ; attempt++) {
    report.attempts++;
    let session: SqlSession | undefined;
    let reader: AuditLogReader | undefined;
    try {
      session = await opts.connect(target);
      reader = await AuditLogReader.open(session, target);
      const { version, flavor, readBufferSize, bufferNote } = reader.server;
      report.server = {
        version,
        flavor,
        ...(readBufferSize !== undefined ? { readBufferSize } : {}),
        ...(bufferNote !== undefined ? { bufferNote } : {}),
      };
      const start = position ? { position } : from !== undefined ? { from } : {};
      for await (const batch of reader.read(start, opts.signal)) {
        report.repeated += batch.repeated;
        for (const { record, position: p } of batch.records) {
          const [item] = decodeValue(record, loc);
          report.records++;
          if (record.source === 'audit-gap') report.gaps++;
          if (p) position = p;
          yield p ? { record, item: item!, position: p } : { record, item: item! };
        }
        if (stopping()) return;
      }
      report.caughtUp = true;
      delete report.error;
      break;
    } catch (error) {
      const failure = error instanceof InstanceError ? error : instanceError(target, error, 'while reading');
      report.error = failure.message;
      if (!failure.retryable || attempt >= retries || stopping()) break;
      await sleep(delay(attempt));
    } finally {
      await reader?.close();
      await session?.close();
    }
  }
}
