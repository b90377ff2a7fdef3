// NotificationsSink against the local endpoint (real oci-ons client). The endpoint enforces the
// service limits (64 KB per request, 60 messages per minute per topic) on a simulated clock that
// the sink shares, so minutes of traffic run in milliseconds.
import * as common from 'oci-common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Alert, Severity } from '../../schemas/alert.js';
import {
  clean,
  NotificationsSink,
  type NotificationsSinkOptions,
  renderDigest,
  TokenBucket,
} from '../../shared/emit/notifications-sink.js';
import { createOciClient } from '../../shared/oci/clients.js';
import {
  maxInAnyMinute,
  type NotificationsService,
  notificationsService,
  type PublishedMessage,
} from '../oci-endpoint/notifications.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, type TestPrincipal } from '../oci-endpoint/signature.js';

const TOPIC = 'ocid1.onstopic.oc1..alerts';
const T0 = Date.parse('2026-11-01T00:00:00Z');
const RULES = [
  'break-glass.stale',
  'break-glass.used',
  'access.after-revocation',
  'access.identity-mismatch',
  'access.unattributed',
  'access.local-account',
  'auth.failure-burst',
  'privilege.change',
  'mapping.change',
  'iam.privileged-group-change',
  'iam.auth-policy-change',
  'audit.tamper',
];
const SEVERITIES: Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

interface Harness {
  principal: TestPrincipal;
  endpoint: OciEndpoint;
  ons: NotificationsService;
  clock: { t: number };
  client: Awaited<ReturnType<typeof createOciClient<'notifications'>>>;
  /** Simulated sleep: advances the shared clock. */
  sleep: (ms: number) => Promise<void>;
}

const open: Harness[] = [];

async function setup(): Promise<Harness> {
  const principal = createTestPrincipal();
  const clock = { t: T0 };
  const ons = notificationsService();
  // Simulated service time for the rate window; signatures are still checked on the real clock.
  const endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    serviceNow: () => clock.t,
    handlers: [ons.handler],
  });
  const auth = new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
  const client = await createOciClient('notifications', {
    auth,
    env: { HWAUDIT_OCI_ENDPOINT: endpoint.url },
  });
  const h: Harness = {
    principal,
    endpoint,
    ons,
    clock,
    client,
    sleep: async (ms) => {
      clock.t += ms;
    },
  };
  open.push(h);
  return h;
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.endpoint.close();
    h.principal.cleanup();
  }
  vi.restoreAllMocks();
});

function makeAlert(i: number, rule: string, severity: Severity): Alert {
  return {
    id: `${i.toString(16).padStart(8, '0')}${'c0ffee'.repeat(4)}`,
    rule,
    severity,
    time: new Date(T0 + i * 1000).toISOString(),
    title: `${rule} on prod-${i % 4}`,
    identity: {
      principalId: `ocid1.user.oc1..u${i % 7}`,
      name: `user${i % 7}@example.com`,
      attribution: null,
    },
    dbSystem: { id: `ocid1.mysqldbsystem.oc1..prod${i % 4}`, name: `prod-${i % 4}` },
    evidence: [`k${i}`],
    mysqlAccount: i % 2 ? 'dba_proxy@%' : 'emergency_admin@%',
    status: 'open',
  };
}

/** Alert ids listed by a digest, from its last line. */
function idsOf(m: PublishedMessage): string[] {
  const line = m.body.split('\n').at(-1)!;
  const match = /^Alert ids \((\d+)\): (.*)$/.exec(line);
  expect(match).not.toBeNull();
  const ids = match![2]!.split(' ');
  expect(ids).toHaveLength(Number(match![1]));
  return ids;
}

/** A sink on the harness's simulated clock with fast retries. */
function sinkOn(h: Harness, extra: Partial<NotificationsSinkOptions> = {}): NotificationsSink {
  return new NotificationsSink({
    client: h.client,
    topicId: TOPIC,
    now: () => h.clock.t,
    sleep: h.sleep,
    retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 80, random: () => 0.5, sleep: h.sleep },
    ...extra,
  });
}

describe('text for people', () => {
  it('is cut to its length with an ellipsis, never inside a character', () => {
    expect(clean('a\u0007b\nc')).toBe('a b c');
    expect(clean('abcdef', 4)).toBe('abc…');
    // An emoji (two UTF-16 code units) across the cut: it goes whole.
    expect(clean(`ab\u{1F600}cd`, 4)).toBe('ab…');
    expect(clean(`a\u{1F600}cd`, 4)).toBe('a\u{1F600}…');
  });
});

describe('NotificationsSink: digests within the Notifications limits', () => {
  it('turns a burst of 1,000 alerts into digests that respect 60/min and 64 KB and lose no alert', async () => {
    const h = await setup();
    const sink = sinkOn(h);
    const alerts = Array.from({ length: 1000 }, (_, i) =>
      makeAlert(i, RULES[i % RULES.length]!, SEVERITIES[(i >> 2) % 5]!),
    );

    // 100 pipeline batches of 10 alerts, 300 ms apart (30 s of simulated time), then close.
    for (let b = 0; b < 100; b++) {
      await sink.send(alerts.slice(b * 10, b * 10 + 10));
      h.clock.t += 300;
    }
    expect(sink.stats.deferred).toBeGreaterThan(0); // the budget ran out and digests were merged
    await sink.close();

    const published = h.ons.published;
    expect(h.ons.refused).toEqual({ rate: 0, size: 0 });
    expect(h.endpoint.requests.every((r) => r.status === 200)).toBe(true);
    expect(Math.max(...published.map((m) => m.requestBytes))).toBeLessThanOrEqual(64 * 1024);
    expect(published.every((m) => (m.title?.length ?? 0) <= 255)).toBe(true);
    expect(maxInAnyMinute(published.map((m) => m.at))).toBeLessThanOrEqual(60);

    const counted = published.flatMap(idsOf);
    expect(counted).toHaveLength(1000); // each alert in exactly one digest
    expect(new Set(counted)).toEqual(new Set(alerts.map((a) => a.id)));
    expect(sink.pendingAlerts()).toBe(0);
    expect(sink.stats.alertsPublished).toBe(1000);
    // 60 rule/severity groups: far fewer messages than alerts.
    expect(published.length).toBeLessThanOrEqual(120);
    expect(published.length).toBe(sink.stats.published);
  });

  it('summarizes counts and the top items with person, account and DB system', async () => {
    const alerts = Array.from({ length: 25 }, (_, i) => makeAlert(i, 'break-glass.used', 'high'));
    const digest = renderDigest('break-glass.used', 'high', alerts, 5, 25);
    expect(digest.title).toBe('[HIGH] break-glass.used: 25 alerts');
    expect(digest.body).toContain('25 alerts of rule break-glass.used, severity high');
    expect(digest.body).toContain('Event time: 2026-11-01T00:00:00.000Z .. 2026-11-01T00:00:24.000Z');
    expect(digest.body).toContain('DB systems: prod-0 (7), prod-1 (6), prod-2 (6), prod-3 (6)');
    expect(digest.body).toContain('Newest 5 of 25:');
    expect(digest.body).toContain(
      '- 2026-11-01T00:00:24.000Z user3@example.com as emergency_admin@% on prod-0: break-glass.used on prod-0',
    );
    const evil = { ...alerts[0]!, title: 'line\nbreak\u0007bell' };
    expect(renderDigest('r', 'low', [evil], 5, 1).body).toContain('line break bell');
  });

  it('announces a resolution as one, apart from its alert, whether they come together or apart', async () => {
    const h = await setup();
    const sink = sinkOn(h);
    const alert = makeAlert(1, 'break-glass.stale', 'high');
    const resolution: Alert = {
      ...alert,
      status: 'resolved',
      resolution: {
        reason: 'membership-removed',
        time: '2026-11-01T02:00:00.000Z',
        note: 'membership\nremoved',
        evidence: ['k-removed'],
      },
    };
    await sink.send([alert, resolution]);
    await sink.send([resolution]); // a resolution alone, in a later call
    await sink.close();
    const [both, alone] = h.ons.published;
    expect(both!.title).toBe('[HIGH] break-glass.stale: 1 alert, 1 resolved');
    expect(both!.body).toContain(
      '  RESOLVED (membership-removed) at 2026-11-01T02:00:00.000Z: membership removed',
    );
    expect(idsOf(both!)).toEqual([alert.id, `${alert.id}:resolved`]);
    expect(alone!.title).toBe('[RESOLVED] break-glass.stale: 1 resolved');
    expect(alone!.body).toContain('Event time: 2026-11-01T02:00:00.000Z\n');
    expect(idsOf(alone!)).toEqual([`${alert.id}:resolved`]);
  });

  it('splits one large group into parts under 64 KB, each alert in exactly one part', async () => {
    const h = await setup();
    const sink = sinkOn(h);
    const alerts = Array.from({ length: 4000 }, (_, i) => makeAlert(i, 'auth.failure-burst', 'medium'));
    await sink.send(alerts);
    await sink.close();
    const published = h.ons.published;
    expect(published.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...published.map((m) => m.requestBytes))).toBeLessThanOrEqual(64 * 1024);
    expect(published.flatMap(idsOf).sort()).toEqual(alerts.map((a) => a.id).sort());
    expect(published[0]!.title).toMatch(
      /^\[MEDIUM\] auth\.failure-burst: \d+ alerts \(\d+ of 4000 queued\)$/,
    );
    expect(sink.stats.splits).toBeGreaterThan(0);
  });

  it('retries a throttled publish with backoff; after a hard failure the alerts stay queued once', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const h = await setup();
    const sink = sinkOn(h);
    h.endpoint.faults.failNext('ons.publishMessage', 2, 429);
    await sink.send([makeAlert(1, 'audit.tamper', 'critical')]);
    expect(h.ons.published).toHaveLength(1);

    h.endpoint.faults.failNext('ons.publishMessage', Number.POSITIVE_INFINITY, 503);
    const batch = [makeAlert(2, 'audit.tamper', 'critical'), makeAlert(3, 'audit.tamper', 'critical')];
    await expect(sink.send(batch)).rejects.toMatchObject({ code: 'SINK_FAILED', details: { status: 503 } });
    expect(h.endpoint.requestsTo('ons.publishMessage').filter((r) => r.status === 503)).toHaveLength(4);

    // The pipeline re-sends the undelivered batch: merged by id, not doubled.
    h.endpoint.faults.clear();
    h.clock.t += 60_000;
    await sink.send(batch);
    await sink.close();
    expect(h.ons.published.flatMap(idsOf)).toEqual(
      [1, 2, 3].map((i) => makeAlert(i, 'audit.tamper', 'critical').id),
    );
  });

  it('holds a group for its window, publishes most severe first, and flushes everything on close', async () => {
    const h = await setup();
    const sink = sinkOn(h, { windowMs: 10_000 });
    await sink.send([makeAlert(1, 'privilege.change', 'medium')]);
    h.clock.t += 5_000;
    await sink.send([makeAlert(2, 'privilege.change', 'medium'), makeAlert(3, 'audit.tamper', 'critical')]);
    expect(h.ons.published).toHaveLength(0);
    h.clock.t += 5_000;
    await sink.send([]);
    expect(h.ons.published.map((m) => idsOf(m).length)).toEqual([2]); // the 10 s-old group only
    await sink.close();
    expect(h.ons.published.map((m) => m.title)).toEqual([
      '[MEDIUM] privilege.change: 2 alerts',
      '[CRITICAL] audit.tamper: 1 alert',
    ]);
    await expect(sink.send([makeAlert(4, 'audit.tamper', 'low')])).rejects.toMatchObject({
      code: 'SINK_FAILED',
    });
  });
});

describe('TokenBucket', () => {
  it('never allows more than perMinute takes in any 60 s window (burst + refill)', () => {
    for (const burst of [1, 10, 30, 59]) {
      const clock = { t: 0 };
      const bucket = new TokenBucket(burst, 60 - burst, () => clock.t);
      const taken: number[] = [];
      let seed = burst;
      for (let step = 0; step < 20_000; step++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        clock.t += seed % 400; // irregular arrivals, ~200 ms apart
        if (bucket.tryTake()) taken.push(clock.t);
      }
      expect(maxInAnyMinute(taken)).toBeLessThanOrEqual(60);
      expect(taken.length).toBeGreaterThan(0);
    }
  });
});
