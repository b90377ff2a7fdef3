import type { Alert } from '../../schemas/alert.js';
import type { AlertSink } from './sink.js';

/** Writes one JSON object per line to a stream (a file or stdout). */
export class JsonlSink implements AlertSink {
  constructor(
    private readonly out: NodeJS.WritableStream,
    readonly name = 'jsonl',
    private readonly format: (alert: Alert) => string = (a) => JSON.stringify(a),
  ) {}

  async send(alerts: Alert[]): Promise<void> {
    if (alerts.length === 0) return;
    const text = `${alerts.map(this.format).join('\n')}\n`;
    if (!this.out.write(text)) await new Promise<void>((resolve) => this.out.once('drain', () => resolve()));
  }
}
