// A SQLite commit as rows (shared/state/sqlite-commit.ts), applied on one connection: the same
// statements serve every commit of that connection, and each commit writes what its rows say.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { at } from '../../shared/detect/timeline.js';
import { applyCommit, applyDelivered, commitRows } from '../../shared/state/sqlite-commit.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { alert, batch, session } from './store-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-sqlite-commit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('applyCommit', () => {
  it('prepares its statements once per connection, whatever each commit holds', async () => {
    const path = join(dir, 'state.sqlite');
    await SqliteStore.open(path).close();
    /** A connection that counts the statements it prepares. */
    const connect = () => {
      const db = new Database(path);
      const counted = { db, prepared: 0 };
      const prepare = db.prepare.bind(db);
      db.prepare = ((sql: string) => {
        counted.prepared++;
        return prepare(sql);
      }) as typeof db.prepare;
      return counted;
    };
    const mine = connect();
    const { db } = mine;
    const commit = (n: number, over: Parameters<typeof batch>[0] = {}) =>
      applyCommit(
        db,
        commitRows('test', batch({ sessions: [session(`s${n}`, at(n))], ...over }), new Set(), true),
      );
    expect(commit(1)).toEqual({ newAlerts: [] });
    const first = mine.prepared;
    expect(first).toBeGreaterThan(0);
    expect(commit(2, { alerts: [alert('a2', new Date(at(2)).toISOString())] })).toEqual({
      newAlerts: ['a2'],
    });
    // A prune of the seen keys and of the ledger, a renewal of claims, and delivery marks: prepared with the rest.
    commit(3, { pruneSeenBefore: at(0), pruneLedgerBefore: at(2) });
    applyCommit(db, {
      ...commitRows('test', batch({}), new Set(), true),
      renew: { keys: ['a2'], claimant: 'x', until: 1 },
    });
    applyDelivered(db, 'out', ['a2'], at(3));
    expect(mine.prepared).toBe(first);
    expect(db.prepare('SELECT id FROM sessions ORDER BY id').pluck().all()).toEqual(['s2', 's3']);
    expect(db.prepare('SELECT id FROM alerts').pluck().all()).toEqual(['a2']);
    expect(db.prepare('SELECT alert_id FROM deliveries').pluck().all()).toEqual(['a2']);
    // Another connection prepares its own.
    const other = connect();
    applyCommit(other.db, commitRows('test', batch({ sessions: [session('s4', at(4))] }), new Set(), true));
    expect(other.prepared).toBe(first);
    other.db.close();
    db.close();
  });
});
