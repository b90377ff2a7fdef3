// Two containers of the function invoked at the same moment on one shared store and scope: the
// scope lock (StateStore.lockScope) makes the host run them one after the other, so the final
// correlation state (session ledger, alerts) equals a sequential run in the order the lock
// granted. Without the lock the same race loses correlation state (the control case). A scope
// still busy at Fn-Deadline fails the invocation with STORE_FAILED "scope is busy" and writes
// nothing. Runs on a real MySQL store (TEST_MYSQL_URL) and on a SQLite file standing in for it.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FunctionError, FunctionHost, type InvocationSummary } from '../../functions/function-host.js';
import { MySqlStore } from '../../shared/state/mysql-store.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { fleetConfigJson, removeTempDirs, tempDir } from '../helpers/fdk-harness.js';
import { Lines, loggingBatch, N, streamBatch } from '../helpers/host-batches.js';
import { describeMySql, type MySqlTestServer } from '../helpers/mysql-server.js';
import { outcome } from '../state/store-fixtures.js';

afterAll(() => removeTempDirs());

/** How long loading the scope's state takes in these tests: both calls are in flight meanwhile. */
const SLOW_LOAD_MS = 250;

const BATCHES = { logging: loggingBatch(), stream: streamBatch() } as const;
type BatchName = keyof typeof BATCHES;

/** Where the stores of one run live: a fresh MySQL database or SQLite file per call. */
type Shared = {
  name: string;
  /** A new empty location; `open` opens a store of `scope` on it. */
  create(): Promise<{ open(scope: string): Promise<StateStore>; dispose(): Promise<void> }>;
};

type Timeline = string[];

/**
 * A store whose state loads are slow (so that two calls surely overlap) and which records the
 * loads and commits of its container. `lockless` makes lockScope a no-op: the race unguarded.
 */
function observed(store: StateStore, who: string, timeline: Timeline, lockless = false): StateStore {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === 'loadEntities') {
        return async () => {
          timeline.push(`load:${who}`);
          const rows = await target.loadEntities();
          await new Promise((resolve) => setTimeout(resolve, SLOW_LOAD_MS));
          return rows;
        };
      }
      if (prop === 'commit') {
        return async (...args: Parameters<StateStore['commit']>) => {
          const result = await target.commit(...args);
          timeline.push(`commit:${who}`);
          return result;
        };
      }
      if (prop === 'lockScope' && lockless) return async () => ({ release: async () => {} });
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

type Container = { host: FunctionHost; stdout: Lines; stderr: Lines };

function container(
  open: (scope: string) => Promise<StateStore>,
  wrap: (store: StateStore) => StateStore = (s) => s,
  env: Record<string, string> = {},
): Container {
  const stdout = new Lines();
  const stderr = new Lines();
  const host = new FunctionHost({
    // The mysql:// spec is what makes the host treat the store as shared; `open` picks the store.
    env: {
      HWAUDIT_CONFIG: fleetConfigJson(),
      HWAUDIT_STATE: 'mysql://hwaudit@heatwave.example:3306/hwaudit',
      HWAUDIT_DEADLINE_MARGIN_MS: '1000',
      ...env,
    },
    now: () => N,
    stdout,
    stderr,
    openStore: async (_spec, { scope }) => wrap(await open(scope)),
  });
  return { host, stdout, stderr };
}

/** The alert rules a run delivered, over every container's output. */
function delivered(...containers: Container[]): string[] {
  return containers.flatMap((c) => c.stdout.json().map((a) => String(a.rule))).sort();
}

async function finalState(open: (scope: string) => Promise<StateStore>) {
  const store = await open('function');
  try {
    return await outcome(store);
  } finally {
    await store.close();
  }
}

/** One container calling the batches one after the other, then a sweep. */
async function sequential(shared: Shared, order: BatchName[]) {
  const location = await shared.create();
  try {
    const c = container(location.open);
    for (const [i, name] of order.entries()) await c.host.invoke(BATCHES[name], { callId: `c${i}` });
    await c.host.invoke('{"action":"sweep"}', { callId: 'sweep' });
    return { state: await finalState(location.open), delivered: delivered(c) };
  } finally {
    await location.dispose();
  }
}

/** Two containers, each called with one batch at the same moment, then both swept at once. */
async function concurrent(shared: Shared, lockless = false) {
  const location = await shared.create();
  try {
    const timeline: Timeline = [];
    const a = container(location.open, (s) => observed(s, 'logging', timeline, lockless));
    const b = container(location.open, (s) => observed(s, 'stream', timeline, lockless));
    const summaries = await Promise.all([
      a.host.invoke(BATCHES.logging, { callId: 'c-logging' }),
      b.host.invoke(BATCHES.stream, { callId: 'c-stream' }),
    ]);
    // The ingests' loads and commits (the sweeps' come after).
    const ingest = [...timeline];
    const order = ingest.filter((t) => t.startsWith('load:')).map((t) => t.slice(5) as BatchName);
    const sweeps = await Promise.all([
      a.host.invoke('{"action":"sweep"}', { callId: 'sweep-a' }),
      b.host.invoke('{"action":"sweep"}', { callId: 'sweep-b' }),
    ]);
    return {
      timeline: ingest,
      order,
      summaries,
      sweeps,
      logs: [...a.stderr.json(), ...b.stderr.json()],
      state: await finalState(location.open),
      delivered: delivered(a, b),
    };
  } finally {
    await location.dispose();
  }
}

/** Each container's loads and commits form one block: nobody else loaded or committed in between. */
function serialized(timeline: Timeline): boolean {
  const owners = timeline.map((t) => t.split(':')[1]);
  return owners.filter((o, i) => i === 0 || owners[i - 1] !== o).length === 2;
}

function concurrentInvocations(shared: Shared) {
  it('two containers invoked at once on one scope end with the sequential result', async () => {
    const run = await concurrent(shared);
    // Both calls were in flight together, yet one loaded the state only after the other committed.
    expect([...run.order].sort()).toEqual(['logging', 'stream']);
    const [first, second] = run.order as [BatchName, BatchName];
    expect(run.timeline.indexOf(`commit:${first}`)).toBeGreaterThanOrEqual(0);
    expect(run.timeline.indexOf(`load:${second}`)).toBeGreaterThan(
      run.timeline.lastIndexOf(`commit:${first}`),
    );
    expect(serialized(run.timeline)).toBe(true);
    // The second waited for the lock, and says so in its log line.
    const waits = run.logs.filter((l) => l.msg === 'invocation').map((l) => l.lockMs);
    expect(waits.every((w) => typeof w === 'number')).toBe(true);

    const reference = await sequential(shared, [first, second]);
    expect(run.state).toEqual(reference.state);
    expect(run.delivered).toEqual(reference.delivered);
    // Whatever the order, bob's break-glass session was correlated, and every alert sent once.
    // (Which call comes first matters only beyond the lateness: the connect can then be judged
    // before the membership that allows it arrives, which the sequential reference shows too.)
    expect(run.delivered).toEqual(
      expect.arrayContaining(['break-glass.stale', 'break-glass.used', 'iam.privileged-group-change']),
    );
    const sent = [...run.summaries, ...run.sweeps].reduce((n, s: InvocationSummary) => n + s.alerts, 0);
    expect(sent).toBe(run.delivered.length);
  });

  it('control: without the lock the same race loses correlation state', async () => {
    const run = await concurrent(shared, true);
    // Both loaded before either committed.
    expect(run.timeline.slice(0, 2).every((t) => t.startsWith('load:'))).toBe(true);
    const reference = await sequential(shared, ['logging', 'stream']);
    expect(run.state).not.toEqual(reference.state);
    expect(run.delivered).not.toContain('break-glass.used');
  });

  it('a scope still busy at Fn-Deadline fails with STORE_FAILED "scope is busy"; nothing is written', async () => {
    const location = await shared.create();
    try {
      const holder = await location.open('function');
      const lock = await holder.lockScope({ timeoutMs: 0 });
      const c = container(location.open);
      // Margin 1000 ms: 300 ms are left for the wait.
      const started = Date.now();
      let failure: unknown;
      try {
        await c.host.invoke(BATCHES.logging, { callId: 'busy', deadline: new Date(N + 1300) });
      } catch (error) {
        failure = error;
      }
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(failure).toBeInstanceOf(FunctionError);
      expect((failure as FunctionError).code).toBe('STORE_FAILED');
      expect((failure as FunctionError).message).toMatch(
        /^STORE_FAILED: scope is busy \(scope=function(; holderPid=\d+; holderHost=[^;]+; since=[^)]+)?\); another invocation of this scope holds its lock/,
      );
      expect((failure as FunctionError).message).toMatch(/retry later/);
      expect(c.stderr.json().at(-1)).toMatchObject({ msg: 'invocation failed', code: 'STORE_FAILED' });
      expect(c.stdout.lines).toEqual([]);
      expect(await outcome(holder)).toEqual({ alerts: [], sessions: [] });
      // Once the holder is done, the retry goes through.
      await lock.release();
      expect(await c.host.invoke(BATCHES.logging, { callId: 'retry' })).toMatchObject({
        received: 2,
        alerts: 1,
      });
      await holder.close();
    } finally {
      await location.dispose();
    }
  });

  it('a sweep waits for the ingest holding the scope, and other scopes do not wait', async () => {
    const location = await shared.create();
    try {
      const holder = await location.open('function');
      const lock = await holder.lockScope({ timeoutMs: 0 });
      const other = container(location.open, undefined, { HWAUDIT_SCOPE: 'eu-prod' });
      expect(await other.host.invoke(BATCHES.logging)).toMatchObject({ received: 2, alerts: 1 });
      const c = container(location.open);
      let done = false;
      const sweep = c.host.invoke('{"action":"sweep"}').then((s) => {
        done = true;
        return s;
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(done).toBe(false);
      await lock.release();
      expect(await sweep).toMatchObject({ action: 'sweep' });
      await holder.close();
    } finally {
      await location.dispose();
    }
  });
}

describe('concurrent invocations: SQLite file standing in for the shared store', () => {
  concurrentInvocations({
    name: 'sqlite',
    create: async () => {
      const file = join(tempDir('hwaudit-concurrent-'), 'shared.sqlite');
      const opened: StateStore[] = [];
      return {
        open: async (scope) => {
          const store = SqliteStore.open(file, { scope });
          opened.push(store);
          return store;
        },
        dispose: async () => {
          for (const s of opened.splice(0)) await s.close();
        },
      };
    },
  });
});

describeMySql('concurrent invocations on a shared MySQL store', (server: MySqlTestServer) => {
  concurrentInvocations({
    name: 'mysql',
    create: async () => {
      const db = await server.createDatabase();
      const opened: StateStore[] = [];
      return {
        open: async (scope) => {
          const store = await MySqlStore.open(db.connection, { scope });
          opened.push(store);
          return store;
        },
        dispose: async () => {
          for (const s of opened.splice(0)) await s.close();
        },
      };
    },
  });
});
