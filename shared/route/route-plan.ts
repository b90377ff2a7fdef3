// Which routes a set of stored records would take, without sending anything: the same filters,
// maintenance windows and suppression as the route sinks, in event-time order (the demo's summary).
import { type Alert, type Mute, recordTime } from '../../schemas/alert.js';
import { type Config, formatDuration, type RouteConfig } from '../../schemas/config.js';
import type { SinkState } from '../emit/sink.js';
import { RouteRules } from './route-rules.js';

export type RoutePlan = {
  route: string;
  /** Where and how, for people: `topic ... digest P1D`. */
  output: string;
  /** Alerts and resolutions the route would deliver. */
  alerts: number;
  resolutions: number;
  /** Matched but muted: by a maintenance window, as a repeat. */
  maintenance: number;
  suppressed: number;
  /** Messages a Notifications route would publish (one per record, or one digest per period); records written otherwise. */
  messages: number;
};

function describe(route: RouteConfig): string {
  const o = route.output;
  const where =
    o.notifications !== undefined
      ? `topic ${o.notifications}${o.perMinute ? ` (${o.perMinute}/min)` : ''}`
      : o.stream !== undefined
        ? `stream ${o.stream}`
        : o.objectStorage !== undefined
          ? `bucket ${o.objectStorage.bucket}`
          : `file ${o.file}`;
  const how =
    route.delivery === 'immediate' ? 'immediate' : `digest every ${formatDuration(route.delivery.digest)}`;
  return `${where}, ${how}${route.suppress ? `, repeats muted for ${formatDuration(route.suppress)}` : ''}`;
}

function memoryState(): SinkState {
  const rows = new Map<string, unknown>();
  return {
    get: <T>(k: string) => rows.get(k) as T | undefined,
    set: (k, v) => void rows.set(k, v),
    delete: (k) => void rows.delete(k),
    entries: <T>() => rows.entries() as IterableIterator<[string, T]>,
  };
}

/** For each route of `config`, what it would do with `records` (alerts and resolutions). */
export function routePlan(config: Config, records: readonly Alert[]): RoutePlan[] {
  const ordered = [...records].sort((a, b) =>
    recordTime(a) < recordTime(b) ? -1 : recordTime(a) > recordTime(b) ? 1 : 0,
  );
  return config.routes.map((route) => {
    const rules = new RouteRules(route, config);
    const state = memoryState();
    const mutes = new Map<string, Mute[] | undefined>();
    const plan: RoutePlan = {
      route: route.name,
      output: describe(route),
      alerts: 0,
      resolutions: 0,
      maintenance: 0,
      suppressed: 0,
      messages: 0,
    };
    const periods = new Set<number>();
    for (const record of ordered) {
      // A copy without the mutes of another run: decided here, as the route would.
      const { muted: _, ...bare } = record;
      const r: Alert = bare;
      if (r.status === 'resolved') {
        const muted = mutes.get(r.id);
        if (muted) r.muted = muted;
      } else {
        rules.stage([r], state);
        mutes.set(r.id, r.muted);
      }
      const decision = rules.decide(r);
      if (decision === 'skip') continue;
      if (decision === 'muted') {
        const cause = r.muted?.find((m) => m.route === route.name)?.cause;
        if (cause === 'maintenance') plan.maintenance++;
        else plan.suppressed++;
      } else if (r.status === 'resolved') plan.resolutions++;
      else plan.alerts++;
      if (route.delivery !== 'immediate')
        periods.add(Math.floor(Date.parse(recordTime(r)) / route.delivery.digest));
      else if (decision === 'deliver') plan.messages++;
    }
    if (route.delivery !== 'immediate') plan.messages = periods.size;
    return plan;
  });
}
