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

/**
 * An ISO 8601 UTC time (as toIso writes it) for people: to the second, marked UTC
 * (`2026-11-02 09:00:59 UTC`). The fraction is cut, never rounded: 09:00:59.999 stays in 09:00:59,
 * so that two times shown keep the order they had. Other text is returned with its `T` as a space.
 */
export function utcSeconds(iso: string): string {
  return iso.replace('T', ' ').replace(/(:\d\d)(\.\d+)?Z$/, '$1 UTC');
}
