import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RecordLocation } from '../../schemas/dead-letter.js';
import { type ClassifiedItem, classifyRecord } from '../../shared/decode/classify.js';

// biome-ignore lint/suspicious/noExplicitAny: samples are mutated freely to build variants
type Json = any;

function sample(path: string): Json {
  return JSON.parse(readFileSync(new URL(`../events/${path}`, import.meta.url), 'utf8'));
}

const LOC: RecordLocation = { source: 'in.json', line: 3 };
const DB = { id: 'ocid1.mysqldbsystem.oc1..prod1', name: 'prod-orders' };
const EVENT = {
  timestamp: '2026-11-01 10:00:00',
  id: 0,
  class: 'connection',
  event: 'connect',
  connection_id: 71,
  connection_data: { connection_type: 'ssl', status: 0 },
};
const COLLECTOR = { source: 'mysql-audit', dbSystemId: DB.id, dbSystemName: DB.name, event: EVENT };
const CLOUD_EVENT = sample('oci-audit/add-user-to-group.cloudevents.json');
const LIST_EVENT = sample('oci-audit/add-user-to-group.listevents.json');

const base64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64');
const message = (value: string) => ({
  stream: 'mysql-audit',
  partition: '0',
  key: null,
  value,
  offset: 12,
  timestamp: '2026-11-01T10:00:03.120Z',
});
const kinds = (items: ClassifiedItem[]) =>
  items.map((i) => (i.kind === 'dead' ? `dead:${i.dead.code}` : i.kind));

describe('classifyRecord: MySQL audit', () => {
  it('classifies a raw audit event without a DB system', () => {
    expect(classifyRecord(EVENT, LOC)).toEqual([{ kind: 'mysql-audit', raw: EVENT, loc: LOC }]);
  });

  it('classifies an audit event lacking its class, for normalization to report', () => {
    const { class: _class, ...noClass } = EVENT;
    expect(kinds(classifyRecord(noClass, LOC))).toEqual(['mysql-audit']);
  });

  it('unwraps a collector record into its event and DB system', () => {
    expect(classifyRecord(COLLECTOR, LOC)).toEqual([{ kind: 'mysql-audit', raw: EVENT, db: DB, loc: LOC }]);
    const { dbSystemName: _name, ...unnamed } = COLLECTOR;
    expect(classifyRecord(unnamed, LOC)).toEqual([
      { kind: 'mysql-audit', raw: EVENT, db: { id: DB.id }, loc: LOC },
    ]);
  });

  it('dead-letters a collector record without a DB system id as SCHEMA_INVALID', () => {
    const [item] = classifyRecord({ ...COLLECTOR, dbSystemId: 7 }, LOC);
    expect(item).toMatchObject({
      kind: 'dead',
      dead: { code: 'SCHEMA_INVALID', path: ['dbSystemId'], line: 3 },
    });
  });
});

describe('classifyRecord: OCI audit', () => {
  it('classifies CloudEvents 1.0 and ListEvents v2 records', () => {
    expect(classifyRecord(CLOUD_EVENT, LOC)).toEqual([{ kind: 'oci-audit', raw: CLOUD_EVENT, loc: LOC }]);
    expect(classifyRecord(LIST_EVENT, LOC)).toEqual([{ kind: 'oci-audit', raw: LIST_EVENT, loc: LOC }]);
  });

  it('expands a ListEvents page and a bare array, giving each item its index', () => {
    for (const page of [
      { items: [LIST_EVENT, LIST_EVENT] },
      { data: [LIST_EVENT, LIST_EVENT] },
      [LIST_EVENT, LIST_EVENT],
    ]) {
      expect(classifyRecord(page, LOC)).toEqual([
        { kind: 'oci-audit', raw: LIST_EVENT, loc: { ...LOC, index: 0 } },
        { kind: 'oci-audit', raw: LIST_EVENT, loc: { ...LOC, index: 1 } },
      ]);
    }
  });

  it('classifies a CloudEvent whose data is a collector record or an audit event as MySQL audit', () => {
    const entry = { ...CLOUD_EVENT, type: 'com.oraclecloud.logging.custom.mysqlaudit', data: COLLECTOR };
    expect(classifyRecord(entry, LOC)).toEqual([{ kind: 'mysql-audit', raw: EVENT, db: DB, loc: LOC }]);
    expect(classifyRecord({ ...entry, data: JSON.stringify(COLLECTOR) }, LOC)).toEqual([
      { kind: 'mysql-audit', raw: EVENT, db: DB, loc: LOC },
    ]);
    expect(classifyRecord({ ...entry, data: EVENT }, LOC)).toEqual([
      { kind: 'mysql-audit', raw: EVENT, loc: LOC },
    ]);
  });
});

describe('classifyRecord: Logging Search', () => {
  it('unwraps a row, bare or wrapped in data', () => {
    const row = { datetime: 1793527200000, logContent: CLOUD_EVENT };
    expect(classifyRecord(row, LOC)).toEqual([{ kind: 'oci-audit', raw: CLOUD_EVENT, loc: LOC }]);
    expect(classifyRecord({ data: row }, LOC)).toEqual([{ kind: 'oci-audit', raw: CLOUD_EVENT, loc: LOC }]);
  });

  it('expands a searchLogs response in each of its wrappings', () => {
    const results = [
      { data: { datetime: 1, logContent: CLOUD_EVENT } },
      { data: { datetime: 2, logContent: COLLECTOR } },
    ];
    const expected = [
      { kind: 'oci-audit', raw: CLOUD_EVENT, loc: { ...LOC, index: 0 } },
      { kind: 'mysql-audit', raw: EVENT, db: DB, loc: { ...LOC, index: 1 } },
    ];
    const response = { results, summary: { resultCount: 2 } };
    expect(classifyRecord(response, LOC)).toEqual(expected);
    expect(classifyRecord({ data: response }, LOC)).toEqual(expected);
    expect(classifyRecord({ searchResponse: response }, LOC)).toEqual(expected);
  });

  it('expands the sample response of collector records in custom-log CloudEvents', () => {
    const items = classifyRecord(sample('mysql-audit/search-logs-response.json'), LOC);
    expect(kinds(items)).toEqual(['mysql-audit', 'mysql-audit', 'mysql-audit']);
    expect(items.map((i) => (i.kind === 'mysql-audit' ? i.db : undefined))).toEqual([DB, DB, DB]);
  });
});

describe('classifyRecord: stream messages', () => {
  it('decodes a base64 value holding a collector record, an audit event or a CloudEvent', () => {
    expect(classifyRecord(message(base64(COLLECTOR)), LOC)).toEqual([
      { kind: 'mysql-audit', raw: EVENT, db: DB, loc: LOC },
    ]);
    expect(classifyRecord(message(base64(EVENT)), LOC)).toEqual([
      { kind: 'mysql-audit', raw: EVENT, loc: LOC },
    ]);
    expect(classifyRecord(message(base64(CLOUD_EVENT)), LOC)).toEqual([
      { kind: 'oci-audit', raw: CLOUD_EVENT, loc: LOC },
    ]);
  });

  it('expands the sample Connector Hub batch of stream messages', () => {
    const items = classifyRecord(sample('mysql-audit/connector-hub-stream-batch.json'), LOC);
    expect(kinds(items)).toEqual(['mysql-audit', 'mysql-audit', 'mysql-audit']);
    expect(items.map((i) => (i.kind === 'dead' ? -1 : i.loc.index))).toEqual([0, 1, 2]);
  });

  it.each([
    ['not base64', message('not base64!'), 'ENCODING_INVALID'],
    ['not UTF-8', message(Buffer.from([0x7b, 0xff, 0x7d]).toString('base64')), 'ENCODING_INVALID'],
    ['not JSON', message(base64('{"source": "mysql-audit", ')), 'JSON_INVALID'],
    ['a polluting key', message(base64('{"__proto__": {"x": 1}}')), 'UNSAFE_KEY'],
    ['of no known kind', message(base64({ hello: 'world' })), 'UNKNOWN_KIND'],
    ['with a value that is not a string', { ...message(''), value: 42 }, 'UNKNOWN_KIND'],
  ])('dead-letters a message %s', (_name, value, code) => {
    const items = classifyRecord(value, LOC);
    expect(items).toEqual([
      { kind: 'dead', dead: expect.objectContaining({ code, source: 'in.json', line: 3 }) },
    ]);
  });

  it('dead-letters a message whose envelope fields have the wrong types', () => {
    const [item] = classifyRecord({ ...message(base64(EVENT)), partition: { p: 0 } }, LOC);
    expect(item).toMatchObject({ kind: 'dead', dead: { code: 'SCHEMA_INVALID', path: ['partition'] } });
  });
});

describe('classifyRecord: unknown input', () => {
  it.each([
    ['a number', 42],
    ['a string', 'text'],
    ['an object of no known kind', { hello: 'world' }],
    ['an object with an unknown wrapper', { data: { something: 1 } }],
  ])('dead-letters %s as UNKNOWN_KIND', (_name, value) => {
    expect(kinds(classifyRecord(value, LOC))).toEqual(['dead:UNKNOWN_KIND']);
  });

  it('says what a record that looks like an OCI or MySQL audit event lacks', () => {
    const { specversion: _, id: __, ...noIds } = CLOUD_EVENT;
    expect(classifyRecord(noIds, LOC)).toEqual([
      {
        kind: 'dead',
        dead: {
          code: 'UNKNOWN_KIND',
          source: LOC.source,
          line: LOC.line,
          message:
            'looks like an OCI audit event (type, data.identity) but has no id: a CloudEvents record needs id, type, time and data, a ListEvents item eventType, eventId, eventTime and data',
        },
      },
    ]);
    const { timestamp: ___, ...noTime } = EVENT;
    expect(classifyRecord(noTime, LOC)[0]).toMatchObject({
      dead: { code: 'UNKNOWN_KIND', message: expect.stringMatching(/MySQL audit event .* no timestamp/) },
    });
  });

  it('reads a CloudEvent that lost its specversion but has what is read', () => {
    const { specversion: _, ...rest } = CLOUD_EVENT;
    expect(kinds(classifyRecord(rest, LOC))).toEqual(['oci-audit']);
  });

  it('keeps the good items of an envelope next to the unknown ones, skipping nulls', () => {
    const items = classifyRecord({ items: [LIST_EVENT, null, 'junk', EVENT] }, LOC);
    expect(kinds(items)).toEqual(['oci-audit', 'dead:UNKNOWN_KIND', 'mysql-audit']);
    expect(items[1]).toMatchObject({ dead: { index: 2 } });
  });

  it('hands the items to a consumer, in the same order, when given one', () => {
    const value = { items: [LIST_EVENT, null, 'junk', EVENT] };
    const taken: ClassifiedItem[] = [];
    expect(classifyRecord(value, LOC, { push: (item) => taken.push(item) })).toBeUndefined();
    expect(taken).toEqual(classifyRecord(value, LOC));
  });

  it('stops at envelopes nested too deeply', () => {
    let value: unknown = EVENT;
    for (let i = 0; i < 10; i++) value = { items: [value] };
    expect(kinds(classifyRecord(value, LOC))).toEqual(['dead:UNKNOWN_KIND']);
  });
});
