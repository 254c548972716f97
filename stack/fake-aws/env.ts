import type { Buildspec } from './buildspec';
import type { FakeBuild } from './builds';
import type { EnvVar, ResolvedOptions } from './options';

/** Thrown when a PARAMETER_STORE/SECRETS_MANAGER reference cannot be resolved (fails DOWNLOAD_SOURCE). */
export class SecretError extends Error {}

export interface BuildEnvironment {
  env: Record<string, string>;
  /** Values that came from Parameter Store or Secrets Manager: masked in logs and in /_fake/builds. */
  secretValues: string[];
  redacted: Record<string, string>;
}

/**
 * The build's starting environment. Precedence as CodeBuild documents it: StartBuild overrides, then the
 * project, then the buildspec; CODEBUILD_* are reserved and set last; options.buildEnv sits below all.
 */
export function buildEnvironment(build: FakeBuild, spec: Buildspec, o: ResolvedOptions, dirs: { src: string; home: string; tmp: string }): BuildEnvironment {
  const secretNames = new Set<string>();
  const secretValues: string[] = [];
  const resolved = new Map<string, string>();
  const put = (name: string, value: string, secret: boolean) => {
    resolved.set(name, value);
    if (secret) {
      secretNames.add(name);
      if (value) secretValues.push(value);
    } else {
      secretNames.delete(name);
    }
  };
  for (const [k, v] of Object.entries(spec.variables)) put(k, v, false);
  for (const [k, v] of Object.entries(spec.parameterStore)) put(k, parameter(o, v), true);
  for (const [k, v] of Object.entries(spec.secretsManager)) put(k, secret(o, v), true);
  // settings.environment.environmentVariables holds the project's variables with the overrides merged over them.
  for (const v of build.settings.environment.environmentVariables) put(v.name, resolveVar(o, v), (v.type ?? 'PLAINTEXT') !== 'PLAINTEXT');

  const codebuild: Record<string, string> = {
    AWS_REGION: o.region,
    AWS_DEFAULT_REGION: o.region,
    CODEBUILD_BUILD_ID: build.id,
    CODEBUILD_BUILD_ARN: build.arn,
    CODEBUILD_BUILD_NUMBER: String(build.buildNumber),
    CODEBUILD_BUILD_IMAGE: build.settings.environment.image,
    CODEBUILD_BUILD_SUCCEEDING: '1',
    CODEBUILD_INITIATOR: 'codebuild-image-fake',
    CODEBUILD_KMS_KEY_ID: `arn:aws:kms:${o.region}:${o.account}:alias/aws/s3`,
    CODEBUILD_LOG_PATH: build.streamName,
    CODEBUILD_SRC_DIR: dirs.src,
    CODEBUILD_START_TIME: String(build.startTime.getTime()),
    CODEBUILD_BUILD_URL: `https://${o.region}.console.aws.amazon.com/codesuite/codebuild/${o.account}/projects/${build.settings.projectName}/build/${encodeURIComponent(build.id)}/?region=${o.region}`,
    CODEBUILD_CI: 'true',
    ...(build.settings.source.location ? { CODEBUILD_SOURCE_REPO_URL: build.settings.source.location } : {}),
    ...(build.settings.sourceVersion ? { CODEBUILD_SOURCE_VERSION: build.settings.sourceVersion } : {}),
  };
  const env = {
    PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: dirs.home,
    // Each CodeBuild build has a /tmp of its own; builds here share the host's, so each gets a directory instead.
    TMPDIR: dirs.tmp,
    LANG: 'C.UTF-8',
    ...o.buildEnv,
    // An arm64 host builds linux/arm64 by default; the fake's one engine does so under QEMU user emulation.
    ...(build.settings.environment.type.startsWith('ARM_') ? { DOCKER_DEFAULT_PLATFORM: 'linux/arm64' } : {}),
    ...Object.fromEntries(resolved),
    ...codebuild,
  };
  const redacted = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, secretNames.has(k) ? '***' : v]));
  return { env, secretValues, redacted };
}

/** The Parameter Store names and Secrets Manager ids the build's environment reads (which its role must be allowed to read). */
export function referencedValues(build: FakeBuild, spec: Buildspec): { parameters: string[]; secrets: string[] } {
  const vars = build.settings.environment.environmentVariables;
  const parameters = [...Object.values(spec.parameterStore), ...vars.filter((v) => v.type === 'PARAMETER_STORE').map((v) => v.value)];
  const secrets = [...Object.values(spec.secretsManager), ...vars.filter((v) => v.type === 'SECRETS_MANAGER').map((v) => v.value)].map((r) => splitSecretReference(r).id);
  return { parameters: [...new Set(parameters)], secrets: [...new Set(secrets)] };
}

function resolveVar(o: ResolvedOptions, v: EnvVar): string {
  if (v.type === 'PARAMETER_STORE') return parameter(o, v.value);
  if (v.type === 'SECRETS_MANAGER') return secret(o, v.value);
  return v.value;
}

function parameter(o: ResolvedOptions, name: string): string {
  const value = o.parameters[name];
  if (value === undefined) throw new SecretError(`Decrypted Variables Error: parameter does not exist: ${name}`);
  return value;
}

/** A secret by name, or by ARN with or without its random suffix; Secrets Manager and CodeBuild find them alike. */
export function findSecret(secrets: Record<string, string>, id: string): { name: string; value: string | undefined } {
  const name = id.startsWith('arn:') ? id.slice(id.lastIndexOf(':') + 1).replace(/-[A-Za-z0-9]{6}$/, '') : id;
  return { name, value: secrets[id] ?? secrets[name] };
}

/** `secret-id[:json-key[:version-stage[:version-id]]]`, where secret-id may be an ARN (which has colons itself). */
function splitSecretReference(reference: string): { id: string; jsonKey: string } {
  const parts = reference.split(':');
  const idParts = reference.startsWith('arn:') ? 7 : 1;
  return { id: parts.slice(0, idParts).join(':'), jsonKey: parts[idParts] ?? '' };
}

function secret(o: ResolvedOptions, reference: string): string {
  const { id, jsonKey } = splitSecretReference(reference);
  const { value } = findSecret(o.secrets, id);
  if (value === undefined) {
    throw new SecretError("Secrets Manager Error: ResourceNotFoundException: Secrets Manager can't find the specified secret.");
  }
  if (!jsonKey) return value;
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    throw new SecretError(`Secrets Manager Error: secret ${id} is not JSON, cannot read key ${jsonKey}`);
  }
  const field = (doc as Record<string, unknown>)[jsonKey];
  if (field === undefined) throw new SecretError(`Secrets Manager Error: json key ${jsonKey} not found in secret ${id}`);
  return typeof field === 'string' ? field : JSON.stringify(field);
}
