// Which configured DB system a raw MySQL audit file belongs to (collector records name theirs).
import { basename, sep } from 'node:path';
import { AuditError } from '../errors.js';
import type { DbRef } from './classify.js';

/** The part of the configuration this reads: the DB systems' ids and names. */
type Fleet = { dbSystems: readonly { id: string; name: string }[] };

/**
 * The DB system of a raw MySQL audit file: `--db-system` (a configured id or name), else a
 * configured DB system whose name or id is the file's base name (up to the first dot) or one of
 * its folders, else the only configured DB system.
 */
export function dbSystemResolver(config: Fleet, dbSystem?: string): (path: string) => DbRef | undefined {
  if (dbSystem !== undefined) {
    const match = config.dbSystems.find((d) => d.id === dbSystem || d.name === dbSystem);
    if (match === undefined)
      throw new AuditError('USAGE', `--db-system ${dbSystem}: no configured DB system has this id or name`);
    const ref = { id: match.id, name: match.name };
    return () => ref;
  }
  const resolved = new Map<string, DbRef | undefined>();
  return (path) => {
    if (resolved.has(path)) return resolved.get(path);
    const ref = resolveByName(config, path);
    resolved.set(path, ref);
    return ref;
  };
}

function resolveByName(config: Fleet, path: string): DbRef | undefined {
  const stem = basename(path).split('.')[0] ?? '';
  const parts = new Set([stem, ...path.split(sep)]);
  const match =
    config.dbSystems.find((d) => parts.has(d.name) || parts.has(d.id)) ??
    (config.dbSystems.length === 1 ? config.dbSystems[0] : undefined);
  return match ? { id: match.id, name: match.name } : undefined;
}
