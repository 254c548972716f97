/**
 * Issue 17's proof behind a proxy: the stack in proxy-only mode over TLS, where the fake AWS and s3rver answer only
 * what comes through tinyproxy, and the job is given nothing but HTTPS_PROXY, NO_PROXY (the registry) and the CA
 * as AWS_CA_BUNDLE (and CI_SERVER_TLS_CA_FILE for GitLab's API), as a runner's config.toml would pass them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Stack } from '../../stack/stack';
import { ExitCode } from '../../src/shared/errors';
import { runOnStack, SELF_COMPONENT, stackInputs } from '../helpers/gitlab-ci-local';
import { type Job, makeJob, readDotenv, registryDigest, runAction, visible } from './helpers';
import { stackForFile } from './stack-for-file';

let stack: Stack;
stackForFile('e2e-proxy', { tls: true, proxyOnly: true, phaseDelayMs: 200 }, (s) => (stack = s));

/** A job of examples/hello that also watches its GitLab job status, on the fake's GitLab API over TLS. */
async function proxiedJob(): Promise<Job> {
  const job = await makeJob(stack, 'examples/hello');
  job.env = { ...job.env, CI_API_V4_URL: `${stack.fakeUrl}/gitlab/api/v4`, CI_JOB_TOKEN: 'job-token', CI_SERVER_TLS_CA_FILE: stack.caFile ?? '' };
  return job;
}

const proxyLog = () => readFileSync(join(stack.dir, 'logs', 'proxy.log'), 'utf8');

describe('a job behind the proxy, with only the proxy as a way out', () => {
  it('builds, pushes and streams its log through the proxy, trusting the CA from AWS_CA_BUNDLE', async () => {
    const job = await proxiedJob();
    expect(job.env).toMatchObject({ HTTPS_PROXY: stack.proxyUrl, NO_PROXY: stack.registry, AWS_CA_BUNDLE: stack.caFile });
    expect(Object.keys(job.env).filter((name) => /^(NODE_EXTRA_CA_CERTS|HTTP_PROXY|ALL_PROXY)$/i.test(name))).toEqual([]);
    const before = proxyLog().length;

    const result = await runAction(job);
    const log = visible(result.output);
    expect(result.code, log).toBe(0);

    const dotenv = readDotenv(join(job.reportDir, 'build.env'));
    expect(dotenv.IMAGE_DIGEST).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await registryDigest(stack.registry, 'group/hello', '01234567')).toBe(dotenv.IMAGE_DIGEST);
    // The start line names the proxy and what bypasses it (the registry).
    expect(log).toContain(`Network: proxy ${new URL(stack.proxyUrl ?? '').host} for https://; direct to ${stack.registry}`);
    // The build's own output reached the job log (Live Tail or the log stream, both through the proxy).
    expect(log).toContain('hello from the RUN step, greeting=');
    // The fake AWS was reached through tinyproxy (the only way it answers in this mode), S3 calls too: the fake
    // decides them and passes them to s3rver itself, which the job never reaches.
    const tunnels = proxyLog().slice(before);
    expect(tunnels).toContain(`CONNECT ${new URL(stack.fakeUrl).host}`);
    expect(tunnels).not.toContain(`CONNECT ${new URL(stack.s3Endpoint).host}`);
  });

  it("builds and pushes through the component (gitlab-ci-local), and its digest is the registry's", async () => {
    const run = await runOnStack(stack, { include: [{ component: SELF_COMPONENT, inputs: stackInputs(stack, 'build-image', 'group/proxied') }] });
    try {
      expect(run.code, run.output).toBe(0);
      expect(run.output).toContain('hello from the RUN step');
      const dotenv = readDotenv(join(run.dir, '.codebuild-image/build-image/build.env'));
      expect(dotenv.IMAGE_DIGEST).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(await registryDigest(stack.registry, 'group/proxied', 'latest')).toBe(dotenv.IMAGE_DIGEST);
    } finally {
      run.remove();
    }
  });

  it('fails in one line naming the unreachable endpoint and HTTPS_PROXY when not given the proxy', async () => {
    const job = await proxiedJob();
    delete job.env.HTTPS_PROXY;
    delete job.env.NO_PROXY;
    const result = await runAction(job);
    const log = visible(result.output);
    expect(result.code, log).toBe(ExitCode.AwsError);
    const lines = log.split('\n').filter((line) => line.includes('HTTPS_PROXY'));
    expect(lines, log).toHaveLength(1);
    // The first call (STS) finds its endpoint reset, as a firewall resets a direct connection.
    expect(lines[0]).toContain(`cannot reach ${new URL(stack.env.AWS_ENDPOINT_URL_STS ?? '').host} (ECONNRESET); if this runner reaches it only through a proxy, set HTTPS_PROXY`);
    expect(readFileSync(join(stack.dir, 'logs', 'fake-aws.log'), 'utf8')).toContain('proxy-only mode: reset a direct connection from 127.0.0.1');
  });
});
