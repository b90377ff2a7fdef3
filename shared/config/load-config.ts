// Reads the pipeline configuration once: YAML or JSON text, validated by schemas/config.ts and the
// rule registry. Every problem names the path of the bad key.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parse, YAMLError } from 'yaml';
import { type Config, ConfigSchema } from '../../schemas/config.js';
import { RULES } from '../detect/registry.js';
import { AuditError, errnoSuffix } from '../errors.js';
import { routeIssues } from '../route/route-rules.js';
import { type ActiveRule, activeRules } from './active-rules.js';
import { CONFIG_PARSE, ConfigIssues } from './config-issues.js';

export type LoadedConfig = {
  config: Config;
  rules: ActiveRule[];
  /** The value as written (before defaults), for merging discoveries into it (`sync --print`). */
  input?: unknown;
};

/** Validates a config value (already parsed from YAML/JSON). */
export function validateConfig(value: unknown, source = 'config'): LoadedConfig {
  const parsed = ConfigSchema.safeParse(value ?? {}, CONFIG_PARSE);
  if (!parsed.success) {
    const issues = new ConfigIssues(source);
    for (const issue of parsed.error.issues) issues.addSchemaIssue([], issue);
    issues.throwIfAny();
  }
  const config = parsed.data!;
  routeIssues(
    config,
    RULES.map((r) => r.id),
    source,
  );
  return { config, rules: activeRules(config, source), input: value };
}

/** Parses YAML or JSON configuration text. */
export function parseConfigText(text: string, source = 'config'): LoadedConfig {
  let value: unknown;
  const lineCounter = new LineCounter();
  try {
    // Not pretty: a pretty message quotes the line, which may hold anything.
    value = parse(text, { prettyErrors: false, lineCounter });
  } catch (cause) {
    const offset = (cause as { pos?: [number, number] }).pos?.[0];
    const at = offset === undefined ? undefined : lineCounter.linePos(offset);
    const where = at === undefined ? '' : ` at line ${at.line}, column ${at.col}`;
    const reason = cause instanceof YAMLError ? `: ${cause.message}` : '';
    throw new AuditError(
      'CONFIG_INVALID',
      `invalid configuration (${source}): not valid YAML or JSON${where}${reason}`,
      {
        cause,
      },
    );
  }
  return validateConfig(value, source);
}

export async function loadConfigFile(path: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new AuditError('CONFIG_INVALID', `cannot read configuration file ${path}${errnoSuffix(cause)}`, {
      cause,
    });
  }
  const loaded = parseConfigText(text, path);
  return { ...loaded, config: pathsFrom(dirname(path), loaded.config) };
}

/**
 * A configuration file's paths (collector `ca`, a route's `file`) are relative to the file's
 * folder, not to wherever the command runs: a scheduled job often runs from `/`.
 */
function pathsFrom(folder: string, config: Config): Config {
  const at = (path: string) => resolve(folder, path);
  const withCa = <T extends { ca?: string | undefined }>(c: T): T => (c.ca ? { ...c, ca: at(c.ca) } : c);
  return {
    ...config,
    ...(config.collector ? { collector: withCa(config.collector) } : {}),
    dbSystems: config.dbSystems.map((db) => (db.collector ? { ...db, collector: withCa(db.collector) } : db)),
    routes: config.routes.map((r) =>
      r.output.file ? { ...r, output: { ...r.output, file: at(r.output.file) } } : r,
    ),
  };
}
