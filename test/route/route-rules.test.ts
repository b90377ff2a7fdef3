// The routing table: each filter dimension, overlapping routes, the route that takes everything,
// maintenance windows and suppression; and the configuration errors, each naming its key.
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import { validateConfig } from '../../shared/config/load-config.js';
import { baseConfig, DB, GROUPS, T0, USERS } from '../../shared/detect/timeline.js';
import type { SinkState } from '../../shared/emit/sink.js';
import { AuditError } from '../../shared/errors.js';
import { RouteRules } from '../../shared/route/route-rules.js';

const TOPIC = 'ocid1.onstopic.oc1..sec';

function alert(over: Partial<Alert> = {}): Alert {
  return {
    id: `id-${Math.random().toString(16).slice(2)}`,
    rule: 'access.local-account',
    severity: 'high',
    time: new Date(T0).toISOString(),
    title: 't',
    identity: { principalId: USERS.alice, name: 'alice@example.com', attribution: null },
    dbSystem: { id: DB.id, name: DB.name },
    evidence: [],
    group: { id: GROUPS.dba, name: 'DBAdmins' },
    status: 'open',
    ...over,
  };
}

function config(extra: Partial<ConfigInput>) {
  return validateConfig({ ...baseConfig(), ...extra }).config;
}

/** The route's rules and an in-memory state, for decisions one batch at a time. */
function routeOf(route: Record<string, unknown>, extra: Partial<ConfigInput> = {}) {
  const cfg = config({
    routes: [{ name: 'r', output: { notifications: TOPIC }, ...route }] as never,
    ...extra,
  });
  const rules = new RouteRules(cfg.routes[0]!, cfg);
  const rows = new Map<string, unknown>();
  const state: SinkState = {
    get: <T>(k: string) => rows.get(k) as T | undefined,
    set: (k, v) => void rows.set(k, v),
    delete: (k) => void rows.delete(k),
    entries: <T>() => rows.entries() as IterableIterator<[string, T]>,
  };
  return {
    rules,
    rows,
    /** Stages the batch, then says what the route does with each record. */
    decide: (...records: Alert[]) => {
      rules.stage(records, state);
      return records.map((r) => rules.decide(r));
    },
  };
}

describe('route filters', () => {
  it('a route without match takes every alert', () => {
    const { decide } = routeOf({});
    expect(
      decide(alert(), alert({ rule: 'audit.gap', severity: 'info', dbSystem: null, identity: null })),
    ).toEqual(['deliver', 'deliver']);
  });

  it('rules: ids and prefixes', () => {
    const { decide } = routeOf({ match: { rules: ['mapping.change', 'break-glass.*'] } });
    expect(
      decide(
        alert({ rule: 'mapping.change' }),
        alert({ rule: 'break-glass.stale' }),
        alert({ rule: 'break-glass.used' }),
        alert({ rule: 'privilege.change' }),
      ),
    ).toEqual(['deliver', 'deliver', 'deliver', 'skip']);
  });

  it('minSeverity: that severity and above', () => {
    const { decide } = routeOf({ match: { minSeverity: 'high' } });
    expect(
      decide(alert({ severity: 'medium' }), alert({ severity: 'high' }), alert({ severity: 'critical' })),
    ).toEqual(['skip', 'deliver', 'deliver']);
  });

  it('dbSystems: by OCID or configured name; an alert about no DB system is not taken', () => {
    for (const entry of [DB.id, DB.name]) {
      const { decide } = routeOf({ match: { dbSystems: [entry] } });
      expect(
        decide(
          alert(),
          alert({ dbSystem: { id: 'ocid1.mysqldbsystem.oc1..other', name: 'other' } }),
          alert({ dbSystem: null }),
        ),
      ).toEqual(['deliver', 'skip', 'skip']);
    }
  });

  it('groups: by OCID or name', () => {
    for (const entry of [GROUPS.bg, 'BreakGlass']) {
      const { decide } = routeOf({ match: { groups: [entry] } });
      const { group: _, ...noGroup } = alert();
      expect(decide(alert({ group: { id: GROUPS.bg, name: 'BreakGlass' } }), alert(), noGroup)).toEqual([
        'deliver',
        'skip',
        'skip',
      ]);
    }
  });

  it('identities: by OCID, name or configured alias', () => {
    for (const entry of [USERS.bob, 'bob@example.com', 'bob']) {
      const { decide } = routeOf({ match: { identities: [entry] } });
      expect(
        decide(
          alert({ identity: { principalId: USERS.bob, name: 'bob@example.com', attribution: null } }),
          alert(),
          alert({ identity: null }),
        ),
      ).toEqual(['deliver', 'skip', 'skip']);
    }
  });

  it('every key given must hold', () => {
    const { decide } = routeOf({
      match: { rules: ['access.*'], minSeverity: 'critical', dbSystems: [DB.name] },
    });
    expect(
      decide(
        alert({ severity: 'critical' }),
        alert({ severity: 'high' }),
        alert({ severity: 'critical', rule: 'audit.tamper' }),
      ),
    ).toEqual(['deliver', 'skip', 'skip']);
  });

  it('overlapping routes each take the alert: one delivery per route', () => {
    const cfg = config({
      routes: [
        { name: 'page', match: { minSeverity: 'high' }, output: { notifications: TOPIC } },
        { name: 'dba', match: { rules: ['access.*'] }, output: { notifications: 'ocid1.onstopic.oc1..dba' } },
        { name: 'other', match: { rules: ['audit.*'] }, output: { notifications: TOPIC } },
      ],
    });
    const a = alert();
    expect(cfg.routes.map((r) => new RouteRules(r, cfg).decide(a))).toEqual(['deliver', 'deliver', 'skip']);
  });
});

describe('maintenance and suppression', () => {
  const window = { from: '2026-11-02T08:00:00Z', to: '2026-11-02T10:00:00Z', reason: 'patching' };

  it('a maintenance window mutes its DB system between from and to, and says why in the alert', () => {
    const { decide } = routeOf({}, { maintenance: [{ ...window, dbSystems: [DB.name] }] });
    const inside = alert();
    const before = alert({ time: '2026-11-02T07:59:59.000Z' });
    const at10 = alert({ time: '2026-11-02T10:00:00.000Z' });
    const elsewhere = alert({ dbSystem: { id: 'ocid1.mysqldbsystem.oc1..x', name: 'x' } });
    expect(decide(inside, before, at10, elsewhere)).toEqual(['muted', 'deliver', 'deliver', 'deliver']);
    expect(inside.muted).toEqual([{ route: 'r', cause: 'maintenance', reason: 'patching' }]);
    expect(before.muted).toBeUndefined();
  });

  it('a window written without an offset is UTC, whatever the time zone of the machine', () => {
    const zone = process.env.TZ;
    try {
      for (const TZ of ['America/New_York', 'Asia/Kolkata']) {
        process.env.TZ = TZ;
        const local = { from: '2026-11-02 08:00', to: '2026-11-02T10:00', reason: 'patching' };
        const { decide } = routeOf({}, { maintenance: [{ ...local, dbSystems: [DB.name] }] });
        const before = alert({ time: '2026-11-02T07:59:59.000Z' });
        expect(decide(alert(), before, alert({ time: '2026-11-02T10:00:00.000Z' })), TZ).toEqual([
          'muted',
          'deliver',
          'deliver',
        ]);
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('by rule, and only on the routes it names', () => {
    const cfg = config({
      routes: [
        { name: 'a', output: { notifications: TOPIC } },
        { name: 'b', output: { notifications: TOPIC } },
      ],
      maintenance: [{ ...window, rules: ['access.*'], routes: ['b'] }],
    });
    const [a, b] = cfg.routes.map((r) => new RouteRules(r, cfg));
    const rec = alert();
    const noState: SinkState = {
      get: () => undefined,
      set: () => {},
      delete: () => {},
      entries: () => [][Symbol.iterator](),
    };
    a!.stage([rec], noState);
    b!.stage([rec], noState);
    expect([a!.decide(rec), b!.decide(rec)]).toEqual(['deliver', 'muted']);
    expect(b!.decide(alert({ rule: 'audit.gap' }))).toBe('deliver');
  });

  it('suppress: a repeat of one subject within the window is muted; after it, delivered again', () => {
    const { decide, rows } = routeOf({ suppress: 'PT1H' });
    const first = alert({ time: '2026-11-02T09:00:00.000Z' });
    const repeat = alert({ time: '2026-11-02T09:30:00.000Z' });
    const otherPerson = alert({
      time: '2026-11-02T09:30:00.000Z',
      identity: { principalId: USERS.bob, name: 'bob', attribution: null },
    });
    const later = alert({ time: '2026-11-02T10:01:00.000Z' });
    expect(decide(first, repeat, otherPerson)).toEqual(['deliver', 'muted', 'deliver']);
    expect(repeat.muted?.[0]).toMatchObject({ route: 'r', cause: 'suppressed' });
    expect(repeat.muted?.[0]?.reason).toContain(first.id);
    expect(decide(later)).toEqual(['deliver']);
    expect(rows.size).toBe(2);
  });

  it('a resolution is muted where its alert of the same batch is, and delivered where it was', () => {
    const { decide } = routeOf({}, { maintenance: [{ ...window, rules: ['access.*'] }] });
    const open = alert();
    const resolved: Alert = {
      ...open,
      status: 'resolved',
      resolution: { time: '2026-11-02T11:00:00.000Z', reason: 'attributed', note: 'n', evidence: [] },
    };
    expect(decide(open, resolved)).toEqual(['muted', 'muted']);
    const carried = alert({ time: '2026-11-02T12:00:00.000Z' });
    expect(decide(carried, { ...carried, status: 'resolved' })).toEqual(['deliver', 'deliver']);
  });
});

describe('route configuration errors name the key', () => {
  const bad = (extra: Record<string, unknown>, ...paths: string[]) => {
    let error: unknown;
    try {
      config(extra as Partial<ConfigInput>);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AuditError);
    expect((error as AuditError).code).toBe('CONFIG_INVALID');
    for (const path of paths) expect((error as AuditError).message).toContain(path);
  };
  const route = (over: Record<string, unknown>) => ({
    routes: [{ name: 'r', output: { notifications: TOPIC }, ...over }],
  });

  it('rejects what no rule, DB system or route answers to', () => {
    bad(route({ match: { rules: ['acess.*'] } }), 'routes[0].match.rules[0]');
    bad(route({ match: { rules: ['mapping.changes'] } }), 'routes[0].match.rules[0]');
    bad(route({ match: { dbSystems: ['prod-nowhere'] } }), 'routes[0].match.dbSystems[0]');
    bad(route({ match: { groups: ['Nobody'] } }), 'routes[0].match.groups[0]');
    bad(route({ match: { minSeverity: 'urgent' } }), 'routes[0].match.minSeverity');
    bad(
      {
        ...route({}),
        maintenance: [
          { from: '2026-11-02T00:00:00Z', to: '2026-11-02T01:00:00Z', reason: 'x', rules: ['a.b'] },
        ],
      },
      'maintenance[0].rules[0]',
    );
  });

  it("reports every name nothing answers to at once, a maintenance window's routes among them", () => {
    bad(
      {
        ...route({ match: { rules: ['acess.*'] } }),
        maintenance: [
          {
            from: '2026-11-02T00:00:00Z',
            to: '2026-11-02T01:00:00Z',
            reason: 'x',
            rules: ['audit.*'],
            routes: ['nope'],
          },
        ],
      },
      'routes[0].match.rules[0]: no rule has this id',
      'maintenance[0].routes[0]: no route is named nope',
    );
  });

  it('rejects an output that is not exactly one, and digests off Notifications', () => {
    bad(route({ output: {} }), 'routes[0].output');
    bad(route({ output: { notifications: TOPIC, stream: 'ocid1.stream.oc1..s' } }), 'routes[0].output');
    bad(route({ output: { stream: 'ocid1.onstopic.oc1..x' } }), 'routes[0].output.stream');
    bad(route({ output: { file: 'a.jsonl', perMinute: 10 } }), 'routes[0].output.perMinute');
    bad(route({ output: { notifications: TOPIC, format: 'ocsf' } }), 'routes[0].output.format');
    bad(route({ output: { file: 'a.jsonl' }, delivery: { digest: 'P1D' } }), 'routes[0].delivery');
    bad(route({ delivery: { digest: 'PT30S' } }), 'routes[0].delivery.digest');
    bad(route({ delivery: 'weekly' }), 'routes[0].delivery');
    bad(route({ name: 'Page Critical' }), 'routes[0].name');
    bad(route({ colour: 'red' }), 'routes[0].colour');
  });

  it('rejects two routes of one name, and a maintenance window that ends first or names nothing', () => {
    bad({ routes: [...route({}).routes, ...route({}).routes] }, 'routes[1].name');
    bad(
      {
        maintenance: [
          { from: '2026-11-02T01:00:00Z', to: '2026-11-02T00:00:00Z', reason: 'x', rules: ['audit.*'] },
        ],
      },
      'maintenance[0].to',
    );
    bad(
      { maintenance: [{ from: '2026-11-02T00:00:00Z', to: '2026-11-02T01:00:00Z', reason: 'x' }] },
      'maintenance[0]',
    );
  });

  it('accepts the documented example', () => {
    const cfg = config({
      routes: [
        { name: 'page-critical', match: { minSeverity: 'critical' }, output: { notifications: TOPIC } },
        {
          name: 'dba-digest',
          match: { rules: ['privilege.change', 'mapping.change'] },
          output: { notifications: 'ocid1.onstopic.oc1..dba', perMinute: 10 },
          delivery: { digest: 'P1D' },
        },
        { name: 'local-high', match: { minSeverity: 'high' }, output: { file: 'alerts-high.jsonl' } },
      ],
    });
    expect(cfg.routes.map((r) => [r.name, r.delivery])).toEqual([
      ['page-critical', 'immediate'],
      ['dba-digest', { digest: 86_400_000 }],
      ['local-high', 'immediate'],
    ]);
  });
});
