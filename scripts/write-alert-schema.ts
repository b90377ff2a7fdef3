// Writes schemas/alert.schema.json, the alert contract as JSON Schema for consumers outside
// TypeScript (`npm run schemas`). test/emit/alert-schema.test.ts keeps the file in step.
import { writeFileSync } from 'node:fs';
import { alertJsonSchemaText } from '../schemas/alert.js';

writeFileSync(new URL('../schemas/alert.schema.json', import.meta.url), alertJsonSchemaText());
