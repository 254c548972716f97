/**
 * Two tenants on one stack (infra/cloudformation.yml rendered with Tenants=team-a,team-b, every call decided by
 * iam-simulate): each tenant's job builds into its own repository, and a job of team-a aimed at team-b's project,
 * role, context prefix, secret or parameter is refused by IAM in one line naming the action and resource, and
 * team-b's contexts and builds stay as they were. The stack's registry has no ECR authorisation in front of it:
 * pushes to another tenant's repositories are covered by infra/tenants.test.ts only.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchGetBuildsCommand, CodeBuildClient, StopBuildCommand } from '@aws-sdk/client-codebuild';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { fromWebToken } from '@aws-sdk/credential-providers';
import { describe, expect, it } from 'vitest';
import { parameterArn, secretArn } from '../../stack/fake-aws/iam/requests';
import type { Stack, TenantInfo } from '../../stack/stack';
import { contextObject, type Job, makeJob, readDotenv, registryDigest, runAction, visible } from './helpers';
import { stackForFile } from './stack-for-file';

let stack: Stack;
const SECRET_B = 'codebuild-image/team-b/npm';
const PARAMETER_B = '/codebuild-image/team-b/token';
const control = stackForFile(
  'e2e-tenants',
  {
    tenants: ['team-a', 'team-b'],
    phaseDelayMs: 20,
    secrets: { 'codebuild-image/team-a/npm': 'npm-of-team-a', [SECRET_B]: 'npm-of-team-b' },
    parameters: { [PARAMETER_B]: 'token-of-team-b' },
  },
  (s) => (stack = s),
);

const tenant = (group: string): TenantInfo => {
  const found = stack.tenants?.find((t) => t.group === group);
  if (!found) throw new Error(`the stack has no tenant ${group}`);
  return found;
};

/** A job of project `<group>/hello` on main, with `as`'s inputs (role, project, prefix), pushing to `<group>/hello`. */
async function tenantJob(group: string, as: TenantInfo = tenant(group), inputs: Record<string, string> = {}): Promise<Job> {
  return makeJob(stack, 'examples/hello', {
    CI_PROJECT_PATH: `${group}/hello`,
    GITLAB_OIDC_TOKEN: await stack.signToken({ sub: `project_path:${group}/hello:ref_type:branch:ref:main` }),
    CODEBUILD_IMAGE_ROLE_ARN: as.roleArn,
    CODEBUILD_IMAGE_PROJECT_NAME: as.projectName,
    CODEBUILD_IMAGE_S3_PREFIX: as.s3Prefix,
    CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${group}/hello`,
    ...inputs,
  });
}

/** Runs a job: its exit code, its log's lines, and the builds it started. */
async function run(job: Job): Promise<{ code: number | null; log: string; lines: string[]; builds: Awaited<ReturnType<ReturnType<typeof control>['builds']>> }> {
  const before = (await control().builds()).length;
  const result = await runAction(job);
  const log = visible(result.output);
  return { code: result.code, log, lines: log.split('\n'), builds: (await control().builds()).slice(before) };
}

const session = (job: Job, group: string) => `gitlab-${group}-hello-p77-j${job.env.CI_JOB_ID ?? ''}`;
const denied = (role: string, sessionName: string, action: string, resource: string) =>
  `AccessDenied${action.startsWith('s3:') ? '' : 'Exception'}: User: arn:aws:sts::${stack.account}:assumed-role/${role}/${sessionName} ` +
  `is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`;
const roleName = (t: TenantInfo) => t.roleArn.slice(t.roleArn.lastIndexOf('/') + 1);
const contextDigest = (log: string) => /Build context: \d+ files, sha256 ([0-9a-f]{64})/.exec(log)?.[1] ?? '';

describe('two tenants on one stack', () => {
  const contextOfB: { key?: string; body?: Buffer } = {};

  it.each(['team-a', 'team-b'])('builds and pushes the image of %s with its own role, project, prefix and secret', async (group) => {
    const job = await tenantJob(group, tenant(group), { CODEBUILD_IMAGE_SECRET_BUILD_ARGS: JSON.stringify([`NPM=secretsmanager:codebuild-image/${group}/npm`]) });
    const { code, log, builds } = await run(job);
    expect(code, log).toBe(0);
    expect(log).not.toContain(`npm-of-${group}`);
    const dotenv = readDotenv(join(job.reportDir, 'build.env'));
    expect(await registryDigest(stack.registry, `${group}/hello`, 'latest')).toBe(dotenv.IMAGE_DIGEST);
    expect(builds.map((b) => `${b.projectName} ${b.buildStatus}`)).toEqual([`${tenant(group).projectName} SUCCEEDED`]);
    const key = `${tenant(group).s3Prefix}/${contextDigest(log)}.zip`;
    expect(log).toContain(`s3://${stack.bucket}/${key}`);
    if (group === 'team-b') Object.assign(contextOfB, { key, body: await contextObject(stack, key) });
  });

  it("refuses team-a's job on team-b's project at StartBuild (exit 3, no build)", async () => {
    const [a, b] = [tenant('team-a'), tenant('team-b')];
    const job = await tenantJob('team-a', { ...a, projectName: b.projectName });
    const { code, log, lines, builds } = await run(job);
    expect(code, log).toBe(3);
    expect(lines).toContain(`ERROR: Starting a build of CodeBuild project ${b.projectName} failed: ` +
      denied(roleName(a), session(job, 'team-a'), 'codebuild:StartBuild', `arn:aws:codebuild:${stack.region}:${stack.account}:project/${b.projectName}`));
    expect(builds).toEqual([]);
  });

  it.each([
    ["team-a's token on team-b's role", 'team-a', 'team-b'],
    ['a token whose sub belongs to no tenant', 'elsewhere', 'team-a'],
  ])('refuses %s at STS (exit 3, no build)', async (_what, group, roleOf) => {
    const role = tenant(roleOf);
    const job = await tenantJob(group, role);
    const { code, log, lines, builds } = await run(job);
    expect(code, log).toBe(3);
    expect(lines).toContain(`ERROR: Getting AWS credentials (role ${role.roleArn}, session ${session(job, group)}) failed: ` +
      'AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity');
    expect(lines).toContain(`ERROR:   - sub: this job's subject is project_path:${group}/hello:ref_type:branch:ref:main; ` +
      "the trust policy's <gitlab host>:sub condition must match it (StringLike allows *).");
    expect(builds).toEqual([]);
  });

  it("refuses team-a's upload under team-b's context prefix, and leaves team-b's context as it was", async () => {
    const [a, b] = [tenant('team-a'), tenant('team-b')];
    expect(contextOfB.key).toBeDefined();
    // Another context than team-b's, so that an upload team-a got through would be a new object under team-b's prefix.
    const job = await tenantJob('team-a', { ...a, s3Prefix: b.s3Prefix });
    appendFileSync(join(job.dir, 'message.txt'), 'from team-a\n');
    const { code, log, lines, builds } = await run(job);
    expect(code, log).toBe(3);
    const key = `${b.s3Prefix}/${contextDigest(log)}.zip`;
    expect(lines).toContain(`ERROR: Uploading the build context to s3://${stack.bucket}/${key} failed: ` +
      denied(roleName(a), session(job, 'team-a'), 's3:PutObject', `arn:aws:s3:::${stack.bucket}/${key}`));
    expect(builds).toEqual([]);
    await expect(contextObject(stack, key)).rejects.toMatchObject({ name: 'NoSuchKey' });
    expect(await contextObject(stack, contextOfB.key ?? '')).toEqual(contextOfB.body);
  });

  it.each([
    ['secret', `NPM=secretsmanager:${SECRET_B}`, 'Secrets Manager', 'secretsmanager:GetSecretValue', () => secretArn(stack, SECRET_B)],
    ['parameter', `NPM=ssm:${PARAMETER_B}`, 'Decrypted Variables', 'ssm:GetParameters', () => parameterArn(stack, PARAMETER_B)],
  ])("fails team-a's build that reads team-b's %s, which its build role may not (exit 1)", async (_what, arg, source, action, resource) => {
    const a = tenant('team-a');
    const job = await tenantJob('team-a', a, { CODEBUILD_IMAGE_SECRET_BUILD_ARGS: JSON.stringify([arg]) });
    const { code, log, lines, builds } = await run(job);
    expect(code, log).toBe(1);
    expect(builds.map((b) => `${b.projectName} ${b.buildStatus}`)).toEqual([`${a.projectName} FAILED`]);
    const buildSession = `AWSCodeBuild-${builds[0]?.id.split(':')[1] ?? ''}`;
    const buildRole = `codebuild-image-build-team-a-${stack.region}`;
    expect(lines).toContain(`ERROR: Phase DOWNLOAD_SOURCE FAILED: ${source} Error: ${denied(buildRole, buildSession, action, resource())}`);
    expect(log).not.toContain('of-team-b');
  });

  it("refuses team-a's credentials team-b's builds and logs (BatchGetBuilds, StopBuild, GetLogEvents through the SDK)", async () => {
    const [a, b] = [tenant('team-a'), tenant('team-b')];
    const build = (await control().builds()).find((x) => x.projectName === b.projectName);
    if (!build) throw new Error("team-b's build is not in the fake");
    const sessionName = 'team-a-job';
    const credentials = fromWebToken({
      roleArn: a.roleArn,
      webIdentityToken: await stack.signToken({ sub: 'project_path:team-a/hello:ref_type:branch:ref:main' }),
      roleSessionName: sessionName,
      clientConfig: { region: stack.region, endpoint: stack.fakeUrl },
    });
    const config = { region: stack.region, endpoint: stack.fakeUrl, credentials, maxAttempts: 1 };
    const codebuild = new CodeBuildClient(config);
    const logs = new CloudWatchLogsClient(config);
    try {
      const project = `arn:aws:codebuild:${stack.region}:${stack.account}:project/${b.projectName}`;
      const stream = build.id.slice(build.id.indexOf(':') + 1);
      const refusals = await Promise.all([
        codebuild.send(new BatchGetBuildsCommand({ ids: [build.id] })).catch((e: Error) => e),
        codebuild.send(new StopBuildCommand({ id: build.id })).catch((e: Error) => e),
        logs.send(new GetLogEventsCommand({ logGroupName: b.logGroupName, logStreamName: stream })).catch((e: Error) => e),
      ]);
      const deniedTo = (action: string, resource: string) => denied(roleName(a), sessionName, action, resource).replace(/^AccessDeniedException: /, '');
      expect(refusals.map((e) => (e instanceof Error ? `${e.name}: ${e.message}` : 'allowed'))).toEqual([
        `AccessDeniedException: ${deniedTo('codebuild:BatchGetBuilds', project)}`,
        `AccessDeniedException: ${deniedTo('codebuild:StopBuild', project)}`,
        `AccessDeniedException: ${deniedTo('logs:GetLogEvents', `arn:aws:logs:${stack.region}:${stack.account}:log-group:${b.logGroupName}:log-stream:${stream}`)}`,
      ]);
      expect((await control().builds()).find((x) => x.id === build.id)?.buildStatus).toBe('SUCCEEDED');
    } finally {
      codebuild.destroy();
      logs.destroy();
    }
  });
});
