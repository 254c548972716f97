/**
 * Test support for infra/cloudformation.yml: parses the YAML with CloudFormation's short-form tags, lists what the
 * template references, and renders it for given parameter values (conditions, Fn::ForEach and the intrinsic
 * functions evaluated the way CloudFormation does) so tests can assert on concrete policies.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument, visit, type CollectionTag, type ScalarTag, type YAMLMap, type YAMLSeq } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const templatePath = path.join(import.meta.dirname, 'cloudformation.yml');

// Short form → long form. `!GetAtt A.B` becomes ['A', 'B'] like CloudFormation does.
const functionNames = ['Base64', 'Cidr', 'FindInMap', 'GetAZs', 'ImportValue', 'Join', 'Select', 'Split', 'Sub',
  'Transform', 'And', 'Equals', 'If', 'Not', 'Or', 'Length', 'ToJsonString'];

function cfnTags(): (ScalarTag | CollectionTag)[] {
  const tags: (ScalarTag | CollectionTag)[] = [
    { tag: '!Ref', resolve: (s: string) => ({ Ref: s }) },
    { tag: '!Condition', resolve: (s: string) => ({ Condition: s }) },
    { tag: '!GetAtt', resolve: (s: string) => ({ 'Fn::GetAtt': splitGetAtt(s) }) },
    { tag: '!GetAtt', collection: 'seq', resolve: (v: YAMLSeq | YAMLMap) => ({ 'Fn::GetAtt': v.toJSON() as Json }) },
  ];
  for (const name of functionNames) {
    const key = `Fn::${name}`;
    tags.push({ tag: `!${name}`, resolve: (s: string) => ({ [key]: s }) });
    for (const collection of ['seq', 'map'] as const) {
      tags.push({ tag: `!${name}`, collection, resolve: (v: YAMLSeq | YAMLMap) => ({ [key]: v.toJSON() as Json }) });
    }
  }
  return tags;
}

function splitGetAtt(s: string): string[] {
  const dot = s.indexOf('.');
  return dot < 0 ? [s] : [s.slice(0, dot), s.slice(dot + 1)];
}

export function parseTemplate(text: string): JsonObject {
  const doc = parseDocument(text, { customTags: cfnTags(), merge: false, uniqueKeys: true, strict: true });
  if (doc.errors.length > 0) throw doc.errors[0]!;
  // CloudFormation's YAML support excludes anchors, aliases and merge keys.
  const noAnchor = (_: unknown, node: { anchor?: string | undefined }) => {
    if (node.anchor) throw new Error(`YAML anchor &${node.anchor}: CloudFormation does not support anchors`);
  };
  visit(doc, {
    Alias: (_, node) => { throw new Error(`YAML alias *${node.source}: CloudFormation does not support aliases`); },
    Scalar: noAnchor,
    Map: noAnchor,
    Seq: noAnchor,
  });
  return doc.toJS() as JsonObject;
}

export function loadTemplate(): JsonObject {
  return parseTemplate(readFileSync(templatePath, 'utf8'));
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function section(t: JsonObject, name: string): JsonObject {
  const s = t[name];
  return isObject(s) ? s : {};
}

export const pseudoParameters = ['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition',
  'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix'];

/** A resource declared in Resources, directly or as the fragment of a Fn::ForEach loop. */
export interface DeclaredResource {
  logicalId: string;
  body: JsonObject;
  /** Loop identifiers in scope (usable in Ref and ${…}). */
  locals: string[];
  /** The loop's collection expression when declared inside Fn::ForEach. */
  collection?: Json;
}

export function declaredResources(t: JsonObject): DeclaredResource[] {
  const out: DeclaredResource[] = [];
  const visit = (entries: JsonObject, locals: string[], collection?: Json) => {
    for (const [key, value] of Object.entries(entries)) {
      if (key.startsWith('Fn::ForEach::')) {
        const [identifier, items, fragment] = value as [string, Json, JsonObject];
        visit(fragment, [...locals, identifier], items);
      } else if (isObject(value)) {
        out.push({ logicalId: key, body: value, locals, ...(collection === undefined ? {} : { collection }) });
      }
    }
  };
  visit(section(t, 'Resources'), []);
  return out;
}

/** `${Name}` and `${Name.Attr}` variables of a Fn::Sub string (`${!x}` is a literal). */
export function subVariables(s: string): string[] {
  return [...s.matchAll(/\$\{([^}!][^}]*)\}/g)].map((m) => m[1]!.trim());
}

export interface Reference {
  kind: 'Ref' | 'GetAtt' | 'Sub' | 'Condition' | 'DependsOn';
  name: string;
  attribute?: string;
  /** Where it was found, for messages. */
  at: string;
  locals: string[];
}

/** Every reference the template makes: Ref, GetAtt, Sub variables, condition names, DependsOn. */
export function references(t: JsonObject): Reference[] {
  const refs: Reference[] = [];
  const walk = (node: Json, at: string, locals: string[], subVars: string[] = []): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}[${i}]`, locals, subVars));
    if (!isObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      const here = `${at}.${key}`;
      if (key === 'Ref' && logicalName(value) !== undefined) refs.push({ kind: 'Ref', name: logicalName(value)!, at: here, locals });
      else if (key === 'Fn::GetAtt' && Array.isArray(value)) {
        refs.push({ kind: 'GetAtt', name: String(logicalName(value[0]!)), attribute: String(value[1]), at: here, locals });
      } else if (key === 'Fn::Sub') {
        const [text, vars] = typeof value === 'string' ? [value, {}] : (value as [string, JsonObject]);
        for (const v of subVariables(text)) {
          if (Object.hasOwn(vars, v)) continue;
          const [name, attribute] = splitGetAtt(v);
          refs.push({ kind: 'Sub', name: name!, ...(attribute ? { attribute } : {}), at: here, locals });
        }
        walk(vars, here, locals, subVars);
      } else if (key === 'Fn::If' && Array.isArray(value)) {
        refs.push({ kind: 'Condition', name: String(value[0]), at: here, locals });
        walk(value.slice(1), here, locals, subVars);
      } else if (key === 'Condition' && typeof value === 'string') {
        refs.push({ kind: 'Condition', name: value, at: here, locals });
      } else if (key.startsWith('Fn::ForEach::') && Array.isArray(value)) {
        const [identifier, items, fragment] = value as [string, Json, Json];
        walk(items, here, locals, subVars);
        walk(fragment, here, [...locals, identifier], subVars);
      } else walk(value, here, locals, subVars);
    }
  };
  for (const r of declaredResources(t)) {
    if (r.collection !== undefined) walk(r.collection, `Resources.${r.logicalId}(collection)`, []);
    walk(r.body, `Resources.${r.logicalId}`, r.locals);
    const deps = r.body.DependsOn;
    for (const d of typeof deps === 'string' ? [deps] : Array.isArray(deps) ? deps : []) {
      refs.push({ kind: 'DependsOn', name: String(d), at: `Resources.${r.logicalId}.DependsOn`, locals: r.locals });
    }
  }
  walk(section(t, 'Conditions'), 'Conditions', []);
  walk(section(t, 'Rules'), 'Rules', []);
  walk(section(t, 'Outputs'), 'Outputs', []);
  return refs;
}

/**
 * The logical ID a Ref or Fn::GetAtt names: a string, or inside Fn::ForEach a Fn::Sub of loop identifiers
 * (`!Ref {Fn::Sub: 'LogGroup&{Tenant}'}`), which the transform turns into a string.
 */
function logicalName(v: Json): string | undefined {
  if (typeof v === 'string') return v;
  return isObject(v) && typeof v['Fn::Sub'] === 'string' ? v['Fn::Sub'] : undefined;
}

/** `Name=value` overrides of each `aws cloudformation deploy` command in a Markdown text. */
export function deployCommands(markdown: string): Record<string, string>[] {
  return [...markdown.matchAll(/aws cloudformation deploy((?:[^\n]*\\\n)*[^\n]*)/g)].map((m) => {
    const words = m[1]!.replace(/\\\n/g, ' ').split(/\s+/).filter(Boolean);
    const start = words.indexOf('--parameter-overrides');
    const overrides = start < 0 ? [] : words.slice(start + 1).filter((w) => !w.startsWith('--') && !w.startsWith('#'));
    return Object.fromEntries(overrides.map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

export const NO_VALUE = Symbol('AWS::NoValue');
type Value = Json | typeof NO_VALUE | Value[] | { [key: string]: Value };

export interface RenderContext {
  accountId: string;
  region: string;
  partition: string;
  stackName: string;
}

export const defaultContext: RenderContext = {
  accountId: '123456789012',
  region: 'eu-west-1',
  partition: 'aws',
  stackName: 'codebuild-image',
};

export interface Rendered {
  parameters: Record<string, string | string[]>;
  conditions: Record<string, boolean>;
  resources: Record<string, { Type: string; Properties: JsonObject; [k: string]: Json }>;
  outputs: Record<string, Json>;
}

/** Names and ARNs CloudFormation would return, derived from the rendered properties. */
const physical: Record<string, { name?: string; ref?: 'name' | 'arn'; arn: (name: string, c: RenderContext, p: JsonObject) => string }> = {
  'AWS::S3::Bucket': { name: 'BucketName', arn: (n, c) => `arn:${c.partition}:s3:::${n}` },
  'AWS::IAM::Role': { name: 'RoleName', arn: (n, c) => `arn:${c.partition}:iam::${c.accountId}:role/${n}` },
  'AWS::IAM::OIDCProvider': {
    ref: 'arn',
    arn: (_, c, p) => `arn:${c.partition}:iam::${c.accountId}:oidc-provider/${String(p.Url).replace(/^https:\/\//, '')}`,
  },
  'AWS::Logs::LogGroup': {
    name: 'LogGroupName',
    arn: (n, c) => `arn:${c.partition}:logs:${c.region}:${c.accountId}:log-group:${n}:*`,
  },
  'AWS::CodeBuild::Project': {
    name: 'Name',
    arn: (n, c) => `arn:${c.partition}:codebuild:${c.region}:${c.accountId}:project/${n}`,
  },
  'AWS::ECR::Repository': {
    name: 'RepositoryName',
    arn: (n, c) => `arn:${c.partition}:ecr:${c.region}:${c.accountId}:repository/${n}`,
  },
  // Ref is the key id, which CloudFormation generates.
  'AWS::KMS::Key': { arn: (n, c) => `arn:${c.partition}:kms:${c.region}:${c.accountId}:key/${n}` },
  // Ref is the alias name (alias/…); an alias has no Arn attribute.
  'AWS::KMS::Alias': { name: 'AliasName', arn: (n, c) => `arn:${c.partition}:kms:${c.region}:${c.accountId}:${n}` },
  'AWS::Signer::SigningProfile': {
    name: 'ProfileName',
    arn: (n, c) => `arn:${c.partition}:signer:${c.region}:${c.accountId}:/signing-profiles/${n}`,
  },
};

/** Renders the template for `values` (parameter name → string; lists comma-separated or as arrays). */
export function render(t: JsonObject, values: Record<string, string | string[]>, ctx: RenderContext = defaultContext): Rendered {
  const parameters: Record<string, string | string[]> = {};
  for (const [name, decl] of Object.entries(section(t, 'Parameters'))) {
    const d = decl as JsonObject;
    const given = values[name] ?? (d.Default === undefined ? undefined : String(d.Default));
    if (given === undefined) throw new Error(`parameter ${name} has no default: give a value`);
    parameters[name] = d.Type === 'CommaDelimitedList' ? (Array.isArray(given) ? given : given.split(',')) : String(given);
    checkParameter(name, d, parameters[name]);
  }
  for (const name of Object.keys(values)) if (!(name in parameters)) throw new Error(`unknown parameter ${name}`);

  const conditions: Record<string, boolean> = {};
  const resolving = new Set<string>();
  const condition = (name: string): boolean => {
    if (name in conditions) return conditions[name]!;
    if (resolving.has(name)) throw new Error(`condition ${name} refers to itself`);
    const expr = section(t, 'Conditions')[name];
    if (expr === undefined) throw new Error(`unknown condition ${name}`);
    resolving.add(name);
    const v = evaluate(expr, {});
    if (typeof v !== 'boolean') throw new Error(`condition ${name} is not boolean`);
    return (conditions[name] = v);
  };

  // Fn::ForEach first (it is a template transform, applied before anything else is evaluated).
  const expanded: Record<string, JsonObject> = {};
  const expand = (entries: JsonObject, subst: (s: string) => string, into = expanded): void => {
    for (const [key, value] of Object.entries(entries)) {
      if (key.startsWith('Fn::ForEach::')) {
        const [identifier, items, fragment] = value as [string, Json, JsonObject];
        const collection = evaluate(items, {});
        if (!Array.isArray(collection)) throw new Error(`${key}: collection is not a list`);
        for (const item of collection) {
          const s = String(item);
          const replace = (text: string) => subst(text)
            .replaceAll(`\${${identifier}}`, s)
            .replaceAll(`&{${identifier}}`, s.replace(/[^A-Za-z0-9]/g, ''));
          expand(substituteLoopVariable(fragment, identifier, s, replace) as JsonObject, replace, into);
        }
      } else {
        if (key in into) throw new Error(`duplicate logical ID ${key}`);
        into[key] = value as JsonObject;
      }
    }
  };

  const resources: Rendered['resources'] = {};
  const renderedProps: Record<string, JsonObject> = {};
  const props = (id: string): JsonObject => {
    if (renderedProps[id]) return renderedProps[id];
    const r = expanded[id];
    if (!r) throw new Error(`unknown resource ${id}`);
    if (typeof r.Condition === 'string' && !condition(r.Condition)) {
      throw new Error(`resource ${id} is referenced but its condition ${r.Condition} is false`);
    }
    if (resolving.has(`resource:${id}`)) throw new Error(`circular reference through ${id}`);
    resolving.add(`resource:${id}`);
    return (renderedProps[id] = strip(evaluate(r.Properties ?? {}, {})) as JsonObject);
  };
  const physicalName = (id: string): string => {
    const type = String(expanded[id]?.Type);
    const p = physical[type];
    const name = p?.name ? props(id)[p.name] : undefined;
    if (p?.ref === 'arn') return p.arn('', ctx, props(id));
    return typeof name === 'string' ? name : `${ctx.stackName}-${id}-GENERATED`;
  };
  const getAtt = (id: string, attribute: string): string => {
    const type = String(expanded[id]?.Type);
    const p = physical[type];
    if (attribute === 'Arn' && p) return p.arn(physicalName(id), ctx, props(id));
    if (type === 'AWS::ECR::Repository' && attribute === 'RepositoryUri') {
      return `${ctx.accountId}.dkr.ecr.${ctx.region}.amazonaws.com/${physicalName(id)}`;
    }
    return `${id}.${attribute}`;
  };
  const ref = (name: string): Value => {
    if (name in parameters) return parameters[name]!;
    switch (name) {
      case 'AWS::AccountId': return ctx.accountId;
      case 'AWS::Region': return ctx.region;
      case 'AWS::Partition': return ctx.partition;
      case 'AWS::StackName': return ctx.stackName;
      case 'AWS::URLSuffix': return 'amazonaws.com';
      case 'AWS::NoValue': return NO_VALUE;
    }
    if (name in expanded) return physicalName(name);
    throw new Error(`Ref to unknown ${name}`);
  };

  function evaluate(node: Json, vars: Record<string, Value>): Value {
    if (Array.isArray(node)) return node.map((n) => evaluate(n, vars));
    if (!isObject(node)) return node;
    const keys = Object.keys(node);
    const fn = keys.length === 1 ? keys[0]! : '';
    const arg = node[fn] as Json;
    const list = () => arg as Json[];
    switch (fn) {
      case 'Ref': return ref(String(arg));
      case 'Condition': return condition(String(arg));
      case 'Fn::GetAtt': return getAtt(String(list()[0]), String(list()[1]));
      case 'Fn::If': return condition(String(list()[0])) ? evaluate(list()[1]!, vars) : evaluate(list()[2]!, vars);
      case 'Fn::Equals': return String(evaluate(list()[0]!, vars)) === String(evaluate(list()[1]!, vars));
      case 'Fn::Not': return !evaluate(list()[0]!, vars);
      // Rule functions.
      case 'Fn::Contains': return stringList(evaluate(list()[0]!, vars), fn).includes(String(evaluate(list()[1]!, vars)));
      case 'Fn::EachMemberEquals': {
        const expected = String(evaluate(list()[1]!, vars));
        return stringList(evaluate(list()[0]!, vars), fn).every((v) => v === expected);
      }
      case 'Fn::And': return list().every((c) => evaluate(c, vars) === true);
      case 'Fn::Or': return list().some((c) => evaluate(c, vars) === true);
      case 'Fn::Join': {
        const items = evaluate(list()[1]!, vars);
        if (!Array.isArray(items)) throw new Error('Fn::Join needs a list');
        return items.filter((i) => i !== NO_VALUE).map(String).join(String(list()[0]));
      }
      case 'Fn::Split': return String(evaluate(list()[1]!, vars)).split(String(list()[0]));
      case 'Fn::Select': {
        const items = evaluate(list()[1]!, vars);
        const i = Number(evaluate(list()[0]!, vars));
        if (!Array.isArray(items) || items[i] === undefined) throw new Error(`Fn::Select index ${i} out of range`);
        return items[i]!;
      }
      case 'Fn::Sub': {
        const [text, varMap] = typeof arg === 'string' ? [arg, {}] : (arg as [string, JsonObject]);
        const local: Record<string, Value> = { ...vars };
        for (const [k, v] of Object.entries(varMap)) local[k] = evaluate(v, vars);
        return text.replace(/\$\{([^}]+)\}/g, (_, inner: string) => {
          if (inner.startsWith('!')) return `\${${inner.slice(1)}}`;
          const name = inner.trim();
          if (name in local) return String(local[name]);
          const [id, attribute] = splitGetAtt(name);
          return attribute ? getAtt(id!, attribute) : String(ref(name));
        });
      }
      default: {
        if (fn.startsWith('Fn::')) throw new Error(`render does not support ${fn}`);
        const out: { [k: string]: Value } = {};
        for (const [k, v] of Object.entries(node)) out[k] = evaluate(v, vars);
        return out;
      }
    }
  }

  // CloudFormation checks the rules before it creates anything.
  for (const [name, rule] of Object.entries(section(t, 'Rules'))) {
    const r = rule as JsonObject;
    if (r.RuleCondition !== undefined && evaluate(r.RuleCondition, {}) !== true) continue;
    for (const a of r.Assertions as JsonObject[]) {
      if (evaluate(a.Assert!, {}) !== true) throw new Error(`rule ${name}: ${String(a.AssertDescription)}`);
    }
  }

  expand(section(t, 'Resources'), (s) => s);
  for (const [id, r] of Object.entries(expanded)) {
    if (typeof r.Condition === 'string' && !condition(r.Condition)) continue;
    const { Properties: _, ...rest } = r;
    resources[id] = { ...rest, Type: String(r.Type), Properties: props(id) };
  }
  const outputs: Record<string, Json> = {};
  const declaredOutputs: Record<string, JsonObject> = {};
  expand(section(t, 'Outputs'), (s) => s, declaredOutputs);
  for (const [name, o] of Object.entries(declaredOutputs)) {
    const out = o as JsonObject;
    if (typeof out.Condition === 'string' && !condition(out.Condition)) continue;
    outputs[name] = strip(evaluate(out.Value!, {}));
  }
  for (const name of Object.keys(section(t, 'Conditions'))) condition(name);
  return { parameters, conditions, resources, outputs };
}

/** Applies a parameter's constraints as CloudFormation does before it creates anything. */
function checkParameter(name: string, d: JsonObject, value: string | string[]): void {
  const items = Array.isArray(value) ? value : [value];
  const fail = (why: string) => { throw new Error(`parameter ${name}=${String(value)}: ${why}`); };
  if (Array.isArray(d.AllowedValues) && !items.every((v) => (d.AllowedValues as Json[]).map(String).includes(v))) fail('not an allowed value');
  if (typeof d.AllowedPattern === 'string' && !items.every((v) => new RegExp(`^(?:${String(d.AllowedPattern)})$`).test(v))) {
    fail(`does not match ${String(d.AllowedPattern)}`);
  }
  if (d.Type === 'Number') {
    const n = Number(value);
    if (Number.isNaN(n)) fail('not a number');
    if (typeof d.MinValue === 'number' && n < d.MinValue) fail(`below ${d.MinValue}`);
    if (typeof d.MaxValue === 'number' && n > d.MaxValue) fail(`above ${d.MaxValue}`);
  }
}

/**
 * Replaces a loop identifier inside a fragment: Ref <identifier>, ${identifier} and &{identifier} in strings/keys.
 * A Fn::Sub left with no variable becomes its string, as the transform does (so `!Ref {Fn::Sub: 'X&{Id}'}` works).
 */
function substituteLoopVariable(node: Json, identifier: string, value: string, replace: (s: string) => string): Json {
  if (typeof node === 'string') return replace(node);
  if (Array.isArray(node)) return node.map((n) => substituteLoopVariable(n, identifier, value, replace));
  if (!isObject(node)) return node;
  if (Object.keys(node).length === 1 && node.Ref === identifier) return value;
  if (Object.keys(node).length === 1 && typeof node['Fn::Sub'] === 'string') {
    const text = replace(node['Fn::Sub']);
    return /[$&]\{/.test(text) ? { 'Fn::Sub': text } : text;
  }
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) out[replace(k)] = substituteLoopVariable(v, identifier, value, replace);
  return out;
}

function stringList(v: Value, fn: string): string[] {
  if (!Array.isArray(v)) throw new Error(`${fn} needs a list`);
  return v.map(String);
}

/** Drops AWS::NoValue from objects and lists, as CloudFormation does. */
function strip(v: Value): Json {
  if (Array.isArray(v)) return v.filter((x) => x !== NO_VALUE).map(strip);
  if (v !== null && typeof v === 'object') {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) if (x !== NO_VALUE) out[k] = strip(x);
    return out;
  }
  if (v === NO_VALUE) throw new Error('AWS::NoValue outside an object or list');
  return v;
}
