// The stream consumer against the local OCI endpoint with the real oci-streaming StreamClient:
// group cursors, commits after ingest, partitions shared by instances, cursor expiry, 429
// storms, crashes and clean stops. Every run is compared with one undisturbed reference run.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StreamClient } from 'oci-streaming';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConsume } from '../../functions/cli/consume.js';
import { openScopedPipeline } from '../../functions/cli/host.js';
import type { Alert } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import { validateConfig } from '../../shared/config/load-config.js';
import { decodeBatch } from '../../shared/decode/read-input.js';
import { baseConfig, T0 } from '../../shared/detect/timeline.js';
import type { AlertSink, SendContext } from '../../shared/emit/sink.js';
import { AuditError } from '../../shared/errors.js';
import { LogPositions } from '../../shared/log-positions.js';
import { ociAuthProvider } from '../../shared/oci/auth.js';
import { createOciClient } from '../../shared/oci/clients.js';
import {
  type ConsumerOptions,
  type ConsumerStats,
  callWithRetries,
  DEFAULT_RETRY_BUDGET,
  partitionScope,
  StreamConsumer,
} from '../../shared/sources/stream-consumer.js';
import { EntityCache } from '../../shared/state/entity-cache.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { grouped } from '../../shared/text.js';
import { membershipChangeEvent, unrelatedEvent } from '../oci-endpoint/audit.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, type TestPrincipal } from '../oci-endpoint/signature.js';
import {
  collectorRecord,
  mysqlWorkload,
  type StreamingOptions,
  type StreamingService,
  streamingService,
} from '../oci-endpoint/streaming.js';

const STREAM = 'ocid1.stream.oc1..iamaudit';
const DB1 = { id: 'ocid1.mysqldbsystem.oc1..prod1', name: 'prod-orders' };
const DB2 = { id: 'ocid1.mysqldbsystem.oc1..prod2', name: 'prod-payments' };
const COMPARTMENT = 'ocid1.tenancy.oc1..example';
const SESSIONS_PER_DB = 150;

function fleetConfig(): ConfigInput {
  const config = baseConfig();
  const first = config.dbSystems![0]!;
  config.dbSystems = [first, { ...first, id: DB2.id, name: DB2.name }];
  return config;
}
const { config, rules } = validateConfig(fleetConfig());

type Payload = { ts: number; value: string; key: string };

/** Partition 0: prod1's audit trail with the IAM events; partition 1: prod2's. Both in event-time order. */
function streamPayloads(): Payload[][] {
  const forDb = (db: typeof DB1, start: number): Payload[] =>
    mysqlWorkload({ start, sessions: SESSIONS_PER_DB }).map((e) => ({
      ts: Date.parse(`${String(e.timestamp).replace(' ', 'T')}Z`),
      value: JSON.stringify(collectorRecord(db, e)),
      key: db.id,
    }));
  const iam = [
    membershipChangeEvent({
      kind: 'remove',
      eventId: 'ev-remove-alice-dba',
      time: T0 + 25 * 60_000,
      userId: 'ocid1.user.oc1..alice',
      groupId: 'ocid1.group.oc1..dba',
      membershipId: 'ocid1.groupmembership.oc1..alice-dba',
      compartmentId: COMPARTMENT,
    }),
    membershipChangeEvent({
      kind: 'add',
      eventId: 'ev-add-bob-bg',
      time: T0 + 40 * 60_000,
      userId: 'ocid1.user.oc1..bob',
      groupId: 'ocid1.group.oc1..bg',
      membershipId: 'ocid1.groupmembership.oc1..bob-bg',
      compartmentId: COMPARTMENT,
    }),
    unrelatedEvent('ev-get-instance', T0 + 50 * 60_000, COMPARTMENT),
  ].map((pair) => ({
    ts: Date.parse(String(pair.cloudEvent.time)),
    value: JSON.stringify(pair.cloudEvent),
    key: DB1.id,
  }));
  const p0 = [...forDb(DB1, T0), ...iam].sort((a, b) => a.ts - b.ts);
  const p1 = forDb(DB2, T0 + 7_000);
  return [p0, p1];
}

const PAYLOADS = streamPayloads();
const TOTAL = PAYLOADS[0]!.length + PAYLOADS[1]!.length;
/** The messages whose events the state keeps: all but the one of another service (ignored, only counted). */
const KEPT = TOTAL - 1;

class CollectingSink implements AlertSink {
  readonly name = 'collect';
  readonly alerts: Alert[] = [];
  async send(alerts: Alert[]): Promise<void> {
    this.alerts.push(...alerts);
  }
}

type Env = {
  endpoint: OciEndpoint;
  streaming: StreamingService;
  client: StreamClient;
  close(): Promise<void>;
};

let principal: TestPrincipal;
let dir: string;
const envs: Env[] = [];

/**
 * A clock for the endpoint that runs with real time plus whatever the consumer "slept": the
 * consumer's injected sleep advances it instead of waiting, so rate windows and cursor lifetimes
 * are exercised at their real sizes (5 GET/s, 5 minutes) without the test waiting for them.
 */
function virtualClock() {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance(ms: number) {
      offset += Math.max(0, ms);
    },
    get advanced() {
      return offset;
    },
  };
}

async function startEnv(
  opts: Partial<StreamingOptions> = {},
  endpointOpts: { now?: () => number; maxClockSkewMs?: number } = {},
): Promise<Env> {
  const streaming = streamingService({
    streams: [{ id: STREAM, name: 'iam-audit', partitions: 2 }],
    getsPerSecond: Number.POSITIVE_INFINITY,
    ...opts,
  });
  PAYLOADS.forEach((list, partition) => {
    streaming.append(
      STREAM,
      list.map((p) => ({ value: p.value, key: p.key, partition })),
    );
  });
  const endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    ...endpointOpts,
    handlers: [streaming.handler],
  });
  const auth = await ociAuthProvider({
    kind: 'config-file',
    configFile: principal.configFile,
    profile: principal.profile,
  });
  const client = await createOciClient('streaming', { auth, endpoint: endpoint.url, env: {} });
  const env = { endpoint, streaming, client, close: () => endpoint.close() };
  envs.push(env);
  return env;
}

let seq = 0;
const fresh = (name: string) => `${name}-${++seq}`;
const statePath = () => join(dir, `${fresh('state')}.sqlite`);

type RunOpts = Partial<ConsumerOptions> & {
  env: Env;
  state: string;
  group: string;
  instance?: string;
  sink: AlertSink;
};

function consumer(o: RunOpts): StreamConsumer {
  const { env, state, sink, ...rest } = o;
  return new StreamConsumer({
    client: env.client,
    streamId: STREAM,
    instance: 'a',
    limit: 150,
    minGetIntervalMs: 0,
    idleWaitMs: 0,
    stopAfterEmptyGets: 1,
    retry: { baseMs: 2, maxMs: 20 },
    openPartition: (scope) =>
      openScopedPipeline({
        command: 'test',
        hold: 'batch',
        spec: state,
        scope,
        config,
        rules,
        sinks: [sink],
        env: {},
        warn: () => undefined,
      }),
    ...rest,
  });
}

/** The canonical events of each partition's messages (what a consumer must not lose). */
const EXPECTED: Promise<CanonicalEvent[][]> = Promise.all(
  PAYLOADS.map(async (list, p) => {
    const items = await decodeBatch(`[${list.map((m) => m.value).join(',')}]`, `expected ${p}`);
    return items.flatMap((i) => (i.type === 'event' ? [i.event] : []));
  }),
);

/**
 * How many of the stream's events the group's partition scopes hold: seen (by key, or by position
 * in their MySQL log), or pending the watermark.
 */
async function acceptedCount(state: string, group: string): Promise<number> {
  const expected = await EXPECTED;
  let n = 0;
  for (const [p, events] of expected.entries()) {
    const store = SqliteStore.open(state, { scope: partitionScope(STREAM, group, p) });
    try {
      const seen = await store.filterSeen(events);
      const pending = new Set((await store.loadPending()).map((e) => e.key));
      const cache = new EntityCache();
      for (const row of await store.loadEntities()) cache.load(row);
      const positions = new LogPositions(cache, config.lateness);
      n += events.filter((e) => seen.has(e.key) || pending.has(e.key) || positions.isRedelivery(e)).length;
    } finally {
      await store.close();
    }
  }
  return n;
}

const ids = (alerts: readonly Alert[]) => alerts.map((a) => a.id).sort();

let reference: { alerts: string[]; stats: ConsumerStats; accepted: number };

beforeAll(async () => {
  principal = createTestPrincipal();
  dir = mkdtempSync(join(tmpdir(), 'hwaudit-consumer-'));
  const env = await startEnv();
  const sink = new CollectingSink();
  const state = statePath();
  const group = fresh('reference');
  const stats = await consumer({ env, state, group, sink }).run();
  reference = { alerts: ids(sink.alerts), stats, accepted: await acceptedCount(state, group) };
});

afterAll(async () => {
  for (const e of envs) await e.close();
  principal.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('stream consumer: reference run', () => {
  it('reads every message of both partitions through one group cursor and raises alerts', () => {
    expect(reference.stats.messages).toBe(TOTAL);
    expect(reference.stats.offsets).toEqual({ '0': PAYLOADS[0]!.length - 1, '1': PAYLOADS[1]!.length - 1 });
    expect(reference.accepted).toBe(KEPT);
    expect(reference.alerts.length).toBeGreaterThan(20);
    expect(new Set(reference.alerts).size).toBe(reference.alerts.length);
    expect(reference.stats.calls.createGroupCursor).toBe(1);
    expect(reference.stats.calls.consumerCommit).toBe(reference.stats.batches);
  });

  it('counts what became of the records: the event of another service is ignored, not an event', () => {
    const { records, pipeline } = reference.stats;
    expect(records).toBe(TOTAL);
    expect(pipeline).toMatchObject({ received: TOTAL, ignored: 1, duplicates: 0, late: 0, deadLetters: {} });
    expect(pipeline.processed).toBeGreaterThan(0);
    expect(pipeline.processed).toBeLessThanOrEqual(KEPT);
  });

  it('commits a batch only after its state is committed, and commits exactly the offsets read', async () => {
    const env = await startEnv();
    const group = fresh('order');
    const state = statePath();
    const commitsAtIngest: number[] = [];
    await consumer({
      env,
      state,
      group,
      sink: new CollectingSink(),
      afterIngest: () => {
        commitsAtIngest.push(env.streaming.stats.commits);
      },
    }).run();
    expect(commitsAtIngest).toEqual(commitsAtIngest.map((_, i) => i));
    expect(env.streaming.committed(STREAM, group)).toEqual({
      '0': PAYLOADS[0]!.length - 1,
      '1': PAYLOADS[1]!.length - 1,
    });
  });

  it('URL-encodes cursors: the service never sees a mangled one', async () => {
    const env = await startEnv();
    await consumer({ env, state: statePath(), group: fresh('encoding'), sink: new CollectingSink() }).run();
    const gets = env.endpoint.requestsTo('streaming.getMessages');
    expect(gets.length).toBeGreaterThan(3);
    expect(gets.every((r) => r.status === 200)).toBe(true);
    expect(gets.every((r) => /cursor=[^&]*%2B/.test(r.target) && /cursor=[^&]*%2F/.test(r.target))).toBe(
      true,
    );
  });
});

describe('stream consumer: idle sweep', () => {
  it('while the stream is idle, the clock advances the watermark and a stale break-glass grant is reported', async () => {
    expect(reference.alerts.length).toBeGreaterThan(0);
    const env = await startEnv();
    const sink = new CollectingSink();
    const c = consumer({
      env,
      state: statePath(),
      group: fresh('sweep'),
      sink,
      idleSweep: { latenessMs: 20 * 60_000, everyMs: 0 },
      now: () => T0 + 10 * 3_600_000,
    });
    const stats = await c.run();
    expect(stats.sweeps).toBe(1);
    const stale = sink.alerts.filter((a) => a.rule === 'break-glass.stale');
    expect(stale).toHaveLength(1);
    expect(stale[0]?.identity?.principalId).toBe('ocid1.user.oc1..bob');
    // Everything the reference raised is still raised, once; the sweep also applied the events
    // the reference left waiting for the watermark when the stream ran dry.
    const all = ids(sink.alerts);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(expect.arrayContaining(reference.alerts));
  });

  it('without an idle sweep the grant is not judged before later events arrive', async () => {
    const env = await startEnv();
    const sink = new CollectingSink();
    const stats = await consumer({ env, state: statePath(), group: fresh('nosweep'), sink }).run();
    expect(stats.sweeps).toBe(0);
    expect(sink.alerts.filter((a) => a.rule === 'break-glass.stale')).toHaveLength(0);
  });
});

describe('stream consumer: several instances', () => {
  it('two instances of a group split the two partitions and give the same alerts as one', async () => {
    const env = await startEnv();
    const group = fresh('pair');
    const state = statePath();
    // Both instances join before either reads, as two pods started together would.
    for (const instanceName of ['a', 'b']) {
      await env.client.createGroupCursor({
        streamId: STREAM,
        createGroupCursorDetails: { groupName: group, instanceName, type: 'TRIM_HORIZON' as never },
      });
    }
    const sink = new CollectingSink();
    const [a, b] = await Promise.all([
      consumer({ env, state, group, instance: 'a', sink }).run(),
      consumer({ env, state, group, instance: 'b', sink }).run(),
    ]);
    expect(Object.keys(a.offsets)).toEqual(['0']);
    expect(Object.keys(b.offsets)).toEqual(['1']);
    expect(a.messages + b.messages).toBe(TOTAL);
    expect(ids(sink.alerts)).toEqual(reference.alerts);
    expect(env.streaming.reservations(STREAM, group)).toEqual({ '0': 'a', '1': 'b' });
  });

  it('an instance joining mid-stream takes a partition over without loss or duplicate alerts', async () => {
    const env = await startEnv();
    const group = fresh('join');
    const state = statePath();
    const sink = new CollectingSink();
    const first = await consumer({ env, state, group, instance: 'a', sink, maxBatches: 4 }).run();
    expect(Object.keys(first.offsets).sort()).toEqual(['0', '1']);
    const [a, b] = await Promise.all([
      consumer({ env, state, group, instance: 'a', sink }).run(),
      consumer({ env, state, group, instance: 'b', sink }).run(),
    ]);
    expect(b.messages).toBeGreaterThan(0);
    expect(first.messages + a.messages + b.messages).toBeGreaterThanOrEqual(TOTAL);
    expect(ids(sink.alerts)).toEqual(reference.alerts);
    expect(await acceptedCount(state, group)).toBe(KEPT);
  });
});

describe('stream consumer: idle sweep after a rebalance', () => {
  const LATER = T0 + 10 * 3_600_000;
  const sweepAt = (now: () => number) => ({ idleSweep: { latenessMs: 20 * 60_000, everyMs: 0 }, now });
  const stale = (sink: CollectingSink) => sink.alerts.filter((a) => a.rule === 'break-glass.stale');
  /** bob leaves BreakGlass 20 minutes after he joined it: no stale grant to report. */
  const appendBobLeaves = (env: Env) => {
    const removal = membershipChangeEvent({
      kind: 'remove',
      eventId: 'ev-remove-bob-bg',
      time: T0 + 60 * 60_000,
      userId: 'ocid1.user.oc1..bob',
      groupId: 'ocid1.group.oc1..bg',
      membershipId: 'ocid1.groupmembership.oc1..bob-bg',
      compartmentId: COMPARTMENT,
    });
    env.streaming.append(STREAM, [{ value: JSON.stringify(removal.cloudEvent), key: DB1.id, partition: 0 }]);
  };
  const entities = async (state: string, group: string) => {
    const store = SqliteStore.open(state, { scope: partitionScope(STREAM, group, 0) });
    try {
      return await store.loadEntities();
    } finally {
      await store.close();
    }
  };
  /**
   * Instance b reads both partitions and sweeps. At its first empty read bob's removal is
   * appended and `meanwhile` runs; then b, idle, sweeps again ten hours on and stops.
   */
  const firstOwner = (
    o: { env: Env; state: string; group: string; sink: CollectingSink },
    meanwhile: () => Promise<void>,
  ): Promise<ConsumerStats> => {
    let clock = T0 + 30 * 60_000;
    let done = false;
    const b: StreamConsumer = consumer({
      ...o,
      instance: 'b',
      stopAfterEmptyGets: 2,
      ...sweepAt(() => clock),
      sleep: async () => {
        if (done || b.stats.emptyGets === 0) return;
        done = true;
        appendBobLeaves(o.env);
        await meanwhile();
        clock = LATER;
      },
    });
    return b.run();
  };

  it('an instance sweeps only the partitions still reserved to it; one instance and two give the same alerts', async () => {
    const single = await startEnv();
    appendBobLeaves(single);
    const one = new CollectingSink();
    await consumer({
      env: single,
      state: statePath(),
      group: fresh('single'),
      sink: one,
      ...sweepAt(() => LATER),
    }).run();
    expect(stale(one)).toHaveLength(0);

    // a joins: partition 0 (the IAM events) moves to it, a reads bob's removal and sweeps. b still
    // holds partition 0 as it read it.
    const env = await startEnv();
    const group = fresh('moved');
    const state = statePath();
    const sinkA = new CollectingSink();
    const sinkB = new CollectingSink();
    let ownerState: unknown;
    const stats = await firstOwner({ env, state, group, sink: sinkB }, async () => {
      const a = await consumer({
        env,
        state,
        group,
        instance: 'a',
        sink: sinkA,
        ...sweepAt(() => LATER),
      }).run();
      expect(a.offsets).toEqual({ '0': PAYLOADS[0]!.length });
      ownerState = await entities(state, group);
    });
    expect(env.streaming.reservations(STREAM, group)).toEqual({ '0': 'a', '1': 'b' });
    expect(stats.sweeps).toBe(2);
    expect(stats.released).toBe(1);
    expect(stale(sinkB)).toHaveLength(0);
    expect(await entities(state, group)).toEqual(ownerState);
    expect(ids([...sinkA.alerts, ...sinkB.alerts])).toEqual(ids(one.alerts));
  });

  it('a partition that comes back after another instance committed it is swept from the store', async () => {
    const env = await startEnv();
    const group = fresh('back');
    const state = statePath();
    const sink = new CollectingSink();
    const stats = await firstOwner({ env, state, group, sink }, async () => {
      // a takes partition 0 over, reads bob's removal and dies: partition 0 comes back to b.
      await consumer({ env, state, group, instance: 'a', sink }).run();
      env.streaming.dropInstance(STREAM, group, 'a');
    });
    expect(env.streaming.reservations(STREAM, group)).toEqual({ '0': 'b', '1': 'b' });
    expect(stats.reloads).toBe(1);
    expect(stats.released).toBe(0);
    expect(stale(sink)).toHaveLength(0);
  });
});

describe('stream consumer: partitions moving back and forth', () => {
  it('reloads a partition that another instance processed meanwhile, and the result is unchanged', async () => {
    const env = await startEnv();
    const group = fresh('move');
    const state = statePath();
    const sink = new CollectingSink();
    let b: ConsumerStats | undefined;
    const a = await consumer({
      env,
      state,
      group,
      instance: 'a',
      sink,
      afterIngest: async ({ batch }) => {
        if (batch !== 2) return;
        // a has read both partitions (batch 2 starts at partition 1). b joins (partition 1 moves to
        // it), reads two batches, then dies: partition 1 comes back to a, past what a ingested.
        b = await consumer({ env, state, group, instance: 'b', sink, maxBatches: 2 }).run();
        env.streaming.dropInstance(STREAM, group, 'b');
      },
    }).run();
    expect(Object.keys(b?.offsets ?? {})).toEqual(['1']);
    expect(a.reloads).toBe(1);
    expect(ids(sink.alerts)).toEqual(reference.alerts);
    expect(await acceptedCount(state, group)).toBe(KEPT);
  });
});

describe('stream consumer: failures', () => {
  it('a consumer killed after ingest and before commit loses nothing and duplicates nothing', async () => {
    const env = await startEnv();
    const group = fresh('crash');
    const state = statePath();
    const sink = new CollectingSink();
    // Crash three times at different points, then let it finish.
    for (const crashAt of [2, 3, 5]) {
      const run = consumer({
        env,
        state,
        group,
        sink,
        afterIngest: ({ batch }) => {
          if (batch === crashAt) throw new Error('killed');
        },
      }).run();
      await expect(run).rejects.toThrow('killed');
    }
    const last = await consumer({ env, state, group, sink }).run();
    expect(last.messages).toBeGreaterThan(0);
    expect(ids(sink.alerts)).toEqual(reference.alerts);
    expect(await acceptedCount(state, group)).toBe(KEPT);
  });

  it('an output still failing when a partition reopens fails the consumer once the batch was processed', async () => {
    const env = await startEnv();
    const group = fresh('reopen-down');
    const state = statePath();
    // Down for every record at first, then only for those it missed (its backlog at the open).
    const sink = new (class extends CollectingSink {
      down: 'all' | 'backlog' | 'none' = 'all';
      override async send(alerts: Alert[], ctx?: SendContext): Promise<void> {
        if (alerts.length > 0 && (this.down === 'all' || (this.down === 'backlog' && ctx?.backlog === true)))
          throw new AuditError('SINK_FAILED', 'output down');
        await super.send(alerts);
      }
    })();
    await expect(consumer({ env, state, group, sink }).run()).rejects.toThrow('output down');
    sink.down = 'backlog';
    const before = await acceptedCount(state, group);
    // The consumer runs without end: the failure kept at the open is reported by the step after it.
    await expect(consumer({ env, state, group, sink }).run()).rejects.toThrow('output down');
    expect(await acceptedCount(state, group)).toBeGreaterThan(before);
    sink.down = 'none';
    await consumer({ env, state, group, sink }).run();
    expect(ids(sink.alerts)).toEqual(reference.alerts);
    expect(await acceptedCount(state, group)).toBe(KEPT);
  });

  it('a stop request finishes and commits the batch in progress; a restart continues from there', async () => {
    const env = await startEnv();
    const group = fresh('stop');
    const state = statePath();
    const sink = new CollectingSink();
    const controller = new AbortController();
    const stopped = await consumer({
      env,
      state,
      group,
      sink,
      signal: controller.signal,
      afterIngest: ({ batch }) => {
        if (batch === 3) controller.abort();
      },
    }).run();
    expect(stopped.batches).toBe(3);
    expect(env.streaming.stats.commits).toBe(3);
    const committed = env.streaming.committed(STREAM, group);
    expect(Object.entries(committed).map(([p, o]) => [p, o])).toEqual(
      Object.entries(stopped.offsets).map(([p, o]) => [p, o]),
    );
    const rest = await consumer({ env, state, group, sink }).run();
    expect(stopped.messages + rest.messages).toBe(TOTAL);
    expect(ids(sink.alerts)).toEqual(reference.alerts);
  });

  it('recovers from a cursor that expires mid-read: new group cursor, resume at the committed offsets', async () => {
    const env = await startEnv();
    const group = fresh('expiry');
    const state = statePath();
    const sink = new CollectingSink();
    const stats = await consumer({
      env,
      state,
      group,
      sink,
      afterIngest: ({ batch }) => {
        if (batch === 2 || batch === 6) env.streaming.expireCursors();
      },
    }).run();
    expect(stats.cursorRecreations).toBe(2);
    expect(stats.calls.createGroupCursor).toBe(3);
    expect(env.streaming.stats.expiredCursors).toBe(2);
    // The two batches whose commit was refused are read again and deduped.
    expect(stats.messages).toBeGreaterThan(TOTAL);
    expect(ids(sink.alerts)).toEqual(reference.alerts);
    expect(await acceptedCount(state, group)).toBe(KEPT);
  });

  it('recovers when the 5-minute cursor lifetime passes during a slow batch', async () => {
    const clock = virtualClock();
    // The SDK signs with the real time: let the endpoint accept a clock 6 minutes ahead.
    const env = await startEnv({}, { now: clock.now, maxClockSkewMs: 60 * 60_000 });
    const sink = new CollectingSink();
    const state = statePath();
    const group = fresh('ttl');
    const stats = await consumer({
      env,
      state,
      group,
      sink,
      heartbeatMs: 60 * 60_000,
      afterIngest: ({ batch }) => {
        if (batch === 2) clock.advance(6 * 60_000);
      },
    }).run();
    expect(env.streaming.stats.expiredCursors).toBe(1);
    expect(stats.cursorRecreations).toBe(1);
    expect(ids(sink.alerts)).toEqual(reference.alerts);
    expect(await acceptedCount(state, group)).toBe(KEPT);
  });

  it('heartbeats keep the cursor of a slow batch alive', async () => {
    // The slow batch takes three cursor lifetimes; the margins hold on a loaded machine.
    const env = await startEnv({ cursorTtlMs: 1000 });
    const sink = new CollectingSink();
    const stats = await consumer({
      env,
      state: statePath(),
      group: fresh('heartbeat'),
      sink,
      heartbeatMs: 150,
      afterIngest: ({ batch }) => (batch === 2 ? new Promise<void>((r) => setTimeout(r, 3000)) : undefined),
    }).run();
    expect(stats.calls.consumerHeartbeat).toBeGreaterThan(2);
    expect(stats.cursorRecreations).toBe(0);
    expect(env.streaming.stats.expiredCursors).toBe(0);
    expect(stats.messages).toBe(TOTAL);
    expect(ids(sink.alerts)).toEqual(reference.alerts);
  });

  it('backs off a 429 storm from the service limit (5 GET/s per group and partition) and loses nothing', async () => {
    const clock = virtualClock();
    const env = await startEnv({ getsPerSecond: 5 }, { now: clock.now });
    const sleeps: number[] = [];
    const sink = new CollectingSink();
    const sleep = async (ms: number) => {
      if (ms > 0) sleeps.push(ms);
      clock.advance(ms);
    };
    const stats = await consumer({
      env,
      state: statePath(),
      group: fresh('storm'),
      sink,
      limit: 50,
      retry: { baseMs: 200, maxMs: 2000, maxThrottled: 20 },
      sleep,
    }).run();
    expect(stats.throttled).toBeGreaterThan(5);
    expect(env.streaming.stats.throttled).toBe(stats.throttled);
    expect(Math.min(...sleeps)).toBeGreaterThanOrEqual(100);
    expect(stats.messages).toBe(TOTAL);
    expect(ids(sink.alerts)).toEqual(reference.alerts);

    // Paced under the limit (one GET per 250 ms), the same read is never refused.
    const paced = await consumer({
      env,
      state: statePath(),
      group: fresh('paced'),
      sink: new CollectingSink(),
      limit: 50,
      minGetIntervalMs: 250,
      sleep,
    }).run();
    expect(paced.batches).toBeGreaterThan(25);
    expect(paced.throttled).toBe(0);
  });

  it('a stop request during a 429 backoff is a clean stop, not a failure', async () => {
    const env = await startEnv();
    env.endpoint.faults.failNext('streaming.getMessages', Number.POSITIVE_INFINITY, 429);
    const controller = new AbortController();
    const stats = await consumer({
      env,
      state: statePath(),
      group: fresh('stop-throttled'),
      sink: new CollectingSink(),
      signal: controller.signal,
      sleep: async (ms) => {
        if (ms > 0) controller.abort();
      },
    }).run();
    expect(stats.throttled).toBe(2);
    expect(stats.batches).toBe(0);
  });

  it('backs off injected 429s with growing, capped delays', async () => {
    const env = await startEnv();
    env.endpoint.faults.failNext('streaming.getMessages', 7, 429);
    const sleeps: number[] = [];
    const stats = await consumer({
      env,
      state: statePath(),
      group: fresh('backoff'),
      sink: new CollectingSink(),
      retry: { baseMs: 100, maxMs: 800 },
      random: () => 0,
      sleep: async (ms) => {
        if (ms > 0) sleeps.push(ms);
      },
    }).run();
    expect(stats.throttled).toBe(7);
    // Equal jitter (shared/oci/clients.ts backoffDelayMs): at least half the doubling, capped delay.
    expect(sleeps).toEqual([50, 100, 200, 400, 400, 400, 400]);
    expect(stats.messages).toBe(TOTAL);
  });

  it('retries 5xx a bounded number of times, then fails; a restart completes without loss', async () => {
    const env = await startEnv();
    const group = fresh('5xx');
    const state = statePath();
    const sink = new CollectingSink();
    env.endpoint.faults.failNext('streaming.getMessages', 2, 503);
    env.endpoint.faults.failNext('streaming.consumerCommit', 1, 500);
    const ok = await consumer({ env, state, group, sink, maxBatches: 3 }).run();
    expect(ok.serverErrors).toBe(3);
    expect(ok.batches).toBe(3);

    env.endpoint.faults.failNext('streaming.getMessages', Number.POSITIVE_INFINITY, 502);
    const failing = consumer({ env, state, group, sink, retry: { baseMs: 1, maxMs: 2, maxServerErrors: 3 } });
    await expect(failing.run()).rejects.toMatchObject({ code: 'OCI_REQUEST_FAILED' });
    expect(failing.stats.calls.getMessages).toBe(4);
    env.endpoint.faults.clear();

    await consumer({ env, state, group, sink }).run();
    expect(ids(sink.alerts)).toEqual(reference.alerts);
    expect(await acceptedCount(state, group)).toBe(KEPT);
  });

  it('fails at once on errors a retry cannot fix (unknown stream)', async () => {
    const env = await startEnv();
    const run = consumer({
      env,
      state: statePath(),
      group: fresh('missing'),
      sink: new CollectingSink(),
      streamId: 'ocid1.stream.oc1..missing',
    }).run();
    await expect(run).rejects.toMatchObject({ code: 'OCI_REQUEST_FAILED', details: { status: 404 } });
  });
});

describe('callWithRetries', () => {
  it('turns a 400 on a cursor operation into CursorRefused and other 4xx into OCI_REQUEST_FAILED', async () => {
    const counters = { throttled: 0, serverErrors: 0 };
    const fail = (statusCode: number) => () =>
      Promise.reject(Object.assign(new Error('x'), { statusCode, serviceCode: 'X' }));
    await expect(
      callWithRetries('getMessages', fail(400), {
        retry: DEFAULT_RETRY_BUDGET,
        counters,
        cursorOperation: true,
      }),
    ).rejects.toMatchObject({ name: 'CursorRefused' });
    const error = await callWithRetries('listEvents', fail(401), {
      retry: DEFAULT_RETRY_BUDGET,
      counters,
    }).catch((e) => e);
    expect(error).toBeInstanceOf(AuditError);
    expect(error.details).toMatchObject({ operation: 'listEvents', status: 401, serviceCode: 'X' });
  });
});

describe('consume command', () => {
  it('drains the stream with --until-idle into an alerts file and its routes, and a rerun adds nothing', async () => {
    const env = await startEnv();
    const state = statePath();
    const out = join(dir, `${fresh('alerts')}.jsonl`);
    const high = join(dir, `${fresh('high')}.jsonl`);
    const configFile = join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        ...fleetConfig(),
        routes: [{ name: 'high', match: { minSeverity: 'high' }, output: { file: high } }],
      }),
    );
    const cliEnv = { HWAUDIT_OCI_CONFIG_FILE: principal.configFile, HWAUDIT_OCI_PROFILE: principal.profile };
    const args = [
      '--stream',
      STREAM,
      '--group',
      'cli',
      '--instance',
      'cli-1',
      '--config',
      configFile,
      '--state',
      state,
      '--endpoint',
      env.endpoint.url,
      '--limit',
      '500',
      '--out',
      out,
      '--until-idle',
    ];
    const stderr: string[] = [];
    const io = {
      stdout: process.stdout,
      stderr: { write: (s: string) => stderr.push(s) } as unknown as NodeJS.WritableStream,
    };
    const now = () => T0 + 10 * 3_600_000;
    const deps = {
      env: cliEnv,
      handleSignals: false,
      progressMs: 0,
      consumer: { minGetIntervalMs: 0, idleWaitMs: 0, now },
    };
    // The same run in process, with the idle sweep the command does (the config's lateness).
    const sink = new CollectingSink();
    await consumer({
      env: await startEnv(),
      state: statePath(),
      group: fresh('cli-expected'),
      sink,
      idleSweep: { latenessMs: 20 * 60_000 },
      now,
    }).run();
    expect(await runConsume(args, io, deps)).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as Alert).id).sort()).toEqual(ids(sink.alerts));
    const stopped = stderr.find((l) => l.startsWith('consume: stopped; '));
    // The event of another service is ignored, as replay and the others say, and not an event processed.
    expect(stopped).toMatch(
      new RegExp(
        `^consume: stopped; ${grouped(TOTAL)} messages in \\d+ batches \\(\\d+/s\\), ${grouped(TOTAL)} records: processed ${grouped(KEPT)}, duplicates 0, late 0, dead letters 0, ignored 1 \\(OCI audit events that concern nothing read\\); ${lines.length} alerts, `,
      ),
    );
    const progress = stderr.filter((l) => /^consume: \d/.test(l));
    expect(progress.length).toBeGreaterThan(1);
    expect(
      progress.every((l) =>
        / records: processed [\d,]+, duplicates [\d,]+, late [\d,]+, dead letters [\d,]+/.test(l),
      ),
    ).toBe(true);
    expect(progress.at(-1)).toContain(', ignored 1 (OCI audit events that concern nothing read); ');
    const highIds = ids(sink.alerts.filter((a) => ['high', 'critical'].includes(a.severity)));
    expect(highIds.length).toBeGreaterThan(0);
    expect(highIds.length).toBeLessThan(lines.length);
    const routed = () => readFileSync(high, 'utf8').trim().split('\n');
    expect(
      routed()
        .map((l) => (JSON.parse(l) as Alert).id)
        .sort(),
    ).toEqual(highIds);
    expect(stderr.join('')).toContain(`route high (file ${high} (jsonl)): ${highIds.length} delivered`);

    expect(await runConsume(args, io, deps)).toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(lines.length);
    expect(routed()).toHaveLength(highIds.length);
  });

  it('an output that fails ends the run with its summary, then the error; the route that works got every alert', async () => {
    const env = await startEnv();
    const all = join(dir, `${fresh('all')}.jsonl`);
    const configFile = join(dir, `${fresh('config')}.json`);
    writeFileSync(
      configFile,
      JSON.stringify({ ...fleetConfig(), routes: [{ name: 'all', output: { file: all } }] }),
    );
    const stderr: string[] = [];
    const io = {
      stdout: process.stdout,
      stderr: { write: (s: string) => stderr.push(s) } as unknown as NodeJS.WritableStream,
    };
    const args = [
      ...['--stream', STREAM, '--group', fresh('failing'), '--config', configFile],
      // Every write to /dev/full fails (ENOSPC): the first batch with alerts stores them, and fails.
      ...['--endpoint', env.endpoint.url, '--limit', '500', '--out', '/dev/full', '--until-idle'],
    ];
    const deps = {
      env: { HWAUDIT_OCI_CONFIG_FILE: principal.configFile, HWAUDIT_OCI_PROFILE: principal.profile },
      handleSignals: false,
      progressMs: 0,
      consumer: { minGetIntervalMs: 0, idleWaitMs: 0 },
    };
    await expect(runConsume(args, io, deps)).rejects.toThrow('cannot write alerts to /dev/full (ENOSPC)');
    const routed = readFileSync(all, 'utf8').trim().split('\n');
    expect(routed.length).toBeGreaterThan(0);
    // The alerts of the batch whose delivery failed are counted: they were stored, and routed.
    expect(stderr.join('')).toMatch(
      new RegExp(
        `\nconsume: failed; [\\d,]+ messages in \\d+ batches \\(\\d+/s\\), [\\d,]+ records: processed [1-9][\\d,]*, duplicates 0, late 0, dead letters 0; ${routed.length} alerts; [^\n]+\n` +
          `  route all \\(file ${all} \\(jsonl\\)\\): ${routed.length} delivered, 0 muted\n` +
          'consume: failed after the work above; the error follows\n$',
      ),
    );
  });

  it('stops cleanly on SIGTERM: the batch in progress is committed, exit code 0', async () => {
    const env = await startEnv();
    const configFile = join(dir, 'config-sigterm.json');
    writeFileSync(configFile, JSON.stringify(fleetConfig()));
    const io = {
      stdout: { write: () => true } as unknown as NodeJS.WritableStream,
      stderr: { write: () => true } as unknown as NodeJS.WritableStream,
    };
    let batches = 0;
    const listeners = process.listenerCount('SIGTERM');
    const code = await runConsume(
      // --until-idle only bounds the test: without the signal it would read everything and stop.
      [
        '--stream',
        STREAM,
        '--group',
        'sigterm',
        '--config',
        configFile,
        '--endpoint',
        env.endpoint.url,
        '--limit',
        '200',
        '--until-idle',
      ],
      io,
      {
        env: { HWAUDIT_OCI_CONFIG_FILE: principal.configFile },
        consumer: {
          minGetIntervalMs: 0,
          idleWaitMs: 0,
          afterIngest: () => {
            if (++batches === 2) process.emit('SIGTERM', 'SIGTERM');
          },
        },
      },
    );
    expect(code).toBe(0);
    expect(batches).toBe(2);
    expect(env.streaming.stats.commits).toBe(2);
    expect(process.listenerCount('SIGTERM')).toBe(listeners);
  });

  it('refuses bad usage before touching OCI', async () => {
    const io = { stdout: process.stdout, stderr: process.stderr };
    await expect(runConsume(['--stream', STREAM, '--config', 'x.yaml'], io)).rejects.toMatchObject({
      code: 'USAGE',
    });
    await expect(
      runConsume(['--stream', STREAM, '--group', 'g', '--config', 'x.yaml', '--limit', '20000'], io),
    ).rejects.toMatchObject({ code: 'USAGE' });
    await expect(
      runConsume(['--stream', STREAM, '--group', 'g', '--config', 'x.yaml', '--state', 'mysq://x'], io),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    // A stream's name, or a stream pool's OCID, where the stream's OCID goes.
    await expect(
      runConsume(['--stream', 'iam-audit', '--group', 'g', '--config', 'x.yaml'], io),
    ).rejects.toMatchObject({ code: 'USAGE', message: '--stream expects an OCID (ocid1.stream...)' });
  });
});
