// Routes through the pipeline to the signed local OCI endpoint, with the real SDK clients: a
// burst of 1,000 alerts reaches a digest route and an immediate route on topics limited to
// e-mail's 10 messages a minute, within 64 KB and the rate, none lost; a stream route stores every
// record and the digests point at its offsets; a maintenance window mutes delivery, not storage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as common from 'oci-common';
import { afterEach, describe, expect, it } from 'vitest';
import { type Alert, recordKey } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import { RULES } from '../../shared/detect/registry.js';
import { at, baseConfig, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';
import { createOciClient } from '../../shared/oci/clients.js';
import { Pipeline } from '../../shared/pipeline.js';
import { type OpenRoutes, openRoutes } from '../../shared/route/routes.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { CLAIM_LEASE_MS } from '../../shared/state/state-store.js';
import { testConfig } from '../helpers/run-timeline.js';
import {
  maxInAnyMinute,
  notificationsService,
  type PublishedMessage,
} from '../oci-endpoint/notifications.js';
import { objectStorageService } from '../oci-endpoint/object-storage.js';
import { startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal } from '../oci-endpoint/signature.js';
import { streamingService } from '../oci-endpoint/streaming.js';

const DIGEST_TOPIC = 'ocid1.onstopic.oc1..dba';
const PAGE_TOPIC = 'ocid1.onstopic.oc1..page';
const STREAM = 'ocid1.stream.oc1..alerts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The endpoint (Notifications at e-mail's 10/min, Streaming), on a simulated clock the routes share. */
async function endpoint() {
  const principal = createTestPrincipal();
  const clock = { t: Date.parse('2026-11-03T00:00:00Z') };
  const ons = notificationsService({ perMinute: 10 });
  const streaming = streamingService({ streams: [{ id: STREAM, partitions: 2 }] });
  const objects = objectStorageService({ buckets: ['audit-alerts'] });
  const ep = await startOciEndpoint({
    ...principal.endpointOptions,
    serviceNow: () => clock.t,
    handlers: [ons.handler, streaming.handler, objects.handler],
  });
  cleanups.push(
    () => principal.cleanup(),
    () => ep.close(),
  );
  const auth = new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
  const env = { HWAUDIT_OCI_ENDPOINT: ep.url };
  const fast = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 4, random: () => 0.5 };
  return {
    ons,
    streaming,
    objects,
    clock,
    options: {
      clients: {
        notifications: () => createOciClient('notifications', { auth, env }),
        streaming: () => createOciClient('streaming', { auth, env }),
        objectStorage: () => createOciClient('objectstorage', { auth, env }),
      },
      now: () => clock.t,
      sleep: async (ms: number) => {
        clock.t += ms;
      },
      retry: () => fast,
    },
  };
}

async function pipelineWith(
  config: Partial<ConfigInput>,
  ep: Awaited<ReturnType<typeof endpoint>>,
  store = SqliteStore.open(':memory:'),
) {
  const { config: cfg, rules } = testConfig({ ...baseConfig(), ...config });
  const routes = await openRoutes(cfg, ep.options);
  cleanups.push(
    () => store.close(),
    () => routes.close(),
  );
  const pipeline = await Pipeline.open({ config: cfg, rules, store, sinks: routes.sinks });
  const feed = (events: CanonicalEvent[]) =>
    pipeline.ingest(events.map((event) => ({ type: 'event' as const, event })));
  return { pipeline, store, routes, feed };
}

async function stored(store: SqliteStore): Promise<Alert[]> {
  const out: Alert[] = [];
  for await (const a of store.alerts()) out.push(a);
  return out;
}

/** 900 proxied logins nobody can be named behind (medium) and 100 new 1-to-1 IAM accounts (high). */
function burst(): CanonicalEvent[] {
  return Array.from({ length: 1000 }, (_, i) =>
    i % 10 === 9
      ? db.query({
          at: at(i * 0.1),
          conn: 100_000 + i,
          account: 'admin',
          sqlCommand: 'create_user',
          sql: `CREATE USER 'u${i}'@'%' IDENTIFIED WITH 'authentication_oci' AS '{"tenancy":"t","user":"ocid1.user.oc1..u${i}"}'`,
        })
      : db.unnamed({ at: at(i * 0.1), conn: i, ip: '10.9.0.1' }),
  );
}

/** The record keys a message accounts for: its `id ...` lines and its `+N more: ...` line. */
function keysIn(m: PublishedMessage): string[] {
  const keys: string[] = [];
  for (const line of m.body.split('\n')) {
    const detail = /^ {2}id ([0-9a-f]{32})( \(resolution\))?:/.exec(line);
    if (detail) keys.push(detail[2] ? `${detail[1]}:resolved` : detail[1]!);
    if (line.startsWith('+'))
      for (const m2 of line.matchAll(/([0-9a-f]{32})( \(resolution\))?/g))
        keys.push(m2[2] ? `${m2[1]}:resolved` : m2[1]!);
  }
  return keys;
}

/** One route, that sends IAM alerts in an hourly digest. */
const HOURLY_IAM_DIGEST: Partial<ConfigInput> = {
  routes: [
    {
      name: 'bg',
      match: { rules: ['iam.*'] },
      output: { notifications: DIGEST_TOPIC },
      delivery: { digest: 'PT1H' },
    },
  ],
};

describe('routes to OCI outputs', () => {
  it('a burst of 1,000 alerts: digests and immediate messages within 64 KB and 10/min, every alert accounted for', async () => {
    const ep = await endpoint();
    const { feed, pipeline, store, routes } = await pipelineWith(
      {
        routes: [
          { name: 'siem', output: { stream: STREAM, format: 'ocsf' } },
          {
            name: 'dba-digest',
            output: { notifications: DIGEST_TOPIC, perMinute: 10 },
            delivery: { digest: 'PT15M' },
          },
          {
            name: 'page-high',
            match: { minSeverity: 'high' },
            output: { notifications: PAGE_TOPIC, perMinute: 10 },
          },
        ],
      },
      ep,
    );
    await feed(burst());
    await pipeline.finish();

    // Each CREATE USER is a mapping change (high) and a privilege change (medium).
    const records = await stored(store);
    expect(records).toHaveLength(1100);
    const high = records.filter((r) => r.severity === 'high');
    expect(high).toHaveLength(100);

    const published = ep.ons.published;
    expect(ep.ons.refused).toEqual({ rate: 0, size: 0 });
    expect(Math.max(...published.map((m) => m.requestBytes))).toBeLessThanOrEqual(64 * 1024);
    expect(published.every((m) => (m.title?.length ?? 0) <= 255)).toBe(true);
    for (const topic of [DIGEST_TOPIC, PAGE_TOPIC])
      expect(
        maxInAnyMinute(published.filter((m) => m.topicId === topic).map((m) => m.at)),
      ).toBeLessThanOrEqual(10);

    // Digests: grouped by severity and rule, every alert listed or named by id, linked to its stream offset.
    const digests = published.filter((m) => m.topicId === DIGEST_TOPIC);
    const inDigests = digests.flatMap(keysIn);
    expect(inDigests.sort()).toEqual(records.map(recordKey).sort());
    expect(digests[0]!.body).toContain('By severity and rule:');
    expect(digests[0]!.body).toMatch(/\nHIGH: \d+ alerts\n {2}mapping\.change: \d+ alerts\n/);
    expect(digests[0]!.body).toMatch(
      /\nMEDIUM: \d+ alerts\n {2}access\.unattributed: \d+ alerts\n {2}privilege\.change: \d+ alerts\n/,
    );
    // Two periods were due (one while the burst came in, the rest at the end), each in a few digests.
    expect(digests.length).toBeLessThanOrEqual(8);
    expect(digests.some((m) => m.body.includes('+'))).toBe(true);
    expect(digests[0]!.body).toMatch(
      new RegExp(`id [0-9a-f]{32}: stream ${STREAM} partition \\d offset \\d+`),
    );
    expect(digests[0]!.body).toContain('admin@% on prod-orders');

    // Immediate: one message per high alert while the budget lasts, the rest batched, none lost.
    const pages = published.filter((m) => m.topicId === PAGE_TOPIC);
    expect(pages.flatMap(keysIn).sort()).toEqual(high.map(recordKey).sort());
    expect(pages.filter((m) => m.title?.startsWith('[HIGH] mapping.change:')).length).toBeGreaterThan(0);
    expect(pages.some((m) => m.title?.includes('over the rate, batched'))).toBe(true);
    expect(pages.length).toBeLessThan(20);

    // The stream holds every record; nothing is left undelivered on any route.
    const onStream = [0, 1].flatMap((p) => ep.streaming.messages(STREAM, p));
    expect(onStream).toHaveLength(1100);
    for (const r of routes.sinks) expect(await store.undelivered(r.name)).toEqual([]);
  });

  it('a digest waits for the end of its period by event time and goes out once; a resolution follows its alert', async () => {
    const ep = await endpoint();
    const { feed, store } = await pipelineWith(
      {
        routes: [
          {
            name: 'bg',
            match: { rules: ['break-glass.*'] },
            output: { notifications: DIGEST_TOPIC },
            delivery: { digest: 'PT1H' },
          },
          { name: 'bg-now', match: { rules: ['break-glass.stale'] }, output: { notifications: PAGE_TOPIC } },
        ],
      },
      ep,
    );
    // Bob's break-glass grant (4 h) outlives its deadline at 13:00 and is removed at 14:00.
    const signOn = (minutes: number) => iam.signOn({ at: at(minutes), user: USERS.dave, ip: '1.1.1.1' });
    await feed([iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg })]);
    await feed([signOn(250)]); // watermark 12:50
    expect(ep.ons.published).toHaveLength(0);
    await feed([signOn(270)]); // 13:10: the stale alert, paged at once
    expect(ep.ons.published.map((m) => m.topicId)).toEqual([PAGE_TOPIC]);
    await feed([iam.removed({ at: at(300), user: USERS.bob, group: GROUPS.bg })]);
    await feed([signOn(330)]); // 14:10: the resolution; the 13:00-14:00 hour is over
    const pages = ep.ons.published.filter((m) => m.topicId === PAGE_TOPIC);
    expect(pages.map((m) => m.title?.split(':')[0])).toEqual([
      '[HIGH] break-glass.stale',
      '[RESOLVED] break-glass.stale',
    ]);
    expect(pages[1]!.body).toContain('RESOLVED (membership-removed)');
    // The page says what to do, from the rule's runbook; its resolution does not.
    const { runbook } = RULES.find((r) => r.id === 'break-glass.stale')!;
    expect(pages[0]!.body).toContain(`\n  what to do: ${runbook}\n`);
    expect(pages[1]!.body).not.toContain('what to do');
    const digests = () => ep.ons.published.filter((m) => m.topicId === DIGEST_TOPIC);
    expect(digests().map((m) => m.title)).toEqual(['[HIGH] bg digest: 1 alert']);
    await feed([signOn(340)]);
    expect(digests()).toHaveLength(1);
    await feed([signOn(400)]); // 15:20: the resolution's hour is over
    expect(digests().map((m) => m.title)).toEqual([
      '[HIGH] bg digest: 1 alert',
      '[HIGH] bg digest: 1 resolved',
    ]);
    expect(keysIn(digests()[0]!)).toEqual(keysIn(pages[0]!));
    expect(keysIn(digests()[1]!)).toEqual(keysIn(pages[1]!));
    expect(await store.undelivered('route:bg')).toEqual([]);
  });

  it('containers that each keep their sinks and re-open the pipeline on one store send a digest once', async () => {
    const ep = await endpoint();
    const { config: cfg, rules } = testConfig({ ...baseConfig(), ...HOURLY_IAM_DIGEST });
    const store = SqliteStore.open(':memory:');
    cleanups.push(() => store.close());
    const a = await openRoutes(cfg, ep.options);
    const b = await openRoutes(cfg, ep.options);
    // As the function does on a mysql:// store: the pipeline re-opened at every call, the sinks kept.
    const call = async (container: OpenRoutes, events: CanonicalEvent[]) => {
      const pipeline = await Pipeline.open({ config: cfg, rules, store, sinks: container.sinks });
      await pipeline.ingest(events.map((event) => ({ type: 'event' as const, event })));
    };
    const signOn = (minutes: number) => iam.signOn({ at: at(minutes), user: USERS.dave, ip: '1.1.1.1' });
    await call(a, [iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg })]);
    await call(a, [signOn(30)]); // a holds the alert for the digest of the hour
    await call(b, [signOn(90)]); // b gets it from the store and sends the digest when the hour is over
    await call(a, [signOn(150)]);
    expect(ep.ons.published.map((m) => m.title)).toEqual(['[MEDIUM] bg digest: 1 alert']);
    expect(await store.undelivered('route:bg')).toEqual([]);
  });

  /**
   * Two instances on one SQLite file (each its own scope and claimant, no lock between them, the
   * test's clock), routing IAM alerts to an hourly digest; `a` has stored the alert of the hour and
   * holds it for the digest.
   */
  async function digestHeldByA(ep: Awaited<ReturnType<typeof endpoint>>) {
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-digest-claims-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'shared.sqlite');
    const clock = { now: Date.parse('2026-11-03T00:00:00Z') };
    const instance = (name: string) =>
      pipelineWith(
        HOURLY_IAM_DIGEST,
        ep,
        SqliteStore.open(file, { scope: name, claims: { claimant: name, now: () => clock.now } }),
      );
    const a = await instance('p0');
    await a.feed([iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg })]);
    await a.feed([signOnAt(30)]);
    return { a, instance, clock };
  }

  const signOnAt = (minutes: number) => iam.signOn({ at: at(minutes), user: USERS.dave, ip: '1.1.1.1' });

  it('a digest held by an instance that only ingests for longer than the lease is not paged again by another', async () => {
    const ep = await endpoint();
    const { a, instance, clock } = await digestHeldByA(ep);
    // a is busy: a batch a minute for longer than the lease, and no idle sweep.
    for (let m = 31; m <= 45; m++) {
      clock.now += 60_000;
      await a.feed([signOnAt(m)]);
    }
    // Another partition's consumer sweeps, quiet.
    const b = await instance('p1');
    await b.pipeline.advance(at(45));
    // The hour ends for both partitions at about the same time.
    await Promise.all([a.feed([signOnAt(90)]), b.pipeline.advance(at(90))]);
    expect(ep.ons.published.map((m) => m.title)).toEqual(['[MEDIUM] bg digest: 1 alert']);
  });

  it('a digest whose instance stalled past the lease leaves the alert to the instance that took it over', async () => {
    const ep = await endpoint();
    const { a, instance, clock } = await digestHeldByA(ep);
    // a stalls (a paused process) past the lease; another instance opens and takes the alert over.
    clock.now += CLAIM_LEASE_MS + 60_000;
    const b = await instance('p1');
    await b.pipeline.advance(at(45));
    // The hour ends for both at about the same time: the alert is b's now.
    await Promise.all([a.feed([signOnAt(90)]), b.pipeline.advance(at(90))]);
    expect(ep.ons.published.map((m) => m.title)).toEqual(['[MEDIUM] bg digest: 1 alert']);
  });

  it('calls that overlap (as a replay makes them) publish what calls made one after the other do', async () => {
    const routes: ConfigInput['routes'] = [
      {
        name: 'bg',
        match: { rules: ['break-glass.*'] },
        output: { notifications: DIGEST_TOPIC },
        delivery: { digest: 'PT1H' },
      },
      { name: 'bg-now', match: { rules: ['break-glass.stale'] }, output: { notifications: PAGE_TOPIC } },
    ];
    const signOn = (minutes: number) => iam.signOn({ at: at(minutes), user: USERS.dave, ip: '1.1.1.1' });
    const batches = [
      [iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg })],
      [signOn(250)],
      [signOn(270)],
      [iam.removed({ at: at(300), user: USERS.bob, group: GROUPS.bg })],
      [signOn(330)],
      [signOn(340)],
      [signOn(400)],
    ];
    const published = async (overlap: boolean) => {
      const ep = await endpoint();
      const { feed } = await pipelineWith({ routes }, ep);
      const calls: Promise<unknown>[] = [];
      for (const batch of batches) {
        const call = feed(batch);
        if (overlap) calls.push(call);
        else await call;
      }
      await Promise.all(calls);
      return ep.ons.published.map((m) => `${m.topicId === DIGEST_TOPIC ? 'digest' : 'page'} ${m.title}`);
    };
    const one = await published(false);
    // Each batch's digests are due by its own watermark, not by that of a batch built meanwhile.
    expect(one).toEqual([
      'page [HIGH] break-glass.stale: bob@example.com still holds break-glass group BreakGlass past its maximum duration',
      'digest [HIGH] bg digest: 1 alert',
      'page [RESOLVED] break-glass.stale: bob@example.com still holds break-glass group BreakGlass past its maximum duration',
      'digest [HIGH] bg digest: 1 resolved',
    ]);
    expect(await published(true)).toEqual(one);
  });

  it('a maintenance window mutes delivery, not storage: stored, marked muted, counted in the digest', async () => {
    const ep = await endpoint();
    const { feed, pipeline, store } = await pipelineWith(
      {
        routes: [
          { name: 'page', output: { notifications: PAGE_TOPIC } },
          { name: 'digest', output: { notifications: DIGEST_TOPIC }, delivery: { digest: 'P1D' } },
          { name: 'siem', output: { stream: STREAM } },
        ],
        maintenance: [
          {
            from: '2026-11-02T09:00:00Z',
            to: '2026-11-02T10:00:00Z',
            reason: 'patching prod-orders',
            dbSystems: ['prod-orders'],
            routes: ['page', 'digest'],
          },
        ],
      },
      ep,
    );
    await feed([db.unnamed({ at: at(10), conn: 1 }), db.unnamed({ at: at(70), conn: 2 })]);
    await pipeline.finish();
    const records = await stored(store);
    expect(records).toHaveLength(2);
    const [inside, after] = records;
    expect(inside!.muted).toEqual([
      { route: 'page', cause: 'maintenance', reason: 'patching prod-orders' },
      { route: 'digest', cause: 'maintenance', reason: 'patching prod-orders' },
    ]);
    expect(after!.muted).toBeUndefined();
    const pages = ep.ons.published.filter((m) => m.topicId === PAGE_TOPIC);
    expect(pages.flatMap(keysIn)).toEqual([after!.id]);
    const [digest] = ep.ons.published.filter((m) => m.topicId === DIGEST_TOPIC);
    expect(digest!.title).toContain('2 alerts, 1 muted');
    expect(digest!.body).toContain('Muted on this route (still stored, exported and reported): 1');
    expect(digest!.body).toContain('maintenance: patching prod-orders (1)');
    expect(keysIn(digest!)).toEqual([after!.id]);
    // The SIEM stream is not muted by this window.
    expect([0, 1].flatMap((p) => ep.streaming.messages(STREAM, p))).toHaveLength(2);
  });

  it('a route added to a store with history starts with new alerts; a crash before delivery re-sends', async () => {
    const ep = await endpoint();
    const { config: cfg, rules } = testConfig(baseConfig());
    const store = SqliteStore.open(':memory:');
    cleanups.push(() => store.close());
    const first = await Pipeline.open({ config: cfg, rules, store });
    await first.ingest([
      {
        type: 'event',
        event: db.connect({ at: at(10), conn: 1, account: 'dev_proxy', user: 'dev_proxy', proxy: true }),
      },
    ]);
    await first.finish();
    const withRoute = testConfig({
      ...baseConfig(),
      routes: [{ name: 'page', output: { notifications: PAGE_TOPIC } }],
    });
    const routes = await openRoutes(withRoute.config, ep.options);
    const second = await Pipeline.open({ config: withRoute.config, rules, store, sinks: routes.sinks });
    expect(ep.ons.published).toHaveLength(0);
    expect(await store.undelivered('route:page')).toEqual([]);

    // A failure of the topic leaves the new alert undelivered; the next open sends it.
    ep.clock.t += 60_000;
    const failing = await openRoutes(withRoute.config, {
      ...ep.options,
      clients: { notifications: async () => ({ publishMessage: () => Promise.reject(new Error('down')) }) },
    });
    const third = await Pipeline.open({ config: withRoute.config, rules, store, sinks: failing.sinks });
    await third.ingest([
      {
        type: 'event',
        event: db.connect({ at: at(200), conn: 2, account: 'dev_proxy', user: 'dev_proxy', proxy: true }),
      },
    ]);
    await expect(third.finish()).rejects.toMatchObject({ code: 'SINK_FAILED' });
    expect(await store.undelivered('route:page')).toHaveLength(1);
    await Pipeline.open({ config: withRoute.config, rules, store, sinks: routes.sinks });
    expect(ep.ons.published).toHaveLength(1);
    expect(await store.undelivered('route:page')).toEqual([]);
    expect(second.stats.alerts).toBe(0);
  });

  it("an Object Storage route writes its records into the hour's object, the resolution beside its alert; a re-send adds no line", async () => {
    const ep = await endpoint();
    const config = {
      routes: [
        {
          name: 'archive',
          match: { rules: ['break-glass.*'] },
          output: { objectStorage: { bucket: 'audit-alerts', prefix: 'alerts/' }, format: 'ocsf' as const },
        },
        { name: 'digest', output: { notifications: DIGEST_TOPIC }, delivery: { digest: 'PT1H' } },
      ],
    };
    const { feed, pipeline, store } = await pipelineWith(config, ep);
    const added = iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg });
    const removed = iam.removed({ at: at(300), user: USERS.bob, group: GROUPS.bg });
    await feed([added]);
    await feed([removed]);
    await pipeline.finish();
    const stale = (await stored(store)).filter((r) => r.rule === 'break-glass.stale');
    expect(stale.map((r) => r.status)).toEqual(['open', 'resolved']);
    // The alert's time is its deadline (13:00), which the resolution keeps: one hourly object.
    const object = 'alerts/ocsf/2026/11/02/13.jsonl.gz';
    const bucket = ep.objects.buckets.get('testnamespace/audit-alerts')!;
    const lines = () => gunzipSync(bucket.get(object)!.data).toString('utf8').trimEnd().split('\n');
    expect([...bucket.keys()]).toEqual([object]);
    const [open, closed] = lines().map((l) => JSON.parse(l));
    expect(open).toMatchObject({ class_uid: 2004, activity_id: 1 });
    expect(closed).toMatchObject({ class_uid: 2004, activity_id: 3, status_id: 4 });
    // The digest links each record to its object.
    const digest = ep.ons.published.find((m) => m.body.includes('break-glass.stale'))!;
    expect(digest.body).toContain(`id ${stale[0]!.id}: object audit-alerts/${object}`);
    expect(digest.body).toContain(`id ${stale[0]!.id} (resolution): object audit-alerts/${object}`);

    // The same records sent again by a second store (a redelivery elsewhere): the same two lines.
    const again = await pipelineWith(config, ep);
    await again.feed([added]);
    await again.feed([removed]);
    await again.pipeline.finish();
    expect((await stored(again.store)).map((r) => r.id)).toContain(stale[0]!.id);
    expect([...bucket.keys()]).toEqual([object]);
    expect(lines()).toHaveLength(2);
  });
});
