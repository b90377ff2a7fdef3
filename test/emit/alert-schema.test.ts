// The committed JSON Schema of the alert contract matches the zod schema, and every alert the
// incident scenario raises validates against it.
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { alertJsonSchemaText } from '../../schemas/alert.js';
import { runTimeline } from '../helpers/run-timeline.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';

const committed = readFileSync(new URL('../../schemas/alert.schema.json', import.meta.url), 'utf8');

describe('alert JSON Schema', () => {
  it('is the zod contract (run npm run schemas after changing schemas/alert.ts)', () => {
    expect(committed).toBe(alertJsonSchemaText());
  });

  it('accepts every alert of the incident scenario and rejects a malformed one', async () => {
    const validate = new Ajv2020({ strict: false }).compile(JSON.parse(committed));
    const { alerts } = await runTimeline(incidentTimeline());
    expect(alerts.length).toBeGreaterThan(5);
    for (const alert of alerts) expect(validate(alert), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...alerts[0], severity: 'urgent' })).toBe(false);
  });
});
