// The function delivers through the configuration's routes, to the signed local endpoint with
// the real SDK client: an immediate route pages at once (the alert, then its resolution), a
// digest route publishes once its hour is over (on a later sweep), and the default outputs still
// get every alert. The default digests and a route on one topic keep to one rate together.
import * as common from 'oci-common';
import { afterAll, describe, expect, it } from 'vitest';
import { FunctionHost } from '../../functions/function-host.js';
import { createOciClient, type RetryPolicy } from '../../shared/oci/clients.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { ago, fleetConfigJson, GROUPS, oci, removeTempDirs, tempDir, USERS } from '../helpers/fdk-harness.js';
import { Lines, loggingBatch, N, streamBatch } from '../helpers/host-batches.js';
import { notificationsService } from '../oci-endpoint/notifications.js';
import { startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal } from '../oci-endpoint/signature.js';

const PAGE = 'ocid1.onstopic.oc1..page';
const DIGEST = 'ocid1.onstopic.oc1..bg';

afterAll(() => removeTempDirs());

describe('FunctionHost routes', () => {
  it('pages high alerts at once, publishes the break-glass digest after its hour, resolves on the routes that carried the alert', async () => {
    const principal = createTestPrincipal();
    const clock = { now: N };
    const ons = notificationsService();
    const endpoint = await startOciEndpoint({
      ...principal.endpointOptions,
      serviceNow: () => clock.now,
      handlers: [ons.handler],
    });
    const auth = new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
    const statePath = `${tempDir('hwaudit-routes-')}/state.sqlite`;
    const stdout = new Lines();
    const host = new FunctionHost({
      env: {
        HWAUDIT_STATE: statePath,
        HWAUDIT_CONFIG: fleetConfigJson({
          routes: [
            { name: 'page-high', match: { minSeverity: 'high' }, output: { notifications: PAGE } },
            {
              name: 'bg-digest',
              match: { rules: ['break-glass.*'] },
              output: { notifications: DIGEST, perMinute: 10 },
              delivery: { digest: 'PT1H' },
            },
          ],
        }),
      },
      now: () => clock.now,
      stdout,
      stderr: new Lines(),
      ociClients: {
        notifications: () =>
          createOciClient('notifications', { auth, env: { HWAUDIT_OCI_ENDPOINT: endpoint.url } }),
      },
    });
    try {
      const titles = (topic: string) => ons.published.filter((m) => m.topicId === topic).map((m) => m.title);

      await host.invoke(loggingBatch());
      await host.invoke(streamBatch());
      // The medium group change is on no route; break-glass.used is paged at once.
      expect(titles(PAGE)).toEqual([expect.stringMatching(/^\[HIGH\] break-glass\.used: /)]);
      expect(titles(DIGEST)).toEqual([]);

      // The sweep (watermark 11:59) fires the stale timer at 11:00, paged at once; the hour of
      // break-glass.used (07:10) is over, so its digest goes out; the stale alert's hour is not.
      expect(await host.invoke('{"action":"sweep"}')).toMatchObject({ action: 'sweep', alerts: 1 });
      expect(titles(PAGE)).toHaveLength(2);
      expect(titles(PAGE)[1]).toMatch(/^\[HIGH\] break-glass\.stale: /);
      expect(titles(DIGEST)).toEqual(['[HIGH] bg-digest digest: 1 alert']);

      // Bob leaves the group: the resolution is paged where the stale alert was.
      const removal = oci.removeUserFromGroup({
        id: 'ev-remove-bob-bg',
        added: 'ev-add-bob-bg',
        at: ago.minutes(30, N),
        user: USERS.bob,
        group: GROUPS.bg,
      });
      expect(await host.invoke(JSON.stringify([removal]))).toMatchObject({ resolutions: 1 });
      expect(titles(PAGE)[2]).toMatch(/^\[RESOLVED\] break-glass\.stale: /);

      // Two hours later a sweep passes the end of those hours: the second digest.
      clock.now = N + 2 * 3_600_000;
      await host.invoke('{"action":"sweep"}');
      expect(titles(DIGEST)).toEqual([
        '[HIGH] bg-digest digest: 1 alert',
        '[HIGH] bg-digest digest: 1 alert, 1 resolved',
      ]);
      const digests = ons.published.filter((m) => m.topicId === DIGEST);
      expect(digests[0]!.body).toContain('bob@example.com as emergency_admin@% on prod-orders');
      expect(digests[1]!.body).toContain('RESOLVED (membership-removed)');
      await host.invoke('{"action":"sweep"}');
      expect(titles(DIGEST)).toHaveLength(2);

      // The default output (stdout) has every record (the removal is a group change too); nothing
      // is left undelivered on a route.
      expect(stdout.json().map((a) => `${a.rule}/${a.status}`)).toEqual([
        'iam.privileged-group-change/open',
        'break-glass.used/open',
        'break-glass.stale/open',
        'iam.privileged-group-change/open',
        'break-glass.stale/resolved',
      ]);
      const store = SqliteStore.open(statePath);
      expect(await store.undelivered('route:page-high')).toEqual([]);
      expect(await store.undelivered('route:bg-digest')).toEqual([]);
      await store.close();
    } finally {
      await endpoint.close();
      principal.cleanup();
    }
  });

  it('the default digests and a route on the same topic keep to its rate together', async () => {
    const principal = createTestPrincipal();
    const clock = { now: N };
    // The topic takes 3 messages a minute; a fourth is refused (429).
    const ons = notificationsService({ perMinute: 3 });
    const endpoint = await startOciEndpoint({
      ...principal.endpointOptions,
      serviceNow: () => clock.now,
      handlers: [ons.handler],
    });
    const auth = new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
    const fast: RetryPolicy = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 };
    const host = new FunctionHost({
      env: {
        HWAUDIT_STATE: `${tempDir('hwaudit-routes-')}/state.sqlite`,
        HWAUDIT_NOTIFICATIONS_TOPIC_ID: PAGE,
        HWAUDIT_NOTIFICATIONS_PER_MINUTE: '3',
        HWAUDIT_CONFIG: fleetConfigJson({
          routes: [{ name: 'page-all', output: { notifications: PAGE, perMinute: 3 } }],
        }),
      },
      now: () => clock.now,
      stdout: new Lines(),
      stderr: new Lines(),
      ociClients: {
        notifications: () =>
          createOciClient('notifications', { auth, env: { HWAUDIT_OCI_ENDPOINT: endpoint.url } }),
      },
      ociRetry: fast,
    });
    // A budget wait past Fn-Deadline fails the call; a later one sends what is missing.
    const call = (body: string) =>
      host.invoke(body, { deadline: new Date(clock.now + 20_000) }).catch((e: { code: string }) => e.code);
    try {
      // Two alerts: a digest each from the default output, a page each from the route.
      expect(await call(JSON.stringify([...JSON.parse(loggingBatch()), ...JSON.parse(streamBatch())]))).toBe(
        'SINK_FAILED',
      );
      // Sweeps every 30 s; the first fires the stale break-glass timer: one more alert.
      const sweeps: unknown[] = [];
      for (let i = 0; i < 8; i++) {
        clock.now += 30_000;
        sweeps.push(await call('{"action":"sweep"}'));
      }
      expect(sweeps.at(-1)).toMatchObject({ action: 'sweep' });
      // One bucket for the topic (3 a minute: a burst of 2, then one a minute), whoever publishes.
      // The sweep that fires the stale timer runs though the route's backlog waits for the budget:
      // its digest takes the minute's message, and the route's batched page carries all three.
      expect(ons.published.map((m) => [(m.at - N) / 60_000, m.title?.split(':')[0]])).toEqual([
        [0, '[HIGH] break-glass.used'],
        [0, '[MEDIUM] iam.privileged-group-change'],
        [1, '[HIGH] break-glass.stale'],
        [2, '[HIGH] page-all over the rate, batched'],
      ]);
      expect(ons.published.at(-1)?.title).toMatch(/: 3 alerts$/);
      expect(ons.refused.rate).toBe(0);
    } finally {
      await endpoint.close();
      principal.cleanup();
    }
  });
});
