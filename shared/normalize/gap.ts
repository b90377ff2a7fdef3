// A gap record (schemas/envelopes.ts) -> the canonical GapEvent: its time is the end of the range
// when known (the first event read after it), else the start.
import type { GapRecord } from '../../schemas/envelopes.js';
import type { GapEvent } from '../../schemas/events.js';

export function normalizeGap(record: GapRecord): GapEvent {
  const time = new Date(record.to ?? record.from);
  const event: GapEvent = {
    source: 'gap',
    kind: 'audit_gap',
    key: [
      'gap',
      record.trail,
      record.dbSystemId ?? '',
      record.instance ?? '',
      record.reason,
      record.from,
      record.to ?? '',
    ].join(':'),
    time: time.toISOString(),
    ts: time.getTime(),
    trail: record.trail,
    reason: record.reason,
    from: new Date(record.from).toISOString(),
  };
  if (record.dbSystemId) event.dbSystemId = record.dbSystemId;
  if (record.dbSystemName) event.dbSystemName = record.dbSystemName;
  if (record.instance) event.instance = record.instance;
  if (record.primary != null) event.primary = record.primary;
  if (record.to) event.to = new Date(record.to).toISOString();
  if (record.skipped != null) event.skipped = record.skipped;
  if (record.detail) event.detail = record.detail;
  return event;
}
