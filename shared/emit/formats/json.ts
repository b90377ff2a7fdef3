// JSON helpers shared by the record formats.

/** Drops undefined, null, empty arrays and empty objects, recursively: SIEM schemas want fields absent, not null. */
export function compact<T>(value: T): T {
  if (Array.isArray(value)) return value.map(compact).filter((v) => !isEmpty(v)) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const c = compact(v);
    if (!isEmpty(c)) out[k] = c;
  }
  return out as T;
}

/** Undefined, null, or an array or object without entries. */
function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  return typeof v === 'object' && Object.keys(v).length === 0;
}
