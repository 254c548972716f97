import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createClients, POLLING_RETRY } from '../../src/aws/clients';

const repo = join(__dirname, '../..');

describe('createClients', () => {
  it('gives the follow loop\'s clients the one retry set-up', async () => {
    const c = createClients('eu-west-1', async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }));
    for (const client of [c.codebuild, c.logs]) {
      expect(await client.config.maxAttempts()).toBe(POLLING_RETRY.maxAttempts);
      expect((await client.config.retryStrategy()).constructor.name).toBe('AdaptiveRetryStrategy');
    }
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
