import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type SplitOptions, type SplitRecord, splitRecords } from '../../shared/decode/split-records.js';
import { AuditError } from '../../shared/errors.js';

function sample(name: string): string {
  return readFileSync(new URL(`../events/mysql-audit/${name}`, import.meta.url), 'utf8');
}

async function* chunksOf(chunks: readonly (string | Buffer)[]): AsyncGenerator<string | Buffer> {
  yield* chunks;
}

async function split(
  input: string | Buffer | readonly (string | Buffer)[],
  opts?: SplitOptions,
): Promise<SplitRecord[]> {
  const chunks = typeof input === 'string' || Buffer.isBuffer(input) ? [input] : input;
  const out: SplitRecord[] = [];
  for await (const record of splitRecords(chunksOf(chunks), 'test', opts)) out.push(record);
  return out;
}

const values = (records: SplitRecord[]) => records.flatMap((r) => (r.ok ? [r.value] : []));
const lines = (records: SplitRecord[]) => records.flatMap((r) => (r.ok ? [r.line] : []));
const dead = (records: SplitRecord[]) => records.flatMap((r) => (r.ok ? [] : [r.dead]));

/** A compact audit-like event with a distinguishing id. */
const event = (id: number) => ({ timestamp: '2026-11-01 10:00:00', id, class: 'general', event: 'status' });
const line = (id: number) => JSON.stringify(event(id));

describe('splitRecords: file shapes', () => {
  it('reads JSONL (one object per line, no array)', async () => {
    const records = await split(`${line(1)}\n${line(2)}\n${line(3)}\n`);
    expect(values(records)).toEqual([event(1), event(2), event(3)]);
    expect(lines(records)).toEqual([1, 2, 3]);
    expect(records.every((r) => r.ok && r.index === undefined)).toBe(true);
  });

  it('reads an open array with trailing commas and no closing bracket', async () => {
    const records = await split(sample('line-per-event.log'));
    expect(dead(records)).toEqual([]);
    expect(values(records).map((v) => (v as { id: number }).id)).toEqual([0, 1, 0, 0]);
    expect(lines(records)).toEqual([2, 3, 4, 5]);
    expect(records.map((r) => (r.ok ? r.index : -1))).toEqual([0, 1, 2, 3]);
  });

  it('reads bare bracket lines with and without commas, and a closing bracket', async () => {
    const records = await split(`[\n${line(1)},\n${line(2)}\n,\n${line(3)}\n]\n`);
    expect(values(records)).toEqual([event(1), event(2), event(3)]);
    expect(dead(records)).toEqual([]);
  });

  it('reads a one-line array whose strings hold brackets and escaped quotes', async () => {
    const records = await split(sample('one-line-array.json'));
    expect(dead(records)).toEqual([]);
    expect(values(records)).toHaveLength(3);
    expect(lines(records)).toEqual([1, 1, 1]);
    expect(records.map((r) => (r.ok ? r.index : -1))).toEqual([0, 1, 2]);
    expect(JSON.stringify(values(records)[1])).toContain('SELECT \\"a]}{[\\" AS tricky');
  });

  it('reads pretty-printed events and reports the line each one starts on', async () => {
    const text = sample('all-classes.pretty.json');
    const starts = text.split('\n').flatMap((l, i) => (l === '  {' ? [i + 1] : []));
    const records = await split(text);
    expect(dead(records)).toEqual([]);
    expect(values(records)).toEqual(JSON.parse(text));
    expect(lines(records)).toEqual(starts);
  });

  it('skips the null that ends an audit_log_read() array', async () => {
    const records = await split(sample('audit-log-read.json'));
    expect(dead(records)).toEqual([]);
    expect(values(records)).toHaveLength(2);
    expect(records.map((r) => (r.ok ? r.index : -1))).toEqual([0, 1]);
  });

  it('reads CRLF line endings and a UTF-8 byte order mark', async () => {
    const text = `\uFEFF[\r\n${line(1)},\r\n{\r\n  "id": 2,\r\n  "note": "caf\u00e9"\r\n},\r\n${line(3)}\r\n]\r\n`;
    const records = await split(Buffer.from(text, 'utf8'));
    expect(dead(records)).toEqual([]);
    expect(values(records)).toEqual([event(1), { id: 2, note: 'caf\u00e9' }, event(3)]);
    expect(lines(records)).toEqual([2, 3, 7]);
  });

  it('reads a BOM directly before a JSONL object', async () => {
    expect(values(await split(`\uFEFF${line(1)}\n`))).toEqual([event(1)]);
  });

  it('emits a top-level object that is not an array whole', async () => {
    const body = { results: [{ data: { datetime: 1, logContent: { a: 1 } } }, { data: { datetime: 2 } }] };
    const records = await split(JSON.stringify(body, null, 2));
    expect(values(records)).toEqual([body]);
  });

  it('keeps pretty-printed envelopes whose array elements start lines with {', async () => {
    const body = { items: [{ a: { b: 1 } }, { c: [{ d: 2 }, { e: 3 }] }] };
    const records = await split(`${JSON.stringify(body, null, 2)}\n${line(9)}\n`);
    expect(values(records)).toEqual([body, event(9)]);
  });

  it('splits several objects on one line', async () => {
    expect(values(await split(`{"a":1}{"b":2} {"c":3},{"d":4}\n`))).toEqual([
      { a: 1 },
      { b: 2 },
      { c: 3 },
      { d: 4 },
    ]);
  });

  it('emits scalar array elements for the classifier to reject', async () => {
    expect(values(await split('[1, "x", true, null, -2.5e3]'))).toEqual([1, 'x', true, -2500]);
  });

  it('gives the same records whatever the chunk boundaries, inside multi-byte characters too', async () => {
    const text = `[\n${line(1)},\n{"note":"\u00e9\u{1F600}\\"\\\\","n":[1,2]},\n${sample('all-classes.pretty.json')}`;
    const bytes = Buffer.from(text, 'utf8');
    const whole = await split(bytes);
    const single = await split([...bytes].map((b) => Buffer.from([b])));
    const uneven = await split([bytes.subarray(0, 7), bytes.subarray(7, 300), bytes.subarray(300)]);
    expect(single).toEqual(whole);
    expect(uneven).toEqual(whole);
    expect(dead(whole)).toEqual([]);
  });
});

describe('splitRecords: broken records', () => {
  it('dead-letters a line cut inside a string and reads the next line', async () => {
    const records = await split(`${line(1)}\n${line(2).slice(0, 30)}\n${line(3)}\n`);
    expect(values(records)).toEqual([event(1), event(3)]);
    expect(dead(records)).toEqual([
      {
        code: 'JSON_INVALID',
        source: 'test',
        line: 2,
        message: 'record truncated: unterminated string at end of line',
      },
    ]);
  });

  it('dead-letters a record still open when the next line starts with {', async () => {
    const records = await split(`[\n${line(1)},\n{"id": 2, "login": {"user": "a"},\n${line(3)},\n`);
    expect(values(records)).toEqual([event(1), event(3)]);
    expect(dead(records)).toMatchObject([{ code: 'JSON_INVALID', line: 3, index: 1 }]);
  });

  it('dead-letters a record cut right after a key and its colon', async () => {
    const records = await split(`{"id": 2, "login":\n${line(3)}\n`);
    expect(values(records)).toEqual([event(3)]);
    expect(dead(records)).toMatchObject([{ code: 'JSON_INVALID', line: 1 }]);
  });

  it('dead-letters a record cut at the end of input', async () => {
    const records = await split(`[\n${line(1)},\n{\n  "id": 2,\n`);
    expect(values(records)).toEqual([event(1)]);
    expect(dead(records)).toMatchObject([
      { code: 'JSON_INVALID', line: 3, message: 'record truncated at end of input' },
    ]);
  });

  it('dead-letters garbage at top level once per line and goes on', async () => {
    const records = await split(`${line(1)}\nnot json: at all {"x":1}\n${line(2)}\n}\n${line(3)}\n`);
    expect(values(records)).toEqual([event(1), event(2), event(3)]);
    expect(dead(records)).toMatchObject([
      { code: 'JSON_INVALID', line: 2 },
      { code: 'JSON_INVALID', line: 4 },
    ]);
  });

  it('dead-letters an object with mismatched brackets, then honours the closing bracket', async () => {
    const records = await split(`[\n{"a":[1}\n]\n${line(1)}\n`);
    expect(values(records)).toEqual([event(1)]);
    expect(records.find((r) => r.ok)).toMatchObject({ line: 4 });
    expect(records.find((r) => r.ok && r.index !== undefined)).toBeUndefined();
    expect(dead(records)).toMatchObject([{ code: 'JSON_INVALID', line: 2, index: 0 }]);
  });

  it('dead-letters a balanced record that is not valid JSON', async () => {
    const records = await split(`{"a": 1,, "b": }\n${line(1)}\n`);
    expect(values(records)).toEqual([event(1)]);
    expect(dead(records)).toMatchObject([
      { code: 'JSON_INVALID', line: 1, message: 'record is not valid JSON' },
    ]);
  });

  it("gives one dead letter for the manual's query-statistics example with curly quotes, and reads on", async () => {
    const text = sample('manual-query-statistics.json');
    const records = await split(text);
    expect(values(records).map((v) => (v as { event: string }).event)).toEqual(['connect', 'disconnect']);
    expect(dead(records)).toEqual([
      {
        code: 'JSON_INVALID',
        source: 'test',
        line: 12,
        index: 1,
        message: 'record truncated: unterminated string at end of line',
      },
    ]);
    // The record after it keeps its place in the array and its line.
    expect(records.at(-1)).toMatchObject({ ok: true, index: 2, line: 34 });
  });

  it('skips the remains of a broken pretty-printed record, nested objects on their own lines too', async () => {
    // Curly quotes: balanced straight quotes (the record ends where it should, then fails to
    // parse), and an odd number (the string runs to the end of the line: skipped to the next record).
    const broken = (login: string) =>
      [
        '  {',
        '    "timestamp": "2026-11-01 10:00:01",',
        `    "login": ${login},`,
        '    "general_data":',
        '      {',
        '        "query": "SELECT [1]"',
        '      },',
        '    "status": 0',
        '  },',
      ].join('\n');
    const pretty = (id: number) => JSON.stringify(event(id), null, 2).replace(/^/gm, '  ');
    const records = await split(
      `[\n${pretty(1)},\n${broken('{ "user": “a", “ip": "" }')}\n${broken('{ "user": "a”, "ip": "" }')}\n${pretty(4)}\n]\n${line(5)}\n`,
    );
    expect(values(records)).toEqual([event(1), event(4), event(5)]);
    expect(dead(records)).toMatchObject([
      { code: 'JSON_INVALID', line: 8, index: 1, message: 'record is not valid JSON' },
      {
        code: 'JSON_INVALID',
        line: 17,
        index: 2,
        message: 'record truncated: unterminated string at end of line',
      },
    ]);
  });

  it('reports a broken record once when its brackets no longer match, and reads the next one', async () => {
    const records = await split(`[\n  {\n    "a": [1,\n    "b": 2 }, "c": 3\n  },\n  ${line(2)}\n]\n`);
    expect(values(records)).toEqual([event(2)]);
    expect(dead(records)).toMatchObject([
      { code: 'JSON_INVALID', line: 2, message: 'record has unbalanced brackets' },
    ]);
  });

  it('dead-letters records with invalid UTF-8 as ENCODING_INVALID', async () => {
    const bad = Buffer.concat([Buffer.from('{"user":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]);
    const garbage = Buffer.from([0xc3, 0x28, 0x0a]);
    const records = await split(
      Buffer.concat([Buffer.from(`${line(1)}\n`), bad, garbage, Buffer.from(`${line(2)}\n`)]),
    );
    expect(values(records)).toEqual([event(1), event(2)]);
    // Each says what is wrong with it (the code alone is not the message).
    expect(dead(records)).toMatchObject([
      { code: 'ENCODING_INVALID', line: 2, message: 'record is not valid UTF-8' },
      { code: 'ENCODING_INVALID', line: 3, message: 'text at top level is neither valid UTF-8 nor JSON' },
    ]);
  });

  it('reads a record holding U+FFFD itself (valid UTF-8) and dead-letters one invalid byte beside it', async () => {
    const replacement = JSON.stringify({ user: 'a\uFFFDb' });
    const both = Buffer.concat([Buffer.from('{"user":"\uFFFD'), Buffer.from([0xff]), Buffer.from('"}\n')]);
    const records = await split(Buffer.concat([Buffer.from(`${replacement}\n`), both]));
    expect(values(records)).toEqual([{ user: 'a\uFFFDb' }]);
    expect(dead(records)).toMatchObject([{ code: 'ENCODING_INVALID', line: 2 }]);
  });

  it('never puts record text into dead letter messages', async () => {
    const records = await split(`{"password":"hunter2\n{"password": hunter2}\nhunter2\n`);
    expect(dead(records)).toHaveLength(3);
    expect(JSON.stringify(dead(records))).not.toContain('hunter2');
  });
});

describe('splitRecords: size limit', () => {
  it('dead-letters a record over maxRecordBytes as TOO_LARGE and reads the rest', async () => {
    const big = JSON.stringify({ id: 2, query: 'x'.repeat(500) });
    const records = await split(`${line(1)}\n${big}\n${line(3)}\n`, { maxRecordBytes: 200 });
    expect(values(records)).toEqual([event(1), event(3)]);
    expect(dead(records)).toEqual([
      { code: 'TOO_LARGE', source: 'test', line: 2, message: 'record exceeds 200 bytes' },
    ]);
  });

  it('dead-letters a pretty-printed record over the limit at its first line', async () => {
    const big = JSON.stringify({ id: 2, args: Array.from({ length: 50 }, (_, i) => `arg-${i}`) }, null, 2);
    const records = await split(`[\n${big},\n${line(3)}\n]`, { maxRecordBytes: 300 });
    expect(values(records)).toEqual([event(3)]);
    expect(dead(records)).toMatchObject([{ code: 'TOO_LARGE', line: 2, index: 0 }]);
  });

  it('skips a 10 MB line under the default limit, streamed in chunks, and reads what follows', async () => {
    const chunk = Buffer.from('a'.repeat(64 * 1024));
    async function* stream(): AsyncGenerator<Buffer> {
      yield Buffer.from(`${line(1)}\n{"id":2,"query":"`);
      for (let i = 0; i < 160; i++) yield chunk; // 10 MiB, never held at once
      yield Buffer.from(`"}\n${line(3)}\n`);
    }
    const out: SplitRecord[] = [];
    for await (const record of splitRecords(stream(), 'big.log')) out.push(record);
    expect(values(out)).toEqual([event(1), event(3)]);
    expect(dead(out)).toEqual([
      { code: 'TOO_LARGE', source: 'big.log', line: 2, message: 'record exceeds 4194304 bytes' },
    ]);
  });

  it('reads one-line arrays longer than a line piece when each record fits', async () => {
    const records = Array.from({ length: 40 }, (_, i) => ({ id: i, query: 'q'.repeat(50) }));
    const out = await split(JSON.stringify(records), { maxRecordBytes: 128 });
    expect(dead(out)).toEqual([]);
    expect(values(out)).toEqual(records);
  });

  it('rejects a maxRecordBytes that is not a positive integer', async () => {
    await expect(split('{}', { maxRecordBytes: 0 })).rejects.toBeInstanceOf(AuditError);
    await expect(split('{}', { maxRecordBytes: 1.5 })).rejects.toMatchObject({ code: 'USAGE' });
  });
});

describe('splitRecords: exports over the size limit', () => {
  const events = Array.from({ length: 30 }, (_, i) => ({
    eventId: `e-${i}`,
    data: { note: 'n'.repeat(40) },
  }));
  const LIMIT = { maxRecordBytes: 500 };

  it.each([
    ['oci audit event list --all', { data: events }, (e: unknown) => e],
    [
      'oci logging-search search-logs',
      {
        data: {
          fields: [],
          results: events.map((e) => ({ data: { logContent: e } })),
          summary: { resultCount: 30 },
        },
      },
      (e: unknown) => ({ data: { logContent: e } }),
    ],
    ['a ListEvents page', { 'opc-next-page': 'page-2', count: 30, items: events }, (e: unknown) => e],
    ['a searchLogs response', { results: events }, (e: unknown) => e],
    ['a searchLogs response of the SDK', { searchResponse: { results: events } }, (e: unknown) => e],
  ])('reads the events of %s one by one, pretty-printed or not', async (_, envelope, wrapped) => {
    for (const text of [JSON.stringify(envelope, null, 2), JSON.stringify(envelope)]) {
      const records = await split([`${line(1)}\n`, text, `\n${line(2)}\n`], LIMIT);
      expect(dead(records)).toEqual([]);
      expect(values(records)).toEqual([event(1), ...events.map(wrapped), event(2)]);
      const inside = records.slice(1, -1);
      expect(inside.map((r) => r.ok && r.index)).toEqual(events.map((_e, i) => i));
      expect(inside.every((r) => r.ok && r.line === 2)).toBe(true);
    }
  });

  it('keeps an envelope in one line piece or many, in chunks of any size', async () => {
    const text = JSON.stringify({ data: events }, null, 2);
    const chunks = Array.from({ length: Math.ceil(text.length / 7) }, (_, i) => text.slice(i * 7, i * 7 + 7));
    expect(values(await split(chunks, LIMIT))).toEqual(events);
  });

  it('dead-letters what it cannot read, after the events before it', async () => {
    const text = JSON.stringify({ data: events });
    // Cut short: the events read are kept, the cut is reported.
    const cut = await split(text.slice(0, text.length - 300), LIMIT);
    expect(values(cut)).toEqual(events.slice(0, values(cut).length));
    expect(values(cut).length).toBeGreaterThan(20);
    expect(dead(cut)).toMatchObject([{ code: 'JSON_INVALID', line: 1, message: /^record truncated/ }]);
    // An event over the limit ends the reading of its envelope.
    const huge = { eventId: 'huge', data: { note: 'h'.repeat(5000) } };
    const tooLarge = await split(JSON.stringify({ data: [...events, huge, ...events] }), LIMIT);
    expect(values(tooLarge)).toEqual(events);
    expect(dead(tooLarge)).toEqual([
      { code: 'TOO_LARGE', source: 'test', line: 1, message: 'an event in the envelope exceeds 500 bytes' },
    ]);
    // Broken JSON inside the envelope.
    const broken = await split(text.replace('},{"eventId":"e-20"', '},,{"eventId":"e-20"'), LIMIT);
    expect(values(broken)).toEqual(events.slice(0, 20));
    expect(dead(broken)).toEqual([
      { code: 'JSON_INVALID', source: 'test', line: 1, message: 'record is not valid JSON' },
    ]);
    // Text that is not UTF-8 ends the reading: the events on the lines before it are read.
    const pretty = JSON.stringify({ data: events }, null, 2);
    const at = pretty.indexOf('"e-10"') + 3;
    const invalid = await split(
      Buffer.concat([Buffer.from(pretty.slice(0, at)), Buffer.from([0xff]), Buffer.from(pretty.slice(at))]),
      LIMIT,
    );
    expect(values(invalid)).toEqual(events.slice(0, 10));
    expect(dead(invalid)).toEqual([
      { code: 'ENCODING_INVALID', source: 'test', line: 1, message: 'record is not valid UTF-8' },
    ]);
    // An event with a prototype-polluting key is one dead letter; the others are read.
    const unsafe = await split(
      `{"data": [${JSON.stringify(events[0])}, {"__proto__": {"x": 1}, "pad": "${'p'.repeat(600)}"}, ${JSON.stringify(events[1])}]}`,
      LIMIT,
    );
    expect(values(unsafe)).toEqual([events[0], events[1]]);
    expect(dead(unsafe)).toMatchObject([{ code: 'UNSAFE_KEY', line: 1, index: 1 }]);
  });

  it('stays TOO_LARGE for an object over the limit that is no envelope, or an array element', async () => {
    for (const text of [
      JSON.stringify({ other: events }),
      JSON.stringify({ data: 'x'.repeat(600) }),
      JSON.stringify({ meta: { page: 2 }, data: events }),
      // Begins like an envelope, holds no event: a record over the limit.
      JSON.stringify({ data: { eventName: 'x', note: 'n'.repeat(600) }, id: 'e-1' }),
      JSON.stringify({ data: [], note: 'n'.repeat(600) }),
      `[${JSON.stringify({ data: events })}]`,
    ]) {
      const records = await split(text, LIMIT);
      expect(values(records)).toEqual([]);
      expect(dead(records)).toMatchObject([{ code: 'TOO_LARGE', message: 'record exceeds 500 bytes' }]);
    }
  });
});

describe('splitRecords: prototype-polluting keys', () => {
  it.each([
    ['__proto__ at top level', '{"__proto__": {"polluted": true}}'],
    ['__proto__ nested', '{"a": [{"b": {"__proto__": {"polluted": true}}}]}'],
    ['constructor.prototype', '{"constructor": {"prototype": {"polluted": true}}}'],
    ['an escaped __proto__ key', '{"\\u005f_proto__": {"polluted": true}}'],
  ])('dead-letters %s as UNSAFE_KEY', async (_name, text) => {
    const records = await split(`${text}\n[\n${JSON.stringify(JSON.parse(text), null, 2)}\n]\n${line(1)}\n`);
    expect(values(records)).toEqual([event(1)]);
    expect(dead(records).map((d) => d.code)).toEqual(['UNSAFE_KEY', 'UNSAFE_KEY']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('dead-letters a record whose unsafe key came in an earlier chunk than the lines that close it', async () => {
    // The second chunk's text holds no `proto`: its one-line records skip the check, but the
    // record it closes began before it and is checked.
    const records = await split([
      `${line(1)}\n[\n{\n  "__proto__": {\n`,
      `    "polluted": true\n  }\n}\n]\n${line(2)}\n`,
    ]);
    expect(values(records)).toEqual([event(1), event(2)]);
    expect(dead(records).map((d) => d.code)).toEqual(['UNSAFE_KEY']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('accepts keys that merely mention proto or constructor', async () => {
    const ok = { constructor: 'x', prototype: 1, proto: { __protocol: 2 }, note: '__proto__' };
    expect(values(await split(JSON.stringify(ok)))).toEqual([ok]);
  });
});
