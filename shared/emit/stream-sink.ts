// Alerts (and, with StreamWriter, any records such as the collector's) to an OCI stream
// (PutMessages): one message per alert, key = DB system id so one DB system's alerts stay in
// order on one partition, value = the formatted alert (JSON, OCSF, ECS).
// Limits: 1 MB per message and per request, so batches are split by bytes.
// A 200 answer can carry failed entries: exactly those are sent again, before any later request
// (the service keeps the entries it accepted, so only an entry of the same request after a failed
// one can land before it). 429/5xx/transport errors resend the whole request and the rest.
// Everything is bounded by the retry policy; what still fails makes `send` throw SINK_FAILED, the
// pipeline does not mark the batch delivered and re-sends it later (consumers dedupe on the
// deterministic alert id: delivery is at least once).
import type { StreamClient } from 'oci-streaming';
import type { Alert } from '../../schemas/alert.js';
import { AuditError } from '../errors.js';
import {
  backoffDelayMs,
  classifyOciError,
  DEFAULT_RETRY,
  describeOciFailure,
  type OciFailure,
  type RetryPolicy,
  sleepMs,
} from '../oci/clients.js';
import type { AlertSink } from './sink.js';

/** 1 MB; kept a little under 1 MiB for the JSON envelope. */
export const STREAM_MAX_MESSAGE_BYTES = 1_000_000;
export const STREAM_MAX_REQUEST_BYTES = 1_000_000;
/** Entries per request; the service has no lower documented cap, this keeps requests modest. */
export const STREAM_MAX_REQUEST_ENTRIES = 500;

export type StreamPutter = Pick<StreamClient, 'putMessages'>;

export interface StreamSinkOptions {
  client: StreamPutter;
  streamId: string;
  name?: string;
  /** Alert -> message value text (default JSON). E.g. `(a) => formatAlert('ocsf', a)`. */
  format?: (alert: Alert) => string;
  /** Told where each alert was stored (for links to it). */
  located?: (alert: Alert, at: StreamPosition) => void;
  retry?: RetryPolicy;
  maxMessageBytes?: number;
  maxRequestBytes?: number;
  maxRequestEntries?: number;
}

interface Entry {
  /** Position in the messages `put` was given. */
  index: number;
  key: string | undefined;
  value: string;
  /** Bytes this entry adds to the request JSON. */
  bytes: number;
}

export interface StreamSinkStats {
  requests: number;
  messagesSent: number;
  /** Entries sent again after a failure inside a 200 answer. */
  entriesRetried: number;
  /** Whole requests that failed (429, 5xx, transport). */
  requestErrors: number;
  /** Alerts shrunk to fit the per-message limit. */
  truncated: number;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
/** `{"messages":[...]}` around the entries. */
const ENVELOPE_BYTES = '{"messages":[]}'.length;

/** A message to put: key (partitioning) and value as text; `id` names it in errors. */
export type StreamMessage = { key?: string; value: string };

/** Where the stream stored a message. */
export type StreamPosition = { partition: string; offset: number };

/**
 * PutMessages with the service's limits and the retry policy: messages are grouped into
 * requests under the byte and entry limits, in order; failed entries of a 200 answer are sent
 * again, a throttled or failing request is resent after a pause, each before the requests after
 * it. What still fails throws SINK_FAILED naming `what` was not delivered.
 */
export class StreamWriter {
  readonly stats: StreamSinkStats = {
    requests: 0,
    messagesSent: 0,
    entriesRetried: 0,
    requestErrors: 0,
    truncated: 0,
  };
  readonly maxMessageBytes: number;
  private readonly maxRequestBytes: number;
  private readonly maxRequestEntries: number;
  private readonly retry: RetryPolicy;

  constructor(
    private readonly client: StreamPutter,
    private readonly streamId: string,
    readonly name: string,
    opts: Pick<StreamSinkOptions, 'retry' | 'maxMessageBytes' | 'maxRequestBytes' | 'maxRequestEntries'> = {},
  ) {
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.maxMessageBytes = opts.maxMessageBytes ?? STREAM_MAX_MESSAGE_BYTES;
    this.maxRequestBytes = opts.maxRequestBytes ?? STREAM_MAX_REQUEST_BYTES;
    this.maxRequestEntries = opts.maxRequestEntries ?? STREAM_MAX_REQUEST_ENTRIES;
  }

  /** Whether a message fits the per-message limit once encoded. */
  fits(message: StreamMessage): boolean {
    return (
      messageBytes(message.key === undefined ? undefined : b64(message.key), b64(message.value)) <=
      this.maxMessageBytes
    );
  }

  /** Puts the messages; resolves with where each one was stored (in their order), when the service said. */
  async put(
    messages: readonly StreamMessage[],
    what = 'message(s)',
  ): Promise<(StreamPosition | undefined)[]> {
    const positions: (StreamPosition | undefined)[] = messages.map(() => undefined);
    if (messages.length === 0) return positions;
    let pending = messages.map((m, i) => toEntry(m, i));
    const sleep = this.retry.sleep ?? sleepMs;
    const attempts = Math.max(1, this.retry.maxAttempts);
    let lastFailure: OciFailure | null = null;
    let lastError: unknown;

    for (let attempt = 0; attempt < attempts && pending.length > 0; attempt++) {
      if (attempt > 0) await sleep(backoffDelayMs(this.retry, attempt - 1));
      const again: Entry[] = [];
      const requests = [...this.split(pending)];
      for (let r = 0; r < requests.length; r++) {
        const request = requests[r]!;
        this.stats.requests += 1;
        try {
          const res = await this.client.putMessages({
            streamId: this.streamId,
            putMessagesDetails: {
              messages: request.map((e) =>
                e.key === undefined ? { value: e.value } : { key: e.key, value: e.value },
              ),
            },
          });
          const result = res.putMessagesResult;
          const failed = result.failures > 0 ? failedIndexes(result.entries, request.length) : null;
          request.forEach((e, i) => {
            const stored = result.entries?.[i];
            if (failed?.has(i)) again.push(e);
            else if (stored?.partition !== undefined && stored.offset !== undefined)
              positions[e.index] = { partition: stored.partition, offset: stored.offset };
          });
          if (failed === null || failed.size === 0) {
            this.stats.messagesSent += request.length;
            continue;
          }
          this.stats.messagesSent += request.length - failed.size;
          this.stats.entriesRetried += failed.size;
          lastFailure = { status: 200, code: 'PartialFailure', retryable: true };
          // The rest waits for the failed entries: sent now, it would land before them.
          for (const rest of requests.slice(r + 1)) again.push(...rest);
          break;
        } catch (error) {
          const failure = classifyOciError(error);
          this.stats.requestErrors += 1;
          lastFailure = failure;
          lastError = error;
          if (!failure.retryable) throw this.failed(failure, error, pending.length, what);
          // Throttled or failing: stop this round, resend this request and the rest after a pause.
          for (const rest of requests.slice(r)) again.push(...rest);
          break;
        }
      }
      pending = again;
    }
    if (pending.length > 0) throw this.failed(lastFailure, lastError, pending.length, what);
    return positions;
  }

  private failed(failure: OciFailure | null, cause: unknown, undelivered: number, what: string): AuditError {
    return new AuditError(
      'SINK_FAILED',
      `${this.name}: PutMessages could not deliver ${undelivered} ${what} (${describeOciFailure(failure)})`,
      {
        details: {
          sink: this.name,
          undelivered,
          status: failure?.status ?? null,
          serviceCode: failure?.code ?? null,
        },
        cause,
      },
    );
  }

  /** Groups entries into requests under the byte and entry limits, keeping their order. */
  private *split(entries: Entry[]): Generator<Entry[]> {
    let batch: Entry[] = [];
    let bytes = ENVELOPE_BYTES;
    for (const e of entries) {
      if (
        batch.length > 0 &&
        (bytes + e.bytes > this.maxRequestBytes || batch.length >= this.maxRequestEntries)
      ) {
        yield batch;
        batch = [];
        bytes = ENVELOPE_BYTES;
      }
      batch.push(e);
      bytes += e.bytes;
    }
    if (batch.length > 0) yield batch;
  }
}

function toEntry(message: StreamMessage, index: number): Entry {
  const key = message.key === undefined ? undefined : b64(message.key);
  const value = b64(message.value);
  // `{"key":"…","value":"…"},`
  return { index, key, value, bytes: value.length + (key === undefined ? 0 : key.length + 9) + 13 };
}

export class StreamSink implements AlertSink {
  readonly name: string;
  private readonly writer: StreamWriter;
  private readonly format: (alert: Alert) => string;
  private readonly located: ((alert: Alert, at: StreamPosition) => void) | undefined;

  constructor(opts: StreamSinkOptions) {
    this.name = opts.name ?? 'oci-stream';
    this.writer = new StreamWriter(opts.client, opts.streamId, this.name, opts);
    this.format = opts.format ?? ((a) => JSON.stringify(a));
    this.located = opts.located;
  }

  get stats(): StreamSinkStats {
    return this.writer.stats;
  }

  async send(alerts: Alert[]): Promise<void> {
    const positions = await this.writer.put(
      alerts.map((a) => this.toMessage(a)),
      'alert(s)',
    );
    if (this.located)
      positions.forEach((p, i) => {
        if (p) this.located!(alerts[i]!, p);
      });
  }

  /** The alert as a message; one too large for a message is shrunk (evidence cut, details dropped). */
  private toMessage(alert: Alert): StreamMessage {
    const key = alert.dbSystem?.id;
    let message: StreamMessage = { value: this.format(alert), ...(key ? { key } : {}) };
    if (this.writer.fits(message)) return message;
    message = { ...message, value: this.format(shrink(alert)) };
    this.writer.stats.truncated += 1;
    if (!this.writer.fits(message)) {
      throw new AuditError('PAYLOAD_TOO_LARGE', `${this.name}: alert does not fit one stream message`, {
        details: { sink: this.name, alertId: alert.id },
      });
    }
    return message;
  }
}

function messageBytes(key: string | undefined, value: string): number {
  return value.length + (key?.length ?? 0);
}

/** Indexes of the entries that failed; every entry counts as failed when the answer is short. */
function failedIndexes(entries: ReadonlyArray<{ error?: string }> | undefined, count: number): Set<number> {
  const failed = new Set<number>();
  for (let i = 0; i < count; i++) {
    const entry = entries?.[i];
    if (entry === undefined || (entry.error !== undefined && entry.error !== null && entry.error !== ''))
      failed.add(i);
  }
  return failed;
}

/** The alert without its bulky parts, marked so consumers know to look it up. */
function shrink(alert: Alert): Alert {
  const evidence = alert.evidence.slice(0, 20);
  return {
    ...alert,
    evidence,
    details: { truncated: true, evidenceCount: alert.evidence.length },
  };
}
