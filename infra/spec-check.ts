/**
 * Checks resources against the CloudFormation resource specification shipped by @aws-cdk/aws-service-spec (the
 * database AWS CDK generates its L1 constructs from): resource types, property names, required properties,
 * allowed values and the nested property types, plus the attributes used by Fn::GetAtt.
 */
import { loadAwsServiceSpec } from '@aws-cdk/aws-service-spec';
import type { Property, PropertyType, Resource, SpecDatabase, TypeDefinition } from '@aws-cdk/service-spec-types';
import { isObject, type Json, type JsonObject } from './cfn';

let db: SpecDatabase | undefined;
async function database(): Promise<SpecDatabase> {
  return (db ??= await loadAwsServiceSpec());
}

export async function resourceSpec(type: string): Promise<Resource | undefined> {
  return (await database()).lookup('resource', 'cloudFormationType', 'equals', type)[0];
}

const resourceAttributes = new Set(['Type', 'Properties', 'Condition', 'DependsOn', 'DeletionPolicy',
  'UpdateReplacePolicy', 'Metadata', 'CreationPolicy', 'UpdatePolicy']);

/** Problems with one resource declaration; empty when it matches the specification. */
export async function checkResource(logicalId: string, body: JsonObject): Promise<string[]> {
  const problems: string[] = [];
  for (const key of Object.keys(body)) {
    if (!resourceAttributes.has(key)) problems.push(`${logicalId}: unknown resource attribute ${key}`);
  }
  const type = String(body.Type);
  const spec = await resourceSpec(type);
  if (!spec) return [...problems, `${logicalId}: unknown resource type ${type}`];
  const props = body.Properties ?? {};
  if (!isObject(props)) return [...problems, `${logicalId}: Properties is not an object`];
  const d = await database();
  checkObject(d, props, spec.properties, `${logicalId}.Properties`, problems);
  return problems;
}

/** A value built by an intrinsic function is checked only where its shape is known (both branches of Fn::If). */
function intrinsic(v: Json): [string, Json] | undefined {
  if (!isObject(v)) return undefined;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::')) ? [keys[0]!, v[keys[0]!]!] : undefined;
}

function checkObject(d: SpecDatabase, value: JsonObject, props: Record<string, Property>, at: string, problems: string[]) {
  for (const [name, v] of Object.entries(value)) {
    const p = props[name];
    if (!p) problems.push(`${at}: unknown property ${name}`);
    else checkValue(d, v, p.type, `${at}.${name}`, problems);
  }
  for (const [name, p] of Object.entries(props)) {
    if (p.required && !(name in value)) problems.push(`${at}: required property ${name} missing`);
  }
}

function checkValue(d: SpecDatabase, v: Json, type: PropertyType, at: string, problems: string[]): void {
  const fn = intrinsic(v);
  if (fn) {
    if (fn[0] === 'Fn::If' && Array.isArray(fn[1])) {
      for (const branch of fn[1].slice(1)) {
        if (!(isObject(branch) && branch.Ref === 'AWS::NoValue')) checkValue(d, branch, type, at, problems);
      }
    }
    return;
  }
  switch (type.type) {
    case 'string':
      if (typeof v === 'object') problems.push(`${at}: expected a string`);
      else if (type.allowedValues && typeof v === 'string' && !type.allowedValues.includes(v)) {
        problems.push(`${at}: ${v} is not one of ${type.allowedValues.join(', ')}`);
      }
      return;
    case 'boolean':
      if (typeof v !== 'boolean' && v !== 'true' && v !== 'false') problems.push(`${at}: expected a boolean`);
      return;
    case 'integer':
    case 'number':
      if (typeof v !== 'number' && !(typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v))) problems.push(`${at}: expected a number`);
      return;
    case 'array':
      if (!Array.isArray(v)) problems.push(`${at}: expected a list`);
      else v.forEach((item, i) => checkValue(d, item, type.element, `${at}[${i}]`, problems));
      return;
    case 'map':
      if (!isObject(v)) problems.push(`${at}: expected a map`);
      else for (const [k, item] of Object.entries(v)) checkValue(d, item, type.element, `${at}.${k}`, problems);
      return;
    case 'ref': {
      const def = d.get('typeDefinition', type.reference.$ref) as TypeDefinition;
      if (!isObject(v)) problems.push(`${at}: expected an object (${def.name})`);
      else checkObject(d, v, def.properties, at, problems);
      return;
    }
    case 'union': {
      const attempts = type.types.map((alt) => {
        const p: string[] = [];
        checkValue(d, v, alt, at, p);
        return p;
      });
      if (attempts.every((p) => p.length > 0)) problems.push(...attempts[0]!);
      return;
    }
    default:
      return; // json, tag, date-time, null: no structure to check
  }
}
