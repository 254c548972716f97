import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createClients, ONCE_PER_JOB, POLLING_RETRY } from '../../src/aws/clients';

const repo = join(__dirname, '../..');

describe('createClients', () => {
  it('gives the follow loop\'s clients the one retry set-up', async () => {
    const c = createClients('eu-west-1', async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }));
    for (const client of [c.codebuild, c.logs]) {
      expect(await client.config.maxAttempts()).toBe(POLLING_RETRY.maxAttempts);
      expect((await client.config.retryStrategy()).constructor.name).toBe('AdaptiveRetryStrategy');
    }
  });

  it('makes the clients only some jobs use on first use, one per region, with the patient retries', async () => {
    const c = createClients('eu-west-1', async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }));
    const [ssm, secrets, ecr, kms] = [await c.ssm(), await c.secrets(), await c.ecr('us-east-1'), await c.kms('us-east-1')];
    expect(await c.ssm()).toBe(ssm);
    expect(await c.secrets()).toBe(secrets);
    expect(await c.ecr('us-east-1')).toBe(ecr);
    expect(await c.ecr('eu-central-1')).not.toBe(ecr);
    expect(await c.kms('us-east-1')).toBe(kms);
    expect(await ssm.config.region()).toBe('eu-west-1');
    expect(await secrets.config.region()).toBe('eu-west-1');
    expect(await ecr.config.region()).toBe('us-east-1');
    expect(await (await c.kms('ap-south-1')).config.region()).toBe('ap-south-1');
    for (const client of [ssm, secrets, ecr, kms]) expect(await client.config.maxAttempts()).toBe(ONCE_PER_JOB.maxAttempts);
  });

  it('turns off only the SDK\'s Node-version notice on Node 20: other warnings still show', () => {
    const script = [
      "require('./src/aws/clients').createClients('us-east-1', async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }));",
      "process.emitWarning('another warning');",
    ].join('\n');
    const env = { ...process.env };
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    const node20 = spawnSync('/usr/bin/node', ['--version'], { encoding: 'utf8' }).stdout.trim();
    expect(node20).toMatch(/^v20\./);
    const run = spawnSync('/usr/bin/node', ['--import', 'tsx', '-e', script], { cwd: repo, env, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).not.toContain('NodeVersionSupportWarning');
    expect(run.stderr).toContain('another warning');
  });
});
