import { shapeOf, type Shape, type ServiceModel } from './model';

/** Requests are held to every constraint of the model; answers to their form (see validate). */
export type Mode = 'input' | 'output';

export interface Problem {
  /** AWS's path: member names with a lower-case first letter, list items as `<list>.<n>.member` counted from 1. */
  path: string;
  /**
   * unknown: a member the shape does not have (AWS ignores it); type: a value of the wrong JSON type (AWS answers
   * SerializationException); constraint: a modelled constraint broken (AWS answers the service's validation error).
   */
  kind: 'unknown' | 'type' | 'constraint';
  /** In AWS's words: `Member must have length less than or equal to 100`, `STRING_VALUE can not be converted to an Integer`. */
  rule: string;
  value: unknown;
  /** The model marks the value sensitive: it is never echoed. */
  sensitive: boolean;
}

/**
 * Checks a value, in the form the JSON protocols carry it (timestamps as epoch seconds, blobs as base64), against a
 * shape of the model. Output is held to its members, types, required members and enums, not to lengths, ranges or
 * patterns: AWS does not keep those in its answers (ListBuildsForProject answers `ids: []`, though BuildIds has min 1).
 */
export function validate(model: ServiceModel, shapeName: string, value: unknown, mode: Mode): Problem[] {
  const problems: Problem[] = [];
  const constrained = mode === 'input';
  const add = (path: string, kind: Problem['kind'], rule: string, v: unknown, sensitive: boolean) => {
    problems.push({ path, kind, rule, value: v, sensitive });
  };

  const visit = (name: string, v: unknown, at: string, inSensitive: boolean): void => {
    const shape = shapeOf(model, name);
    const sensitive = inSensitive || shape.sensitive === true;
    const mismatch = () => add(at, 'type', typeMismatch(shape.type, v), v, sensitive);
    const bounds = (n: number, what: 'length' | 'value') => {
      if (!constrained) return;
      if (shape.min !== undefined && n < shape.min) add(at, 'constraint', `Member must have ${what} greater than or equal to ${shape.min}`, v, sensitive);
      if (shape.max !== undefined && n > shape.max) add(at, 'constraint', `Member must have ${what} less than or equal to ${shape.max}`, v, sensitive);
    };
    switch (shape.type) {
      case 'structure': {
        if (!isRecord(v)) return mismatch();
        if (shape.document) return;
        for (const [key, member] of Object.entries(v)) {
          const ref = shape.members[key];
          if (!ref) add(join(at, key), 'unknown', `${key} is not a member of ${name}`, member, sensitive);
          else if (member !== null && member !== undefined) visit(ref.shape, member, join(at, key), sensitive);
        }
        for (const key of shape.required ?? []) {
          if (v[key] === null || v[key] === undefined) add(join(at, key), 'constraint', 'Member must not be null', null, sensitive);
        }
        const set = Object.values(v).filter((m) => m !== null && m !== undefined).length;
        if (shape.union && set !== 1) add(at, 'constraint', 'Member must have exactly one member set', v, sensitive);
        return;
      }
      case 'list': {
        if (!Array.isArray(v)) return mismatch();
        bounds(v.length, 'length');
        v.forEach((item: unknown, i) => {
          const itemAt = `${at}.${i + 1}.member`;
          if (item === null || item === undefined) add(itemAt, 'constraint', 'Member must not be null', null, sensitive);
          else visit(shape.member.shape, item, itemAt, sensitive);
        });
        return;
      }
      case 'map': {
        if (!isRecord(v)) return mismatch();
        bounds(Object.keys(v).length, 'length');
        for (const [key, item] of Object.entries(v)) {
          visit(shape.key.shape, key, `${at}.${key}`, sensitive);
          visit(shape.value.shape, item, `${at}.${key}`, sensitive);
        }
        return;
      }
      case 'string': {
        if (typeof v !== 'string') return mismatch();
        if (shape.enum && !shape.enum.includes(v)) add(at, 'constraint', `Member must satisfy enum value set: [${shape.enum.join(', ')}]`, v, sensitive);
        bounds([...v].length, 'length'); // characters (code points), not UTF-16 units
        if (constrained && shape.pattern !== undefined && !patternRegExp(shape.pattern).test(v)) {
          add(at, 'constraint', `Member must satisfy regular expression pattern: ${shape.pattern}`, v, sensitive);
        }
        return;
      }
      case 'integer':
      case 'long':
        if (typeof v !== 'number' || !Number.isInteger(v)) return mismatch();
        return bounds(v, 'value');
      case 'float':
      case 'double':
        if (typeof v !== 'number' || !Number.isFinite(v)) return mismatch();
        return bounds(v, 'value');
      case 'boolean':
        if (typeof v !== 'boolean') mismatch();
        return;
      case 'timestamp':
        // JSON protocols send epoch seconds unless the member says otherwise.
        if (shape.timestampFormat === 'iso8601' ? typeof v !== 'string' || Number.isNaN(Date.parse(v)) : typeof v !== 'number' || !Number.isFinite(v)) mismatch();
        return;
      case 'blob':
        if (typeof v !== 'string' || !BASE64.test(v) || v.length % 4 !== 0) return mismatch();
        return bounds(Buffer.from(v, 'base64').length, 'length');
    }
  };

  visit(shapeName, value, '', false);
  return problems;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** AWS names members in its messages with a lower-case first letter (`Name` → `name`). */
function join(at: string, member: string): string {
  const name = member.charAt(0).toLowerCase() + member.slice(1);
  return at ? `${at}.${name}` : name;
}

const JAVA_TYPES: Record<Shape['type'], string> = {
  structure: 'a Structure', list: 'a List', map: 'a Map', string: 'a String', integer: 'an Integer', long: 'a Long',
  float: 'a Float', double: 'a Double', boolean: 'a Boolean', timestamp: 'a Timestamp', blob: 'a Blob',
};

/** In the style of AWS's SerializationException messages (`STRING_VALUE can not be converted to an Integer`). */
function typeMismatch(expected: Shape['type'], v: unknown): string {
  if (Array.isArray(v)) return 'Start of list found where not expected';
  if (isRecord(v)) return 'Start of structure or map found where not expected.';
  const token = typeof v === 'string' ? 'STRING_VALUE' : typeof v === 'number' ? 'NUMBER_VALUE' : typeof v === 'boolean' ? 'BOOLEAN_VALUE' : 'NULL_VALUE';
  return `${token} can not be converted to ${JAVA_TYPES[expected]}`;
}

const patterns = new Map<string, RegExp>();

/** A model pattern as a JavaScript RegExp: model patterns are Java regular expressions matched against the whole value. */
export function patternRegExp(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (!re) {
    try {
      re = new RegExp(`^(?:${pattern})$`, 'u');
    } catch (e) {
      throw new Error(`the model's pattern ${pattern} is not a JavaScript regular expression (${(e as Error).message}): teach stack/fake-aws/models/validate.ts its syntax`, { cause: e });
    }
    patterns.set(pattern, re);
  }
  return re;
}

/** At most this many characters of a value are echoed in a message: the fake's errors reach job logs. */
const ECHO_LIMIT = 100;

/** One problem as AWS words it in a validation error: `Value 'x' at 'projectName' failed to satisfy constraint: …`. */
export function describe(p: Problem): string {
  if (p.kind === 'type') return `${p.rule} (at '${p.path}')`;
  if (p.kind === 'unknown') return `${p.rule} (at '${p.path}'; AWS ignores unknown members)`;
  const shown = p.value === null || p.value === undefined ? ' null' : p.sensitive ? '' : ` '${echo(p.value)}'`;
  return `Value${shown} at '${p.path}' failed to satisfy constraint: ${p.rule}`;
}

/** AWS's message for constraint problems: `2 validation errors detected: …; …`. */
export function validationMessage(problems: Problem[]): string {
  const n = problems.length;
  return `${n} validation error${n === 1 ? '' : 's'} detected: ${problems.map(describe).join('; ')}`;
}

function echo(v: unknown): string {
  const text = typeof v === 'string' ? v : Array.isArray(v) ? `[${v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ')}]` : JSON.stringify(v);
  return text.length > ECHO_LIMIT ? `${text.slice(0, ECHO_LIMIT)}…` : text;
}
