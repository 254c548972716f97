import { randomUUID } from 'node:crypto';
import { FakeBuild, type BuildSettings } from './builds';
import { FakeLimits } from './limits';
import type { EnvVar, ProjectConfig, ResolvedOptions } from './options';
import { AwsError } from './protocol';
import { startRun, type BuildRun, type RunnerDeps } from './runner';

type Input = Record<string, unknown>;

const COMPUTE_TYPES = ['BUILD_GENERAL1_SMALL', 'BUILD_GENERAL1_MEDIUM', 'BUILD_GENERAL1_LARGE', 'BUILD_GENERAL1_XLARGE', 'BUILD_GENERAL1_2XLARGE', 'BUILD_LAMBDA_1GB', 'BUILD_LAMBDA_2GB', 'BUILD_LAMBDA_4GB', 'BUILD_LAMBDA_8GB', 'BUILD_LAMBDA_10GB', 'ATTRIBUTE_BASED_COMPUTE', 'CUSTOM_INSTANCE_TYPE'];
const ENVIRONMENT_TYPES = ['WINDOWS_CONTAINER', 'LINUX_CONTAINER', 'LINUX_GPU_CONTAINER', 'ARM_CONTAINER', 'WINDOWS_SERVER_2019_CONTAINER', 'WINDOWS_SERVER_2022_CONTAINER', 'LINUX_LAMBDA_CONTAINER', 'ARM_LAMBDA_CONTAINER', 'LINUX_EC2', 'ARM_EC2', 'WINDOWS_EC2', 'MAC_ARM'];
const SOURCE_TYPES = ['S3', 'NO_SOURCE'];
const VAR_TYPES = ['PLAINTEXT', 'PARAMETER_STORE', 'SECRETS_MANAGER'];
const CACHE_TYPES = ['NO_CACHE', 'S3', 'LOCAL'];
const CACHE_MODES = ['LOCAL_DOCKER_LAYER_CACHE', 'LOCAL_SOURCE_CACHE', 'LOCAL_CUSTOM_CACHE'];
const FLEET_ARN = /^arn:aws[a-z-]*:codebuild:[a-z0-9-]+:\d{12}:fleet\/[^/\s]+$/;

/** CodeBuild: projects from the options, builds that really run. */
export class CodeBuildService {
  private readonly builds = new Map<string, FakeBuild>();
  private readonly runs = new Map<string, BuildRun>();
  private readonly counters = new Map<string, number>();
  private readonly tokens = new Map<string, { buildId: string; request: string; at: number }>();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly deps: RunnerDeps,
  ) {}

  handle(operation: string, input: Input): unknown {
    switch (operation) {
      case 'StartBuild':
        return { build: this.startBuild(input).toApi() };
      case 'BatchGetBuilds':
        return this.batchGetBuilds(input);
      case 'StopBuild':
        return { build: this.stopBuild(input).toApi() };
      case 'ListBuildsForProject':
        return this.listBuildsForProject(input);
      default:
        throw new AwsError('UnknownOperationException', `Operation ${operation} is not supported by the fake CodeBuild (StartBuild, BatchGetBuilds, StopBuild, ListBuildsForProject).`);
    }
  }

  list(): FakeBuild[] {
    return [...this.builds.values()];
  }

  /** Stops every running build and waits until they are COMPLETED. */
  async stopAll(): Promise<void> {
    for (const run of this.runs.values()) run.stop();
    await Promise.all([...this.runs.values()].map((r) => r.finished));
  }

  private startBuild(input: Input): FakeBuild {
    const projectName = input['projectName'];
    if (typeof projectName !== 'string' || projectName === '') {
      throw new AwsError('InvalidInputException', "1 validation error detected: Value null at 'projectName' failed to satisfy constraint: Member must not be null");
    }
    const project = this.options.projects.find((p) => p.name === projectName);
    if (!project) {
      throw new AwsError('ResourceNotFoundException', `Project cannot be found: arn:aws:codebuild:${this.options.region}:${this.options.account}:project/${projectName}`);
    }
    const token = optionalString(input, 'idempotencyToken');
    const { idempotencyToken: _ignored, ...rest } = input;
    const request = stableJson(rest);
    if (token !== undefined) {
      const seen = this.tokens.get(token);
      if (seen && Date.now() - seen.at < this.options.idempotencyWindowMs) {
        if (seen.request !== request) {
          throw new AwsError('IdempotentParameterMismatchException', 'The request uses the same idempotency token as a previous, but not identical request. Do not reuse idempotency tokens.');
        }
        const build = this.builds.get(seen.buildId);
        if (build) return build;
      }
    }
    const settings = buildSettings(project, input, this.options, token);
    const number = (this.counters.get(projectName) ?? 0) + 1;
    this.counters.set(projectName, number);
    const build = new FakeBuild(`${projectName}:${randomUUID()}`, number, settings, this.options.region, this.options.account);
    this.builds.set(build.id, build);
    if (token !== undefined) this.tokens.set(token, { buildId: build.id, request, at: Date.now() });
    const run = startRun(build, this.deps);
    this.runs.set(build.id, run);
    void run.finished.finally(() => this.runs.delete(build.id));
    return build;
  }

  private batchGetBuilds(input: Input) {
    const ids = input['ids'];
    if (!Array.isArray(ids) || ids.length < 1 || ids.length > 100 || !ids.every((i) => typeof i === 'string')) {
      throw new AwsError('InvalidInputException', "1 validation error detected: Value at 'ids' failed to satisfy constraint: Member must have length between 1 and 100");
    }
    const builds = ids.map((id) => this.builds.get(id)).filter((b): b is FakeBuild => b !== undefined);
    return { builds: builds.map((b) => b.toApi()), buildsNotFound: ids.filter((id) => !this.builds.has(id)) };
  }

  /** Newest first by default, 100 ids a page, like AWS; the next page's token is the offset. */
  private listBuildsForProject(input: Input) {
    const projectName = optionalString(input, 'projectName') ?? '';
    if (!this.options.projects.some((p) => p.name === projectName)) {
      throw new AwsError('ResourceNotFoundException', `Project cannot be found: arn:aws:codebuild:${this.options.region}:${this.options.account}:project/${projectName}`);
    }
    const order = enumValue(input, 'sortOrder', ['ASCENDING', 'DESCENDING']) ?? 'DESCENDING';
    const ids = [...this.builds.values()].filter((b) => b.settings.projectName === projectName).sort((a, b) => a.buildNumber - b.buildNumber).map((b) => b.id);
    if (order === 'DESCENDING') ids.reverse();
    const start = Number(optionalString(input, 'nextToken') ?? '0');
    if (!Number.isInteger(start) || start < 0) throw new AwsError('InvalidInputException', 'Invalid nextToken');
    const page = ids.slice(start, start + 100);
    return { ids: page, ...(start + 100 < ids.length ? { nextToken: String(start + 100) } : {}) };
  }

  private stopBuild(input: Input): FakeBuild {
    const id = optionalString(input, 'id') ?? '';
    const build = this.builds.get(id);
    if (!build) throw new AwsError('ResourceNotFoundException', `Build ${id} does not exist`);
    // Like AWS, the answer still shows the build in progress; it turns STOPPED shortly after.
    this.runs.get(id)?.stop();
    return build;
  }
}

function buildSettings(project: ProjectConfig, input: Input, o: ResolvedOptions, token: string | undefined): BuildSettings {
  const sourceType = enumValue(input, 'sourceTypeOverride', SOURCE_TYPES) ?? project.source?.type ?? 'NO_SOURCE';
  const location = optionalString(input, 'sourceLocationOverride') ?? project.source?.location;
  const override = optionalString(input, 'buildspecOverride');
  const buildspec = override ?? project.source?.buildspec;
  if ((override ?? '').length > FakeLimits.inlineBuildspec) {
    // AWS's own wording for this limit is not published; this follows its message for a variable's value.
    throw new AwsError('InvalidInputException', `Buildspec should be at most ${FakeLimits.inlineBuildspec} characters`);
  }
  if (sourceType === 'S3' && !location) throw new AwsError('InvalidInputException', 'Source location is required for S3 source type');
  if (sourceType === 'NO_SOURCE' && !buildspec) throw new AwsError('InvalidInputException', 'Buildspec must not be empty for NO_SOURCE');
  const timeout = intInRange(input, 'timeoutInMinutesOverride', 5, 2160) ?? project.timeoutInMinutes ?? 60;
  const queued = intInRange(input, 'queuedTimeoutInMinutesOverride', 5, 480) ?? project.queuedTimeoutInMinutes ?? 480;
  const privileged = input['privilegedModeOverride'];
  if (privileged !== undefined && typeof privileged !== 'boolean') throw new AwsError('SerializationException', 'privilegedModeOverride must be a boolean');
  const sourceVersion = optionalString(input, 'sourceVersion');
  const cache = cacheOverride(input, privileged ?? project.environment?.privilegedMode ?? false);
  const fleet = input['fleetOverride'] === undefined ? undefined : fleetOverride(input['fleetOverride']);
  return {
    ...(cache ? { cache } : {}),
    ...(fleet ? { fleet } : {}),
    projectName: project.name,
    source: { type: sourceType, ...(location ? { location } : {}), ...(buildspec ? { buildspec } : {}) },
    ...(sourceVersion === undefined ? {} : { sourceVersion }),
    environment: {
      type: enumValue(input, 'environmentTypeOverride', ENVIRONMENT_TYPES) ?? project.environment?.type ?? 'LINUX_CONTAINER',
      image: optionalString(input, 'imageOverride') ?? project.environment?.image ?? 'aws/codebuild/amazonlinux-x86_64-standard:5.0',
      computeType: enumValue(input, 'computeTypeOverride', COMPUTE_TYPES) ?? project.environment?.computeType ?? 'BUILD_GENERAL1_SMALL',
      privilegedMode: privileged ?? project.environment?.privilegedMode ?? false,
      environmentVariables: mergeVars(project.environment?.environmentVariables ?? [], envOverrides(input)),
    },
    timeoutInMinutes: timeout,
    queuedTimeoutInMinutes: queued,
    serviceRole: optionalString(input, 'serviceRoleOverride') ?? project.serviceRole ?? `arn:aws:iam::${o.account}:role/service-role/codebuild-${project.name}-service-role`,
    logGroupName: logGroupOverride(input) ?? project.logGroupName ?? `/aws/codebuild/${project.name}`,
    logGroupNamed: (logGroupOverride(input) ?? project.logGroupName) !== undefined,
    ...(token === undefined ? {} : { idempotencyToken: token }),
  };
}

/** cacheOverride as CodeBuild validates it; LOCAL_DOCKER_LAYER_CACHE needs privileged mode. */
function cacheOverride(input: Input, privileged: boolean): BuildSettings['cache'] {
  const raw = input['cacheOverride'];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null) throw new AwsError('SerializationException', 'cacheOverride must be a structure');
  const cache = raw as Input;
  const type = enumValue(cache, 'type', CACHE_TYPES);
  if (!type) throw new AwsError('InvalidInputException', 'cacheOverride.type is required');
  const modes = cache['modes'] ?? [];
  if (!Array.isArray(modes) || !modes.every((m) => CACHE_MODES.includes(String(m)))) {
    throw new AwsError('InvalidInputException', `cacheOverride.modes must be a list of ${CACHE_MODES.join(', ')}`);
  }
  if (type === 'LOCAL' && modes.length === 0) throw new AwsError('InvalidInputException', 'Cache modes are required for LOCAL cache type');
  if (modes.includes('LOCAL_DOCKER_LAYER_CACHE') && !privileged) {
    throw new AwsError('InvalidInputException', 'LOCAL_DOCKER_LAYER_CACHE requires privileged mode');
  }
  return { type, modes: modes.map(String) };
}

function fleetOverride(raw: unknown): BuildSettings['fleet'] {
  const arn = typeof raw === 'object' && raw !== null ? (raw as Input)['fleetArn'] : undefined;
  if (typeof arn !== 'string' || !FLEET_ARN.test(arn)) throw new AwsError('InvalidInputException', 'fleetOverride.fleetArn must be a fleet ARN');
  return { fleetArn: arn };
}

/** logsConfigOverride's CloudWatch Logs group, where the build then logs (as its role must be allowed to). */
function logGroupOverride(input: Input): string | undefined {
  const logs = input['logsConfigOverride'];
  const cloudWatch = typeof logs === 'object' && logs !== null ? (logs as Input)['cloudWatchLogs'] : undefined;
  return typeof cloudWatch === 'object' && cloudWatch !== null ? optionalString(cloudWatch as Input, 'groupName') : undefined;
}

function envOverrides(input: Input): EnvVar[] {
  const raw = input['environmentVariablesOverride'];
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new AwsError('SerializationException', 'environmentVariablesOverride must be a list');
  return raw.map((v: unknown, i) => {
    const e = v as Record<string, unknown>;
    if (typeof e['name'] !== 'string' || e['name'] === '' || typeof e['value'] !== 'string') {
      throw new AwsError('InvalidInputException', `Invalid environment variable at index ${i}: name (non-empty) and value are required`);
    }
    const type = e['type'] ?? 'PLAINTEXT';
    if (typeof type !== 'string' || !VAR_TYPES.includes(type)) {
      throw new AwsError('InvalidInputException', `Invalid environment variable type ${String(type)} for ${e['name']}; valid: ${VAR_TYPES.join(', ')}`);
    }
    if (e['value'].length > FakeLimits.variableValue) {
      throw new AwsError('InvalidInputException', `EnvironmentVariable should be at most ${FakeLimits.variableValue} characters`);
    }
    if (e['name'].startsWith('CODEBUILD_')) {
      throw new AwsError('InvalidInputException', `Invalid environment variable: ${e['name']}. Environment variable name prefix 'CODEBUILD_' is reserved`);
    }
    return { name: e['name'], value: e['value'], type: type as EnvVar['type'] & string };
  });
}

function mergeVars(project: EnvVar[], overrides: EnvVar[]): EnvVar[] {
  const byName = new Map<string, EnvVar>();
  for (const v of [...project, ...overrides]) byName.set(v.name, { ...v, type: v.type ?? 'PLAINTEXT' });
  return [...byName.values()];
}

function optionalString(input: Input, key: string): string | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new AwsError('SerializationException', `${key} must be a string`);
  return v;
}

function enumValue(input: Input, key: string, allowed: string[]): string | undefined {
  const v = optionalString(input, key);
  if (v !== undefined && !allowed.includes(v)) {
    throw new AwsError('InvalidInputException', `1 validation error detected: Value '${v}' at '${key}' failed to satisfy constraint: Member must satisfy enum value set: [${allowed.join(', ')}]`);
  }
  return v;
}

function intInRange(input: Input, key: string, min: number, max: number): number | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new AwsError('InvalidInputException', `1 validation error detected: Value '${String(v)}' at '${key}' failed to satisfy constraint: Member must have value between ${min} and ${max}`);
  }
  return v;
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stableJson((value as Input)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
