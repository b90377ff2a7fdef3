// Event-time helpers shared by every stage.

/** Stands for "known since before any event", e.g. a membership in the config snapshot. JSON-safe. */
export const BEGINNING_OF_TIME = -8_640_000_000_000_000;

/** The last of `items` (in time order) at or before `ts`: the one in force then. */
export function inForceAt<T extends { ts: number }>(items: readonly T[], ts: number): T | undefined {
  let current: T | undefined;
  for (const item of items) {
    if (item.ts > ts) break;
    current = item;
  }
  return current;
}

export function toIso(ts: number): string {
  return new Date(ts).toISOString();
}
