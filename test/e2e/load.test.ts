/**
 * Many jobs at once against one stack: each job gets exactly one build, follows it to the end and reports
 * the digest the registry serves, while the fake counts every call. A modest machine (two shared cores);
 * the printed figures go to RELIABILITY.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Stack } from '../../stack/stack';
import { makeJob, readDotenv, registryDigest, runAction, visible } from './helpers';
import { sharedStack } from './stack-for-file';

let stack: Stack;
const control = sharedStack((s) => (stack = s));

/** Runs `count` jobs at once, each pushing its own repository, and checks every one of them end to end. */
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
  const builds = (await control().builds()).slice(buildsBefore);
  expect(builds).toHaveLength(count);
  for (const [i, job] of jobs.entries()) {
    const record = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8')) as { buildId: string; status: string };
    expect(record.status).toBe('SUCCEEDED');
    expect(builds.filter((b) => b.id === record.buildId)).toHaveLength(1);
    const dotenv = readDotenv(join(job.reportDir, 'build.env'));
    expect(await registryDigest(stack.registry, `${name}/app${i}`, `${name}-${i}`)).toBe(dotenv.IMAGE_DIGEST);
  }
  const calls = await control().calls();
  const used = Object.fromEntries(Object.entries(calls).map(([op, n]) => [op, n - (callsBefore[op] ?? 0)]));
  console.log(`load (${name}): ${count} jobs in ${seconds.toFixed(1)} s; calls ${JSON.stringify(used)}`);
}

describe('jobs at once', () => {
  it('50 jobs: each gets one build, the whole way, and the digest its registry tag serves', async () => {
    await jobsAtOnce(50, 'plain');
  });

  it('20 jobs under an account-wide quota of 5 requests/s on BatchGetBuilds and GetLogEvents', async () => {
    await control().inject({ kind: 'quota', operation: 'BatchGetBuilds', rps: 5 });
    await control().inject({ kind: 'quota', operation: 'GetLogEvents', rps: 5 });
    await jobsAtOnce(20, 'quota');
  });
});
