// A route as a sink: its rules decide (route-rules.ts), its output delivers. Route sinks record
// their own deliveries record by record (`acknowledges`), so that what one could not send yet (a
// digest not due, a message over the topic's rate) stays in the store, undelivered, and is sent
// by this process or the next, never dropped; and what was sent is never sent again.
import { type Alert, recordKey, recordTime } from '../../schemas/alert.js';
import type { RouteConfig } from '../../schemas/config.js';
import type { DigestMessage } from '../emit/notifications-sink.js';
import type { AlertSink, SendContext, SinkState } from '../emit/sink.js';
import { alertMessage, digestMessage, type Locate } from './digest.js';
import type { RouteRules } from './route-rules.js';

/** What a route did, for summaries. */
export type RouteStats = {
  /** Records the route delivered (alone, or in a digest). */
  delivered: number;
  /** Records the route matched but muted (maintenance, repeats). */
  muted: number;
  resolutions: number;
  /** Notifications messages: one per alert, digests, batches over the rate. */
  messages: number;
  digests: number;
  overflow: number;
};

/** Record outputs (stream, bucket, file): every record given is delivered, or `send` throws. */
export type RecordOutput = {
  readonly describe: string;
  send(records: Alert[]): Promise<void>;
  close?(): Promise<void>;
};

/** A Notifications topic under its rate: `free()` messages can go now, `publish` waits for the budget. */
export type TopicOutput = {
  readonly describe: string;
  readonly maxBytes: number;
  free(): number;
  publish(message: DigestMessage): Promise<void>;
};

/**
 * Recorded as received by a route the first time it runs on a store (by any process or scope):
 * a route added to a store with history begins with the alerts raised from then on.
 */
const STARTED = '\u0000route started';

export abstract class RouteSink implements AlertSink {
  readonly name: string;
  readonly acknowledges = true;
  readonly stats: RouteStats = {
    delivered: 0,
    muted: 0,
    resolutions: 0,
    messages: 0,
    digests: 0,
    overflow: 0,
  };

  /** Whether this process checked that the route has run on the store before. */
  private known = false;

  constructor(protected readonly rules: RouteRules) {
    this.name = `route:${rules.route.name}`;
  }

  get route(): RouteConfig {
    return this.rules.route;
  }

  /** Where the route delivers, for people. */
  abstract get describe(): string;

  stage(records: Alert[], state: SinkState): void {
    this.rules.stage(records, state);
  }

  async send(records: Alert[], ctx: SendContext): Promise<void> {
    if (!this.known) {
      const started = (await ctx.received([STARTED])).size > 0;
      if (!started) {
        // New to this store: what it holds was raised before the route existed.
        if (ctx.backlog) await ctx.delivered(records.map(recordKey));
        await ctx.delivered([STARTED]);
      }
      this.known = true;
      if (!started && ctx.backlog) return;
    }
    const quiet: string[] = [];
    const taken: { record: Alert; muted: boolean }[] = [];
    for (const r of records) {
      const d = this.rules.decide(r);
      if (d === 'skip') quiet.push(recordKey(r));
      else taken.push({ record: r, muted: d === 'muted' });
    }
    await ctx.delivered(quiet);
    await this.deliver(taken, ctx);
  }

  protected abstract deliver(records: { record: Alert; muted: boolean }[], ctx: SendContext): Promise<void>;

  protected count(records: readonly { record: Alert; muted: boolean }[]): void {
    for (const { record, muted } of records) {
      if (muted) this.stats.muted++;
      else this.stats.delivered++;
      if (record.status === 'resolved' && !muted) this.stats.resolutions++;
    }
  }

  async close(): Promise<void> {}
}

/** Records to a stream, a bucket or a file, as they come; muted ones are not written. */
export class RecordRoute extends RouteSink {
  constructor(
    rules: RouteRules,
    private readonly output: RecordOutput,
  ) {
    super(rules);
  }

  get describe(): string {
    return this.output.describe;
  }

  protected async deliver(records: { record: Alert; muted: boolean }[], ctx: SendContext): Promise<void> {
    await this.output.send(records.filter((r) => !r.muted).map((r) => r.record));
    await ctx.delivered(records.map((r) => recordKey(r.record)));
    this.count(records);
  }

  override async close(): Promise<void> {
    await this.output.close?.();
  }
}

/**
 * Notifications: `immediate` sends one message per record while the topic's rate allows, and
 * batches the rest into one message when it does not; `digest` holds records until the
 * watermark passes the end of their period (event time) and sends one digest for all that are due.
 */
export class TopicRoute extends RouteSink {
  /** Records waiting for their digest, by record key (muted ones are counted in it). */
  private readonly waiting = new Map<string, { record: Alert; muted: boolean }>();

  constructor(
    rules: RouteRules,
    private readonly topic: TopicOutput,
    private readonly locate: Locate,
  ) {
    super(rules);
  }

  get describe(): string {
    return this.topic.describe;
  }

  /** Records held for a digest not yet due. */
  get pending(): number {
    return this.waiting.size;
  }

  protected async deliver(records: { record: Alert; muted: boolean }[], ctx: SendContext): Promise<void> {
    const delivery = this.route.delivery;
    if (delivery === 'immediate') {
      const muted = records.filter((r) => r.muted);
      await ctx.delivered(muted.map((r) => recordKey(r.record)));
      this.count(muted);
      return this.immediate(
        records.filter((r) => !r.muted),
        ctx,
      );
    }
    for (const r of records) this.waiting.set(recordKey(r.record), r);
    const end =
      ctx.watermark === undefined ? undefined : Math.floor(ctx.watermark / delivery.digest) * delivery.digest;
    const due = [...this.waiting.values()].filter(
      (r) => ctx.final || (end !== undefined && Date.parse(recordTime(r.record)) < end),
    );
    if (due.length === 0) return;
    // Another process on the store (a function container) may have sent them since they came here.
    const sent = await ctx.received(due.map((r) => recordKey(r.record)));
    for (const key of sent) this.waiting.delete(key);
    // And one that took them over (this process stalled past their claims) sends them itself.
    const left = due.filter((r) => !sent.has(recordKey(r.record)));
    const mine = await ctx.claimed?.(left.map((r) => recordKey(r.record)));
    for (const r of left)
      if (mine?.has(recordKey(r.record)) === false) this.waiting.delete(recordKey(r.record));
    await this.batches(
      left.filter((r) => mine?.has(recordKey(r.record)) !== false),
      'digest',
      ctx,
    );
  }

  /** One message per record while the budget lasts; beyond it, one batch for the rest. */
  private async immediate(records: { record: Alert; muted: boolean }[], ctx: SendContext): Promise<void> {
    const queue = [...records];
    while (queue.length > 0) {
      if (queue.length > 1 && queue.length > this.topic.free()) {
        // Over the rate: keep one message of the budget for a batch of everything left.
        if (this.topic.free() > 1) await this.single(queue.shift()!, ctx);
        else await this.batches(queue.splice(0), 'overflow', ctx);
        continue;
      }
      await this.single(queue.shift()!, ctx);
    }
  }

  private async single(r: { record: Alert; muted: boolean }, ctx: SendContext): Promise<void> {
    await this.topic.publish(alertMessage(this.route.name, r.record, this.locate));
    this.stats.messages++;
    await ctx.delivered([recordKey(r.record)]);
    this.count([r]);
  }

  /** Digests of `records` until each is listed or counted in one (a digest holds what fits). */
  private async batches(
    records: { record: Alert; muted: boolean }[],
    kind: 'digest' | 'overflow',
    ctx: SendContext,
  ): Promise<void> {
    let left = records;
    while (left.length > 0) {
      const message = digestMessage({
        route: this.route.name,
        records: left,
        kind,
        locate: this.locate,
        maxBytes: this.topic.maxBytes,
      });
      await this.topic.publish(message);
      this.stats.messages++;
      if (kind === 'digest') this.stats.digests++;
      else this.stats.overflow++;
      const covered = new Set(message.covered);
      const done = left.filter((r) => covered.has(recordKey(r.record)));
      for (const r of done) this.waiting.delete(recordKey(r.record));
      await ctx.delivered(done.map((r) => recordKey(r.record)));
      this.count(done);
      left = left.filter((r) => !covered.has(recordKey(r.record)));
    }
  }
}
