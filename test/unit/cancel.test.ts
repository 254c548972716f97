import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { watchCancellation, type CancellationWatch } from '../../src/follow/cancel';
import type { GitLabJob } from '../../src/inputs/settings';
import { memoryOutput } from '../helpers/output';

const TOKEN = 'glcbt-64_secret-job-token';

interface FakeGitLab {
  url: string;
  requests: IncomingMessage[];
  close(): Promise<void>;
}

/**
 * A GitLab impersonator answering GET <apiPath>/job with the next of `answers` (the last one repeats);
 * an answer of status 0 is never sent (the request hangs).
 */
async function fakeGitLab(answers: { status: number; body: unknown }[], apiPath = '/api/v4'): Promise<FakeGitLab> {
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req);
    const answer = answers[Math.min(requests.length - 1, answers.length - 1)] ?? { status: 500, body: {} };
    if (answer.status === 0) return;
    const ok = req.method === 'GET' && req.url === `${apiPath}/job`;
    res.writeHead(ok ? answer.status : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(ok ? answer.body : { message: '404 Not Found' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function job(overrides: Partial<GitLabJob> = {}): GitLabJob {
  return {
    serverUrl: undefined, apiUrl: undefined, projectPath: 'group/app', projectId: '3', registry: undefined, pipelineId: '1', pipelineUrl: undefined,
    jobId: '2', jobUrl: undefined, jobName: 'build-image', commitSha: undefined, ref: 'main', jobToken: undefined,
    ...overrides,
  };
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function watch(...args: Parameters<typeof watchCancellation>): CancellationWatch {
  const w = watchCancellation(...args);
  cleanups.push(() => w.dispose());
  return w;
}

async function server(answers: { status: number; body: unknown }[], apiPath?: string): Promise<FakeGitLab> {
  const s = await fakeGitLab(answers, apiPath);
  cleanups.push(() => s.close());
  return s;
}

/** The listeners watchCancellation added; calling them avoids running other listeners of the test process. */
type Listener = (...args: unknown[]) => void;
function added(signal: 'SIGTERM' | 'SIGINT', before: Listener[]): Listener[] {
  return (process.listeners(signal) as Listener[]).filter((l) => !before.includes(l));
}

describe('watchCancellation', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('resolves on %s and removes its handlers', async (signal) => {
    const before = { SIGTERM: process.listeners('SIGTERM') as Listener[], SIGINT: process.listeners('SIGINT') as Listener[] };
    const out = memoryOutput();
    const exits: number[] = [];
    const w = watch({ out, job: job(), signalExitMs: 50, exit: (code) => exits.push(code) });
    const ours = added(signal, before[signal]);
    expect(ours).toHaveLength(1);
    ours[0]?.(signal);
    await expect(w.cancelled).resolves.toBe(`received ${signal}`);
    // A second signal gets the default behaviour again.
    expect(added('SIGTERM', before.SIGTERM)).toEqual([]);
    expect(added('SIGINT', before.SIGINT)).toEqual([]);
    expect(out.lines).toEqual(['Not watching the GitLab job status: CI_API_V4_URL or CI_JOB_TOKEN is not set']);
    // Whatever hangs after the signal, the process exits once its time is up, even after dispose().
    w.dispose();
    while (exits.length === 0) await delay(10);
    expect(exits).toEqual([1]);
    expect(out.lines.at(-1)).toBe(`ERROR: The job did not end within 0.05 s of ${signal}: exiting now; the template's after_script stops a build still running.`);
  });

  it('resolves when GitLab reports the job canceled, authenticating with the job token', async () => {
    const gitlab = await server([
      { status: 200, body: { id: 2, status: 'running' } },
      { status: 200, body: { id: 2, status: 'running' } },
      { status: 200, body: { id: 2, status: 'canceled' } },
    ]);
    const out = memoryOutput();
    const w = watch({ out, job: job({ apiUrl: `${gitlab.url}/api/v4`, jobToken: TOKEN }), pollMs: 10 });
    await expect(w.cancelled).resolves.toBe('the GitLab job is canceled');
    expect(gitlab.requests).toHaveLength(3);
    expect(gitlab.requests.every((r) => r.headers['job-token'] === TOKEN)).toBe(true);
    expect(out.lines).toEqual([]);
  });

  it('reads the status from CI_API_V4_URL, which differs from CI_SERVER_URL on an instance served under a path', async () => {
    const gitlab = await server([{ status: 200, body: { status: 'canceled' } }], '/gitlab/api/v4');
    const w = watch({ out: memoryOutput(), job: job({ serverUrl: `${gitlab.url}/gitlab`, apiUrl: `${gitlab.url}/gitlab/api/v4`, jobToken: TOKEN }), pollMs: 10 });
    await expect(w.cancelled).resolves.toBe('the GitLab job is canceled');
  });

  it('gives up on a status request that never answers and still notices the cancel', async () => {
    const gitlab = await server([{ status: 0, body: {} }, { status: 200, body: { status: 'canceled' } }]);
    const out = memoryOutput();
    const w = watch({ out, job: job({ apiUrl: `${gitlab.url}/api/v4`, jobToken: TOKEN }), pollMs: 10, requestTimeoutMs: 200 });
    while (gitlab.requests.length < 1) await delay(5);
    // The Node 20 bug this guards against: a combined abort signal stopped firing once GC had run (forced here under --expose-gc).
    (globalThis as { gc?: () => void }).gc?.();
    await expect(w.cancelled).resolves.toBe('the GitLab job is canceled');
    expect(gitlab.requests).toHaveLength(2);
    expect(out.lines).toEqual(['WARNING: Cannot check the GitLab job status (TimeoutError); will keep trying']);
  });

  it('resolves on canceling too', async () => {
    const gitlab = await server([{ status: 200, body: { id: 2, status: 'canceling' } }]);
    const w = watch({ out: memoryOutput(), job: job({ apiUrl: `${gitlab.url}/api/v4`, jobToken: TOKEN }), pollMs: 10 });
    await expect(w.cancelled).resolves.toBe('the GitLab job is canceling');
  });

  it.each([401, 403])('resolves when the token is rejected with HTTP %i', async (status) => {
    const gitlab = await server([{ status: 200, body: { status: 'running' } }, { status, body: { message: `${status} Unauthorized` } }]);
    const w = watch({ out: memoryOutput(), job: job({ apiUrl: `${gitlab.url}/api/v4`, jobToken: TOKEN }), pollMs: 10 });
    await expect(w.cancelled).resolves.toBe(`GitLab rejected the job token (HTTP ${status}): the job has ended`);
  });

  it('keeps polling through server errors, warning once without the token', async () => {
    const gitlab = await server([
      { status: 500, body: { message: 'oops' } },
      { status: 500, body: { message: 'oops' } },
      { status: 200, body: { status: 'canceled' } },
    ]);
    const out = memoryOutput();
    const w = watch({ out, job: job({ apiUrl: `${gitlab.url}/api/v4`, jobToken: TOKEN }), pollMs: 10 });
    await expect(w.cancelled).resolves.toBe('the GitLab job is canceled');
    expect(out.lines).toEqual(['WARNING: Cannot check the GitLab job status (HTTP 500); will keep trying']);
  });

  it('stops polling and removes its handlers on dispose', async () => {
    const before = process.listeners('SIGTERM') as Listener[];
    const gitlab = await server([{ status: 200, body: { status: 'running' } }]);
    const w = watchCancellation({ out: memoryOutput(), job: job({ apiUrl: `${gitlab.url}/api/v4`, jobToken: TOKEN }), pollMs: 10 });
    while (gitlab.requests.length < 2) await delay(5);
    w.dispose();
    const seen = gitlab.requests.length;
    await delay(100);
    expect(gitlab.requests.length).toBeLessThanOrEqual(seen + 1); // at most the request already in flight
    const afterPause = gitlab.requests.length;
    await delay(100);
    expect(gitlab.requests.length).toBe(afterPause);
    expect(added('SIGTERM', before)).toEqual([]);
  });
});
