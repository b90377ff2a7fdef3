// Exports of OCI audit events too large to hold as one record: `oci audit event list --all` writes
// `{"data": [...]}`, `oci logging-search search-logs` writes `{"data": {"results": [...]}}`,
// and the SDKs' pages are `{"items": [...]}` or `{"results": [...]}`. When such an object is over
// the record size limit (shared/decode/split-records.ts), its events are read one by one as its
// text arrives, by a streaming JSON parser, so that an export of any size is read in bounded memory.
// The envelope is recognised by its first member that opens an array or an object; its events are
// then read as any record is (classify.ts).
import { JSONParser, Tokenizer, TokenType } from '@streamparser/json';
import type { DeadLetterCode } from '../../schemas/dead-letter.js';

/** Where an envelope's events are, by the name of the member that holds them and what it opens. */
const EVENTS: Record<string, Partial<Record<'[' | '{', string>>> = {
  data: { '[': '$.data.*', '{': '$.data.results.*' },
  items: { '[': '$.items.*' },
  results: { '[': '$.results.*' },
  searchResponse: { '{': '$.searchResponse.results.*' },
};

/** How far into the text the member that holds the events is looked for. */
const SNIFF_CHARS = 64 * 1024;

export type EnvelopeProblem = { code: DeadLetterCode; message: string };

/** The events of one envelope, fed its text piece by piece. */
export class EnvelopeStream {
  private readonly parser: JSONParser;
  private problem: EnvelopeProblem | undefined;
  private events = 0;
  /** Characters written since the piece in which the last event ended. */
  private pending = 0;

  private constructor(
    path: string,
    onEvent: (value: unknown, index: number) => void,
    private readonly maxEventChars: number,
  ) {
    this.parser = new JSONParser({ paths: [path], keepStack: false });
    this.parser.onValue = ({ value, key }) => {
      this.events++;
      onEvent(value, typeof key === 'number' ? key : this.events - 1);
    };
    this.parser.onError = () => {
      this.problem ??= { code: 'JSON_INVALID', message: 'record is not valid JSON' };
    };
  }

  /**
   * The stream of the envelope whose text begins with `pieces`, fed them already; undefined when
   * they open no envelope of events (then nothing was joined or parsed past its start).
   */
  static open(
    pieces: readonly string[],
    onEvent: (value: unknown, index: number) => void,
    maxEventChars: number,
  ): EnvelopeStream | undefined {
    const path = eventsPath(start(pieces));
    if (path === undefined) return undefined;
    const stream = new EnvelopeStream(path, onEvent, maxEventChars);
    for (const piece of pieces) stream.write(piece);
    return stream;
  }

  write(text: string): void {
    if (this.problem !== undefined) return;
    const before = this.events;
    this.parser.write(text);
    // Pieces are at most 1 MiB (split-records.ts): an event is held to about the limit.
    this.pending = this.events === before ? this.pending + text.length : 0;
    if (this.pending > this.maxEventChars)
      this.problem = {
        code: 'TOO_LARGE',
        message: `an event in the envelope exceeds ${this.maxEventChars} bytes`,
      };
  }

  /**
   * Ends the envelope (its text has all been written); what was wrong with it, if anything. One
   * that held no event was a record over the limit that only began like an envelope.
   */
  end(): EnvelopeProblem | undefined {
    if (this.problem === undefined && !this.parser.isEnded) this.parser.end();
    if (this.events === 0)
      return { code: 'TOO_LARGE', message: `record exceeds ${this.maxEventChars} bytes` };
    return this.problem;
  }
}

/** The first SNIFF_CHARS of the text `pieces` make up. */
function start(pieces: readonly string[]): string {
  let text = '';
  for (const piece of pieces) {
    if (text.length >= SNIFF_CHARS) break;
    text += piece.slice(0, SNIFF_CHARS - text.length);
  }
  return text;
}

/** Tokens looked at for the envelope's member that holds its events. */
const SNIFF_TOKENS = 64;

/**
 * The JSONPath of the events in the envelope `prefix` opens (at most SNIFF_CHARS of its text): the
 * first of its members that is not a string, number, boolean or null decides (a page's
 * `opc-next-page` may come before its events).
 */
function eventsPath(prefix: string): string | undefined {
  const tokens: { token: TokenType; value: unknown }[] = [];
  const tokenizer = new Tokenizer();
  tokenizer.onToken = ({ token, value }) => {
    if (tokens.length < SNIFF_TOKENS) tokens.push({ token, value });
  };
  tokenizer.onError = () => undefined;
  tokenizer.write(prefix);
  if (tokens[0]?.token !== TokenType.LEFT_BRACE) return undefined;
  for (let i = 1; i + 3 < tokens.length; i += 4) {
    const [name, colon, value, next] = tokens.slice(i, i + 4);
    if (name?.token !== TokenType.STRING || colon?.token !== TokenType.COLON) return undefined;
    const opens =
      value?.token === TokenType.LEFT_BRACKET ? '[' : value?.token === TokenType.LEFT_BRACE ? '{' : undefined;
    if (opens !== undefined) {
      const key = String(name.value);
      return Object.hasOwn(EVENTS, key) ? EVENTS[key]?.[opens] : undefined;
    }
    if (next?.token !== TokenType.COMMA) return undefined;
  }
  return undefined;
}
