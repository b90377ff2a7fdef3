// One error type for broken code, bad usage and failing infrastructure. Bad *data* is never an
// error: it becomes a dead letter (schemas/dead-letter.ts).
export const ERROR_CODES = [
  'CONFIG_INVALID',
  'USAGE',
  'INPUT_UNREADABLE',
  'INPUT_UNKNOWN_KIND',
  'STORE_FAILED',
  'SINK_FAILED',
  'PAYLOAD_TOO_LARGE',
  'DEADLINE',
  'OCI_REQUEST_FAILED',
  'SOURCE_FAILED',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Log-safe detail values: ids, paths, counts. Never SQL text, tokens or payloads. */
export type SafeDetails = Record<string, string | number | boolean | null | readonly (string | number)[]>;

export class AuditError extends Error {
  readonly code: ErrorCode;
  readonly details: SafeDetails;
  /** The message without its list of problems. */
  readonly headline: string;
  /** Problems listed under the headline, one a line (a configuration's issues). */
  readonly problems: readonly string[];

  /** `message` is the headline; `problems` follow it in `message`, each on a line of its own. */
  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: SafeDetails; cause?: unknown; problems?: readonly string[] } = {},
  ) {
    const problems = options.problems ?? [];
    super(
      withProblems(message, problems),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'AuditError';
    this.code = code;
    this.details = options.details ?? {};
    this.headline = message;
    this.problems = problems;
  }
}

/** A message: its headline, then each problem on a line of its own, indented. */
export function withProblems(headline: string, problems: readonly string[]): string {
  return headline + problems.map((p) => `\n  ${p}`).join('');
}

/** ` (ENOSPC)`: the system's error code of `cause`, to end a message with; empty when it has none. */
export function errnoSuffix(cause: unknown): string {
  const code = (cause as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? ` (${code})` : '';
}

/** Errors that are the user's to fix: bad usage, configuration or input. */
const USER_ERRORS: ReadonlySet<ErrorCode> = new Set([
  'CONFIG_INVALID',
  'USAGE',
  'INPUT_UNKNOWN_KIND',
  'INPUT_UNREADABLE',
]);

/** Exit code for the CLI: 2 for the user's mistakes, 1 for ours or the infrastructure's. */
export function exitCodeFor(error: unknown): number {
  return error instanceof AuditError && USER_ERRORS.has(error.code) ? 2 : 1;
}
