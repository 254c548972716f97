/**
 * Values as they appear in messages. A value may hold anything (a line break that forges a log line,
 * terminal escapes, 100 KB of text), so it is printed quoted, with every control or invisible formatting
 * character escaped, and shortened to a few hundred characters with its full length.
 */

const MAX_SHOWN = 200;
// C0 and C1 controls, zero-width and direction-changing characters, line and paragraph separators, BOM.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;

/** `text` with every unsafe character written as an escape (\n, \t, \u001b, …); quotes are left alone. */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
    return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** `value` quoted and escaped for a message; a long value is cut, and its length given. */
export function shown(value: string, max = MAX_SHOWN): string {
  // Cut on code points so a surrogate pair is never split.
  const chars = [...value];
  const quoted = `"${escapeControls(chars.slice(0, max).join('').replace(/["\\]/g, '\\$&'))}"`;
  return chars.length > max ? `${quoted.slice(0, -1)}…" (${chars.length} characters)` : quoted;
}
