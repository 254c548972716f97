/**
 * Smoke test of the local stack itself (root + dockerd): every piece answers, and stopping leaves nothing behind.
 */
import { execFile } from 'node:child_process';
import { verify } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CodeBuildClient, StartBuildCommand } from '@aws-sdk/client-codebuild';
import { KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { fromWebToken } from '@aws-sdk/credential-providers';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, execRootFor } from '../../stack/docker';
import { REPO_ROOT } from '../../stack/paths';
import { groupMembers, isAlive } from '../../stack/process';
import { manifestDigest, platformManifests } from '../../stack/registry';
import { readStack, startStack, type Stack, type StackInfo } from '../../stack/stack';
import { stopCheckingModels, violationsError } from '../helpers/violations';
import { fakeControl } from '../../stack/fake-aws/control';

// Fixed directories under .stack/: a run killed midway leaves PID files that the next run's start cleans up.
const dir = path.join(REPO_ROOT, '.stack', 'test-stack');
const cliDir = path.join(REPO_ROOT, '.stack', 'test-cli');
let stack: Stack | undefined;

beforeAll(async () => {
  stack = await startStack({ dir });
});

afterAll(async () => {
  await stopCheckingModels(stack);
});

function running(): Stack {
  if (!stack) throw new Error('the stack did not start');
  return stack;
}

describe('local stack', () => {
  it('serves the base image from the registry, built and runnable by its dockerd', async () => {
    const s = running();
    expect(s.baseImage).toBe(`${s.registry}/busybox:stable`);
    expect(await manifestDigest(s.registry, 'busybox', 'stable')).toMatch(/^sha256:[0-9a-f]{64}$/);
    const out = await docker(s.dockerHost ?? '', ['run', '--rm', '--network', 'none', s.baseImage ?? '', 'echo', 'busybox runs'], s.dockerConfig);
    expect(out.trim()).toBe('busybox runs');
  });

  it('serves the base image for linux/arm64 too, which runs as aarch64 under QEMU', async () => {
    const s = running();
    const platforms = (await platformManifests(s.registry, 'busybox', 'stable')).map((m) => m.platform).sort();
    expect(platforms).toEqual(['linux/amd64', 'linux/arm64']);
    const run = (platform: string) =>
      docker(s.dockerHost ?? '', ['run', '--rm', '--network', 'none', '--platform', platform, s.baseImage ?? '', 'uname', '-m'], s.dockerConfig);
    expect((await run('linux/arm64')).trim()).toBe('aarch64');
    expect((await run('linux/amd64')).trim()).toBe('x86_64');
  });

  it('has the context bucket, writable with any temporary credentials the fake STS hands out', async () => {
    const s = running();
    const s3 = new S3Client({
      region: s.region,
      endpoint: s.s3Endpoint,
      credentials: { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'session' },
    });
    await s3.send(new PutObjectCommand({ Bucket: s.bucket, Key: 'contexts/smoke.txt', Body: 'smoke' }));
    const got = await s3.send(new GetObjectCommand({ Bucket: s.bucket, Key: 'contexts/smoke.txt' }));
    expect(await got.Body?.transformToString()).toBe('smoke');
    s3.destroy();
  });

  it('answers as OIDC issuer and lets the stack role be assumed with a token from signToken', async () => {
    const s = running();
    const discovery = (await (await fetch(`${s.fakeUrl}/oidc/.well-known/openid-configuration`)).json()) as { issuer: string };
    expect(discovery.issuer).toBe(`${s.fakeUrl}/oidc`);

    const assume = (token: string) =>
      fetch(s.env.AWS_ENDPOINT_URL_STS ?? '', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          Action: 'AssumeRoleWithWebIdentity',
          Version: '2011-06-15',
          RoleArn: s.roleArn,
          RoleSessionName: 'smoke',
          WebIdentityToken: token,
        }),
      });
    const ok = await assume(await s.signToken());
    expect(ok.status, await ok.clone().text()).toBe(200);
    expect(await ok.text()).toMatch(/<AccessKeyId>ASIA/);
    // The role trusts projects under group/ only.
    const denied = await assume(await s.signToken({ project_path: 'evil/app' }));
    expect(await denied.text()).toMatch(/<Code>AccessDenied<\/Code>/);
  });

  it("evaluates the template's policies: the CI role starts builds of its own projects only", async () => {
    const s = running();
    const credentials = fromWebToken({ roleArn: s.roleArn, webIdentityToken: await s.signToken(), roleSessionName: 'smoke', clientConfig: { region: s.region, endpoint: s.fakeUrl } });
    const codebuild = new CodeBuildClient({ region: s.region, endpoint: s.fakeUrl, credentials, maxAttempts: 1 });
    const refused = await codebuild.send(new StartBuildCommand({ projectName: 'another-team' })).catch((e: Error) => e);
    codebuild.destroy();
    expect(refused).toMatchObject({
      name: 'AccessDeniedException',
      message: `User: arn:aws:sts::${s.account}:assumed-role/${s.roleArn.split('/')[1] ?? ''}/smoke is not authorized to perform: codebuild:StartBuild on resource: ` +
        `arn:aws:codebuild:${s.region}:${s.account}:project/another-team because no identity-based policy allows the codebuild:StartBuild action`,
    });
  });

  it('refuses a second stack in the same directory while this one runs', async () => {
    await expect(startStack({ dir })).rejects.toThrow(/already running in .*stack\/cli\.ts down/);
  });

  it('stops every process it started, by PID', async () => {
    const s = running();
    const pids = Object.values(s.pids);
    expect(Object.keys(s.pids).sort()).toEqual(['containerd', 'dockerd', 'fake-aws', 'registry', 's3rver']);
    for (const pid of pids) expect(isAlive(pid)).toBe(true);
    // This test stops the stack itself, so the file's check of AWS's models runs here.
    expect(violationsError(await fakeControl(s.fakeUrl).violations())).toBeUndefined();

    await s.stop();
    stack = undefined;

    for (const pid of pids) {
      expect(isAlive(pid)).toBe(false);
      expect(groupMembers(pid)).toEqual([]);
    }
    expect(fs.readdirSync(path.join(dir, 'pids'))).toEqual([]);
    expect(readStack(dir)).toBeUndefined();
    expect(fs.existsSync(execRootFor(dir))).toBe(false);
  });
});

describe('stack/cli.ts', () => {
  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'stack', 'cli.ts'), ...args], { cwd: REPO_ROOT });

  it('up leaves a detached stack running, env prints it, down stops it', async () => {
    await cli('down', '--dir', cliDir); // a detached stack left by a killed run
    try {
      const up = await cli('up', '--dir', cliDir, '--no-docker');
      expect(up.stdout).toMatch(/^export AWS_ENDPOINT_URL_CODEBUILD='http:\/\/127\.0\.0\.1:\d+'$/m);
      const info = readStack(cliDir);
      await expectSigningKey(up.stderr, info);
      const pids = Object.values(info?.pids ?? {});
      expect(pids).toHaveLength(3);
      for (const pid of pids) expect(isAlive(pid)).toBe(true);
      expect((await cli('env', '--dir', cliDir)).stdout).toBe(up.stdout);

      await cli('down', '--dir', cliDir);
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
      await expect(cli('env', '--dir', cliDir)).rejects.toThrow(/no local stack runs in/);
    } finally {
      await cli('down', '--dir', cliDir);
    }
  });

  it('up --auth-registry adds a registry that requires a user; --secret and --parameter seed the fake', async () => {
    await cli('down', '--dir', cliDir);
    try {
      const up = await cli('up', '--dir', cliDir, '--no-docker', '--auth-registry', '--secret', 'ci/reg={"username":"u","password":"p=1"}', '--parameter', '/ci/hub=user:pw');
      const host = /^export STACK_AUTH_REGISTRY='(127\.0\.0\.1:\d+)'$/m.exec(up.stdout)?.[1];
      expect(up.stdout).toContain("export STACK_AUTH_REGISTRY_SECRET='stack/auth-registry'");
      expect((await fetch(`http://${host}/v2/`)).status).toBe(401);
      const config = JSON.parse(fs.readFileSync(path.join(cliDir, 'fake', 'config.json'), 'utf8')) as { secrets: Record<string, string>; parameters: Record<string, string> };
      expect(config.parameters).toEqual({ '/ci/hub': 'user:pw' });
      expect(config.secrets['ci/reg']).toBe('{"username":"u","password":"p=1"}');
      const user = JSON.parse(config.secrets['stack/auth-registry'] ?? '{}') as { username: string; password: string };
      const basic = Buffer.from(`${user.username}:${user.password}`).toString('base64');
      expect((await fetch(`http://${host}/v2/`, { headers: { authorization: `Basic ${basic}` } })).status).toBe(200);
      const pids = Object.values(readStack(cliDir)?.pids ?? {});
      expect(pids).toHaveLength(4);
      await cli('down', '--dir', cliDir);
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
    } finally {
      await cli('down', '--dir', cliDir);
    }
  });
});

/** `up` printed the stack's KMS key, which signs through AWS_ENDPOINT_URL_KMS and verifies with its PEM. */
async function expectSigningKey(stderr: string, info: StackInfo | undefined): Promise<void> {
  if (!info) throw new Error('cli.ts up wrote no stack.json');
  expect(info.signingKeys).toHaveLength(1);
  const key = info.signingKeys[0] as StackInfo['signingKeys'][number];
  expect(stderr).toContain(`KMS signing key alias/codebuild-image-signing: ${key.keyArn} (public key ${key.publicKeyPem})`);
  const kms = new KMSClient({ endpoint: info.env.AWS_ENDPOINT_URL_KMS ?? '', region: info.region, credentials: { accessKeyId: 'AKIAFAKETESTKEY00000', secretAccessKey: 'x' } });
  const message = Buffer.from('signed by hand');
  const { Signature } = await kms.send(new SignCommand({ KeyId: key.aliasArn, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }));
  expect(verify('sha256', message, fs.readFileSync(key.publicKeyPem), Buffer.from(Signature ?? []))).toBe(true);
  kms.destroy();
  expect(violationsError(await fakeControl(info.fakeUrl).violations())).toBeUndefined();
}
