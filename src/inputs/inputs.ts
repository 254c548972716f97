/**
 * Reads and validates every input before any network call. All problems are collected and thrown
 * together as one InputError, so a user fixes the job in one round trip.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  bucketNameProblems,
  COMPUTE_TYPES,
  ecrRegistry,
  ENVIRONMENT_TYPES,
  FLEET_ARN,
  jobTokenParameter,
  parseRoleArn,
  partitionOf,
  PROJECT_NAME,
  regionProblem,
  S3_PREFIX_CHARS,
  SECRET_REFERENCE,
} from './aws-names';
import { dirInside, fileInside, isInside, NOT_UTF8, realDir, toPosix } from './checkout-paths';
import { parseImageReference, parseImageRepository, parseRegistry, PLATFORM, STAGE_NAME, TAG } from './docker-reference';
import { InputError, type InputProblem } from '../shared/errors';
import { idTokenProblem } from './id-token';
import type { BuildArg, Builder, BuildKitSettings, GitLabJob, ImageRepository, PlatformBuild, RegistryLogin, SecretBuildArg, Settings } from './settings';
import { shown } from '../shared/shown';

/**
 * Template input names; input `foo_bar` arrives as `CODEBUILD_IMAGE_FOO_BAR`.
 * Adding an input: name it here, give Settings (settings.ts) a documented field, and fill that field in
 * collectSettings with a reader below (readPattern, readChoice, readInteger, readList cover most inputs).
 */
export const Inputs = {
  AwsRegion: 'aws_region',
  RoleArn: 'role_arn',
  IdTokenVariable: 'id_token_variable',
  OidcAudience: 'oidc_audience',
  SessionDuration: 'session_duration',
  ProjectName: 'project_name',
  S3Bucket: 's3_bucket',
  S3Prefix: 's3_prefix',
  Context: 'context',
  Dockerfile: 'dockerfile',
  Target: 'target',
  Platform: 'platform',
  BuildArgs: 'build_args',
  SecretBuildArgs: 'secret_build_args',
  Image: 'image',
  Tags: 'tags',
  ComputeType: 'compute_type',
  BuildImage: 'build_image',
  EnvironmentType: 'environment_type',
  BuildTimeout: 'build_timeout',
  QueuedTimeout: 'queued_timeout',
  Buildspec: 'buildspec',
  DigestVariable: 'digest_variable',
  DotenvPrefix: 'dotenv_prefix',
  ReportDir: 'report_dir',
  Builder: 'builder',
  BuildkitImage: 'buildkit_image',
  Cache: 'cache',
  CacheRef: 'cache_ref',
  Attestations: 'attestations',
  Sbom: 'sbom',
  SecretBuildArgsAs: 'secret_build_args_as',
  LocalLayerCache: 'local_layer_cache',
  FleetArn: 'fleet_arn',
  Platforms: 'platforms',
  PlatformProjects: 'platform_projects',
  Emulation: 'emulation',
  BinfmtImage: 'binfmt_image',
  SkipUnchanged: 'skip_unchanged',
  RegistryCredentials: 'registry_credentials',
  EcrRegistries: 'ecr_registries',
} as const;
export type InputName = (typeof Inputs)[keyof typeof Inputs];

export function envVarName(input: InputName): string {
  return `CODEBUILD_IMAGE_${input.toUpperCase()}`;
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const BUILDERS = ['containerd-store', 'docker-container', 'docker'] as const;

/** Collects problems; checks return a placeholder on failure since nothing is returned when any exist. */
class Problems {
  readonly list: InputProblem[] = [];
  add(input: InputName, message: string): void {
    this.list.push({ input, message });
  }
}

/** Every input, read and checked; throws one InputError listing every problem. */
export function readSettings(env: NodeJS.ProcessEnv, cwd: string): Settings {
  const { settings, problems } = collectSettings(env, cwd);
  if (problems.length > 0) throw new InputError(problems);
  return settings;
}

/** Every input, read and checked; when `problems` is not empty, `settings` holds placeholders where they are. */
export function collectSettings(env: NodeJS.ProcessEnv, cwd: string): { settings: Settings; problems: InputProblem[] } {
  const p = new Problems();
  const get = (input: InputName): string => (env[envVarName(input)] ?? '').trim();
  const gitlab = readGitLabJob(env);

  const region = readRegion(p, get(Inputs.AwsRegion), env);
  const roleArn = get(Inputs.RoleArn);
  const role = readRoleArn(p, roleArn, region);
  const idTokenVariable = get(Inputs.IdTokenVariable) || 'GITLAB_OIDC_TOKEN';
  const idToken = readIdToken(p, env, idTokenVariable, roleArn, get(Inputs.OidcAudience));
  // Bucket and image defaults come from the role's account and the region; null means one of them is
  // invalid, which is already reported, so the defaults are silently skipped.
  const account = roleArn && (!role || regionProblem(region)) ? null : role?.account;

  const checkout = realDir(cwd, env.CI_PROJECT_DIR?.trim() || cwd);
  if (!checkout) {
    const dir = env.CI_PROJECT_DIR || cwd;
    p.add(Inputs.Context, `the checkout directory ${shown(dir)} (CI_PROJECT_DIR) does not exist${dir.includes('\uFFFD') ? `: ${NOT_UTF8}` : ''}`);
  }
  const buildspec = readBuildspec(p, get(Inputs.Buildspec), checkout);
  const contextDir = readContext(p, get(Inputs.Context) || '.', checkout);
  const dockerfile = readDockerfile(p, get(Inputs.Dockerfile) || 'Dockerfile', contextDir, buildspec !== undefined);

  const buildArgs = readBuildArgs(p, get(Inputs.BuildArgs));
  const secretBuildArgs = readSecretBuildArgs(p, get(Inputs.SecretBuildArgs));
  const seen = new Set<string>();
  for (const { name } of [...buildArgs, ...secretBuildArgs]) {
    if (seen.has(name)) p.add(Inputs.BuildArgs, `build arg ${name} is given more than once (build_args and secret_build_args share one namespace); keep one`);
    seen.add(name);
  }

  const image = readImage(p, get(Inputs.Image), account, region, gitlab.projectPath);
  const projectName = readProjectName(p, get(Inputs.ProjectName));
  const platforms = readPlatforms(p, get, projectName, buildspec === undefined);
  const buildkit = readBuildKit(p, get, image, platforms.emulation);
  // The repositories the build pushes to: the image's and the cache's.
  const cache = buildkit.cacheRef ? parseImageReference(buildkit.cacheRef) : undefined;
  const pushedTo = [image, ...(cache && !('problem' in cache) ? [cache] : [])];
  const settings: Settings = {
    region,
    roleArn: role?.arn,
    idTokenVariable,
    idToken,
    oidcAudience: get(Inputs.OidcAudience) || gitlab.serverUrl,
    sessionDuration: readInteger(p, Inputs.SessionDuration, get(Inputs.SessionDuration) || '3600', 900, 43200, 'seconds') ?? 3600,
    projectName,
    s3Bucket: readBucket(p, get(Inputs.S3Bucket), account, region),
    s3Prefix: readS3Prefix(p, get(Inputs.S3Prefix) || 'contexts'),
    contextDir,
    dockerfile,
    target: readPattern(p, Inputs.Target, get(Inputs.Target), STAGE_NAME, 'a Dockerfile stage name (FROM … AS <name>)'),
    platform: platforms.platform,
    platformBuilds: platforms.builds,
    emulation: platforms.emulation,
    buildArgs,
    secretBuildArgs,
    image,
    registryLogins: readRegistryLogins(p, get(Inputs.RegistryCredentials), gitlab, pushedTo),
    ecrRegistries: readEcrRegistries(p, get(Inputs.EcrRegistries), pushedTo),
    tags: readTags(p, get(Inputs.Tags), env.CI_COMMIT_SHORT_SHA?.trim()),
    buildspec: buildspec?.path,
    buildspecText: buildspec?.text,
    digestVariable: readPattern(p, Inputs.DigestVariable, get(Inputs.DigestVariable) || 'IMAGE_DIGEST', VARIABLE_NAME, 'a variable name such as IMAGE_DIGEST') ?? '',
    computeType: readChoice(p, Inputs.ComputeType, get(Inputs.ComputeType), COMPUTE_TYPES),
    buildImage: readPattern(p, Inputs.BuildImage, get(Inputs.BuildImage), /^\S+$/, 'a CodeBuild image name without spaces, e.g. aws/codebuild/standard:7.0'),
    environmentType: readChoice(p, Inputs.EnvironmentType, get(Inputs.EnvironmentType), ENVIRONMENT_TYPES),
    buildTimeout: readTimeout(p, Inputs.BuildTimeout, get(Inputs.BuildTimeout), 2160),
    queuedTimeout: readTimeout(p, Inputs.QueuedTimeout, get(Inputs.QueuedTimeout), 480),
    reportDir: readReportDir(p, get(Inputs.ReportDir) || '.codebuild-image', checkout),
    buildkit,
    skipUnchanged: readBoolean(p, Inputs.SkipUnchanged, get(Inputs.SkipUnchanged), false),
    localLayerCache: readBoolean(p, Inputs.LocalLayerCache, get(Inputs.LocalLayerCache), false),
    fleetArn: readPattern(p, Inputs.FleetArn, get(Inputs.FleetArn), FLEET_ARN, 'a CodeBuild fleet ARN, arn:aws:codebuild:<region>:<account>:fleet/<name>'),
    dotenvPrefix: readPattern(p, Inputs.DotenvPrefix, get(Inputs.DotenvPrefix), /^[A-Z_][A-Z0-9_]*$/, 'upper-case letters, digits and _, not starting with a digit, e.g. API_') ?? '',
    checkoutDir: checkout ?? '',
    gitlab,
  };
  if (settings.skipUnchanged && settings.buildspec !== undefined) {
    p.add(Inputs.SkipUnchanged, 'works with the generated buildspec only (a custom buildspec may push anything): clear buildspec or skip_unchanged');
  }
  if (settings.platformBuilds.length > 0) {
    const perProject = [[Inputs.EnvironmentType, settings.environmentType], [Inputs.BuildImage, settings.buildImage], [Inputs.FleetArn, settings.fleetArn]] as const;
    for (const [input, value] of perProject) {
      if (value) p.add(input, "applies to every platform's build: leave it empty with platforms, each platform's project has its own");
    }
  }
  return { settings, problems: p.list };
}

export function readGitLabJob(env: NodeJS.ProcessEnv): GitLabJob {
  const v = (name: string) => env[name]?.trim() || undefined;
  return {
    serverUrl: v('CI_SERVER_URL'),
    apiUrl: v('CI_API_V4_URL'),
    projectPath: v('CI_PROJECT_PATH'),
    projectId: v('CI_PROJECT_ID'),
    registry: v('CI_REGISTRY'),
    pipelineId: v('CI_PIPELINE_ID'),
    pipelineUrl: v('CI_PIPELINE_URL'),
    jobId: v('CI_JOB_ID'),
    jobUrl: v('CI_JOB_URL'),
    jobName: v('CI_JOB_NAME'),
    commitSha: v('CI_COMMIT_SHA'),
    ref: v('CI_COMMIT_REF_NAME'),
    jobToken: v('CI_JOB_TOKEN'),
  };
}

// ---- AWS identity ----

/** aws_region, or else AWS_REGION, or else AWS_DEFAULT_REGION; a problem says which one the value came from. */
function readRegion(p: Problems, given: string, env: NodeJS.ProcessEnv): string {
  const fallback = ['AWS_REGION', 'AWS_DEFAULT_REGION'].find((name) => env[name]?.trim());
  const region = given || (fallback && env[fallback]?.trim()) || '';
  if (!region) p.add(Inputs.AwsRegion, 'is required: set aws_region (or AWS_REGION) to the region of the CodeBuild project, e.g. eu-west-1');
  const problem = region && regionProblem(region);
  if (problem) p.add(Inputs.AwsRegion, given || !fallback ? problem : `${problem} (the value comes from ${fallback}, since aws_region is empty)`);
  return region;
}

function readRoleArn(p: Problems, arn: string, region: string): { arn: string; account: string } | undefined {
  if (!arn) return undefined;
  const role = parseRoleArn(arn);
  if (!role) {
    p.add(Inputs.RoleArn, `${shown(arn)} is not an IAM role ARN; use the form arn:aws:iam::<12-digit account>:role/<name>`);
    return undefined;
  }
  const expected = partitionOf(region);
  if (expected && role.partition !== expected) {
    p.add(Inputs.RoleArn, `${shown(arn)} is in partition ${role.partition} but region ${shown(region)} is in ${expected}; use arn:${expected}:iam::…`);
  }
  return { arn, account: role.account };
}

/** The token is checked against oidc_audience only when that input is given (the template always gives it). */
function readIdToken(p: Problems, env: NodeJS.ProcessEnv, variable: string, roleArn: string, audience: string): string | undefined {
  if (!VARIABLE_NAME.test(variable)) {
    p.add(Inputs.IdTokenVariable, `${shown(variable)} is not a variable name; use the name of the job's id_tokens entry, e.g. GITLAB_OIDC_TOKEN`);
    return undefined;
  }
  // Without role_arn the token is unused: the template always asks for one, and an empty role_arn means
  // "use the runner's own AWS credentials" (instance profile, IRSA, environment keys).
  const token = (roleArn && env[variable]?.trim()) || undefined;
  if (!token && roleArn) {
    p.add(Inputs.IdTokenVariable, `$${variable} is empty, so role ${shown(roleArn)} cannot be assumed: add \`id_tokens: ${variable}: {aud: …}\` to the job, or clear role_arn to use the runner's AWS credentials`);
  }
  // Never echo the token: only what is wrong with it is reported.
  const problem = token && idTokenProblem(token, audience || undefined);
  if (problem) p.add(Inputs.IdTokenVariable, `$${variable} ${problem}`);
  return token;
}

// ---- CodeBuild ----

function readProjectName(p: Problems, name: string): string {
  if (!name) p.add(Inputs.ProjectName, 'is required: set it to the name of the shared CodeBuild project');
  else if (!PROJECT_NAME.test(name)) p.add(Inputs.ProjectName, `${shown(name)} is not a CodeBuild project name (2–255 characters: letters, digits, _ and -, starting with a letter or digit)`);
  return name;
}

function readChoice(p: Problems, input: InputName, value: string, choices: string[], orElse = "leave it empty to use the project's setting"): string | undefined {
  if (!value) return undefined;
  if (!choices.includes(value)) p.add(input, `${shown(value)} is not one of ${choices.join(', ')}; ${orElse}`);
  return value;
}

function readInteger(p: Problems, input: InputName, raw: string, min: number, max: number, unit: string, orElse = ''): number | undefined {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) {
    p.add(input, `${shown(raw)} is not a whole number of ${unit} between ${min} and ${max}${orElse}`);
    return undefined;
  }
  return n;
}

function readTimeout(p: Problems, input: InputName, raw: string, max: number): number | undefined {
  if (raw === '' || raw === '0') return undefined;
  return readInteger(p, input, raw, 5, max, 'minutes', ", or 0 for the project's setting");
}

function readBoolean(p: Problems, input: InputName, raw: string, fallback: boolean): boolean {
  if (raw === '') return fallback;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  p.add(input, `${shown(raw)} is not true or false`);
  return fallback;
}

function readPattern(p: Problems, input: InputName, value: string, pattern: RegExp, expected: string): string | undefined {
  if (!value) return undefined;
  if (!pattern.test(value)) p.add(input, `${shown(value)} is not valid; expected ${expected}`);
  return value;
}

// ---- S3 ----

function readBucket(p: Problems, given: string, account: string | null | undefined, region: string): string {
  if (!given && account === null) return '';
  const name = given || (account && region ? `codebuild-image-${account}-${region}` : '');
  if (!name) {
    p.add(Inputs.S3Bucket, 'is required when role_arn is not set (the default codebuild-image-<account>-<region> comes from the role\'s account)');
    return '';
  }
  const problems = bucketNameProblems(name);
  if (problems.length > 0) {
    const what = given ? shown(name) : `the default bucket name ${shown(name)}`;
    p.add(Inputs.S3Bucket, `${what} is not a valid S3 bucket name: it ${problems.join('; ')}`);
  }
  return name;
}

function readS3Prefix(p: Problems, raw: string): string {
  // A trailing / is the usual way to write a prefix; a leading one would start every key with an empty segment.
  const prefix = raw.replace(/\/+$/g, '');
  const segments = prefix === '' ? [] : prefix.split('/');
  if (prefix.startsWith('/')) p.add(Inputs.S3Prefix, `${shown(raw)} starts with /, but S3 keys do not: use ${shown(prefix.replace(/^\/+/, '') || 'contexts')}`);
  else if (!S3_PREFIX_CHARS.test(prefix)) p.add(Inputs.S3Prefix, `${shown(raw)} may contain only letters, digits, / and !_.*'()-`);
  else if (segments.some((s) => s === '' || s === '.' || s === '..')) p.add(Inputs.S3Prefix, `${shown(raw)} must not contain empty, . or .. path segments`);
  else if (prefix.length > 900) p.add(Inputs.S3Prefix, `is ${prefix.length} characters long; keep it under 900`);
  return prefix;
}

// ---- files in the checkout ----

function readContext(p: Problems, given: string, checkout: string | undefined): string {
  if (!checkout) return '';
  const r = dirInside(checkout, given);
  if ('real' in r) return r.real;
  p.add(Inputs.Context, `${r.problem}; give a directory of the checkout, relative to it`);
  return '';
}

/** The POSIX path, relative to `root`, of the file `given` names inside `root`; undefined after adding a problem. */
function readFileInside(p: Problems, input: InputName, root: string, given: string, fix: string): string | undefined {
  const r = fileInside(root, given);
  if ('real' in r) return toPosix(path.relative(root, r.real));
  p.add(input, r.problem.endsWith('is not a file') ? r.problem : `${r.problem}; ${fix}`);
  return undefined;
}

function readDockerfile(p: Problems, given: string, contextDir: string, userBuildspec: boolean): string {
  const normalized = path.posix.normalize(toPosix(given));
  if (userBuildspec || !contextDir) return normalized;
  return readFileInside(p, Inputs.Dockerfile, contextDir, given, 'give the Dockerfile path relative to the context directory') ?? normalized;
}

/** The user's buildspec: its path relative to the checkout and its text, checked to be a YAML buildspec (the content is theirs). */
function readBuildspec(p: Problems, given: string, checkout: string | undefined): { path: string; text: string } | undefined {
  if (!given) return undefined;
  const file = checkout && readFileInside(p, Inputs.Buildspec, checkout, given, 'give a file of the repository, relative to its root');
  if (!checkout || !file) return { path: given, text: '' };
  const problem = (message: string) => {
    p.add(Inputs.Buildspec, message);
    return { path: file, text: '' };
  };
  let text: string;
  try {
    text = fs.readFileSync(path.join(checkout, file), 'utf8');
  } catch (e) {
    return problem(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    return problem(`${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || !('version' in doc) || !('phases' in doc)) {
    return problem(`${file} is not a CodeBuild buildspec (it needs "version" and "phases")`);
  }
  return { path: file, text };
}

function readReportDir(p: Problems, given: string, checkout: string | undefined): string {
  if (!checkout) return given;
  const dir = path.resolve(checkout, given);
  // GitLab only collects artifacts from inside the project directory.
  if (!isInside(checkout, dir) || dir === checkout) p.add(Inputs.ReportDir, `${shown(given)} must be a subdirectory of the checkout ${shown(checkout)}`);
  return dir;
}

// ---- lists ----

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

function readList(p: Problems, input: InputName, raw: string): string[] | undefined {
  const r = parseList(raw);
  if ('problem' in r) p.add(input, r.problem);
  return 'items' in r ? r.items : undefined;
}

function readPlatform(p: Problems, raw: string, generatedBuildspec: boolean): string | undefined {
  if (!raw) return undefined;
  const list = raw.split(',').map((s) => s.trim());
  const bad = list.filter((s) => !PLATFORM.test(s));
  if (bad.length > 0) p.add(Inputs.Platform, `${bad.map((b) => shown(b)).join(', ')} is not os/arch[/variant], e.g. linux/amd64 or linux/arm64`);
  // The generated buildspec runs `docker build`, which builds one platform; a custom buildspec may use buildx.
  else if (list.length > 1 && generatedBuildspec) {
    p.add(Inputs.Platform, `${shown(raw)} names ${list.length} platforms: list them in platforms instead, which builds each natively and joins them in one image index`);
  }
  return list.join(',');
}

/** Platforms a GitLab dotenv report can name one digest variable each for, within its 20 variables. */
const MAX_PLATFORMS = 8;

/**
 * `platform` (one platform, or a BuildKit list for a custom buildspec) or `platforms`: several platforms are built
 * natively, one build each on the project `platform_projects` maps them to (by default as infra/ makes them:
 * `<project>` for linux/amd64, `<project>-arm64` for linux/arm64), or with `emulation` in one build through QEMU.
 */
function readPlatforms(
  p: Problems,
  get: (input: InputName) => string,
  projectName: string,
  generatedBuildspec: boolean,
): { platform: string | undefined; builds: PlatformBuild[]; emulation: boolean } {
  const single = readPlatform(p, get(Inputs.Platform), generatedBuildspec);
  const list = [...new Set(readList(p, Inputs.Platforms, get(Inputs.Platforms)) ?? [])];
  const emulation = readBoolean(p, Inputs.Emulation, get(Inputs.Emulation), false);
  const none = { platform: single, builds: [], emulation: false };
  const bad = list.filter((s) => !PLATFORM.test(s));
  if (bad.length > 0) {
    p.add(Inputs.Platforms, `${bad.map((b) => shown(b)).join(', ')} is not os/arch[/variant], e.g. linux/amd64 or linux/arm64`);
    return none;
  }
  if (list.length > 0 && single) p.add(Inputs.Platforms, 'is given together with platform: give one of them');
  if (list.length > MAX_PLATFORMS) p.add(Inputs.Platforms, `names ${list.length} platforms; at most ${MAX_PLATFORMS} fit the dotenv report`);
  if (list.length <= 1) return { ...none, platform: single ?? list[0] };
  if (!generatedBuildspec) {
    p.add(Inputs.Platforms, 'with more than one platform needs the generated buildspec: clear buildspec, or build each platform in a job of its own');
    return none;
  }
  if (emulation) return { platform: list.join(','), builds: [], emulation: true };
  const projects = new Map([['linux/amd64', projectName], ['linux/arm64', `${projectName}-arm64`]]);
  for (const item of readList(p, Inputs.PlatformProjects, get(Inputs.PlatformProjects)) ?? []) {
    const [platform = '', project = ''] = item.split('=', 2);
    if (!PLATFORM.test(platform) || !PROJECT_NAME.test(project)) {
      p.add(Inputs.PlatformProjects, `${shown(item)} is not <os/arch>=<CodeBuild project>, e.g. linux/arm64=image-builder-arm64`);
    } else projects.set(platform, project);
  }
  const builds = list.map((platform) => ({ platform, projectName: projects.get(platform) ?? '' }));
  for (const b of builds.filter((x) => !x.projectName)) {
    p.add(Inputs.PlatformProjects, `names no project that builds ${b.platform} natively: add ${b.platform}=<project>, or set emulation: true to build it through QEMU`);
  }
  return { platform: undefined, builds, emulation: false };
}

function readBuildArgs(p: Problems, raw: string): BuildArg[] {
  const args: BuildArg[] = [];
  for (const [i, item] of (readList(p, Inputs.BuildArgs, raw) ?? []).entries()) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    if (eq < 0 || !VARIABLE_NAME.test(name)) p.add(Inputs.BuildArgs, `item ${i + 1} ${shown(item)} is not KEY=VALUE with KEY made of letters, digits and _`);
    else if (/[\r\n\0]/.test(value)) p.add(Inputs.BuildArgs, `the value of ${name} contains a line break or NUL; pass multi-line data in a file of the context`);
    else args.push({ name, value });
  }
  return args;
}

function readSecretBuildArgs(p: Problems, raw: string): SecretBuildArg[] {
  const args: SecretBuildArg[] = [];
  const usage = 'KEY=secretsmanager:<secret-id[:json-key[:stage[:version]]]> or KEY=ssm:<parameter-name>';
  const neverAValue =
    'if that is a secret value, remove it now: a secret never belongs in an input (pipeline configuration and job logs keep it). ' +
    'Store it in Parameter Store (aws ssm put-parameter --type SecureString --name /ci/KEY --value …) or Secrets Manager ' +
    '(aws secretsmanager create-secret --name ci/KEY --secret-string …), give the job\'s role read access, and write KEY=ssm:/ci/KEY or KEY=secretsmanager:ci/KEY';
  // Items are never echoed: a user may have pasted a secret value instead of a reference.
  for (const [i, item] of (readList(p, Inputs.SecretBuildArgs, raw) ?? []).entries()) {
    const eq = item.indexOf('=');
    const name = item.slice(0, Math.max(eq, 0));
    const value = item.slice(eq + 1);
    const source = /^(secretsmanager|ssm):(.*)$/.exec(value);
    if (eq < 0 || !VARIABLE_NAME.test(name)) p.add(Inputs.SecretBuildArgs, `item ${i + 1} is not ${usage}; ${neverAValue}`);
    else if (!source) p.add(Inputs.SecretBuildArgs, `${name} must be ${usage}; ${neverAValue}`);
    else if (!SECRET_REFERENCE.test(source[2] ?? '')) p.add(Inputs.SecretBuildArgs, `${name}: the reference after ${source[1]}: must be a non-empty secret id or parameter name without spaces`);
    else args.push({ name, type: source[1] === 'ssm' ? 'PARAMETER_STORE' : 'SECRETS_MANAGER', reference: source[2] ?? '' });
  }
  return args;
}

function readTags(p: Problems, raw: string, shortSha: string | undefined): string[] {
  const listed = readList(p, Inputs.Tags, raw);
  if (!listed) return [];
  const tags = listed.length > 0 ? listed : shortSha ? [shortSha] : [];
  if (tags.length === 0) p.add(Inputs.Tags, 'needs at least one tag, e.g. ["$CI_COMMIT_SHORT_SHA"]');
  for (const tag of tags) {
    if (TAG.test(tag)) continue;
    const hint = tag.includes('$') ? ' (a CI/CD variable was not expanded; check its name)' : '';
    p.add(Inputs.Tags, `${shown(tag)} is not a Docker tag: 1–128 of letters, digits, _ . -, not starting with . or -${hint}`);
  }
  return [...new Set(tags)];
}

// ---- image ----

function readImage(p: Problems, given: string, account: string | null | undefined, region: string, projectPath: string | undefined): ImageRepository {
  const placeholder: ImageRepository = { registry: '', path: '', name: '' };
  let ref = given;
  if (!ref && account === null) return placeholder;
  if (!ref) {
    if (!account || !region || !projectPath) {
      p.add(Inputs.Image, 'is required when role_arn or CI_PROJECT_PATH is missing (the default <account>.dkr.ecr.<region>.amazonaws.com/<project path> comes from them)');
      return placeholder;
    }
    ref = `${ecrRegistry(account, region)}/${projectPath.toLowerCase()}`;
  }
  const r = parseImageRepository(ref);
  if ('problem' in r) {
    p.add(Inputs.Image, given ? `${shown(ref)} ${r.problem}` : `the default image ${shown(ref)} ${r.problem}; set image explicitly`);
    return placeholder;
  }
  return r;
}

// ---- registries ----

const REGISTRY_CREDENTIALS_USAGE = 'REGISTRY=secretsmanager:<secret-id> (a secret {"username","password"}) or REGISTRY=ssm:<parameter> (username:password)';

/**
 * The logins of registry_credentials, plus GitLab's registry with the job token when the image or the cache is
 * there and no item names it. Items are echoed only up to the `=`: a user may have pasted a password instead of a
 * reference.
 */
function readRegistryLogins(p: Problems, raw: string, job: GitLabJob, pushedTo: ImageRepository[]): RegistryLogin[] {
  const logins: RegistryLogin[] = [];
  for (const [i, item] of (readList(p, Inputs.RegistryCredentials, raw) ?? []).entries()) {
    const eq = item.indexOf('=');
    const host = item.slice(0, Math.max(eq, 0));
    // As docker tells a registry from a repository name: a dot, a port or localhost (a bare word may be a password).
    const registry = /[.:]/.test(host) || host === 'localhost' ? parseRegistry(host) : undefined;
    const source = /^(secretsmanager|ssm):(.*)$/.exec(item.slice(eq + 1));
    const reference = source?.[2] ?? '';
    if (eq < 0 || !registry) {
      p.add(Inputs.RegistryCredentials, `item ${i + 1} is not ${REGISTRY_CREDENTIALS_USAGE}, with REGISTRY a host such as registry.gitlab.com`);
    } else if (registry.ecr) {
      p.add(Inputs.RegistryCredentials, `${registry.registry} is an ECR registry, which the build role logs in to: remove it here and list it in ecr_registries when no image or cache names it`);
    } else if (logins.some((l) => l.registry === registry.registry)) {
      p.add(Inputs.RegistryCredentials, `${registry.registry} is given more than once; keep one`);
    } else if (item.slice(eq + 1) === 'job-token') {
      const login = gitlabRegistryLogin(job, registry.registry);
      if (typeof login === 'string') p.add(Inputs.RegistryCredentials, `${registry.registry}=job-token: ${login}`);
      else logins.push(login);
    } else if (!source) {
      p.add(Inputs.RegistryCredentials, `${registry.registry} must be ${REGISTRY_CREDENTIALS_USAGE}, or job-token for this GitLab's registry; a password never belongs in an input: store it in Secrets Manager or Parameter Store and give its name`);
    } else if (!SECRET_REFERENCE.test(reference) || (source[1] === 'secretsmanager' && reference.split(':').length !== (reference.startsWith('arn:') ? 7 : 1))) {
      p.add(Inputs.RegistryCredentials, `${registry.registry}: after ${source[1]}: give a secret name or ARN, or a parameter name, without spaces or json keys (the secret's username and password keys are read)`);
    } else {
      logins.push({ registry: registry.registry, type: source[1] === 'ssm' ? 'PARAMETER_STORE' : 'SECRETS_MANAGER', reference });
    }
  }
  const gitlab = job.registry;
  if (gitlab && pushedTo.some((r) => r.registry === gitlab) && !logins.some((l) => l.registry === gitlab)) {
    const login = gitlabRegistryLogin(job, gitlab);
    // Outside a GitLab job (no job token) the build goes on without a login and says what to set if refused.
    if (typeof login !== 'string') logins.push(login);
  }
  return logins;
}

/** A login to GitLab's registry with the job token, or why there cannot be one. */
function gitlabRegistryLogin(job: GitLabJob, registry: string): RegistryLogin | string {
  if (!job.registry) return 'CI_REGISTRY is not set: job-token works in a GitLab job of a GitLab with its container registry enabled';
  if (registry !== job.registry) return `the job token works only for this GitLab's registry, ${shown(job.registry)} (CI_REGISTRY); give secretsmanager: or ssm: credentials for ${registry}`;
  if (!job.jobToken || !job.jobId || !job.projectId) return 'CI_JOB_TOKEN, CI_JOB_ID or CI_PROJECT_ID is not set: job-token works in a GitLab job only';
  return { registry, type: 'PARAMETER_STORE', reference: jobTokenParameter(job.projectId, job.jobId), jobToken: true };
}

/** ECR registries named by the image, the cache or ecr_registries (base images in other accounts' registries). */
function readEcrRegistries(p: Problems, raw: string, pushedTo: ImageRepository[]): { registry: string; region: string }[] {
  const found = new Map<string, string>();
  for (const repo of pushedTo) if (repo.ecr) found.set(repo.registry, repo.ecr.region);
  for (const host of readList(p, Inputs.EcrRegistries, raw) ?? []) {
    const registry = parseRegistry(host);
    if (registry?.ecr) found.set(registry.registry, registry.ecr.region);
    else p.add(Inputs.EcrRegistries, `${shown(host)} is not an ECR registry host, <account>.dkr.ecr.<region>.amazonaws.com; other registries go in registry_credentials`);
  }
  return [...found].map(([registry, region]) => ({ registry, region }));
}

// ---- BuildKit ----

function readBuildKit(p: Problems, get: (input: InputName) => string, image: ImageRepository, emulation: boolean): BuildKitSettings {
  const builder = (readChoice(p, Inputs.Builder, get(Inputs.Builder), [...BUILDERS], 'leave it empty for containerd-store') ?? 'containerd-store') as Builder;
  const buildkitImage = get(Inputs.BuildkitImage) || undefined;
  if (buildkitImage && 'problem' in parseImageReference(buildkitImage)) {
    p.add(Inputs.BuildkitImage, `${shown(buildkitImage)} is not an image reference such as <registry>/moby/buildkit:v0.26.2`);
  }
  if (builder === 'docker-container' && !buildkitImage) {
    p.add(Inputs.BuildkitImage, 'is required with builder docker-container: name a moby/buildkit image your builds can pull without Docker Hub\'s anonymous limit, e.g. through an ECR pull-through cache (<account>.dkr.ecr.<region>.amazonaws.com/docker-hub/moby/buildkit:v0.26.2)');
  }
  const cache = readBoolean(p, Inputs.Cache, get(Inputs.Cache), true);
  let cacheRef: string | undefined;
  if (cache) {
    const given = get(Inputs.CacheRef);
    cacheRef = given || (image.name ? `${image.name}:buildcache` : undefined);
    if (given && 'problem' in parseImageReference(given)) {
      p.add(Inputs.CacheRef, `${shown(given)} is not an image reference with a tag, e.g. ${image.name || '<registry>/<repository>'}:buildcache`);
    }
  }
  const secretsAs = readChoice(p, Inputs.SecretBuildArgsAs, get(Inputs.SecretBuildArgsAs), ['secret', 'build-arg'], 'leave it empty for secret') ?? 'secret';
  const binfmtImage = get(Inputs.BinfmtImage) || undefined;
  if (binfmtImage && 'problem' in parseImageReference(binfmtImage)) {
    p.add(Inputs.BinfmtImage, `${shown(binfmtImage)} is not an image reference such as <registry>/tonistiigi/binfmt:qemu-v9.2.2`);
  }
  return {
    builder,
    buildkitImage,
    binfmtImage: emulation ? binfmtImage : undefined,
    cacheRef,
    attestations: readBoolean(p, Inputs.Attestations, get(Inputs.Attestations), true),
    sbom: readBoolean(p, Inputs.Sbom, get(Inputs.Sbom), false),
    secretsAs: secretsAs as BuildKitSettings['secretsAs'],
  };
}
