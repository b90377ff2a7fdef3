// What the commands that run the pipeline share: the state store option and its scope lock, the
// alerts output, warnings printed once, and stopping on SIGTERM / SIGINT.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Alert } from '../../schemas/alert.js';
import { type Config, parseDuration, parseInstant } from '../../schemas/config.js';
import type { ActiveRule } from '../../shared/config/active-rules.js';
import { FileSink, standardStream } from '../../shared/emit/file-sink.js';
import { formatAlert, type OutputFormat } from '../../shared/emit/formats/format.js';
import { JsonlSink } from '../../shared/emit/jsonl-sink.js';
import type { AlertSink } from '../../shared/emit/sink.js';
import { AuditError } from '../../shared/errors.js';
import { lazyOciAuth, ociAuthSpecFromEnv } from '../../shared/oci/auth.js';
import { Pipeline } from '../../shared/pipeline.js';
import { type OpenRoutes, openRoutes, routeClients } from '../../shared/route/routes.js';
import type { PartitionPipeline } from '../../shared/sources/stream-consumer.js';
import { openStore, parseStoreSpec } from '../../shared/state/open-store.js';
import type { ScopeLock, StateStore } from '../../shared/state/state-store.js';
import type { CliIo } from './io.js';

type Env = Readonly<Record<string, string | undefined>>;

/** What tests inject; the real command uses the process's environment and signals. */
export type CliDeps = {
  env?: Env;
  /** Stops the command like SIGTERM does. */
  signal?: AbortSignal;
  /** Listen to SIGTERM / SIGINT. Default true. */
  handleSignals?: boolean;
  /** Minimum ms between progress lines on stderr. Default 1000. */
  progressMs?: number;
};

export function timeOption(name: string, value: string): number {
  const ms = parseInstant(value);
  if (Number.isNaN(ms))
    throw new AuditError(
      'USAGE',
      `${name} expects an ISO 8601 time such as 2026-11-02T12:00:00Z (UTC where it has no offset)`,
    );
  return ms;
}

/** What `--compartment` takes: a compartment, or the tenancy (the root compartment). */
export const COMPARTMENT_OCID = ['compartment', 'tenancy'] as const;

/** An OCID option's value, of one of these resource types (`ocid1.<type>.`): else a usage error. */
export function ocidOption(name: string, value: string, types: readonly string[]): string {
  if (types.some((type) => value.startsWith(`ocid1.${type}.`))) return value;
  throw new AuditError(
    'USAGE',
    `${name} expects an OCID (${types.map((t) => `ocid1.${t}...`).join(' or ')})`,
  );
}

/** The options of the commands that read a state's period into files (export, report). */
export const STATE_PERIOD_OPTIONS = {
  state: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  'db-system': { type: 'string' },
  out: { type: 'string' },
  overwrite: { type: 'boolean', default: false },
} as const;

/** `--from` and `--to` (ISO 8601) where given; `--to` must be after `--from` when both are. */
export function timeRange(
  command: string,
  values: { from?: string; to?: string },
): { from?: number; to?: number } {
  const from = values.from === undefined ? undefined : timeOption('--from', values.from);
  const to = values.to === undefined ? undefined : timeOption('--to', values.to);
  if (from !== undefined && to !== undefined && to <= from)
    throw new AuditError('USAGE', `${command}: --to must be after --from`);
  return { ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) };
}

/**
 * Alerts output: a file, appended to and synced before alerts count as delivered (a run goes on
 * where the last one stopped; shared/emit/file-sink.ts), or stdout. The sink is named after the
 * format, so that another format gets every stored alert again.
 */
export async function alertOutput(
  io: CliIo,
  path: string | undefined,
  format: OutputFormat,
): Promise<{ sink: AlertSink; close(): Promise<void> }> {
  const render = (a: Alert) => formatAlert(format, a);
  // No --out, or one naming a standard stream: the stream the command was given.
  const standard = path === undefined ? 'stdout' : standardStream(path);
  if (standard !== undefined)
    return { sink: new JsonlSink(io[standard], format, render), close: async () => undefined };
  const sink = await FileSink.open(path!, format, render);
  let closed: Promise<void> | undefined;
  return { sink, close: () => (closed ??= sink.close()) };
}

/**
 * The configuration's routes as sinks (`replay`/`collect --routes`, always for `consume`); their OCI
 * clients use HWAUDIT_OCI_AUTH and are created when a route needs one. `wanted` false: none.
 */
export async function routeOutputs(config: Config, env: Env, wanted = true): Promise<OpenRoutes | undefined> {
  if (!wanted) return undefined;
  if (config.routes.length === 0)
    throw new AuditError('USAGE', '--routes: the configuration has no routes (see README "Routes")');
  return openRoutes(config, { clients: routeClients(lazyOciAuth(ociAuthSpecFromEnv(env)), env) });
}

/**
 * The state store spec (`--state`): a SQLite file or a mysql:// URL (shared/state/open-store.ts),
 * checked before anything is opened; without one, a temporary SQLite file removed at exit.
 */
export function stateOption(
  spec: string | undefined,
  env: Env,
): { spec: string; kind: 'sqlite' | 'mysql'; temporary: boolean; cleanup(): void } {
  if (spec !== undefined) {
    const parsed = parseStoreSpec(spec, env);
    return { spec, kind: parsed.kind, temporary: false, cleanup: () => undefined };
  }
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-'));
  return {
    spec: join(dir, 'state.sqlite'),
    kind: 'sqlite',
    temporary: true,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Opens the state store a command only reads (export, report): it must exist already (a SQLite
 * path that is not a file is a usage error, never a new empty state). Reads need no scope lock.
 */
export async function openStateToRead(
  spec: string | undefined,
  command: string,
  env: Env,
  warn: (text: string) => void,
  scope?: string,
): Promise<StateStore> {
  if (spec === undefined)
    throw new AuditError('USAGE', `${command} needs --state FILE|URL (see ${command} --help)`);
  const parsed = parseStoreSpec(spec, env);
  if (parsed.kind === 'sqlite' && !existsSync(parsed.path))
    throw new AuditError('USAGE', `${command}: there is no state file ${parsed.path}`);
  return openStore(spec, {
    env: env as NodeJS.ProcessEnv,
    onWarning: warn,
    ...(scope === undefined ? {} : { scope }),
  });
}

/** How long a command waits for another process to release the state's scope (HWAUDIT_LOCK_WAIT). */
export const LOCK_WAIT_MS = 10_000;

function lockWaitMs(env: Env): number {
  const text = env.HWAUDIT_LOCK_WAIT?.trim();
  if (!text) return LOCK_WAIT_MS;
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new AuditError('CONFIG_INVALID', 'HWAUDIT_LOCK_WAIT: expected an ISO 8601 duration such as PT30S');
  return ms;
}

/**
 * Takes the store's scope lock for a command, waiting up to HWAUDIT_LOCK_WAIT (10 s) for another
 * process to release it; a scope still held then is an error that names who holds it.
 */
export async function holdScope(
  store: StateStore,
  command: string,
  env: Env = process.env,
): Promise<ScopeLock> {
  try {
    return await store.lockScope({ timeoutMs: lockWaitMs(env) });
  } catch (error) {
    if (!(error instanceof AuditError) || error.message !== 'scope is busy') throw error;
    const d = error.details;
    const who =
      d.holderPid === undefined
        ? 'another run in this process'
        : `PID ${d.holderPid} on ${String(d.holderHost)} since ${String(d.since)}`;
    throw new AuditError(
      'STORE_FAILED',
      `${command}: the state is in use by ${who} (scope ${String(d.scope)}); wait for it to finish, or stop it`,
      { cause: error },
    );
  }
}

/**
 * Opens a pipeline on one scope of the store; the store's warnings go to `warn` (once each). The
 * scope's lock is held from the open to `close` (`hold: 'run'`, the default), or only while the
 * pipeline is opened and then during each `hold()` (`'batch'`: consumers, whose partitions move
 * between instances).
 */
export async function openScopedPipeline(opts: {
  spec: string;
  scope: string;
  config: Config;
  rules: readonly ActiveRule[];
  sinks: readonly AlertSink[];
  env: Env;
  warn(text: string): void;
  command: string;
  hold?: 'run' | 'batch';
}): Promise<PartitionPipeline> {
  const store = await openStore(opts.spec, {
    scope: opts.scope,
    env: opts.env as NodeJS.ProcessEnv,
    onWarning: opts.warn,
  });
  let lock: ScopeLock | undefined;
  try {
    lock = await holdScope(store, opts.command, opts.env);
    const pipeline = await Pipeline.open({
      config: opts.config,
      rules: opts.rules,
      store,
      sinks: opts.sinks,
    });
    if (opts.hold === 'batch') {
      await lock.release();
      lock = undefined;
      return { pipeline, close: () => store.close(), hold: () => holdScope(store, opts.command, opts.env) };
    }
    return { pipeline, close: () => store.close() };
  } catch (error) {
    await lock?.release();
    await store.close();
    throw error;
  }
}

/** A warning printer that prints each distinct text once. */
export function warnOnce(io: CliIo, what: string): (text: string) => void {
  const seen = new Set<string>();
  return (text) => {
    if (seen.has(text)) return;
    seen.add(text);
    io.stderr.write(`${what}: warning: ${text}\n`);
  };
}

/** An AbortSignal that fires on SIGTERM/SIGINT (once, with a note on stderr) or on `deps.signal`. */
export function stopSignal(io: CliIo, deps: CliDeps, what: string): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    io.stderr.write(`${what}: ${name} received, stopping after the batch in progress\n`);
    controller.abort();
  };
  const handle = deps.handleSignals ?? true;
  if (handle) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  const onExtra = () => controller.abort();
  deps.signal?.addEventListener('abort', onExtra, { once: true });
  if (deps.signal?.aborted) controller.abort();
  return {
    signal: controller.signal,
    dispose() {
      if (handle) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      deps.signal?.removeEventListener('abort', onExtra);
    },
  };
}
