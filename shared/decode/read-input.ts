// One input (a file, or a function payload in memory) -> canonical events and dead letters (and,
// of OCI Audit events that concern nothing, their times): gunzip if needed, split into records,
// classify, normalize.
import { closeSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { TextDecoder } from 'node:util';
import { createGunzip } from 'node:zlib';
import type { DeadLetter, Outcome, RecordLocation } from '../../schemas/dead-letter.js';
import { type CanonicalEvent, compareEvents, type IamEvent } from '../../schemas/events.js';
import { AuditError, errnoSuffix } from '../errors.js';
import { normalizeGap } from '../normalize/gap.js';
import { normalizeMysqlAudit } from '../normalize/mysql-audit.js';
import { concernsNothing, normalizeOciAudit } from '../normalize/oci-audit.js';
import { type ClassifiedItem, type ClassifiedSink, classifyRecord, type DbRef } from './classify.js';
import { ClockSteps, clockStepRecord } from './clock-steps.js';
import { deadLetter, splitRecordBatches } from './split-records.js';

/**
 * What decoding yields for each record: a canonical event, a dead letter, or an OCI Audit event
 * that concerns nothing the pipeline reads (`concernsNothing`: another service's, most of an
 * unfiltered `_Audit`), of which only its time is kept (it moves the watermark) and, from
 * Connector Hub, its `ingestedTime` (the delivery mark). `count` > 1: that many such records, the
 * latest of them at `ts` (a host that folds them, shared/sources/backfill.ts). `routine` marks a
 * MySQL routine statement (`isRoutineStatement`: its only effect is on its session's counters,
 * tables and statement list), which a replay may take together with its connection's others
 * (shared/decode/statement-runs.ts).
 */
export type DecodedItem =
  | { type: 'event'; event: CanonicalEvent; routine?: true }
  | { type: 'dead'; dead: DeadLetter }
  | IgnoredItem;

export type IgnoredItem = {
  type: 'ignored';
  ts: number;
  count?: number;
  ingestedTime?: string;
  /** The tenancy it names: the function's delivery-gap command reads it (shared/sources/delivery-gap.ts). */
  tenantId?: string;
};

/** An item with a time: an event, or an ignored event. */
export type TimedItem = Exclude<DecodedItem, { type: 'dead' }>;

/** Event-time order of timed items: `compareEvents`, and an ignored event after the events of its time. */
export function compareTimed(a: TimedItem, b: TimedItem): number {
  if (a.type === 'event' && b.type === 'event') return compareEvents(a.event, b.event);
  const at = a.type === 'event' ? a.event.ts : a.ts;
  const bt = b.type === 'event' ? b.event.ts : b.ts;
  return at - bt || (a.type === b.type ? 0 : a.type === 'ignored' ? 1 : -1);
}

export type ReadOptions = {
  /** DB system of raw MySQL records that do not name one (collector records do); by input path. */
  resolveDbSystem?: (path: string) => DbRef | undefined;
  maxRecordBytes?: number;
  /**
   * With it, an input's raw MySQL records (one log, read in its order) are watched for a clock
   * that stepped back this far: a `clock-step` gap comes before the first event after the step
   * (shared/decode/clock-steps.ts). The pipeline's `lateness`.
   */
  lateness?: number;
  /** Decode OCI Audit events that concern nothing as events (`normalize` shows them), not `ignored`. */
  keepIrrelevant?: boolean;
};

/**
 * Per-input accounting. `records`: top-level values read (including unreadable ones); `items`:
 * records after envelope expansion. Every item is an event, an ignored event or a dead letter:
 * items = events + ignored + dead.
 */
export type InputCounts = { records: number; items: number; events: number; ignored: number; dead: number };

export function emptyCounts(): InputCounts {
  return { records: 0, items: 0, events: 0, ignored: 0, dead: 0 };
}

export type InputReader = AsyncIterable<DecodedItem> & {
  readonly counts: InputCounts;
  /** The same items, one array per chunk of the file (fewer awaits for bulk readers). */
  batches(): AsyncIterable<DecodedItem[]>;
};

// A replay holds one decoded chunk of every input while it merges them: 64 KB chunks (about 120
// records) keep that small, so events die young; 256 KB cost about 100 MB more peak memory and
// more garbage-collection time on the bench's 72 inputs.
const READ_CHUNK_BYTES = 64 * 1024;

/**
 * Streams one file (gzip detected by its magic bytes, whatever the extension). Throws
 * AuditError INPUT_UNREADABLE when the file cannot be opened or read; bad content is dead letters.
 */
export function readInput(path: string, opts: ReadOptions = {}): InputReader {
  const counts = emptyCounts();
  return {
    counts,
    batches: () => readFile(path, opts, counts),
    async *[Symbol.asyncIterator]() {
      for await (const items of readFile(path, opts, counts)) yield* items;
    },
  };
}

/** Decodes a payload held in memory (a Connector Hub batch, a JSON array or object). */
export async function decodeBatch(
  body: string | Buffer,
  source: string,
  opts: ReadOptions = {},
): Promise<DecodedItem[]> {
  const counts = emptyCounts();
  const items: DecodedItem[] = [];
  for await (const batch of decodeChunks(single(body), source, opts, counts)) items.push(...batch);
  return items;
}

async function* single(body: string | Buffer): AsyncGenerator<string | Buffer> {
  yield body;
}

async function* readFile(
  path: string,
  opts: ReadOptions,
  counts: InputCounts,
): AsyncGenerator<DecodedItem[]> {
  const broken: Broken = {};
  yield* decodeChunks(asUtf8(fileChunks(path, broken), broken), path, opts, counts);
  if (broken.reason !== undefined) {
    yield [
      tally(counts, { type: 'dead', dead: deadLetter('ENCODING_INVALID', { source: path }, broken.reason) }),
    ];
  }
}

async function* decodeChunks(
  chunks: AsyncIterable<string | Buffer>,
  source: string,
  opts: ReadOptions,
  counts: InputCounts,
): AsyncGenerator<DecodedItem[]> {
  const split = opts.maxRecordBytes === undefined ? {} : { maxRecordBytes: opts.maxRecordBytes };
  const decoder = new Decoder(source, opts, counts);
  for await (const records of splitRecordBatches(chunks, source, split)) {
    const items: DecodedItem[] = [];
    decoder.items = items;
    for (const record of records) {
      counts.records++;
      if (!record.ok) {
        items.push(tally(counts, { type: 'dead', dead: record.dead }));
        continue;
      }
      const loc =
        record.index === undefined
          ? { source, line: record.line }
          : { source, line: record.line, index: record.index };
      classifyRecord(record.value, loc, decoder);
    }
    // The splitting generator holds the array it yielded until it is asked for the next one, that
    // is until this chunk's events have all been taken: emptying it lets the parsed records go now
    // (a replay interleaving many inputs kept thousands of them alive, each copied by the GC).
    records.length = 0;
    yield items;
  }
}

/** Decodes one parsed value: a record, or an envelope of records (each expanded item is one result). */
export function decodeValue(value: unknown, loc: RecordLocation, opts: ReadOptions = {}): DecodedItem[] {
  const decoder = new Decoder(loc.source, opts);
  classifyRecord(value, loc, decoder);
  return decoder.items;
}

/**
 * Normalizes each item classification finds onto the end of `items`, counted in `counts` when given:
 * a record's items need no array of their own.
 */
class Decoder implements ClassifiedSink {
  items: DecodedItem[] = [];
  /** The log of the input's raw MySQL records (collector records carry their own clock steps). */
  private readonly clock: ClockSteps | undefined;

  constructor(
    private readonly source: string,
    private readonly opts: ReadOptions,
    private readonly counts?: InputCounts,
  ) {
    if (opts.lateness !== undefined) this.clock = new ClockSteps(opts.lateness);
  }

  push(classified: ClassifiedItem): void {
    const item = normalize(classified, this.source, this.opts);
    const ev = item.type === 'event' ? item.event : undefined;
    if (
      this.clock !== undefined &&
      ev?.source === 'mysql' &&
      classified.kind === 'mysql-audit' &&
      !classified.db
    ) {
      const from = this.clock.step(ev.ts);
      if (from !== undefined)
        this.add({ type: 'event', event: normalizeGap(clockStepRecord(ev, from, ev.ts)) });
    }
    this.add(item);
  }

  private add(item: DecodedItem): void {
    this.items.push(this.counts === undefined ? item : tally(this.counts, item));
  }
}

function normalize(item: ClassifiedItem, source: string, opts: ReadOptions): DecodedItem {
  if (item.kind === 'dead') return { type: 'dead', dead: item.dead };
  if (item.kind === 'oci-audit') {
    const outcome = normalizeOciAudit(item.raw, item.loc);
    return outcome.ok && !opts.keepIrrelevant && concernsNothing(outcome.value)
      ? ignoredItem(outcome.value)
      : fromOutcome(outcome);
  }
  if (item.kind === 'gap') return { type: 'event', event: normalizeGap(item.record) };
  const db = item.db ?? opts.resolveDbSystem?.(source);
  if (db === undefined) {
    return {
      type: 'dead',
      dead: deadLetter(
        'NO_DB_SYSTEM',
        item.loc,
        'raw MySQL audit record and no DB system known for its input: name it (replay --db-system ID; HWAUDIT_DB_SYSTEM for the function), or name the file or its folder after a configured DB system',
      ),
    };
  }
  const outcome = normalizeMysqlAudit(item.raw, db, item.loc);
  return outcome.ok && outcome.routine
    ? { type: 'event', event: outcome.value, routine: true }
    : fromOutcome(outcome);
}

function ignoredItem({ ts, ingestedTime, tenantId }: IamEvent): IgnoredItem {
  const item: IgnoredItem = { type: 'ignored', ts };
  if (ingestedTime !== undefined) item.ingestedTime = ingestedTime;
  if (tenantId !== undefined) item.tenantId = tenantId;
  return item;
}

function fromOutcome(outcome: Outcome<CanonicalEvent>): DecodedItem {
  return outcome.ok ? { type: 'event', event: outcome.value } : { type: 'dead', dead: outcome.dead };
}

function tally(counts: InputCounts, item: DecodedItem): DecodedItem {
  counts.items++;
  if (item.type === 'event') counts.events++;
  else if (item.type === 'ignored') counts.ignored++;
  else counts.dead++;
  return item;
}

/** Why an input's bytes stopped being readable (reported as one dead letter after its records). */
type Broken = { reason?: string };

/**
 * The text of an input: bytes that start with a UTF-16 byte order mark (what Windows PowerShell 5
 * writes for `oci ... > file`) are decoded from UTF-16, other bytes pass as they are (UTF-8).
 * UTF-16 that is not valid ends the input there, as a corrupt gzip does.
 */
async function* asUtf8(chunks: AsyncIterable<Buffer>, broken: Broken): AsyncGenerator<Buffer | string> {
  let decoder: TextDecoder | undefined;
  let first = true;
  try {
    for await (const chunk of chunks) {
      if (first) {
        first = false;
        const order =
          chunk[0] === 0xff && chunk[1] === 0xfe ? 'le' : chunk[0] === 0xfe && chunk[1] === 0xff ? 'be' : '';
        if (order !== '') decoder = new TextDecoder(`utf-16${order}`, { fatal: true });
      }
      yield decoder === undefined ? chunk : decoder.decode(chunk, { stream: true });
    }
    const rest = decoder?.decode() ?? '';
    if (rest !== '') yield rest;
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'ERR_ENCODING_INVALID_ENCODED_DATA') throw error;
    broken.reason ??= 'UTF-16 text is not valid: the input is not read past this point';
  }
}

/** The input path that names standard input. */
export const STDIN = '-';

/** The file's bytes (or standard input's), gunzipped when gzip; a corrupt gzip says so in `broken`. */
async function* fileChunks(path: string, broken: Broken): AsyncGenerator<Buffer> {
  if (path === STDIN) {
    yield* gunzipIfGzip(process.stdin as AsyncIterable<Buffer>, STDIN, broken);
    return;
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw unreadable(path, cause);
  }
  try {
    yield* gunzipIfGzip(readChunks(fd, path), path, broken);
  } finally {
    closeSync(fd);
  }
}

/**
 * A file's bytes, read synchronously: a read from the page cache takes microseconds, less than the
 * promise and thread-pool round trip of an asynchronous one (reading a 221 MB fleet: 60 ms against
 * 330 ms through a read stream). Reads from the current position, so pipes work too. Every chunk is
 * read into the same buffer, so a chunk is valid until the next is asked for: a new buffer per
 * chunk put 659 MB of short-lived memory outside the heap in a replay at scale 3, which peaked
 * about 50 MB higher for it.
 */
function* readChunks(fd: number, path: string): Generator<Buffer> {
  const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  for (;;) {
    let bytesRead: number;
    try {
      bytesRead = readSync(fd, buffer, 0, READ_CHUNK_BYTES, null);
    } catch (cause) {
      throw unreadable(path, cause);
    }
    if (bytesRead === 0) return;
    yield buffer.subarray(0, bytesRead);
  }
}

/** The bytes as they are, or gunzipped when they start with the gzip magic bytes (whatever the name). */
async function* gunzipIfGzip(
  raw: AsyncIterable<Buffer> | Iterable<Buffer>,
  path: string,
  broken: Broken,
): AsyncGenerator<Buffer> {
  const it = Symbol.asyncIterator in raw ? raw[Symbol.asyncIterator]() : raw[Symbol.iterator]();
  const first = await it.next();
  if (first.done) return;
  const head: Buffer = first.value;
  async function* all(copy: boolean): AsyncGenerator<Buffer> {
    yield copy ? Buffer.from(head) : head;
    for (let r = await it.next(); !r.done; r = await it.next()) yield copy ? Buffer.from(r.value) : r.value;
  }
  if (!(head[0] === 0x1f && head[1] === 0x8b)) {
    yield* all(false);
    return;
  }
  // A stream reads ahead of the inflater: it gets copies of the chunks (readChunks reuses its buffer).
  const source = Readable.from(all(true));
  const gunzip = createGunzip();
  source.on('error', (cause) => gunzip.destroy(cause));
  try {
    for await (const chunk of source.pipe(gunzip)) yield chunk as Buffer;
  } catch (cause) {
    if (cause instanceof AuditError) throw cause;
    if (!isZlibError(cause)) throw unreadable(path, cause);
    broken.reason ??= 'gzip data is corrupt or truncated';
  } finally {
    source.destroy();
  }
}

function isZlibError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

function unreadable(path: string, cause: unknown): AuditError {
  return new AuditError('INPUT_UNREADABLE', `cannot read input${errnoSuffix(cause)}`, {
    details: { path },
    cause,
  });
}
