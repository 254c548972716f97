// The fake decides calls as IAM would, with iam-simulate, from infra/cloudformation.yml rendered for the stack: the
// CI role's trust (aud, sub), its policies on each service's resources, iam:PassRole, and a build's own reads as its
// service role. Real SDK clients, real HTTP, the fake in process.
import { randomUUID } from 'node:crypto';
import { GetLogEventsCommand, CloudWatchLogsClient, StartLiveTailCommand } from '@aws-sdk/client-cloudwatch-logs';
import { BatchGetBuildsCommand, CodeBuildClient, StartBuildCommand, type Build } from '@aws-sdk/client-codebuild';
import { KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { fromWebToken } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity } from '@smithy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authorizer } from '../../stack/fake-aws/iam/authorizer';
import type { IamConfig } from '../../stack/fake-aws/iam/config';
import { deniedMessage } from '../../stack/fake-aws/iam/denied';
import { iamRequests } from '../../stack/fake-aws/iam/requests';
import { stackAccount } from '../../stack/iam-template';
import { signToken, type TokenClaims } from '../../stack/oidc';
import { AUDIENCE, RENDER_CONTEXT, templateParameters } from '../../stack/stack';
import { buildspec, phaseList, putZip, runBuild, startStack, STATIC_CREDENTIALS, waitForBuild, type Stack } from './fake-support';

const ACCOUNT = '000000000000';
const CI_ROLE = `arn:aws:iam::${ACCOUNT}:role/codebuild-image-ci-us-east-1`;
const BUILD_ROLE = `arn:aws:iam::${ACCOUNT}:role/codebuild-image-build-us-east-1`;
const SESSION = 'gitlab-group-hello-1-2';
const CALLER = `arn:aws:sts::${ACCOUNT}:assumed-role/codebuild-image-ci-us-east-1/${SESSION}`;
const SUB = 'project_path:group/hello:ref_type:branch:ref:main';
const KEY = randomUUID();
const OTHER_KEY = randomUUID();

const account = stackAccount(templateParameters(['ci/granted'], ['/ci/granted'], [KEY]), RENDER_CONTEXT);

let stack: Stack;
let creds: AwsCredentialIdentity;
beforeAll(async () => {
  stack = await startStack({
    account: ACCOUNT,
    iam: account.iam,
    // The template's projects, and one of another team's that runs with the build role but logs to a group it may not write.
    projects: [...account.projects, { name: 'other', serviceRole: BUILD_ROLE, logGroupName: '/aws/codebuild/other' }],
    secrets: { 'ci/granted': 's3cret', 'ci/other': 'n0pe' },
    parameters: { '/ci/granted': 'p4ram', '/ci/other': 'n0pe' },
    signingKeys: [{ alias: 'team', keyId: KEY }, { alias: 'other-team', keyId: OTHER_KEY }],
  });
  creds = await assume(await token());
});
afterAll(async () => {
  await stack?.stop();
});

const token = (claims: Partial<TokenClaims> = {}) => signToken(stack.workDir, { aud: AUDIENCE, sub: SUB, project_path: 'group/hello', ...claims });
const assume = (webIdentityToken: string) =>
  fromWebToken({ roleArn: CI_ROLE, webIdentityToken, roleSessionName: SESSION, clientConfig: { maxAttempts: 1 } })();

async function errorOf(p: Promise<unknown>): Promise<{ name: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  }
  throw new Error('expected the call to fail');
}

/** AccessDeniedException in IAM's words for an implicit deny of the CI role's session. */
const denied = (action: string, resource: string) => ({
  name: 'AccessDeniedException',
  message: `User: ${CALLER} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
});

const client = <T>(C: new (c: { credentials: AwsCredentialIdentity; maxAttempts: number }) => T) => new C({ credentials: creds, maxAttempts: 1 });
const buildOf = (id: string) => waitForBuild(stack.codebuild, id);

describe('STS checks the role trust policy against the token', () => {
  it('allows a sub of group/ with the audience', async () => {
    expect(creds.accessKeyId).toMatch(/^ASIA/);
  });

  it('refuses a sub outside group/, another audience of the provider, and a role that does not trust it', async () => {
    const notAuthorized = { name: 'AccessDenied', message: 'Not authorized to perform sts:AssumeRoleWithWebIdentity' };
    expect(await errorOf(assume(await token({ sub: 'project_path:other/app:ref_type:branch:ref:main' })))).toEqual(notAuthorized);
    expect(await errorOf(assume(await token({ sub: 'project_path:groupie/app:ref_type:branch:ref:main' })))).toEqual(notAuthorized);
    expect(await errorOf(fromWebToken({ roleArn: BUILD_ROLE, webIdentityToken: await token(), roleSessionName: 'session', clientConfig: { maxAttempts: 1 } })())).toEqual(notAuthorized);
  });

  it('refuses an audience that is not on the provider client ID list', async () => {
    expect(await errorOf(assume(await token({ aud: 'https://gitlab.other.example' })))).toMatchObject({ name: 'InvalidIdentityTokenException', message: 'Incorrect token audience' });
  });
});

describe('every call of an STS session is evaluated against its role', () => {
  it('CodeBuild: StartBuild and BatchGetBuilds on its projects only', async () => {
    const codebuild = client(CodeBuildClient);
    const started = await codebuild.send(new StartBuildCommand({ projectName: 'image-builder', buildspecOverride: buildspec({ build: ['true'] }) }));
    expect((await buildOf(started.build?.id ?? '')).buildStatus).toBe('SUCCEEDED');
    expect(await errorOf(codebuild.send(new StartBuildCommand({ projectName: 'other', buildspecOverride: buildspec({ build: ['true'] }) }))))
      .toEqual(denied('codebuild:StartBuild', `arn:aws:codebuild:us-east-1:${ACCOUNT}:project/other`));
    expect(await errorOf(codebuild.send(new BatchGetBuildsCommand({ ids: [started.build?.id ?? '', 'other:1'] }))))
      .toEqual(denied('codebuild:BatchGetBuilds', `arn:aws:codebuild:us-east-1:${ACCOUNT}:project/other`));
  });

  it('StartBuild with serviceRoleOverride needs iam:PassRole, which the CI role does not have', async () => {
    const codebuild = client(CodeBuildClient);
    expect(await errorOf(codebuild.send(new StartBuildCommand({ projectName: 'image-builder', serviceRoleOverride: BUILD_ROLE, buildspecOverride: buildspec({ build: ['true'] }) }))))
      .toEqual(denied('iam:PassRole', BUILD_ROLE));
  });

  it('Logs: GetLogEvents and StartLiveTail on its projects’ groups only', async () => {
    const started = await client(CodeBuildClient).send(new StartBuildCommand({ projectName: 'image-builder', buildspecOverride: buildspec({ build: ['echo hi'] }) }));
    const build = await buildOf(started.build?.id ?? '');
    // StartLiveTail's host prefix (stream-) names no host here, as the program knows.
    const logs = new CloudWatchLogsClient({ credentials: creds, maxAttempts: 1, disableHostPrefix: true });
    const events = await logs.send(new GetLogEventsCommand({ logGroupName: build.logs?.groupName, logStreamName: build.logs?.streamName, startFromHead: true }));
    expect(events.events?.map((e) => e.message)).toContain('hi\n');
    expect(await errorOf(logs.send(new GetLogEventsCommand({ logGroupName: '/aws/codebuild/other', logStreamName: 's' }))))
      .toEqual(denied('logs:GetLogEvents', `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/codebuild/other:log-stream:s`));
    expect(await errorOf(logs.send(new StartLiveTailCommand({ logGroupIdentifiers: [`arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/codebuild/other`] }))))
      .toEqual(denied('logs:StartLiveTail', `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/codebuild/other:*`));
    const tail = await logs.send(new StartLiveTailCommand({ logGroupIdentifiers: [`arn:aws:logs:us-east-1:${ACCOUNT}:log-group:${build.logs?.groupName ?? ''}`] }));
    for await (const event of tail.responseStream ?? []) {
      expect(event.sessionStart).toBeDefined();
      break;
    }
  });

  it('SSM: job tokens under their path and the listed parameters only', async () => {
    const ssm = client(SSMClient);
    await ssm.send(new PutParameterCommand({ Name: '/codebuild-image/job-tokens/1/2', Value: 't', Type: 'SecureString' }));
    expect(await errorOf(ssm.send(new PutParameterCommand({ Name: '/ci/other', Value: 't', Type: 'SecureString', Overwrite: true }))))
      .toEqual(denied('ssm:PutParameter', `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/ci/other`));
    expect((await ssm.send(new GetParameterCommand({ Name: '/ci/granted', WithDecryption: true }))).Parameter?.Value).toBe('p4ram');
    expect(await errorOf(ssm.send(new GetParameterCommand({ Name: '/ci/other', WithDecryption: true }))))
      .toEqual(denied('ssm:GetParameter', `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/ci/other`));
  });

  it('Secrets Manager and KMS: the listed secrets and keys only', async () => {
    const secrets = client(SecretsManagerClient);
    expect((await secrets.send(new GetSecretValueCommand({ SecretId: 'ci/granted' }))).SecretString).toBe('s3cret');
    expect(await errorOf(secrets.send(new GetSecretValueCommand({ SecretId: 'ci/other' }))))
      .toEqual(denied('secretsmanager:GetSecretValue', `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:ci/other-AbCdEf`));
    const kms = client(KMSClient);
    const sign = (KeyId: string) => kms.send(new SignCommand({ KeyId, Message: Buffer.from('payload'), MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect((await sign('alias/team')).Signature?.length).toBeGreaterThan(0);
    expect(await errorOf(sign('alias/other-team'))).toEqual(denied('kms:Sign', `arn:aws:kms:us-east-1:${ACCOUNT}:key/${OTHER_KEY}`));
  });

  it('S3 (the fake in front of s3rver): objects under the context prefix only; a missing key is 403 without s3:ListBucket', async () => {
    const bucket = `codebuild-image-${ACCOUNT}-us-east-1`;
    await stack.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const s3 = new S3Client({ endpoint: stack.fake.url, region: 'us-east-1', forcePathStyle: true, credentials: creds, maxAttempts: 1 });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'contexts/a.zip', Body: 'zip' }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'contexts/a.zip' }))).ContentLength).toBe(3);
    const missing = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'contexts/none.zip' })).catch((e: { $metadata: { httpStatusCode?: number } }) => e.$metadata.httpStatusCode);
    expect(missing).toBe(403);
    expect(await errorOf(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'other/a.zip', Body: 'zip' })))).toEqual({
      name: 'AccessDenied',
      message: `User: ${CALLER} is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::${bucket}/other/a.zip because no identity-based policy allows the s3:PutObject action`,
    });
  });

  it('a key the fake STS did not issue is an administrator’s: nothing is evaluated', async () => {
    const started = await stack.codebuild.send(new StartBuildCommand({ projectName: 'image-builder', buildspecOverride: buildspec({ build: ['true'] }) }));
    expect((await buildOf(started.build?.id ?? '')).buildStatus).toBe('SUCCEEDED');
    const ssm = new SSMClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1 });
    expect((await ssm.send(new GetParameterCommand({ Name: '/ci/other', WithDecryption: true }))).Parameter?.Value).toBe('n0pe');
  });

  it('answers that break no AWS model', async () => {
    expect(await stack.takeViolations()).toEqual([]);
  });
});

describe("a build's own reads and log writes are its service role's", () => {
  const buildSession = (build: Build) => `arn:aws:sts::${ACCOUNT}:assumed-role/codebuild-image-build-us-east-1/AWSCodeBuild-${(build.id ?? '').split(':')[1] ?? ''}`;
  const context = (build: Build, phase: string) =>
    build.phases?.find((p) => p.phaseType === phase)?.contexts?.[0];

  it('reads a parameter and a secret it is granted; one it is not fails DOWNLOAD_SOURCE naming the action and resource', async () => {
    const env = (extra: string) => `env:\n  parameter-store:\n    P: /ci/granted\n  secrets-manager:\n    S: ci/granted\n${extra}`;
    expect((await runBuild(stack, { projectName: 'image-builder', buildspecOverride: buildspec({ build: ['[ "$P$S" = p4rams3cret ]'] }, env('')) })).buildStatus).toBe('SUCCEEDED');

    const parameter = await runBuild(stack, { projectName: 'image-builder', buildspecOverride: buildspec({ build: ['true'] }, env('  parameter-store:\n    Q: /ci/other\n').replace('  parameter-store:\n    P: /ci/granted\n', '')) });
    expect(phaseList(parameter)).toContain('DOWNLOAD_SOURCE:FAILED');
    expect(context(parameter, 'DOWNLOAD_SOURCE')).toEqual({
      statusCode: 'Decrypted Variables Error',
      message: `AccessDeniedException: User: ${buildSession(parameter)} is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/ci/other because no identity-based policy allows the ssm:GetParameters action`,
    });

    const secret = await runBuild(stack, { projectName: 'image-builder', buildspecOverride: buildspec({ build: ['true'] }), environmentVariablesOverride: [{ name: 'S', value: 'ci/other:password', type: 'SECRETS_MANAGER' }] });
    expect(context(secret, 'DOWNLOAD_SOURCE')?.message).toContain(`not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:ci/other-AbCdEf`);
  });

  it('downloads its source only from the context prefix of the stack bucket', async () => {
    const location = await putZip(stack.s3, 'elsewhere/src.zip', [{ name: 'buildspec.yml', data: buildspec({ build: ['true'] }) }]);
    const build = await runBuild(stack, { projectName: 'image-builder', sourceTypeOverride: 'S3', sourceLocationOverride: location });
    expect(context(build, 'DOWNLOAD_SOURCE')).toEqual({
      statusCode: 'CLIENT_ERROR',
      message: `AccessDenied: User: ${buildSession(build)} is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::${location} because no identity-based policy allows the s3:GetObject action for primary source and source version ${location}`,
    });
  });

  it('logs to the group of logsConfigOverride, which its role must be allowed to write', async () => {
    const build = await runBuild(stack, { projectName: 'image-builder', buildspecOverride: buildspec({ build: ['true'] }), logsConfigOverride: { cloudWatchLogs: { status: 'ENABLED', groupName: '/aws/codebuild/other' } } });
    expect(context(build, 'PROVISIONING')?.message).toContain(`logs:CreateLogStream on resource: arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/codebuild/other:log-stream:`);
  });

  it('fails at PROVISIONING, without a log, when its role may not write its project’s log group', async () => {
    const build = await runBuild(stack, { projectName: 'other', buildspecOverride: buildspec({ build: ['true'] }) });
    expect(build.buildStatus).toBe('FAILED');
    expect(build.logs?.groupName).toBeUndefined();
    expect(context(build, 'PROVISIONING')?.statusCode).toBe('ACCESS_DENIED');
    expect(context(build, 'PROVISIONING')?.message).toBe(
      `Service role ${BUILD_ROLE} does not allow AWS CodeBuild to create Amazon CloudWatch Logs log streams for build ${build.arn ?? ''}. Error message: ` +
        `User: ${buildSession(build)} is not authorized to perform: logs:CreateLogStream on resource: arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/codebuild/other:log-stream:${(build.id ?? '').split(':')[1] ?? ''} because no identity-based policy allows the logs:CreateLogStream action`,
    );
  });
});

describe('ECR, which the stack does not serve: pushes checked on the rendered policies', () => {
  const iam = new Authorizer(account.iam, { account: ACCOUNT, region: 'us-east-1' });
  const repository = (name: string) => `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${name}`;
  const push = ['BatchCheckLayerAvailability', 'BatchGetImage', 'GetDownloadUrlForLayer', 'InitiateLayerUpload', 'UploadLayerPart', 'CompleteLayerUpload', 'PutImage'];
  const build = { roleArn: BUILD_ROLE, sessionArn: `arn:aws:sts::${ACCOUNT}:assumed-role/codebuild-image-build-us-east-1/AWSCodeBuild-1` };
  const job = { roleArn: CI_ROLE, sessionArn: CALLER };

  it('a build logs in and pushes to the repositories of EcrRepositories, not to others', async () => {
    expect(await iam.decide(build, { action: 'ecr:GetAuthorizationToken', resource: '*' })).toEqual({ allowed: true });
    expect(await iam.decideAll(build, push.map((a) => ({ action: `ecr:${a}`, resource: repository('group/hello') })))).toEqual({ allowed: true });
    expect(await iam.decide(build, { action: 'ecr:PutImage', resource: repository('other/app') })).toMatchObject({ allowed: false, why: 'implicit' });
  });

  it('a job puts an index and signatures in the same repositories only', async () => {
    expect(await iam.decideAll(job, push.map((a) => ({ action: `ecr:${a}`, resource: repository('group/hello') })))).toEqual({ allowed: true });
    expect(await iam.decide(job, { action: 'ecr:PutImage', resource: repository('other/app') })).toMatchObject({ allowed: false });
  });
});

describe('the evaluation itself', () => {
  const iam = (statements: unknown[]): Authorizer => {
    const config: IamConfig = {
      roles: [{ arn: CI_ROLE, trustPolicy: { Statement: [] }, policies: [{ name: 'p', document: { Version: '2012-10-17', Statement: statements } }] }],
      oidcProvider: { arn: `arn:aws:iam::${ACCOUNT}:oidc-provider/gitlab.example.com`, url: 'gitlab.example.com', clientIds: [AUDIENCE] },
      resourcePolicies: {},
    };
    return new Authorizer(config, { account: ACCOUNT, region: 'us-east-1' });
  };
  const session = { roleArn: CI_ROLE, sessionArn: CALLER };
  const names = { region: 'us-east-1', account: ACCOUNT, keyArn: (id: unknown) => String(id) };
  const startBuild = iamRequests('codebuild', 'StartBuild', { projectName: 'p', serviceRoleOverride: BUILD_ROLE }, names);
  const allowBuilds = { Effect: 'Allow', Action: 'codebuild:StartBuild', Resource: `arn:aws:codebuild:us-east-1:${ACCOUNT}:project/p` };
  const passRole = (service: string) => ({ Effect: 'Allow', Action: 'iam:PassRole', Resource: BUILD_ROLE, Condition: { StringEquals: { 'iam:PassedToService': service } } });

  it('PassRole is allowed only when limited to CodeBuild with iam:PassedToService', async () => {
    expect(await iam([allowBuilds, passRole('codebuild.amazonaws.com')]).decideAll(session, startBuild)).toEqual({ allowed: true });
    expect(await iam([allowBuilds, passRole('ec2.amazonaws.com')]).decideAll(session, startBuild)).toMatchObject({ allowed: false, request: { action: 'iam:PassRole' } });
  });

  it('names an explicit deny in an identity-based policy', async () => {
    const decision = await iam([allowBuilds, { Effect: 'Deny', Action: 'codebuild:*', Resource: '*' }]).decide(session, startBuild[0]!);
    if (decision.allowed) throw new Error('expected a denial');
    expect(deniedMessage(decision)).toBe(`User: ${CALLER} is not authorized to perform: codebuild:StartBuild on resource: arn:aws:codebuild:us-east-1:${ACCOUNT}:project/p with an explicit deny in an identity-based policy`);
  });

  it("a KMS key has KMS's default key policy, so the role's policy decides", async () => {
    const key = `arn:aws:kms:us-east-1:${ACCOUNT}:key/${KEY}`;
    expect(await iam([{ Effect: 'Allow', Action: 'kms:Sign', Resource: key }]).decide(session, { action: 'kms:Sign', resource: key })).toEqual({ allowed: true });
    expect(await iam([allowBuilds]).decide(session, { action: 'kms:Sign', resource: key })).toMatchObject({ allowed: false, why: 'implicit' });
  });

  it('refuses a condition key the action does not take, which IAM would drop quietly', async () => {
    await expect(iam([allowBuilds]).decide(session, { ...startBuild[0]!, context: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256' } })).rejects.toThrow(/does not take the condition keys kms:SigningAlgorithm/);
  });

  it('refuses to evaluate an ARN that names no resource of the action, instead of denying it quietly', async () => {
    await expect(iam([allowBuilds]).decide(session, { action: 'codebuild:StartBuild', resource: 'arn:aws:s3:::bucket/key' })).rejects.toThrow(/cannot evaluate codebuild:StartBuild/);
  });
});
