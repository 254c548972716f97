import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import { fromWebToken } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../stack/oidc';
import { STATIC_CREDENTIALS, startStack, type Stack } from './fake-support';

const ROLE = 'arn:aws:iam::000000000000:role/r';
let stack: Stack;
let oneShot: CodeBuildClient;
beforeAll(async () => {
  stack = await startStack({ roles: [{ arn: ROLE, audience: 'aud', subPatterns: ['*'] }] });
  oneShot = new CodeBuildClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1 });
});
afterEach(async () => {
  await stack.control.clearFaults();
  await stack.control.resetCalls();
});
afterAll(async () => {
  await stack?.stop();
});

const getBuilds = (client = oneShot) => client.send(new BatchGetBuildsCommand({ ids: ['proj:x'] }));
const failure = (p: Promise<unknown>) =>
  p.then(
    () => ({ name: 'no error', status: 0, code: '' }),
    (e: Error & { $metadata?: { httpStatusCode?: number }; code?: string }) => ({ name: e.name, status: e.$metadata?.httpStatusCode ?? 0, code: e.code ?? '' }),
  );

describe('fault injection', () => {
  it('throttles the next N calls of one operation with each service’s throttling code', async () => {
    await stack.control.inject({ kind: 'throttle', operation: 'BatchGetBuilds', count: 2 });
    expect(await failure(getBuilds())).toMatchObject({ name: 'ThrottlingException', status: 400 });
    expect(await failure(getBuilds())).toMatchObject({ name: 'ThrottlingException' });
    expect(await failure(getBuilds())).toMatchObject({ name: 'no error' });

    await stack.control.inject({ kind: 'throttle', operation: 'GetLogEvents' });
    const logsErr = await failure(stack.logs.send(new GetLogEventsCommand({ logGroupName: 'g', logStreamName: 's' }), {}));
    expect(logsErr.name).toBe('ResourceNotFoundException'); // the SDK retried the throttled call by itself
    expect((await stack.control.calls())['GetLogEvents']).toBe(2);

    await stack.control.inject({ kind: 'throttle', operation: 'AssumeRoleWithWebIdentity' });
    const token = await signToken(stack.workDir, { aud: 'aud' });
    const sts = fromWebToken({ roleArn: ROLE, webIdentityToken: token, roleSessionName: 'sess', clientConfig: { maxAttempts: 1 } });
    expect(await failure(sts())).toMatchObject({ name: 'Throttling', status: 400 });
  });

  it('answers 500 and 503 for the next N calls, which the SDK retries', async () => {
    await stack.control.inject({ kind: 'status', status: 500, operation: 'BatchGetBuilds' });
    expect(await failure(getBuilds())).toMatchObject({ name: 'InternalFailure', status: 500 });
    await stack.control.inject({ kind: 'status', status: 503, operation: 'BatchGetBuilds' });
    expect(await failure(getBuilds())).toMatchObject({ name: 'ServiceUnavailableException', status: 503 });
    await stack.control.inject({ kind: 'status', status: 503, operation: '*', count: 2 });
    expect(await failure(getBuilds(stack.codebuild))).toMatchObject({ name: 'no error' });
    expect((await stack.control.calls())['BatchGetBuilds']).toBe(5);
  });

  it('resets the connection for the next N calls', async () => {
    await stack.control.inject({ kind: 'reset', operation: 'BatchGetBuilds' });
    const err = await failure(getBuilds());
    expect(err.code === 'ECONNRESET' || /socket hang up|ECONNRESET/i.test(err.name)).toBe(true);
    expect(await failure(getBuilds())).toMatchObject({ name: 'no error' });
  });

  it('delays the next N calls (a client with a short request timeout gives up)', async () => {
    const impatient = new CodeBuildClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1, requestHandler: new NodeHttpHandler({ requestTimeout: 200, throwOnRequestTimeout: true }) });
    await stack.control.inject({ kind: 'delay', ms: 1500, operation: 'BatchGetBuilds' });
    expect((await failure(getBuilds(impatient))).name).toBe('TimeoutError');
    expect(await failure(getBuilds(impatient))).toMatchObject({ name: 'no error' });
  });

  it('enforces a requests-per-second quota per operation', async () => {
    await stack.control.inject({ kind: 'quota', operation: 'BatchGetBuilds', rps: 2 });
    const results = await Promise.all(Array.from({ length: 6 }, () => failure(getBuilds())));
    const throttled = results.filter((r) => r.name === 'ThrottlingException').length;
    expect(throttled).toBeGreaterThanOrEqual(4);
    expect(results.filter((r) => r.name === 'no error').length).toBe(6 - throttled);
    expect(await stack.control.refusals()).toEqual({ BatchGetBuilds: { ThrottlingException: throttled } });
  });

  it('counts calls per operation and rejects a malformed fault', async () => {
    await getBuilds();
    await getBuilds();
    expect(await stack.control.calls()).toEqual({ BatchGetBuilds: 2 });
    await stack.control.resetCalls();
    expect(await stack.control.calls()).toEqual({});
    expect(await stack.control.refusals()).toEqual({});
    await expect(stack.control.inject({ kind: 'status', status: 404 as 500, operation: 'x' })).rejects.toThrow(/invalid fault/);
  });
});
