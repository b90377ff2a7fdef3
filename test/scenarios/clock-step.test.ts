// A raw audit file whose server clock stepped back by more than the lateness, replayed as files
// are: the real reader, merge and pipeline on a SQLite state, twice on the same state.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replayFiles } from '../../shared/replay.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { collect } from '../helpers/collect.js';
import { testConfig } from '../helpers/run-timeline.js';
import { minutes, RawLog } from '../mysql-server/raw-events.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-clock-step-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A raw audit file of prod-orders (as `replay --db-system prod-orders` reads it). */
function write(log: RawLog, name: string): string[] {
  const path = join(dir, `${name}.log`);
  writeFileSync(path, JSON.stringify(log.events));
  return [path];
}

async function replay(inputs: string[], state: string) {
  const { config, rules } = testConfig();
  const store = SqliteStore.open(state);
  try {
    const { stats } = await replayFiles({ config, rules, inputs, store, sinks: [], dbSystem: 'prod-orders' });
    return {
      stats,
      alerts: await collect(store.alerts()),
      sessions: await collect(store.sessions()),
    };
  } finally {
    await store.close();
  }
}

describe('replay: a server clock that stepped back', () => {
  it('applies the events written after a step back of more than the lateness, once', async () => {
    // The log reaches 09:42; then the clock goes back 35 minutes, and a local account logs in.
    const log = new RawLog()
      .session({ at: minutes(40), conn: 5, user: 'admin', queries: 2 })
      .session({ at: minutes(42), conn: 6, user: 'admin', queries: 0 })
      .session({ at: minutes(7), conn: 7, user: 'mallory', queries: 2 })
      .session({ at: minutes(9), conn: 8, user: 'admin', queries: 1 });
    const inputs = write(log, 'stepped');
    const state = join(dir, 'stepped.sqlite');
    const first = await replay(inputs, state);
    expect(first.stats.duplicates).toBe(0);
    expect(first.sessions.map((s) => s.connectionId).sort()).toEqual([5, 6, 7, 8]);
    expect(first.alerts.map((a) => [a.rule, a.severity, a.title])).toEqual([
      ['access.local-account', 'high', expect.stringContaining('mallory')],
      [
        'audit.gap',
        'high',
        "Clock stepped back on prod-orders: the server's clock went back by 35 minutes at 2026-11-02T09:07:00.000Z; events are ordered by the log from then on",
      ],
    ]);
    expect(first.alerts[1]!.details).toMatchObject({
      reason: 'clock-step',
      from: '2026-11-02T09:42:01.000Z',
      to: '2026-11-02T09:07:00.000Z',
    });

    // The same file again: every record, the step included, is a duplicate.
    const again = await replay(inputs, state);
    expect(again.stats).toMatchObject({ duplicates: log.events.length + 1, alerts: 0 });
    expect(again.alerts).toHaveLength(2);
    expect(again.sessions).toHaveLength(4);
  });

  it('a step back of less than the lateness is no clock step: ordered by time as before', async () => {
    const log = new RawLog()
      .session({ at: minutes(40), conn: 5, user: 'admin', queries: 1 })
      .session({ at: minutes(25), conn: 6, user: 'mallory', queries: 0 });
    const { stats, alerts, sessions } = await replay(write(log, 'small'), join(dir, 'small.sqlite'));
    expect(stats).toMatchObject({ duplicates: 0, received: log.events.length });
    expect(sessions).toHaveLength(2);
    expect(alerts.map((a) => a.rule)).toEqual(['access.local-account']);
  });
});
