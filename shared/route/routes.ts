// The routes of a configuration as sinks (config `routes`, README "Routes"), each wrapping the
// output it names: a Notifications topic (shared by the routes on it, under its rate), a stream
// (StreamSink), Object Storage (ObjectStorageSink: hourly gzipped objects of the route's format) or
// a local file (FileSink). Full records
// written by stream, bucket and file routes are indexed, so that digests link each alert id to
// where it is.
import type { AuthenticationDetailsProvider } from 'oci-common';
import { type Alert, recordKey } from '../../schemas/alert.js';
import type { Config, RouteConfig } from '../../schemas/config.js';
import { FileSink } from '../emit/file-sink.js';
import { formatAlert, type OutputFormat } from '../emit/formats/format.js';
import {
  type DigestMessage,
  type NotificationPublisher,
  ONS_MAX_REQUEST_BYTES,
  ONS_MESSAGES_PER_MINUTE,
  type TokenBucket,
  TopicRates,
} from '../emit/notifications-sink.js';
import { ObjectStorageSink } from '../emit/object-storage-sink.js';
import { type ObjectStorageApi, ObjectStorageWriter } from '../emit/object-storage-writer.js';
import { type StreamPosition, type StreamPutter, StreamSink } from '../emit/stream-sink.js';
import { AuditError } from '../errors.js';
import { callWithRetry, createOciClient, DEFAULT_RETRY, type RetryPolicy, sleepMs } from '../oci/clients.js';
import { RouteRules } from './route-rules.js';
import {
  type RecordOutput,
  RecordRoute,
  type RouteSink,
  type TopicOutput,
  TopicRoute,
} from './route-sink.js';

/** The OCI clients routes need, created on first use. */
export type RouteClients = {
  notifications?: () => Promise<NotificationPublisher>;
  streaming?: () => Promise<StreamPutter>;
  objectStorage?: () => Promise<ObjectStorageApi>;
};

export type RouteOptions = {
  clients: RouteClients;
  /** The retry policy of a sink's OCI calls. */
  retry?: (sink: string) => RetryPolicy;
  /** Waits for a topic's rate budget (the function refuses waits past its deadline). */
  sleep?: (ms: number, sink: string) => Promise<void>;
  now?: () => number;
  /** Where full records are; shared with other sinks that write them (the function's alert stream). */
  index?: RecordIndex;
  /** The topics' rates, shared with other publishers (the function's digests); holds `routeTopicRates`. */
  rates?: TopicRates;
};

/** Where the full text of records is (`stream ... offset 12`, `object bucket/name`), by record key, bounded. */
export class RecordIndex {
  private readonly where = new Map<string, string>();

  constructor(private readonly limit = 100_000) {}

  set(record: Alert, where: string): void {
    const key = recordKey(record);
    this.where.delete(key);
    this.where.set(key, where);
    if (this.where.size > this.limit) this.where.delete(this.where.keys().next().value!);
  }

  /** Where the record is, else where its alert is. */
  find = (record: Alert): string | undefined =>
    this.where.get(recordKey(record)) ?? this.where.get(record.id);

  /** What a stream sink calls with each record it stored. */
  onStream(streamId: string): (record: Alert, at: StreamPosition) => void {
    return (record, at) =>
      this.set(record, `stream ${streamId} partition ${at.partition} offset ${at.offset}`);
  }

  /** What an Object Storage sink calls with each record it wrote. */
  onObject(bucket: string): (record: Alert, object: string) => void {
    return (record, object) => this.set(record, `object ${bucket}/${object}`);
  }
}

/**
 * SDK clients for routes and the function's outputs, with the provider `auth` gives, each created
 * (and its SDK package loaded) once, on first use; `given` ones win.
 */
export function routeClients(
  auth: () => Promise<AuthenticationDetailsProvider>,
  env: Readonly<Record<string, string | undefined>>,
  given: RouteClients = {},
): Required<RouteClients> {
  const once = <T>(make: () => Promise<T>) => {
    let made: Promise<T> | undefined;
    return () => {
      made ??= make();
      made.catch(() => {
        made = undefined;
      });
      return made;
    };
  };
  const sdk = <S extends 'notifications' | 'streaming' | 'objectstorage'>(service: S) =>
    once(async () => createOciClient(service, { auth: await auth(), env }));
  return {
    notifications: given.notifications ?? sdk('notifications'),
    streaming: given.streaming ?? sdk('streaming'),
    objectStorage: given.objectStorage ?? sdk('objectstorage'),
  };
}

export type OpenRoutes = { sinks: RouteSink[]; index: RecordIndex; close(): Promise<void> };

/** The Notifications topics of `config`'s routes, each with the rate a route on it asks. */
export function routeTopicRates(config: Config): [topicId: string, perMinute: number][] {
  return config.routes.flatMap(({ output }) =>
    output.notifications === undefined
      ? []
      : [[output.notifications, output.perMinute ?? ONS_MESSAGES_PER_MINUTE]],
  );
}

/** The route sinks of `config` (none when it has no routes). */
export async function openRoutes(config: Config, opts: RouteOptions): Promise<OpenRoutes> {
  const index = opts.index ?? new RecordIndex();
  // The routes on one topic share its rate: the slowest subscription (e-mail) sets it.
  const rates = opts.rates ?? new TopicRates(routeTopicRates(config), opts.now ?? Date.now);
  const topics = new Map<string, Topic>();
  const sinks: RouteSink[] = [];
  try {
    for (const [i, route] of config.routes.entries()) {
      const rules = new RouteRules(route, config);
      const name = `route:${route.name}`;
      const retry = opts.retry?.(name) ?? DEFAULT_RETRY;
      const out = route.output;
      if (out.notifications !== undefined) {
        const topicId = out.notifications;
        let topic = topics.get(topicId);
        if (topic === undefined) {
          const client = await need(opts.clients.notifications, i, 'notifications')();
          topic = new Topic(client, topicId, rates.bucket(topicId), retry, (ms) =>
            (opts.sleep ?? sleepMs)(ms, name),
          );
          topics.set(topicId, topic);
        }
        sinks.push(new TopicRoute(rules, topic, index.find));
      } else {
        sinks.push(new RecordRoute(rules, await recordOutput(route, i, name, retry, opts, index)));
      }
    }
  } catch (error) {
    for (const s of sinks) await s.close();
    throw error;
  }
  return {
    sinks,
    index,
    close: async () => {
      for (const s of sinks) await s.close();
    },
  };
}

function need<T>(factory: (() => Promise<T>) | undefined, i: number, kind: string): () => Promise<T> {
  if (factory) return factory;
  throw new AuditError('CONFIG_INVALID', `routes[${i}].output.${kind}: not available here`, {
    details: { route: i },
  });
}

async function recordOutput(
  route: RouteConfig,
  i: number,
  name: string,
  retry: RetryPolicy,
  opts: RouteOptions,
  index: RecordIndex,
): Promise<RecordOutput> {
  const out = route.output;
  const format: OutputFormat = out.format ?? 'jsonl';
  const render = (a: Alert) => formatAlert(format, a);
  if (out.stream !== undefined) {
    const streamId = out.stream;
    const sink = new StreamSink({
      client: await need(opts.clients.streaming, i, 'stream')(),
      streamId,
      name,
      format: render,
      retry,
      located: index.onStream(streamId),
    });
    return { describe: `stream ${streamId} (${format})`, send: (records) => sink.send(records) };
  }
  if (out.objectStorage !== undefined) {
    const { bucket, namespace, prefix } = out.objectStorage;
    const writer = new ObjectStorageWriter({
      client: await need(opts.clients.objectStorage, i, 'objectStorage')(),
      bucket,
      ...(namespace ? { namespace } : {}),
      retry,
    });
    const sink = new ObjectStorageSink({ writer, format, prefix, located: index.onObject(bucket) });
    return { describe: `bucket ${bucket}/${prefix} (${format})`, send: (records) => sink.send(records) };
  }
  const path = out.file!;
  const file = await FileSink.open(path, name, render);
  return {
    describe: `file ${path} (${format})`,
    send: async (records) => {
      await file.send(records);
      for (const r of records) index.set(r, `file ${path}`);
    },
    close: () => file.close(),
  };
}

/** A Notifications topic under its rate: a token bucket that never lets a minute exceed it. */
class Topic implements TopicOutput {
  readonly maxBytes = ONS_MAX_REQUEST_BYTES - 1024;

  constructor(
    private readonly client: NotificationPublisher,
    private readonly topicId: string,
    private readonly bucket: TokenBucket,
    private readonly retry: RetryPolicy,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {}

  get describe(): string {
    return `topic ${this.topicId}`;
  }

  free(): number {
    return this.bucket.available();
  }

  async publish(message: DigestMessage): Promise<void> {
    while (!this.bucket.tryTake()) await this.sleep(this.bucket.waitMs() + 1);
    await callWithRetry(
      'ons.publishMessage',
      () =>
        this.client.publishMessage({
          topicId: this.topicId,
          messageDetails: { title: message.title, body: message.body },
        }),
      this.retry,
      'SINK_FAILED',
    );
  }
}
