/** Transient AWS faults the job rides out: every case ends with the image pushed and the whole build log shown once. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Fault } from '../../stack/fake-aws/faults';
import type { Stack } from '../../stack/stack';
import { expectBuildLogOnce, numbered, NUMBERED, numberedDockerfile, storedLog } from './build-log';
import { makeJob, readDotenv, registryDigest, runAction, visible } from './helpers';
import { sharedStack } from './stack-for-file';

const REPOSITORY = 'group/hello';

let stack: Stack;
const control = sharedStack((s) => (stack = s));

const cases: { name: string; faults: Fault[]; operation: string; consumed: number; sleep?: number }[] = [
  // Five throttles cost the SDK's adaptive backoff about 10 s: the build outlasts them, so a read succeeds while it
  // runs (a build that ends first is shown from Live Tail, its first lines missing: see deadlines.test.ts).
  { name: 'GetLogEvents throttled for the next 5 calls', faults: [{ kind: 'throttle', operation: 'GetLogEvents', count: 5 }], operation: 'GetLogEvents', consumed: 5, sleep: 15 },
  { name: 'BatchGetBuilds answering 503 for the next 3 calls', faults: [{ kind: 'status', status: 503, operation: 'BatchGetBuilds', count: 3 }], operation: 'BatchGetBuilds', consumed: 3 },
  { name: 'connection resets on GetLogEvents for the next 2 calls', faults: [{ kind: 'reset', operation: 'GetLogEvents', count: 2 }], operation: 'GetLogEvents', consumed: 2 },
  // A poll reads one page, so 1 request/s bites only where reads bunch up (the final drain).
  { name: 'a quota of 1 GetLogEvents request per second', faults: [{ kind: 'quota', operation: 'GetLogEvents', rps: 1 }], operation: 'GetLogEvents', consumed: 0 },
  { name: 'StartBuild throttled once', faults: [{ kind: 'throttle', operation: 'StartBuild', count: 1 }], operation: 'StartBuild', consumed: 1 },
  // Once-per-job calls ride out longer runs of transient faults than the SDK's default three attempts.
  { name: 'AssumeRoleWithWebIdentity throttled 4 times in a row', faults: [{ kind: 'throttle', operation: 'AssumeRoleWithWebIdentity', count: 4 }], operation: 'AssumeRoleWithWebIdentity', consumed: 4 },
  { name: 'AssumeRoleWithWebIdentity answering 500 then 503, 4 times in a row', faults: [{ kind: 'status', status: 500, operation: 'AssumeRoleWithWebIdentity', count: 2 }, { kind: 'status', status: 503, operation: 'AssumeRoleWithWebIdentity', count: 2 }], operation: 'AssumeRoleWithWebIdentity', consumed: 4 },
  { name: 'StartBuild answering 503 4 times in a row', faults: [{ kind: 'status', status: 503, operation: 'StartBuild', count: 4 }], operation: 'StartBuild', consumed: 4 },
  { name: 'connection resets on StartBuild 4 times in a row', faults: [{ kind: 'reset', operation: 'StartBuild', count: 4 }], operation: 'StartBuild', consumed: 4 },
  { name: 'StartBuild throttled 4 times in a row', faults: [{ kind: 'throttle', operation: 'StartBuild', count: 4 }], operation: 'StartBuild', consumed: 4 },
];

describe('dist/index.js under injected AWS faults', () => {
  it.each(cases.map((c, i) => ({ ...c, tag: `faults-${i + 1}` })))('succeeds with the whole build log: $name', async ({ faults, operation, consumed, sleep, tag }) => {
    const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_TAGS: JSON.stringify([tag]) });
    writeFileSync(join(job.dir, 'Dockerfile'), numberedDockerfile({ sleep }));
    const buildsBefore = (await control().builds()).length;
    const callsBefore = (await control().calls())[operation] ?? 0;
    for (const fault of faults) await control().inject(fault);

    const result = await runAction(job);
    await control().clearFaults(); // before reading the stored log through the same fake
    const log = visible(result.output);
    expect(result.code, log).toBe(0);
    expect(log.trimEnd().split('\n').at(-1)).toContain('SUCCEEDED');

    // Every armed failure hit the program, which then called again.
    expect((await control().calls())[operation] ?? 0).toBeGreaterThan(callsBefore + consumed);
    // One job, one build: a retried StartBuild reuses the idempotency token.
    const builds = await control().builds();
    expect(builds.length).toBe(buildsBefore + 1);

    const dotenv = readDotenv(join(job.reportDir, 'build.env'));
    expect(dotenv.IMAGE_DIGEST).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await registryDigest(stack.registry, REPOSITORY, tag)).toBe(dotenv.IMAGE_DIGEST);

    const { buildId } = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8')) as { buildId: string };
    expect(builds.at(-1)).toMatchObject({ id: buildId, buildStatus: 'SUCCEEDED' });
    const jobLines = log.split('\n');
    expect(numbered(jobLines)).toEqual(NUMBERED);
    for (const phase of ['INSTALL', 'PRE_BUILD', 'BUILD', 'POST_BUILD']) {
      expect(jobLines.filter((l) => l.endsWith(`Entering phase ${phase}`)), log).toHaveLength(1);
    }
    expect(jobLines.filter((l) => l.startsWith(`Pushed ${stack.registry}/${REPOSITORY}@sha256:`))).toHaveLength(1);
    const buildLines = await storedLog(stack, buildId);
    expect(numbered(buildLines)).toEqual(NUMBERED);
    // In order, unless the job marked a gap before Live Tail's lines (a throttled first read): then once each.
    expectBuildLogOnce(jobLines, buildLines, { inOrder: !log.includes("The build's earlier lines, if any, are not read yet") });
  });
});
