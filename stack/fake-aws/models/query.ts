import { parseXmlBody } from '@aws-sdk/core/protocols';
import { shapeOf, type ServiceModel, type Shape, type ShapeRef } from './model';

/**
 * The Query protocol carries input as flat form parameters (`PolicyArns.member.1.arn=…`) and output as XML. Both
 * are rebuilt here into the form the JSON protocols carry, so one validator checks every protocol: numbers and
 * booleans parsed, timestamps as epoch seconds. A text that does not parse stays a string, which the validator
 * then reports as the wrong type.
 */

/** The request's members, and the parameters no member took (besides Action and Version). */
export function fromQuery(model: ServiceModel, shapeName: string, params: URLSearchParams): { value: Record<string, unknown>; unknown: string[] } {
  const taken = new Set(['Action', 'Version']);
  const read = (name: string, key: string): unknown => {
    const shape = shapeOf(model, name);
    if (shape.type === 'structure') {
      if (![...params.keys()].some((k) => k.startsWith(`${key}.`))) return undefined;
      return members(shape.members, `${key}.`);
    }
    if (shape.type === 'list') {
      if (params.get(key) === '') {
        taken.add(key); // how the Query protocol sends an empty list
        return [];
      }
      const base = shape.flattened ? key : `${key}.member`;
      const items: unknown[] = [];
      for (let i = 1; [...params.keys()].some((k) => k === `${base}.${i}` || k.startsWith(`${base}.${i}.`)); i++) items.push(read(shape.member.shape, `${base}.${i}`));
      return items.length > 0 ? items : undefined;
    }
    if (shape.type === 'map') throw new Error(`${name}: maps in Query input are not supported by stack/fake-aws/models/query.ts yet`);
    const text = params.get(key);
    if (text === null) return undefined;
    taken.add(key);
    return scalar(shape, text);
  };
  const members = (refs: Record<string, ShapeRef>, prefix: string): Record<string, unknown> => {
    const value: Record<string, unknown> = {};
    for (const [name, ref] of Object.entries(refs)) {
      const v = read(ref.shape, `${prefix}${ref.locationName ?? name}`);
      if (v !== undefined) value[name] = v;
    }
    return value;
  };
  const shape = shapeOf(model, shapeName);
  const value = shape.type === 'structure' ? members(shape.members, '') : {};
  return { value, unknown: [...params.keys()].filter((k) => !taken.has(k)) };
}

/**
 * An XML answer (`<XResponse><XResult>…</XResult><ResponseMetadata/></XResponse>`) parsed as the SDK parses it, and
 * its result element rebuilt along the output shape. Elements no member names are kept under their own name, for
 * the validator to report.
 */
export async function fromXml(model: ServiceModel, shapeName: string, resultWrapper: string | undefined, xml: string): Promise<unknown> {
  const parsed = (await parseXmlBody(Buffer.from(xml, 'utf8'), {} as never)) as Record<string, unknown>;
  const result = resultWrapper === undefined ? parsed : parsed[resultWrapper];
  if (result === undefined) return undefined;
  const read = (name: string, node: unknown): unknown => {
    const shape = shapeOf(model, name);
    if (shape.type === 'structure') {
      if (node === '') return {};
      if (typeof node !== 'object' || node === null) return node;
      const value: Record<string, unknown> = {};
      const byElement = new Map(Object.entries(shape.members).map(([member, ref]) => [ref.locationName ?? member, { member, ref }]));
      for (const [element, child] of Object.entries(node)) {
        const m = byElement.get(element);
        if (m) value[m.member] = read(m.ref.shape, child);
        else value[element] = child;
      }
      return value;
    }
    if (shape.type === 'list') {
      if (node === '') return [];
      const items = shape.flattened ? node : (node as Record<string, unknown> | null)?.['member'];
      return [items ?? []].flat().map((item) => read(shape.member.shape, item));
    }
    return typeof node === 'string' ? scalar(shape, node) : node;
  };
  return read(shapeName, result);
}

function scalar(shape: Shape, text: string): unknown {
  switch (shape.type) {
    case 'integer':
    case 'long':
      return /^-?\d+$/.test(text) ? Number(text) : text;
    case 'float':
    case 'double':
      return text.trim() !== '' && Number.isFinite(Number(text)) ? Number(text) : text;
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
    case 'timestamp': {
      const ms = Date.parse(text);
      return Number.isNaN(ms) ? text : ms / 1000;
    }
    default:
      return text;
  }
}
