// A server's clock can step back: the events it then writes come after the others in its log but
// are stamped before them. The pipeline takes a MySQL event `lateness` or more behind its log's
// latest for a redelivery (shared/log-positions.ts), so a reader, which alone knows the log's
// order, says where the times went back that far: a `clock-step` gap record ahead of the first
// event after the step (rule audit.gap), after which the pipeline tells that log's redeliveries
// by their keys until its clock has caught up.
import type { GapRecord } from '../../schemas/envelopes.js';
import { toIso } from '../time.js';

/** Watches one log's event times in the log's order. */
export class ClockSteps {
  /** The latest time read from the log (since its last step back). */
  latest: number;

  constructor(
    private readonly lateness: number,
    latest = Number.NEGATIVE_INFINITY,
  ) {
    this.latest = latest;
  }

  /**
   * The next event's time: the latest time before it when it is `lateness` or more before that (a
   * clock step; the latest is then this time), else undefined.
   */
  step(ts: number): number | undefined {
    if (ts > this.latest) {
      this.latest = ts;
      return undefined;
    }
    if (ts + this.lateness > this.latest) return undefined;
    const from = this.latest;
    this.latest = ts;
    return from;
  }
}

/** The gap record of a step back from `from` to `to` (epoch ms) in a log, named as its events name it. */
export function clockStepRecord(
  log: { dbSystemId: string; dbSystemName?: string | undefined; instance?: string | undefined },
  from: number,
  to: number,
): GapRecord {
  const record: GapRecord = {
    source: 'audit-gap',
    trail: 'mysql-audit',
    dbSystemId: log.dbSystemId,
    reason: 'clock-step',
    from: toIso(from),
    to: toIso(to),
  };
  if (log.dbSystemName !== undefined) record.dbSystemName = log.dbSystemName;
  if (log.instance !== undefined) record.instance = log.instance;
  return record;
}
