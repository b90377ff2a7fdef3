// Backfill against the local OCI endpoint with the real oci-audit AuditClient and
// oci-loggingsearch LogSearchClient: windows, overlap, paging, the SDK's query-string Date bug,
// checkpoints and resumption, retries, and the `backfill` command.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditClient } from 'oci-audit';
import type { IdentityClient } from 'oci-identity';
import type { LogSearchClient } from 'oci-loggingsearch';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runBackfill } from '../../functions/cli/backfill.js';
import { openScopedPipeline } from '../../functions/cli/host.js';
import type { Alert } from '../../schemas/alert.js';
import { compareEvents } from '../../schemas/events.js';
import { validateConfig } from '../../shared/config/load-config.js';
import { decodeBatch } from '../../shared/decode/read-input.js';
import type { BatchItem } from '../../shared/decode/statement-runs.js';
import { baseConfig, DB, T0 } from '../../shared/detect/timeline.js';
import type { AlertSink, SendContext } from '../../shared/emit/sink.js';
import { AuditError } from '../../shared/errors.js';
import { concernsNothing } from '../../shared/normalize/oci-audit.js';
import { ociAuthProvider } from '../../shared/oci/auth.js';
import { createOciClient } from '../../shared/oci/clients.js';
import { Pipeline } from '../../shared/pipeline.js';
import {
  type BackfillOptions,
  type BackfillResult,
  backfill,
  type Checkpoint,
  type CheckpointStore,
  fileCheckpoint,
  formatQueryTime,
  memoryCheckpoint,
  planWindows,
} from '../../shared/sources/backfill.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import {
  type AuditEventPair,
  type AuditRecord,
  auditService,
  dbSystemStoppedEvent,
  membershipChangeEvent,
  unrelatedEvent,
} from '../oci-endpoint/audit.js';
import { identityService } from '../oci-endpoint/identity.js';
import { type LogEntry, loggingSearchService } from '../oci-endpoint/logging-search.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, type TestPrincipal } from '../oci-endpoint/signature.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TENANCY = 'ocid1.tenancy.oc1..example';
const COMPARTMENT = 'ocid1.compartment.oc1..security';
const CHILD = 'ocid1.compartment.oc1..security-child';
const GRANDCHILD = 'ocid1.compartment.oc1..security-grandchild';
const DELETED = 'ocid1.compartment.oc1..security-deleted';
const OTHER = 'ocid1.compartment.oc1..other';
const { config, rules } = validateConfig(baseConfig());
const NOW = () => T0 + 60 * DAY;

/** `noise`: an event of another service, which concerns nothing the pipeline reads. */
type Spec = { pair: AuditEventPair; time: number; processedAt: number; compartment: string; noise?: true };

/** IAM changes that raise alerts, and noise; processed 0-14 minutes after they happened. */
function auditTimeline(start: number, span: number, noise: number): Spec[] {
  const change = (kind: 'add' | 'remove', user: string, group: string, at: number): AuditEventPair =>
    membershipChangeEvent({
      kind,
      eventId: `ev-${kind}-${user}-${group}-${at}`,
      time: at,
      userId: `ocid1.user.oc1..${user}`,
      groupId: `ocid1.group.oc1..${group}`,
      membershipId: `ocid1.groupmembership.oc1..${user}-${group}`,
      compartmentId: COMPARTMENT,
    });
  const specs: Spec[] = [];
  const add = (pair: AuditEventPair, time: number, delay: number, compartment = COMPARTMENT, noise = false) =>
    specs.push({ pair, time, processedAt: time + delay, compartment, ...(noise ? { noise: true } : {}) });
  add(change('remove', 'alice', 'dba', start + 30 * MINUTE), start + 30 * MINUTE, 3 * MINUTE);
  add(change('add', 'bob', 'bg', start + HOUR - 1000), start + HOUR - 1000, 14 * MINUTE); // late, across a window end
  add(change('add', 'dave', 'dba', start + 2 * HOUR), start + 2 * HOUR, 0);
  add(change('remove', 'dave', 'dba', start + span / 2), start + span / 2, 9 * MINUTE);
  add(change('add', 'carol', 'bg', start + span - 3 * HOUR), start + span - 3 * HOUR, 5 * MINUTE);
  // A DB system stopped through the MySQL HeatWave API: not IAM, read all the same.
  add(
    dbSystemStoppedEvent('ev-stop-prod1', start + 3 * HOUR, COMPARTMENT, DB.id),
    start + 3 * HOUR,
    2 * MINUTE,
  );
  for (let i = 0; i < noise; i++) {
    const at = start + Math.floor((i * span) / noise);
    add(unrelatedEvent(`ev-noise-${i}`, at, COMPARTMENT), at, ((i * 7) % 15) * MINUTE, COMPARTMENT, true);
  }
  add(unrelatedEvent('ev-elsewhere', start + HOUR, OTHER), start + HOUR, 0, OTHER, true);
  return specs;
}

class CollectingSink implements AlertSink {
  readonly name = 'collect';
  readonly alerts: Alert[] = [];
  async send(alerts: Alert[]): Promise<void> {
    this.alerts.push(...alerts);
  }
}

const ids = (alerts: readonly Alert[]) => alerts.map((a) => a.id).sort();

/** The alerts of these events fed straight into a pipeline, sorted, finished as of `asOf`. */
async function referenceAlerts(events: object[], asOf: number): Promise<string[]> {
  const store = SqliteStore.open(':memory:');
  const pipeline = await Pipeline.open({ config, rules, store });
  const items = await decodeBatch(JSON.stringify(events), 'reference');
  const sorted = items
    .flatMap((i) => (i.type === 'event' ? [i] : []))
    .sort((a, b) => compareEvents(a.event, b.event));
  const alerts = [...(await pipeline.ingest(sorted)), ...(await pipeline.finish(asOf))];
  await store.close();
  return ids(alerts);
}

/**
 * The keys of these audit events that the store's default scope holds (seen, or pending the
 * watermark); events that concern nothing are among the candidates, read as events.
 */
async function acceptedKeys(state: string, candidates?: readonly object[]): Promise<Set<string>> {
  const all = candidates ?? [...AUDIT, ...LOGS].map((s) => s.pair.listEvent).concat([CHILD_EVENT.listEvent]);
  const items = await decodeBatch(JSON.stringify(all), 'expected', { keepIrrelevant: true });
  const events = items.flatMap((i) => (i.type === 'event' ? [{ key: i.event.key, ts: i.event.ts }] : []));
  const store = SqliteStore.open(state);
  try {
    const seen = await store.filterSeen(events);
    for (const e of await store.loadPending()) seen.add(e.key);
    return new Set(events.filter((e) => seen.has(e.key)).map((e) => e.key));
  } finally {
    await store.close();
  }
}

let principal: TestPrincipal;
let dir: string;
let endpoint: OciEndpoint;
let audit: AuditClient;
let logSearch: LogSearchClient;
let identity: IdentityClient;
const auditSvc = auditService({ pageSize: 25 });
const identitySvc = identityService(
  {
    tenancy: TENANCY,
    users: [],
    groups: [],
    memberships: [],
    domains: [],
    compartments: [
      { id: COMPARTMENT, parentId: TENANCY, name: 'security' },
      { id: OTHER, parentId: TENANCY, name: 'other' },
      { id: CHILD, parentId: COMPARTMENT, name: 'identity-domains' },
      { id: DELETED, parentId: COMPARTMENT, name: 'old', lifecycleState: 'DELETED' },
      { id: 'ocid1.compartment.oc1..security-sibling', parentId: COMPARTMENT, name: 'sibling' },
      { id: GRANDCHILD, parentId: CHILD, name: 'domain-eu' },
    ],
  },
  { oci: 2 },
);
/** The ListCompartments requests since `from`: parent asked, subtree or not, page token or not. */
const compartmentQueries = (from: number) =>
  endpoint
    .requestsTo('identity.listCompartments')
    .slice(from)
    .map((r) => {
      const q = new URL(r.target, endpoint.url).searchParams;
      return {
        compartmentId: q.get('compartmentId'),
        subtree: q.get('compartmentIdInSubtree') === 'true',
        page: q.get('page') ?? undefined,
      };
    });
/** Membership changes in the compartments below COMPARTMENT (identity domains live there). */
const SUB_EVENTS = [CHILD, GRANDCHILD, DELETED].map((compartmentId, i) =>
  membershipChangeEvent({
    kind: 'add',
    eventId: `ev-sub-${i}`,
    time: T0 + (90 + i) * MINUTE,
    userId: 'ocid1.user.oc1..dave',
    groupId: 'ocid1.group.oc1..bg',
    membershipId: `ocid1.groupmembership.oc1..dave-bg-${i}`,
    compartmentId,
  }),
);
const logSvc = loggingSearchService({ compartmentParents: { [CHILD]: COMPARTMENT } });

const AUDIT_SPAN = 6 * HOUR;
const AUDIT = auditTimeline(T0, AUDIT_SPAN, 400);
const LOG_SPAN = 30 * DAY;
const LOGS = auditTimeline(T0, LOG_SPAN, 1200);
const CHILD_EVENT = membershipChangeEvent({
  kind: 'add',
  eventId: 'ev-child-add-bob-dba',
  time: T0 + 20 * DAY,
  userId: 'ocid1.user.oc1..bob',
  groupId: 'ocid1.group.oc1..dba',
  membershipId: 'ocid1.groupmembership.oc1..bob-dba',
  compartmentId: CHILD,
});

let seq = 0;
const fresh = (name: string) => join(dir, `${name}-${++seq}`);

beforeAll(async () => {
  principal = createTestPrincipal();
  dir = mkdtempSync(join(tmpdir(), 'hwaudit-backfill-'));
  auditSvc.add(
    AUDIT.map(
      (s): AuditRecord => ({
        compartmentId: s.compartment,
        processedAt: s.processedAt,
        event: s.pair.listEvent,
      }),
    ),
  );
  auditSvc.add(
    SUB_EVENTS.map((pair, i) => ({
      compartmentId: [CHILD, GRANDCHILD, DELETED][i]!,
      processedAt: T0 + (90 + i) * MINUTE,
      event: pair.listEvent,
    })),
  );
  logSvc.add([
    ...LOGS.map(
      (s): LogEntry => ({ compartmentId: s.compartment, datetime: s.time, logContent: s.pair.cloudEvent }),
    ),
    { compartmentId: CHILD, datetime: T0 + 20 * DAY, logContent: CHILD_EVENT.cloudEvent },
  ]);
  endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    handlers: [auditSvc.handler, logSvc.handler, identitySvc.handler],
  });
  const auth = await ociAuthProvider({
    kind: 'config-file',
    configFile: principal.configFile,
    profile: principal.profile,
  });
  audit = await createOciClient('audit', { auth, endpoint: endpoint.url, env: {} });
  logSearch = await createOciClient('loggingsearch', { auth, endpoint: endpoint.url, env: {} });
  identity = await createOciClient('identity', { auth, endpoint: endpoint.url, env: {} });
});

afterAll(async () => {
  await endpoint.close();
  principal.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  endpoint.faults.clear();
});

type FillOpts = Partial<BackfillOptions> & { state: string; sink: AlertSink };

/** One backfill run on a pipeline opened (and closed) on the state file's default scope. */
async function fill(o: FillOpts): Promise<BackfillResult> {
  const { state, sink, ...rest } = o;
  const handle = await openScopedPipeline({
    command: 'test',
    spec: state,
    scope: 'default',
    config,
    rules,
    sinks: [sink],
    env: {},
    warn: () => undefined,
  });
  try {
    return await backfill({
      source: 'audit',
      compartmentId: COMPARTMENT,
      from: T0,
      to: T0 + AUDIT_SPAN,
      audit,
      logSearch,
      pipeline: handle.pipeline,
      target: { scope: 'default', store: state },
      now: NOW,
      retry: { baseMs: 1, maxMs: 5 },
      ...rest,
    });
  } finally {
    await handle.close();
  }
}

/** The events the pipeline reads (not the noise) of COMPARTMENT processed in [from, to). */
const auditInRange = (from: number, to: number) =>
  AUDIT.filter(
    (s) => s.compartment === COMPARTMENT && !s.noise && s.processedAt >= from && s.processedAt < to,
  );

describe('backfill from the Audit API', () => {
  it('pages through minute-aligned windows whose queries overlap by the lateness', async () => {
    const before = auditSvc.queries.length;
    const state = `${fresh('state')}.sqlite`;
    const sink = new CollectingSink();
    const result = await fill({ state, sink });
    const queries = auditSvc.queries.slice(before);

    expect(result.completed).toBe(true);
    expect(result.windows).toBe(6);
    const firstPages = queries.filter((q) => q.page === undefined);
    expect(firstPages.map((q) => [q.startTime, q.endTime])).toEqual(
      [0, 1, 2, 3, 4, 5].map((h) => [
        formatQueryTime(h === 0 ? T0 : T0 + h * HOUR - 20 * MINUTE),
        formatQueryTime(T0 + (h + 1) * HOUR),
      ]),
    );
    for (const q of queries) expect(q.startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/);
    // Every page of every window was read: 25 per page, the last one short.
    expect(queries.length).toBeGreaterThan(firstPages.length * 2);
    expect(result.pages).toBe(queries.length);
    expect(result.calls).toBe(queries.length);

    const expected = auditInRange(T0, T0 + AUDIT_SPAN);
    const accepted = await acceptedKeys(state);
    // The noise was counted, and neither kept pending nor remembered as seen.
    expect(accepted.size).toBe(expected.length);
    for (const s of expected) expect(accepted.has(String(s.pair.listEvent.eventId))).toBe(true);
    const noise = AUDIT.filter((s) => s.noise && s.compartment === COMPARTMENT);
    expect(noise).toHaveLength(400);
    // Overlapping queries fetched some records twice: the pipeline dropped the copies of events,
    // and counted those of the noise as ignored again.
    expect(result.events).toBe(expected.length);
    expect(result.ignored).toBeGreaterThan(noise.length);
    expect(result.records).toBe(result.events + result.ignored + result.dead);
    // Processed 14 minutes after its window ended, the late event was still read.
    expect(accepted.has(`ev-add-bob-bg-${T0 + HOUR - 1000}`)).toBe(true);
    expect(accepted.has('ev-elsewhere')).toBe(false);

    const reference = await referenceAlerts(
      expected.map((s) => s.pair.listEvent),
      T0 + AUDIT_SPAN,
    );
    expect(reference.length).toBeGreaterThan(3);
    expect(ids(sink.alerts)).toEqual(reference);
    expect(sink.alerts.map((a) => a.rule)).toContain('dbsystem.change');
  });

  it('formats query times itself: the SDK would send local time with a Z outside TZ=UTC', async () => {
    const saved = process.env.TZ;
    try {
      // What the SDK does with Dates, shown against the endpoint.
      process.env.TZ = 'Asia/Kolkata';
      expect(new Date(T0).getHours()).toBe(14); // 09:00Z is 14:30 in UTC+5:30
      const before = auditSvc.queries.length;
      await audit.listEvents({
        compartmentId: COMPARTMENT,
        startTime: new Date(T0),
        endTime: new Date(T0 + HOUR),
      });
      expect(auditSvc.queries[before]?.startTime).toBe('2026-11-02T14:30:00Z');
      process.env.TZ = 'UTC';
      await audit.listEvents({
        compartmentId: COMPARTMENT,
        startTime: new Date(T0 - 6 * HOUR),
        endTime: new Date(T0),
      });
      expect(auditSvc.queries[before + 1]?.startTime).toBe('2026-11-02T3:00:00Z'); // unpadded hour, even in UTC

      // The backfill sends the same exact UTC queries and gets the same alerts in any zone.
      const runs: { queries: string[]; alerts: string[] }[] = [];
      for (const tz of ['UTC', 'Asia/Kolkata', 'America/St_Johns']) {
        process.env.TZ = tz;
        const from = auditSvc.queries.length;
        const sink = new CollectingSink();
        await fill({ state: `${fresh('tz')}.sqlite`, sink, to: T0 + 3 * HOUR });
        runs.push({
          queries: auditSvc.queries.slice(from).map((q) => `${q.startTime}/${q.endTime}`),
          alerts: ids(sink.alerts),
        });
      }
      expect(runs[0]!.queries[0]).toBe('2026-11-02T09:00:00Z/2026-11-02T10:00:00Z');
      expect(runs[1]).toEqual(runs[0]);
      expect(runs[2]).toEqual(runs[0]);
      expect(runs[0]!.alerts.length).toBeGreaterThan(0);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('reaches back whole minutes: the Audit API takes query times without seconds', async () => {
    const before = auditSvc.queries.length;
    const overlapMs = 15 * MINUTE + 30_000;
    await fill({
      state: `${fresh('state')}.sqlite`,
      sink: new CollectingSink(),
      to: T0 + 2 * HOUR,
      overlapMs,
    });
    const starts = auditSvc.queries.slice(before).map((q) => q.startTime);
    expect(starts).toContain(formatQueryTime(T0 + HOUR - 16 * MINUTE));
    for (const t of starts) expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/);
  });

  it('resumes from the checkpoint where a stopped run left off, and a finished range is not read again', async () => {
    const state = `${fresh('state')}.sqlite`;
    const checkpoint = fileCheckpoint(`${fresh('checkpoint')}.json`);
    const sink = new CollectingSink();
    const controller = new AbortController();
    const first = await fill({
      state,
      sink,
      checkpoint,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.windowsDone === 2) controller.abort();
      },
    });
    expect(first.completed).toBe(false);
    expect(first.windows).toBe(2);
    expect((await checkpoint.load())?.completedUntil).toBe(new Date(T0 + 2 * HOUR).toISOString());

    const before = auditSvc.queries.length;
    const second = await fill({ state, sink, checkpoint });
    expect(second.resumed).toBe(true);
    expect(second.startedAt).toBe(T0 + 2 * HOUR);
    expect(second.windows).toBe(4);
    // The resumed run reaches back by the overlap too: late events of window 2 are caught.
    expect(auditSvc.queries[before]?.startTime).toBe(formatQueryTime(T0 + 2 * HOUR - 20 * MINUTE));
    const saved = (await checkpoint.load()) as Checkpoint;
    expect(saved).toMatchObject({
      source: 'audit',
      compartmentId: COMPARTMENT,
      from: new Date(T0).toISOString(),
      completedUntil: new Date(T0 + AUDIT_SPAN).toISOString(),
      windows: 6,
    });

    const expected = auditInRange(T0, T0 + AUDIT_SPAN);
    expect((await acceptedKeys(state)).size).toBe(expected.length);
    expect(ids(sink.alerts)).toEqual(
      await referenceAlerts(
        expected.map((s) => s.pair.listEvent),
        T0 + AUDIT_SPAN,
      ),
    );

    const third = await fill({ state, sink, checkpoint });
    expect(third).toMatchObject({ resumed: true, completed: true, windows: 0, calls: 0, alerts: 0 });
  });

  it('a stopped run reports an output that failed when the pipeline opened', async () => {
    const state = `${fresh('state')}.sqlite`;
    // Down for every record at first, then only for those it missed (its backlog at the open).
    const sink = new (class extends CollectingSink {
      down: 'all' | 'backlog' = 'all';
      override async send(alerts: Alert[], ctx?: SendContext): Promise<void> {
        if (alerts.length > 0 && (this.down === 'all' || ctx?.backlog === true))
          throw new AuditError('SINK_FAILED', 'output down');
        await super.send(alerts);
      }
    })();
    await expect(fill({ state, sink })).rejects.toThrow('output down');
    sink.down = 'backlog';
    // Stopped before it read anything, and after a window: neither run ends as if all was sent.
    await expect(fill({ state, sink, signal: AbortSignal.abort() })).rejects.toThrow('output down');
    const controller = new AbortController();
    const stopped = fill({
      state,
      sink,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.windowsDone === 1) controller.abort();
      },
    });
    await expect(stopped).rejects.toThrow('output down');
  });

  it('catches events that became visible after their window was checkpointed, thanks to the overlap', async () => {
    const LIVE = 'ocid1.compartment.oc1..live';
    const event = (id: string, processedAt: number): AuditRecord => ({
      compartmentId: LIVE,
      processedAt,
      event: membershipChangeEvent({
        kind: 'add',
        eventId: id,
        time: processedAt - MINUTE,
        userId: 'ocid1.user.oc1..erin',
        groupId: 'ocid1.group.oc1..dba',
        membershipId: `ocid1.groupmembership.oc1..${id}`,
        compartmentId: LIVE,
      }).listEvent,
    });
    const live = [event('ev-live-1', T0 + 30 * MINUTE), event('ev-live-2', T0 + 90 * MINUTE)];
    auditSvc.add(live);
    const runs: Record<string, Set<string>> = {};
    for (const [name, overlapMs] of [
      ['overlap', 20 * MINUTE],
      ['none', 0],
    ] as const) {
      const state = `${fresh('state')}.sqlite`;
      const checkpoint = memoryCheckpoint();
      const common = { state, sink: new CollectingSink(), checkpoint, compartmentId: LIVE, overlapMs };
      await fill({ ...common, to: T0 + 2 * HOUR });
      // Processed 5 minutes before the window ended, visible only after the run had passed it.
      const late = event(`ev-live-late-${name}`, T0 + 2 * HOUR - 5 * MINUTE);
      live.push(late);
      auditSvc.add([late]);
      const resumed = await fill({ ...common, to: T0 + 3 * HOUR });
      expect(resumed.resumed).toBe(true);
      runs[name] = await acceptedKeys(
        state,
        live.map((r) => r.event),
      );
    }
    expect([...(runs.overlap ?? [])].sort()).toEqual(['ev-live-1', 'ev-live-2', 'ev-live-late-overlap']);
    expect(runs.none?.has('ev-live-late-none')).toBe(false);
  });

  it('a crash between the commit and the checkpoint re-reads one window, without duplicate alerts', async () => {
    const state = `${fresh('state')}.sqlite`;
    const memory = memoryCheckpoint();
    let saves = 0;
    const flaky: CheckpointStore = {
      load: () => memory.load(),
      async save(c) {
        if (++saves === 3) throw new Error('killed');
        await memory.save(c);
      },
    };
    const sink = new CollectingSink();
    await expect(fill({ state, sink, checkpoint: flaky })).rejects.toThrow('killed');
    expect(memory.current?.completedUntil).toBe(new Date(T0 + 2 * HOUR).toISOString());
    const resumed = await fill({ state, sink, checkpoint: memory });
    expect(resumed.startedAt).toBe(T0 + 2 * HOUR);
    const expected = auditInRange(T0, T0 + AUDIT_SPAN);
    expect(new Set(ids(sink.alerts)).size).toBe(sink.alerts.length);
    expect(ids(sink.alerts)).toEqual(
      await referenceAlerts(
        expected.map((s) => s.pair.listEvent),
        T0 + AUDIT_SPAN,
      ),
    );
  });

  it('refuses a checkpoint of another backfill, or of the same one committed to another scope or store', async () => {
    const state = `${fresh('state')}.sqlite`;
    const saved: Checkpoint = {
      version: 1,
      source: 'audit',
      compartmentId: COMPARTMENT,
      includeSubcompartments: false,
      scope: 'default',
      store: state,
      from: new Date(T0).toISOString(),
      to: new Date(T0 + HOUR).toISOString(),
      completedUntil: new Date(T0 + HOUR).toISOString(),
      windows: 1,
      records: 0,
      updatedAt: new Date(T0).toISOString(),
    };
    const refused = (checkpoint: Partial<Checkpoint>) =>
      expect(
        fill({
          state,
          sink: new CollectingSink(),
          checkpoint: memoryCheckpoint({ ...saved, ...checkpoint }),
        }),
      ).rejects.toMatchObject({ code: 'USAGE' });
    await refused({ compartmentId: OTHER });
    await refused({ scope: 'fleet-x' });
    await refused({ store: `${fresh('state')}.sqlite` });
    await expect(
      fill({ state, sink: new CollectingSink(), checkpoint: memoryCheckpoint(saved), to: T0 + 2 * HOUR }),
    ).resolves.toMatchObject({ resumed: true, windows: 1 });
  });

  it('backs off 429s and retries 5xx, then completes', async () => {
    endpoint.faults.failNext('audit.listEvents', 3, 429);
    endpoint.faults.failNext('audit.listEvents', 2, 503);
    const sink = new CollectingSink();
    const result = await fill({ state: `${fresh('state')}.sqlite`, sink, to: T0 + 2 * HOUR });
    expect(result).toMatchObject({ completed: true, throttled: 3, serverErrors: 2 });
    expect(result.calls).toBe(result.pages + 5);
  });
});

describe('backfill of a busy tenancy', () => {
  const BUSY = 'ocid1.compartment.oc1..busy';
  const SPAN = 3 * HOUR;
  const NOISE = 1_500;
  const changes = [
    membershipChangeEvent({
      kind: 'add',
      eventId: 'ev-busy-add-bob-bg',
      time: T0 + 40 * MINUTE,
      userId: 'ocid1.user.oc1..bob',
      groupId: 'ocid1.group.oc1..bg',
      membershipId: 'ocid1.groupmembership.oc1..busy-bob-bg',
      compartmentId: BUSY,
    }),
    membershipChangeEvent({
      kind: 'remove',
      eventId: 'ev-busy-remove-alice-dba',
      time: T0 + 2 * HOUR + 50 * MINUTE,
      userId: 'ocid1.user.oc1..alice',
      groupId: 'ocid1.group.oc1..dba',
      membershipId: 'ocid1.groupmembership.oc1..busy-alice-dba',
      compartmentId: BUSY,
    }),
  ];
  // Events of other services all along, the last of them read after the last change.
  const noiseTimes = Array.from({ length: NOISE }, (_, i) => T0 + Math.floor((i * SPAN) / NOISE));
  const noise = noiseTimes.map((t, i) => unrelatedEvent(`ev-busy-noise-${i}`, t, BUSY));
  /** Every record is processed 2 minutes after it happened: what the last window reads ends before. */
  const DELAY = 2 * MINUTE;
  const lastNoiseRead = Math.max(...noiseTimes.filter((t) => t + DELAY < T0 + SPAN));

  /** A backfill of the 3 hours (not finished), with what reached `pipeline.ingest` and what the store keeps. */
  async function run(keepIrrelevant: boolean) {
    const store = SqliteStore.open(':memory:');
    const pipeline = await Pipeline.open({ config, rules, store, now: NOW });
    const ingested: BatchItem[] = [];
    const ingest = pipeline.ingest.bind(pipeline);
    pipeline.ingest = (items, ...rest) => {
      const list = [...items];
      ingested.push(...list);
      return ingest(list, ...rest);
    };
    const result = await backfill({
      source: 'audit',
      compartmentId: BUSY,
      from: T0,
      to: T0 + SPAN,
      audit,
      pipeline,
      target: { scope: 'default', store: ':memory:' },
      now: NOW,
      finish: false,
      decode: { keepIrrelevant },
      retry: { baseMs: 1, maxMs: 5 },
    });
    const { latestEventTime, watermark } = pipeline;
    const pending = await store.loadPending();
    const noiseEvents = (
      await decodeBatch(JSON.stringify(noise.map((p) => p.listEvent)), 'noise', {
        keepIrrelevant: true,
      })
    ).flatMap((i) => (i.type === 'event' ? [i.event] : []));
    const seenNoise = await store.filterSeen(noiseEvents);
    const alerts = ids(await pipeline.finish(T0 + SPAN));
    const stats = { ...pipeline.stats };
    await store.close();
    return { result, ingested, latestEventTime, watermark, pending, seenNoise, alerts, stats };
  }

  it('keeps only the events the pipeline reads; the others reach it as one count a window, and move its clock as before', async () => {
    auditSvc.add(
      [...changes, ...noise].map((pair) => ({
        compartmentId: BUSY,
        processedAt: Date.parse(String(pair.listEvent.eventTime)) + DELAY,
        event: pair.listEvent,
      })),
    );
    const now = await run(false);
    const asEvents = await run(true);

    // Nothing that concerns nothing reached the pipeline as an event: one folded item per window.
    const reached = now.ingested.filter((i) => i.type === 'event' || i.type === 'ignored');
    expect(
      reached.filter((i) => i.type === 'event' && i.event.source === 'iam' && concernsNothing(i.event)),
    ).toEqual([]);
    const folded = now.ingested.flatMap((i) => (i.type === 'ignored' ? [i] : []));
    expect(folded).toHaveLength(3);
    expect(folded.reduce((n, i) => n + (i.count ?? 1), 0)).toBe(now.result.ignored);
    expect(now.result.ignored).toBeGreaterThanOrEqual(NOISE);
    // The same records, read as events before: counted all the same.
    expect(now.result.events + now.result.ignored).toBe(asEvents.result.events);
    expect(now.result.records).toBe(asEvents.result.records);
    // A change fetched again by an overlapping query is a duplicate; a record of the noise, ignored again.
    expect(now.stats).toMatchObject({
      received: now.result.records,
      ignored: now.result.ignored,
      duplicates: now.result.events - changes.length,
    });
    // Neither waiting in the store's pending table nor remembered as seen.
    expect(now.pending.map((e) => e.key)).toEqual(['ev-busy-remove-alice-dba']);
    expect(now.seenNoise.size).toBe(0);
    // Read as events, they were both, and went through the pipeline one by one.
    expect(asEvents.pending.length).toBeGreaterThan(1);
    expect(asEvents.seenNoise.size).toBeGreaterThan(0);
    expect(asEvents.ingested.length).toBeGreaterThan(NOISE);
    // The same clock, and the same alerts.
    expect(now.latestEventTime).toBe(asEvents.latestEventTime);
    expect(now.latestEventTime).toBe(lastNoiseRead);
    expect(now.watermark).toBe(asEvents.watermark);
    expect(now.alerts).toEqual(asEvents.alerts);
    expect(now.alerts.length).toBeGreaterThan(0);
  });
});

describe('backfill from Logging Search', () => {
  it('searches `<compartment>/_Audit` in chunks of at most 14 days, page by page', async () => {
    const before = logSvc.queries.length;
    const state = `${fresh('state')}.sqlite`;
    const sink = new CollectingSink();
    const result = await fill({ source: 'logging', state, sink, to: T0 + LOG_SPAN, pageLimit: 100 });
    const queries = logSvc.queries.slice(before);
    expect(result.completed).toBe(true);
    expect(result.windows).toBe(3);
    for (const q of queries) {
      expect(q.searchQuery).toBe(`search "${COMPARTMENT}/_Audit" | sort by datetime asc`);
      expect(q.timeEnd - q.timeStart).toBeLessThanOrEqual(14 * DAY);
      expect(q.limit).toBe(100);
    }
    expect(queries.filter((q) => q.page === undefined)).toHaveLength(3);
    expect(queries.length).toBeGreaterThan(12);

    const expected = LOGS.filter((s) => s.compartment === COMPARTMENT && !s.noise);
    const accepted = await acceptedKeys(state);
    expect(accepted.size).toBe(expected.length);
    expect(result.ignored).toBeGreaterThanOrEqual(
      LOGS.filter((s) => s.compartment === COMPARTMENT && s.noise).length,
    );
    expect(accepted.has('ev-child-add-bob-dba')).toBe(false);
    expect(ids(sink.alerts)).toEqual(
      await referenceAlerts(
        expected.map((s) => s.pair.cloudEvent),
        T0 + LOG_SPAN,
      ),
    );
    expect(sink.alerts.map((a) => a.rule)).toContain('dbsystem.change');
  });

  it('includes subcompartments with `_Audit_Include_Subcompartment`', async () => {
    const before = logSvc.queries.length;
    const state = `${fresh('state')}.sqlite`;
    const result = await fill({
      source: 'logging',
      state,
      sink: new CollectingSink(),
      from: T0 + 19 * DAY,
      to: T0 + 21 * DAY,
      includeSubcompartments: true,
    });
    expect(result.windows).toBe(1);
    expect(logSvc.queries[before]?.searchQuery).toBe(
      `search "${COMPARTMENT}/_Audit_Include_Subcompartment" | sort by datetime asc`,
    );
    expect((await acceptedKeys(state)).has('ev-child-add-bob-dba')).toBe(true);
  });
});

describe('backfill from the Audit API: the compartment tree', () => {
  const subKeys = ['ev-sub-0', 'ev-sub-1', 'ev-sub-2'];
  const accepted = async (state: string) =>
    acceptedKeys(
      state,
      SUB_EVENTS.map((p) => p.listEvent),
    );
  /** The hour the sub-compartment events were processed in, into a fresh state. */
  const fillHour = (state: string, extra: Partial<BackfillOptions> = {}) =>
    fill({
      source: 'audit',
      state,
      sink: new CollectingSink(),
      from: T0 + HOUR,
      to: T0 + 2 * HOUR,
      ...extra,
    });

  it('reads one compartment unless asked to walk the tree below it', async () => {
    const state = `${fresh('state')}.sqlite`;
    const result = await fillHour(state);
    expect(result.compartments).toBe(1);
    expect([...(await accepted(state))]).toEqual([]);
  });

  it('lists the compartments below (level by level, paged) and reads each, deleted ones left out', async () => {
    const before = endpoint.requestsTo('identity.listCompartments').length;
    const queriesBefore = auditSvc.queries.length;
    const state = `${fresh('state')}.sqlite`;
    const result = await fillHour(state, { includeSubcompartments: true, identity });
    // security, identity-domains, sibling, domain-eu (old is deleted).
    expect(result.compartments).toBe(4);
    expect([...(await accepted(state))].sort()).toEqual(subKeys.slice(0, 2));
    const listed = compartmentQueries(before);
    expect(listed.every((q) => !q.subtree)).toBe(true);
    expect(listed.some((q) => q.page !== undefined)).toBe(true); // 3 children at 2 a page
    const read = new Set(auditSvc.queries.slice(queriesBefore).map((q) => q.compartmentId));
    expect(read).toEqual(
      new Set([COMPARTMENT, CHILD, GRANDCHILD, 'ocid1.compartment.oc1..security-sibling']),
    );
  });

  it('from the tenancy, lists the whole tree in one paged query', async () => {
    const before = endpoint.requestsTo('identity.listCompartments').length;
    const state = `${fresh('state')}.sqlite`;
    const result = await fillHour(state, { compartmentId: TENANCY, includeSubcompartments: true, identity });
    expect(result.compartments).toBe(6); // the tenancy and 5 live compartments
    expect(compartmentQueries(before).every((q) => q.subtree && q.compartmentId === TENANCY)).toBe(true);
    expect([...(await accepted(state))].sort()).toEqual(subKeys.slice(0, 2));
  });
});

describe('planWindows', () => {
  it('tiles the range with minute-aligned windows whose queries reach back by the overlap', () => {
    const w = planWindows(T0, T0 + 150 * MINUTE, HOUR, 20 * MINUTE, true, T0);
    expect(
      w.map((x) => [(x.queryStart - T0) / MINUTE, (x.start - T0) / MINUTE, (x.end - T0) / MINUTE]),
    ).toEqual([
      [0, 0, 60],
      [40, 60, 120],
      [100, 120, 150],
    ]);
    expect(planWindows(T0 + HOUR, T0 + 2 * HOUR, HOUR, 20 * MINUTE, false, T0)[0]?.queryStart).toBe(
      T0 + 40 * MINUTE,
    );
  });
});

describe('backfill command', () => {
  const io = () => {
    const err: string[] = [];
    return {
      err,
      io: {
        stdout: process.stdout,
        stderr: { write: (s: string) => err.push(s) } as unknown as NodeJS.WritableStream,
      },
    };
  };

  it('runs in a non-UTC zone, keeps its checkpoint beside the state, and a rerun adds nothing', async () => {
    const saved = process.env.TZ;
    process.env.TZ = 'America/Los_Angeles';
    try {
      const configFile = `${fresh('config')}.json`;
      writeFileSync(configFile, JSON.stringify(baseConfig()));
      const state = `${fresh('state')}.sqlite`;
      const out = `${fresh('alerts')}.jsonl`;
      const args = [
        '--compartment',
        COMPARTMENT,
        '--from',
        new Date(T0).toISOString(),
        '--to',
        new Date(T0 + AUDIT_SPAN).toISOString(),
        '--config',
        configFile,
        '--state',
        state,
        '--endpoint',
        endpoint.url,
        '--out',
        out,
      ];
      const deps = {
        env: { HWAUDIT_OCI_CONFIG_FILE: principal.configFile },
        handleSignals: false,
        progressMs: 0,
        backfill: { now: NOW, retry: { baseMs: 1, maxMs: 5 } },
      };
      const first = io();
      expect(await runBackfill(args, first.io, deps)).toBe(0);
      expect(first.err.join('')).toMatch(/backfill: complete; 6 windows/);
      expect(first.err.join('')).toContain(
        `backfill: covered compartment ${COMPARTMENT} only, not the compartments below it (--include-subcompartments reads them)`,
      );
      const lines = readFileSync(out, 'utf8').trim().split('\n');
      const expected = auditInRange(T0, T0 + AUDIT_SPAN);
      expect(lines.map((l) => (JSON.parse(l) as Alert).id).sort()).toEqual(
        await referenceAlerts(
          expected.map((s) => s.pair.listEvent),
          T0 + AUDIT_SPAN,
        ),
      );
      const checkpoint = JSON.parse(
        readFileSync(`${state}.backfill-audit-default.json`, 'utf8'),
      ) as Checkpoint;
      expect(checkpoint.completedUntil).toBe(new Date(T0 + AUDIT_SPAN).toISOString());

      const second = io();
      expect(await runBackfill(args, second.io, deps)).toBe(0);
      expect(second.err.join('')).toMatch(/resumed at .*0 windows, 0 pages/);
      expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(lines.length);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('an output that fails ends the run with its summary, then the error', async () => {
    const configFile = `${fresh('config')}.json`;
    writeFileSync(configFile, JSON.stringify(baseConfig()));
    const cli = io();
    const args = [
      ...['--compartment', COMPARTMENT, '--from', new Date(T0).toISOString()],
      ...['--to', new Date(T0 + AUDIT_SPAN).toISOString(), '--config', configFile],
      // Every write to /dev/full fails (ENOSPC): the first batch with alerts stores them, and fails.
      ...['--endpoint', endpoint.url, '--out', '/dev/full'],
    ];
    const deps = {
      env: { HWAUDIT_OCI_CONFIG_FILE: principal.configFile },
      handleSignals: false,
      backfill: { now: NOW, retry: { baseMs: 1, maxMs: 5 } },
    };
    await expect(runBackfill(args, cli.io, deps)).rejects.toThrow(
      'cannot write alerts to /dev/full (ENOSPC)',
    );
    expect(cli.err.join('')).toMatch(
      // The alert of the batch whose delivery failed is counted: it was stored.
      /\nbackfill: failed; 0 windows, 3 pages, 60 records \(1 events, 59 ignored, 0 dead letters\), 1 alerts in [\d.]+ s; 3 calls, throttled 0; committed until 2026-11-02T09:00:00\.000Z\nbackfill: failed after the work above; the error follows\n$/,
    );
  });

  it('binds its checkpoint to --state and --scope', async () => {
    const configFile = `${fresh('config')}.json`;
    writeFileSync(configFile, JSON.stringify(baseConfig()));
    const state = `${fresh('state')}.sqlite`;
    const run = async (...extra: string[]) => {
      const cli = io();
      const args = [
        ...['--compartment', COMPARTMENT, '--from', new Date(T0).toISOString()],
        ...['--to', new Date(T0 + 2 * HOUR).toISOString(), '--config', configFile],
        ...['--endpoint', endpoint.url, '--out', `${fresh('alerts')}.jsonl`, ...extra],
      ];
      const deps = {
        env: { HWAUDIT_OCI_CONFIG_FILE: principal.configFile },
        handleSignals: false,
        backfill: { now: NOW, retry: { baseMs: 1, maxMs: 5 } },
      };
      await runBackfill(args, cli.io, deps);
      return cli.err.join('');
    };
    expect(await run('--state', state, '--scope', 'fleet-x')).toMatch(/complete; 2 windows/);
    // Another scope of the same state has its own default checkpoint: it reads the range too.
    expect(await run('--state', state, '--scope', 'fleet-y')).toMatch(/complete; 2 windows/);
    expect(await run('--state', state, '--scope', 'fleet-y')).toMatch(/resumed at .*0 windows/);

    const checkpoint = `${state}.backfill-audit-fleet-x.json`;
    await expect(
      run('--state', state, '--scope', 'fleet-z', '--checkpoint', checkpoint),
    ).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/scope fleet-x of .*, not to scope fleet-z of /),
    });
    const other = `${fresh('state')}.sqlite`;
    await expect(
      run('--state', other, '--scope', 'fleet-x', '--checkpoint', checkpoint),
    ).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining(`not to scope fleet-x of ${other}`),
    });
    // A temporary state cannot carry what a checkpoint says was committed.
    await expect(run('--checkpoint', checkpoint)).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining('--checkpoint needs --state'),
    });
  });

  it('refuses bad usage', async () => {
    const { io: cli } = io();
    const base = ['--compartment', COMPARTMENT, '--from', '2026-11-02T00:00:00Z', '--config', 'x.yaml'];
    await expect(runBackfill([...base, '--overlap', 'PT5M'], cli)).rejects.toMatchObject({ code: 'USAGE' });
    await expect(runBackfill([...base, '--source', 'splunk'], cli)).rejects.toMatchObject({ code: 'USAGE' });
    await expect(runBackfill([...base, '--to', '2026-11-01T00:00:00Z'], cli)).rejects.toMatchObject({
      code: 'USAGE',
    });
    await expect(runBackfill([...base, '--window', 'soon'], cli)).rejects.toMatchObject({ code: 'USAGE' });
    for (const [option, value] of [
      ['--overlap', 'PT15M30S'],
      ['--window', 'PT90S'],
    ]) {
      await expect(runBackfill([...base, option!, value!], cli)).rejects.toMatchObject({
        code: 'USAGE',
        message: `${option} must be a whole number of minutes: windows and queries start on the minute`,
      });
    }
    const named = ['--compartment', 'security', ...base.slice(2)];
    await expect(runBackfill(named, cli)).rejects.toMatchObject({
      code: 'USAGE',
      message: '--compartment expects an OCID (ocid1.compartment... or ocid1.tenancy...)',
    });
    // Without --to, the period ends now: a --from after it is in the future, not after --to.
    const future = ['--compartment', COMPARTMENT, '--from', '2099-01-01T00:00:00Z', '--config', 'x.yaml'];
    await expect(runBackfill(future, cli)).rejects.toMatchObject({
      code: 'USAGE',
      message: 'backfill: --from 2099-01-01T00:00:00.000Z is in the future',
    });
  });
});
