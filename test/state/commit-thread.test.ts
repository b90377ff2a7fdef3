// The SQLite store's own thread (shared/state/commit-thread.ts), beyond the conformance suite it
// passes like the store on one thread. As a commit thread: writes asked for and not awaited are
// seen by every read made after them, closing waits for them, and a thread that cannot start fails
// the writes clearly. As a checkpoint thread: the log reaches the database file after commits, long
// before the writer's own checkpoints would copy it, and a thread that cannot start changes nothing.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { at } from '../../shared/detect/timeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { collect } from '../helpers/collect.js';
import { alert, batch, COMMIT_WORKER_BUILT, seenAt, session } from './store-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-commit-thread-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const file = () => join(dir, `s${++files}.sqlite`);
const iso = (ts: number) => new Date(ts).toISOString();

describe('SqliteStore with a commit thread', () => {
  it('lets every read see the writes asked for before it, awaited or not', async () => {
    const store = SqliteStore.open(file(), { thread: 'commits', threadWorker: COMMIT_WORKER_BUILT });
    const writes = [
      store.commit(batch({ sessions: [session('s1', at(0))], seen: seenAt(['k1'], at(0)) })),
      store.commit(batch({ alerts: [alert('a1', iso(at(1)))], sessions: [session('s2', at(1))] })),
      store.markDelivered('out', ['a1']),
    ];
    // Asked before any write is answered.
    expect(await store.knownAlerts(['a1', 'a2'])).toEqual(new Set(['a1']));
    expect((await store.loadSessions(0)).map((s) => s.id)).toEqual(['s1', 's2']);
    expect(await store.filterSeen(seenAt(['k1', 'k2'], at(0)))).toEqual(new Set(['k1']));
    expect(await store.delivered('out', ['a1'])).toEqual(new Set(['a1']));
    const [first, second] = await Promise.all(writes);
    expect(first).toEqual({ newAlerts: new Set() });
    expect(second).toEqual({ newAlerts: new Set(['a1']) });
    // The same record again is not new.
    expect((await store.commit(batch({ alerts: [alert('a1', iso(at(1)))] }))).newAlerts).toEqual(new Set());
    await store.close();
  });

  it('waits for the writes in flight when it closes', async () => {
    const path = file();
    const store = SqliteStore.open(path, { thread: 'commits', threadWorker: COMMIT_WORKER_BUILT });
    const sessions = Array.from({ length: 2000 }, (_, i) => session(`s${i}`, at(i)));
    const write = store.commit(batch({ sessions }));
    await store.close();
    await write;
    const reopened = SqliteStore.open(path);
    expect((await collect(reopened.sessions())).length).toBe(2000);
    await expect(store.commit(batch({ sessions }))).rejects.toMatchObject({ code: 'STORE_FAILED' });
    await reopened.close();
  });

  it('says which write failed: a commit, or the delivery marks', async () => {
    const path = file();
    await SqliteStore.open(path).close();
    const raw = new Database(path);
    raw.exec(`CREATE TRIGGER no_marks BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'refused'); END;
      CREATE TRIGGER no_dead BEFORE INSERT ON dead_letters BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    raw.close();
    const store = SqliteStore.open(path, { thread: 'commits', threadWorker: COMMIT_WORKER_BUILT });
    await expect(store.markDelivered('out', ['a1'])).rejects.toMatchObject({
      code: 'STORE_FAILED',
      message: 'cannot record the deliveries in the state store',
    });
    const dead = { code: 'JSON_INVALID', source: 'test', message: 'not JSON' } as const;
    await expect(store.commit(batch({ deadLetters: [dead] }))).rejects.toMatchObject({
      code: 'STORE_FAILED',
      message: 'state store commit failed',
    });
    await store.close();
  });

  it('fails the writes with STORE_FAILED when the thread cannot start', async () => {
    const store = SqliteStore.open(file(), {
      thread: 'commits',
      threadWorker: new URL('./no-such-worker.cjs', COMMIT_WORKER_BUILT),
    });
    const error = await store.commit(batch({ sessions: [session('s1', at(0))] })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'STORE_FAILED', message: 'the commit thread stopped' });
    // Reads still work, and see nothing written.
    expect(await store.loadSessions(0)).toEqual([]);
    await store.close();
  });
});

describe.each(['commits', 'checkpoints'] as const)('SqliteStore with a thread for its %s', (thread) => {
  it('does not keep a process alive once its writes are done, even left open', async () => {
    const script = join(dir, `left-open-${thread}.mts`);
    writeFileSync(
      script,
      `import { SqliteStore } from ${JSON.stringify(fileURLToPath(new URL('../../shared/state/sqlite-store.ts', import.meta.url)))};
       import { commitBatch } from ${JSON.stringify(fileURLToPath(new URL('../../shared/state/state-store.ts', import.meta.url)))};
       const store = SqliteStore.open(${JSON.stringify(file())}, { thread: '${thread}', threadWorker: new URL(${JSON.stringify(COMMIT_WORKER_BUILT.href)}) });
       const { newAlerts } = await store.commit(commitBatch());
       console.log('committed', newAlerts.size);`,
    );
    // tsx as Node resolves it (a hoisted or linked node_modules has no .bin beside the tests).
    const tsx = createRequire(import.meta.url).resolve('tsx/cli');
    const { stdout } = await promisify(execFile)(process.execPath, [tsx, script], { timeout: 20_000 });
    expect(stdout).toBe('committed 0\n');
  });
});

describe('SqliteStore with a checkpoint thread', () => {
  /** A batch of sessions with large bodies: about 4 MB of log, far below the writer's own checkpoints (40 MB). */
  const large = (from: number) =>
    batch({
      sessions: Array.from({ length: 400 }, (_, i) => ({
        ...session(`s${from + i}`, at(from + i)),
        tables: Array.from({ length: 40 }, (_, t) => `db${t}.table_with_a_long_name_${from + i}`),
      })),
    });
  const sizeOf = (path: string) => statSync(path).size;

  it('copies the log into the database file after commits, while this thread stays busy', async () => {
    const path = file();
    const store = SqliteStore.open(path, { thread: 'checkpoints', threadWorker: COMMIT_WORKER_BUILT });
    const empty = sizeOf(path);
    /** Waits without turning the event loop, as a replay does between its commits. */
    const busyUntil = (bytes: number) => {
      const deadline = Date.now() + 15_000;
      while (sizeOf(path) < bytes && Date.now() < deadline)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      return sizeOf(path);
    };
    await store.commit(large(0));
    // A store with no thread copies nothing before its log reaches 40 MB.
    const first = busyUntil(empty + 1_000_000);
    expect(first).toBeGreaterThan(empty + 1_000_000);
    // The next commits ask for checkpoints the thread answers while this one never turns its loop.
    await store.commit(large(1000));
    await store.commit(large(2000));
    expect(busyUntil(first + 2_000_000)).toBeGreaterThan(first + 2_000_000);
    expect((await collect(store.sessions())).length).toBe(1200);
    await store.close();
  });

  it('writes as the store on one thread does when the thread cannot start', async () => {
    const path = file();
    const store = SqliteStore.open(path, {
      thread: 'checkpoints',
      threadWorker: new URL('./no-such-worker.cjs', COMMIT_WORKER_BUILT),
    });
    for (let i = 0; i < 3; i++) await store.commit(large(i * 1000));
    expect((await collect(store.sessions())).length).toBe(1200);
    await store.close();
    const reopened = SqliteStore.open(path);
    expect((await collect(reopened.sessions())).length).toBe(1200);
    await reopened.close();
  });
});
