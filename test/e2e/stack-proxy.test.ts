/**
 * The local stack behind its proxy (issue 17 item 4): tinyproxy started and stopped by PID, the fake AWS and s3rver
 * over TLS with the stack's CA, and in proxy-only mode nothing served but through tinyproxy. No dockerd needed.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROXY_SOURCE_ADDRESS } from '../../stack/fake-aws/options';
import { REPO_ROOT } from '../../stack/paths';
import { groupMembers, isAlive } from '../../stack/process';
import { readStack, startStack, type Stack } from '../../stack/stack';
import { stopCheckingModels } from '../helpers/violations';

const dir = path.join(REPO_ROOT, '.stack', 'test-stack-proxy');
let stack: Stack | undefined;

beforeAll(async () => {
  stack = await startStack({ dir, docker: false, tls: true, proxyOnly: true });
});

afterAll(async () => {
  await stopCheckingModels(stack);
});

function running(): Stack {
  if (!stack) throw new Error('the stack did not start');
  return stack;
}

/**
 * curl's status code and body; `via` is `direct` (no proxy at all), `inside` (direct, from the proxy's address, as the
 * fake's own S3 client and the test control connect) or the proxy's URL.
 */
async function curl(url: string, via: string, args: string[] = [], ca = running().caFile ?? ''): Promise<{ status: number; body: string }> {
  const route = via === 'direct' ? ['--noproxy', '*'] : via === 'inside' ? ['--noproxy', '*', '--interface', PROXY_SOURCE_ADDRESS] : ['--proxy', via];
  const { stdout } = await promisify(execFile)('curl', ['-sS', '--cacert', ca, ...route, ...args, '-w', '\n%{http_code}', url], { env: { PATH: process.env.PATH ?? '' } });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

function assumeRoleArgs(token: string, roleArn: string): string[] {
  const form = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: roleArn, RoleSessionName: 'stack-proxy-test', WebIdentityToken: token });
  return ['-X', 'POST', '-H', 'content-type: application/x-www-form-urlencoded', '--data', form.toString()];
}

describe('local stack with --tls --proxy-only', () => {
  it('gives a job the proxy, the CA and https endpoints, and keeps the registry off the proxy', () => {
    const s = running();
    expect(s.proxyUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.env).toMatchObject({ HTTPS_PROXY: s.proxyUrl, NO_PROXY: s.registry, AWS_CA_BUNDLE: s.caFile });
    for (const [name, value] of Object.entries(s.env).filter(([n]) => n.startsWith('AWS_ENDPOINT_URL_'))) expect([name, value]).toEqual([name, expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/)]);
    expect(fs.readFileSync(s.caFile ?? '', 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    // The OIDC issuer's URL (what STS checks a token's iss against) follows the scheme.
    expect(fs.readFileSync(path.join(s.fakeWorkDir, 'oidc-issuer'), 'utf8')).toBe(`${s.fakeUrl}/oidc`);
  });

  it('serves STS through tinyproxy, over TLS the stack CA vouches for', async () => {
    const s = running();
    const r = await curl(s.env.AWS_ENDPOINT_URL_STS ?? '', s.proxyUrl ?? '', assumeRoleArgs(await s.signToken(), s.roleArn));
    expect(r.status).toBe(200);
    expect(r.body).toContain('<AccessKeyId>');
    expect(fs.readFileSync(path.join(dir, 'logs', 'proxy.log'), 'utf8')).toContain(`CONNECT ${new URL(s.fakeUrl).host}`);
  });

  it('serves S3 through tinyproxy, over TLS', async () => {
    const s = running();
    const r = await curl(`${s.s3Endpoint}/`, s.proxyUrl ?? '');
    expect(r.status).toBe(200);
    expect(r.body).toContain(`<Name>${s.bucket}</Name>`);
  });

  it('is refused by a client that does not trust the stack CA', async () => {
    const s = running();
    const other = path.join(dir, 'not-the-ca.pem');
    fs.writeFileSync(other, fs.readFileSync('/etc/ssl/certs/ca-certificates.crt'));
    await expect(curl(`${s.fakeUrl}/_fake/health`, 'inside', [], other)).rejects.toThrow(/certificate/i);
    expect((await curl(`${s.fakeUrl}/_fake/health`, 'inside')).status).toBe(200);
  });

  it('resets direct connections to the fake AWS and s3rver, as a firewall would, and says so in their logs', async () => {
    const s = running();
    const log = (name: string) => fs.readFileSync(path.join(dir, 'logs', `${name}.log`), 'utf8');
    const refused = 'proxy-only mode: reset a direct connection from 127.0.0.1';
    await expect(curl(s.env.AWS_ENDPOINT_URL_STS ?? '', 'direct', assumeRoleArgs(await s.signToken(), s.roleArn))).rejects.toThrow(/reset|SSL_ERROR_SYSCALL|connect/i);
    expect(log('fake-aws')).toContain(`fake-aws: ${refused}`);
    await expect(curl(`${s.s3Endpoint}/`, 'direct')).rejects.toThrow(/reset|SSL_ERROR_SYSCALL|connect/i);
    expect(log('s3rver')).toContain(`s3rver: ${refused}`);
  });

  it('stops tinyproxy by PID with the rest of the stack', async () => {
    const s = running();
    expect(Object.keys(s.pids).sort()).toEqual(['fake-aws', 'proxy', 'registry', 's3rver']);
    const proxyPid = s.pids.proxy ?? 0;
    expect(isAlive(proxyPid)).toBe(true);
    expect(Number(fs.readFileSync(path.join(dir, 'proxy', 'tinyproxy.pid'), 'utf8'))).toBe(proxyPid);
    await stopCheckingModels(s);
    stack = undefined;
    for (const pid of Object.values(s.pids)) {
      expect(isAlive(pid)).toBe(false);
      expect(groupMembers(pid)).toEqual([]);
    }
    expect(fs.readdirSync(path.join(dir, 'pids'))).toEqual([]);
  });
});

describe('stack/cli.ts up --proxy (plain http, direct requests still served)', () => {
  const cliDir = path.join(REPO_ROOT, '.stack', 'test-cli-proxy');
  const cli = (args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', 'stack/cli.ts', ...args, '--dir', cliDir], { cwd: REPO_ROOT });

  it('prints HTTP_PROXY for http endpoints, serves through tinyproxy and directly, and down stops tinyproxy', async () => {
    const { stdout } = await cli(['up', '--no-docker', '--proxy']);
    const proxyPid = readStack(cliDir)?.pids.proxy ?? 0;
    try {
      expect(isAlive(proxyPid)).toBe(true);
      const env = Object.fromEntries([...stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]));
      expect(env.HTTP_PROXY).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(env).not.toHaveProperty('HTTPS_PROXY');
      expect(env).not.toHaveProperty('AWS_CA_BUNDLE');
      expect(env.AWS_ENDPOINT_URL_S3).toMatch(/^http:\/\//);
      const list = `${env.AWS_ENDPOINT_URL_S3 ?? ''}/`;
      for (const via of [env.HTTP_PROXY ?? '', 'direct']) expect((await curl(list, via, [], '/dev/null')).status, via).toBe(200);
      expect(fs.readFileSync(path.join(cliDir, 'logs', 'proxy.log'), 'utf8')).toContain(`Request (file descriptor`);
    } finally {
      await cli(['down']);
    }
    expect(isAlive(proxyPid)).toBe(false);
  });
});
