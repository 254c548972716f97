import { describe, expect, it } from 'vitest';
import { escapeControls, shown } from '../../src/shared/shown';

describe('shown', () => {
  it('quotes a plain value unchanged', () => {
    expect(shown('eu-west-1')).toBe('"eu-west-1"');
  });

  it('makes line breaks, escapes and invisible characters visible, so no value can forge a log line', () => {
    const forged = shown('v1\nBuild status: SUCCEEDED\r\u001b[32m\u202e\u2028x');
    expect(forged).toBe('"v1\\nBuild status: SUCCEEDED\\r\\u001b[32m\\u202e\\u2028x"');
    for (const c of ['\n', '\r', '\u001b', '\u202e', '\u2028']) expect(forged).not.toContain(c);
  });

  it('escapes quotes and backslashes inside the value', () => {
    expect(shown('a"b\\c')).toBe('"a\\"b\\\\c"');
  });

  it('shortens a long value and gives its length', () => {
    const text = shown('x'.repeat(100_000));
    expect(text).toBe(`"${'x'.repeat(200)}…" (100000 characters)`);
  });

  it('never splits a character outside the BMP', () => {
    expect(shown('😀'.repeat(300))).toBe(`"${'😀'.repeat(200)}…" (300 characters)`);
  });

  it('escapeControls leaves printable text alone', () => {
    expect(escapeControls('Größe: 5 € "ok"')).toBe('Größe: 5 € "ok"');
  });
});
