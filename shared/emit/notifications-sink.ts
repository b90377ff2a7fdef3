// Alert digests to an OCI Notifications topic. Notifications is for people (e-mail, Slack, PagerDuty
// via HTTPS), limited to 64 KB per message and ~60 messages per minute per topic, so alerts are never sent one by one: they are grouped by rule and severity into
// digests (counts, the top items with person / MySQL account / DB system, and every alert id);
// the full alert goes to the stream. A token bucket keeps the topic under its rate; alerts that
// arrive while the budget is spent are merged into the pending digest of their group, never
// dropped. `flush()` / `close()` wait for budget and publish everything pending.
//
// Delivery note: `send` resolves once the alerts are queued in a digest, so the pipeline may mark
// them delivered before a budget-delayed digest is published; a process that dies before
// `close()` loses that digest (not the alerts: they are in the store and on the stream).
import type { NotificationDataPlaneClient } from 'oci-ons';
import { type Alert, recordKey, recordTime, SEVERITIES, type Severity } from '../../schemas/alert.js';
import { AuditError } from '../errors.js';
import { callWithRetry, DEFAULT_RETRY, type RetryPolicy, sleepMs } from '../oci/clients.js';
import { cutAt } from '../text.js';
import type { AlertSink } from './sink.js';

/** ONS: 64 KB per PublishMessage request. */
export const ONS_MAX_REQUEST_BYTES = 64 * 1024;
export const ONS_MAX_TITLE_CHARS = 255;
export const ONS_MESSAGES_PER_MINUTE = 60;

export type NotificationPublisher = Pick<NotificationDataPlaneClient, 'publishMessage'>;

export interface NotificationsSinkOptions {
  client: NotificationPublisher;
  topicId: string;
  name?: string;
  /** Messages per rolling minute the sink may publish (default 60). */
  perMinute?: number;
  /** Bucket capacity; refill is (perMinute - burst) per minute so no 60 s window exceeds perMinute. */
  burst?: number;
  /** The topic's bucket, shared with its other publishers (`TopicRates`); `perMinute` and `burst` are then unused. */
  bucket?: TokenBucket;
  /** Bytes of the request body `{"title":…,"body":…}` (default 64 KB minus a safety margin). */
  maxRequestBytes?: number;
  /** Alerts listed in detail per digest (the rest are counted and listed by id). */
  topItems?: number;
  /** Hold a group's digest this long after its first alert to gather more (default 0). */
  windowMs?: number;
  retry?: RetryPolicy;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface NotificationsSinkStats {
  published: number;
  alertsPublished: number;
  /** Digests split in parts because their id list did not fit one message. */
  splits: number;
  /** Times a send/flush found the budget spent and kept digests pending. */
  deferred: number;
}

interface Group {
  key: string;
  rule: string;
  severity: Severity;
  firstQueuedAt: number;
  alerts: Map<string, Alert>;
}

const SEVERITY_RANK: Record<Severity, number> = Object.fromEntries(
  SEVERITIES.map((s, i) => [s, i]),
) as Record<Severity, number>;

/** Token bucket on an injected clock. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly perMs: number;

  constructor(
    private readonly capacity: number,
    refillPerMinute: number,
    private readonly now: () => number,
  ) {
    this.tokens = capacity;
    this.last = now();
    this.perMs = refillPerMinute / 60_000;
  }

  private refill(): void {
    const t = this.now();
    if (t > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + (t - this.last) * this.perMs);
      this.last = t;
    }
  }

  tryTake(): boolean {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Whole tokens available now. */
  available(): number {
    this.refill();
    return Math.floor(this.tokens);
  }

  /** Milliseconds until one token is available (0 when one is). */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / this.perMs);
  }
}

/**
 * The bucket that keeps a topic under `perMinute`: capacity `burst` (default half), refilled at
 * perMinute - burst per minute, so that no 60 s window exceeds perMinute.
 */
export function rateBucket(
  perMinute: number,
  now: () => number,
  burst = Math.ceil(perMinute / 2),
): TokenBucket {
  const capacity = Math.min(burst, perMinute - 1);
  if (perMinute < 2 || capacity < 1) {
    throw new AuditError('CONFIG_INVALID', 'a Notifications rate needs perMinute >= 2 and burst >= 1', {
      details: { perMinute, burst },
    });
  }
  return new TokenBucket(capacity, perMinute - capacity, now);
}

/**
 * The rate buckets of the topics a process publishes to, one per topic, shared by all its
 * publishers (the function's digests, routes): the lowest rate any of them asks of a topic holds
 * for all of them together.
 */
export class TopicRates {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(rates: Iterable<readonly [topicId: string, perMinute: number]>, now: () => number) {
    const lowest = new Map<string, number>();
    for (const [topicId, perMinute] of rates)
      lowest.set(topicId, Math.min(perMinute, lowest.get(topicId) ?? perMinute));
    for (const [topicId, perMinute] of lowest) this.buckets.set(topicId, rateBucket(perMinute, now));
  }

  bucket(topicId: string): TokenBucket {
    const bucket = this.buckets.get(topicId);
    if (bucket === undefined)
      throw new AuditError('INTERNAL', 'a Notifications topic was not given a rate', {
        details: { topicId },
      });
    return bucket;
  }
}

export class NotificationsSink implements AlertSink {
  readonly name: string;
  readonly stats: NotificationsSinkStats = { published: 0, alertsPublished: 0, splits: 0, deferred: 0 };
  private readonly client: NotificationPublisher;
  private readonly topicId: string;
  private readonly maxBytes: number;
  private readonly topItems: number;
  private readonly windowMs: number;
  private readonly retry: RetryPolicy;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly bucket: TokenBucket;
  private readonly groups = new Map<string, Group>();
  private closed = false;

  constructor(opts: NotificationsSinkOptions) {
    this.client = opts.client;
    this.topicId = opts.topicId;
    this.name = opts.name ?? 'oci-notifications';
    this.maxBytes = opts.maxRequestBytes ?? ONS_MAX_REQUEST_BYTES - 1024;
    this.topItems = opts.topItems ?? 10;
    this.windowMs = opts.windowMs ?? 0;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? sleepMs;
    this.bucket = opts.bucket ?? rateBucket(opts.perMinute ?? ONS_MESSAGES_PER_MINUTE, this.now, opts.burst);
  }

  /** Alerts queued in digests not yet published. */
  pendingAlerts(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.alerts.size;
    return n;
  }

  async send(alerts: Alert[]): Promise<void> {
    if (this.closed)
      throw new AuditError('SINK_FAILED', `${this.name}: closed`, { details: { sink: this.name } });
    const t = this.now();
    for (const alert of alerts) {
      const key = `${alert.rule}\u0000${alert.severity}`;
      let group = this.groups.get(key);
      if (!group) {
        group = { key, rule: alert.rule, severity: alert.severity, firstQueuedAt: t, alerts: new Map() };
        this.groups.set(key, group);
      }
      // Keyed by record: a batch the pipeline re-sends after a failure merges instead of doubling,
      // and an alert and its resolution are two records.
      group.alerts.set(recordKey(alert), alert);
    }
    await this.publishReady(false);
  }

  /** Publishes every pending digest, waiting for rate budget as needed. */
  async flush(): Promise<void> {
    await this.publishReady(true);
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  /**
   * Forgets the digests not yet published, for a caller whose failed `send` leaves their alerts
   * undelivered in the store: the store hands them again, to this process or to another one
   * sharing it, and kept here too they would go out a second time.
   */
  forget(): void {
    this.groups.clear();
  }

  private async publishReady(wait: boolean): Promise<void> {
    // Bounded: each publish removes >= 1 alert; each wait refills >= 1 token on a moving clock.
    const limit = 3 * (this.pendingAlerts() + this.groups.size + 1);
    for (let i = 0; i < limit; i++) {
      const group = this.nextGroup(wait);
      if (!group) return;
      if (!this.bucket.tryTake()) {
        if (!wait) {
          this.stats.deferred += 1;
          return;
        }
        await this.sleep(this.bucket.waitMs() + 1);
        continue;
      }
      await this.publishPart(group);
    }
    if (wait && this.groups.size > 0) {
      throw new AuditError('SINK_FAILED', `${this.name}: rate budget did not refill while flushing`, {
        details: { sink: this.name, pending: this.pendingAlerts() },
      });
    }
  }

  /** The most severe, then oldest, group whose window has passed (all groups when flushing). */
  private nextGroup(all: boolean): Group | undefined {
    const t = this.now();
    let best: Group | undefined;
    for (const g of this.groups.values()) {
      if (!all && t - g.firstQueuedAt < this.windowMs) continue;
      if (
        !best ||
        SEVERITY_RANK[g.severity] > SEVERITY_RANK[best.severity] ||
        (g.severity === best.severity && g.firstQueuedAt < best.firstQueuedAt)
      ) {
        best = g;
      }
    }
    return best;
  }

  /** Publishes the largest part of the group that fits one message and removes it from the group. */
  private async publishPart(group: Group): Promise<void> {
    const all = [...group.alerts.values()].sort((a, b) => {
      const ta = recordTime(a);
      const tb = recordTime(b);
      return ta < tb ? -1 : ta > tb ? 1 : recordKey(a) < recordKey(b) ? -1 : 1;
    });
    const render = (n: number) =>
      renderDigest(group.rule, group.severity, all.slice(0, n), this.topItems, all.length);
    let take = all.length;
    let message = render(take);
    // Binary search for the largest prefix that fits: O(log n) renders.
    if (requestBytes(message) > this.maxBytes) {
      let lo = 1;
      let hi = all.length;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (requestBytes(render(mid)) <= this.maxBytes) lo = mid;
        else hi = mid - 1;
      }
      take = lo;
      message = render(take);
      this.stats.splits += 1;
      if (requestBytes(message) > this.maxBytes) {
        throw new AuditError('PAYLOAD_TOO_LARGE', `${this.name}: one alert does not fit a notification`, {
          details: { sink: this.name, alertId: all[0] ? recordKey(all[0]) : null },
        });
      }
    }
    await callWithRetry(
      'ons.publishMessage',
      () => this.client.publishMessage({ topicId: this.topicId, messageDetails: message }),
      this.retry,
      'SINK_FAILED',
    );
    for (const a of all.slice(0, take)) group.alerts.delete(recordKey(a));
    if (group.alerts.size === 0) this.groups.delete(group.key);
    this.stats.published += 1;
    this.stats.alertsPublished += take;
  }
}

export interface DigestMessage {
  title: string;
  body: string;
}

export function requestBytes(m: DigestMessage): number {
  return Buffer.byteLength(JSON.stringify(m), 'utf8');
}

/** Text for people: no control characters, bounded length (names and titles come from the audited side). */
export function clean(text: string, max = 160): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${cutAt(flat, max - 1)}…` : flat;
}

export function person(a: Alert): string {
  return clean(a.identity?.name ?? a.identity?.principalId ?? a.loginUser ?? 'unknown person', 80);
}

export function dbSystem(a: Alert): string {
  return a.dbSystem ? clean(a.dbSystem.name ?? a.dbSystem.id, 80) : '(no DB system)';
}

function topCounts(values: string[], n: number): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = sorted.slice(0, n).map(([k, c]) => `${k} (${c})`);
  if (sorted.length > n) shown.push(`+${sorted.length - n} more`);
  return shown.join(', ');
}

/** `3 alerts, 1 resolved`: the open alerts and the resolutions among `records`. */
export function recordCounts(records: readonly Alert[]): string {
  const resolved = records.filter((r) => r.status === 'resolved').length;
  const open = records.length - resolved;
  if (open === 0) return `${resolved} resolved`;
  return `${open} alert${open === 1 ? '' : 's'}${resolved ? `, ${resolved} resolved` : ''}`;
}

/** The line that says how a resolution record resolved its alert. */
export function resolutionLine(record: Alert): string | undefined {
  const r = record.resolution;
  return r ? `  RESOLVED (${r.reason}) at ${r.time}: ${clean(r.note, 300)}` : undefined;
}

/**
 * One digest message for `records` (a slice of a group of `groupSize`, in order of their event
 * time: an alert's, or a resolution's). A resolution says so, in the title when the slice holds
 * nothing else. The last line lists every record in the message (a resolution as
 * `<id>:resolved`), so each is accounted for in exactly one digest.
 */
export function renderDigest(
  rule: string,
  severity: Severity,
  records: Alert[],
  topItems: number,
  groupSize: number,
): DigestMessage {
  const n = records.length;
  const first = records[0] ? recordTime(records[0]) : '';
  const last = records[n - 1] ? recordTime(records[n - 1]!) : '';
  const part = n < groupSize ? ` (${n} of ${groupSize} queued)` : '';
  const what = recordCounts(records);
  const label = records.every((r) => r.status === 'resolved') ? 'RESOLVED' : severity.toUpperCase();
  const title = clean(`[${label}] ${rule}: ${what}${part}`, ONS_MAX_TITLE_CHARS);
  const newest = [...records].reverse().slice(0, topItems);
  const lines = [
    `heatwave-iam-audit digest: ${what} of rule ${clean(rule)}, severity ${severity}${part}`,
    `Event time: ${first}${last !== first ? ` .. ${last}` : ''}`,
    `DB systems: ${topCounts(records.map(dbSystem), 5)}`,
    `People: ${topCounts(records.map(person), 5)}`,
    `Newest ${newest.length} of ${n}:`,
    ...newest.flatMap((a) => {
      const account = a.mysqlAccount ? ` as ${clean(a.mysqlAccount, 80)}` : '';
      const resolution = resolutionLine(a);
      return [
        `- ${a.time} ${person(a)}${account} on ${dbSystem(a)}: ${clean(a.title)}`,
        ...(resolution ? [resolution] : []),
      ];
    }),
    'Full detail: the alert stream / SIEM, by alert id.',
    `Alert ids (${n}): ${records.map(recordKey).join(' ')}`,
  ];
  return { title, body: lines.join('\n') };
}
