import type { Alert } from '../../schemas/alert.js';

/** Rows a sink keeps with the pipeline's state, written in the batch's transaction. */
export interface SinkState {
  get<T>(key: string): T | undefined;
  set<T>(key: string, body: T): void;
  delete(key: string): void;
  entries<T>(): IterableIterator<[string, T]>;
}

/** What a sink learns with each `send`. */
export type SendContext = {
  /** The pipeline's event-time watermark (epoch ms), once there is one. */
  watermark: number | undefined;
  /** End of input (`Pipeline.finish`): a sink that holds records back sends them now. */
  final: boolean;
  /** Records stored before this pipeline opened that the sink has not received (after a crash, or new to the sink). */
  backlog: boolean;
  /** The sink's rows (see `stage`). */
  state: SinkState;
  /** Records these records (by `recordKey`) as received, for a sink that acknowledges itself. */
  delivered(keys: string[]): Promise<void>;
  /** Which of these keys the store records as received by this sink. */
  received(keys: string[]): Promise<Set<string>>;
  /**
   * Which of these keys are still this instance's to deliver (its claims, renewed): a sink that
   * held records (a digest) leaves out those another instance sharing the store took over.
   */
  claimed?(keys: string[]): Promise<Set<string>>;
};

/**
 * Where alerts go. A sink receives each record (an alert, or its resolution) once per store: the
 * pipeline records delivery after `send` resolves and re-sends what was committed but not
 * delivered after a crash.
 */
export interface AlertSink {
  readonly name: string;
  send(alerts: Alert[], ctx?: SendContext): Promise<void>;
  /**
   * The sink records delivery itself (`ctx.delivered`), record by record, and may hold records
   * back (digests): the pipeline leaves what it was sent undelivered until then, and calls `send`
   * after every commit, with no records when there are none, so that it can send what is due.
   */
  readonly acknowledges?: boolean;
  /**
   * Called with a batch's new records before they are stored: what the sink writes into its
   * state or the records (e.g. why a route mutes one) is committed with them.
   */
  stage?(records: Alert[], state: SinkState): void;
}
