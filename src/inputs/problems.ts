// The Problems collector and the readers most inputs share: a choice, a whole number, a timeout, true/false,
// a pattern, and a list (a JSON array or one item per line).
import type { InputName } from './names';
import type { InputProblem } from '../shared/errors';
import { shown } from '../shared/shown';

/** Collects problems; checks return a placeholder on failure since nothing is returned when any exist. */
export class Problems {
  readonly list: InputProblem[] = [];
  add(input: InputName, message: string): void {
    this.list.push({ input, message });
  }
}

export function readChoice(p: Problems, input: InputName, value: string, choices: string[], orElse = "leave it empty to use the project's setting"): string | undefined {
  if (!value) return undefined;
  if (!choices.includes(value)) p.add(input, `${shown(value)} is not one of ${choices.join(', ')}; ${orElse}`);
  return value;
}

export function readInteger(p: Problems, input: InputName, raw: string, min: number, max: number, unit: string, orElse = ''): number | undefined {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) {
    p.add(input, `${shown(raw)} is not a whole number of ${unit} between ${min} and ${max}${orElse}`);
    return undefined;
  }
  return n;
}

export function readTimeout(p: Problems, input: InputName, raw: string, max: number): number | undefined {
  if (raw === '' || raw === '0') return undefined;
  return readInteger(p, input, raw, 5, max, 'minutes', ", or 0 for the project's setting");
}

export function readBoolean(p: Problems, input: InputName, raw: string, fallback: boolean): boolean {
  if (raw === '') return fallback;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  p.add(input, `${shown(raw)} is not true or false`);
  return fallback;
}

export function readPattern(p: Problems, input: InputName, value: string, pattern: RegExp, expected: string): string | undefined {
  if (!value) return undefined;
  if (!pattern.test(value)) p.add(input, `${shown(value)} is not valid; expected ${expected}`);
  return value;
}

/** A list input: a JSON array of strings (from a template array input) or one item per line. */
export function parseList(raw: string): { items: string[] } | { problem: string } {
  const text = raw.trim();
  if (text === '') return { items: [] };
  if (!text.startsWith('[')) return { items: text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '') };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the input, which may hold secret references.
    return { problem: 'is not a valid JSON array; give a list of strings (or one item per line)' };
  }
  if (!Array.isArray(parsed)) return { problem: 'is not a JSON array of strings' };
  const items: string[] = [];
  for (const [i, item] of parsed.entries()) {
    if (typeof item !== 'string') {
      return { problem: `item ${i + 1} is a ${item === null ? 'null' : typeof item}, not a string; quote it in YAML (e.g. '1.10', since 1.10 would become 1.1)` };
    }
    if (item.trim() !== '') items.push(item.trim());
  }
  return { items };
}

export function readList(p: Problems, input: InputName, raw: string): string[] | undefined {
  const r = parseList(raw);
  if ('problem' in r) p.add(input, r.problem);
  return 'items' in r ? r.items : undefined;
}
