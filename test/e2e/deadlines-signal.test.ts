/**
 * SIGTERM while a call hangs: the job exits within 5 s, stops its build when it has one, and starts none when the
 * signal comes before StartBuild.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { SIGNAL_EXIT_MS } from '../../src/follow/cancel';
import { startMeddlingProxy } from '../helpers/meddling-proxy';
import { deadlineStack, NEVER_MS, WITHIN_MS } from './deadline-jobs';
import { runAction, visible } from './helpers';

const { control, numberedJob } = deadlineStack();

describe('deadlines under SIGTERM', () => {
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
