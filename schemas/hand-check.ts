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

/** An optional object (absent, null, or an object) whose named fields pass their checks. */
export const fields =
  (checks: Record<string, Check>): Check =>
  (v) => {
    if (nullish(v)) return true;
    if (!isObject(v)) return false;
    for (const key in checks) if (!checks[key]!(v[key])) return false;
    return true;
  };
