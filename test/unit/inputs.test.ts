import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/shared/errors';
import { bucketNameProblems } from '../../src/inputs/aws-names';
import { parseImageRepository } from '../../src/inputs/docker-reference';
import { envVarName, Inputs } from '../../src/inputs/names';
import { parseList } from '../../src/inputs/problems';
import { readSettings } from '../../src/inputs/read-settings';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
const BUILDSPEC = 'version: 0.2\nphases:\n  build:\n    commands: [make]\n';
let checkout: string;

beforeAll(() => {
  checkout = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'inputs-')));
  fs.writeFileSync(path.join(checkout, 'Dockerfile'), 'FROM scratch\n');
  fs.mkdirSync(path.join(checkout, 'app/docker'), { recursive: true });
  fs.writeFileSync(path.join(checkout, 'app/docker/Dockerfile.prod'), 'FROM scratch\n');
  fs.writeFileSync(path.join(checkout, 'buildspec.yml'), BUILDSPEC);
  fs.writeFileSync(path.join(checkout, 'notes.yml'), 'hello: world\n');
  fs.writeFileSync(path.join(checkout, 'broken.yml'), 'version: [0.2\n');
  fs.symlinkSync(os.tmpdir(), path.join(checkout, 'escape'));
  fs.symlinkSync('/etc/hostname', path.join(checkout, 'app/Dockerfile.link'));
});
afterAll(() => fs.rmSync(checkout, { recursive: true, force: true }));

function env(inputs: Record<string, string> = {}, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    CI_PROJECT_DIR: checkout,
    CI_PROJECT_PATH: 'Group/Sub/My-App',
    CI_SERVER_URL: 'https://gitlab.example.com',
    CI_COMMIT_SHORT_SHA: 'abc1234',
    CI_JOB_ID: '42',
    GITLAB_OIDC_TOKEN: TOKEN,
    ...extra,
  };
  const defaults = { aws_region: 'eu-west-1', role_arn: 'arn:aws:iam::123456789012:role/ci/builder', project_name: 'shared-builder' };
  for (const [k, v] of Object.entries({ ...defaults, ...inputs })) e[`CODEBUILD_IMAGE_${k.toUpperCase()}`] = v;
  return e;
}

function problems(e: NodeJS.ProcessEnv): { input: string; message: string }[] {
  try {
    readSettings(e, checkout);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as InputError).problems;
  }
  throw new Error('expected an InputError');
}

describe('readSettings: valid inputs', () => {
  it('derives bucket and ECR image from role_arn and region', () => {
    const s = readSettings(env(), checkout);
    expect(s).toMatchObject({
      region: 'eu-west-1',
      roleArn: 'arn:aws:iam::123456789012:role/ci/builder',
      idTokenVariable: 'GITLAB_OIDC_TOKEN',
      idToken: TOKEN,
      oidcAudience: 'https://gitlab.example.com',
      sessionDuration: 3600,
      s3Bucket: 'codebuild-image-123456789012-eu-west-1',
      s3Prefix: 'contexts',
      contextDir: checkout,
      dockerfile: 'Dockerfile',
      tags: ['abc1234'],
      digestVariable: 'IMAGE_DIGEST',
      dotenvPrefix: '',
      buildArgs: [],
      secretBuildArgs: [],
      buildTimeout: undefined,
      queuedTimeout: undefined,
      reportDir: path.join(checkout, '.codebuild-image'),
    });
    expect(s.image).toEqual({
      registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
      path: 'group/sub/my-app',
      name: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/group/sub/my-app',
      ecr: { account: '123456789012', region: 'eu-west-1' },
    });
  });

  it('reads every explicit input', () => {
    const s = readSettings(
      env({
        s3_bucket: 'my.bucket-1',
        s3_prefix: 'ci/contexts/',
        context: 'app',
        dockerfile: 'docker/Dockerfile.prod',
        target: 'runtime',
        platform: 'linux/arm64/v8',
        build_args: '["A=1","B=x=y","EMPTY="]',
        secret_build_args: 'NPM_TOKEN=secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-AbCdEf:token\nPIP=ssm:/ci/pip',
        image: 'registry.example.com:5000/team/app',
        tags: '["v1.2.3","latest","latest"]',
        compute_type: 'BUILD_GENERAL1_LARGE',
        build_image: 'aws/codebuild/standard:7.0',
        environment_type: 'ARM_CONTAINER',
        build_timeout: '60',
        queued_timeout: '0',
        session_duration: '7200',
        digest_variable: 'API_DIGEST',
        dotenv_prefix: 'API_',
        report_dir: 'out/reports',
        oidc_audience: 'sts.amazonaws.com',
      }),
      checkout,
    );
    expect(s).toMatchObject({
      s3Bucket: 'my.bucket-1',
      s3Prefix: 'ci/contexts',
      contextDir: path.join(checkout, 'app'),
      dockerfile: 'docker/Dockerfile.prod',
      target: 'runtime',
      platform: 'linux/arm64/v8',
      buildArgs: [
        { name: 'A', value: '1' },
        { name: 'B', value: 'x=y' },
        { name: 'EMPTY', value: '' },
      ],
      secretBuildArgs: [
        { name: 'NPM_TOKEN', type: 'SECRETS_MANAGER', reference: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-AbCdEf:token' },
        { name: 'PIP', type: 'PARAMETER_STORE', reference: '/ci/pip' },
      ],
      image: { registry: 'registry.example.com:5000', path: 'team/app', name: 'registry.example.com:5000/team/app' },
      tags: ['v1.2.3', 'latest'],
      computeType: 'BUILD_GENERAL1_LARGE',
      environmentType: 'ARM_CONTAINER',
      buildTimeout: 60,
      queuedTimeout: undefined,
      sessionDuration: 7200,
      digestVariable: 'API_DIGEST',
      dotenvPrefix: 'API_',
      reportDir: path.join(checkout, 'out/reports'),
      oidcAudience: 'sts.amazonaws.com',
    });
    expect(s.image.ecr).toBeUndefined();
  });

  it('uses the default credential chain without a token, with explicit bucket and image', () => {
    const s = readSettings(
      env({ role_arn: '', s3_bucket: 'bucket', image: 'localhost:5000/app' }, { GITLAB_OIDC_TOKEN: '' }),
      checkout,
    );
    expect(s.roleArn).toBeUndefined();
    expect(s.idToken).toBeUndefined();
  });

  it('ignores the OIDC token when role_arn is empty, so the runner’s own credentials are used', () => {
    // The template always requests a token; an empty role_arn still selects the default chain.
    const s = readSettings(env({ role_arn: '', s3_bucket: 'bucket', image: 'localhost:5000/app' }), checkout);
    expect(s.roleArn).toBeUndefined();
    expect(s.idToken).toBeUndefined();
  });

  it('falls back to AWS_REGION then AWS_DEFAULT_REGION', () => {
    expect(readSettings(env({ aws_region: '' }, { AWS_REGION: 'us-east-2', AWS_DEFAULT_REGION: 'us-west-1' }), checkout).region).toBe('us-east-2');
    expect(readSettings(env({ aws_region: '' }, { AWS_DEFAULT_REGION: 'us-west-1' }), checkout).region).toBe('us-west-1');
  });

  it('uses cwd when CI_PROJECT_DIR is unset', () => {
    const e = env({ context: 'app', dockerfile: 'docker/Dockerfile.prod' });
    delete e.CI_PROJECT_DIR;
    expect(readSettings(e, checkout).contextDir).toBe(path.join(checkout, 'app'));
  });

  it('derives .com.cn names in China regions', () => {
    const s = readSettings(env({ aws_region: 'cn-north-1', role_arn: 'arn:aws-cn:iam::123456789012:role/b' }), checkout);
    expect(s.image.name).toBe('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/group/sub/my-app');
    expect(s.image.ecr).toEqual({ account: '123456789012', region: 'cn-north-1' });
  });

  it('skips the Dockerfile check when a buildspec is given', () => {
    const s = readSettings(env({ buildspec: './buildspec.yml', dockerfile: 'missing/Dockerfile' }), checkout);
    expect(s.buildspec).toBe('buildspec.yml');
    expect(s.buildspecText).toBe(BUILDSPEC);
    expect(s.dockerfile).toBe('missing/Dockerfile');
  });
});

describe('readSettings: invalid inputs name the input', () => {
  it.each<[string, Record<string, string>, Record<string, string>, string, string]>([
    ['missing region', { aws_region: '' }, {}, 'aws_region', 'is required'],
    ['availability zone', { aws_region: 'eu-west-1a' }, {}, 'aws_region', 'use the region eu-west-1'],
    ['bad region', { aws_region: 'Europe' }, {}, 'aws_region', '"Europe"'],
    ['region name in the wrong case', { aws_region: 'EU-WEST-1' }, {}, 'aws_region', 'not an AWS region name'],
    ['role name only', { role_arn: 'builder' }, {}, 'role_arn', 'arn:aws:iam::<12-digit account>:role/<name>'],
    ['assumed-role ARN', { role_arn: 'arn:aws:sts::123456789012:assumed-role/x/y' }, {}, 'role_arn', 'not an IAM role ARN'],
    ['partition mismatch', { aws_region: 'cn-north-1' }, {}, 'role_arn', 'arn:aws-cn:iam'],
    ['role without token', {}, { GITLAB_OIDC_TOKEN: '' }, 'id_token_variable', 'is empty'],
    ['token variable name', { id_token_variable: 'MY-TOKEN' }, {}, 'id_token_variable', '"MY-TOKEN"'],
    ['session too short', { session_duration: '600' }, {}, 'session_duration', 'between 900 and 43200'],
    ['session not a number', { session_duration: '1h' }, {}, 'session_duration', '"1h"'],
    ['missing project', { project_name: '' }, {}, 'project_name', 'is required'],
    ['project with space', { project_name: 'my project' }, {}, 'project_name', '"my project"'],
    ['bucket upper case', { s3_bucket: 'My-Bucket' }, {}, 's3_bucket', 'lower case'],
    ['bucket too short', { s3_bucket: 'ab' }, {}, 's3_bucket', '3–63'],
    ['bucket adjacent dots', { s3_bucket: 'a..b' }, {}, 's3_bucket', 'adjacent dots'],
    ['bucket IP', { s3_bucket: '192.168.1.1' }, {}, 's3_bucket', 'IP address'],
    ['bucket xn--', { s3_bucket: 'xn--bucket' }, {}, 's3_bucket', 'xn--'],
    ['bucket -s3alias', { s3_bucket: 'bucket-s3alias' }, {}, 's3_bucket', '-s3alias'],
    ['bucket --ol-s3', { s3_bucket: 'bucket--ol-s3' }, {}, 's3_bucket', '--ol-s3'],
    ['bucket ends with hyphen', { s3_bucket: 'bucket-' }, {}, 's3_bucket', 'start and end'],
    ['bucket underscore', { s3_bucket: 'my_bucket' }, {}, 's3_bucket', 'dots and hyphens'],
    ['no bucket without role', { role_arn: '', image: 'r.io/a' }, { GITLAB_OIDC_TOKEN: '' }, 's3_bucket', 'is required'],
    ['prefix ..', { s3_prefix: 'a/../b' }, {}, 's3_prefix', '..'],
    ['prefix chars', { s3_prefix: 'a b' }, {}, 's3_prefix', '"a b"'],
    ['prefix with a leading /', { s3_prefix: '/contexts' }, {}, 's3_prefix', 'starts with /, but S3 keys do not: use "contexts"'],
    ['unknown region', { aws_region: 'eu-wset-1' }, {}, 'aws_region', 'did you mean eu-west-1?'],
    ['unknown region from AWS_REGION', { aws_region: '' }, { AWS_REGION: 'eu-wset-1' }, 'aws_region', 'comes from AWS_REGION, since aws_region is empty'],
    ['secret value pasted', { secret_build_args: 'NPM_TOKEN=npm_abc123' }, {}, 'secret_build_args', 'a secret never belongs in an input'],
    ['secret value pasted without a name', { secret_build_args: 'npm_abc123' }, {}, 'secret_build_args', 'Parameter Store'],
    ['context missing', { context: 'nope' }, {}, 'context', '"nope" does not exist'],
    ['context outside', { context: '..' }, {}, 'context', 'outside'],
    ['context symlink out', { context: 'escape' }, {}, 'context', 'outside'],
    ['context is a file', { context: 'Dockerfile' }, {}, 'context', 'not a directory'],
    ['checkout missing', {}, { CI_PROJECT_DIR: '/nonexistent/checkout' }, 'context', 'checkout directory'],
    ['dockerfile missing', { dockerfile: 'Dockerfile.dev' }, {}, 'dockerfile', '"Dockerfile.dev" does not exist'],
    ['dockerfile outside context', { context: 'app', dockerfile: '../Dockerfile' }, {}, 'dockerfile', 'outside'],
    ['dockerfile symlink out', { context: 'app', dockerfile: 'Dockerfile.link' }, {}, 'dockerfile', 'outside'],
    ['dockerfile is a dir', { dockerfile: 'app' }, {}, 'dockerfile', 'not a file'],
    ['buildspec missing', { buildspec: 'ci/buildspec.yml' }, {}, 'buildspec', 'does not exist'],
    ['buildspec outside', { buildspec: '/etc/hostname' }, {}, 'buildspec', 'outside'],
    ['buildspec not a buildspec', { buildspec: 'notes.yml' }, {}, 'buildspec', 'not a CodeBuild buildspec'],
    ['buildspec not YAML', { buildspec: 'broken.yml' }, {}, 'buildspec', 'broken.yml is not valid YAML'],
    ['target', { target: '1stage' }, {}, 'target', '"1stage"'],
    ['platform', { platform: 'amd64' }, {}, 'platform', '"amd64"'],
    ['platform list with the generated buildspec', { platform: 'linux/amd64,linux/arm64' }, {}, 'platform', 'list them in platforms instead'],
    ['image tag', { image: 'r.io/team/app:1.0' }, {}, 'image', 'list tags in `tags`'],
    ['image tag no registry', { image: 'app:1.0' }, {}, 'image', 'list tags in `tags`'],
    ['image digest', { image: `r.io/app@sha256:${'a'.repeat(64)}` }, {}, 'image', 'digest'],
    ['image upper case', { image: 'r.io/Team/app' }, {}, 'image', 'lower case'],
    ['image bad registry', { image: '-r.io/app' }, {}, 'image', 'registry "-r.io"'],
    ['image double separator', { image: 'r.io/a..b' }, {}, 'image', '"a..b"'],
    ['no image without role', { role_arn: '', s3_bucket: 'b-1' }, { GITLAB_OIDC_TOKEN: '' }, 'image', 'is required'],
    ['default image invalid', {}, { CI_PROJECT_PATH: 'g/-bad' }, 'image', 'set image explicitly'],
    ['tag with space', { tags: '["a b"]' }, {}, 'tags', '"a b"'],
    ['tag too long', { tags: 'x'.repeat(129) }, {}, 'tags', 'not a Docker tag'],
    ['tag starting with dot', { tags: '.x' }, {}, 'tags', '".x"'],
    ['unexpanded variable', { tags: '["$CI_COMMIT_TAG"]' }, {}, 'tags', 'not expanded'],
    ['no tags', { tags: '[]' }, { CI_COMMIT_SHORT_SHA: '' }, 'tags', 'at least one'],
    ['tags malformed JSON', { tags: '["a",' }, {}, 'tags', 'not a valid JSON array'],
    ['tags number', { tags: '[1.1]' }, {}, 'tags', 'quote it'],
    ['build arg without =', { build_args: 'FOO' }, {}, 'build_args', '"FOO" is not KEY=VALUE'],
    ['build arg bad key', { build_args: '1X=a' }, {}, 'build_args', '"1X=a"'],
    ['build arg newline', { build_args: JSON.stringify(['A=x\ny']) }, {}, 'build_args', 'line break'],
    ['duplicate build arg', { build_args: 'A=1\nA=2' }, {}, 'build_args', 'A is given more than once'],
    ['build arg also secret', { build_args: 'A=1', secret_build_args: 'A=ssm:/a' }, {}, 'build_args', 'more than once'],
    ['secret arg source', { secret_build_args: 'TOKEN=vault:x' }, {}, 'secret_build_args', 'TOKEN must be'],
    ['secret arg empty ref', { secret_build_args: 'TOKEN=ssm:' }, {}, 'secret_build_args', 'non-empty'],
    ['compute type', { compute_type: 'BUILD_GENERAL1_HUGE' }, {}, 'compute_type', 'BUILD_GENERAL1_SMALL'],
    ['environment type', { environment_type: 'WINDOWS_CONTAINER' }, {}, 'environment_type', 'LINUX_CONTAINER'],
    ['build image space', { build_image: 'aws/codebuild standard' }, {}, 'build_image', 'without spaces'],
    ['build timeout low', { build_timeout: '4' }, {}, 'build_timeout', 'between 5 and 2160'],
    ['build timeout high', { build_timeout: '2161' }, {}, 'build_timeout', 'or 0 for the project'],
    ['queued timeout high', { queued_timeout: '481' }, {}, 'queued_timeout', 'between 5 and 480'],
    ['digest variable', { digest_variable: 'IMAGE-DIGEST' }, {}, 'digest_variable', '"IMAGE-DIGEST"'],
    ['dotenv prefix lower', { dotenv_prefix: 'api_' }, {}, 'dotenv_prefix', '"api_"'],
    ['dotenv prefix digit', { dotenv_prefix: '1_' }, {}, 'dotenv_prefix', 'not starting with a digit'],
    ['report dir outside', { report_dir: '../reports' }, {}, 'report_dir', 'subdirectory of the checkout'],
  ])('%s', (_name, inputs, extra, input, fragment) => {
    const found = problems(env(inputs, extra));
    expect(found.map((p) => p.input)).toEqual([input]);
    expect(found[0]?.message).toContain(fragment);
  });

  it('reports every problem together', () => {
    const found = problems(
      env({ aws_region: 'nowhere', project_name: '', s3_bucket: 'Bad_Bucket', tags: '["a b"]', build_timeout: '1', context: 'nope' }),
    );
    expect(found.map((p) => p.input).sort()).toEqual(['aws_region', 'build_timeout', 'context', 'project_name', 's3_bucket', 'tags']);
  });

  it('never echoes secret build arg items or the OIDC token', () => {
    const secret = 'hunter2-super-secret';
    const found = problems(
      env({ secret_build_args: `["${secret}","NAME=${secret}","${secret}=ssm:x"]` }, { GITLAB_OIDC_TOKEN: `not a jwt ${secret}` }),
    );
    expect(found.map((p) => p.input)).toEqual(['id_token_variable', 'secret_build_args', 'secret_build_args', 'secret_build_args']);
    expect(JSON.stringify(found)).not.toContain(secret);
    expect(problems(env({ secret_build_args: `["A=ssm:${secret}",` })).map((p) => p.message).join()).not.toContain(secret);
  });
});

describe('registry_credentials and ecr_registries', () => {
  it('reads logins by reference and the ECR registries the build role logs in to', () => {
    const s = readSettings(
      env({
        image: 'registry.gitlab.com/group/app',
        registry_credentials:
          '["registry.gitlab.com=secretsmanager:ci/gitlab-registry","localhost:5000=ssm:/ci/local",' +
          '"docker.io=secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:hub-AbCdEf"]',
        ecr_registries: '["210987654321.dkr.ecr.eu-west-1.amazonaws.com"]',
        cache_ref: '000000000000.dkr.ecr.us-east-1.amazonaws.com/cache:app',
      }),
      checkout,
    );
    expect(s.registryLogins).toEqual([
      { registry: 'registry.gitlab.com', type: 'SECRETS_MANAGER', reference: 'ci/gitlab-registry' },
      { registry: 'localhost:5000', type: 'PARAMETER_STORE', reference: '/ci/local' },
      { registry: 'docker.io', type: 'SECRETS_MANAGER', reference: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:hub-AbCdEf' },
    ]);
    expect(s.ecrRegistries).toEqual([
      { registry: '000000000000.dkr.ecr.us-east-1.amazonaws.com', region: 'us-east-1' },
      { registry: '210987654321.dkr.ecr.eu-west-1.amazonaws.com', region: 'eu-west-1' },
    ]);
  });

  it('logs in to the default ECR image registry once, with nothing else', () => {
    const s = readSettings(env({}), checkout);
    expect(s.registryLogins).toEqual([]);
    expect(s.ecrRegistries).toEqual([{ registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', region: 'eu-west-1' }]);
  });

  it.each([
    ['no reference', 'registry.gitlab.com=hunter2', 'a password never belongs in an input'],
    ['no registry', 'secretsmanager:ci/x', 'is not REGISTRY=secretsmanager:<secret-id>'],
    ['json key given', 'r.example.com=secretsmanager:ci/x:password', 'without spaces or json keys'],
    ['empty reference', 'r.example.com=ssm:', 'give a secret name or ARN'],
    ['ECR registry', '000000000000.dkr.ecr.us-east-1.amazonaws.com=secretsmanager:x', 'list it in ecr_registries'],
  ])('refuses %s in one line', (_name, item, fragment) => {
    const found = problems(env({ registry_credentials: JSON.stringify([item]) }));
    expect(found.map((p) => p.input)).toEqual(['registry_credentials']);
    expect(found[0]?.message).toContain(fragment);
  });

  it('refuses a registry given twice and a non-ECR host in ecr_registries', () => {
    const found = problems(env({ registry_credentials: '["a.io=ssm:/x","a.io=ssm:/y"]', ecr_registries: '["registry.gitlab.com"]' }));
    expect(found.map((p) => `${p.input}: ${p.message}`)).toEqual([
      'registry_credentials: a.io is given more than once; keep one',
      'ecr_registries: "registry.gitlab.com" is not an ECR registry host, <account>.dkr.ecr.<region>.amazonaws.com; other registries go in registry_credentials',
    ]);
  });

  it('never echoes a password pasted in place of an item or a reference', () => {
    const secret = 'hunter2-super-secret';
    const found = problems(env({ registry_credentials: JSON.stringify([secret, `${secret}=ssm:/x`, `r.io=${secret}`, `r.io=ssm:${secret} x`]) }));
    expect(found).toHaveLength(4);
    expect(JSON.stringify(found)).not.toContain(secret);
  });
});

describe("GitLab's registry with the job token", () => {
  const job = { CI_REGISTRY: 'registry.gitlab.example.com', CI_JOB_TOKEN: 'glcbt-64_job-token-value', CI_JOB_ID: '9001', CI_PROJECT_ID: '77' };
  const jobTokenLogin = { registry: 'registry.gitlab.example.com', type: 'PARAMETER_STORE', reference: '/codebuild-image/job-tokens/77/9001', jobToken: true };

  it('logs in with it when the image is in CI_REGISTRY and no item names that registry', () => {
    expect(readSettings(env({ image: 'registry.gitlab.example.com/group/app' }, job), checkout).registryLogins).toEqual([jobTokenLogin]);
    // The cache there is enough too (a registry with a port is matched with its port).
    const withPort = { ...job, CI_REGISTRY: 'gitlab.example.com:5050' };
    expect(readSettings(env({ cache_ref: 'gitlab.example.com:5050/group/app:buildcache' }, withPort), checkout).registryLogins).toEqual([
      { ...jobTokenLogin, registry: 'gitlab.example.com:5050' },
    ]);
  });

  it('logs in with it when an item says job-token, e.g. to pull base images from GitLab while pushing to ECR', () => {
    const s = readSettings(env({ registry_credentials: '["registry.gitlab.example.com=job-token"]' }, job), checkout);
    expect(s.registryLogins).toEqual([jobTokenLogin]);
    expect(s.image.ecr).toBeDefined();
  });

  it('does not use it for a registry given other credentials, nor for an image elsewhere, nor outside a job', () => {
    const item = '["registry.gitlab.example.com=secretsmanager:ci/deploy-token"]';
    expect(readSettings(env({ image: 'registry.gitlab.example.com/group/app', registry_credentials: item }, job), checkout).registryLogins).toEqual([
      { registry: 'registry.gitlab.example.com', type: 'SECRETS_MANAGER', reference: 'ci/deploy-token' },
    ]);
    expect(readSettings(env({}, job), checkout).registryLogins).toEqual([]);
    expect(readSettings(env({ image: 'registry.gitlab.example.com/group/app' }, { ...job, CI_JOB_TOKEN: '' }), checkout).registryLogins).toEqual([]);
  });

  it.each([
    ['another registry', 'docker.io=job-token', job, 'the job token works only for this GitLab\'s registry, "registry.gitlab.example.com" (CI_REGISTRY)'],
    ['no CI_REGISTRY', 'registry.gitlab.example.com=job-token', { ...job, CI_REGISTRY: '' }, 'CI_REGISTRY is not set'],
    ['no job token', 'registry.gitlab.example.com=job-token', { ...job, CI_JOB_TOKEN: '' }, 'CI_JOB_TOKEN, CI_JOB_ID or CI_PROJECT_ID is not set'],
    ['the registry given twice', 'registry.gitlab.example.com=secretsmanager:ci/x","registry.gitlab.example.com=job-token', job, 'registry.gitlab.example.com is given more than once; keep one'],
  ])('refuses job-token for %s in one line, never showing the token', (_name, item, extra, fragment) => {
    const found = problems(env({ registry_credentials: `["${item}"]` }, extra));
    expect(found.map((p) => p.input)).toEqual(['registry_credentials']);
    expect(found[0]?.message).toContain(fragment);
    expect(JSON.stringify(found)).not.toContain(job.CI_JOB_TOKEN);
  });

  it('matches the cache by its registry only: a Docker Hub cache is not in a registry named like its first path part', () => {
    const hub = { ...job, CI_REGISTRY: 'team' };
    expect(readSettings(env({ cache_ref: 'team/app:buildcache' }, hub), checkout).registryLogins).toEqual([]);
  });
});

describe('helpers', () => {
  it('maps input names to variables in one table', () => {
    expect(envVarName(Inputs.SecretBuildArgs)).toBe('CODEBUILD_IMAGE_SECRET_BUILD_ARGS');
    expect(new Set(Object.values(Inputs)).size).toBe(Object.values(Inputs).length);
  });

  it.each([
    ['', []],
    ['[]', []],
    ['["a", "b"]', ['a', 'b']],
    ['a\n\n b \r\nc', ['a', 'b', 'c']],
    ['["", " x "]', ['x']],
  ])('parseList(%j)', (raw, items) => {
    expect(parseList(raw)).toEqual({ items });
  });

  it.each(['[', '[null]', '[1, 2', '["a"] x'])('parseList rejects %j', (raw) => {
    expect(parseList(raw)).toHaveProperty('problem');
  });

  it.each([
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com/app', { account: '123456789012', region: 'us-east-1' }],
    ['123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app', { account: '123456789012', region: 'us-gov-west-1' }],
    ['123456789012.dkr-ecr.eu-west-1.on.aws/app', { account: '123456789012', region: 'eu-west-1' }],
    ['public.ecr.aws/team/app', undefined],
    ['127.0.0.1:5000/app', undefined],
  ])('ECR detection for %s', (ref, ecr) => {
    const r = parseImageRepository(ref);
    expect('problem' in r).toBe(false);
    expect('problem' in r ? undefined : r.ecr).toEqual(ecr);
  });

  it('normalises Docker Hub names', () => {
    expect(parseImageRepository('app')).toMatchObject({ registry: 'docker.io', path: 'library/app', name: 'docker.io/library/app' });
    expect(parseImageRepository('user/app')).toMatchObject({ registry: 'docker.io', name: 'docker.io/user/app' });
    expect(parseImageRepository('[::1]:5000/a__b.c-d')).toMatchObject({ registry: '[::1]:5000', path: 'a__b.c-d' });
  });

  it.each(['abc', 'a.b-c', '0123456789'.repeat(6) + 'abc'])('accepts bucket %s', (name) => {
    expect(bucketNameProblems(name)).toEqual([]);
  });
});

describe('readSettings: BuildKit and CodeBuild speed inputs', () => {
  it('defaults to the containerd-store builder, a cache beside the image, provenance and BuildKit secrets', () => {
    const s = readSettings(env(), checkout);
    expect(s.buildkit).toEqual({
      builder: 'containerd-store',
      buildkitImage: undefined,
      cacheRef: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/group/sub/my-app:buildcache',
      attestations: true,
      sbom: false,
      secretsAs: 'secret',
    });
    expect(s.localLayerCache).toBe(false);
    expect(s.fleetArn).toBeUndefined();
  });

  it('takes another cache reference, or none', () => {
    expect(readSettings(env({ cache_ref: 'registry.example.com/cache/app:main' }), checkout).buildkit.cacheRef).toBe('registry.example.com/cache/app:main');
    expect(readSettings(env({ cache: 'false', cache_ref: 'registry.example.com/cache/app:main' }), checkout).buildkit.cacheRef).toBeUndefined();
  });

  it('reads booleans, the builder, the fleet and the secret mode', () => {
    const fleet = 'arn:aws:codebuild:eu-west-1:123456789012:fleet/warm-hosts';
    const s = readSettings(
      env({ builder: 'docker-container', buildkit_image: 'r.example.com/moby/buildkit:v0.26.2', attestations: 'false', sbom: 'true', secret_build_args_as: 'build-arg', local_layer_cache: 'true', fleet_arn: fleet }),
      checkout,
    );
    expect(s.buildkit).toMatchObject({ builder: 'docker-container', buildkitImage: 'r.example.com/moby/buildkit:v0.26.2', attestations: false, sbom: true, secretsAs: 'build-arg' });
    expect(s.localLayerCache).toBe(true);
    expect(s.fleetArn).toBe(fleet);
  });

  it('reports every bad BuildKit input at once, naming the input and the fix', () => {
    const found = problems(env({ builder: 'kaniko', cache: 'yes', cache_ref: 'no-tag', attestations: 'on', secret_build_args_as: 'env', fleet_arn: 'warm-hosts' }));
    expect(found.map((p) => p.input).sort()).toEqual(['attestations', 'builder', 'cache', 'cache_ref', 'fleet_arn', 'secret_build_args_as']);
    expect(found.find((p) => p.input === 'builder')?.message).toContain('containerd-store, docker-container, docker');
    expect(problems(env({ cache_ref: 'registry.example.com/app' })).map((p) => p.input)).toEqual(['cache_ref']);
  });

  it('requires buildkit_image with the docker-container builder, without a Docker Hub default', () => {
    const [p] = problems(env({ builder: 'docker-container' }));
    expect(p).toMatchObject({ input: 'buildkit_image' });
    expect(p?.message).toContain('pull-through cache');
  });
});

describe('readSettings: platforms', () => {
  const two = JSON.stringify(['linux/amd64', 'linux/arm64']);

  it('maps each platform to the project that builds it natively, by default as infra/ names them', () => {
    const s = readSettings(env({ platforms: two }), checkout);
    expect(s.platformBuilds).toEqual([
      { platform: 'linux/amd64', projectName: 'shared-builder' },
      { platform: 'linux/arm64', projectName: 'shared-builder-arm64' },
    ]);
    expect(s.platform).toBeUndefined();
    expect(s.emulation).toBe(false);
  });

  it('takes other projects from platform_projects, and one platform as a plain single build', () => {
    const s = readSettings(env({ platforms: two, platform_projects: JSON.stringify(['linux/arm64=graviton-builder']) }), checkout);
    expect(s.platformBuilds.map((b) => b.projectName)).toEqual(['shared-builder', 'graviton-builder']);
    const one = readSettings(env({ platforms: JSON.stringify(['linux/arm64']) }), checkout);
    expect(one).toMatchObject({ platform: 'linux/arm64', platformBuilds: [] });
  });

  it('with emulation, builds every platform in one build', () => {
    const s = readSettings(env({ platforms: two, emulation: 'true', binfmt_image: 'r.example.com/tonistiigi/binfmt:qemu-v9.2.2' }), checkout);
    expect(s).toMatchObject({ platform: 'linux/amd64,linux/arm64', platformBuilds: [], emulation: true });
    expect(s.buildkit.binfmtImage).toBe('r.example.com/tonistiigi/binfmt:qemu-v9.2.2');
  });

  it('refuses a platform no project builds, platform with platforms, a custom buildspec and bad items, naming the fix', () => {
    const riscv = problems(env({ platforms: JSON.stringify(['linux/amd64', 'linux/riscv64']) }));
    expect(riscv).toEqual([{ input: 'platform_projects', message: expect.stringContaining('add linux/riscv64=<project>, or set emulation: true') }]);
    expect(problems(env({ platforms: two, platform: 'linux/amd64' })).map((p) => p.input)).toEqual(['platforms']);
    expect(problems(env({ platforms: two, buildspec: 'buildspec.yml' })).map((p) => p.message)).toEqual([expect.stringContaining('needs the generated buildspec')]);
    expect(problems(env({ platforms: two, platform_projects: JSON.stringify(['arm64']) })).map((p) => p.input)).toEqual(['platform_projects']);
    expect(problems(env({ platforms: JSON.stringify(['linux']) })).map((p) => p.input)).toEqual(['platforms']);
    expect(problems(env({ platforms: two, environment_type: 'ARM_CONTAINER' })).map((p) => p.input)).toEqual(['environment_type']);
  });
});

describe('readSettings: sign_with', () => {
  it('takes a KMS key ARN or alias ARN, in any partition and region, and is off when empty', () => {
    const keys = [
      'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      'arn:aws:kms:eu-central-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab',
      'arn:aws:kms:eu-west-1:123456789012:alias/team/image-signing',
      'arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/signing',
    ];
    for (const key of keys) expect(readSettings(env({ sign_with: key }), checkout).signWith).toBe(key);
    expect(readSettings(env(), checkout).signWith).toBeUndefined();
  });

  it.each([
    'alias/image-signing',
    '1234abcd-12ab-34cd-56ef-1234567890ab',
    'arn:aws:kms:eu-west-1:123456789012:image-signing',
    'arn:aws:kms:eu-west-1:1234:key/1234abcd',
    'arn:aws:iam::123456789012:role/signer',
    'awskms:///arn:aws:kms:eu-west-1:123456789012:alias/signing',
  ])('refuses %s in one problem naming the expected form', (value) => {
    expect(problems(env({ sign_with: value }))).toEqual([
      { input: 'sign_with', message: expect.stringContaining('expected a KMS key ARN, arn:aws:kms:<region>:<account>:key/<id>, or alias ARN, arn:aws:kms:<region>:<account>:alias/<name>') },
    ]);
  });
});
