/**
 * `index.js stop`, as the template's after_script runs it after the job was killed: it must reach StopBuild
 * while BatchGetBuilds is throttled, and find a build whose StartBuild answer never arrived.
 * The stack runs without dockerd: the builds that must still run when `stop` comes run a buildspec that waits
 * until stopped, however long the killed job and `stop` take on a busy machine.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Stack } from '../../stack/stack';
import { type Job, makeJob, runAction, stackParameter, visible } from './helpers';
import { stackForFile } from './stack-for-file';

let stack: Stack;
const control = stackForFile('e2e-stop', { docker: false, phaseDelayMs: 50 }, (s) => (stack = s));

/** A job whose build runs until it is stopped (the generated buildspec fails at once without dockerd). */
async function runningJob(): Promise<Job> {
  const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_BUILDSPEC: 'buildspec-until-stopped.yml' });
  writeFileSync(join(job.dir, 'buildspec-until-stopped.yml'), 'version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 600\n');
  return job;
}

/**
 * Runs the job's build and SIGKILLs the program (no signal handler, no cleanup) once `killWhen` holds;
 * it is checked on every output and every 50 ms, since nothing is printed while StartBuild waits.
 */
async function killedJob(job: Job, killWhen: (output: string) => boolean | Promise<boolean>): Promise<string> {
  let killed = false;
  let output = '';
  let child: ChildProcess | undefined;
  const check = async () => {
    if (!killed && child && (await killWhen(output))) {
      killed = true;
      child.kill('SIGKILL');
    }
  };
  const timer = setInterval(() => void check(), 50);
  try {
    const result = await runAction(job, {
      onOutput: (all, c) => {
        output = all;
        child = c;
        void check();
      },
    });
    expect(result.signal, visible(result.output)).toBe('SIGKILL');
    return visible(result.output);
  } finally {
    clearInterval(timer);
  }
}

async function waitForStatus(buildId: string, status: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await control().builds()).find((b) => b.id === buildId)?.buildStatus === status) return;
    await delay(100);
  }
  throw new Error(`build ${buildId} never became ${status}`);
}

describe('index.js stop after a killed job', () => {
  it('reaches StopBuild while BatchGetBuilds is throttled, and rides out 4 throttled StopBuild calls', async () => {
    const job = await runningJob();
    const log = await killedJob(job, (all) => /CodeBuild build \S+:\S+/.test(all));
    const buildId = /CodeBuild build (\S+:\S+)/.exec(log)?.[1] ?? '';
    expect(existsSync(join(job.reportDir, 'build-id'))).toBe(true);

    await control().inject({ kind: 'throttle', operation: 'BatchGetBuilds', count: 6 });
    await control().inject({ kind: 'throttle', operation: 'StopBuild', count: 4 });
    const stopsBefore = (await control().calls()).StopBuild ?? 0;
    const stop = await runAction(job, { args: ['stop'] });
    const out = visible(stop.output);
    expect(stop.code, out).toBe(0);
    expect((await control().calls()).StopBuild).toBe(stopsBefore + 5);
    expect(out).toContain(`Stopping CodeBuild build ${buildId}`);
    expect(out).toMatch(/StopBuild was accepted, but checking build \S+ failed \(ThrottlingException\); will keep checking/);
    await waitForStatus(buildId, 'STOPPED');
  });

  it('stops a build whose StartBuild answer never arrived (SIGKILL during StartBuild)', async () => {
    const job = await runningJob();
    const buildsBefore = (await control().builds()).length;
    const startsBefore = (await control().calls()).StartBuild ?? 0;
    // StartBuild reaches the fake, which answers only after 3 s: the job is killed while it waits.
    await control().inject({ kind: 'delay', operation: 'StartBuild', ms: 3000, count: 1 });
    await killedJob(job, async () => ((await control().calls()).StartBuild ?? 0) > startsBefore);
    expect(existsSync(join(job.reportDir, 'build-id'))).toBe(false);
    expect(existsSync(join(job.reportDir, 'build-start'))).toBe(true);

    const stop = await runAction(job, { args: ['stop'] });
    const out = visible(stop.output);
    expect(stop.code, out).toBe(0);
    expect(out).toContain("The job ended before StartBuild answered: looking for the build by this job's marker");
    const builds = await control().builds();
    expect(builds).toHaveLength(buildsBefore + 1);
    const orphan = builds.at(-1);
    expect(out).toContain(`Stopping CodeBuild build ${orphan?.id}`);
    await waitForStatus(orphan?.id ?? '', 'STOPPED');
  });

  // The image in CI_REGISTRY: the job passes its token to the build through a SecureString.
  const withJobToken = (extra: Record<string, string> = {}) =>
    makeJob(stack, 'examples/hello', { CI_REGISTRY: stack.registry, CI_JOB_TOKEN: 'glcbt-64_killed-job-token', CI_PROJECT_ID: '5', ...extra });

  it("deletes the SecureString that carries the job token to GitLab's registry, which the killed job could not", async () => {
    const job = await withJobToken();
    const log = await killedJob(job, (all) => /CodeBuild build \S+:\S+/.test(all));
    const parameter = `/codebuild-image/job-tokens/5/${job.env.CI_JOB_ID}`;
    expect(log).toContain(`(SecureString ${parameter}, deleted when the build ends)`);
    expect(await stackParameter(stack, parameter)).toBe('gitlab-ci-token:glcbt-64_killed-job-token');

    const stop = await runAction(job, { args: ['stop'] });
    const out = visible(stop.output);
    expect(stop.code, out).toBe(0);
    expect(out).toContain(`Deleted the job token's SecureString ${parameter}`);
    expect(await stackParameter(stack, parameter)).toBe('ParameterNotFound');
  });

  it('touches no parameter when the job could not write one (the stack without JobTokens)', async () => {
    const job = await withJobToken();
    await control().inject({ kind: 'denied', operation: 'PutParameter', count: 1 });
    const result = await runAction(job);
    expect(result.code, visible(result.output)).toBe(3);
    expect(visible(result.output)).toContain('(infra/cloudformation.yml grants them with JobTokens=true');
    const deletesBefore = (await control().calls()).DeleteParameter ?? 0;
    const stop = await runAction(job, { args: ['stop'] });
    const out = visible(stop.output);
    expect(stop.code, out).toBe(0);
    expect(out).toContain('No build was started by this job: nothing to stop.');
    expect(out).not.toContain('Could not delete');
    expect((await control().calls()).DeleteParameter ?? 0).toBe(deletesBefore);
  });

  it('deletes it at once when StartBuild is refused', async () => {
    const job = await withJobToken({ CODEBUILD_IMAGE_PROJECT_NAME: 'no-such-project' });
    const result = await runAction(job);
    const log = visible(result.output);
    expect(result.code, log).toBe(3);
    // IAM refuses it before CodeBuild looks for the project: the CI role may start builds of its own projects only.
    expect(log).toContain('AccessDeniedException');
    expect(log).toContain('The role needs codebuild:StartBuild on the project no-such-project');
    expect(log).toContain(`Deleted the job token's SecureString /codebuild-image/job-tokens/5/${job.env.CI_JOB_ID}`);
    expect(await stackParameter(stack, `/codebuild-image/job-tokens/5/${job.env.CI_JOB_ID}`)).toBe('ParameterNotFound');
  });

  it.each([
    ['was killed while packing or uploading', false],
    ['sent a StartBuild that never reached CodeBuild', true],
  ])('says there is nothing to stop when the job %s', async (_when, requested) => {
    const job = await makeJob(stack, 'examples/hello');
    mkdirSync(job.reportDir, { recursive: true });
    writeFileSync(join(job.reportDir, 'build-start'), JSON.stringify({ marker: 'never-sent', projectNames: [stack.projectName], requested }));
    const listsBefore = (await control().calls()).ListBuildsForProject ?? 0;
    const stop = await runAction(job, { args: ['stop'] });
    expect(stop.code, visible(stop.output)).toBe(0);
    expect(visible(stop.output)).toContain('No build was started by this job: nothing to stop.');
    // Only a requested StartBuild is looked for (for 20 s, as a new build can take a moment to be listed).
    expect(((await control().calls()).ListBuildsForProject ?? 0) > listsBefore).toBe(requested);
  }, 60_000);
});

describe('a report failure after the build ran', () => {
  it('is not exit 2 ("nothing was sent"): the build status is printed and the exit is 1', async () => {
    const job = await makeJob(stack, 'examples/hello');
    let swapped = false;
    const result = await runAction(job, {
      onOutput: (all) => {
        // Once the build runs, the report directory becomes a file: the reports cannot be written.
        if (!swapped && /CodeBuild build \S+:\S+/.test(all)) {
          swapped = true;
          // A rename, not a recursive delete: the job may be creating its build log in there at this moment.
          renameSync(job.reportDir, `${job.reportDir}.moved`);
          writeFileSync(job.reportDir, 'not a directory');
        }
      },
    });
    const log = visible(result.output);
    expect(swapped).toBe(true);
    expect(result.code, log).toBe(1);
    expect(log).toMatch(/ERROR: Cannot (create the report directory|write) .*\. Later jobs do not get this build's dotenv variables\./);
    expect(log.trimEnd().split('\n').at(-1)).toMatch(/^Build status: \w+, reports not written$/);
  });
});
