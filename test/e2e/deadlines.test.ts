/**
 * No request without a deadline: a proxy that holds each answer until it completes, GetLogEvents throttled for the
 * whole build, calls that never answer, and SIGTERM while they hang. The job always learns that its build ended,
 * ends soon after it, and never leaves a build running.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { SIGNAL_EXIT_MS } from '../../src/follow/cancel';
import type { Stack } from '../../stack/stack';
import { startMeddlingProxy } from '../helpers/meddling-proxy';
import { expectBuildLogOnce, numbered, NUMBERED, numberedDockerfile, storedLog } from './build-log';
import { makeJob, runAction, visible, type Job, type RunResult } from './helpers';
import { sharedStack } from './stack-for-file';

let stack: Stack;
const control = sharedStack((s) => (stack = s));

/** The bound: the job ends within this long of its build's end, and of a signal. */
const WITHIN_MS = 5_000;
const NEVER_MS = 600_000;

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

describe('deadlines', () => {
  it('through a proxy that hands on each answer only once it is complete: follows by polling, says why, ends soon after the build', async () => {
    const proxy = await startMeddlingProxy({ buffer: true });
    try {
      // Lines flow for 10 s, outlasting StartLiveTail's deadline, so the line on why comes while the build runs.
      const job = await numberedJob('deadline-buffering', 0, 0.2);
      job.env = { ...job.env, HTTP_PROXY: proxy.url };
      const { result, log, buildId, afterEndMs } = await runAndTime(job);
      expect(result.code, log).toBe(0);
      expect(log).toContain(`Network: proxy ${new URL(proxy.url).host}`);
      expect(log.split('\n').filter((l) => l.includes('Live Tail') || l.includes('StartLiveTail'))).toEqual([
        'Following the log by polling: StartLiveTail failed (TimeoutError); its first message did not arrive in time (a slow answer, or a proxy that hands on each answer only once it is complete).',
      ]);
      await expectWholeLog(log, buildId);
      expect(afterEndMs, log).toBeLessThan(WITHIN_MS);
    } finally {
      await proxy.close();
    }
  });

  it('GetLogEvents throttled from the first call to the last: shows every line from Live Tail as it comes, ends within 5 s', async () => {
    // As on CodeBuild, the build's host takes seconds to provision: the session, started right after StartBuild, is
    // there before the build's first line, so no read is needed for any line.
    await control().inject({ kind: 'provisioning', operation: 'StartBuild', ms: 3_000 });
    const job = await numberedJob('deadline-throttled', 0, 0.05);
    await control().inject({ kind: 'throttle', operation: 'GetLogEvents', count: 100_000 });
    const { result, log, buildId, afterEndMs } = await runAndTime(job);
    expect(result.code, log).toBe(0);
    expect(log).not.toContain('earlier lines');
    expect(log).not.toContain('by polling');
    expect(log).not.toContain('missing');
    await expectWholeLog(log, buildId);
    expect(afterEndMs, log).toBeLessThan(WITHIN_MS);
  });

  it.each([
    { operation: 'BatchGetBuilds', says: 'WARNING: Following the build failed (TimeoutError: BatchGetBuilds: no answer within 10 s); trying again.' },
    // The read is given up on after 10 s and asked again; Live Tail's lines are shown meanwhile.
    { operation: 'GetLogEvents', says: undefined },
    // Asked for once: its answer is given up on after 5 s, and the log is polled.
    { operation: 'StartLiveTail', says: 'Following the log by polling: StartLiveTail failed (TimeoutError); its first message did not arrive in time (a slow answer, or a proxy that hands on each answer only once it is complete).' },
  ])('a $operation that never answers is given up on: the whole log, exit 0', async ({ operation, says }) => {
    const job = await numberedJob(`deadline-hang-${operation}`, 8);
    await control().inject({ kind: 'delay', operation, ms: NEVER_MS, count: 1 });
    const callsBefore = (await control().calls())[operation] ?? 0;
    const { result, log, buildId } = await runAndTime(job);
    expect(result.code, log).toBe(0);
    if (operation !== 'StartLiveTail') expect((await control().calls())[operation] ?? 0, 'asked again').toBeGreaterThan(callsBefore + 1);
    if (says) expect(log.split('\n'), log).toContain(says);
    await expectWholeLog(log, buildId, { inOrder: operation !== 'GetLogEvents' });
  });

  it.each(['BatchGetBuilds', 'GetLogEvents', 'StartLiveTail', 'StopBuild'])('SIGTERM while %s hangs: exits within 5 s and the build is stopped', async (operation) => {
    const job = await numberedJob(`deadline-sigterm-${operation}`, 60);
    // StopBuild's first attempt hangs; the others hang for as long as the job runs.
    await control().inject({ kind: 'delay', operation, ms: NEVER_MS, count: operation === 'StopBuild' ? 1 : 100 });
    let signalledAt = 0;
    const result = await runAction(job, {
      onOutput: (all, child) => {
        // StartBuild answered; 3 s later each call above is in use, or hangs.
        if (signalledAt === 0 && visible(all).includes('Console: https://')) {
          signalledAt = -1;
          void delay(3_000).then(() => {
            signalledAt = Date.now();
            child.kill('SIGTERM');
          });
        }
      },
    });
    const exitedAfterMs = Date.now() - signalledAt;
    await control().clearFaults();
    const log = visible(result.output);
    expect(signalledAt, log).toBeGreaterThan(0);
    expect(exitedAfterMs, log).toBeLessThan(WITHIN_MS);
    expect(exitedAfterMs, log).toBeLessThan(SIGNAL_EXIT_MS + 500);
    const buildId = readFileSync(join(job.reportDir, 'build-id'), 'utf8').trim();
    for (let i = 0; i < 50 && (await control().builds()).find((b) => b.id === buildId)?.buildStatus !== 'STOPPED'; i++) await delay(200);
    expect((await control().builds()).find((b) => b.id === buildId)?.buildStatus, log).toBe('STOPPED');
    expect(log).toContain('Job cancelled (received SIGTERM)');
    // Only a StopBuild that hangs may leave the job to its last-resort exit; every other hang ends it cleanly.
    if (operation !== 'StopBuild') expect(log).not.toContain('The job did not end within');
  });

  it('S3 HeadObject and the GitLab job-status call that never answer: retried, the build runs, exit 0', async () => {
    const proxy = await startMeddlingProxy({
      hold: (req, url) =>
        (req.method === 'HEAD' && proxyHeld(url, 'HEAD')) ||
        (req.method === 'GET' && url.pathname.endsWith('/gitlab/api/v4/job') && proxyHeld(url, 'job')),
    });
    try {
      const job = await numberedJob('deadline-s3-gitlab', 12);
      job.env = { ...job.env, HTTP_PROXY: proxy.url, CI_API_V4_URL: `${stack.fakeUrl}/gitlab/api/v4`, CI_JOB_TOKEN: 'job-token' };
      const { result, log, buildId } = await runAndTime(job);
      expect(result.code, log).toBe(0);
      expect(proxy.held.filter((h) => h.startsWith('HEAD '))).toHaveLength(1);
      expect(proxy.held.filter((h) => h.startsWith('GET ')), log).toHaveLength(1);
      await expectWholeLog(log, buildId);
    } finally {
      await proxy.close();
    }
  });
  it('S3 PutObject and UploadPart that never answer: cut at the idle deadline and retried, exit 0', async () => {
    const proxy = await startMeddlingProxy({
      hold: (req, url) =>
        req.method === 'PUT' && (url.searchParams.has('partNumber') ? proxyHeld(url, 'UploadPart') : !url.searchParams.has('uploadId') && proxyHeld(url, 'PutObject')),
    });
    try {
      const small = await numberedJob('deadline-put-object', 0);
      // Random bytes the archive stores as they are: over the 8 MiB part size, so the context goes up in parts.
      const large = await numberedJob('deadline-upload-part', 0);
      writeFileSync(join(large.dir, 'blob.bin'), randomBytes(12 * 1024 * 1024));
      for (const job of [small, large]) job.env = { ...job.env, HTTP_PROXY: proxy.url };
      const runs = await Promise.all([small, large].map((job) => runAndTime(job)));
      for (const { result, log, buildId } of runs) {
        expect(result.code, log).toBe(0);
        await expectWholeLog(log, buildId);
      }
      expect(proxy.held.map((h) => h.split(' ')[0])).toEqual(['PUT', 'PUT']);
      expect(proxy.held.filter((h) => h.includes('partNumber='))).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });
  it.each([
    { call: 'S3 HeadObject', held: (req: IncomingMessage) => req.method === 'HEAD' },
    { call: 'S3 PutObject', held: (req: IncomingMessage, url: URL) => req.method === 'PUT' && !url.searchParams.has('uploadId') },
  ])('SIGTERM while $call hangs: exits within 5 s, no build started', async ({ held }) => {
    const proxy = await startMeddlingProxy({ hold: (req, url) => held(req, url) });
    try {
      const job = await numberedJob(`deadline-sigterm-s3-${randomBytes(4).toString('hex')}`, 0);
      job.env = { ...job.env, HTTP_PROXY: proxy.url };
      const buildsBefore = (await control().builds()).length;
      let signalledAt = 0;
      let watch: NodeJS.Timeout | undefined;
      const result = await runAction(job, {
        onOutput: (_all, child) => {
          // Once the proxy holds the request, the job waits on it: then the signal comes.
          watch ??= setInterval(() => {
            if (signalledAt === 0 && proxy.held.length > 0) {
              signalledAt = Date.now();
              child.kill('SIGTERM');
            }
          }, 50);
        },
      });
      clearInterval(watch);
      const log = visible(result.output);
      expect(signalledAt, log).toBeGreaterThan(0);
      expect(Date.now() - signalledAt, log).toBeLessThan(WITHIN_MS);
      expect(result.code, log).not.toBe(0);
      expect((await control().builds()).length, log).toBe(buildsBefore);
    } finally {
      await proxy.close();
    }
  });
});

/** Each kind of request is held the first time only. */
const heldOnce = new Set<string>();
function proxyHeld(_url: URL, kind: string): boolean {
  if (heldOnce.has(kind)) return false;
  heldOnce.add(kind);
  return true;
}
