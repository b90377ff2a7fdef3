// Routine statements are most of a busy fleet's audit trail, and each only counts on its session.
// A replay takes a batch's routine statements of one connection together, as one `run` item placed
// where the first of them comes: the pipeline dedupes, buffers and applies a run as a whole, in the
// order the statements would have been applied one by one (shared/pipeline.ts).
import type { DbEvent } from '../../schemas/events.js';
import type { DecodedItem } from './read-input.js';

/** A connection's routine statements of one batch, in log order. */
type RunItem = { type: 'run'; events: DbEvent[] };

/** What a pipeline ingests: decoded items, and runs. */
export type BatchItem = DecodedItem | RunItem;

/** Folds the routine statements of one batch into one run per connection. */
export class StatementRuns {
  /** Open runs by DB system, instance and connection. */
  private open = new Map<string, Map<string | undefined, Map<number, RunItem>>>();
  /** The last log's runs (records come a chunk of one input at a time), and the log's names. */
  private lastRuns: Map<number, RunItem> | undefined;
  private lastDb = '';
  private lastInstance: string | undefined;

  /**
   * The item to add to the batch for `item`: itself, or a new run; undefined when it joined a run
   * already in the batch. A connection's other events end its run (its next statements start one).
   */
  fold(item: DecodedItem): BatchItem | undefined {
    if (item.type !== 'event' || item.event.source !== 'mysql' || item.event.connectionId === null)
      return item;
    const ev = item.event;
    const connections = this.connections(ev);
    if (!item.routine) {
      connections.delete(ev.connectionId!);
      return item;
    }
    const run = connections.get(ev.connectionId!);
    if (run !== undefined) {
      run.events.push(ev);
      return undefined;
    }
    const created: RunItem = { type: 'run', events: [ev] };
    connections.set(ev.connectionId!, created);
    return created;
  }

  /** A new batch: runs end with the batch they are in. */
  reset(): void {
    this.open = new Map();
    this.lastRuns = undefined;
  }

  private connections(ev: DbEvent): Map<number, RunItem> {
    const last = this.lastRuns;
    if (last !== undefined && this.lastDb === ev.dbSystemId && this.lastInstance === ev.instance) return last;
    let instances = this.open.get(ev.dbSystemId);
    if (instances === undefined) {
      instances = new Map();
      this.open.set(ev.dbSystemId, instances);
    }
    let connections = instances.get(ev.instance);
    if (connections === undefined) {
      connections = new Map();
      instances.set(ev.instance, connections);
    }
    this.lastRuns = connections;
    this.lastDb = ev.dbSystemId;
    this.lastInstance = ev.instance;
    return connections;
  }
}
