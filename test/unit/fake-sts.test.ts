import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import { fromWebToken } from '@aws-sdk/credential-providers';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, type TokenClaims } from '../../stack/oidc';
import { startStack, type Stack } from './fake-support';

const ROLE = 'arn:aws:iam::000000000000:role/gitlab-builder';
const OTHER_ROLE = 'arn:aws:iam::000000000000:role/other';
const AUD = 'https://gitlab.example.com';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    roles: [
      { arn: ROLE, audience: AUD, subPatterns: ['project_path:group/project:ref_type:branch:ref:*'], maxSessionDuration: 7200 },
      { arn: OTHER_ROLE, audience: 'other-audience', subPatterns: ['*'] },
    ],
  });
});
afterAll(async () => {
  await stack?.stop();
});

const token = (claims: Partial<TokenClaims> = {}) => signToken(stack.workDir, { aud: AUD, ...claims });

async function assume(webIdentityToken: string, roleArn = ROLE, extra: { roleSessionName?: string; durationSeconds?: number } = {}) {
  return fromWebToken({ roleArn, webIdentityToken, roleSessionName: 'gitlab-group-project-1-2', clientConfig: { maxAttempts: 1 }, ...extra })();
}

async function errorOf(p: Promise<unknown>): Promise<{ name: string; message: string; status: number | undefined }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}

describe('fake STS AssumeRoleWithWebIdentity', () => {
  it('issues temporary credentials honouring DurationSeconds, accepted by the fake CodeBuild', async () => {
    const before = Date.now();
    const creds = await assume(await token(), ROLE, { durationSeconds: 7200 });
    expect(creds.accessKeyId).toMatch(/^ASIA[0-9A-F]{16}$/);
    expect(creds.sessionToken).toBeTruthy();
    const lifetime = (creds.expiration?.getTime() ?? 0) - before;
    expect(lifetime).toBeGreaterThan(7190_000);
    expect(lifetime).toBeLessThan(7210_000);
    expect((creds as { accountId?: string }).accountId).toBe('000000000000');

    const cb = new CodeBuildClient({ credentials: creds });
    const out = await cb.send(new BatchGetBuildsCommand({ ids: ['proj:none'] }));
    expect(out.buildsNotFound).toEqual(['proj:none']);
  });

  it('rejects temporary credentials it never issued on signed calls', async () => {
    const cb = new CodeBuildClient({ credentials: { accessKeyId: 'ASIAFFFFFFFFFFFFFFFF', secretAccessKey: 'x', sessionToken: 'y' }, maxAttempts: 1 });
    expect((await errorOf(cb.send(new BatchGetBuildsCommand({ ids: ['proj:x'] })))).name).toBe('UnrecognizedClientException');
  });

  it('answers InvalidIdentityToken for a forged signature, an unknown issuer and a malformed token', async () => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const forged = await signToken(stack.workDir, { aud: AUD }, { privateJwk: { ...(await exportJWK(privateKey)), alg: 'RS256' } });
    expect(await errorOf(assume(forged))).toMatchObject({ name: 'InvalidIdentityTokenException', status: 400 });
    const otherIssuer = await signToken(stack.workDir, { aud: AUD }, { issuer: 'https://gitlab.evil.example' });
    expect((await errorOf(assume(otherIssuer))).message).toMatch(/No OpenIDConnect provider found/);
    expect((await errorOf(assume('not-a-jwt'))).name).toBe('InvalidIdentityTokenException');
  });

  it('answers InvalidIdentityToken "Incorrect token audience" when no role of the provider lists the audience', async () => {
    expect(await errorOf(assume(await token({ aud: 'https://nobody' })))).toMatchObject({ name: 'InvalidIdentityTokenException', message: 'Incorrect token audience' });
  });

  it('answers AccessDenied (403) when the trust policy does not match sub or aud, or the role does not exist', async () => {
    const denied = { name: 'AccessDenied', status: 403, message: 'Not authorized to perform sts:AssumeRoleWithWebIdentity' };
    expect(await errorOf(assume(await token({ ref_type: 'tag', ref: 'v1' })))).toMatchObject(denied);
    expect(await errorOf(assume(await token({ aud: 'other-audience' })))).toMatchObject(denied);
    expect(await errorOf(assume(await token(), 'arn:aws:iam::000000000000:role/missing'))).toMatchObject(denied);
    await expect(assume(await token({ aud: 'other-audience' }), OTHER_ROLE)).resolves.toHaveProperty('accessKeyId');
  });

  it('answers ExpiredTokenException for an expired token', async () => {
    const expired = await token({ exp: Math.floor(Date.now() / 1000) - 10 });
    expect(await errorOf(assume(expired))).toMatchObject({ name: 'ExpiredTokenException', status: 400 });
  });

  it('answers ValidationError for a bad RoleSessionName and a DurationSeconds above the role maximum', async () => {
    expect((await errorOf(assume(await token(), ROLE, { roleSessionName: 'has space' }))).name).toBe('ValidationError');
    expect((await errorOf(assume(await token(), ROLE, { roleSessionName: 'x' }))).message).toMatch(/roleSessionName/);
    // Both break STS's model (pattern, then length): the fake records them.
    expect((await stack.takeViolations()).map((v) => `${v.operation} ${v.path} ${v.message}`)).toEqual([
      "AssumeRoleWithWebIdentity roleSessionName Value 'has space' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
      "AssumeRoleWithWebIdentity roleSessionName Value 'x' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2",
    ]);
    expect((await errorOf(assume(await token({ aud: 'other-audience' }), OTHER_ROLE, { durationSeconds: 7200 }))).message).toMatch(/MaxSessionDuration/);
  });
});

describe('wire formats', () => {
  it('answers STS errors as Query XML ErrorResponse and JSON 1.1 errors with __type', async () => {
    const form = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: ROLE, RoleSessionName: 'ok-name', WebIdentityToken: 'bad.token.x' });
    const sts = await fetch(stack.fake.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    expect(sts.status).toBe(400);
    expect(await sts.text()).toMatch(/^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><Error><Type>Sender<\/Type><Code>InvalidIdentityToken<\/Code><Message>/);

    const json = await fetch(stack.fake.url, { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'CodeBuild_20161006.BatchGetBuilds' }, body: '{"ids":["proj:x"]}' });
    expect(json.status).toBe(400);
    expect(json.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(await json.json()).toEqual({ __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
  });

  it('rejects credentials scoped to another region', async () => {
    const cb = new CodeBuildClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIAX', secretAccessKey: 'x' }, maxAttempts: 1 });
    expect((await errorOf(cb.send(new BatchGetBuildsCommand({ ids: ['proj:x'] })))).name).toBe('InvalidSignatureException');
  });
});

describe('fake OIDC issuer', () => {
  it('publishes discovery and JWKS that verify tokens from signToken, with GitLab claims', async () => {
    const discovery = (await (await fetch(`${stack.fake.url}/oidc/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    expect(discovery.issuer).toBe(stack.fake.issuer);
    const { payload } = await jwtVerify(await token({ project_path: 'a/b' }), createRemoteJWKSet(new URL(discovery.jwks_uri)), { issuer: discovery.issuer, audience: AUD });
    expect(payload).toMatchObject({ sub: 'project_path:a/b:ref_type:branch:ref:main', namespace_path: 'a', project_path: 'a/b', ref: 'main', ref_type: 'branch' });
  });
});
