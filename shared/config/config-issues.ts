import { AuditError } from '../errors.js';

/** What a zod issue carries that a configuration problem needs. */
type SchemaIssue = { code: string; path: readonly PropertyKey[]; message: string; keys?: readonly string[] };

/**
 * Options of a configuration's parse: a key that is not there says so, whatever its schema (the
 * schemas' own messages are for values given, schemas/config.ts).
 */
export const CONFIG_PARSE = {
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'missing' : undefined),
};

/** Formats a key path as users write it: `rules["auth.failure-burst"].threshold`, `dbSystems[0].id`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_$][\w$]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out || '(root)';
}

/** Collects configuration problems and raises them as one CONFIG_INVALID error. */
export class ConfigIssues {
  private readonly lines: string[] = [];
  private readonly paths: string[] = [];

  constructor(private readonly source = 'config') {}

  add(path: readonly PropertyKey[], message: string): void {
    const p = formatPath(path);
    this.paths.push(p);
    this.lines.push(`${p}: ${message}`);
  }

  /** A schema's issue under `prefix`: an unknown key is named by its own path, as a user looks for it. */
  addSchemaIssue(prefix: readonly PropertyKey[], issue: SchemaIssue): void {
    const keys = issue.code === 'unrecognized_keys' ? (issue.keys ?? []) : [];
    if (keys.length > 0) for (const k of keys) this.add([...prefix, ...issue.path, k], 'unknown key');
    else this.add([...prefix, ...issue.path], issue.message);
  }

  throwIfAny(): void {
    if (this.lines.length === 0) return;
    throw new AuditError('CONFIG_INVALID', `invalid configuration (${this.source}):`, {
      details: { paths: this.paths },
      problems: this.lines,
    });
  }
}
