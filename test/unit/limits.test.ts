// AWS's limits that the models do not carry (src/inputs/limits.ts): the fake's copy of the numbers, the job's own
// output at the worst case its input checks allow, each input check, and the check of the whole request.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBuildspec } from '../../src/build/buildspec';
import { requestProblems } from '../../src/build/request-limits';
import { requestVariables } from '../../src/build/variables';
import { AwsLimits, formatCount, JobLimits } from '../../src/inputs/limits';
import { MAX_PLATFORMS } from '../../src/inputs/platforms';
import { collectSettings } from '../../src/inputs/read-settings';
import type { Settings } from '../../src/inputs/settings';
import { FakeLimits } from '../../stack/fake-aws/limits';
import { settingsFixture } from '../helpers/settings-fixture';

const max = AwsLimits.variableValue.max;
const text = (n: number, c = 'a') => c.repeat(n);
/** A name of exactly `n` characters, different for each `i`. */
const named = (prefix: string, i: number, n: number) => `${prefix}${i}`.padEnd(n, 'X');
/** A host of exactly JobLimits.registryHost characters. */
const host = (i: number, suffix = '.example.com') => `${named('r', i, JobLimits.registryHost - suffix.length)}${suffix}`.toLowerCase();

describe('the fake refuses what AWS refuses, with the program’s numbers', () => {
  it('holds the same limits as src/inputs/limits.ts', () => {
    expect(FakeLimits).toEqual({
      variableValue: AwsLimits.variableValue.max,
      inlineBuildspec: AwsLimits.inlineBuildspec.max,
      liveTailSessions: AwsLimits.liveTailSessions.max,
    });
  });

  it('follows every platform with a Live Tail session of its own, within the account’s sessions', () => {
    expect(MAX_PLATFORMS).toBeLessThanOrEqual(AwsLimits.liveTailSessions.max);
  });

  it('are the numbers and sources of the README’s Limits table', () => {
    const readme = fs.readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('\n## Limits\n'), readme.indexOf('\n## Outputs\n'));
    const binary = (n: number) => (n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : formatCount(n));
    for (const limit of Object.values(AwsLimits)) {
      expect(table).toContain(limit.source);
      expect(table, limit.what).toContain(limit === AwsLimits.processEnvironment ? binary(limit.max) : formatCount(limit.max));
    }
    // Each cap as the table words it, so that a cap of 10 is not found inside "1,024".
    const phrases: Record<keyof typeof JobLimits, string> = {
      tags: `${JobLimits.tags} \`tags\``,
      buildArgs: `${JobLimits.buildArgs} build args`,
      variableName: `names of at most ${JobLimits.variableName} characters`,
      registryCredentials: `${JobLimits.registryCredentials} registries in \`registry_credentials\``,
      ecrRegistries: `${JobLimits.ecrRegistries} in \`ecr_registries\``,
      registryHost: `hosts of at most ${JobLimits.registryHost} characters`,
      s3Prefix: `\`s3_prefix\` of at most ${JobLimits.s3Prefix} characters`,
      environmentBytes: `${binary(JobLimits.environmentBytes)} of variables`,
    };
    for (const [name, phrase] of Object.entries(phrases)) expect(table, name).toContain(phrase);
  });

  it('keeps the context’s key (sourceLocationOverride after the bucket) within S3’s key length', () => {
    const key = `${text(JobLimits.s3Prefix, 'p')}/${text(64, 'f')}.zip`;
    expect(Buffer.byteLength(key)).toBeLessThanOrEqual(AwsLimits.s3Key.max);
  });
});

/**
 * Every input at the most the input checks allow: the longest image, cache and BuildKit references, the most tags,
 * build args and registries with the longest names, every option on, and each single value at CodeBuild's limit.
 */
function worstCase(): Settings {
  const repository = (i: number) => `${host(i).slice(0, 200)}/${text(255 - 201, 'p')}`;
  const reference = `${repository(0)}:${text(128, 't')}`;
  const buildArgs = Array.from({ length: JobLimits.buildArgs / 2 }, (_, i) => ({ name: named('ARG', i, JobLimits.variableName), value: text(max) }));
  const secretBuildArgs = Array.from({ length: JobLimits.buildArgs / 2 }, (_, i) => ({
    name: named('SECRET', i, JobLimits.variableName),
    type: 'SECRETS_MANAGER' as const,
    reference: text(max, 's'),
  }));
  const base = settingsFixture();
  return settingsFixture({
    image: { registry: host(0).slice(0, 200), path: text(54, 'p'), name: repository(0) },
    tags: [...Array.from({ length: JobLimits.tags }, (_, i) => named('t', i, 128)), `cbi-inputs-${text(40, 'f')}`],
    dockerfile: text(max, 'd'),
    target: text(max, 'T'),
    platform: text(max, 'P'),
    emulation: true,
    buildArgs,
    secretBuildArgs,
    digestVariable: named('D', 0, JobLimits.variableName),
    registryLogins: Array.from({ length: JobLimits.registryCredentials }, (_, i) => ({
      registry: host(i),
      type: 'SECRETS_MANAGER' as const,
      reference: text(max - ':password'.length, 's'),
      ...(i === 0 ? { jobToken: true as const } : {}),
    })),
    ecrRegistries: Array.from({ length: JobLimits.ecrRegistries + 2 }, (_, i) => ({ registry: host(i, '.amazonaws.com'), region: 'ap-southeast-5' })),
    buildkit: { ...base.buildkit, builder: 'docker-container', buildkitImage: reference, binfmtImage: reference, cacheRef: reference, attestations: true, sbom: true, secretsAs: 'build-arg' },
    gitlab: { ...base.gitlab, ref: text(255, 'b'), pipelineUrl: `https://${host(0)}/${text(255, 'g')}/-/pipelines/1`, jobUrl: `https://${host(0)}/${text(255, 'g')}/-/jobs/1` },
  });
}

describe('the job’s own output at the worst case its inputs allow', () => {
  it('generates a buildspec under 25,600 characters with a fifth to spare', () => {
    const buildspec = generateBuildspec(worstCase());
    expect(buildspec.length).toBeLessThanOrEqual(AwsLimits.inlineBuildspec.max * 0.8);
  });

  it('joins tags, build arg names and registries into variables with an eighth to spare', () => {
    const joined = requestVariables(worstCase()).filter((v) =>
      ['CBI_TAGS', 'CBI_BUILD_ARG_NAMES', 'CBI_LOGIN_REGISTRIES', 'CBI_ECR_REGISTRIES'].includes(v.name ?? ''),
    );
    expect(joined).toHaveLength(4);
    for (const v of joined) expect(v.value?.length, v.name).toBeLessThanOrEqual(max * 0.875);
  });

  it('sends at most a hundred variables, their size within the job’s budget with a third to spare', () => {
    const variables = requestVariables(worstCase(), 'f'.repeat(36));
    const bytes = variables.reduce((sum, v) => sum + Buffer.byteLength(`${v.name}=${v.value}`) + 1, 0);
    expect(variables.length).toBeLessThanOrEqual(100);
    expect(bytes).toBeLessThanOrEqual(JobLimits.environmentBytes * (2 / 3));
  });

  it('so the request check finds nothing to refuse', () => {
    const s = worstCase();
    expect(requestProblems(s)).toEqual([]);
  });
});

describe('the request check names the input a variable comes from', () => {
  it('refuses a value over CodeBuild’s limit, naming its input and the limit', () => {
    const s = settingsFixture({ dockerfile: `${text(max)}/Dockerfile`, registryLogins: [{ registry: 'r.example.com', type: 'PARAMETER_STORE', reference: text(max + 1) }] });
    expect(requestProblems(s)).toEqual([
      { input: 'dockerfile', message: 'makes the CodeBuild variable CBI_DOCKERFILE 4,107 characters long; AWS takes at most 4,096 characters in one CodeBuild environment variable: use fewer or shorter values' },
      { input: 'registry_credentials', message: expect.stringContaining('CBI_LOGIN_CREDENTIAL_0 4,097 characters long') },
    ]);
  });

  it('refuses variables too large together for the build’s processes', () => {
    const buildArgs = Array.from({ length: 130 }, (_, i) => ({ name: `A${i}`, value: text(max) }));
    const s = settingsFixture({ buildArgs });
    expect(requestProblems(s)).toEqual([
      { input: 'build_args', message: expect.stringMatching(/^together with the other inputs comes to 53\d,\d{3} bytes of CodeBuild variables; the job sends at most 524,288, so that every process/) },
    ]);
  });
});

/** A buildspec of 27,044 characters. */
const BIG_BUILDSPEC = `version: 0.2\nphases:\n  build:\n    commands:\n${'      - echo 0123456789012345678901234567890123456789\n'.repeat(500)}`;

describe('the input checks refuse what would cross a limit, naming the input', () => {
  let checkout: string;
  beforeAll(() => {
    checkout = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'limits-')));
    fs.writeFileSync(path.join(checkout, 'Dockerfile'), 'FROM scratch\n');
    fs.writeFileSync(path.join(checkout, 'big.yml'), BIG_BUILDSPEC);
  });
  afterAll(() => fs.rmSync(checkout, { recursive: true, force: true }));

  const problemsOf = (inputs: Record<string, string>) => {
    const env: NodeJS.ProcessEnv = { CI_PROJECT_DIR: checkout, CI_PROJECT_PATH: 'group/app', CI_COMMIT_SHORT_SHA: 'abc1234' };
    const all = { aws_region: 'eu-west-1', project_name: 'builder', s3_bucket: 'bucket', image: 'registry.example.com/app', ...inputs };
    for (const [k, v] of Object.entries(all)) env[`CODEBUILD_IMAGE_${k.toUpperCase()}`] = v;
    return collectSettings(env, checkout).problems;
  };
  const list = (items: string[]) => JSON.stringify(items);

  it.each<[string, Record<string, string>, string, RegExp]>([
    ['a build arg over 4,096 characters', { build_args: list([`NOTES=${text(5000, 'n')}`]) }, 'build_args',
      /^the value of NOTES is 5,000 characters; AWS takes at most 4,096 characters in one CodeBuild environment variable: pass it as a secret build arg \(secret_build_args, from Secrets Manager or Parameter Store\), or in a file of the context$/],
    ['a secret reference over 4,096 characters', { secret_build_args: list([`TOKEN=ssm:/${text(4096)}`]) }, 'secret_build_args', /^TOKEN: the reference is 4,097 characters; AWS takes at most 4,096 characters in one CodeBuild environment variable: give a shorter/],
    ['a build arg name over 64 characters', { build_args: list([`${text(65, 'N')}=1`]) }, 'build_args', /is a build arg name of 65 characters; the job takes at most 64/],
    ['51 build args', { build_args: list(Array.from({ length: 40 }, (_, i) => `A${i}=1`)), secret_build_args: list(Array.from({ length: 11 }, (_, i) => `S${i}=ssm:/p${i}`)) }, 'build_args',
      /^build_args and secret_build_args hold 51 build args; the job passes at most 50 /],
    ['26 tags', { tags: list(Array.from({ length: 26 }, (_, i) => `t${i}`)) }, 'tags', /^lists 26 tags; the job pushes at most 25 /],
    ['11 registries', { registry_credentials: list(Array.from({ length: 11 }, (_, i) => `r${i}.example.com=ssm:/r${i}`)) }, 'registry_credentials', /^logs in to 11 registries; the job logs in to at most 10 /],
    ['a registry host over 255 characters', { registry_credentials: list([`${host(0)}x=ssm:/r`]) }, 'registry_credentials', /is a registry host of 256 characters; the job takes at most 255$/],
    ['11 ECR registries', { ecr_registries: list(Array.from({ length: 11 }, (_, i) => `1234567890${String(i).padStart(2, '0')}.dkr.ecr.eu-west-1.amazonaws.com`)) }, 'ecr_registries', /^lists 11 registries; the job logs in to at most 10 /],
    ['a digest_variable over 64 characters', { digest_variable: text(65, 'D') }, 'digest_variable', /at most 64 characters$/],
    ['a buildspec file over 25,600 characters', { buildspec: 'big.yml' }, 'buildspec', /^big\.yml is 27,044 characters; AWS takes at most 25,600 characters in an inline buildspec \(the job sends it as buildspecOverride\)/],
  ])('%s', (_what, inputs, input, message) => {
    const found = problemsOf(inputs);
    expect(found).toEqual([{ input, message: expect.stringMatching(message) }]);
    expect(found[0]?.message).not.toContain(text(200, 'n'));
  });

  it('takes each list at its cap', () => {
    expect(problemsOf({
      build_args: list(Array.from({ length: 50 }, (_, i) => `${named('A', i, 64)}=${text(max)}`)),
      tags: list(Array.from({ length: 25 }, (_, i) => named('t', i, 128))),
      registry_credentials: list(Array.from({ length: 10 }, (_, i) => `${host(i)}=ssm:/r${i}`)),
      digest_variable: text(64, 'D'),
    })).toEqual([]);
  });
});
