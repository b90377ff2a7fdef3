// The pieces of the hand checks of common record shapes (mysql-audit.ts, oci-audit.ts): a record
// that passes is one its zod schema would take unchanged, so it is read as it is; any other record
// goes to zod, whose issues make the dead letter's message.

export type Fields = Record<string, unknown>;
/** True when a value passes (zod would read it unchanged); false sends the record to zod. */
export type Check = (v: unknown) => boolean;

/** What zod's objects take: any object but an array. */
export const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What zod's records take, or less: an object as JSON.parse makes it. */
export function isPlainObject(v: unknown): v is Fields {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export const nullish = (v: unknown): v is null | undefined => v === undefined || v === null;

/**
 * An optional object (absent, null, or an object) whose named fields pass their checks. It reads
 * each field under a name that changes from call to call, which V8 cannot cache: the checks every
 * MySQL record goes through are written out instead (schemas/mysql-audit.ts).
 */
export function fields(checks: Record<string, Check>): Check {
  // Two arrays, read by index: every record is checked, and a `for...in` over the checks cost more.
  const names = Object.keys(checks);
  const tests = Object.values(checks);
  return (v) => {
    if (nullish(v)) return true;
    if (!isObject(v)) return false;
    for (let i = 0; i < names.length; i++) if (!tests[i]!(v[names[i]!])) return false;
    return true;
  };
}
