import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeadLetterSchema } from '../../schemas/dead-letter.js';
import { IamEventSchema } from '../../schemas/events.js';
import { normalizeOciAudit } from '../../shared/normalize/oci-audit.js';
import { runs } from '../helpers/property.js';

// biome-ignore lint/suspicious/noExplicitAny: samples are mutated freely to build variants
type Json = any;

const SAMPLE: Json = JSON.parse(
  readFileSync(new URL('../events/oci-audit/add-user-to-group.listevents.json', import.meta.url), 'utf8'),
);
const CLOUD_SAMPLE: Json = JSON.parse(
  readFileSync(new URL('../events/oci-audit/add-user-to-group.cloudevents.json', import.meta.url), 'utf8'),
);
const SECRET = 'do-not-leak-7f3a';

function deadLetterOf(raw: unknown, loc = { source: 'batch', index: 3 }) {
  const outcome = normalizeOciAudit(raw, loc);
  if (outcome.ok) throw new Error('expected a dead letter');
  expect(DeadLetterSchema.parse(outcome.dead)).toEqual(outcome.dead);
  return outcome.dead;
}

describe('normalizeOciAudit: dead letters', () => {
  it.each([
    ['null', null],
    ['a string', 'com.oraclecloud.identityControlPlane.AddUserToGroup'],
    ['a number', 42],
    ['an array', [structuredClone(SAMPLE)]],
    ['an object of no known envelope', { id: 'x', data: {} }],
  ])('rejects %s at the record root', (_name, raw) => {
    expect(deadLetterOf(raw)).toMatchObject({ code: 'SCHEMA_INVALID', source: 'batch', index: 3, path: [] });
  });

  it('rejects a ListEvents item without data, naming the field', () => {
    const raw = structuredClone(SAMPLE);
    delete raw.data;
    const dead = deadLetterOf(raw, { source: 'events.json', line: 17 } as Json);
    expect(dead).toEqual({
      code: 'SCHEMA_INVALID',
      source: 'events.json',
      line: 17,
      path: ['data'],
      message: 'OCI audit event: data expected object, got nothing (missing)',
    });
  });

  it('rejects a CloudEvents record whose data is an array', () => {
    const raw = structuredClone(CLOUD_SAMPLE);
    raw.data = [raw.data];
    expect(deadLetterOf(raw).path).toEqual(['data']);
  });

  it.each([
    ['eventId', (r: Json) => Object.assign(r, { eventId: 12345 }), ['eventId']],
    ['eventTime', (r: Json) => Object.assign(r, { eventTime: SECRET }), ['eventTime']],
    ['identity', (r: Json) => Object.assign(r.data, { identity: SECRET }), ['data', 'identity']],
    [
      'identity.principalId',
      (r: Json) => Object.assign(r.data.identity, { principalId: { value: SECRET } }),
      ['data', 'identity', 'principalId'],
    ],
    [
      'response.status',
      (r: Json) => Object.assign(r.data.response, { status: [SECRET] }),
      ['data', 'response', 'status'],
    ],
    [
      'request.parameters',
      (r: Json) => Object.assign(r.data.request, { parameters: { userId: { value: SECRET } } }),
      ['data', 'request', 'parameters', 'userId'],
    ],
    [
      'additionalDetails.eventId',
      (r: Json) => Object.assign(r.data, { additionalDetails: { eventId: [SECRET] } }),
      ['data', 'additionalDetails', 'eventId'],
    ],
    [
      'stateChange.current',
      (r: Json) => Object.assign(r.data.stateChange, { current: SECRET }),
      ['data', 'stateChange', 'current'],
    ],
  ])('rejects a wrong %s with its path and without its value', (_field, mutate, path) => {
    const raw = structuredClone(SAMPLE);
    mutate(raw);
    const dead = deadLetterOf(raw);
    expect(dead.code).toBe('SCHEMA_INVALID');
    expect(dead.path).toEqual(path);
    expect(dead.message).not.toContain(SECRET);
    expect(dead.message).not.toContain('12345');
  });

  it('rejects an event time without a zone (it would be read as local time)', () => {
    const raw = structuredClone(CLOUD_SAMPLE);
    raw.time = '2026-11-02T09:15:42';
    expect(deadLetterOf(raw).path).toEqual(['time']);
  });

  it('rejects an empty event id (it is the dedupe key)', () => {
    const raw = structuredClone(SAMPLE);
    raw.eventId = '';
    expect(deadLetterOf(raw).path).toEqual(['eventId']);
  });
});

describe('normalizeOciAudit: properties', () => {
  const loc = { source: 'fuzz' };
  const check = (raw: unknown) => {
    const outcome = normalizeOciAudit(raw, loc);
    if (outcome.ok) IamEventSchema.parse(outcome.value);
    else DeadLetterSchema.parse(outcome.dead);
  };

  it('does not throw on values that cannot be converted to strings', () => {
    const raw = structuredClone(SAMPLE);
    raw.eventType = 'com.oraclecloud.identityControlPlane.UpdateUserState';
    const hostile = { toString: 1, valueOf: 1 };
    raw.data.stateChange.current = {
      lifecycleState: hostile,
      blocked: hostile,
      userId: hostile,
      statements: [hostile],
    };
    expect(normalizeOciAudit(raw, loc)).toMatchObject({ ok: true, value: { kind: 'user_reactivated' } });
  });

  it('never throws on arbitrary JSON values', () => {
    fc.assert(fc.property(fc.jsonValue(), check), runs(500));
  });

  it('never throws on envelope-shaped records with arbitrary fields', () => {
    const field = fc.oneof(fc.jsonValue(), fc.constant(null));
    const data = fc.dictionary(
      fc.constantFrom(
        'identity',
        'request',
        'response',
        'stateChange',
        'additionalDetails',
        'resourceId',
        'eventName',
      ),
      field,
    );
    const record = fc.record(
      {
        specversion: fc.constant('1.0'),
        eventType: fc.constantFrom('com.oraclecloud.identityControlPlane.AddUserToGroup', 'x'),
        type: fc.string(),
        id: fc.string(),
        time: fc.oneof(fc.string(), fc.constant('2026-11-02T09:15:42.318Z')),
        data,
      },
      { requiredKeys: ['data'] },
    );
    fc.assert(fc.property(record, check), runs(500));
  });

  it('never throws when a field of a valid sample is replaced by arbitrary JSON, for any IAM type', () => {
    const types = [
      'AddUserToGroup',
      'RemoveUserFromGroup',
      'UpdateUserState',
      'UpdatePolicy',
      'UploadApiKey',
    ];
    const paths = [
      ['data', 'stateChange', 'current'],
      ['data', 'stateChange', 'previous'],
      ['data', 'request', 'parameters'],
      ['data', 'request', 'path'],
      ['data', 'additionalDetails'],
      ['data', 'response', 'payload'],
      ['data', 'resourceId'],
    ];
    // Keys that trip naive code: prototype names, and the fields the normalizer reads.
    const awkwardKey = fc.constantFrom(
      'toString',
      'valueOf',
      'constructor',
      '__proto__',
      'userId',
      'groupId',
      'id',
      'name',
      'statements',
      'lifecycleState',
      'blocked',
      'eventId',
    );
    const value = fc.oneof(fc.jsonValue(), fc.dictionary(awkwardKey, fc.jsonValue()));
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.constantFrom(...paths), value, (type, path, replacement) => {
        const raw = structuredClone(SAMPLE);
        raw.eventType = `com.oraclecloud.identityControlPlane.${type}`;
        let target = raw;
        for (const key of path.slice(0, -1)) target = target[key];
        target[path.at(-1) as string] = replacement;
        check(raw);
      }),
      runs(1000),
    );
  });
});
