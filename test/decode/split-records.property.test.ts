import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEAD_LETTER_CODES } from '../../schemas/dead-letter.js';
import { type SplitOptions, type SplitRecord, splitRecords } from '../../shared/decode/split-records.js';
import { runs } from '../helpers/property.js';

async function split(chunks: readonly (string | Buffer)[], opts?: SplitOptions): Promise<SplitRecord[]> {
  async function* source(): AsyncGenerator<string | Buffer> {
    yield* chunks;
  }
  const out: SplitRecord[] = [];
  for await (const record of splitRecords(source(), 'prop', opts)) out.push(record);
  return out;
}

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function cut(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    pieces.push(bytes.subarray(from, p));
    from = p;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

function wellFormed(record: SplitRecord): boolean {
  if (record.ok) return record.value !== undefined && record.value !== null && record.line >= 1;
  return (
    DEAD_LETTER_CODES.includes(record.dead.code) &&
    record.dead.source === 'prop' &&
    (record.dead.line ?? 1) >= 1
  );
}

// JSON-safe objects without prototype-polluting keys (those are dead letters by design).
const safeKey = fc.string().filter((k) => k !== '__proto__' && k !== 'constructor');
// Nested objects too: a `__proto__` key at any depth is a dead letter.
const safeValue = fc
  .jsonValue({ maxDepth: 3 })
  .filter((v) => !/"(__proto__|constructor)":/.test(JSON.stringify(v)));
const jsonObject = fc.dictionary(safeKey, safeValue, { maxKeys: 6 });
// A garbage line: no brackets or quotes, so it cannot open a value that swallows the next line.
const garbageLine = fc
  .string({ unit: 'grapheme', maxLength: 40 })
  .map((s) => s.replace(/[[\]{}"\r\n]/g, ' '));
// Objects without arrays, like audit events: a cut anywhere in them is always detected.
const flatObject = fc.dictionary(
  safeKey,
  fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.dictionary(safeKey, fc.string(), { maxKeys: 3 })),
  { minKeys: 1, maxKeys: 6 },
);

type Entry =
  | { kind: 'record'; value: object; shape: 'compact' | 'comma' | 'pretty' }
  | { kind: 'garbage'; text: string };

const entry: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({
    kind: fc.constant('record' as const),
    value: jsonObject,
    shape: fc.constantFrom('compact' as const, 'comma' as const, 'pretty' as const),
  }),
  fc.record({ kind: fc.constant('garbage' as const), text: garbageLine }),
);

function render(e: Entry): string {
  if (e.kind === 'garbage') return e.text;
  if (e.shape === 'pretty') return `${JSON.stringify(e.value, null, 2)},`;
  return e.shape === 'comma' ? `${JSON.stringify(e.value)},` : JSON.stringify(e.value);
}

describe('splitRecords: properties', () => {
  it('never throws on arbitrary bytes in arbitrary chunks, and yields only records or dead letters', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.constantFrom(undefined, 16, 64),
        async (bytes, offsets, max) => {
          const out = await split(
            cut(Buffer.from(bytes), offsets),
            max === undefined ? {} : { maxRecordBytes: max },
          );
          expect(out.every(wellFormed)).toBe(true);
        },
      ),
      runs(300),
    );
  });

  it('reads the same records whether a chunk holds many lines, one byte, or any cut', async () => {
    // Whole lines of a chunk are decoded as one text; lines held across chunks, as bytes.
    const part = fc.oneof(
      fc.constantFrom(
        '{"a":1}',
        '{"b":"é€😀"}',
        '[{"c":2},',
        '{"d":3}]',
        '  {"e":\n',
        '4}',
        'null',
        '{"f":"x',
      ),
      fc.constantFrom('\n', '\r\n', ',\n', '[\n', ']\n', '\uFEFF', ' ', '"', '\\'),
      fc.string({ maxLength: 8 }),
    );
    const bytes = fc
      .array(
        fc.oneof(
          part.map((t) => Buffer.from(t, 'utf8')),
          fc.uint8Array({ maxLength: 3 }).map(Buffer.from),
        ),
        {
          maxLength: 30,
        },
      )
      .map((parts) => Buffer.concat(parts));
    await fc.assert(
      fc.asyncProperty(
        bytes,
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.constantFrom(undefined, 8, 24),
        async (input, offsets, max) => {
          const opts = max === undefined ? {} : { maxRecordBytes: max };
          const whole = await split([input], opts);
          const bytewise = await split(
            Array.from(input, (_, i) => input.subarray(i, i + 1)),
            opts,
          );
          expect(bytewise).toEqual(whole);
          expect(await split(cut(input, offsets), opts)).toEqual(whole);
        },
      ),
      runs(400),
    );
  });

  it('never throws on arbitrary JSON-ish text', async () => {
    const jsonish = fc.array(
      fc.oneof(
        fc.constantFrom('{', '}', '[', ']', '"', '\\', ',', ':', '\n', '\r\n', 'null', ' ', '\uFEFF'),
        fc.string(),
      ),
      { maxLength: 60 },
    );
    await fc.assert(
      fc.asyncProperty(jsonish, fc.array(fc.nat(), { maxLength: 4 }), async (parts, offsets) => {
        const out = await split(cut(Buffer.from(parts.join('')), offsets), { maxRecordBytes: 32 });
        expect(out.every(wellFormed)).toBe(true);
      }),
      runs(300),
    );
  });

  it('reads every well-formed object interleaved with garbage lines, in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entry, { maxLength: 25 }),
        fc.constantFrom('none', 'open', 'closed'),
        fc.constantFrom('\n', '\r\n'),
        fc.array(fc.nat(), { maxLength: 5 }),
        async (entries, wrap, eol, offsets) => {
          const body = entries.map(render);
          const text = [...(wrap === 'none' ? [] : ['[']), ...body, ...(wrap === 'closed' ? [']'] : [])].join(
            eol,
          );
          const out = await split(cut(Buffer.from(text), offsets));
          const objects = out.flatMap((r) =>
            r.ok && typeof r.value === 'object' && !Array.isArray(r.value) ? [r.value] : [],
          );
          const inserted = entries.flatMap((e) =>
            e.kind === 'record' ? [JSON.parse(JSON.stringify(e.value))] : [],
          );
          expect(objects).toEqual(inserted);
          expect(out.every(wellFormed)).toBe(true);
        },
      ),
      runs(300),
    );
  });

  it('recovers the next record after a record cut at any point', async () => {
    await fc.assert(
      fc.asyncProperty(flatObject, fc.nat(), flatObject, async (first, at, next) => {
        const text = JSON.stringify(first);
        const truncated = text.slice(0, 1 + (at % (text.length - 1)));
        const out = await split([`[\n${truncated},\n${JSON.stringify(next)},\n`]);
        expect(out.filter((r) => r.ok).map((r) => (r.ok ? r.value : undefined))).toEqual([
          JSON.parse(JSON.stringify(next)),
        ]);
        expect(out.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.dead.code))).toEqual(['JSON_INVALID']);
      }),
      runs(300),
    );
  });

  it('gives the same output whatever the chunk boundaries, with small line pieces', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entry, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (entries, offsets) => {
          const bytes = Buffer.from(`[\n${entries.map(render).join('\n')}`);
          const opts = { maxRecordBytes: 48 };
          expect(await split(cut(bytes, offsets), opts)).toEqual(await split([bytes], opts));
        },
      ),
      runs(200),
    );
  });

  it('reads an export over the size limit as its events, whatever the chunks and the printing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(jsonObject, { minLength: 1, maxLength: 20 }),
        fc.constantFrom('data', 'items', 'results', 'search'),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (events, shape, pretty, offsets) => {
          const envelope =
            shape === 'search' ? { data: { results: events, summary: {} } } : { [shape]: events };
          const text = JSON.stringify(envelope, null, pretty ? 2 : undefined);
          // The limit is below the envelope's size: it is read event by event.
          const opts = { maxRecordBytes: Math.max(1, Math.floor(text.length / 2)) };
          const out = await split(cut(Buffer.from(text), offsets), opts);
          const read = JSON.parse(text) as Record<string, unknown>;
          const expected = (
            shape === 'search' ? (read.data as { results: unknown[] }).results : read[shape]
          ) as unknown[];
          expect(out.filter((r) => !r.ok)).toEqual(
            // An event larger than the limit may end the reading (TOO_LARGE), never anything else.
            out.some((r) => !r.ok)
              ? [expect.objectContaining({ ok: false, dead: expect.objectContaining({ code: 'TOO_LARGE' }) })]
              : [],
          );
          const values = out.flatMap((r) => (r.ok ? [r.value] : []));
          expect(values).toEqual(expected.slice(0, values.length));
          if (out.every((r) => r.ok)) expect(values).toEqual(expected);
        },
      ),
      runs(200),
    );
  });
});
