import type { Alert } from '../../schemas/alert.js';

/**
 * Where alerts go. A sink receives each alert id once per store: the pipeline records delivery
 * after `send` resolves and re-sends what was committed but not delivered after a crash.
 */
export interface AlertSink {
  readonly name: string;
  send(alerts: Alert[]): Promise<void>;
}
