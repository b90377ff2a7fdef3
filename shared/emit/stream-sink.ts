// Alerts to an OCI stream (PutMessages): one message per alert, key = DB system id so one DB
// system's alerts stay in order on one partition, value = the formatted alert (JSON, OCSF, ECS).
// Limits: 1 MB per message and per request, so batches are split by bytes.
// A 200 answer can carry failed entries: exactly those are sent again. 429/5xx/transport errors
// resend the whole request. Everything is bounded by the retry policy; what still fails makes
// `send` throw SINK_FAILED, the pipeline does not mark the batch delivered and re-sends it later
// (consumers dedupe on the deterministic alert id: delivery is at least once).
import type { StreamClient } from 'oci-streaming';
import type { Alert } from '../../schemas/alert.js';
import { AuditError } from '../errors.js';
import {
  backoffDelayMs,
  classifyOciError,
  DEFAULT_RETRY,
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
  retry?: RetryPolicy;
  maxMessageBytes?: number;
  maxRequestBytes?: number;
  maxRequestEntries?: number;
}

interface Entry {
  alertId: string;
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

export class StreamSink implements AlertSink {
  readonly name: string;
  readonly stats: StreamSinkStats = {
    requests: 0,
    messagesSent: 0,
    entriesRetried: 0,
    requestErrors: 0,
    truncated: 0,
  };
  private readonly client: StreamPutter;
  private readonly streamId: string;
  private readonly format: (alert: Alert) => string;
  private readonly retry: RetryPolicy;
  private readonly maxMessageBytes: number;
  private readonly maxRequestBytes: number;
  private readonly maxRequestEntries: number;

  constructor(opts: StreamSinkOptions) {
    this.client = opts.client;
    this.streamId = opts.streamId;
    this.name = opts.name ?? 'oci-stream';
    this.format = opts.format ?? ((a) => JSON.stringify(a));
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.maxMessageBytes = opts.maxMessageBytes ?? STREAM_MAX_MESSAGE_BYTES;
    this.maxRequestBytes = opts.maxRequestBytes ?? STREAM_MAX_REQUEST_BYTES;
    this.maxRequestEntries = opts.maxRequestEntries ?? STREAM_MAX_REQUEST_ENTRIES;
  }

  async send(alerts: Alert[]): Promise<void> {
    if (alerts.length === 0) return;
    let pending = alerts.map((a) => this.toEntry(a));
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
          if (failed === null || failed.size === 0) {
            this.stats.messagesSent += request.length;
            continue;
          }
          request.forEach((e, i) => {
            if (failed.has(i)) again.push(e);
          });
          this.stats.messagesSent += request.length - failed.size;
          this.stats.entriesRetried += failed.size;
          lastFailure = { status: 200, code: 'PartialFailure', retryable: true };
        } catch (error) {
          const failure = classifyOciError(error);
          this.stats.requestErrors += 1;
          lastFailure = failure;
          lastError = error;
          if (!failure.retryable) throw this.failed(failure, error, pending.length);
          // Throttled or failing: stop this round, resend this request and the rest after a pause.
          for (const rest of requests.slice(r)) again.push(...rest);
          break;
        }
      }
      pending = again;
    }
    if (pending.length > 0) throw this.failed(lastFailure, lastError, pending.length);
  }

  private failed(failure: OciFailure | null, cause: unknown, undelivered: number): AuditError {
    return new AuditError(
      'SINK_FAILED',
      `${this.name}: PutMessages could not deliver ${undelivered} alert(s) (status ${failure?.status ?? 'none'}, ${failure?.code ?? 'no code'})`,
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

  private toEntry(alert: Alert): Entry {
    const key = alert.dbSystem?.id ? b64(alert.dbSystem.id) : undefined;
    let value = b64(this.format(alert));
    if (messageBytes(key, value) > this.maxMessageBytes) {
      value = b64(this.format(shrink(alert)));
      this.stats.truncated += 1;
      if (messageBytes(key, value) > this.maxMessageBytes) {
        throw new AuditError('PAYLOAD_TOO_LARGE', `${this.name}: alert does not fit one stream message`, {
          details: { sink: this.name, alertId: alert.id },
        });
      }
    }
    // `{"key":"…","value":"…"},`
    const bytes = value.length + (key === undefined ? 0 : key.length + 9) + 13;
    return { alertId: alert.id, key, value, bytes };
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
