// The OCI Function host without the FDK (functions/func.ts adapts it), so it runs in unit tests.
//
// One FunctionHost lives per container: it validates the settings once, keeps the state store and
// the alert sinks open between invocations, and runs invocations one after the other, since a
// batch is one state-store transaction. With a SQLite store (private to the container) the
// pipeline, and the correlation state it holds in memory, is kept as well. With a shared mysql://
// store other containers commit to the same scope between two invocations of this one, so the
// pipeline is re-opened (its state reloaded from the store) at the start of every invocation that
// needs it; see docs/function-config.md, "State store and scope". Invocations of one scope in
// different containers may overlap, so on a shared store each holds the scope's lock
// (StateStore.lockScope) from before the re-open until its sinks have delivered: overlapping
// invocations run one after the other. The wait ends at Fn-Deadline minus the margin (or after
// DEFAULT_LOCK_WAIT_MS without a deadline); a scope still busy then fails the invocation with
// STORE_FAILED ("scope is busy", a 502) and nothing written, so the caller's retry does the work.
//
// Sinks: stdout or HWAUDIT_ALERTS_FILE (always), an OCI stream (HWAUDIT_ALERT_STREAM_ID), hourly
// objects in a bucket (HWAUDIT_ALERT_BUCKET) and Notifications digests
// (HWAUDIT_NOTIFICATIONS_TOPIC_ID); the OCI clients are created on first use
// with the provider HWAUDIT_OCI_AUTH names (the resource principal inside Functions). Every sink
// has delivered, digests included, before the invocation answers, so nothing waits in memory
// while the container is frozen. A sink failure fails the invocation and drops the pipeline; the
// retry re-opens it, which re-sends what the store records as not delivered (Pipeline.open). An
// output still failing then does not keep the batch from being processed, nor the outputs that work
// from being sent its alerts: the invocation fails once they were (SINK_FAILED all the same).
//
// Outcomes (the FDK answers 200 with the returned value, or 502 with the thrown error's text):
// - a batch or sweep that ran: the summary;
// - a body that no retry can fix (too large, not JSON, unknown action): a summary with `error`
//   (status 413/400) and, where it held records, a dead letter, so nothing is lost silently and
//   a poison batch is not redelivered forever;
// - what a retry can fix (bad settings, store or sink failure, too close to Fn-Deadline): a thrown
//   FunctionError. Its message carries codes, counts and paths only, because the FDK echoes it in
//   the 502 body; no cause is attached because the FDK logs the thrown error with util.inspect.
import { type Alert, recordKey, SEVERITIES } from '../schemas/alert.js';
import type { Config } from '../schemas/config.js';
import type { DeadLetter, DeadLetterCode } from '../schemas/dead-letter.js';
import type { ActiveRule } from '../shared/config/active-rules.js';
import { loadConfigFile, parseConfigText } from '../shared/config/load-config.js';
import type { DbRef } from '../shared/decode/classify.js';
import { decodeBatch } from '../shared/decode/read-input.js';
import { FileSink } from '../shared/emit/file-sink.js';
import { formatAlert } from '../shared/emit/formats/format.js';
import { JsonlSink } from '../shared/emit/jsonl-sink.js';
import { NotificationsSink, TopicRates } from '../shared/emit/notifications-sink.js';
import { ObjectStorageSink } from '../shared/emit/object-storage-sink.js';
import { ObjectStorageWriter } from '../shared/emit/object-storage-writer.js';
import type { AlertSink } from '../shared/emit/sink.js';
import { StreamSink, StreamWriter } from '../shared/emit/stream-sink.js';
import { AuditError, type ErrorCode, withProblems } from '../shared/errors.js';
import { lazyOciAuth, ociAuthProvider } from '../shared/oci/auth.js';
import {
  callWithRetry,
  createOciClient,
  DEFAULT_RETRY,
  type RetryPolicy,
  sleepMs,
} from '../shared/oci/clients.js';
import { vaultSecretFetcher } from '../shared/oci/vault.js';
import { addCountsSince, type DecodedItem, emptyStats, Pipeline, recordCounts } from '../shared/pipeline.js';
import { type PublishResult, publishReports, ReportActionSchema } from '../shared/report/publish-reports.js';
import {
  openRoutes,
  RecordIndex,
  type RouteClients,
  routeClients,
  routeTopicRates,
} from '../shared/route/routes.js';
import { collect } from '../shared/sources/collector.js';
import {
  AUDIT_DELIVERY_POSITION,
  auditField,
  backfillCommand,
  checkAuditDelivery,
  type DeliveryMark,
  sweptMark,
} from '../shared/sources/delivery-gap.js';
import { type IamLogin, iamLogin } from '../shared/sources/iam-login.js';
import {
  connectInstance,
  instanceTargets,
  NO_ENDPOINTS,
  type SecretReader,
  secretReader,
  secretVariables,
  type VaultSecretFetcher,
  withDiscoveredFleet,
} from '../shared/sources/mysql-connection.js';
import { displayStoreSpec, type OpenStoreOptions, openStore } from '../shared/state/open-store.js';
import type { StateStore } from '../shared/state/state-store.js';
import { ociSyncClients, syncState } from '../shared/sync/sync.js';
import { toIso } from '../shared/time.js';
import { type FunctionEnv, readFunctionEnv } from './function-env.js';

/** What the host needs from the FDK context. */
export type InvocationContext = {
  callId?: string | null;
  /** Fn-Deadline; null or invalid when absent. */
  deadline?: Date | null;
};

export type InvocationSummary = {
  action: 'ingest' | 'sweep' | 'collect' | 'sync' | 'report';
  /** Records decoded from this body (events, ignored events and dead letters). */
  received: number;
  /** Events applied in this call: released by the watermark, from this batch or earlier ones. */
  processed: number;
  duplicates: number;
  /** OCI Audit events of this body that concern nothing the pipeline reads: counted, not kept. */
  ignored: number;
  /** Events accepted after the watermark had passed them. */
  late: number;
  deadLetters: Partial<Record<DeadLetterCode, number>>;
  /** New alerts emitted by this call. */
  alerts: number;
  /** Alerts found to be over by this call (resolution records), when there are any. */
  resolutions?: number;
  /** Event-time watermark after this call (ISO 8601), null before the first event. */
  watermark: string | null;
  /** Set when the body was refused; retrying the same body cannot succeed. */
  error?: { code: ErrorCode; status: 400 | 413; message: string };
  /** A Connector Hub outage longer than its source keeps data was noticed (an audit.gap alert). */
  deliveryGap?: { from: string; to: string };
  /** `collect`: what was read from each instance, and why an instance was not read to its end. */
  instances?: {
    dbSystem: string;
    instance: string;
    records: number;
    caughtUp: boolean;
    gaps: number;
    error?: string;
  }[];
  /**
   * `sync`: the snapshot stored, the parts that could not be read (their previous data kept), what
   * parts read could not read in full (`part: warning`, with the fix), the OCI requests it cost.
   */
  sync?: { snapshot: string; failed: string[]; warnings?: string[]; requests: number };
  /** `report`: the period, the objects written, and whether this call published the message. */
  report?: PublishResult;
};

/**
 * Whether an answered invocation's log line is a warning (what a log alarm watches for): a body
 * refused, an instance not read, a part of a sync not read or read in part, or `_Audit` records
 * lost to an outage.
 */
function needsAttention(s: InvocationSummary): boolean {
  return (
    s.error !== undefined ||
    (s.instances ?? []).some((i) => i.error !== undefined) ||
    (s.sync?.failed.length ?? 0) > 0 ||
    s.sync?.warnings !== undefined ||
    s.deliveryGap !== undefined
  );
}

/** A failure the caller should retry. Its message is safe to show (codes, counts, paths). */
export class FunctionError extends Error {
  readonly code: ErrorCode;
  /** The message without its list of problems. */
  readonly headline: string;
  /** Problems listed under the headline, one a line (a configuration's issues). */
  readonly problems: readonly string[];

  constructor(code: ErrorCode, message: string, problems: readonly string[] = []) {
    const headline = `${code}: ${message}`;
    super(withProblems(headline, problems));
    this.name = 'FunctionError';
    this.code = code;
    this.headline = headline;
    this.problems = problems;
  }
}

/** Opens the state store a spec names (default: openStore, shared/state/open-store.ts). */
export type StoreOpener = (
  spec: string,
  opts: OpenStoreOptions & { scope: string },
) => StateStore | Promise<StateStore>;

/** The OCI clients of the alert sinks (default: SDK clients with the HWAUDIT_OCI_AUTH provider). */
export type OciSinkClients = RouteClients & {
  /** Reads OCI Vault secrets (collector passwords). */
  vault?: () => Promise<VaultSecretFetcher>;
};

export type FunctionHostOptions = {
  env?: Readonly<Record<string, string | undefined>>;
  now?: () => number;
  /** Alerts, one per line, when HWAUDIT_ALERTS_FILE is unset (the function log). */
  stdout?: NodeJS.WritableStream;
  /** One JSON log line per invocation. */
  stderr?: NodeJS.WritableStream;
  openStore?: StoreOpener;
  ociClients?: OciSinkClients;
  /** Retries of OCI calls (PutMessages, PublishMessage); default DEFAULT_RETRY. */
  ociRetry?: RetryPolicy;
};

type Settings = {
  env: FunctionEnv;
  config: Config;
  rules: ActiveRule[];
  resolveDbSystem: () => DbRef | undefined;
  /** A shared store: reload the pipeline's state at every invocation. */
  reload: boolean;
};

type OpenPipeline = { pipeline: Pipeline; store: StateStore };

/** Cost model for the deadline check before a batch: learned from this container's batches. */
const INITIAL_MS_PER_ITEM = 0.2;
const LEARN_MIN_ITEMS = 50;
/** The longest wait for the scope lock of an invocation without Fn-Deadline (OCI's default timeout). */
const DEFAULT_LOCK_WAIT_MS = 30_000;
/** How long a collect call reads without Fn-Deadline, and the share of the time left it reads with one. */
const DEFAULT_COLLECT_MS = 60_000;
const COLLECT_SHARE = 0.75;

type Work = 'batch' | 'sweep' | 'collect' | 'sync' | 'report';

/** The control messages' actions: a refused one is summarised as what it asked for. */
const CONTROL_ACTIONS = ['sweep', 'collect', 'sync', 'report'] as const;
/** What a refused control message leaves undone. */
const NOT_DONE: Record<Exclude<Work, 'batch'>, string> = {
  sweep: 'the sweep was not run',
  collect: 'nothing was collected',
  sync: 'nothing was synced',
  report: 'no report was written',
};

export class FunctionHost {
  private readonly env: Readonly<Record<string, string | undefined>>;
  private readonly now: () => number;
  private readonly stdout: NodeJS.WritableStream;
  private readonly stderr: NodeJS.WritableStream;
  private readonly openStore: StoreOpener;
  private readonly ociClients: OciSinkClients;
  private readonly ociRetry: RetryPolicy;
  private settings: Settings | undefined;
  private storeOpen: Promise<StateStore> | undefined;
  /** The open store, for sinks that record their own progress (digests). */
  private currentStore: StateStore | undefined;
  private sinkSet: Promise<AlertSink[]> | undefined;
  private open: Promise<OpenPipeline> | undefined;
  /** Invocation counter, and the invocation that opened `open`. */
  private seq = 0;
  private openSeq = -1;
  /** Fn-Deadline of the running invocation (ms), for waits inside sinks. */
  private deadline: number | undefined;
  /** Milliseconds the running invocation spent opening the pipeline (loading state). */
  private openMs: number | undefined;
  /** Milliseconds the running invocation waited for the scope lock (shared store only). */
  private lockMs: number | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private msPerItem = INITIAL_MS_PER_ITEM;
  private secretReader: SecretReader | undefined;
  private iam: IamLogin | undefined;
  private collectWriter: Promise<StreamWriter> | undefined;

  constructor(opts: FunctionHostOptions = {}) {
    this.env = opts.env ?? process.env;
    this.now = opts.now ?? Date.now;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
    this.openStore = opts.openStore ?? openStore;
    this.ociClients = opts.ociClients ?? {};
    this.ociRetry = opts.ociRetry ?? DEFAULT_RETRY;
  }

  /** Handles one invocation; resolves with a summary or rejects with a FunctionError. Never resolves empty. */
  invoke(body: Buffer | string, ctx: InvocationContext = {}): Promise<InvocationSummary> {
    const run = this.queue.then(() => this.run(body, ctx));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Whether a pipeline (and its store) is open in this container. */
  get warm(): boolean {
    return this.open !== undefined;
  }

  /**
   * Ends the host after the invocations under way: closes the store (a MySQL pool would keep a
   * process alive) and the alerts file. A container never calls it; a local run does.
   */
  async close(): Promise<void> {
    await this.queue;
    await this.drop();
    const sinks = await this.sinkSet?.catch(() => undefined);
    this.sinkSet = undefined;
    for (const sink of sinks ?? []) if (sink instanceof FileSink) await sink.close();
  }

  private async run(body: Buffer | string, ctx: InvocationContext): Promise<InvocationSummary> {
    const started = this.now();
    const callId = ctx.callId ?? null;
    this.seq++;
    const deadline = ctx.deadline?.getTime();
    this.deadline = deadline === undefined || Number.isNaN(deadline) ? undefined : deadline;
    this.openMs = undefined;
    this.lockMs = undefined;
    try {
      const summary = await this.route(typeof body === 'string' ? Buffer.from(body, 'utf8') : body, ctx);
      this.log({
        level: needsAttention(summary) ? 'warn' : 'info',
        msg: 'invocation',
        callId,
        ms: this.now() - started,
        ...(this.openMs === undefined ? {} : { openMs: this.openMs }),
        ...(this.lockMs === undefined ? {} : { lockMs: this.lockMs }),
        ...summary,
      });
      return summary;
    } catch (error) {
      const failure = toFunctionError(error);
      this.log({
        level: 'error',
        msg: 'invocation failed',
        callId,
        ms: this.now() - started,
        ...(this.lockMs === undefined ? {} : { lockMs: this.lockMs }),
        code: failure.code,
        error: failure.message,
        // For an unexpected failure, where the code went wrong: stack frames only (the first line
        // of a stack repeats the message, which may hold data). An expected one says it all.
        ...(failure.code === 'INTERNAL' ? { frames: stackFrames(error) } : {}),
      });
      throw failure;
    }
  }

  private async route(body: Buffer, ctx: InvocationContext): Promise<InvocationSummary> {
    const settings = await this.loadSettings();
    const source = `fn:${ctx.callId ?? 'call'}`;
    if (body.length > settings.env.maxBodyBytes) {
      return this.refuse(
        settings,
        'PAYLOAD_TOO_LARGE',
        413,
        `body over HWAUDIT_MAX_BODY_BYTES (${settings.env.maxBodyBytes} bytes)`,
        {
          code: 'TOO_LARGE',
          source,
          message: `request body over the limit of ${settings.env.maxBodyBytes} bytes`,
        },
      );
    }
    const text = body.toString('utf8').replace(/^\uFEFF/, '');
    if (text.trim() === '') {
      return this.refuse(
        settings,
        'INPUT_UNREADABLE',
        400,
        'empty body: send a batch of audit records or {"action":"sweep"}',
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // The parser's message quotes the input, so it is not passed on.
      return this.refuse(settings, 'INPUT_UNREADABLE', 400, `body is not valid JSON (${body.length} bytes)`, {
        code: 'JSON_INVALID',
        source,
        message: 'request body is not valid JSON',
      });
    }
    if (isObject(value) && 'action' in value) {
      if (value.action === 'sweep' && Object.keys(value).length === 1) return this.sweep(settings);
      if (value.action === 'collect' && Object.keys(value).length === 1) return this.collect(settings);
      if (value.action === 'sync' && Object.keys(value).length === 1) return this.sync(settings);
      if (value.action === 'report') return this.report(settings, value);
      return this.refuse(
        settings,
        'USAGE',
        400,
        'unknown control message: send {"action":"sweep"}, {"action":"collect"}, {"action":"sync"} or {"action":"report",...}',
        undefined,
        CONTROL_ACTIONS.find((a) => a === value.action),
      );
    }
    return this.ingest(body, source, settings);
  }

  private async ingest(body: Buffer, source: string, settings: Settings): Promise<InvocationSummary> {
    this.checkDeadline(0, 'batch');
    return this.scoped(settings, 'batch', async () => {
      const { pipeline } = await this.pipeline(settings);
      const decoded = await decodeBatch(body, source, {
        resolveDbSystem: settings.resolveDbSystem,
        lateness: settings.config.lateness,
      });
      this.checkDeadline(decoded.length, 'batch');
      // A Connector Hub outage longer than its source keeps data: see shared/sources/delivery-gap.ts.
      const { items, mark, gap } = checkAuditDelivery({
        items: decoded,
        previous: pipeline.position<DeliveryMark>(AUDIT_DELIVERY_POSITION),
        now: this.now(),
        backfill: (from, to) => this.backfillCommand(settings, decoded, from, to),
      });
      const summary = await this.withPipeline(pipeline, 'ingest', async () => {
        const started = this.now();
        const alerts = await pipeline.ingest(items, mark && { [AUDIT_DELIVERY_POSITION]: mark });
        this.learn(this.now() - started, items.length);
        return alerts;
      });
      return gap ? { ...summary, deliveryGap: { from: gap.from, to: gap.to! } } : summary;
    });
  }

  /** The `backfill` command that reads a range of OCI audit events into this function's state. */
  private backfillCommand(settings: Settings, items: DecodedItem[], from: string, to: string): string {
    // Records of other services (ignored) name the tenancy too: a batch may hold nothing else.
    const tenants = items.flatMap((i) => auditField(i, 'tenantId') ?? []);
    const { env } = settings;
    return backfillCommand({
      from,
      to,
      compartment: settings.config.tenancy ?? tenants[0] ?? '<tenancy OCID>',
      config: env.config.kind === 'file' ? env.config.path : '<HWAUDIT_CONFIG saved as a file>',
      state: displayStoreSpec(env.state.spec),
      scope: env.scope,
    });
  }

  /**
   * Runs `work` holding the scope lock when the store is shared (see top): taken before the
   * pipeline is re-opened, released once `work` (its commit and the sinks' delivery) is done or
   * failed. The wait counts against Fn-Deadline: it ends at the deadline minus the margin.
   */
  private async scoped<T>(settings: Settings, what: Work, work: () => Promise<T>): Promise<T> {
    if (!settings.reload) return work();
    const store = await this.store(settings);
    const timeoutMs =
      this.deadline === undefined
        ? DEFAULT_LOCK_WAIT_MS
        : Math.max(0, this.deadline - settings.env.deadlineMarginMs - this.now());
    const started = this.now();
    const lock = await store.lockScope({ timeoutMs });
    this.lockMs = this.now() - started;
    try {
      // The wait may have used the time the work needed: nothing is loaded or written yet.
      this.checkDeadline(0, what);
      return await work();
    } finally {
      await lock.release();
    }
  }

  /** Advances the watermark to now minus the lateness, so timers fire while sources are quiet. */
  private async sweep(settings: Settings): Promise<InvocationSummary> {
    this.checkDeadline(0, 'sweep');
    return this.scoped(settings, 'sweep', async () => {
      const { pipeline } = await this.pipeline(settings);
      const now = this.now();
      const target = Math.max(pipeline.watermark ?? Number.NEGATIVE_INFINITY, now - settings.config.lateness);
      // The function works: a long quiet _Audit is no delivery outage.
      const mark = sweptMark(pipeline.position<DeliveryMark>(AUDIT_DELIVERY_POSITION), now);
      return this.withPipeline(pipeline, 'sweep', () =>
        pipeline.advance(target, mark && { [AUDIT_DELIVERY_POSITION]: mark }),
      );
    });
  }

  /**
   * Reads the configured DB system instances' audit logs (shared/sources/collector.ts) until they
   * are read to the end or Fn-Deadline minus the margin and a reserve for the last commit and the
   * sinks draws near; what was read is committed, the rest is read by the next call.
   */
  private async collect(settings: Settings): Promise<InvocationSummary> {
    this.checkDeadline(0, 'collect');
    return this.scoped(settings, 'collect', async () => {
      const { pipeline, store } = await this.pipeline(settings);
      const targets = instanceTargets(await withDiscoveredFleet(settings.config, store));
      // A scheduled collect with nothing to read fails, so that the schedule's failures show it.
      if (targets.length === 0) throw new AuditError('CONFIG_INVALID', `collect: ${NO_ENDPOINTS}`);
      const now = this.now();
      const budget =
        this.deadline === undefined
          ? DEFAULT_COLLECT_MS
          : Math.max(0, this.deadline - settings.env.deadlineMarginMs - now) * COLLECT_SHARE;
      const forward = await this.collectForwarder(settings.env);
      let instances: InvocationSummary['instances'] = [];
      const summary = await this.withPipeline(pipeline, 'collect', async () => {
        const result = await collect({
          pipeline,
          targets,
          connect: (t) => connectInstance(t, this.secrets(settings.env), this.iamLogin(settings.env)),
          deadline: now + budget,
          now: this.now,
          ...(forward ? { forward } : {}),
        });
        instances = result.instances.map((r) => ({
          dbSystem: r.dbSystem.name,
          instance: r.instance,
          records: r.records,
          caughtUp: r.caughtUp,
          gaps: r.gaps,
          ...(r.error ? { error: r.error } : {}),
        }));
        return result.alerts;
      });
      return { ...summary, instances };
    });
  }

  /**
   * Discovers the fleet into a snapshot and brings the pipeline up to it (shared/sync): within
   * Fn-Deadline minus the margin and a reserve for the commit, else nothing is stored (DEADLINE)
   * and the schedule's next call tries again; the previous snapshot stays in use meanwhile.
   */
  private async sync(settings: Settings): Promise<InvocationSummary> {
    this.checkDeadline(0, 'sync');
    return this.scoped(settings, 'sync', async () => {
      const { pipeline, store } = await this.pipeline(settings);
      const budget =
        this.deadline === undefined
          ? undefined
          : Math.floor(
              Math.max(0, this.deadline - settings.env.deadlineMarginMs - this.now()) * COLLECT_SHARE,
            );
      const auth = lazyOciAuth(settings.env.ociAuth);
      let sync: InvocationSummary['sync'];
      const summary = await this.withPipeline(pipeline, 'sync', async () => {
        const result = await syncState({
          config: settings.config,
          store,
          pipeline,
          clients: async () => ociSyncClients(await auth(), this.env),
          connect: (t) => connectInstance(t, this.secrets(settings.env), this.iamLogin(settings.env)),
          now: this.now,
          ...(budget === undefined ? {} : { signal: AbortSignal.timeout(budget) }),
        });
        const warnings = Object.entries(result.snapshot.parts)
          .flatMap(([part, p]) => (p.warning === undefined ? [] : [`${part}: ${p.warning}`]))
          .sort();
        sync = {
          snapshot: result.snapshot.id,
          failed: result.failed.map((f) => f.part),
          ...(warnings.length > 0 ? { warnings } : {}),
          requests: Object.values(result.snapshot.requests.oci).reduce((a, b) => a + b, 0),
        };
        return result.alerts;
      });
      return { ...summary, ...(sync ? { sync } : {}) };
    });
  }

  /**
   * Renders the reports of the period that just ended into Object Storage and publishes one
   * message naming them (shared/report/publish-reports.ts). Reads only: no scope lock. A retry
   * overwrites the same objects and publishes nothing more.
   */
  private async report(settings: Settings, body: Record<string, unknown>): Promise<InvocationSummary> {
    const parsed = ReportActionSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const at = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      const message = `report action: ${at}${issue.message}`.slice(0, 300);
      return this.refuse(settings, 'USAGE', 400, message, undefined, 'report');
    }
    const { bucket, prefix, topicId } = settings.env.report;
    if (bucket === undefined)
      throw new AuditError('CONFIG_INVALID', 'HWAUDIT_REPORT_BUCKET: required by {"action":"report"}');
    this.checkDeadline(0, 'report');
    const auth = lazyOciAuth(settings.env.ociAuth);
    const client = await (this.ociClients.objectStorage?.() ??
      createOciClient('objectstorage', { auth: await auth(), env: this.env }));
    const notifications =
      topicId === undefined
        ? undefined
        : await (this.ociClients.notifications?.() ??
            createOciClient('notifications', { auth: await auth(), env: this.env }));
    const result = await publishReports(parsed.data, {
      store: await this.store(settings),
      writer: new ObjectStorageWriter({ client, bucket, retry: this.retryPolicy('report-objects') }),
      ...(notifications && topicId
        ? {
            publish: async (title: string, messageBody: string) =>
              void (await callWithRetry(
                'ons.publishMessage',
                () => notifications.publishMessage({ topicId, messageDetails: { title, body: messageBody } }),
                this.retryPolicy('report-message'),
              )),
          }
        : {}),
      prefix,
      bucket,
      now: this.now(),
    });
    return { ...emptySummary('report', await this.currentWatermark()), report: result };
  }

  /** Collector passwords from the environment or OCI Vault (cached per container). */
  private secrets(env: FunctionEnv): SecretReader {
    this.secretReader ??= secretReader(this.env, async () => {
      if (this.ociClients.vault) return this.ociClients.vault();
      return vaultSecretFetcher({ auth: await ociAuthProvider(env.ociAuth), env: this.env });
    });
    return this.secretReader;
  }

  /** IAM logins (`collector.auth: iam`) as the HWAUDIT_OCI_AUTH principal (one per container). */
  private iamLogin(env: FunctionEnv): IamLogin {
    this.iam ??= iamLogin(env.ociAuth, {
      env: this.env,
      now: this.now,
      onWarning: (warning) => this.log({ level: 'warn', msg: 'iam login', warning }),
    });
    return this.iam;
  }

  /** HWAUDIT_COLLECT_STREAM_ID: the records read go to that stream before they are committed. */
  private async collectForwarder(
    env: FunctionEnv,
  ): Promise<((records: Record<string, unknown>[]) => Promise<void>) | undefined> {
    if (env.collectStreamId === undefined) return undefined;
    this.collectWriter ??= (async () => {
      const client = await (this.ociClients.streaming?.() ??
        createOciClient('streaming', { auth: await ociAuthProvider(env.ociAuth), env: this.env }));
      return new StreamWriter(client, env.collectStreamId!, 'collect-stream', {
        retry: this.retryPolicy('collect-stream'),
      });
    })();
    const writer = await this.collectWriter;
    return async (records) => {
      const messages = records.map((r) => ({ key: String(r.dbSystemId ?? ''), value: JSON.stringify(r) }));
      const fit = messages.filter((m) => writer.fits(m));
      if (fit.length < messages.length)
        this.log({
          level: 'warn',
          msg: 'collect stream',
          skipped: messages.length - fit.length,
          reason: 'record larger than one stream message',
        });
      await writer.put(fit, 'collector record(s)');
    };
  }

  /**
   * Refuses a body, summarised as the `action` it asked for; records a dead letter for it when it
   * held records, so it is counted in the store.
   */
  private async refuse(
    settings: Settings,
    code: ErrorCode,
    status: 400 | 413,
    message: string,
    dead?: DeadLetter,
    action: InvocationSummary['action'] = 'ingest',
  ): Promise<InvocationSummary> {
    const error = { code, status, message };
    if (dead === undefined) return { ...emptySummary(action, await this.currentWatermark()), error };
    this.checkDeadline(1, 'batch');
    return this.scoped(settings, 'batch', async () => {
      const { pipeline } = await this.pipeline(settings);
      const items: DecodedItem[] = [{ type: 'dead', dead }];
      return { ...(await this.withPipeline(pipeline, 'ingest', () => pipeline.ingest(items))), error };
    });
  }

  private async currentWatermark(): Promise<string | null> {
    try {
      const wm = (await this.open)?.pipeline.watermark;
      return wm === undefined ? null : toIso(wm);
    } catch {
      return null;
    }
  }

  /** Runs one pipeline step; any failure drops the pipeline, whose memory may no longer match the store. */
  private async withPipeline(
    pipeline: Pipeline,
    action: InvocationSummary['action'],
    step: () => Promise<Alert[]>,
  ): Promise<InvocationSummary> {
    // A copy of the counters: the pipeline updates its stats object in place.
    const before = recordCounts(pipeline.stats);
    let alerts: Alert[];
    try {
      alerts = await step();
      // An output that failed while the pipeline opened fails the invocation, even one whose step
      // made no call (a collect that read nothing): the caller's retry sends it what it missed.
      await pipeline.settle();
    } catch (error) {
      await this.drop();
      throw error;
    }
    const wm = pipeline.watermark;
    const resolutions = alerts.filter((a) => a.status === 'resolved').length;
    return {
      action,
      ...addCountsSince(recordCounts(emptyStats()), before, pipeline.stats),
      alerts: alerts.filter((a) => a.status === 'open').length,
      ...(resolutions > 0 ? { resolutions } : {}),
      watermark: wm === undefined ? null : toIso(wm),
    };
  }

  private async loadSettings(): Promise<Settings> {
    if (this.settings !== undefined) return this.settings;
    // Where the configuration is, first; then every variable, knowing the ones it names.
    const location = readFunctionEnv(this.env, new Set(Object.keys(this.env))).config;
    const { config, rules } =
      location.kind === 'inline'
        ? parseConfigText(location.text, 'HWAUDIT_CONFIG')
        : await loadConfigFile(location.path);
    const env = readFunctionEnv(this.env, secretVariables(config));
    const db = defaultDbSystem(config, env.dbSystem);
    // Only a valid configuration is kept: after a failure the next call reads it again.
    this.settings = { env, config, rules, resolveDbSystem: () => db, reload: env.state.kind === 'mysql' };
    return this.settings;
  }

  /**
   * The pipeline for this invocation. Kept between invocations on a store private to the
   * container; re-opened once per invocation on a shared store, where other containers commit to
   * the same scope in between and the cached state (seen and pending keys, entities, the
   * watermark) would be stale.
   */
  private pipeline(settings: Settings): Promise<OpenPipeline> {
    if (this.open !== undefined && settings.reload && this.openSeq !== this.seq) this.open = undefined;
    if (this.open === undefined) {
      const opening = this.openPipeline(settings);
      this.open = opening;
      this.openSeq = this.seq;
      opening.catch(() => {
        if (this.open === opening) this.open = undefined;
      });
    }
    return this.open;
  }

  private async openPipeline(settings: Settings): Promise<OpenPipeline> {
    const started = this.now();
    try {
      const store = await this.store(settings);
      const sinks = await this.sinks(settings);
      // Loads the scope's state and re-sends what a sink has not received (after a failure).
      const pipeline = await Pipeline.open({
        config: settings.config,
        rules: settings.rules,
        store,
        sinks,
      });
      this.openMs = this.now() - started;
      return { pipeline, store };
    } catch (error) {
      await this.closeStore();
      throw error;
    }
  }

  /** The state store, opened once per container (and again after a failure). */
  private store(settings: Settings): Promise<StateStore> {
    if (this.storeOpen === undefined) {
      const opening = (async () => {
        const store = await this.openStore(settings.env.state.spec, {
          scope: settings.env.scope,
          env: this.env as NodeJS.ProcessEnv,
          // E.g. a password in the URL; the text never holds the URL itself.
          onWarning: (warning) => this.log({ level: 'warn', msg: 'state store', warning }),
        });
        this.currentStore = store;
        return store;
      })();
      this.storeOpen = opening;
      opening.catch(() => {
        if (this.storeOpen === opening) this.storeOpen = undefined;
      });
    }
    return this.storeOpen;
  }

  /** The alert sinks, built once per container: OCI clients are created (and the SDK loaded) here. */
  private sinks(settings: Settings): Promise<AlertSink[]> {
    if (this.sinkSet === undefined) {
      const building = this.buildSinks(settings.env, settings.config);
      this.sinkSet = building;
      building.catch(() => {
        if (this.sinkSet === building) this.sinkSet = undefined;
      });
    }
    return this.sinkSet;
  }

  /**
   * The default outputs (stdout or the alerts file, the HWAUDIT_* stream, bucket and topic), then
   * the configuration's routes. Full records on the alert stream and bucket are indexed for the
   * routes' digests.
   */
  private async buildSinks(env: FunctionEnv, config: Config): Promise<AlertSink[]> {
    const format = (alert: Alert) => formatAlert(env.alertFormat, alert);
    // Named 'jsonl' whatever the format or destination: switching either does not re-send history.
    const sinks: AlertSink[] = [
      env.alertsFile === undefined
        ? new JsonlSink(this.stdout, 'jsonl', format)
        : await FileSink.open(env.alertsFile, 'jsonl', format),
    ];
    const clients = routeClients(lazyOciAuth(env.ociAuth), this.env, this.ociClients);
    const index = new RecordIndex();
    const topic = env.notificationsTopicId;
    const digestRate: [string, number][] = topic === undefined ? [] : [[topic, env.notificationsPerMinute]];
    // The digests and the routes on one topic keep to one rate together.
    const rates = new TopicRates([...routeTopicRates(config), ...digestRate], this.now);
    if (env.alertStreamId !== undefined) {
      const name = 'oci-stream';
      sinks.push(
        new StreamSink({
          client: await clients.streaming(),
          streamId: env.alertStreamId,
          name,
          format,
          retry: this.retryPolicy(name),
          located: index.onStream(env.alertStreamId),
        }),
      );
    }
    if (env.alertBucket !== undefined) {
      const { name: bucket, formats, prefix } = env.alertBucket;
      const writer = new ObjectStorageWriter({
        client: await clients.objectStorage(),
        bucket,
        retry: this.retryPolicy('oci-object-storage'),
      });
      const located = index.onObject(bucket);
      for (const f of formats) sinks.push(new ObjectStorageSink({ writer, format: f, prefix, located }));
    }
    if (topic !== undefined) {
      const name = 'oci-notifications';
      const digests = new NotificationsSink({
        client: await clients.notifications(),
        topicId: topic,
        name,
        bucket: rates.bucket(topic),
        now: this.now,
        retry: this.retryPolicy(name),
        sleep: (ms) => this.sleepWithin(ms, name, 'budget'),
      });
      sinks.push(
        new PublishedDigests(digests, (ids) =>
          this.currentStore ? this.currentStore.markDelivered(name, ids) : Promise.resolve(),
        ),
      );
    }
    const routes = await openRoutes(config, {
      clients,
      retry: (name) => this.retryPolicy(name),
      sleep: (ms, name) => this.sleepWithin(ms, name, 'budget'),
      now: this.now,
      index,
      rates,
    });
    return [...sinks, ...routes.sinks];
  }

  /** The OCI retry policy of a sink, whose backoff waits stop at Fn-Deadline like the rate budget's. */
  private retryPolicy(sink: string): RetryPolicy {
    const sleep = this.ociRetry.sleep;
    return { ...this.ociRetry, sleep: (ms) => this.sleepWithin(ms, sink, 'retry', sleep) };
  }

  /**
   * A wait inside a sink (rate budget, retry backoff), refused when it would run past Fn-Deadline
   * minus the margin: the invocation then fails cleanly (SINK_FAILED) instead of being cut off,
   * and the retry delivers what is missing.
   */
  private async sleepWithin(
    ms: number,
    sink: string,
    why: 'budget' | 'retry',
    sleep: (ms: number) => Promise<void> = sleepMs,
  ): Promise<void> {
    const margin = this.settings?.env.deadlineMarginMs ?? 0;
    if (this.deadline !== undefined && this.now() + ms > this.deadline - margin) {
      const wait =
        why === 'budget'
          ? `the digest rate budget (HWAUDIT_NOTIFICATIONS_PER_MINUTE) needs a ${ms} ms wait`
          : `a ${ms} ms retry backoff`;
      throw new AuditError(
        'SINK_FAILED',
        `${sink}: ${wait} that would pass Fn-Deadline; the next call delivers the rest`,
        { details: { sink, waitMs: ms } },
      );
    }
    await sleep(ms);
  }

  /** Forgets the pipeline and closes the store, so that the next call re-opens both. */
  private async drop(): Promise<void> {
    this.open = undefined;
    await this.closeStore();
  }

  private async closeStore(): Promise<void> {
    const open = this.storeOpen;
    this.storeOpen = undefined;
    this.currentStore = undefined;
    if (open === undefined) return;
    try {
      await (await open).close();
    } catch {
      // The store is being abandoned because it failed; closing it is best effort.
    }
  }

  /** Refuses to start what cannot finish before Fn-Deadline minus the margin; nothing is written yet. */
  private checkDeadline(items: number, what: Work): void {
    const deadline = this.deadline;
    if (deadline === undefined) return;
    const margin = this.settings?.env.deadlineMarginMs ?? 0;
    const left = deadline - this.now();
    const needed = margin + Math.ceil(items * this.msPerItem);
    if (left >= needed) return;
    const remains =
      what === 'batch'
        ? `${items > 0 ? `${items} records were` : 'the batch was'} not ingested`
        : NOT_DONE[what];
    throw new FunctionError(
      'DEADLINE',
      `${remains}: ${Math.max(0, left)} ms left before Fn-Deadline, about ${needed} ms needed (HWAUDIT_DEADLINE_MARGIN_MS=${margin}); no state was written, redeliver to process it`,
    );
  }

  private learn(ms: number, items: number): void {
    if (items < LEARN_MIN_ITEMS) return;
    this.msPerItem = 0.7 * this.msPerItem + 0.3 * (ms / items);
  }

  private log(entry: Record<string, unknown>): void {
    this.stderr.write(`${JSON.stringify({ time: toIso(this.now()), ...entry })}\n`);
  }
}

const SEVERITY_RANK = new Map<string, number>(SEVERITIES.map((s, i) => [s, i]));

/**
 * Notifications digests published before `send` resolves, so that the pipeline records as
 * delivered only what reached the topic, and nothing is left queued in a container that is about
 * to be frozen. One rule/severity group at a time, most severe first, each recorded as delivered
 * once published: a retry after a failure (or a rate budget that ran out before Fn-Deadline)
 * goes on with the groups not yet published instead of starting over. After a failure the sink
 * keeps none of them: the store hands them again, and another container may send them first.
 */
class PublishedDigests implements AlertSink {
  readonly name: string;

  constructor(
    private readonly digests: NotificationsSink,
    private readonly published: (ids: string[]) => Promise<void>,
  ) {
    this.name = digests.name;
  }

  async send(alerts: Alert[]): Promise<void> {
    const groups = new Map<string, Alert[]>();
    for (const a of alerts) {
      const key = `${a.rule}\u0000${a.severity}`;
      const group = groups.get(key);
      if (group) group.push(a);
      else groups.set(key, [a]);
    }
    const ordered = [...groups.values()].sort(
      (a, b) => (SEVERITY_RANK.get(b[0]!.severity) ?? 0) - (SEVERITY_RANK.get(a[0]!.severity) ?? 0),
    );
    try {
      for (const group of ordered) {
        await this.digests.send(group);
        await this.digests.flush();
        if (ordered.length > 1) await this.published(group.map(recordKey));
      }
    } catch (error) {
      this.digests.forget();
      throw error;
    }
  }
}

/**
 * The DB system of raw MySQL audit events (collector records name their own): HWAUDIT_DB_SYSTEM
 * (a configured id or name, or any DB system OCID), else the only configured DB system.
 */
function defaultDbSystem(config: Config, wanted: string | undefined): DbRef | undefined {
  if (wanted === undefined) {
    const only = config.dbSystems.length === 1 ? config.dbSystems[0]! : undefined;
    return only ? { id: only.id, name: only.name } : undefined;
  }
  const match = config.dbSystems.find((d) => d.id === wanted || d.name === wanted);
  if (match) return { id: match.id, name: match.name };
  if (wanted.startsWith('ocid1.mysqldbsystem.')) return { id: wanted };
  throw new AuditError(
    'CONFIG_INVALID',
    'HWAUDIT_DB_SYSTEM: neither a DB system OCID nor the name of a configured DB system',
    {
      details: { variable: 'HWAUDIT_DB_SYSTEM' },
    },
  );
}

function emptySummary(action: InvocationSummary['action'], watermark: string | null): InvocationSummary {
  return { action, ...recordCounts(emptyStats()), alerts: 0, watermark };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function sqliteCode(error: unknown): string | undefined {
  const code = errorCode(error);
  return code?.startsWith('SQLITE_') ? code : undefined;
}

const RETRY_HINT = 'the pipeline was dropped and the next call re-opens the store';
/** StateStore.lockScope's timeout: nothing failed, another invocation of the scope is running. */
const BUSY_HINT = 'another invocation of this scope holds its lock; retry later';

/** A log-safe error for the FDK: codes, AuditError messages (log-safe by contract) and details only. */
export function toFunctionError(error: unknown): FunctionError {
  if (error instanceof FunctionError) return error;
  if (error instanceof AuditError) {
    const code =
      sqliteCode(error.cause) ?? (error.code === 'SINK_FAILED' ? undefined : errorCode(error.cause));
    // Messages that name their cause's code (shared/errors.ts errnoSuffix) do not name it twice.
    const cause = code !== undefined && error.headline.endsWith(`(${code})`) ? undefined : code;
    // CONFIG_INVALID messages already name the variable or key path.
    const details = Object.entries(error.code === 'CONFIG_INVALID' ? {} : error.details)
      .filter(([k]) => !(k === 'code' && cause !== undefined))
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
    const extra = [cause, ...details].filter((x) => x !== undefined);
    const busy = error.code === 'STORE_FAILED' && error.message === 'scope is busy';
    const hint = busy
      ? `; ${BUSY_HINT}`
      : error.code === 'STORE_FAILED' || error.code === 'SINK_FAILED'
        ? `; ${RETRY_HINT}`
        : '';
    return new FunctionError(
      error.code,
      `${error.headline}${extra.length > 0 ? ` (${extra.join('; ')})` : ''}${hint}`,
      error.problems,
    );
  }
  const sqlite = sqliteCode(error);
  if (sqlite !== undefined)
    return new FunctionError('STORE_FAILED', `state store operation failed (${sqlite}); ${RETRY_HINT}`);
  const name = error instanceof Error ? error.name : typeof error;
  return new FunctionError('INTERNAL', `unexpected ${name}; the function log has the stack`);
}

function stackFrames(error: unknown): string[] {
  const stack = error instanceof Error ? error.stack : undefined;
  if (stack === undefined) return [];
  return stack
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .slice(0, 12)
    .map((line) => line.trim());
}
