// What the commands that run the pipeline share: the state store option and its scope lock, the
// alerts output, warnings printed once, and stopping on SIGTERM / SIGINT.
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Config } from '../../schemas/config.js';
import type { ActiveRule } from '../../shared/config/active-rules.js';
import { formatAlert, type OutputFormat } from '../../shared/emit/formats/format.js';
import { JsonlSink } from '../../shared/emit/jsonl-sink.js';
import type { AlertSink } from '../../shared/emit/sink.js';
import { AuditError } from '../../shared/errors.js';
import { Pipeline } from '../../shared/pipeline.js';
import type { PartitionPipeline } from '../../shared/sources/stream-consumer.js';
import { openStore, parseStoreSpec } from '../../shared/state/open-store.js';
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
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new AuditError('USAGE', `${name} expects an ISO 8601 time such as 2026-11-02T12:00:00Z`);
  return ms;
}

/** Alerts output: a file opened for appending (a consumer restarts), or stdout. */
export function alertOutput(
  io: CliIo,
  path: string | undefined,
  format: OutputFormat,
): { sink: AlertSink; close(): Promise<void> } {
  const out = path ? createWriteStream(path, { flags: 'a' }) : io.stdout;
  return {
    sink: new JsonlSink(out, format, (a) => formatAlert(format, a)),
    async close() {
      if (!path) return;
      out.end();
      await finished(out);
    },
  };
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

/** Opens a pipeline on one scope of the store; the store's warnings go to `warn` (once each). */
export async function openScopedPipeline(opts: {
  spec: string;
  scope: string;
  config: Config;
  rules: readonly ActiveRule[];
  sinks: readonly AlertSink[];
  env: Env;
  warn(text: string): void;
}): Promise<PartitionPipeline> {
  const store = await openStore(opts.spec, {
    scope: opts.scope,
    env: opts.env as NodeJS.ProcessEnv,
    onWarning: opts.warn,
  });
  try {
    const pipeline = await Pipeline.open({
      config: opts.config,
      rules: opts.rules,
      store,
      sinks: opts.sinks,
    });
    return { pipeline, close: () => store.close() };
  } catch (error) {
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
