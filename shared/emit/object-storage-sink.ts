// Alerts into an Object Storage bucket for SIEM batch pickup: one gzipped object per format and
// hour of the alerts' event time, one alert per line, e.g. `alerts/ocsf/2026/11/02/09.jsonl.gz`.
//
// Names are deterministic, so a retry writes the same object again instead of a new one: each
// send reads the hour's object, adds the lines it does not hold yet (alert lines are rendered
// deterministically, so a re-sent alert is the line already there) and writes it back only when
// something was added. An alert that arrives late (a late IAM event) is added to the object of
// its hour, which is rewritten: readers pick objects up by modification time and dedupe on the
// alert id, as with every other output (delivery is at least once). The rewrite is conditional
// (If-Match the version read, If-None-Match for a new object), so two writers of one hour never
// lose each other's lines: the loser reads again and merges.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Alert } from '../../schemas/alert.js';
import { AuditError } from '../errors.js';
import { classifyOciError } from '../oci/clients.js';
import { formatAlert, type OutputFormat } from './formats/format.js';
import type { ObjectStorageWriter } from './object-storage-writer.js';
import type { AlertSink } from './sink.js';

/** Conditional writes lost to another writer before giving up (each re-reads the object). */
const MAX_CONFLICTS = 5;

export type ObjectStorageSinkOptions = {
  writer: ObjectStorageWriter;
  format: OutputFormat;
  /** Object name prefix, e.g. `alerts/` (default). */
  prefix?: string;
  /** Called with each record once the object holding it is written. */
  located?: (record: Alert, object: string) => void;
};

/** `<prefix><format>/YYYY/MM/DD/HH.<jsonl|log>.gz` for an alert time (ISO 8601 UTC). */
export function alertObjectName(prefix: string, format: OutputFormat, time: string): string {
  const t = new Date(time).toISOString();
  const hour = `${t.slice(0, 4)}/${t.slice(5, 7)}/${t.slice(8, 10)}/${t.slice(11, 13)}`;
  return `${prefix}${format}/${hour}.${format === 'cef' ? 'log' : 'jsonl'}.gz`;
}

export class ObjectStorageSink implements AlertSink {
  readonly name: string;
  private readonly writer: ObjectStorageWriter;
  private readonly format: OutputFormat;
  private readonly prefix: string;
  private readonly located: ((record: Alert, object: string) => void) | undefined;

  constructor(opts: ObjectStorageSinkOptions) {
    this.writer = opts.writer;
    this.format = opts.format;
    this.prefix = opts.prefix ?? 'alerts/';
    // Per format: another format's objects get every stored alert again.
    this.name = `oci-object-storage:${opts.format}`;
    this.located = opts.located;
  }

  async send(alerts: Alert[]): Promise<void> {
    const byObject = new Map<string, Alert[]>();
    for (const alert of alerts) {
      const name = alertObjectName(this.prefix, this.format, alert.time);
      const records = byObject.get(name);
      if (records) records.push(alert);
      else byObject.set(name, [alert]);
    }
    for (const [name, records] of byObject) {
      await this.merge(
        name,
        records.map((r) => formatAlert(this.format, r)),
      );
      for (const r of records) this.located?.(r, name);
    }
  }

  /** Adds `lines` to the object `name` unless it holds them already. */
  private async merge(name: string, lines: string[]): Promise<void> {
    for (let conflicts = 0; ; conflicts++) {
      const existing = await this.call(name, () => this.writer.get(name));
      const held = existing === null ? [] : linesOf(name, existing.data);
      const present = new Set(held);
      // New lines only, each once (Set.add returns the set: truthy).
      const added = lines.filter((line) => !present.has(line) && present.add(line));
      if (added.length === 0) return;
      const body = gzipSync(Buffer.from(`${[...held, ...added].join('\n')}\n`, 'utf8'));
      const condition =
        existing === null
          ? { ifNoneMatch: '*' as const }
          : existing.etag === undefined
            ? {}
            : { ifMatch: existing.etag };
      try {
        await this.writer.put(name, body, { contentType: 'application/gzip', ...condition });
        return;
      } catch (error) {
        const lost = classifyOciError(error instanceof AuditError ? error.cause : error).status === 412;
        if (!lost || conflicts >= MAX_CONFLICTS) throw sinkFailed(name, error);
      }
    }
  }

  private async call<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw sinkFailed(name, error);
    }
  }
}

/** The lines of a gzipped object this sink wrote. */
function linesOf(name: string, data: Buffer): string[] {
  let text: string;
  try {
    text = gunzipSync(data).toString('utf8');
  } catch (cause) {
    throw new AuditError('SINK_FAILED', `oci-object-storage: ${name} exists and is not gzip data`, {
      details: { object: name },
      cause,
    });
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function sinkFailed(object: string, error: unknown): AuditError {
  const details = error instanceof AuditError ? error.details : {};
  return new AuditError('SINK_FAILED', `oci-object-storage: cannot write ${object}`, {
    details: { ...details, object },
    cause: error,
  });
}
