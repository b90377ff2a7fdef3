import { describe, expect, it } from 'vitest';
import { Detector } from '../../shared/detect/detector.js';
import { defineRule, type RuleContext } from '../../shared/detect/rule.js';
import { at, db } from '../../shared/detect/timeline.js';
import { EntityCache } from '../../shared/state/entity-cache.js';
import { runBatches, testConfig } from '../helpers/run-timeline.js';

describe('detector state', () => {
  it('forgets counting windows and suppression rows once nothing in them is recent', async () => {
    const cache = new EntityCache();
    const { rules } = testConfig();
    const detector = new Detector(rules, cache);
    const connects = [1, 2, 3, 4, 5].map((i) =>
      db.connect({ at: at(i), conn: i, account: 'admin', ip: '203.0.113.7', status: 1045 }),
    );
    for (const c of connects) {
      const session = {
        id: c.key,
        dbSystem: { id: c.dbSystemId, name: 'x' },
        connectionId: c.connectionId!,
        connectTime: c.time,
        connectTs: c.ts,
        outcome: 'failed' as const,
        status: 1045,
        login: c.login!,
        account: c.account!,
        sourceIp: '203.0.113.7',
        mysqlAccount: 'admin@%',
        identity: null,
        group: null,
        proxied: false,
        attribution: null,
        breakGlassGrant: null,
        counts: { queries: 0, tableAccess: 0, changeUser: 0, failedStatements: 0 },
        connectKey: c.key,
      };
      detector.run('failedLogin', { session });
    }
    const { created } = await detector.finalize({ known: async () => new Set(), load: async () => [] });
    expect(created.map((a) => a.rule)).toEqual(['auth.failure-burst', 'auth.failure-burst']);
    // The burst's window and the long one, for the login user on the DB system, for the IP and for
    // the login user fleet-wide.
    expect(cache.size('window')).toBe(6);
    expect(cache.size('suppress')).toBe(2);
    detector.prune(at(60));
    expect(cache.size('window')).toBe(0);
    expect(cache.size('suppress')).toBe(2);
    detector.prune(at(10 * 60));
    expect(cache.size('suppress')).toBe(0);
  });

  it('counts each occurrence once, in (ts - window, ts], with the tags of those counted', () => {
    let ctx: RuleContext<unknown> | undefined;
    const probe = defineRule({
      ...testConfig().rules[0]!.rule,
      id: 'test.probe',
      on: {
        failedLogin: (_, c) => {
          ctx = c;
          return [];
        },
      },
    });
    new Detector([{ rule: probe, params: {}, severity: 'low' }], new EntityCache()).run('failedLogin', {
      session: {} as never,
    });
    const count = (id: string, ts: number, tag?: string) => {
      const c = ctx!.countInWindow('k', id, ts, 10, tag);
      return [c.count, c.first, c.tags.join()];
    };
    expect(count('b', 100, 'B')).toEqual([1, 'b', 'B']);
    // Same time: ordered by id; an occurrence counted again is not counted twice.
    expect(count('a', 100, 'A')).toEqual([2, 'a', 'A,B']);
    expect(count('b', 100, 'B')).toEqual([2, 'a', 'A,B']);
    expect(count('c', 105)).toEqual([3, 'a', 'A,B']);
    expect(count('d', 109, 'D')).toEqual([4, 'a', 'A,B,D']);
    // An occurrence earlier than the last: only those up to its time count.
    expect(count('e', 104, 'E')).toEqual([3, 'a', 'A,B,E']);
    // 110: what happened at 100 has left the window (100, 110].
    expect(count('f', 110, 'F')).toEqual([4, 'e', 'E,D,F']);
    expect(count('g', 130, 'G')).toEqual([1, 'g', 'G']);
  });

  it('keeps a suppression row that a finding of the same batch still merges into', async () => {
    // The second login is released in the next batch, whose watermark is already a day past the
    // first one: pruning must not forget the row it merges into.
    const logins = [0, 40].map((m, i) => db.connect({ at: at(m), conn: i + 1, account: 'app' }));
    const later = db.connect({ at: at(2 * 24 * 60), conn: 3, account: 'admin' });
    const local = async (batches: Parameters<typeof runBatches>[0]) =>
      (await runBatches(batches)).alerts
        .filter((a) => a.rule === 'access.local-account')
        .map((a) => a.details?.occurrences);
    expect(await local([[...logins, later]])).toEqual([2]);
    expect(await local([logins, [later]])).toEqual([2]);
  });
});
