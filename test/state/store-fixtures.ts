// What the state store tests share: one "backing" (a SQLite file, a MySQL database) per test on
// which any number of stores can be opened, and small builders for batches, sessions and alerts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import { DB } from '../../shared/detect/timeline.js';
import type { AlertSink } from '../../shared/emit/sink.js';
import { Pipeline } from '../../shared/pipeline.js';
import type { StoreThread } from '../../shared/state/commit-thread.js';
import { MySqlStore, type MySqlStoreOptions } from '../../shared/state/mysql-store.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import type { ClaimOptions, StateStore } from '../../shared/state/state-store.js';
import { collect } from '../helpers/collect.js';
import type { MySqlTestServer, TestDatabase } from '../helpers/mysql-server.js';
import { testConfig } from '../helpers/run-timeline.js';

/** One empty store location; every store opened on it is closed by `dispose`. */
export type Backing = {
  /** A store on the location: an instance of its own, claiming deliveries as `claims` says. */
  open(scope?: string, claims?: ClaimOptions): Promise<StateStore>;
  /** Makes the location look written by a newer release. */
  markNewer(): Promise<void>;
  /** The schema versions recorded as applied, ascending. */
  schemaVersions(): Promise<number[]>;
  /** Runs SQL on the location directly (as a person querying the store would); rows of the last statement. */
  sql(text: string): Promise<Record<string, unknown>[]>;
  dispose(): Promise<void>;
};

export type Adapter = { name: string; create(): Promise<Backing> };

function tracking(open: (scope?: string, claims?: ClaimOptions) => Promise<StateStore>) {
  const opened: StateStore[] = [];
  return {
    open: async (scope?: string, claims?: ClaimOptions) => {
      const store = await open(scope, claims);
      opened.push(store);
      return store;
    },
    closeAll: async () => {
      for (const s of opened.splice(0)) await s.close();
    },
  };
}

/** The bundled commit worker (`npm test` builds it first). */
export const COMMIT_WORKER_BUILT = new URL('../../dist/commit-worker.cjs', import.meta.url);

function sqlite(thread?: StoreThread): Adapter {
  const names = { commits: 'SqliteStore (commit thread)', checkpoints: 'SqliteStore (checkpoint thread)' };
  return {
    name: thread === undefined ? 'SqliteStore' : names[thread],
    create: () => sqliteBacking(thread === undefined ? {} : { thread, threadWorker: COMMIT_WORKER_BUILT }),
  };
}

export const sqliteAdapter = sqlite();
/** SQLite with its writes on a commit thread (shared/state/commit-thread.ts). */
export const sqliteThreadAdapter = sqlite('commits');
/** SQLite writing on this thread, its log checkpointed on another (shared/state/commit-thread.ts). */
export const sqliteCheckpointAdapter = sqlite('checkpoints');

async function sqliteBacking(opts: { thread?: StoreThread; threadWorker?: URL }): Promise<Backing> {
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-store-'));
  const path = join(dir, 'state.sqlite');
  const t = tracking(async (scope, claims) =>
    SqliteStore.open(path, {
      ...opts,
      ...(scope === undefined ? {} : { scope }),
      ...(claims === undefined ? {} : { claims }),
    }),
  );
  const pragma = (sql: string) => {
    const db = new Database(path);
    try {
      return db.pragma(sql, { simple: true }) as number;
    } finally {
      db.close();
    }
  };
  return {
    open: t.open,
    markNewer: async () => void pragma('user_version = 999'),
    schemaVersions: async () => Array.from({ length: pragma('user_version') }, (_, i) => i + 1),
    sql: async (text: string) => {
      const db = new Database(path);
      try {
        const statements = text.split(/;\s*(?:\n|$)/).filter((x) => x.trim() !== '');
        for (const st of statements.slice(0, -1)) db.exec(st);
        const last = db.prepare(statements.at(-1)!);
        if (last.reader) return last.all() as Record<string, unknown>[];
        last.run();
        return [];
      } finally {
        db.close();
      }
    },
    dispose: async () => {
      await t.closeAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function mysqlAdapter(
  server: MySqlTestServer,
  opts: MySqlStoreOptions = {},
): Adapter & {
  createDatabase(): Promise<TestDatabase & Backing>;
} {
  const createDatabase = async () => {
    const db = await server.createDatabase();
    const t = tracking((scope, claims) =>
      MySqlStore.open(db.connection, {
        ...opts,
        ...(scope === undefined ? {} : { scope }),
        ...(claims === undefined ? {} : { claims }),
      }),
    );
    const query = async (sql: string) => {
      const raw = await db.raw();
      try {
        const [rows] = await raw.query(sql);
        return rows as { version: number }[];
      } finally {
        await raw.end();
      }
    };
    return {
      ...db,
      open: t.open,
      markNewer: async () =>
        void (await query('INSERT INTO schema_version (version, applied_at) VALUES (999, 0)')),
      schemaVersions: async () =>
        (await query('SELECT version FROM schema_version ORDER BY version')).map((r) => Number(r.version)),
      sql: async (text: string) => {
        const raw = await db.raw();
        try {
          let rows: unknown = [];
          for (const st of text.split(/;\s*(?:\n|$)/).filter((x) => x.trim() !== ''))
            [rows] = await raw.query(st);
          return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
        } finally {
          await raw.end();
        }
      },
      dispose: t.closeAll,
    };
  };
  return { name: 'MySqlStore', create: createDatabase, createDatabase };
}

/** A fresh backing for each test of the enclosing suite, disposed after it. */
export function backingPerTest(adapter: Adapter): () => Backing {
  let backing: Backing | undefined;
  beforeEach(async () => {
    backing = await adapter.create();
  });
  afterEach(async () => {
    await backing?.dispose();
  });
  return () => backing!;
}

/**
 * SQL that undoes the migration that added until when each session was active (its column and
 * index) and those after it (the index on when each alert last repeated), for a test to open a
 * store written by the schema before them: its version is the last but ACTIVE_UNTIL_AND_LATER.
 */
export function withoutActiveUntil(mysql: boolean): string[] {
  return mysql
    ? [
        'ALTER TABLE alerts DROP KEY alerts_last',
        'ALTER TABLE sessions DROP KEY sessions_active, DROP COLUMN active_until_ts',
      ]
    : [
        'DROP INDEX alerts_last',
        'DROP INDEX sessions_active',
        'ALTER TABLE sessions DROP COLUMN active_until_ts',
      ];
}

/** How many migrations withoutActiveUntil undoes. */
export const ACTIVE_UNTIL_AND_LATER = 2;

export { commitBatch as batch } from '../../shared/state/state-store.js';

export function session(id: string, connectTs: number, over: Partial<Session> = {}): Session {
  return {
    id,
    dbSystem: { id: DB.id, name: DB.name },
    connectionId: connectTs % 1000,
    connectTime: new Date(connectTs).toISOString(),
    connectTs,
    outcome: 'success',
    status: 0,
    login: { user: 'alice', os: '', ip: '10.0.0.5', proxy: '' },
    account: { user: 'dba_proxy', host: '%' },
    identity: null,
    group: null,
    mysqlAccount: 'dba_proxy@%',
    proxied: true,
    attribution: null,
    breakGlassGrant: null,
    counts: { queries: 0, tableAccess: 0, changeUser: 0, failedStatements: 0 },
    connectKey: `connect-${id}`,
    ...over,
  };
}

export function alert(id: string, time: string, over: Partial<Alert> = {}): Alert {
  return {
    id,
    rule: 'access.local-account',
    severity: 'high',
    time,
    title: `alert ${id}`,
    identity: null,
    dbSystem: { id: DB.id, name: DB.name },
    evidence: [`ev-${id}`],
    status: 'open',
    ...over,
  };
}

export function event(key: string, ts: number): CanonicalEvent {
  return {
    source: 'iam',
    kind: 'signon_success',
    key,
    time: new Date(ts).toISOString(),
    ts,
    eventType: 'test.signon_success',
    flavor: 'classic',
    actor: { id: 'ocid1.user.oc1..admin', name: 'iam-admin' },
    user: { id: 'ocid1.user.oc1..alice' },
    signOn: { success: true, ip: '10.0.0.5' },
    extraction: {},
  };
}

/** Events (key and time) to ask `filterSeen` about. */
export function seenAt(keys: string[], ts: number): { key: string; ts: number }[] {
  return keys.map((key) => ({ key, ts }));
}

/** Remembers every alert it is sent, in order. */
export class RecordingSink implements AlertSink {
  readonly sent: Alert[] = [];
  constructor(readonly name = 'recording') {}
  async send(alerts: Alert[]): Promise<void> {
    this.sent.push(...alerts);
  }
}

/** Feeds `batches` through a pipeline on `store` (one transaction each), then finishes (unless `finish: false`). */
export async function runPipeline(
  store: StateStore,
  batches: CanonicalEvent[][],
  opts: { config?: Partial<ConfigInput>; sinks?: AlertSink[]; finish?: boolean } = {},
): Promise<Pipeline> {
  const { config, rules } = testConfig(opts.config);
  const pipeline = await Pipeline.open({ config, rules, store, sinks: opts.sinks ?? [] });
  for (const b of batches) await pipeline.ingest(b.map((e) => ({ type: 'event' as const, event: e })));
  if (opts.finish ?? true) await pipeline.finish();
  return pipeline;
}

/** What two runs must agree on: every alert (merged occurrences included) and the session ledger. */
export async function outcome(store: StateStore) {
  return {
    alerts: (await collect(store.alerts())).map((a) => JSON.stringify(a)).sort(),
    sessions: (await collect(store.sessions())).map((s) => JSON.stringify(s)).sort(),
  };
}
