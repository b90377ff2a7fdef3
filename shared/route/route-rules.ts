// What a route decides about one record, without I/O: whether its filter takes it, and whether a
// maintenance window or a repeat of the same subject mutes it. Mutes are decided once, when the
// alert is raised (`stage`, in the batch's transaction), and written into the alert (`muted`), so
// that a re-sent alert, its resolution, an export and a report all say the same.
import { type Alert, type Mute, SEVERITIES } from '../../schemas/alert.js';
import type { Config, Maintenance, RouteConfig } from '../../schemas/config.js';
import { ConfigIssues } from '../config/config-issues.js';
import type { SinkState } from '../emit/sink.js';
import { toIso } from '../time.js';

export type Decision = 'skip' | 'muted' | 'deliver';

const RANK = new Map<string, number>(SEVERITIES.map((s, i) => [s, i]));

/** `access.*`, `*`: prefixes; anything else is a rule id. */
export function ruleSelector(entries: readonly string[]): (rule: string) => boolean {
  const exact = new Set(entries.filter((e) => !e.endsWith('*')));
  const prefixes = entries.filter((e) => e.endsWith('*')).map((e) => e.slice(0, -1));
  return (rule) => exact.has(rule) || prefixes.some((p) => rule.startsWith(p));
}

/** The names an entry list stands for: each entry plus the id or name of the configured thing it names. */
function expand(
  entries: readonly string[],
  known: readonly { id: string; names: readonly string[] }[],
): Set<string> {
  const out = new Set(entries);
  for (const k of known) {
    if ([k.id, ...k.names].some((n) => out.has(n))) for (const n of [k.id, ...k.names]) out.add(n);
  }
  return out;
}

function dbSystemsOf(config: Config) {
  return config.dbSystems.map((d) => ({ id: d.id, names: [d.name] }));
}

/** `true` when no list is given; otherwise whether one of `values` is in it. */
function within(list: Set<string> | undefined, ...values: (string | null | undefined)[]): boolean {
  return list === undefined || values.some((v) => v != null && list.has(v));
}

/** A route's filter (`match`), with configured names resolved to ids and aliases. */
export function routeFilter(route: RouteConfig, config: Config): (alert: Alert) => boolean {
  const m = route.match;
  const rules = m.rules && ruleSelector(m.rules);
  const min = m.minSeverity === undefined ? undefined : RANK.get(m.minSeverity)!;
  const dbs = m.dbSystems && expand(m.dbSystems, dbSystemsOf(config));
  const groups =
    m.groups &&
    expand(
      m.groups,
      config.directory.groups.map((g) => ({ id: g.id, names: [g.name] })),
    );
  const people =
    m.identities &&
    expand(
      m.identities,
      config.directory.users.map((u) => ({ id: u.id, names: [u.name, ...u.aliases] })),
    );
  return (a) =>
    (rules === undefined || rules(a.rule)) &&
    (min === undefined || RANK.get(a.severity)! >= min) &&
    within(dbs, a.dbSystem?.id, a.dbSystem?.name) &&
    within(groups, a.group?.id, a.group?.name) &&
    within(people, a.identity?.principalId, a.identity?.name);
}

/** The first maintenance window of the config that mutes `alert` on route `route` (by the alert's event time). */
export function maintenanceOf(config: Config, route: string): (alert: Alert) => Maintenance | undefined {
  const windows = config.maintenance
    .filter((w) => w.routes === undefined || w.routes.includes(route))
    .map((w) => ({
      w,
      rules: w.rules && ruleSelector(w.rules),
      dbs: w.dbSystems && expand(w.dbSystems, dbSystemsOf(config)),
    }));
  return (a) => {
    const t = Date.parse(a.time);
    return windows.find(
      ({ w, rules, dbs }) =>
        t >= w.from &&
        t < w.to &&
        (rules === undefined || rules(a.rule)) &&
        within(dbs, a.dbSystem?.id, a.dbSystem?.name),
    )?.w;
  };
}

/** The state key of what a repeat is a repeat of: the rule, the person (or the account or login name), the DB system. */
function subjectOf(a: Alert): string {
  const who = a.identity?.principalId ?? a.identity?.name ?? a.mysqlAccount ?? a.loginUser ?? '';
  return `${SUBJECT}${a.rule}\u0000${who}\u0000${a.dbSystem?.id ?? ''}`;
}

/** Suppression rows of the route's state start with this (other rows are the sink's own). */
const SUBJECT = 'subject\u0000';

type LastDelivered = { id: string; ts: number };

/** Suppression rows are dropped when this many windows older than the newest alert staged. */
const KEEP_WINDOWS = 4;

/** One route's decisions: its filter, the maintenance windows that apply to it, its suppression. */
export class RouteRules {
  readonly matches: (alert: Alert) => boolean;
  private readonly maintenance: (alert: Alert) => Maintenance | undefined;
  private newest = Number.NEGATIVE_INFINITY;
  private pruned = Number.NEGATIVE_INFINITY;

  constructor(
    readonly route: RouteConfig,
    config: Config,
  ) {
    this.matches = routeFilter(route, config);
    this.maintenance = maintenanceOf(config, route.name);
  }

  /**
   * Decides the mutes of a batch's new records on this route and writes them into the records:
   * a maintenance window, else (with `suppress`) an alert whose subject this route delivered
   * within the window. A resolution is muted where its alert of the same batch is.
   */
  stage(records: Alert[], state: SinkState): void {
    const alerts = new Map(records.filter((r) => r.status === 'open').map((r) => [r.id, r]));
    for (const r of records) {
      if (!this.matches(r)) continue;
      if (r.status === 'resolved') {
        const mute = alerts.get(r.id)?.muted?.find((m) => m.route === this.route.name);
        if (mute) addMute(r, mute);
        continue;
      }
      const window = this.maintenance(r);
      if (window) {
        addMute(r, { route: this.route.name, cause: 'maintenance', reason: window.reason });
        continue;
      }
      const suppress = this.route.suppress;
      if (suppress === undefined) continue;
      const t = Date.parse(r.time);
      const key = subjectOf(r);
      const last = state.get<LastDelivered>(key);
      if (last && Math.abs(t - last.ts) <= suppress) {
        addMute(r, {
          route: this.route.name,
          cause: 'suppressed',
          reason: `a repeat of ${last.id} (${toIso(last.ts)}) within the suppression window`,
        });
        continue;
      }
      state.set<LastDelivered>(key, { id: r.id, ts: t });
      this.newest = Math.max(this.newest, t);
    }
    this.prune(state);
  }

  /** What this route does with a record: not its business, muted (counted in digests), or delivered. */
  decide(record: Alert): Decision {
    if (!this.matches(record)) return 'skip';
    return record.muted?.some((m) => m.route === this.route.name) ? 'muted' : 'deliver';
  }

  private prune(state: SinkState): void {
    const window = this.route.suppress;
    if (window === undefined || this.newest - this.pruned < window) return;
    this.pruned = this.newest;
    for (const [key, last] of [...state.entries<LastDelivered>()])
      if (key.startsWith(SUBJECT) && last.ts < this.newest - KEEP_WINDOWS * window) state.delete(key);
  }
}

function addMute(record: Alert, mute: Mute): void {
  record.muted = [...(record.muted ?? []), mute];
}

/**
 * Names in `routes` and `maintenance` that nothing answers to, all reported at once: rule ids and
 * prefixes must name rules of the registry; DB systems and groups must be configured, or be OCIDs;
 * a maintenance window's routes must be routes of the configuration.
 */
export function routeIssues(config: Config, ruleIds: readonly string[], source: string): void {
  const issues = new ConfigIssues(source);
  const knownRule = (entry: string) => ruleIds.some(ruleSelector([entry]));
  const dbs = new Set(config.dbSystems.flatMap((d) => [d.id, d.name]));
  const groups = new Set(config.directory.groups.flatMap((g) => [g.id, g.name]));
  const routes = new Set(config.routes.map((r) => r.name));
  const check = (
    path: (string | number)[],
    entries: readonly string[] | undefined,
    ok: (e: string) => boolean,
    what: string | ((e: string) => string),
  ) =>
    entries?.forEach((e, i) => {
      if (!ok(e)) issues.add([...path, i], typeof what === 'string' ? what : what(e));
    });
  const rules = (path: (string | number)[], entries: readonly string[] | undefined) =>
    check(path, entries, knownRule, 'no rule has this id (or prefix ending in *)');
  const dbSystems = (path: (string | number)[], entries: readonly string[] | undefined) =>
    check(
      path,
      entries,
      (e) => dbs.has(e) || e.startsWith('ocid1.mysqldbsystem.'),
      'not a configured DB system (id or name), nor a DB system OCID',
    );
  config.routes.forEach((r, i) => {
    rules(['routes', i, 'match', 'rules'], r.match.rules);
    dbSystems(['routes', i, 'match', 'dbSystems'], r.match.dbSystems);
    check(
      ['routes', i, 'match', 'groups'],
      r.match.groups,
      (e) => groups.has(e) || e.startsWith('ocid1.group.'),
      'not a configured group (id or name), nor a group OCID',
    );
  });
  config.maintenance.forEach((m, i) => {
    rules(['maintenance', i, 'rules'], m.rules);
    dbSystems(['maintenance', i, 'dbSystems'], m.dbSystems);
    check(
      ['maintenance', i, 'routes'],
      m.routes,
      (e) => routes.has(e),
      (e) => `no route is named ${e}`,
    );
  });
  issues.throwIfAny();
}
