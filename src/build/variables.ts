/**
 * The environment variables StartBuild carries: those the generated buildspec reads (BuildEnv), the GitLab job's,
 * and the job marker. No AWS SDK code, so the request can be checked (request-limits.ts) before the SDK loads.
 */
import type { EnvironmentVariable } from '@aws-sdk/client-codebuild';
import { BuildEnv } from './buildspec';
import type { Settings } from '../inputs/settings';

/**
 * A variable every build carries with a value unique to the job run that started it (see START_FILE in
 * report/files.ts): `stop` finds the build by it when the job died before StartBuild answered.
 */
export const JOB_MARKER_VARIABLE = 'CBI_JOB_MARKER';

/** Variables describing the GitLab job, for buildspecs that want to label images or log provenance. */
function gitlabVariables(s: Settings): EnvironmentVariable[] {
  const j = s.gitlab;
  const vars: [string, string | undefined][] = [
    ['GITLAB_COMMIT_SHA', j.commitSha],
    ['GITLAB_REF', j.ref],
    ['GITLAB_PROJECT_PATH', j.projectPath],
    ['GITLAB_PIPELINE_URL', j.pipelineUrl],
    ['GITLAB_JOB_URL', j.jobUrl],
  ];
  return vars.flatMap(([name, value]) => (value ? [plain(name, value)] : []));
}

function plain(name: string, value: string): EnvironmentVariable {
  return { name, value, type: 'PLAINTEXT' };
}

/**
 * The variables the generated buildspec reads (see BuildEnv). A user buildspec gets them too.
 * Empty optional values are left out: the buildspec treats unset and empty alike.
 */
function buildVariables(s: Settings): EnvironmentVariable[] {
  const args = [
    ...s.buildArgs.filter((a) => a.value !== '').map((a) => plain(BuildEnv.buildArgPrefix + a.name, a.value)),
    // CodeBuild resolves these in the build container; the secret never passes through this job.
    ...s.secretBuildArgs.map((a) => ({ name: BuildEnv.buildArgPrefix + a.name, value: a.reference, type: a.type })),
  ];
  const bk = s.buildkit;
  const asSecrets = bk.secretsAs === 'secret';
  const names = [...s.buildArgs, ...(asSecrets ? [] : s.secretBuildArgs)].map((a) => a.name).join(' ');
  const secretNames = asSecrets ? s.secretBuildArgs.map((a) => a.name).join(' ') : '';
  const vars: EnvironmentVariable[] = [
    plain(BuildEnv.image, s.image.name),
    plain(BuildEnv.registry, s.image.registry),
    plain(BuildEnv.tags, s.tags.join(' ')),
    plain(BuildEnv.dockerfile, s.dockerfile),
    plain(BuildEnv.digestVariable, s.digestVariable),
    plain(BuildEnv.builder, bk.builder),
    // Provenance (mode=max) records build-arg values: secrets passed as build args keep it off.
    plain(BuildEnv.attestations, String(bk.attestations && (asSecrets || s.secretBuildArgs.length === 0))),
    plain(BuildEnv.sbom, String(bk.sbom)),
  ];
  if (bk.buildkitImage) vars.push(plain(BuildEnv.buildkitImage, bk.buildkitImage));
  if (s.emulation) vars.push(plain(BuildEnv.emulation, 'true'));
  if (bk.binfmtImage) vars.push(plain(BuildEnv.binfmtImage, bk.binfmtImage));
  if (bk.cacheRef) vars.push(plain(BuildEnv.cacheRef, bk.cacheRef));
  if (secretNames) vars.push(plain(BuildEnv.secretNames, secretNames));
  if (s.ecrRegistries.length > 0) vars.push(plain(BuildEnv.ecrRegistries, s.ecrRegistries.map((r) => `${r.region}=${r.registry}`).join(' ')));
  if (s.target) vars.push(plain(BuildEnv.target, s.target));
  if (s.platform) vars.push(plain(BuildEnv.platform, s.platform));
  if (names) vars.push(plain(BuildEnv.buildArgNames, names));
  return [...vars, ...args, ...loginVariables(s)];
}

/** Registry credentials as references only: CodeBuild resolves them in the build container. */
function loginVariables(s: Settings): EnvironmentVariable[] {
  if (s.registryLogins.length === 0) return [];
  const jobToken = s.registryLogins.find((l) => l.jobToken);
  return [
    plain(BuildEnv.loginRegistries, s.registryLogins.map((l) => l.registry).join(' ')),
    ...(jobToken ? [plain(BuildEnv.jobTokenRegistry, jobToken.registry)] : []),
    ...s.registryLogins.flatMap((l, i): EnvironmentVariable[] =>
      l.type === 'SECRETS_MANAGER'
        ? [
            { name: `${BuildEnv.loginUserPrefix}${i}`, value: `${l.reference}:username`, type: l.type },
            { name: `${BuildEnv.loginPasswordPrefix}${i}`, value: `${l.reference}:password`, type: l.type },
          ]
        : [{ name: `${BuildEnv.loginCredentialPrefix}${i}`, value: l.reference, type: l.type }],
    ),
  ];
}

/** Every variable of the build's StartBuild request, in the order it sends them. */
export function requestVariables(s: Settings, marker?: string): EnvironmentVariable[] {
  return [...buildVariables(s), ...gitlabVariables(s), ...(marker ? [plain(JOB_MARKER_VARIABLE, marker)] : [])];
}
