import { parse } from 'yaml';

export const COMMAND_PHASES = ['install', 'pre_build', 'build', 'post_build'] as const;
export type CommandPhase = (typeof COMMAND_PHASES)[number];

export interface PhaseSpec {
  commands: string[];
  finally: string[];
  onFailure: 'ABORT' | 'CONTINUE';
}

export interface Buildspec {
  shell: string;
  variables: Record<string, string>;
  parameterStore: Record<string, string>;
  secretsManager: Record<string, string>;
  exportedVariables: string[];
  phases: Record<CommandPhase, PhaseSpec>;
}

/** Thrown for a buildspec CodeBuild would reject with YAML_FILE_ERROR. */
export class BuildspecError extends Error {}

export function parseBuildspec(text: string): Buildspec {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new BuildspecError(`YAML_FILE_ERROR: ${(e as Error).message.split('\n')[0]}`);
  }
  const root = asMap(doc, 'buildspec');
  if (String(root['version']) !== '0.2') {
    throw new BuildspecError(`YAML_FILE_ERROR: invalid buildspec version ${JSON.stringify(root['version'] ?? null)}; this fake supports version 0.2`);
  }
  const env = root['env'] === undefined ? {} : asMap(root['env'], 'env');
  const phasesRoot = root['phases'] === undefined ? {} : asMap(root['phases'], 'phases');
  const phases = Object.fromEntries(COMMAND_PHASES.map((name) => [name, phaseSpec(phasesRoot[name], name)])) as Record<CommandPhase, PhaseSpec>;
  const shell = env['shell'] === undefined ? 'bash' : String(env['shell']);
  if (shell !== 'bash' && shell !== 'sh') throw new BuildspecError(`YAML_FILE_ERROR: unsupported shell ${shell} (bash or sh)`);
  return {
    shell,
    variables: stringMap(env['variables'], 'env/variables'),
    parameterStore: stringMap(env['parameter-store'], 'env/parameter-store'),
    secretsManager: stringMap(env['secrets-manager'], 'env/secrets-manager'),
    exportedVariables: stringList(env['exported-variables'], 'env/exported-variables'),
    phases,
  };
}

function phaseSpec(value: unknown, name: string): PhaseSpec {
  if (value === undefined || value === null) return { commands: [], finally: [], onFailure: 'ABORT' };
  const m = asMap(value, `phases/${name}`);
  const onFailure = m['on-failure'] === undefined ? 'ABORT' : String(m['on-failure']);
  if (onFailure !== 'ABORT' && onFailure !== 'CONTINUE') {
    throw new BuildspecError(`YAML_FILE_ERROR: on-failure in phase ${name} must be ABORT or CONTINUE, got ${onFailure}`);
  }
  return { commands: stringList(m['commands'], `phases/${name}/commands`), finally: stringList(m['finally'], `phases/${name}/finally`), onFailure };
}

function asMap(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BuildspecError(`YAML_FILE_ERROR: ${where} must be a mapping`);
  return value as Record<string, unknown>;
}

function stringMap(value: unknown, where: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  return Object.fromEntries(Object.entries(asMap(value, where)).map(([k, v]) => [k, scalar(v, `${where}/${k}`)]));
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new BuildspecError(`YAML_FILE_ERROR: ${where} must be a list`);
  return value.map((v, i) => scalar(v, `${where}[${i}]`));
}

function scalar(v: unknown, where: string): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new BuildspecError(`YAML_FILE_ERROR: Expected ${where} to be of string type: found subkeys instead`);
}
