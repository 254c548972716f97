/**
 * S3 and GitLab calls that never answer, held by a proxy: cut at their deadline and retried, and the build runs.
 * The PutObject and UploadPart case waits out the 30 s idle deadline, the longest in the suite: apart, so it runs
 * in a lane of its own while other files run.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startMeddlingProxy } from '../helpers/meddling-proxy';
import { deadlineStack } from './deadline-jobs';

const { stack, numberedJob, runAndTime, expectWholeLog } = deadlineStack();

describe('deadlines on S3 and GitLab', () => {
  it('S3 HeadObject and the GitLab job-status call that never answer: retried, the build runs, exit 0', async () => {
    const proxy = await startMeddlingProxy({
      hold: (req, url) =>
        (req.method === 'HEAD' && proxyHeld(url, 'HEAD')) ||
        (req.method === 'GET' && url.pathname.endsWith('/gitlab/api/v4/job') && proxyHeld(url, 'job')),
    });
    try {
      const job = await numberedJob('deadline-s3-gitlab', 12);
      job.env = { ...job.env, HTTP_PROXY: proxy.url, CI_API_V4_URL: `${stack().fakeUrl}/gitlab/api/v4`, CI_JOB_TOKEN: 'job-token' };
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
});

/** Each kind of request is held the first time only. */
const heldOnce = new Set<string>();
function proxyHeld(_url: URL, kind: string): boolean {
  if (heldOnce.has(kind)) return false;
  heldOnce.add(kind);
  return true;
}
