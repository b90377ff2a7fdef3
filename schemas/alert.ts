// The alert contract. schemas/alert.schema.json is the same contract as JSON Schema, for
// consumers outside TypeScript (`npm run schemas` writes it; a test keeps it in step).
import { z } from 'zod';
import { AttributionSchema, RefSchema } from './session.js';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export const SeveritySchema = z.enum(SEVERITIES);
export type Severity = z.infer<typeof SeveritySchema>;

export const AlertSchema = z.object({
  /** Deterministic: same rule + same subject + same occurrence = same id. */
  id: z.string(),
  rule: z.string(),
  severity: SeveritySchema,
  /** Event time of the first occurrence, ISO 8601 UTC. */
  time: z.string(),
  title: z.string(),
  /** The person, with how they were attributed; null when no person is known. */
  identity: z
    .object({
      principalId: z.string().nullable(),
      name: z.string().nullable(),
      attribution: AttributionSchema.nullable(),
    })
    .nullable(),
  dbSystem: RefSchema.nullable(),
  /** Dedupe keys of the events behind the alert. */
  evidence: z.array(z.string()),
  /** `user@host` whose privileges applied. */
  mysqlAccount: z.string().optional(),
  /** The user name the client sent. */
  loginUser: z.string().optional(),
  group: RefSchema.optional(),
  sourceIp: z.string().optional(),
  /** MITRE ATT&CK technique ids. */
  attack: z.array(z.string()).optional(),
  /** Rule-specific facts (documented per rule); `occurrences` counts merged repeats. */
  details: z.record(z.string(), z.unknown()).optional(),
});
export type Alert = z.infer<typeof AlertSchema>;

/** The alert contract as JSON Schema (draft 2020-12) text, as committed in schemas/alert.schema.json. */
export function alertJsonSchemaText(): string {
  return `${JSON.stringify(z.toJSONSchema(AlertSchema), null, 2)}\n`;
}
