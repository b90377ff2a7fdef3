// The hand check of common OCI Audit record shapes (schemas/oci-audit.ts) answers exactly as the
// zod schemas do: the same records accepted, the same values read (zod's copy differs only in the
// order of its keys), every other record left to zod, whose issues make the dead letter's message.
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  OciCloudEventSchema,
  OciListEventSchema,
  ociEnvelopeOf,
  parseOciCloudEvent,
  parseOciListEvent,
} from '../../schemas/oci-audit.js';
import { runs } from '../helpers/property.js';

type Json = Record<string, unknown>;

const DIR = new URL('../events/oci-audit/', import.meta.url);
const SAMPLES: { name: string; raw: Json }[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((name) => ({ name, raw: JSON.parse(readFileSync(new URL(name, DIR), 'utf8')) }));

const isCloudEvent = (raw: unknown) => ociEnvelopeOf(raw) === 'cloudevents';

/** What the schemas alone say of a record. */
function byZod(raw: unknown) {
  const parsed = (isCloudEvent(raw) ? OciCloudEventSchema : OciListEventSchema).safeParse(raw);
  return parsed.success
    ? { success: true, data: parsed.data }
    : { success: false, issues: parsed.error.issues };
}

function byParse(raw: unknown) {
  const parsed = (isCloudEvent(raw) ? parseOciCloudEvent : parseOciListEvent)(raw);
  return parsed.success
    ? { success: true, data: parsed.data }
    : { success: false, issues: parsed.error.issues };
}

const value = fc.oneof(
  fc.constantFrom(undefined, null, '', 'x', 'None', ' null ', 'NULL', 'nil', '\u00a0nil', 'Null\t', 'None x'),
  fc.constantFrom('{"userId":"ocid1.user.oc1..a","lifecycleState":"None"}', '{not json', '[1]'),
  fc.constantFrom(
    '2026-11-02T07:00:18.410Z',
    '2026-11-02T07:00:18+02:00',
    '2026-11-02 07:00:18',
    '2026-13-40T00:00:00Z',
  ),
  fc.constantFrom(0, 200, 404, 1.5),
  fc.boolean(),
  fc.constantFrom([], ['a'], ['a', 'None'], [1], [null]),
  fc.constantFrom({}, { a: 'None' }, { a: ['b'] }, { a: 'b' }, { eventId: 'sso.session.create.success' }),
);

/** Where a record's fields are replaced: envelope, `data`, and one level below. */
const PATHS: string[][] = [
  ['type'],
  ['id'],
  ['time'],
  ['eventType'],
  ['eventId'],
  ['eventTime'],
  ['oracle'],
  ['oracle', 'ingestedtime'],
  ['data'],
  ...['eventName', 'compartmentId', 'resourceName', 'resourceId', 'message', 'freeformTags'].map((f) => [
    'data',
    f,
  ]),
  ...['identity', 'request', 'response', 'stateChange', 'additionalDetails'].map((f) => ['data', f]),
  ...['principalId', 'principalName', 'ipAddress', 'callerName'].map((f) => ['data', 'identity', f]),
  ...['path', 'parameters', 'payload', 'headers'].map((f) => ['data', 'request', f]),
  ...['status', 'payload'].map((f) => ['data', 'response', f]),
  ...['previous', 'current'].map((f) => ['data', 'stateChange', f]),
  ...['eventId', 'actorName', 'adminResourceId', 'ssoAuthFactor'].map((f) => [
    'data',
    'additionalDetails',
    f,
  ]),
  ['data', 'request', 'parameters', 'groupId'],
  ['data', 'stateChange', 'current', 'lifecycleState'],
];

/** Sets the value at `path` where its parent is an object (else replaces the nearest one that is). */
function setAt(record: Json, path: readonly string[], v: unknown): void {
  let target = record;
  for (const key of path.slice(0, -1)) {
    const next = target[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      target[key] = v;
      return;
    }
    target = next as Json;
  }
  target[path.at(-1)!] = v;
}

const mutated = fc
  .tuple(
    fc.constantFrom(...SAMPLES.map((s) => s.raw)),
    fc.array(fc.tuple(fc.constantFrom(...PATHS), value), { maxLength: 3 }),
  )
  .map(([sample, edits]) => {
    const r = structuredClone(sample);
    // A copy of each value: the constants are shared, and a later edit may write inside one (two
    // edits of one constant object made a record that holds itself, which no JSON can).
    for (const [path, v] of edits) setAt(r, path, structuredClone(v));
    return r;
  });

describe('the hand check of common OCI Audit record shapes', () => {
  it('takes the samples zod reads unchanged as they are, without copying them', () => {
    const unchanged = SAMPLES.filter(({ raw }) => {
      const zod = byZod(raw);
      return zod.success && JSON.stringify(sortKeys(zod.data)) === JSON.stringify(sortKeys(raw));
    });
    expect(unchanged.length).toBeGreaterThanOrEqual(15);
    for (const { raw } of unchanged) {
      const parsed = (isCloudEvent(raw) ? parseOciCloudEvent : parseOciListEvent)(raw);
      expect(parsed.success && parsed.data).toBe(raw);
    }
  });

  it('leaves an export that spells null "None" and nests JSON text to zod, which converts them', () => {
    const { raw } = SAMPLES.find((s) => s.name === 'add-user-to-group.siem-export.json')!;
    const parsed = parseOciCloudEvent(raw);
    expect(parsed.success).toBe(true);
    expect(parsed.data).not.toBe(raw);
    expect(byParse(raw)).toEqual(byZod(raw));
  });

  it('leaves a time the SDK already parsed to zod', () => {
    const raw = structuredClone(SAMPLES.find((s) => !isCloudEvent(s.raw))!.raw);
    raw.eventTime = new Date('2026-11-02T07:00:18.410Z');
    const parsed = parseOciListEvent(raw);
    expect(parsed.success && parsed.data).not.toBe(raw);
    expect(parsed.success && parsed.data.eventTime).toEqual(raw.eventTime);
  });

  it('agrees with zod on any record: what is accepted, what is read, and the issues of the rest', () => {
    fc.assert(
      fc.property(mutated, (raw) => {
        expect(byParse(raw)).toEqual(byZod(raw));
      }),
      runs(2000),
    );
  });
});

/** A copy with every object's keys in order (zod puts the schema's keys first). */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sortKeys((v as Json)[k])]),
  );
}
