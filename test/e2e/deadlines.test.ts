/**
 * No request without a deadline, while the job follows its build: a proxy that holds each answer until it completes,
 * GetLogEvents throttled for the whole build, and calls that never answer. The job always learns that its build
 * ended, shows its whole log and ends soon after it. Signals: deadlines-signal.test.ts; S3: deadlines-s3.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { startMeddlingProxy } from '../helpers/meddling-proxy';
import { deadlineStack, NEVER_MS, WITHIN_MS } from './deadline-jobs';

const { control, numberedJob, runAndTime, expectWholeLog } = deadlineStack();

describe('deadlines while following', () => {
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
    // As on CodeBuild, the host takes seconds to provision: the session that starts after StartBuild sees the first
    // line, so the lines come in order while the status that would say so hangs (on a busy machine it could start late).
    { operation: 'BatchGetBuilds', says: 'WARNING: Following the build failed (TimeoutError: BatchGetBuilds: no answer within 10 s); trying again.', provisioningMs: 3_000 },
    // The read is given up on after 10 s and asked again; Live Tail's lines are shown meanwhile.
    { operation: 'GetLogEvents', says: undefined },
    // Asked for once: its answer is given up on after 5 s, and the log is polled.
    { operation: 'StartLiveTail', says: 'Following the log by polling: StartLiveTail failed (TimeoutError); its first message did not arrive in time (a slow answer, or a proxy that hands on each answer only once it is complete).' },
  ])('a $operation that never answers is given up on: the whole log, exit 0', async ({ operation, says, provisioningMs }) => {
    const job = await numberedJob(`deadline-hang-${operation}`, 8);
    if (provisioningMs) await control().inject({ kind: 'provisioning', operation: 'StartBuild', ms: provisioningMs });
    await control().inject({ kind: 'delay', operation, ms: NEVER_MS, count: 1 });
    const callsBefore = (await control().calls())[operation] ?? 0;
    const { result, log, buildId } = await runAndTime(job);
    expect(result.code, log).toBe(0);
    if (operation !== 'StartLiveTail') expect((await control().calls())[operation] ?? 0, 'asked again').toBeGreaterThan(callsBefore + 1);
    if (says) expect(log.split('\n'), log).toContain(says);
    await expectWholeLog(log, buildId, { inOrder: operation !== 'GetLogEvents' });
  });
});
