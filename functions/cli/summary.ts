// Run accounting for the CLI: every record read is an event written, a duplicate or a dead letter.
import type { DeadLetter } from '../../schemas/dead-letter.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { InputCounts } from '../../shared/decode/read-input.js';

const FIRST_DEAD_SHOWN = 5;

export class RunSummary {
  inputs = 0;
  records = 0;
  events = 0;
  duplicates = 0;
  readonly eventsByKind = new Map<string, number>();
  readonly deadByCode = new Map<string, number>();
  readonly firstDead: DeadLetter[] = [];
  private deadCount = 0;
  private readonly seen = new Set<string>();

  /** Counts an event; false when its dedupe key was already seen in this run. */
  accept(event: CanonicalEvent): boolean {
    const key = `${event.source}:${event.key}`;
    if (this.seen.has(key)) {
      this.duplicates++;
      return false;
    }
    this.seen.add(key);
    this.events++;
    increment(this.eventsByKind, event.kind);
    return true;
  }

  dead(dead: DeadLetter): void {
    this.deadCount++;
    increment(this.deadByCode, dead.code);
    if (this.firstDead.length < FIRST_DEAD_SHOWN) this.firstDead.push(dead);
  }

  addInput(counts: InputCounts): void {
    this.inputs++;
    this.records += counts.records;
  }

  format(command: string): string {
    const lines = [
      `${command}: ${plural(this.inputs, 'input')}, ${plural(this.records, 'record')} read, ` +
        `${plural(this.events, 'event')} written, ${plural(this.duplicates, 'duplicate')}, ` +
        `${plural(this.deadCount, 'dead letter')}`,
    ];
    if (this.eventsByKind.size > 0) lines.push(`  events by kind: ${formatCounts(this.eventsByKind)}`);
    if (this.deadByCode.size > 0) lines.push(`  dead letters by code: ${formatCounts(this.deadByCode)}`);
    if (this.firstDead.length > 0) {
      lines.push(
        this.deadCount > this.firstDead.length
          ? `  first ${this.firstDead.length} dead letters:`
          : '  dead letters:',
      );
      for (const dead of this.firstDead)
        lines.push(`    ${formatLocation(dead)} ${dead.code} ${dead.message}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** `file:line[index]` with whatever parts the dead letter has. */
function formatLocation(dead: DeadLetter): string {
  return `${dead.source}${dead.line === undefined ? '' : `:${dead.line}`}${dead.index === undefined ? '' : `[${dead.index}]`}`;
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function formatCounts(counts: Map<string, number>): string {
  return [...counts]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, n]) => `${key} ${n}`)
    .join(', ');
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
