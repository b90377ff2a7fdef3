// Event-time helpers shared by every stage.

/** Stands for "known since before any event", e.g. a membership in the config snapshot. JSON-safe. */
export const BEGINNING_OF_TIME = -8_640_000_000_000_000;

export function toIso(ts: number): string {
  return new Date(ts).toISOString();
}
