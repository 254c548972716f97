// The fake's Parameter Store and Secrets Manager, reached with the real SDK clients through AWS_ENDPOINT_URL_SSM and
// AWS_ENDPOINT_URL_SECRETS_MANAGER, over the values its CodeBuild resolves PARAMETER_STORE and SECRETS_MANAGER
// variables from: a parameter written before StartBuild reaches the build, and one deleted is gone.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DeleteParameterCommand, GetParameterCommand, GetParametersByPathCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildspec, phaseList, runBuild, startStack, STATIC_CREDENTIALS, type Stack } from './fake-support';

let stack: Stack;
let ssm: SSMClient;
let secrets: SecretsManagerClient;
beforeAll(async () => {
  stack = await startStack({ phaseDelayMs: 10, secrets: { 'ci/registry': '{"username":"u","password":"p"}' } });
  ssm = new SSMClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1 });
  secrets = new SecretsManagerClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1 });
});
afterAll(async () => {
  await stack?.stop();
});

/** The error name the SDK raised, or 'no error'. */
const failure = (p: Promise<unknown>) => p.then(() => 'no error', (e: Error) => e.name);

describe('fake Parameter Store', () => {
  it('a SecureString put before StartBuild is resolved for the build; once deleted, builds cannot resolve it', async () => {
    const name = '/codebuild-image/job-tokens/42/1234';
    expect(await ssm.send(new PutParameterCommand({ Name: name, Value: 'job-token-value', Type: 'SecureString' }))).toMatchObject({ Version: 1, Tier: 'Standard' });
    expect(await failure(ssm.send(new PutParameterCommand({ Name: name, Value: 'again', Type: 'SecureString' })))).toBe('ParameterAlreadyExists');
    expect((await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter).toMatchObject({ Value: 'job-token-value' });

    const check = { buildspecOverride: buildspec({ build: ['[ "$TOKEN" = job-token-value ]'] }), environmentVariablesOverride: [{ name: 'TOKEN', value: name, type: 'PARAMETER_STORE' as const }] };
    expect((await runBuild(stack, check)).buildStatus).toBe('SUCCEEDED');

    await ssm.send(new DeleteParameterCommand({ Name: name }));
    expect(await failure(ssm.send(new DeleteParameterCommand({ Name: name })))).toBe('ParameterNotFound');
    expect(phaseList(await runBuild(stack, check))).toContain('DOWNLOAD_SOURCE:FAILED');
  });

  it('refuses an unsigned request and an operation it does not have', async () => {
    const res = await fetch(stack.fake.url, { method: 'POST', headers: { 'x-amz-target': 'AmazonSSM.PutParameter' }, body: '{}' });
    expect(res.status).toBe(400);
    expect(await failure(ssm.send(new GetParametersByPathCommand({ Path: '/x' })))).toBe('UnknownOperationException');
  });
});

describe('fake Secrets Manager', () => {
  it('serves a secret by name and by ARN, the value its builds resolve', async () => {
    expect((await secrets.send(new GetSecretValueCommand({ SecretId: 'ci/registry' }))).SecretString).toBe('{"username":"u","password":"p"}');
    const arn = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:ci/registry-AbCdEf';
    expect((await secrets.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString).toBe('{"username":"u","password":"p"}');
    expect(await failure(secrets.send(new GetSecretValueCommand({ SecretId: 'ci/none' })))).toBe('ResourceNotFoundException');
  });
});
