// OCI Streaming consumer-group source: one group cursor per instance,
// GetMessages in a paced loop, each batch decoded and ingested (one state-store transaction per
// partition), and only then ConsumerCommit. At-least-once by construction: whatever was not
// committed is read again after a crash, a cursor expiry or a rebalance, and the pipeline drops
// it as a duplicate (seen keys), so nothing is lost and no alert is raised twice.
//
// State follows the *partition*, not the instance: each partition has its own pipeline on the
// store scope `partitionScope(stream, group, partition)`. Partitions move between instances
// when one joins or dies; with a per-partition scope the new owner continues the same
// correlation state and dedupes exactly what the old owner processed but did not commit, and one
// instance or ten give the same alerts. Only the instance a partition is reserved to writes its
// scope: an idle sweep asks the group (GetGroup) which partitions are still this instance's.
//
// SDK notes: the SDK puts query values into the URL verbatim, and OCI cursors are base64 (`+`,
// `/`, `=`): cursors are URL-encoded here. SDK retries are off (shared/oci/clients.ts); this loop
// owns them (callWithRetries): 429 -> jittered backoff with its own large budget, 5xx and
// transport errors -> a few retries, a cursor refused with 400 (expired after 5 minutes, or
// invalid) -> a new group cursor, which resumes from the group's committed offsets.
import type { models, StreamClient } from 'oci-streaming';
import type { Alert } from '../../schemas/alert.js';
import { decodeBatch, type ReadOptions } from '../decode/read-input.js';
import { AuditError } from '../errors.js';
import { backoffDelayMs, classifyOciError, describeOciFailure, type RetryPolicy } from '../oci/clients.js';
import { addCountsSince, emptyStats, type Pipeline, type RecordCounts, recordCounts } from '../pipeline.js';
import type { ScopeLock } from '../state/state-store.js';

export type StreamApi = Pick<
  StreamClient,
  'createGroupCursor' | 'getMessages' | 'consumerCommit' | 'consumerHeartbeat' | 'getGroup'
>;

/**
 * A partition's pipeline, opened on its own store scope. `hold`, when given, takes the scope's
 * lock for one batch: instances that may process the partition in turn never commit at once.
 */
export type PartitionPipeline = { pipeline: Pipeline; close(): Promise<void>; hold?(): Promise<ScopeLock> };

export type StreamStart = 'TRIM_HORIZON' | 'LATEST' | { atTime: Date };

/**
 * Retry budgets of one call. 429s get their own, larger budget: a throttled read must slow
 * down, not fail. Delays are shared/oci/clients.ts `backoffDelayMs` (equal jitter, doubling).
 */
export type RetryBudget = {
  /** Delay cap of the first retry (ms); doubles per consecutive failure. */
  baseMs: number;
  maxMs: number;
  /** Consecutive 5xx / 409 IncorrectState / transport failures of one call before giving up. */
  maxServerErrors: number;
  /** Consecutive 429s of one call before giving up. */
  maxThrottled: number;
};

export const DEFAULT_RETRY_BUDGET: RetryBudget = {
  baseMs: 250,
  maxMs: 10_000,
  maxServerErrors: 5,
  maxThrottled: 50,
};

export type ConsumerStats = {
  batches: number;
  messages: number;
  /** Decoded records (events, ignored events and dead letters). */
  records: number;
  /** What the partition pipelines made of them (processed, duplicates, ignored, late, dead letters). */
  pipeline: RecordCounts;
  alerts: number;
  /** HTTP calls by operation, retries included. */
  calls: {
    createGroupCursor: number;
    getMessages: number;
    consumerCommit: number;
    consumerHeartbeat: number;
    getGroup: number;
  };
  emptyGets: number;
  throttled: number;
  serverErrors: number;
  cursorRecreations: number;
  /** Idle sweeps that advanced the partition pipelines' watermarks by the clock. */
  sweeps: number;
  /** Partition pipelines reopened because another instance had processed the partition meanwhile. */
  reloads: number;
  /** Partition pipelines closed because the partition was reserved to another instance. */
  released: number;
  /** Last offset ingested, per partition. */
  offsets: Record<string, number>;
};

export type ConsumerOptions = {
  client: StreamApi;
  streamId: string;
  group: string;
  instance: string;
  openPartition(scope: string): Promise<PartitionPipeline>;
  /** Where a group with no committed offsets starts. Default TRIM_HORIZON. */
  start?: StreamStart;
  /** Messages per GetMessages (<= 10000). Default 5000: 4 calls/s x 5000 stays above what the pipeline processes. */
  limit?: number;
  /** Reservation timeout sent with the group cursor (OCI: the instance's partitions move after it). Default 30 s. */
  timeoutMs?: number;
  /** Heartbeat while a batch is processed longer than this. Default timeoutMs / 3. */
  heartbeatMs?: number;
  /**
   * Least time between two GetMessages. The service allows 5 per second per group and partition;
   * the default 250 ms (4 per second) leaves a margin for jitter in when the service counts them.
   */
  minGetIntervalMs?: number;
  /** Wait after an empty GetMessages. Default 1000 ms (capped at a third of timeoutMs). */
  idleWaitMs?: number;
  retry?: Partial<RetryBudget>;
  /** Consecutive cursor re-creations without progress before giving up. Default 5. */
  maxCursorRecreations?: number;
  decode?: ReadOptions;
  /** Stop (after committing the in-flight batch) when aborted. */
  signal?: AbortSignal;
  /** Stop after this many consecutive empty GetMessages (drain mode). Default: never. */
  stopAfterEmptyGets?: number;
  /** Stop after this many batches. Default: never. */
  maxBatches?: number;
  /**
   * While the stream is idle (an empty GetMessages), advance the watermark of every partition
   * pipeline the group still reserves to this instance to the clock minus `latenessMs`, at most
   * once per `everyMs` (default 60 s), so timers such as a break-glass membership's maximum
   * duration fire on quiet nights too.
   */
  idleSweep?: { latenessMs: number; everyMs?: number };
  /** The clock for idle sweeps. Default Date.now. */
  now?(): number;
  onBatch?(stats: Readonly<ConsumerStats>, alerts: readonly Alert[]): void;
  /** Test hook: runs after a batch is ingested and before its cursor is committed. */
  afterIngest?(info: { batch: number; messages: number }): Promise<void> | void;
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
  random?(): number;
};

/** The store scope of one partition's state. */
export function partitionScope(streamId: string, group: string, partition: string | number): string {
  return `consumer:${group}:${streamId}:${partition}`;
}

/** Sleeps, resolving early when the signal aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A cursor the service refused (expired or invalid): the caller creates a new one. */
export class CursorRefused extends Error {
  constructor(readonly operation: string) {
    super(`${operation}: the service refused the cursor`);
    this.name = 'CursorRefused';
  }
}

export type RetryCounters = { throttled: number; serverErrors: number };

/**
 * Runs one OCI call: what shared/oci/clients.ts classifies as retryable is retried, 429s up to
 * `maxThrottled` times in a row and the rest (5xx, 409 IncorrectState, transport errors) up to
 * `maxServerErrors`, with `backoffDelayMs` delays that a stop request cuts short. With
 * `cursorOperation`, a 400 becomes CursorRefused (the caller creates a new cursor). Anything else
 * is OCI_REQUEST_FAILED with log-safe details (operation, status, service code).
 */
export async function callWithRetries<T>(
  operation: string,
  fn: () => Promise<T>,
  opts: {
    retry: RetryBudget;
    counters: RetryCounters;
    onAttempt?: () => void;
    cursorOperation?: boolean;
    signal?: AbortSignal | undefined;
    sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
    random?: () => number;
  },
): Promise<T> {
  const sleep = opts.sleep ?? abortableSleep;
  const delays: RetryPolicy = {
    maxAttempts: Number.POSITIVE_INFINITY,
    baseDelayMs: opts.retry.baseMs,
    maxDelayMs: opts.retry.maxMs,
    ...(opts.random ? { random: opts.random } : {}),
  };
  let throttled = 0;
  let serverErrors = 0;
  for (;;) {
    opts.onAttempt?.();
    try {
      return await fn();
    } catch (error) {
      const f = classifyOciError(error);
      const fail = (why: string) =>
        new AuditError('OCI_REQUEST_FAILED', `${operation} failed: ${why}`, {
          details: { operation, status: f.status, serviceCode: f.code },
          cause: error,
        });
      let retry: number;
      if (f.status === 429) {
        opts.counters.throttled++;
        if (++throttled > opts.retry.maxThrottled) throw fail(`throttled ${throttled} times in a row`);
        retry = throttled - 1;
      } else if (f.retryable) {
        opts.counters.serverErrors++;
        if (++serverErrors > opts.retry.maxServerErrors) {
          throw fail(f.status === null ? describeOciFailure(f) : `HTTP ${f.status} after retries`);
        }
        retry = serverErrors - 1;
      } else if (f.status === 400 && opts.cursorOperation) {
        throw new CursorRefused(operation);
      } else {
        throw fail(`HTTP ${f.status}${f.code ? ` ${f.code}` : ''}`);
      }
      if (opts.signal?.aborted) throw fail('stopped while retrying');
      await sleep(backoffDelayMs(delays, retry), opts.signal);
    }
  }
}

type Message = models.Message | (Omit<models.Message, 'timestamp'> & { timestamp: string | Date });

type PartitionState = { handle: PartitionPipeline; lastOffset: number | undefined };

export class StreamConsumer {
  readonly stats: ConsumerStats = {
    batches: 0,
    messages: 0,
    records: 0,
    pipeline: recordCounts(emptyStats()),
    alerts: 0,
    calls: { createGroupCursor: 0, getMessages: 0, consumerCommit: 0, consumerHeartbeat: 0, getGroup: 0 },
    emptyGets: 0,
    throttled: 0,
    serverErrors: 0,
    cursorRecreations: 0,
    sweeps: 0,
    reloads: 0,
    released: 0,
    offsets: {},
  };
  private readonly retry: RetryBudget;
  private readonly partitions = new Map<string, PartitionState>();
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly limit: number;
  private readonly timeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly minGetIntervalMs: number;
  private readonly idleWaitMs: number;
  private lastGetAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: ConsumerOptions) {
    this.retry = { ...DEFAULT_RETRY_BUDGET, ...opts.retry };
    this.sleep = opts.sleep ?? abortableSleep;
    this.limit = opts.limit ?? 5000;
    if (!Number.isInteger(this.limit) || this.limit < 1 || this.limit > 10_000) {
      throw new AuditError('USAGE', 'the GetMessages limit must be an integer from 1 to 10000');
    }
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.heartbeatMs = opts.heartbeatMs ?? Math.floor(this.timeoutMs / 3);
    this.minGetIntervalMs = opts.minGetIntervalMs ?? 250;
    this.idleWaitMs = Math.min(opts.idleWaitMs ?? 1000, Math.floor(this.timeoutMs / 3));
  }

  /** Consumes until aborted, drained (stopAfterEmptyGets) or maxBatches; closes the partition pipelines. */
  async run(): Promise<ConsumerStats> {
    const { signal } = this.opts;
    const maxRecreations = this.opts.maxCursorRecreations ?? 5;
    let recreations = 0;
    let emptyInARow = 0;
    // A stop request during a backoff ends the retries (callWithRetries throws); with no batch in
    // flight that is a clean stop, not a failure.
    const stopped = () => signal?.aborted === true;
    /** A new group cursor, or undefined when a stop request ended the attempt. */
    const openCursor = async (): Promise<string | undefined> => {
      try {
        return await this.createCursor();
      } catch (error) {
        if (stopped()) return undefined;
        throw error;
      }
    };
    const reopenCursor = (): Promise<string | undefined> => {
      if (++recreations > maxRecreations) throw this.cursorFailure(recreations);
      this.stats.cursorRecreations++;
      return openCursor();
    };
    try {
      let cursor = await openCursor();
      if (cursor === undefined) return this.stats;
      while (!signal?.aborted) {
        if (this.opts.maxBatches !== undefined && this.stats.batches >= this.opts.maxBatches) break;
        await this.sleep(this.lastGetAt + this.minGetIntervalMs - Date.now(), signal);
        if (signal?.aborted) break;
        let page: { items: Message[]; next: string };
        try {
          page = await this.getMessages(cursor);
        } catch (error) {
          if (!(error instanceof CursorRefused)) {
            if (stopped()) break;
            throw error;
          }
          cursor = await reopenCursor();
          if (cursor === undefined) break;
          continue;
        }
        if (page.items.length === 0) {
          cursor = page.next;
          this.stats.emptyGets++;
          emptyInARow++;
          await this.sweepIdle();
          if (this.opts.stopAfterEmptyGets !== undefined && emptyInARow >= this.opts.stopAfterEmptyGets)
            break;
          await this.sleep(this.idleWaitMs, signal);
          continue;
        }
        emptyInARow = 0;
        // From here the batch is finished even when a stop is requested: ingest, then commit.
        const committed = await this.processBatch(page.items, page.next);
        if (committed === undefined) {
          cursor = await reopenCursor();
          if (cursor === undefined) break;
        } else {
          recreations = 0;
          cursor = committed;
        }
      }
      return this.stats;
    } finally {
      await this.closePartitions();
    }
  }

  private cursorFailure(times: number): AuditError {
    return new AuditError('OCI_REQUEST_FAILED', 'the stream keeps refusing new group cursors', {
      details: { operation: 'getMessages', recreations: times, stream: this.opts.streamId },
    });
  }

  private call<T>(
    operation: keyof ConsumerStats['calls'],
    fn: () => Promise<T>,
    cursorOperation: boolean,
    keepTrying = false,
  ): Promise<T> {
    const opts: Parameters<typeof callWithRetries>[2] = {
      retry: this.retry,
      counters: this.stats,
      onAttempt: () => {
        this.stats.calls[operation]++;
      },
      cursorOperation,
      sleep: this.sleep,
    };
    // The commit of an ingested batch is not abandoned on a stop request: it is what loses nothing.
    if (!keepTrying) opts.signal = this.opts.signal;
    if (this.opts.random) opts.random = this.opts.random;
    return callWithRetries(operation, fn, opts);
  }

  private async createCursor(): Promise<string> {
    const start = this.opts.start ?? 'TRIM_HORIZON';
    const details: models.CreateGroupCursorDetails = {
      groupName: this.opts.group,
      instanceName: this.opts.instance,
      type: (typeof start === 'string' ? start : 'AT_TIME') as models.CreateGroupCursorDetails.Type,
      timeoutInMs: this.timeoutMs,
      commitOnGet: false,
    };
    if (typeof start !== 'string') details.time = start.atTime;
    const res = await this.call(
      'createGroupCursor',
      () =>
        this.opts.client.createGroupCursor({
          streamId: this.opts.streamId,
          createGroupCursorDetails: details,
        }),
      false,
    );
    return res.cursor.value;
  }

  private async getMessages(cursor: string): Promise<{ items: Message[]; next: string }> {
    const res = await this.call(
      'getMessages',
      () => {
        this.lastGetAt = Date.now();
        return this.opts.client.getMessages({
          streamId: this.opts.streamId,
          cursor: encodeURIComponent(cursor),
          limit: this.limit,
        });
      },
      true,
    );
    const items = res.items ?? [];
    if (!res.opcNextCursor) {
      // Without a next cursor a batch could be neither committed nor read past.
      if (items.length > 0) {
        throw new AuditError('OCI_REQUEST_FAILED', 'getMessages answered without opc-next-cursor', {
          details: { operation: 'getMessages', stream: this.opts.streamId },
        });
      }
      return { items, next: cursor };
    }
    return { items, next: res.opcNextCursor };
  }

  /** Ingests a batch per partition, then commits; returns the next cursor, or undefined when it was refused. */
  private async processBatch(items: Message[], next: string): Promise<string | undefined> {
    let cursor = next;
    let lastBeat = Date.now();
    let beating: Promise<void> | undefined;
    // Keep the reservation while a long batch is processed.
    const timer = setInterval(
      () => {
        if (beating !== undefined || Date.now() - lastBeat < this.heartbeatMs) return;
        beating = this.call(
          'consumerHeartbeat',
          () =>
            this.opts.client.consumerHeartbeat({
              streamId: this.opts.streamId,
              cursor: encodeURIComponent(cursor),
            }),
          true,
        )
          .then(
            (res) => {
              cursor = res.cursor.value;
            },
            () => undefined, // a refused heartbeat shows again at the commit, which handles it
          )
          .finally(() => {
            lastBeat = Date.now();
            beating = undefined;
          });
      },
      Math.max(10, Math.floor(this.heartbeatMs / 2)),
    );
    const alerts: Alert[] = [];
    // Read, whatever becomes of the batch: a run that fails counts them too.
    this.stats.messages += items.length;
    try {
      for (const [partition, messages] of groupByPartition(items)) {
        const state = await this.partitionFor(partition, Number(messages[0]!.offset));
        const decoded = await decodeBatch(
          JSON.stringify(messages),
          `stream ${this.opts.streamId} partition ${partition}`,
          this.opts.decode,
        );
        this.stats.records += decoded.length;
        alerts.push(...(await this.step(state.handle, (pipeline) => pipeline.ingest(decoded))));
        state.lastOffset = Number(messages[messages.length - 1]!.offset);
        this.stats.offsets[partition] = state.lastOffset;
      }
      await this.opts.afterIngest?.({ batch: this.stats.batches + 1, messages: items.length });
    } finally {
      clearInterval(timer);
      await beating;
    }
    this.stats.batches++;
    let committed: string | undefined;
    try {
      const res = await this.call(
        'consumerCommit',
        () =>
          this.opts.client.consumerCommit({
            streamId: this.opts.streamId,
            cursor: encodeURIComponent(cursor),
          }),
        true,
        true,
      );
      committed = res.cursor.value;
    } catch (error) {
      // The state is committed; the refused range is read again and deduped.
      if (!(error instanceof CursorRefused)) throw error;
    }
    this.opts.onBatch?.(this.stats, alerts);
    return committed;
  }

  private lastSweepAt = Number.NEGATIVE_INFINITY;

  /**
   * Advances the watermark of the partitions this instance holds while the stream is idle. An
   * empty GetMessages does not say which partitions are still reserved to the instance, and a
   * sweep commits, so the group is asked: a partition reserved to another instance is closed (a
   * later batch of it reopens it from the store), and one another instance committed past what
   * this one ingested is reopened from the store before it is swept.
   */
  private async sweepIdle(): Promise<void> {
    const sweep = this.opts.idleSweep;
    if (!sweep) return;
    const now = (this.opts.now ?? Date.now)();
    if (now - this.lastSweepAt < (sweep.everyMs ?? 60_000)) return;
    this.lastSweepAt = now;
    if (this.partitions.size === 0) return;
    const reservations = await this.reservations();
    if (reservations === undefined) return;
    for (const [partition, held] of [...this.partitions]) {
      const reservation = reservations.get(partition);
      if (reservation?.reservedInstance !== this.opts.instance) {
        this.stats.released++;
        await this.close(partition);
        continue;
      }
      const committed = reservation.committedOffset;
      let state = held;
      if (committed !== undefined && (held.lastOffset ?? -1) < committed) {
        this.stats.reloads++;
        state = await this.reopen(partition, committed);
      }
      const alerts = await this.step(state.handle, (pipeline) => pipeline.advance(now - sweep.latenessMs));
      if (alerts.length > 0) this.opts.onBatch?.(this.stats, alerts);
    }
    this.stats.sweeps++;
  }

  /**
   * One step of a partition's pipeline under the scope's lock, its record counts and alerts added to
   * the stats, also when it fails (an output that fails their delivery: they were stored, and sent
   * to the outputs that work). An output that failed when the pipeline opened fails the step once
   * it was processed (`Pipeline.settle`): the consumer runs without end, and would report it never.
   */
  private async step(
    handle: PartitionPipeline,
    run: (pipeline: Pipeline) => Promise<Alert[]>,
  ): Promise<Alert[]> {
    const lock = await handle.hold?.();
    const { stats } = handle.pipeline;
    const before = recordCounts(stats);
    const alertsBefore = stats.alerts;
    try {
      const alerts = await run(handle.pipeline);
      await handle.pipeline.settle();
      return alerts;
    } finally {
      addCountsSince(this.stats.pipeline, before, stats);
      this.stats.alerts += stats.alerts - alertsBefore;
      await lock?.release();
    }
  }

  /** The group's partition reservations by partition, or undefined when a stop request ended the call. */
  private async reservations(): Promise<Map<string, models.PartitionReservation> | undefined> {
    try {
      const res = await this.call(
        'getGroup',
        () => this.opts.client.getGroup({ streamId: this.opts.streamId, groupName: this.opts.group }),
        false,
      );
      return new Map((res.group.reservations ?? []).map((r) => [String(r.partition), r]));
    } catch (error) {
      if (this.opts.signal?.aborted) return undefined;
      throw error;
    }
  }

  /**
   * The pipeline of a partition. A batch that starts past the offset after the last one this
   * instance ingested means another instance processed the partition meanwhile (a rebalance):
   * its in-memory state is stale, so the pipeline is reopened from the store.
   */
  private async partitionFor(partition: string, firstOffset: number): Promise<PartitionState> {
    const existing = this.partitions.get(partition);
    if (existing && (existing.lastOffset === undefined || firstOffset <= existing.lastOffset + 1))
      return existing;
    if (existing) this.stats.reloads++;
    return this.reopen(partition, undefined);
  }

  /** Opens a partition's pipeline from the store, closing the one held before. */
  private async reopen(partition: string, lastOffset: number | undefined): Promise<PartitionState> {
    await this.close(partition);
    const state: PartitionState = {
      handle: await this.opts.openPartition(partitionScope(this.opts.streamId, this.opts.group, partition)),
      lastOffset,
    };
    this.partitions.set(partition, state);
    return state;
  }

  private async close(partition: string): Promise<void> {
    const held = this.partitions.get(partition);
    if (!held) return;
    this.partitions.delete(partition);
    await held.handle.close();
  }

  private async closePartitions(): Promise<void> {
    const all = [...this.partitions.values()];
    this.partitions.clear();
    for (const p of all) await p.handle.close();
  }
}

function groupByPartition(items: Message[]): Map<string, Message[]> {
  const out = new Map<string, Message[]>();
  for (const m of items) {
    const p = String(m.partition);
    const list = out.get(p);
    if (list) list.push(m);
    else out.set(p, [m]);
  }
  return out;
}
