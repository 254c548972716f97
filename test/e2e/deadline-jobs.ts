/**
 * What the deadline files share (deadlines*.test.ts, apart so they run in separate lanes): the lane's stack, and jobs
 * whose build prints the numbered lines, timed against their build's end.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Stack } from '../../stack/stack';
import { expectBuildLogOnce, numbered, NUMBERED, numberedDockerfile, storedLog } from './build-log';
import { makeJob, runAction, visible, type Job, type RunResult } from './helpers';
import { sharedStack } from './stack-for-file';

/** The bound: the job ends within this long of its build's end, and of a signal. */
export const WITHIN_MS = 5_000;
export const NEVER_MS = 600_000;

/** The lane's stack for a deadline file (its hooks registered in that file), and the jobs it runs. */
export function deadlineStack() {
  let stack: Stack;
  const control = sharedStack((s) => (stack = s));

  /** A job whose build prints the numbered lines after `sleep` seconds (so a Live Tail session has started), `every` apart. */
  async function numberedJob(tag: string, sleep: number, every = 0): Promise<Job> {
    const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_TAGS: JSON.stringify([tag]) });
    writeFileSync(join(job.dir, 'Dockerfile'), numberedDockerfile({ sleep, every }));
    return job;
  }

  /** Runs the job; returns its result, its build, and how long after the build's end the job exited. */
  async function runAndTime(job: Job): Promise<{ result: RunResult; log: string; buildId: string; afterEndMs: number }> {
    const result = await runAction(job);
    const exitedAt = Date.now();
    await control().clearFaults();
    const log = visible(result.output);
    const buildId = readFileSync(join(job.reportDir, 'build-id'), 'utf8').trim();
    const build = (await control().builds()).find((b) => b.id === buildId);
    expect(build?.endTime, log).toBeTypeOf('number');
    return { result, log, buildId, afterEndMs: exitedAt - (build?.endTime ?? 0) };
  }

  async function expectWholeLog(log: string, buildId: string, opts = { inOrder: true }): Promise<void> {
    const jobLines = log.split('\n');
    expect(numbered(jobLines)).toEqual(NUMBERED);
    expectBuildLogOnce(jobLines, await storedLog(stack, buildId), opts);
  }

  return { stack: () => stack, control, numberedJob, runAndTime, expectWholeLog };
}
