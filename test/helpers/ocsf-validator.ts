// Validates OCSF events against the OCSF 1.8.0 JSON Schemas shipped next to the repository
// (../shared/ocsf/1.8.0, see its README). Those files live outside the repo: when they are absent
// `loadOcsfValidator` returns undefined and the schema tests are skipped (requirements.ts).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { besideRepo } from './requirements.js';

export const OCSF_SCHEMA_DIR = besideRepo('ocsf/1.8.0');

type IndexFile = { ocsf_version: string; classes: Record<string, { class_uid: number; file: string }> };

export type OcsfIssue = { instancePath: string; keyword: string; message: string };

export type OcsfValidator = {
  version: string;
  classUids: readonly number[];
  /** Schema errors of one event (empty when valid); compiles the class schema on first use. */
  errors(event: unknown): OcsfIssue[];
};

export function loadOcsfValidator(dir = OCSF_SCHEMA_DIR): OcsfValidator | undefined {
  const indexPath = path.join(dir, 'index.json');
  if (!existsSync(indexPath)) return undefined;
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as IndexFile;
  const files = new Map(Object.values(index.classes).map((c) => [c.class_uid, c.file]));
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const compiled = new Map<number, ValidateFunction>();
  const validatorFor = (classUid: number): ValidateFunction | undefined => {
    const file = files.get(classUid);
    if (file === undefined) return undefined;
    let validate = compiled.get(classUid);
    if (!validate) {
      validate = ajv.compile(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
      compiled.set(classUid, validate);
    }
    return validate;
  };
  return {
    version: index.ocsf_version,
    classUids: [...files.keys()],
    errors(event) {
      const classUid = (event as { class_uid?: unknown } | null)?.class_uid;
      const validate = typeof classUid === 'number' ? validatorFor(classUid) : undefined;
      if (!validate) {
        return [
          {
            instancePath: '/class_uid',
            keyword: 'class_uid',
            message: `no schema for class_uid ${String(classUid)}`,
          },
        ];
      }
      if (validate(event)) return [];
      return (validate.errors ?? []).map((e: ErrorObject) => ({
        instancePath: e.instancePath,
        keyword: e.keyword,
        message: e.message ?? '',
      }));
    },
  };
}
