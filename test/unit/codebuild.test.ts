import {
  BatchGetBuildsCommand,
  CodeBuildClient,
  ListBuildsForProjectCommand,
  ResourceNotFoundException,
  StartBuildCommand,
  StopBuildCommand,
  type Build,
} from '@aws-sdk/client-codebuild';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  concurrencyExplanation, consoleUrl, exportedVariable, findBuildByMarker, getBuild, queueLimitFailure, startBuild,
  startBuildInput, stopBuild,
} from '../../src/build/codebuild';
import { JOB_MARKER_VARIABLE } from '../../src/build/variables';
import { AwsStepError } from '../../src/shared/errors';
import { memoryOutput } from '../helpers/output';
import { settingsFixture } from '../helpers/settings-fixture';

const SOURCE = { bucket: 'codebuild-image-000000000000-us-east-1', key: 'contexts/group/app/ab12.zip' };
const BUILD_ID = 'shared-builder:5f2c7a1e-0000-4000-8000-000000000001';
const ARN = `arn:aws:codebuild:eu-west-1:123456789012:build/${BUILD_ID}`;

const cbMock = mockClient(CodeBuildClient);
afterEach(() => cbMock.reset());
// The mock replaces send on the class: later files in this worker (isolate: false) use real clients.
afterAll(() => cbMock.restore());
const client = () => new CodeBuildClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });

const env = (input: ReturnType<typeof startBuildInput>) =>
  Object.fromEntries((input.environmentVariablesOverride ?? []).map((v) => [v.name, { value: v.value, type: v.type }]));

describe('startBuildInput', () => {
  it('points CodeBuild at the uploaded context with the buildspec, privileged, and GitLab context', () => {
    const input = startBuildInput(settingsFixture(), SOURCE, 'version: 0.2\n');
    expect(input).toMatchObject({
      projectName: 'shared-builder',
      sourceTypeOverride: 'S3',
      sourceLocationOverride: `${SOURCE.bucket}/${SOURCE.key}`,
      buildspecOverride: 'version: 0.2\n',
      privilegedModeOverride: true,
    });
    for (const key of ['computeTypeOverride', 'imageOverride', 'environmentTypeOverride', 'timeoutInMinutesOverride', 'queuedTimeoutInMinutesOverride', 'cacheOverride', 'fleetOverride']) {
      expect(input).not.toHaveProperty(key);
    }
    expect(env(input)).toEqual({
      CBI_IMAGE: { value: '000000000000.dkr.ecr.us-east-1.amazonaws.com/group/app', type: 'PLAINTEXT' },
      CBI_REGISTRY: { value: '000000000000.dkr.ecr.us-east-1.amazonaws.com', type: 'PLAINTEXT' },
      CBI_ECR_REGISTRIES: { value: 'us-east-1=000000000000.dkr.ecr.us-east-1.amazonaws.com', type: 'PLAINTEXT' },
      CBI_TAGS: { value: 'abc1234', type: 'PLAINTEXT' },
      CBI_DOCKERFILE: { value: 'Dockerfile', type: 'PLAINTEXT' },
      CBI_DIGEST_VARIABLE: { value: 'IMAGE_DIGEST', type: 'PLAINTEXT' },
      CBI_BUILDER: { value: 'containerd-store', type: 'PLAINTEXT' },
      CBI_ATTESTATIONS: { value: 'true', type: 'PLAINTEXT' },
      CBI_SBOM: { value: 'false', type: 'PLAINTEXT' },
      CBI_CACHE_REF: { value: '000000000000.dkr.ecr.us-east-1.amazonaws.com/group/app:buildcache', type: 'PLAINTEXT' },
      GITLAB_COMMIT_SHA: { value: '0123456789abcdef0123456789abcdef01234567', type: 'PLAINTEXT' },
      GITLAB_REF: { value: 'main', type: 'PLAINTEXT' },
      GITLAB_PROJECT_PATH: { value: 'group/app', type: 'PLAINTEXT' },
      GITLAB_PIPELINE_URL: { value: 'https://gitlab.example.com/group/app/-/pipelines/1001', type: 'PLAINTEXT' },
      GITLAB_JOB_URL: { value: 'https://gitlab.example.com/group/app/-/jobs/2002', type: 'PLAINTEXT' },
    });
  });

  it('passes overrides only when given, and secret build args only as references', () => {
    const input = startBuildInput(
      settingsFixture({
        computeType: 'BUILD_GENERAL1_LARGE', buildImage: 'aws/codebuild/standard:7.0', environmentType: 'LINUX_CONTAINER',
        buildTimeout: 30, queuedTimeout: 10, target: 'runtime', platform: 'linux/amd64', tags: ['v1', 'latest'],
        buildArgs: [{ name: 'MODE', value: 'release' }],
        secretBuildArgs: [
          { name: 'NPM_TOKEN', type: 'SECRETS_MANAGER', reference: 'ci/npm:token' },
          { name: 'PIP_INDEX', type: 'PARAMETER_STORE', reference: '/ci/pip-index' },
        ],
      }),
      SOURCE, '',
    );
    expect(input).toMatchObject({
      computeTypeOverride: 'BUILD_GENERAL1_LARGE', imageOverride: 'aws/codebuild/standard:7.0',
      environmentTypeOverride: 'LINUX_CONTAINER', timeoutInMinutesOverride: 30, queuedTimeoutInMinutesOverride: 10,
    });
    expect(env(input)).toMatchObject({
      CBI_TAGS: { value: 'v1 latest' },
      CBI_TARGET: { value: 'runtime' },
      CBI_PLATFORM: { value: 'linux/amd64' },
      CBI_BUILD_ARG_NAMES: { value: 'MODE' },
      CBI_SECRET_NAMES: { value: 'NPM_TOKEN PIP_INDEX' },
      CBI_ARG_MODE: { value: 'release', type: 'PLAINTEXT' },
      CBI_ARG_NPM_TOKEN: { value: 'ci/npm:token', type: 'SECRETS_MANAGER' },
      CBI_ARG_PIP_INDEX: { value: '/ci/pip-index', type: 'PARAMETER_STORE' },
    });
  });

  it('lists secret build args with the plain ones only when they are to be passed as build args', () => {
    const s = settingsFixture({
      buildArgs: [{ name: 'MODE', value: 'release' }],
      secretBuildArgs: [{ name: 'NPM_TOKEN', type: 'SECRETS_MANAGER', reference: 'ci/npm:token' }],
      buildkit: { ...settingsFixture().buildkit, secretsAs: 'build-arg' },
    });
    const vars = env(startBuildInput(s, SOURCE, ''));
    // Provenance would record the secret's value with the build args: it stays off.
    expect(vars).toMatchObject({ CBI_BUILD_ARG_NAMES: { value: 'MODE NPM_TOKEN' }, CBI_ATTESTATIONS: { value: 'false' } });
    expect(vars).not.toHaveProperty('CBI_SECRET_NAMES');
  });

  it('passes the BuildKit choices, the layer cache and the fleet to CodeBuild', () => {
    const fleetArn = 'arn:aws:codebuild:us-east-1:000000000000:fleet/warm';
    const s = settingsFixture({
      buildkit: { builder: 'docker-container', buildkitImage: 'r.example.com/moby/buildkit:v0.26.2', binfmtImage: undefined, cacheRef: undefined, attestations: false, sbom: true, secretsAs: 'secret' },
      localLayerCache: true,
      fleetArn,
    });
    const input = startBuildInput(s, SOURCE, '');
    expect(input).toMatchObject({ cacheOverride: { type: 'LOCAL', modes: ['LOCAL_DOCKER_LAYER_CACHE'] }, fleetOverride: { fleetArn } });
    const vars = env(input);
    expect(vars).toMatchObject({
      CBI_BUILDER: { value: 'docker-container' },
      CBI_BUILDKIT_IMAGE: { value: 'r.example.com/moby/buildkit:v0.26.2' },
      CBI_ATTESTATIONS: { value: 'false' },
      CBI_SBOM: { value: 'true' },
    });
    expect(vars).not.toHaveProperty('CBI_CACHE_REF');
  });

  it('derives a stable idempotency token from the job and the request', () => {
    const s = settingsFixture();
    const token = startBuildInput(s, SOURCE, 'spec').idempotencyToken ?? '';
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(startBuildInput(settingsFixture(), SOURCE, 'spec').idempotencyToken).toBe(token);
    const otherJob = settingsFixture({ gitlab: { ...s.gitlab, jobId: '2003' } });
    expect(startBuildInput(otherJob, SOURCE, 'spec').idempotencyToken).not.toBe(token);
    expect(startBuildInput(s, { ...SOURCE, key: 'contexts/other.zip' }, 'spec').idempotencyToken).not.toBe(token);
    expect(startBuildInput(settingsFixture({ tags: ['v2'] }), SOURCE, 'spec').idempotencyToken).not.toBe(token);
    const local = settingsFixture({ gitlab: { ...s.gitlab, jobId: undefined } });
    expect(startBuildInput(local, SOURCE, 'spec').idempotencyToken).not.toBe(startBuildInput(local, SOURCE, 'spec').idempotencyToken);
  });
});

describe('startBuild', () => {
  it('sends StartBuild and returns the build', async () => {
    cbMock.on(StartBuildCommand).resolves({ build: { id: BUILD_ID, arn: ARN } });
    const input = startBuildInput(settingsFixture(), SOURCE, 'spec');
    expect(await startBuild(client(), input)).toEqual({ id: BUILD_ID, arn: ARN });
    expect(cbMock.commandCalls(StartBuildCommand)[0]?.args[0].input).toEqual(input);
  });

  it.each([
    [Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }), 'needs codebuild:StartBuild on the project shared-builder'],
    [new ResourceNotFoundException({ message: 'no project', $metadata: {} }), 'No CodeBuild project "shared-builder" in us-east-1'],
    [
      Object.assign(new Error('Cannot have more than 0 builds in queue for the account'), { name: 'AccountLimitExceededException' }),
      "CodeBuild's concurrent build quota for this account and compute type is reached (new accounts may allow only 0 to 5 concurrent builds): " +
        'wait for running builds, or request more "Concurrently running builds" in Service Quotas: ' +
        'https://us-east-1.console.aws.amazon.com/servicequotas/home/services/codebuild/quotas?region=us-east-1',
    ],
  ])('explains %s', async (error, hint) => {
    cbMock.on(StartBuildCommand).rejects(error);
    const err = await startBuild(client(), startBuildInput(settingsFixture(), SOURCE, 'spec')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsStepError);
    expect((err as AwsStepError).message).toContain('Starting a build of CodeBuild project shared-builder failed');
    expect((err as AwsStepError).hint).toContain(hint);
  });
});

describe('concurrency limits', () => {
  it('explains a build that failed before it ran on a concurrency limit, in one line', () => {
    const failed = {
      buildStatus: 'FAILED' as const,
      phases: [
        { phaseType: 'SUBMITTED' as const, phaseStatus: 'SUCCEEDED' as const },
        { phaseType: 'QUEUED' as const, phaseStatus: 'FAILED' as const, contexts: [{ statusCode: 'CLIENT_ERROR', message: 'Concurrent build limit of the project reached' }] },
      ],
    };
    const line = queueLimitFailure(failed, 'eu-west-1');
    expect(line).toContain('project\'s concurrent build limit is reached');
    expect(line).not.toContain('\n');
    expect(concurrencyExplanation('cn-north-1')).toContain('https://cn-north-1.console.amazonaws.cn/servicequotas/home/services/codebuild/quotas?region=cn-north-1');
    // Other early failures are not quota problems.
    expect(queueLimitFailure({ phases: [{ phaseType: 'QUEUED', phaseStatus: 'FAILED', contexts: [{ statusCode: 'VPC_CLIENT_ERROR', message: 'Unexpected EC2 error' }] }] }, 'eu-west-1')).toBeUndefined();
    expect(queueLimitFailure({ phases: [{ phaseType: 'BUILD', phaseStatus: 'FAILED', contexts: [{ statusCode: 'COMMAND_EXECUTION_ERROR', message: 'limit' }] }] }, 'eu-west-1')).toBeUndefined();
  });
});

describe('consoleUrl', () => {
  it('links the build page with the account from the ARN and the encoded build id', () => {
    expect(consoleUrl('eu-west-1', { id: BUILD_ID, arn: ARN, projectName: 'shared-builder' })).toBe(
      'https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/123456789012/projects/shared-builder/build/' +
        'shared-builder%3A5f2c7a1e-0000-4000-8000-000000000001/?region=eu-west-1',
    );
  });

  it('uses the China console for aws-cn ARNs', () => {
    const url = consoleUrl('cn-north-1', { id: BUILD_ID, arn: `arn:aws-cn:codebuild:cn-north-1:123456789012:build/${BUILD_ID}` });
    expect(url).toMatch(/^https:\/\/cn-north-1\.console\.amazonaws\.cn\/codesuite\/codebuild\/123456789012\/projects\/shared-builder\//);
  });
});

describe('exported variables', () => {
  it('reads the digest and image reference from a finished build', () => {
    const build: Build = {
      exportedEnvironmentVariables: [
        { name: 'IMAGE_DIGEST', value: 'sha256:abc' },
        { name: 'IMAGE_REF', value: 'r/app@sha256:abc' },
        { name: 'EMPTY', value: '' },
      ],
    };
    expect(exportedVariable(build, 'IMAGE_DIGEST')).toBe('sha256:abc');
    expect(exportedVariable(build, 'IMAGE_REF')).toBe('r/app@sha256:abc');
    expect(exportedVariable(build, 'EMPTY')).toBeUndefined();
    expect(exportedVariable(build, 'MISSING')).toBeUndefined();
  });
});

describe('getBuild / stopBuild', () => {
  it('getBuild fails with an explanation when the build does not exist', async () => {
    cbMock.on(BatchGetBuildsCommand).resolves({ builds: [], buildsNotFound: [BUILD_ID] });
    await expect(getBuild(client(), BUILD_ID)).rejects.toThrow(/Reading CodeBuild build .* failed/);
  });

  it('stops the build and waits until CodeBuild reports it complete', async () => {
    cbMock.on(StopBuildCommand).resolves({ build: { id: BUILD_ID, buildStatus: 'IN_PROGRESS', buildComplete: false } });
    cbMock.on(BatchGetBuildsCommand)
      .resolvesOnce({ builds: [{ id: BUILD_ID, buildStatus: 'IN_PROGRESS', buildComplete: false }] })
      .resolves({ builds: [{ id: BUILD_ID, buildStatus: 'STOPPED', buildComplete: true }] });
    const sleeps: number[] = [];
    const out = memoryOutput();
    const build = await stopBuild(client(), BUILD_ID, out, { sleep: async (ms) => void sleeps.push(ms) });
    expect(build.buildStatus).toBe('STOPPED');
    expect(cbMock.commandCalls(StopBuildCommand)[0]?.args[0].input).toEqual({ id: BUILD_ID });
    expect(cbMock.commandCalls(BatchGetBuildsCommand)).toHaveLength(2);
    expect(sleeps).toEqual([2000, 2000]);
    expect(out.lines.at(-1)).toBe(`CodeBuild build ${BUILD_ID} is STOPPED`);
  });

  it('keeps checking after StopBuild was accepted even when a check fails, warning once', async () => {
    cbMock.on(StopBuildCommand).resolves({ build: { id: BUILD_ID, buildStatus: 'IN_PROGRESS', buildComplete: false } });
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    cbMock.on(BatchGetBuildsCommand)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .resolves({ builds: [{ id: BUILD_ID, buildStatus: 'STOPPED', buildComplete: true }] });
    const out = memoryOutput();
    const build = await stopBuild(client(), BUILD_ID, out, { sleep: async () => {} });
    expect(build.buildStatus).toBe('STOPPED');
    expect(out.lines.filter((l) => l.startsWith('WARNING:'))).toEqual([
      `WARNING: StopBuild was accepted, but checking build ${BUILD_ID} failed (ThrottlingException); will keep checking`,
    ]);
  });

  it('returns at once when the build had already finished', async () => {
    cbMock.on(StopBuildCommand).resolves({ build: { id: BUILD_ID, buildStatus: 'SUCCEEDED', buildComplete: true } });
    const build = await stopBuild(client(), BUILD_ID, memoryOutput(), { sleep: async () => {} });
    expect(build.buildStatus).toBe('SUCCEEDED');
    expect(cbMock.commandCalls(BatchGetBuildsCommand)).toHaveLength(0);
  });

  it('gives up waiting after the timeout with a warning', async () => {
    cbMock.on(StopBuildCommand).resolves({ build: { id: BUILD_ID, buildStatus: 'IN_PROGRESS' } });
    cbMock.on(BatchGetBuildsCommand).resolves({ builds: [{ id: BUILD_ID, buildStatus: 'IN_PROGRESS', buildComplete: false }] });
    let t = 0;
    const out = memoryOutput();
    const build = await stopBuild(client(), BUILD_ID, out, {
      timeoutMs: 10_000, now: () => t, sleep: async (ms) => void (t += ms),
    });
    expect(build.buildComplete).toBe(false);
    expect(cbMock.commandCalls(BatchGetBuildsCommand)).toHaveLength(5);
    expect(out.lines.at(-1)).toContain('still IN_PROGRESS after 10s');
  });
});

describe('findBuildByMarker', () => {
  const withMarker = (id: string, marker: string): Build => ({
    id,
    environment: { type: 'LINUX_CONTAINER', image: 'x', computeType: 'BUILD_GENERAL1_SMALL', environmentVariables: [{ name: JOB_MARKER_VARIABLE, value: marker, type: 'PLAINTEXT' }] },
  });

  it('finds the build carrying the marker among the project\'s recent builds', async () => {
    cbMock.on(ListBuildsForProjectCommand).resolves({ ids: ['p:3', 'p:2', 'p:1'] });
    cbMock.on(BatchGetBuildsCommand).resolves({ builds: [withMarker('p:3', 'other'), withMarker('p:2', 'ours'), withMarker('p:1', 'older')] });
    expect(await findBuildByMarker(client(), 'p', 'ours')).toBe('p:2');
    expect(cbMock.commandCalls(ListBuildsForProjectCommand)[0]?.args[0].input).toEqual({ projectName: 'p', sortOrder: 'DESCENDING' });
  });

  it('waits for a build that is not listed yet, then gives up after the timeout', async () => {
    cbMock.on(ListBuildsForProjectCommand).resolvesOnce({ ids: [] }).resolves({ ids: ['p:1'] });
    cbMock.on(BatchGetBuildsCommand).resolves({ builds: [withMarker('p:1', 'ours')] });
    expect(await findBuildByMarker(client(), 'p', 'ours', { sleep: async () => {} })).toBe('p:1');

    cbMock.reset();
    cbMock.on(ListBuildsForProjectCommand).resolves({ ids: ['p:1'] });
    cbMock.on(BatchGetBuildsCommand).resolves({ builds: [withMarker('p:1', 'someone else')] });
    let t = 0;
    const found = await findBuildByMarker(client(), 'p', 'ours', { timeoutMs: 10_000, pollMs: 2_000, now: () => t, sleep: async (ms) => void (t += ms) });
    expect(found).toBeUndefined();
    expect(cbMock.commandCalls(ListBuildsForProjectCommand)).toHaveLength(6);
  });

  it('names the permission when listing is denied', async () => {
    cbMock.on(ListBuildsForProjectCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));
    const err = await findBuildByMarker(client(), 'p', 'ours').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsStepError);
    expect((err as Error).message).toContain('codebuild:ListBuildsForProject');
  });
});
