/**
 * The StartBuild request checked against AWS's limits (inputs/limits.ts) before anything is sent: each variable's
 * value and the variables' total size. The input readers refuse what they can name best (a build arg's value, the
 * buildspec file and its length, list lengths); this catches what only the whole request shows, naming the input
 * a variable comes from. Every build's request is checked (each platform's has its own tag and cache reference),
 * with the tag skip_unchanged adds. The generated buildspec fits at the worst case the inputs allow
 * (test/unit/limits.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { BuildEnv } from './buildspec';
import { buildTargets } from './targets';
import { requestVariables } from './variables';
import { atMost, AwsLimits, formatCount, JobLimits } from '../inputs/limits';
import { type InputName, Inputs } from '../inputs/names';
import type { Settings } from '../inputs/settings';
import type { InputProblem } from '../shared/errors';

/** The input each variable of BuildEnv comes from; GITLAB_* come from GitLab's CI_* variables. */
const SOURCES: Partial<Record<string, InputName>> = {
  [BuildEnv.image]: Inputs.Image,
  [BuildEnv.registry]: Inputs.Image,
  [BuildEnv.tags]: Inputs.Tags,
  [BuildEnv.dockerfile]: Inputs.Dockerfile,
  [BuildEnv.target]: Inputs.Target,
  [BuildEnv.platform]: Inputs.Platform,
  [BuildEnv.buildArgNames]: Inputs.BuildArgs,
  [BuildEnv.secretNames]: Inputs.SecretBuildArgs,
  [BuildEnv.ecrRegistries]: Inputs.EcrRegistries,
  [BuildEnv.loginRegistries]: Inputs.RegistryCredentials,
  [BuildEnv.jobTokenRegistry]: Inputs.RegistryCredentials,
  [BuildEnv.cacheRef]: Inputs.CacheRef,
  [BuildEnv.buildkitImage]: Inputs.BuildkitImage,
  [BuildEnv.binfmtImage]: Inputs.BinfmtImage,
  [BuildEnv.digestVariable]: Inputs.DigestVariable,
};

function sourceOf(name: string, s: Settings): string {
  if (name.startsWith(BuildEnv.buildArgPrefix)) {
    const arg = name.slice(BuildEnv.buildArgPrefix.length);
    return s.secretBuildArgs.some((a) => a.name === arg) ? Inputs.SecretBuildArgs : Inputs.BuildArgs;
  }
  if (name.startsWith('CBI_LOGIN_')) return Inputs.RegistryCredentials;
  return SOURCES[name] ?? name;
}

/** Problems of the request the settings make, each naming its input; none when it fits. */
export function requestProblems(s: Settings): InputProblem[] {
  // skip_unchanged adds `cbi-inputs-<40 hex>` to the tags once the context's digest is known.
  const tags = s.skipUnchanged ? [...s.tags, `cbi-inputs-${'0'.repeat(40)}`] : s.tags;
  const problems = buildTargets({ ...s, tags }).flatMap((t) => variableProblems(t.settings));
  // The platforms' requests share most variables: each problem once.
  return [...new Map(problems.map((p) => [`${p.input}: ${p.message}`, p])).values()];
}

function variableProblems(s: Settings): InputProblem[] {
  const problems: InputProblem[] = [];
  const variables = requestVariables(s, randomUUID());
  for (const { name = '', value = '' } of variables) {
    if (value.length <= AwsLimits.variableValue.max) continue;
    problems.push({
      input: sourceOf(name, s),
      message: `makes the CodeBuild variable ${name} ${formatCount(value.length)} characters long; AWS takes ${atMost(AwsLimits.variableValue)}: use fewer or shorter values`,
    });
  }
  // As the build's processes hold them: NAME=value and a terminating NUL each.
  const bytes = variables.reduce((sum, v) => sum + Buffer.byteLength(`${v.name ?? ''}=${v.value ?? ''}`) + 1, 0);
  if (bytes > JobLimits.environmentBytes) {
    problems.push({
      input: Inputs.BuildArgs,
      message: `together with the other inputs comes to ${formatCount(bytes)} bytes of CodeBuild variables; the job sends at most ${formatCount(JobLimits.environmentBytes)}, so that every process of the build can start (Linux takes ${atMost(AwsLimits.processEnvironment)}): put large values in files of the context`,
    });
  }
  return problems;
}
