// Text from records, servers and file names made safe to show: control characters are displayed,
// never obeyed by a terminal (a user name with ANSI codes must not recolour an analyst's screen),
// and neither are the controls of bidirectional text (a login name must not display reversed).

/**
 * C0 controls (but tab, line feed and carriage return), DEL, C1 controls, and the marks,
 * embeddings, overrides and isolates of bidirectional text.
 */
const CONTROL =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters replaced.
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * C0 controls and DEL as their Unicode Control Pictures (ESC as ␛); C1 controls and bidirectional
 * controls as U+FFFD.
 */
export function visible(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x20 ? String.fromCharCode(0x2400 + code) : code === 0x7f ? '\u2421' : '\ufffd';
  });
}

/**
 * At most the first `max` UTF-16 code units of `text`, one fewer when the cut would split a
 * character outside the Basic Multilingual Plane (an emoji): a lone surrogate half is no text, and
 * an output written as UTF-8 would show it as U+FFFD.
 */
export function cutAt(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/** A count as summaries print it: 306,154. */
export function grouped(n: number): string {
  return n.toLocaleString('en-US');
}
