/**
 * Reads and validates every input before any network call: Settings assembled from the readers of the other
 * inputs/ modules, plus the checks across inputs. All problems are collected and thrown together as one
 * InputError, so a user fixes the job in one round trip.
 */
import { COMPUTE_TYPES, ENVIRONMENT_TYPES, FLEET_ARN, KMS_KEY_ARN, regionProblem } from './aws-names';
import { readBucket, readIdToken, readProjectName, readRegion, readRoleArn, readS3Prefix } from './aws-inputs';
import { readBuildArgs, readSecretBuildArgs } from './build-args';
import { readBuildKit } from './buildkit';
import { NOT_UTF8, realDir } from './checkout-paths';
import { parseImageReference, STAGE_NAME } from './docker-reference';
import { readBuildspec, readContext, readDockerfile, readReportDir } from './files';
import { readGitLabJob } from './gitlab-job';
import { readImage, readTags } from './image';
import { JobLimits } from './limits';
import { envVarName, type InputName, Inputs } from './names';
import { readPlatforms } from './platforms';
import { Problems, readBoolean, readChoice, readInteger, readPattern, readTimeout } from './problems';
import { readEcrRegistries, readRegistryLogins } from './registries';
import type { Settings } from './settings';
import { InputError, type InputProblem } from '../shared/errors';
import { networkProblems } from '../shared/network-env';
import { shown } from '../shared/shown';

/** digest_variable: a variable name (VARIABLE_NAME) of at most JobLimits.variableName characters. */
const DIGEST_VARIABLE = new RegExp(`^[A-Za-z_][A-Za-z0-9_]{0,${JobLimits.variableName - 1}}$`);

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
  if (seen.size > JobLimits.buildArgs) {
    p.add(Inputs.BuildArgs, `build_args and secret_build_args hold ${seen.size} build args; the job passes at most ${JobLimits.buildArgs} (their names travel together in one CodeBuild variable): put related values in one file of the context`);
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
    digestVariable: readPattern(p, Inputs.DigestVariable, get(Inputs.DigestVariable) || 'IMAGE_DIGEST', DIGEST_VARIABLE, `a variable name such as IMAGE_DIGEST, at most ${JobLimits.variableName} characters`) ?? '',
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
    signWith: readPattern(p, Inputs.SignWith, get(Inputs.SignWith), KMS_KEY_ARN, 'a KMS key ARN, arn:aws:kms:<region>:<account>:key/<id>, or alias ARN, arn:aws:kms:<region>:<account>:alias/<name>'),
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
  return { settings, problems: [...p.list, ...networkProblems(env)] };
}
