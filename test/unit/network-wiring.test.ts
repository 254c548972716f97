// Every client the job makes takes the job's network from its environment: the AWS clients, the credential
// providers' STS, the registry client and the GitLab job-status watch all reach their servers through a real
// tinyproxy (the server sees tinyproxy's bound address, 127.0.0.2) and trust the CA bundles the variables name.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { DescribeLogGroupsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { BatchGetBuildsCommand } from '@aws-sdk/client-codebuild';
import { GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { GetPublicKeyCommand } from '@aws-sdk/client-kms';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClients } from '../../src/aws/clients';
import { resolveCredentials } from '../../src/aws/credentials';
import { watchCancellation } from '../../src/follow/cancel';
import { registryClient } from '../../src/registry/signin';
import { memoryOutput } from '../helpers/output';
import { settingsFixture } from '../helpers/settings-fixture';
import { makeTestCa, type TestCa } from '../helpers/test-ca';
import { PROXY_PEER, startTinyproxy, type Tinyproxy } from '../helpers/tinyproxy';

const STS_ANSWER = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials>
<AccessKeyId>ASIAFAKETESTKEY00000</AccessKeyId><SecretAccessKey>not-checked</SecretAccessKey><SessionToken>session</SessionToken>
<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`;

const seen: { peer: string; path: string; body: string }[] = [];
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    seen.push({ peer: req.socket.remoteAddress ?? '', path: req.url ?? '', body });
    if (body.includes('Action=AssumeRoleWithWebIdentity')) res.writeHead(200, { 'content-type': 'text/xml' }).end(STS_ANSWER);
    else if (req.url === '/api/v4/job') res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"canceled"}');
    else res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end('{}');
  });
}

let ca: TestCa;
let proxy: Tinyproxy;
let secure: https.Server;
let plain: http.Server;
const listen = async (server: http.Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
};
const close = (server: http.Server) => {
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeAllConnections();
  return closed;
};

let securePort: number;
let plainPort: number;
beforeAll(async () => {
  ca = makeTestCa();
  proxy = await startTinyproxy();
  secure = https.createServer(ca.issue(['IP:127.0.0.1']), handler);
  plain = http.createServer(handler);
  securePort = await listen(secure);
  plainPort = await listen(plain);
  Object.assign(process.env, {
    HTTPS_PROXY: proxy.url,
    http_proxy: proxy.url,
    NO_PROXY: 'gitlab.internal',
    AWS_CA_BUNDLE: ca.file,
    CI_SERVER_TLS_CA_FILE: ca.file,
    AWS_ENDPOINT_URL: `https://127.0.0.1:${securePort}`,
  });
});

afterAll(async () => {
  for (const name of ['HTTPS_PROXY', 'http_proxy', 'NO_PROXY', 'AWS_CA_BUNDLE', 'CI_SERVER_TLS_CA_FILE', 'AWS_ENDPOINT_URL']) delete process.env[name];
  await Promise.all([close(secure), close(plain)]);
  await proxy.stop();
  ca.remove();
});

it('sends every AWS client, STS included, through the proxy with AWS_CA_BUNDLE', async () => {
  const settings = settingsFixture();
  const clients = createClients('us-east-1', resolveCredentials(settings, memoryOutput()).provider);
  await clients.credentials();
  expect(seen.at(-1)).toMatchObject({ peer: PROXY_PEER, body: expect.stringContaining('AssumeRoleWithWebIdentity') });
  const calls: [string, () => Promise<unknown>][] = [
    ['CodeBuild', () => clients.codebuild.send(new BatchGetBuildsCommand({ ids: ['p:1'] }))],
    ['CodeBuild (once per job)', () => clients.codebuildOnce.send(new BatchGetBuildsCommand({ ids: ['p:1'] }))],
    ['Logs', () => clients.logs.send(new DescribeLogGroupsCommand({}))],
    ['S3', () => clients.s3.send(new HeadObjectCommand({ Bucket: 'sources', Key: 'context.zip' }))],
    ['SSM', async () => (await clients.ssm()).send(new GetParameterCommand({ Name: 'p' }))],
    ['Secrets Manager', async () => (await clients.secrets()).send(new GetSecretValueCommand({ SecretId: 's' }))],
    ['ECR', async () => (await clients.ecr('eu-west-1')).send(new GetAuthorizationTokenCommand({}))],
    ['KMS', async () => (await clients.kms('eu-west-1')).send(new GetPublicKeyCommand({ KeyId: 'k' }))],
  ];
  for (const [name, call] of calls) {
    const before = seen.length;
    await call();
    expect(seen.slice(before).map((s) => s.peer), name).toEqual([PROXY_PEER]);
  }
  // StartLiveTail's event stream goes through the same handler: Logs speaks HTTP/1.1 for every operation.
  expect(clients.logs.config.requestHandler.metadata?.handlerProtocol).toBe('http/1.1');
});

it('sends the registry client and the GitLab job-status watch through the proxy', async () => {
  const settings = settingsFixture({ image: { registry: `127.0.0.1:${plainPort}`, path: 'group/app', name: `127.0.0.1:${plainPort}/group/app` } });
  const clients = createClients('us-east-1', async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }));
  await registryClient(settings, clients).find('group/app', 'latest');
  expect(seen.at(-1)).toMatchObject({ peer: PROXY_PEER, path: '/v2/group/app/manifests/latest' });

  const watch = watchCancellation({ out: memoryOutput(), job: { ...settings.gitlab, apiUrl: `https://127.0.0.1:${securePort}/api/v4`, jobToken: 'token' }, pollMs: 10 });
  await expect(watch.cancelled).resolves.toBe('the GitLab job is canceled');
  expect(seen.at(-1)).toMatchObject({ peer: PROXY_PEER, path: '/api/v4/job' });
});

it("warns once, naming CI_SERVER_TLS_CA_FILE, when GitLab's certificate is not trusted", async () => {
  const saved = process.env.CI_SERVER_TLS_CA_FILE;
  delete process.env.CI_SERVER_TLS_CA_FILE;
  try {
    const out = memoryOutput();
    const watch = watchCancellation({ out, job: { ...settingsFixture().gitlab, apiUrl: `https://127.0.0.1:${securePort}/api/v4`, jobToken: 'token' }, pollMs: 10 });
    while (out.lines.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    watch.dispose();
    expect(out.lines).toEqual([
      `WARNING: Cannot check the GitLab job status (TLS to 127.0.0.1:${securePort} through the proxy ${proxy.url.slice(7)}: its certificate is not signed by a CA this job trusts (UNABLE_TO_VERIFY_LEAF_SIGNATURE); give the PEM file of the CA that signs it (a TLS-intercepting proxy's own CA, for one) in CI_SERVER_TLS_CA_FILE); will keep trying`,
    ]);
  } finally {
    process.env.CI_SERVER_TLS_CA_FILE = saved;
  }
});
