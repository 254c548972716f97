/**
 * Many jobs at once against one stack: each job gets exactly one build, follows it to the end and reports
 * the digest the registry serves, while the fake counts every call. A modest machine (two shared cores);
 * the printed figures go to RELIABILITY.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Stack } from '../../stack/stack';
import { expectBuildLogOnce, storedLog } from './build-log';
import { makeJob, readDotenv, registryDigest, runAction, visible } from './helpers';
import { sharedStack } from './stack-for-file';

let stack: Stack;
const control = sharedStack((s) => (stack = s));

/**
 * Runs `count` jobs at once, each pushing its own repository, and checks every one of them end to end: its build, its
 * digest, and every line of its build's log exactly once in its job log.
 */
async function jobsAtOnce(count: number, name: string): Promise<void> {
  const jobs = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_TAGS: JSON.stringify([`${name}-${i}`]), CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${name}/app${i}` }),
    ),
  );
  const buildsBefore = (await control().builds()).length;
  const callsBefore = await control().calls();
  const started = Date.now();
  const results = await Promise.all(jobs.map((job) => runAction(job)));
  const seconds = (Date.now() - started) / 1000;

  for (const r of results) expect(r.code, visible(r.output)).toBe(0);
  await control().clearFaults(); // before reading the stored logs through the same fake
  const builds = (await control().builds()).slice(buildsBefore);
  expect(builds).toHaveLength(count);
  for (const [i, job] of jobs.entries()) {
    const record = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8')) as { buildId: string; status: string };
    expect(record.status).toBe('SUCCEEDED');
    expect(builds.filter((b) => b.id === record.buildId)).toHaveLength(1);
    const dotenv = readDotenv(join(job.reportDir, 'build.env'));
    expect(await registryDigest(stack.registry, `${name}/app${i}`, `${name}-${i}`)).toBe(dotenv.IMAGE_DIGEST);
    // A line shown late, after a gap the job marked, still counts: every line once, not always in order.
    expectBuildLogOnce(visible(results[i]!.output).split('\n'), await storedLog(stack, record.buildId), { inOrder: false });
  }
  const calls = await control().calls();
  const used = Object.fromEntries(Object.entries(calls).map(([op, n]) => [op, n - (callsBefore[op] ?? 0)]));
  console.log(`load (${name}): ${count} jobs in ${seconds.toFixed(1)} s; calls ${JSON.stringify(used)}`);
}

describe('jobs at once', () => {
  // AWS's account-wide quotas, tightened, and CodeBuild's hosts taking seconds to provision, as they do.
  it('50 jobs under an account-wide quota of 2 requests/s on BatchGetBuilds and GetLogEvents: each its build, its digest and its whole log', async () => {
    await control().inject({ kind: 'provisioning', operation: 'StartBuild', ms: 3_000, count: 50 });
    await control().inject({ kind: 'quota', operation: 'BatchGetBuilds', rps: 2 });
    await control().inject({ kind: 'quota', operation: 'GetLogEvents', rps: 2 });
    await jobsAtOnce(50, 'quota');
  });
});
