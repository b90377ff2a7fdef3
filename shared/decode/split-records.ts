// Byte stream -> top-level JSON values, for every MySQL audit file shape:
// one array with or without its closing `]`, one event per line with trailing commas, bare `[` / `]`
// lines, one-line arrays, pretty-printed events, arrays ending in `null`, JSONL, CRLF, a BOM.
//
// Elements of a top-level array are emitted one by one (the outer array is transparent); other
// top-level values are emitted whole. A broken record becomes one dead letter and reading goes on:
// after a record whose strings or brackets no longer make sense (curly quotes, a cut line), the
// lines that follow are skipped up to the next record start, a line opening with `{`, `[` or `]`
// indented no deeper than the broken record's first line, so that its remains are not reported
// again line by line.
// Memory stays bounded: lines are cut into pieces of at most 1 MiB, and a record over the size
// limit is scanned to its end without being kept; unless it is an envelope of OCI audit events (an
// export), whose events are then read one by one as records (shared/decode/envelope-stream.ts).
//
// Speed: the whole lines of a chunk are decoded as one text and cut there; a line that is one
// complete object (the common case) is handed to JSON.parse as is; the character scanner runs only
// for other lines.
import { isUtf8 } from 'node:buffer';
import type { DeadLetter, DeadLetterCode, Outcome, RecordLocation } from '../../schemas/dead-letter.js';
import { AuditError } from '../errors.js';
import { EnvelopeStream } from './envelope-stream.js';

export type SplitRecord =
  | { ok: true; value: unknown; line: number; index?: number }
  | { ok: false; dead: DeadLetter };

export type SplitOptions = {
  /** Largest record kept, in bytes (counted as UTF-16 code units: equal for ASCII). Default 4 MiB. */
  maxRecordBytes?: number;
};

const DEFAULT_MAX_RECORD_BYTES = 4 * 1024 * 1024;
const MAX_PIECE_BYTES = 1024 * 1024;

const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const QUOTE = 34;
const COMMA = 44;
const LBRACKET = 91;
const BACKSLASH = 92;
const RBRACKET = 93;
const LBRACE = 123;
const RBRACE = 125;
const BOM = 0xfeff;

/** Splits a byte stream into top-level JSON values; never throws on bad data. */
export async function* splitRecords(
  chunks: AsyncIterable<Buffer | string>,
  source: string,
  opts: SplitOptions = {},
): AsyncGenerator<SplitRecord> {
  for await (const records of splitRecordBatches(chunks, source, opts)) yield* records;
}

/** As splitRecords, one array per input chunk: no per-record await on hot paths. */
export async function* splitRecordBatches(
  chunks: AsyncIterable<Buffer | string>,
  source: string,
  opts: SplitOptions = {},
): AsyncGenerator<SplitRecord[]> {
  const max = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new AuditError('USAGE', 'maxRecordBytes must be a positive integer', {
      details: { maxRecordBytes: max },
    });
  }
  const scanner = new RecordScanner(source, max);
  const lines = new LineReader(Math.min(max, MAX_PIECE_BYTES), scanner);
  for await (const chunk of chunks) {
    lines.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    const records = scanner.take();
    if (records.length > 0) yield records;
  }
  lines.end();
  scanner.end();
  const rest = scanner.take();
  if (rest.length > 0) yield rest;
}

/** Parses one JSON text that arrived whole (e.g. a stream message value), with the same safety checks. */
export function parseJsonRecord(text: string, loc: RecordLocation): Outcome<unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, dead: deadLetter('JSON_INVALID', loc, 'record is not valid JSON') };
  }
  if (hasUnsafeKey(text, value)) {
    return { ok: false, dead: deadLetter('UNSAFE_KEY', loc, UNSAFE_KEY_MESSAGE) };
  }
  return { ok: true, value };
}

/** Without `proto` or a `\u` escape in a text, no key in it can spell `__proto__` or `prototype`. */
function mayHoldUnsafeKey(text: string): boolean {
  return text.includes('proto') || text.includes('\\u');
}

const UNSAFE_KEY_MESSAGE = 'record has a prototype-polluting key (__proto__ or constructor.prototype)';

/**
 * True when some object in `value` (parsed from `text`, when known) has an own `__proto__` key, or
 * a `constructor` with a `prototype`. Without `proto` or a `\u` escape in the text, no key can
 * spell either: the walk is skipped.
 */
function hasUnsafeKey(text: string | undefined, value: unknown): boolean {
  if (text !== undefined && !mayHoldUnsafeKey(text)) return false;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const item of v) if (typeof item === 'object' && item !== null) pending.push(item);
      continue;
    }
    const obj = v as Record<string, unknown>;
    if (Object.hasOwn(obj, '__proto__')) return true;
    const ctor = Object.hasOwn(obj, 'constructor') ? obj.constructor : undefined;
    if (typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) return true;
    for (const key in obj) {
      const item = obj[key];
      if (typeof item === 'object' && item !== null) pending.push(item);
    }
  }
  return false;
}

/** A dead letter at `loc` (`path`: the field at fault); `message` must name fields only, never values. */
export function deadLetter(
  code: DeadLetterCode,
  loc: RecordLocation,
  message: string,
  path?: (string | number)[],
): DeadLetter {
  const dead: DeadLetter = { code, source: loc.source, message };
  if (loc.line !== undefined) dead.line = loc.line;
  if (loc.index !== undefined) dead.index = loc.index;
  if (path !== undefined) dead.path = path;
  return dead;
}

function isSpace(c: number): boolean {
  return c === SPACE || c === TAB || c === CR || c === LF;
}

// Characters of a bare JSON token: numbers, true, false, null.
function isTokenChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 45 || c === 43 || c === 46
  );
}

/**
 * Cuts byte chunks into lines, and lines longer than the piece size into pieces at UTF-8 boundaries.
 * A chunk may be reused once `push` returns: what waits for the next chunk is copied.
 */
class LineReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private line = 1;
  /** The current line already went out in pieces. */
  private continued = false;

  constructor(
    private readonly pieceBytes: number,
    private readonly scanner: RecordScanner,
  ) {}

  push(chunk: Buffer): void {
    const last = chunk.lastIndexOf(LF);
    if (last === -1) {
      this.hold(chunk);
      return;
    }
    let pos = 0;
    // The line held from the last chunks (a line sent in pieces holds its last) ends at the first LF.
    if (this.pendingBytes > 0) {
      const nl = chunk.indexOf(LF);
      const bytes = Buffer.concat([...this.pending, chunk.subarray(0, nl)]);
      this.pending = [];
      this.pendingBytes = 0;
      this.sendLine(bytes);
      pos = nl + 1;
    }
    if (pos <= last) this.sendLines(chunk, pos, last);
    if (last + 1 < chunk.length) this.hold(chunk.subarray(last + 1));
  }

  /**
   * The whole lines of `chunk` from `from` to `to` (an LF). They are decoded at once and cut as
   * text (a buffer and a decoded string per line made decoding 10% slower), unless they hold
   * invalid UTF-8 or one of them may need cutting into pieces: then line by line, as bytes.
   */
  private sendLines(chunk: Buffer, from: number, to: number): void {
    const text = to - from <= this.pieceBytes ? chunk.toString('utf8', from, to) : undefined;
    if (text === undefined || (text.includes('\uFFFD') && !isUtf8(chunk.subarray(from, to)))) {
      for (let pos = from; pos <= to; ) {
        const nl = chunk.indexOf(LF, pos);
        this.sendLine(chunk.subarray(pos, nl));
        pos = nl + 1;
      }
      return;
    }
    // One search of the whole text for what an unsafe key needs (see hasUnsafeKey), where each
    // record on a line of its own searched its line.
    this.scanner.screened = !mayHoldUnsafeKey(text);
    for (let start = 0; ; ) {
      const nl = text.indexOf('\n', start);
      this.scanner.feed(text.slice(start, nl === -1 ? text.length : nl), this.line, true, true, false);
      this.line++;
      if (nl === -1) break;
      start = nl + 1;
    }
    this.scanner.screened = false;
  }

  end(): void {
    if (this.pendingBytes > 0 || this.continued) this.sendLine(Buffer.concat(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
  }

  private hold(bytes: Buffer): void {
    this.pending.push(Buffer.from(bytes));
    this.pendingBytes += bytes.length;
    if (this.pendingBytes <= this.pieceBytes) return;
    const rest = this.sendPieces(Buffer.concat(this.pending));
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
  }

  private sendLine(bytes: Buffer): void {
    this.send(this.sendPieces(bytes), true);
    this.line++;
    this.continued = false;
  }

  /** Sends full pieces from the front of `bytes` and returns the rest (at most one piece). */
  private sendPieces(bytes: Buffer): Buffer {
    let rest = bytes;
    while (rest.length > this.pieceBytes) {
      const cut = utf8Boundary(rest, this.pieceBytes);
      this.send(rest.subarray(0, cut), false);
      rest = rest.subarray(cut);
    }
    return rest;
  }

  private send(bytes: Buffer, end: boolean): void {
    const text = bytes.toString('utf8');
    // Decoding puts U+FFFD for every invalid sequence: text without one needs no second look at
    // its bytes (most text is ASCII, where the search is immediate).
    const bad = text.includes('\uFFFD') && !isUtf8(bytes);
    this.scanner.feed(text, this.line, !this.continued, end, bad);
    this.continued = !end;
  }
}

/** A cut position at or below `limit` that does not split a UTF-8 sequence. */
function utf8Boundary(bytes: Buffer, limit: number): number {
  for (let p = limit; p > 0 && p > limit - 4; p--) {
    if (((bytes[p] ?? 0) & 0xc0) !== 0x80) return p;
  }
  return limit;
}

type Mode = 'between' | 'value' | 'token';

/** Finds top-level values in text pieces (see the file comment). */
class RecordScanner {
  private out: SplitRecord[] = [];
  /** Inside a top-level array, whose elements are the records. */
  private inArray = false;
  private nextIndex = 0;
  private mode: Mode = 'between';
  /** Open brackets of the current value (`{` or `[` char codes). */
  private readonly stack: number[] = [];
  private inString = false;
  private escaped = false;
  private parts: string[] = [];
  private size = 0;
  private tooLarge = false;
  /** The open value is an envelope over the size limit, whose events are read as it goes. */
  private envelope: EnvelopeStream | undefined;
  private badText = false;
  private startLine = 0;
  private index: number | undefined;
  /** Last non-space character of the current value's text so far. */
  private lastSig = 0;
  /** The rest of the current line is garbage already reported. */
  private skipLine = false;
  /** Indentation of the current line, and of the line the open value started on. */
  private lineIndent = 0;
  private openIndent = 0;
  /** After a structurally broken record: skip lines until a record start indented at most this. */
  private resyncIndent: number | undefined;
  /**
   * Set while the lines fed come from a text in which no key can spell an unsafe one: a record
   * on one of those lines needs no check of its own. A record over several lines may have begun
   * before that text, and is checked.
   */
  screened = false;

  constructor(
    private readonly source: string,
    private readonly max: number,
  ) {}

  take(): SplitRecord[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  feed(text: string, line: number, start: boolean, end: boolean, bad: boolean): void {
    let from = 0;
    if (start) {
      this.skipLine = false;
      if (line === 1 && text.charCodeAt(0) === BOM) from = 1;
      let j = from;
      while (j < text.length && isSpace(text.charCodeAt(j))) j++;
      this.lineIndent = j - from;
      if (this.resyncIndent !== undefined) {
        const c = text.charCodeAt(j);
        if ((c === LBRACE || c === LBRACKET || c === RBRACKET) && this.lineIndent <= this.resyncIndent) {
          this.resyncIndent = undefined;
        } else {
          this.skipLine = true; // the rest of the broken record, already reported
          return;
        }
      }
      if (this.mode === 'value' && this.startsNewRecord(text, from)) {
        this.fail('JSON_INVALID', 'record truncated: the next record starts before it closed');
      }
      if (end && !bad && this.mode === 'between' && this.fastPath(text, from, line)) return;
    }
    if (bad && this.mode !== 'between') this.badText = true;
    this.scan(text, from, line, end, bad);
  }

  end(): void {
    if (this.mode === 'value') this.fail('JSON_INVALID', 'record truncated at end of input');
    else if (this.mode === 'token') this.finishToken();
  }

  /** A whole line that is one object, optionally followed by a comma. */
  private fastPath(text: string, from: number, line: number): boolean {
    let s = from;
    let e = text.length;
    while (s < e && isSpace(text.charCodeAt(s))) s++;
    if (text.charCodeAt(s) !== LBRACE) return false;
    while (e > s && isSpace(text.charCodeAt(e - 1))) e--;
    if (text.charCodeAt(e - 1) === COMMA) e--;
    if (text.charCodeAt(e - 1) !== RBRACE) return false;
    const body = s === 0 && e === text.length ? text : text.slice(s, e);
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      return false; // several objects on one line, or broken: the scanner decides
    }
    this.emit(value, body, line, this.inArray ? this.nextIndex++ : undefined, this.screened);
    return true;
  }

  /**
   * True when a line opening with `{` cannot continue the open value: it is indented no deeper
   * than the value's first line, and the value is not an array expecting an element. Audit JSON
   * never starts a nested object on its own line; pretty-printed exports do so only for array
   * elements, and indent what they nest.
   */
  private startsNewRecord(text: string, from: number): boolean {
    const j = from + this.lineIndent;
    if (text.charCodeAt(j) !== LBRACE || this.lineIndent > this.openIndent) return false;
    const inArray = this.stack[this.stack.length - 1] === LBRACKET;
    return !(inArray && (this.lastSig === COMMA || this.lastSig === LBRACKET));
  }

  private scan(text: string, from: number, line: number, end: boolean, bad: boolean): void {
    const n = text.length;
    let i = from;
    let seg = from; // where the open value's text starts in this piece
    while (i < n && !this.skipLine) {
      if (this.mode === 'between') {
        const c = text.charCodeAt(i);
        if (isSpace(c) || c === COMMA) {
          i++;
          continue;
        }
        if (c === LBRACKET && !this.inArray) {
          this.inArray = true;
          this.nextIndex = 0;
          i++;
          continue;
        }
        if (c === RBRACKET) {
          this.inArray = false; // a stray `]` (array opened before a rotation) is ignored too
          i++;
          continue;
        }
        if (c === LBRACE || c === LBRACKET || c === QUOTE) this.open('value', line, bad);
        else if (isTokenChar(c)) this.open('token', line, bad);
        else {
          this.push(
            deadLetter(
              bad ? 'ENCODING_INVALID' : 'JSON_INVALID',
              { source: this.source, line },
              bad ? 'text at top level is neither valid UTF-8 nor JSON' : 'text at top level is not JSON',
            ),
          );
          this.skipLine = true;
          break;
        }
        seg = i;
      }
      i = this.mode === 'value' ? this.scanValue(text, i, seg) : this.scanToken(text, i, seg);
    }
    if (this.mode === 'between') return;
    this.append(text, seg, n);
    if (this.mode === 'value') {
      this.lastSig = lastNonSpace(text, this.lastSig);
      if (end && this.inString) {
        this.fail('JSON_INVALID', 'record truncated: unterminated string at end of line');
        this.resyncIndent = this.openIndent;
      } else if (end) this.append('\n', 0, 1);
    } else if (end) {
      this.finishToken();
    }
  }

  /** Scans the open value from `i`; returns where scanning stopped. Completes or fails the value. */
  private scanValue(text: string, i: number, seg: number): number {
    const n = text.length;
    const stack = this.stack;
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        const q = closingQuote(text, i);
        if (q === -1) {
          this.escaped = backslashRun(text, i, n) % 2 === 1;
          return n;
        }
        this.inString = false;
        i = q + 1;
        if (stack.length === 0) return this.complete(text, seg, i); // a top-level string
        continue;
      }
      const c = text.charCodeAt(i);
      if (c === QUOTE) this.inString = true;
      else if (c === LBRACE || c === LBRACKET) stack.push(c);
      else if (c === RBRACE || c === RBRACKET) {
        if (stack.pop() !== (c === RBRACE ? LBRACE : LBRACKET)) {
          this.fail('JSON_INVALID', 'record has unbalanced brackets');
          this.resyncIndent = this.openIndent;
          if (c === RBRACKET) return i; // read again: it may close the outer array
          this.skipLine = true; // the rest of the line belongs to the broken record
          return n;
        }
        if (stack.length === 0) return this.complete(text, seg, i + 1);
      }
      i++;
    }
    return n;
  }

  private scanToken(text: string, i: number, seg: number): number {
    const n = text.length;
    while (i < n && isTokenChar(text.charCodeAt(i))) i++;
    if (i < n) {
      this.append(text, seg, i);
      this.finishToken();
    }
    return i;
  }

  private open(mode: Mode, line: number, bad: boolean): void {
    this.mode = mode;
    this.startLine = line;
    this.openIndent = this.lineIndent;
    this.index = this.inArray ? this.nextIndex++ : undefined;
    this.parts = [];
    this.size = 0;
    this.tooLarge = false;
    this.badText = bad;
    this.stack.length = 0;
    this.inString = false;
    this.escaped = false;
    this.lastSig = 0;
  }

  private append(text: string, from: number, to: number): void {
    if (this.tooLarge || to <= from) return;
    const piece = from === 0 && to === text.length ? text : text.slice(from, to);
    if (this.envelope !== undefined) {
      // Text that is not UTF-8 ends the reading: the envelope's rest is reported, not read.
      if (!this.badText) this.envelope.write(piece);
      return;
    }
    this.size += to - from;
    this.parts.push(piece);
    if (this.size <= this.max) return;
    // Too large to hold: an export's envelope (a top-level object) is read event by event.
    const line = this.startLine;
    this.envelope =
      this.index === undefined
        ? EnvelopeStream.open(
            this.parts,
            (value, index) => this.emit(value, undefined, line, index),
            this.max,
          )
        : undefined;
    this.tooLarge = this.envelope === undefined;
    this.parts = [];
  }

  private complete(text: string, seg: number, to: number): number {
    this.append(text, seg, to);
    const envelope = this.envelope?.end();
    if (this.tooLarge) this.fail('TOO_LARGE', `record exceeds ${this.max} bytes`);
    else if (this.badText) this.fail('ENCODING_INVALID', 'record is not valid UTF-8');
    else if (envelope !== undefined) this.fail(envelope.code, envelope.message);
    else if (this.envelope !== undefined) this.reset();
    else this.parseOpen('record is not valid JSON');
    return to;
  }

  private finishToken(): void {
    if (this.tooLarge) this.fail('TOO_LARGE', `record exceeds ${this.max} bytes`);
    else if (!this.parseOpen('text at top level is not JSON')) this.skipLine = true;
  }

  /** Parses and emits the open value, or dead-letters it with `notJson`; false when it is not JSON. */
  private parseOpen(notJson: string): boolean {
    const json = this.parts.join('');
    const index = this.index;
    this.reset();
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      this.push(deadLetter('JSON_INVALID', this.locOf(index), notJson));
      return false;
    }
    this.emit(value, json, this.startLine, index);
    return true;
  }

  private emit(
    value: unknown,
    text: string | undefined,
    line: number,
    index: number | undefined,
    screened = false,
  ): void {
    if (value === null) return; // `audit_log_read()` ends its array with null
    if (!screened && hasUnsafeKey(text, value)) {
      this.push(deadLetter('UNSAFE_KEY', this.locAt(line, index), UNSAFE_KEY_MESSAGE));
      return;
    }
    this.out.push(index === undefined ? { ok: true, value, line } : { ok: true, value, line, index });
  }

  /** Dead-letters the open value and returns to top level. */
  private fail(code: DeadLetterCode, message: string): void {
    const loc = this.locOf(this.index);
    this.reset();
    this.push(deadLetter(code, loc, message));
  }

  private reset(): void {
    this.mode = 'between';
    this.envelope = undefined;
    this.parts = [];
    this.size = 0;
    this.stack.length = 0;
    this.inString = false;
    this.escaped = false;
  }

  private locOf(index: number | undefined): RecordLocation {
    return this.locAt(this.startLine, index);
  }

  private locAt(line: number, index: number | undefined): RecordLocation {
    return index === undefined ? { source: this.source, line } : { source: this.source, line, index };
  }

  private push(dead: DeadLetter): void {
    this.out.push({ ok: false, dead });
  }
}

/** Index of the `"` that closes a string whose text continues at `from`, or -1. */
function closingQuote(text: string, from: number): number {
  let q = text.indexOf('"', from);
  while (q !== -1 && backslashRun(text, from, q) % 2 === 1) q = text.indexOf('"', q + 1);
  return q;
}

/** Number of backslashes right before `to` (not looking before `from`). */
function backslashRun(text: string, from: number, to: number): number {
  let k = to - 1;
  while (k >= from && text.charCodeAt(k) === BACKSLASH) k--;
  return to - 1 - k;
}

function lastNonSpace(text: string, fallback: number): number {
  for (let k = text.length - 1; k >= 0; k--) {
    const c = text.charCodeAt(k);
    if (!isSpace(c)) return c;
  }
  return fallback;
}
