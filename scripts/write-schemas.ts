// Writes the JSON Schemas of the contracts for consumers outside TypeScript (`npm run schemas`):
// schemas/alert.schema.json and schemas/report.schema.json. Tests keep the files in step.
import { writeFileSync } from 'node:fs';
import { alertJsonSchemaText } from '../schemas/alert.js';
import { reportJsonSchemaText } from '../schemas/report.js';

writeFileSync(new URL('../schemas/alert.schema.json', import.meta.url), alertJsonSchemaText());
writeFileSync(new URL('../schemas/report.schema.json', import.meta.url), reportJsonSchemaText());
