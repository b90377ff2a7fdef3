// Runs the active rules over correlated facts and turns findings into alerts: deterministic ids,
// per-rule suppression windows, and no alert twice (ids already stored are skipped). Resolutions
// end alerts already raised: each becomes one record with the alert's id and `status: resolved`.
import { createHash } from 'node:crypto';
import { type Alert, recordKey } from '../../schemas/alert.js';
import type { CanonicalEvent, SyncEvent } from '../../schemas/events.js';
import type { ActiveRule } from '../config/active-rules.js';
import type { EntityCache } from '../state/entity-cache.js';
import { toIso } from '../time.js';
import { Baselines } from './baselines.js';
import {
  type Finding,
  type Handlers,
  isResolution,
  type Outcome,
  type Resolution,
  type RuleContext,
} from './rule.js';

/** `tag`: what the rule keeps with the occurrence (`RuleContext.countInWindow`). */
type WindowEntry = { id: string; ts: number; tag?: string };
type SuppressRow = { alertId: string; lastTs: number; occurrences: number; merged: string[] };
type Pending = { rule: ActiveRule; finding: Finding; id: string };
type PendingResolution = { resolution: Resolution; id: string };
/** A rule's handler of one kind of fact, with the rule's context. */
type Bound = {
  rule: ActiveRule;
  handler: (fact: unknown, ctx: RuleContext<unknown>) => Outcome[];
  ctx: RuleContext<unknown>;
};

const WINDOW = 'window';
const SUPPRESS = 'suppress';
const MAX_MERGED_IDS = 200;

export function alertId(rule: string, subject: string, occurrence: string): string {
  return createHash('sha256').update(`${rule}\n${subject}\n${occurrence}`).digest('hex').slice(0, 32);
}

/** What the detector asks the store: which record keys exist, and the stored records of some. */
export type StoredAlerts = {
  known(keys: string[]): Promise<Set<string>>;
  load(keys: string[]): Promise<Alert[]>;
};

export type DetectorResult = {
  /** New alerts, then new resolutions, in the order their facts came. */
  created: Alert[];
  /** Alerts from earlier batches that merged more occurrences. */
  updates: { id: string; occurrences: number; lastTime: string }[];
};

export class Detector {
  private pending: Pending[] = [];
  private resolutions: PendingResolution[] = [];
  private readonly contexts = new Map<string, RuleContext<unknown>>();
  private readonly byKind = new Map<keyof Handlers<unknown>, readonly Bound[]>();
  private readonly baselines: Baselines;
  /** Rule failures by rule id: a throwing rule affects that rule on that fact only. */
  readonly ruleErrors = new Map<string, number>();

  constructor(
    private readonly rules: readonly ActiveRule[],
    private readonly cache: EntityCache,
  ) {
    this.baselines = new Baselines(cache);
    for (const r of rules) this.contexts.set(r.rule.id, this.context(r));
  }

  run<K extends keyof Handlers<unknown>>(
    kind: K,
    fact: Parameters<NonNullable<Handlers<unknown>[K]>>[0],
  ): void {
    let observed: SyncEvent['observed'] | undefined | null = null;
    for (const { rule: r, handler, ctx } of this.handlersOf(kind)) {
      let outcomes: Outcome[];
      try {
        outcomes = handler(fact, ctx);
      } catch {
        this.ruleErrors.set(r.rule.id, (this.ruleErrors.get(r.rule.id) ?? 0) + 1);
        continue;
      }
      if (outcomes.length === 0) continue;
      if (observed === null) observed = observedBy(fact);
      for (const o of outcomes) {
        if (isResolution(o))
          this.resolutions.push({
            resolution: o,
            id: alertId(r.rule.id, o.resolves.subject, o.resolves.occurrence),
          });
        else {
          const finding = observed ? withObservation(o, observed) : o;
          this.pending.push({
            rule: r,
            finding,
            id: alertId(r.rule.id, finding.subject, finding.occurrence),
          });
        }
      }
    }
  }

  /**
   * The rules with a handler for `kind`, in the rules' order, each with its handler and context:
   * made once per kind, where every fact looked each rule's handlers and context up.
   */
  private handlersOf(kind: keyof Handlers<unknown>): readonly Bound[] {
    let bound = this.byKind.get(kind);
    if (bound === undefined) {
      bound = this.rules.flatMap((rule) => {
        const handler = rule.rule.on[kind] as Bound['handler'] | undefined;
        return handler ? [{ rule, handler, ctx: this.contexts.get(rule.rule.id)! }] : [];
      });
      this.byKind.set(kind, bound);
    }
    return bound;
  }

  /** Turns this batch's findings into new alerts and merges, and its resolutions into records. */
  async finalize(store: StoredAlerts): Promise<DetectorResult> {
    const { created, updates } = await this.findings(store);
    const resolved = await this.resolve(store, created);
    return { created: [...created.values(), ...resolved], updates: [...updates.values()] };
  }

  private async findings(store: StoredAlerts) {
    const batch = this.pending;
    this.pending = [];
    const created = new Map<string, Alert>();
    const updates = new Map<string, { id: string; occurrences: number; lastTime: string }>();
    if (batch.length === 0) return { created, updates };
    const stored = await store.known([...new Set(batch.map((p) => p.id))]);
    for (const { rule, finding, id } of batch) {
      if (stored.has(id) || created.has(id)) continue;
      const suppressKey = suppressionKey(rule, finding);
      const row = rule.rule.suppressFor > 0 ? this.cache.get<SuppressRow>(SUPPRESS, suppressKey) : undefined;
      if (row && Math.abs(finding.ts - row.lastTs) <= rule.rule.suppressFor) {
        if (row.merged.includes(id)) continue;
        row.occurrences++;
        row.lastTs = Math.max(row.lastTs, finding.ts);
        row.merged = [...row.merged, id].slice(-MAX_MERGED_IDS);
        this.cache.touch(SUPPRESS, suppressKey);
        const alert = created.get(row.alertId);
        if (alert)
          alert.details = { ...alert.details, occurrences: row.occurrences, lastTime: toIso(row.lastTs) };
        else
          updates.set(row.alertId, {
            id: row.alertId,
            occurrences: row.occurrences,
            lastTime: toIso(row.lastTs),
          });
        continue;
      }
      if (rule.rule.suppressFor > 0) {
        this.cache.set<SuppressRow>(SUPPRESS, suppressKey, {
          alertId: id,
          lastTs: finding.ts,
          occurrences: 1,
          merged: [],
        });
      }
      created.set(id, toAlert(rule, finding, id));
    }
    return { created, updates };
  }

  /**
   * Resolution records for this batch's resolutions, in their order: one per alert that exists
   * (created in this batch or stored) and is not resolved yet; the record is the alert as it
   * stands, with the status and the resolution.
   */
  private async resolve(store: StoredAlerts, created: ReadonlyMap<string, Alert>): Promise<Alert[]> {
    const batch = this.resolutions;
    this.resolutions = [];
    if (batch.length === 0) return [];
    const key = (id: string) => recordKey({ id, status: 'resolved' });
    const ids = [...new Set(batch.map((r) => r.id))];
    const done = await store.known(ids.map(key));
    const missing = ids.filter((id) => !created.has(id) && !done.has(key(id)));
    const stored = new Map((await store.load(missing)).map((a) => [a.id, a]));
    const out = new Map<string, Alert>();
    for (const { resolution: r, id } of batch) {
      const alert = created.get(id) ?? stored.get(id);
      if (!alert || out.has(id) || done.has(key(id))) continue;
      out.set(id, {
        ...alert,
        status: 'resolved',
        resolution: { time: toIso(r.ts), reason: r.reason, note: r.note, evidence: [...new Set(r.evidence)] },
      });
    }
    return [...out.values()];
  }

  /**
   * Forgets counting windows, suppression rows and baselines with nothing after `before` (bounded
   * state). A suppression row that a finding not yet finalized may merge into stays: whether the
   * batch ends before or after the watermark moves must not change the alerts.
   */
  prune(before: number): void {
    const longest = Math.max(0, ...this.rules.map((r) => r.rule.suppressFor));
    const awaited = new Set(this.pending.map((p) => suppressionKey(p.rule, p.finding)));
    for (const [key, entries] of this.cache.entries<WindowEntry[]>(WINDOW)) {
      if ((entries.at(-1)?.ts ?? Number.NEGATIVE_INFINITY) < before) this.cache.delete(WINDOW, key);
    }
    for (const [key, row] of this.cache.entries<SuppressRow>(SUPPRESS)) {
      if (row.lastTs < before - longest && !awaited.has(key)) this.cache.delete(SUPPRESS, key);
    }
    this.baselines.prune(before);
  }

  private context(r: ActiveRule): RuleContext<unknown> {
    return {
      params: r.params,
      countInWindow: (key, id, ts, window, tag) => {
        const k = `${r.rule.id}\u0000${key}`;
        // Kept sorted by time, then id: the expired entries are a prefix, and an occurrence counted
        // before (a re-evaluation) is among those of its own time. A login user's window over the
        // fleet can hold thousands: a call costs a search, not a sort and scans of the whole row.
        // Changed in place, like the suppression rows: a commit serializes the rows when it starts.
        const entries = this.cache.get<WindowEntry[]>(WINDOW, k) ?? [];
        const expired = firstAfter(entries, ts - window);
        if (expired > 0) entries.splice(0, expired);
        const end = firstAfter(entries, ts);
        let at = end;
        let known = false;
        for (let i = firstAfter(entries, ts, true); i < end; i++) {
          if (entries[i]!.id === id) known = true;
          else if (at === end && entries[i]!.id > id) at = i;
        }
        if (!known) entries.splice(at, 0, tag === undefined ? { id, ts } : { id, ts, tag });
        this.cache.set(WINDOW, k, entries);
        const count = known ? end : end + 1;
        let tags: string[] | undefined;
        return {
          count,
          first: entries[0]!.id,
          get tags() {
            tags ??= entries.slice(0, count).flatMap((e) => (e.tag === undefined ? [] : [e.tag]));
            return tags;
          },
        };
      },
      baseline: (subject, opts) => this.baselines.open(r.rule.id, subject, opts),
    };
  }
}

/** The index of the first entry later than `ts` (with `orAt`: at `ts` or later) in entries sorted by time. */
function firstAfter(entries: readonly WindowEntry[], ts: number, orAt = false): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const t = entries[mid]!.ts;
    if (t < ts || (t === ts && !orAt)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function suppressionKey(r: ActiveRule, f: Finding): string {
  return `${r.rule.id}\u0000${f.subject}`;
}

/** What a snapshot observed, when the fact is a change between two snapshots (source `sync`). */
function observedBy(fact: unknown): SyncEvent['observed'] | undefined {
  const event = (fact as { event?: CanonicalEvent }).event;
  return event?.source === 'sync' ? event.observed : undefined;
}

/** Every alert on a change no audit event explains says so: observed by `sync`, not audited. */
function withObservation(f: Finding, observed: SyncEvent['observed']): Finding {
  return {
    ...f,
    title: `${f.title} (observed by sync, not audited)`,
    details: { ...f.details, observed: { by: 'sync', ...observed } },
  };
}

function toAlert(r: ActiveRule, f: Finding, id: string): Alert {
  const alert: Alert = {
    id,
    rule: r.rule.id,
    severity: f.severity ?? r.severity,
    time: toIso(f.ts),
    title: f.title,
    identity: f.identity ?? null,
    dbSystem: f.dbSystem ?? null,
    evidence: [...new Set(f.evidence)],
    attack: r.rule.attack,
    details: { ...f.details, occurrences: 1 },
    status: 'open',
  };
  if (f.mysqlAccount !== undefined) alert.mysqlAccount = f.mysqlAccount;
  if (f.loginUser !== undefined) alert.loginUser = f.loginUser;
  if (f.group) alert.group = f.group;
  if (f.actor) alert.actor = f.actor;
  if (f.sourceIp) alert.sourceIp = f.sourceIp;
  if (f.client) alert.client = f.client;
  return alert;
}
