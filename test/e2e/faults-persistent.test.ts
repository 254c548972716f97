/**
 * AWS faults that do not pass: BatchGetBuilds failing poll after poll (the job stops the build before it gives up)
 * and StartLiveTail refused (the job reads the whole log by polling). Apart from faults.test.ts so the
 * two run in separate lanes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { POLLING_RETRY } from '../../src/aws/clients';
import { MAX_FAILED_POLLS } from '../../src/follow/pace';
import type { Stack } from '../../stack/stack';
import { expectBuildLogOnce, numbered, NUMBERED, numberedDockerfile, storedLog } from './build-log';
import { makeJob, runAction, visible } from './helpers';
import { sharedStack } from './stack-for-file';

let stack: Stack;
const control = sharedStack((s) => (stack = s));

describe('dist/index.js under AWS faults that persist', () => {
  it('stops the build before giving up when BatchGetBuilds keeps failing', async () => {
    const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_TAGS: JSON.stringify(['faults-give-up']) });
    writeFileSync(join(job.dir, 'Dockerfile'), 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo "long step started" && sleep 300\n');
    // Every attempt of MAX_FAILED_POLLS polls fails (the SDK makes maxAttempts each); the waits after StopBuild succeed.
    await control().inject({ kind: 'status', status: 503, operation: 'BatchGetBuilds', count: POLLING_RETRY.maxAttempts * MAX_FAILED_POLLS });
    const result = await runAction(job);
    const log = visible(result.output);
    expect(result.code, log).toBe(3);
    expect(log).toContain('Cannot follow build');
    expect(log).toMatch(/AWS or the network failed \d+ polls in a row/);
    const { buildId } = { buildId: readFileSync(join(job.reportDir, 'build-id'), 'utf8').trim() };
    expect((await control().builds()).find((b) => b.id === buildId)?.buildStatus).toBe('STOPPED');
  });

  it('polls the whole log when StartLiveTail fails', async () => {
    const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_TAGS: JSON.stringify(['faults-no-tail']) });
    // Long enough for the follower to see the log stream before the build ends, and so to try Live Tail.
    writeFileSync(join(job.dir, 'Dockerfile'), numberedDockerfile({ sleep: 8 }));
    // Asked for once (Clients.liveTail makes one attempt): one refusal and the job polls.
    await control().inject({ kind: 'throttle', operation: 'StartLiveTail', count: 1 });
    const result = await runAction(job);
    await control().clearFaults();
    const log = visible(result.output);
    expect(result.code, log).toBe(0);
    expect(log).toContain('Following the log by polling: StartLiveTail failed (ThrottlingException)');
    const { buildId } = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8')) as { buildId: string };
    const jobLines = log.split('\n');
    expect(numbered(jobLines)).toEqual(NUMBERED);
    expectBuildLogOnce(jobLines, await storedLog(stack, buildId));
  });
});
