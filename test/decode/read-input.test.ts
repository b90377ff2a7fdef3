import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../schemas/dead-letter.js';
import { type CanonicalEvent, DbEventSchema } from '../../schemas/events.js';
import {
  type DecodedItem,
  decodeBatch,
  type ReadOptions,
  readInput,
} from '../../shared/decode/read-input.js';
import { AuditError } from '../../shared/errors.js';
import { describeSharedFixture } from '../helpers/shared-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'read-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const samplePath = (name: string) => new URL(`../events/mysql-audit/${name}`, import.meta.url).pathname;
const sampleText = (name: string) => readFileSync(samplePath(name), 'utf8');
const DB = { id: 'ocid1.mysqldbsystem.oc1..test' };
const OPTS: ReadOptions = { resolveDbSystem: () => DB };

function write(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function read(path: string, opts: ReadOptions = OPTS) {
  const reader = readInput(path, opts);
  const items: DecodedItem[] = [];
  for await (const item of reader) items.push(item);
  const events = items.flatMap((i) => (i.type === 'event' ? [i.event] : []));
  const dead = items.flatMap((i) => (i.type === 'dead' ? [i.dead] : []));
  return { events, dead, counts: reader.counts };
}

const keys = (events: CanonicalEvent[]) => events.map((e) => e.key);

describe('readInput: file shapes', () => {
  it.each([
    ['an open array, one event per line with trailing commas', 'line-per-event.log', 4],
    ['a pretty-printed array', 'all-classes.pretty.json', 11],
    ['a one-line array', 'one-line-array.json', 3],
    ['an audit_log_read() array ending in null', 'audit-log-read.json', 2],
    ['collector records as JSONL', 'collector-records.jsonl', 3],
    ['a Connector Hub batch of stream messages', 'connector-hub-stream-batch.json', 3],
    ['a Logging Search response of custom-log entries', 'search-logs-response.json', 3],
  ])('reads %s', async (_name, file, count) => {
    const { events, dead, counts } = await read(samplePath(file));
    expect(dead).toEqual([]);
    expect(events).toHaveLength(count);
    for (const event of events) expect(DbEventSchema.safeParse(event).success).toBe(true);
    expect(counts.events).toBe(count);
  });

  it('reads a gzip file by its magic bytes whatever its extension, CRLF and BOM included', async () => {
    const text = `\uFEFF${sampleText('line-per-event.log').replaceAll('\n', '\r\n')}`;
    const plain = await read(write('plain.log', text));
    const gz = await read(write('rotated.log', gzipSync(Buffer.from(text))));
    const named = await read(write('rotated.log.gz', gzipSync(Buffer.from(text))));
    expect(plain.events).toHaveLength(4);
    expect(gz.events).toEqual(plain.events);
    expect(named.events).toEqual(plain.events);
    expect(gz.dead).toEqual([]);
  });

  it('reads UTF-16 text with its byte order mark (as Windows PowerShell 5 redirects output), gzipped too', async () => {
    const text = sampleText('all-classes.pretty.json');
    const utf8 = await read(write('utf8.json', text));
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const be = Buffer.from(le.subarray(2)).swap16();
    for (const bytes of [le, Buffer.concat([Buffer.from([0xfe, 0xff]), be]), gzipSync(le)]) {
      const utf16 = await read(write('utf16.json', bytes));
      expect(utf16.dead).toEqual([]);
      expect(keys(utf16.events)).toEqual(keys(utf8.events));
    }
    // A UTF-16 file over many chunks: a character may be cut between two of them.
    const many = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text.repeat(400), 'utf16le')]);
    expect(many.length).toBeGreaterThan(1024 * 1024);
    const read400 = await read(write('utf16-many.json', many));
    expect(read400.dead).toEqual([]);
    expect(read400.events).toHaveLength(400 * utf8.events.length);
    // A lone surrogate ends the input where it is, as a corrupt gzip does: one dead letter.
    const cut = Buffer.concat([
      Buffer.from([0xff, 0xfe]),
      Buffer.from(text.repeat(100), 'utf16le'),
      Buffer.from([0x00, 0xd8]),
      Buffer.from(text, 'utf16le'),
    ]);
    const broken = await read(write('utf16-broken.json', cut));
    expect(broken.events.length).toBeGreaterThan(0);
    expect(broken.events.length).toBeLessThan(100 * utf8.events.length);
    expect(broken.dead.at(-1)).toEqual({
      code: 'ENCODING_INVALID',
      source: join(dir, 'utf16-broken.json'),
      message: 'UTF-16 text is not valid: the input is not read past this point',
    });
  });

  it('reads concatenated gzip members', async () => {
    const [first, second] = sampleText('line-per-event.log').split(
      /(?<=\n)(?=\{ "timestamp": "2026-11-01 10:00:01")/,
    );
    const path = write('members.gz', Buffer.concat([gzipSync(first!), gzipSync(second!)]));
    expect((await read(path)).events).toHaveLength(4);
  });

  it('turns a corrupt gzip into one ENCODING_INVALID dead letter', async () => {
    const corrupt = Buffer.concat([
      Buffer.from([0x1f, 0x8b, 0x08, 0x00]),
      Buffer.from('definitely not deflate data'),
    ]);
    const { events, dead, counts } = await read(write('corrupt.gz', corrupt));
    expect(events).toEqual([]);
    expect(dead).toEqual([
      {
        code: 'ENCODING_INVALID',
        source: join(dir, 'corrupt.gz'),
        message: 'gzip data is corrupt or truncated',
      },
    ]);
    expect(counts).toMatchObject({ items: 1, dead: 1 });
  });

  it('keeps the events before a gzip stream is cut off', async () => {
    const gz = gzipSync(Buffer.from(sampleText('all-classes.pretty.json').repeat(20)));
    const { events, dead } = await read(write('cut.gz', gz.subarray(0, Math.floor(gz.length * 0.8))));
    expect(events.length).toBeGreaterThan(20);
    expect(dead.map((d) => d.code)).toContain('ENCODING_INVALID');
  });

  it('reads a file of many chunks the same plain and gzipped', async () => {
    const text = sampleText('all-classes.pretty.json').repeat(150);
    expect(text.length).toBeGreaterThan(4 * 64 * 1024);
    const plain = await read(write('many-chunks.json', text));
    const gz = await read(write('many-chunks.json.gz', gzipSync(Buffer.from(text))));
    expect(plain.dead).toEqual([]);
    expect(plain.events).toHaveLength(11 * 150);
    expect(gz.events).toEqual(plain.events);
  });

  it('reads a gzip of many chunks, each record its own', async () => {
    // Statements that do not compress to one chunk (each its own digest chain), so the inflater
    // gets many chunks of the file while the file is still being read.
    const records: string[] = [];
    let digest = 'seed';
    for (let i = 0; i < 8000; i++) {
      digest = createHash('sha256').update(digest).digest('hex');
      records.push(
        JSON.stringify({
          timestamp: '2026-11-02 09:00:01',
          id: i,
          class: 'general',
          event: 'status',
          connection_id: 9,
          general_data: { command: 'Query', sql_command: 'select', query: `SELECT '${digest}'`, status: 0 },
        }),
      );
    }
    const text = Buffer.from(`${records.join('\n')}\n`);
    const gzipped = gzipSync(text);
    expect(gzipped.length).toBeGreaterThan(3 * 64 * 1024);
    const plain = await read(write('digests.log', text));
    const gz = await read(write('digests.log.gz', gzipped));
    expect(plain.dead).toEqual([]);
    expect(plain.events).toHaveLength(8000);
    expect(gz.events).toEqual(plain.events);
  });

  it.each([
    ['plain', (b: Buffer) => b],
    ['gzip', (b: Buffer) => gzipSync(b)],
  ])('reads a named pipe (%s)', async (name, encode) => {
    const fifo = join(dir, `pipe-${name}`);
    execFileSync('mkfifo', [fifo]);
    const text = Buffer.from(sampleText('collector-records.jsonl').repeat(40));
    // Another process writes, as a shell's `<(...)` would: the reader's open waits for it.
    const writer = spawn('cp', [write(`pipe-${name}.src`, encode(text)), fifo], { stdio: 'ignore' });
    const exited = once(writer, 'exit');
    const { events, dead } = await read(fifo);
    expect((await exited)[0]).toBe(0);
    expect(dead).toEqual([]);
    expect(events).toHaveLength(3 * 40);
    expect(events).toEqual((await read(write(`pipe-${name}.log`, text))).events);
  });

  it('throws INPUT_UNREADABLE for a missing file or a directory', async () => {
    await expect(read(join(dir, 'missing.log'))).rejects.toMatchObject({ code: 'INPUT_UNREADABLE' });
    await expect(read(dir)).rejects.toBeInstanceOf(AuditError);
  });
});

describe('readInput: DB systems and accounting', () => {
  it('uses the resolver for raw records and the collector record over the resolver', async () => {
    const raw = await read(samplePath('line-per-event.log'));
    expect(raw.events.every((e) => e.source === 'mysql' && e.dbSystemId === DB.id)).toBe(true);
    const collected = await read(samplePath('collector-records.jsonl'));
    expect(collected.events[0]).toMatchObject({
      dbSystemId: 'ocid1.mysqldbsystem.oc1..prod1',
      dbSystemName: 'prod-orders',
    });
  });

  it('dead-letters raw records as NO_DB_SYSTEM when no DB system is known', async () => {
    const { events, dead } = await read(samplePath('line-per-event.log'), {
      resolveDbSystem: () => undefined,
    });
    expect(events).toEqual([]);
    expect(dead.map((d) => d.code)).toEqual(['NO_DB_SYSTEM', 'NO_DB_SYSTEM', 'NO_DB_SYSTEM', 'NO_DB_SYSTEM']);
    expect(dead[0]).toMatchObject({ line: 2, index: 0 });
    // The dead letter says how to name the DB system.
    expect(dead[0]!.message).toMatch(/--db-system ID.*HWAUDIT_DB_SYSTEM.*name the file or its folder/);
  });

  it('reads the malformed corpus: dead letters with codes and locations, the rest still read', async () => {
    const path = samplePath('malformed.log');
    const { events, dead, counts } = await read(path);
    expect(keys(events)).toEqual([
      `${DB.id}:2026-11-01 10:00:00:0:61`,
      `${DB.id}:2026-11-01 10:00:02:0:61`,
      `${DB.id}:2026-11-01 10:00:04:0:61`,
      `${DB.id}:2026-11-01 10:00:07:0:61`,
    ]);
    expect(dead.map((d) => [d.code, d.line, d.path])).toEqual([
      ['JSON_INVALID', 3, undefined],
      ['JSON_INVALID', 5, undefined],
      ['SCHEMA_INVALID', 7, ['connection_id']],
      ['SCHEMA_INVALID', 8, ['class']],
      ['JSON_INVALID', 9, undefined],
    ]);
    expect(counts).toEqual({ records: 9, items: 9, events: 4, ignored: 0, dead: 5 });
  });

  it('reads past a 10 MB line as TOO_LARGE', async () => {
    const huge = `{"timestamp":"2026-11-01 10:00:00","id":1,"class":"general","event":"status","general_data":{"query":"${'x'.repeat(10 * 1024 * 1024)}"}},`;
    const text = sampleText('line-per-event.log').replace('\n', `\n${huge}\n`);
    const { events, dead } = await read(write('huge.log', text));
    expect(events).toHaveLength(4);
    expect(dead).toMatchObject([{ code: 'TOO_LARGE', line: 2, index: 0 }]);
  });

  it('honours maxRecordBytes', async () => {
    const { events, dead } = await read(samplePath('line-per-event.log'), { ...OPTS, maxRecordBytes: 320 });
    expect(events).toHaveLength(2);
    expect(dead.map((d) => d.code)).toEqual(['TOO_LARGE', 'TOO_LARGE']);
  });

  it('accounts for every item as an event or a dead letter across envelopes', async () => {
    const mixed = [
      JSON.stringify({
        items: [
          JSON.parse(
            readFileSync(
              new URL('../events/oci-audit/add-user-to-group.listevents.json', import.meta.url),
              'utf8',
            ),
          ),
          'junk',
        ],
      }),
      sampleText('collector-records.jsonl').trim(),
      '{"timestamp": "2026-11-01 10:00:00", "class": "general"}',
      'garbage',
    ].join('\n');
    const { events, dead, counts } = await read(write('mixed.jsonl', mixed));
    expect(counts.records).toBe(6);
    expect(counts.items).toBe(7);
    expect(counts.items).toBe(counts.events + counts.dead);
    expect(events.map((e) => e.source)).toEqual(['iam', 'mysql', 'mysql', 'mysql']);
    expect(dead.map((d: DeadLetter) => d.code)).toEqual(['UNKNOWN_KIND', 'SCHEMA_INVALID', 'JSON_INVALID']);
  });
});

describe('readInput: a clock that stepped back', () => {
  const raw = (timestamp: string, id: number) => ({
    timestamp,
    id,
    class: 'connection',
    event: 'connect',
    connection_id: id,
    account: { user: 'admin', host: '%' },
    login: { user: 'admin', os: '', ip: '10.0.0.7', proxy: '' },
    connection_data: { connection_type: 'ssl', status: 0, db: '' },
  });
  const LATENESS = 20 * 60_000;

  it('puts a clock-step gap before the first raw event stamped the lateness or more before the latest', async () => {
    const path = write(
      'stepped.log',
      JSON.stringify([
        raw('2026-11-02 09:40:00', 0),
        raw('2026-11-02 09:30:00', 1),
        raw('2026-11-02 09:20:00', 2),
        raw('2026-11-02 09:21:00', 3),
      ]),
    );
    const { events, counts } = await read(path, { ...OPTS, lateness: LATENESS });
    expect(
      events.map((e) => (e.source === 'mysql' ? e.recordId : e.source === 'gap' && [e.reason, e.from, e.to])),
    ).toEqual([0, 1, ['clock-step', '2026-11-02T09:40:00.000Z', '2026-11-02T09:20:00.000Z'], 2, 3]);
    expect(events[2]).toMatchObject({ trail: 'mysql-audit', dbSystemId: DB.id });
    expect(counts).toMatchObject({ records: 4, items: 5, events: 5 });
    // Without the lateness (the normalize command), nothing is watched.
    expect((await read(path)).events).toHaveLength(4);
  });

  it('a step back of less than the lateness, or between collector records, is none', async () => {
    const small = write(
      'small-step.log',
      JSON.stringify([raw('2026-11-02 09:40:00', 0), raw('2026-11-02 09:21:00', 1)]),
    );
    expect((await read(small, { ...OPTS, lateness: LATENESS })).events.map((e) => e.source)).toEqual([
      'mysql',
      'mysql',
    ]);
    const collected = write(
      'collected.jsonl',
      [raw('2026-11-02 09:40:00', 0), raw('2026-11-02 09:00:00', 1)]
        .map((event) => JSON.stringify({ source: 'mysql-audit', dbSystemId: DB.id, event }))
        .join('\n'),
    );
    expect((await read(collected, { ...OPTS, lateness: LATENESS })).events.map((e) => e.source)).toEqual([
      'mysql',
      'mysql',
    ]);
  });
});

describe('decodeBatch', () => {
  it('decodes a Connector Hub batch held in memory, as a string or a Buffer', async () => {
    const body = sampleText('connector-hub-stream-batch.json');
    const fromString = await decodeBatch(body, 'batch');
    const fromBuffer = await decodeBatch(Buffer.from(body), 'batch');
    expect(fromBuffer).toEqual(fromString);
    expect(fromString.map((i) => (i.type === 'event' ? i.event.kind : i.type))).toEqual([
      'connect',
      'query',
      'disconnect',
    ]);
  });

  it('decodes a single CloudEvent object and reports bad members of a batch by index', async () => {
    const pretty = readFileSync(
      new URL('../events/oci-audit/add-user-to-group.cloudevents.json', import.meta.url),
      'utf8',
    );
    expect((await decodeBatch(pretty, 'batch')).map((i) => i.type)).toEqual(['event']);
    const cloudEvent = JSON.stringify(JSON.parse(pretty));
    const items = await decodeBatch(
      `[${cloudEvent}, {"stream":"s","partition":"0","offset":1,"value":"%%%"}]`,
      'batch',
    );
    expect(items[1]).toEqual({
      type: 'dead',
      dead: {
        code: 'ENCODING_INVALID',
        source: 'batch',
        line: 1,
        index: 1,
        message: 'stream message value is not base64',
      },
    });
  });

  it('keeps of an OCI audit event that concerns nothing only its time, and of one that names a user all of it', async () => {
    const oci = (name: string) =>
      JSON.parse(readFileSync(new URL(`../events/oci-audit/${name}.json`, import.meta.url), 'utf8'));
    const ingested = '2026-11-01T09:00:21.000Z';
    const cloudEvent = {
      specversion: '1.0',
      id: 'ev-get-instance',
      type: 'com.oraclecloud.ComputeApi.GetInstance',
      time: '2026-11-01T09:00:00Z',
      oracle: { ingestedtime: ingested },
      data: oci('unknown-type').data,
    };
    // A refused AddUserToGroup is `other` too, but the directory learns its user and group.
    const refused = oci('add-user-to-group.listevents');
    refused.data.response.status = '409';
    const batch = JSON.stringify([oci('unknown-type'), cloudEvent, refused]);
    const items = await decodeBatch(batch, 'batch');
    // Its tenancy too: the function's delivery-gap command names it.
    const tenantId = oci('unknown-type').data.identity.tenantId;
    expect(items.slice(0, 2)).toEqual([
      { type: 'ignored', ts: Date.parse(oci('unknown-type').eventTime), tenantId },
      { type: 'ignored', ts: Date.parse('2026-11-01T09:00:00Z'), ingestedTime: ingested, tenantId },
    ]);
    expect(items[2]).toMatchObject({
      type: 'event',
      event: { kind: 'other', status: '409', user: {}, group: {} },
    });
    // `normalize` shows how each record is read: every one is an event.
    const all = await decodeBatch(batch, 'batch', { keepIrrelevant: true });
    expect(all.map((i) => (i.type === 'event' ? i.event.kind : i.type))).toEqual(['other', 'other', 'other']);
    const { events, counts } = await read(write('oci-export.json', batch));
    expect(events).toHaveLength(1);
    expect(counts).toEqual({ records: 3, items: 3, events: 1, ignored: 2, dead: 0 });
  });

  it('dead-letters raw MySQL events as NO_DB_SYSTEM without a resolver', async () => {
    const items = await decodeBatch(sampleText('one-line-array.json'), 'batch');
    expect(items.map((i) => (i.type === 'dead' ? i.dead.code : i.type))).toEqual([
      'NO_DB_SYSTEM',
      'NO_DB_SYSTEM',
      'NO_DB_SYSTEM',
    ]);
  });
});

describeSharedFixture('mysql-audit/guardium-connector-sample.log', (path) => {
  it('reads all 6 captured events with their kinds and statuses', async () => {
    const { events, dead } = await read(path);
    expect(dead).toEqual([]);
    expect(events.map((e) => [e.kind, e.source === 'mysql' ? e.status : -1])).toEqual([
      ['connect', 0],
      ['connect', 1045],
      ['query', 0],
      ['query', 1046],
      ['table_access', 0],
      ['query', 0],
    ]);
  });

  it('unescapes \\/ in queries and keeps an empty account host', async () => {
    const { events } = await read(path);
    const [connect, failed, changeDb] = events;
    expect(connect).toMatchObject({
      account: { user: 'guardium_qa', host: '' },
      attributes: { _client_name: 'MySQL Connector/J' },
      connectionType: 'tcp/ip',
      db: 'guardium_qa',
    });
    expect(failed).toMatchObject({ connectionType: 'socket', account: { host: 'localhost' }, status: 1045 });
    expect(changeDb).toMatchObject({
      sql: {
        text: '/* ApplicationName=DBeaver 7.1.4 - SQLEditor <Script.sql> */ use guardium_qa',
        sqlCommand: 'change_db',
      },
    });
    expect(events[4]).toMatchObject({ table: { db: 'guardium_qa', table: 'pet', op: 'read' } });
    // The table access's statement is on the general record that follows it.
    expect(events[4]).not.toHaveProperty('sql');
    expect(events[5]?.source === 'mysql' && events[5].sql?.text).toContain('select * from pet\nLIMIT 0, 200');
  });
});
