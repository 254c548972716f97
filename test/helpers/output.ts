import type { Output } from '../../src/shared/console';

/** An Output that collects lines in memory. */
export function memoryOutput(): Output & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (l) => lines.push(l),
    warn: (l) => lines.push(`WARNING: ${l}`),
    error: (l) => lines.push(`ERROR: ${l}`),
    sectionStart: (id, title) => lines.push(`[section ${id}] ${title}`),
    sectionEnd: (id) => lines.push(`[end ${id}]`),
  };
}
