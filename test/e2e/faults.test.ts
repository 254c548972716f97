import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { fromWebToken } from '@aws-sdk/credential-providers';
import { describe, expect, it } from 'vitest';
import { POLLING_RETRY } from '../../src/aws/clients';
import { MAX_FAILED_POLLS } from '../../src/follow/pace';
import type { Fault } from '../../stack/fake-aws/faults';
import type { Stack } from '../../stack/stack';
import { makeJob, readDotenv, registryDigest, runAction, visible } from './helpers';
import { sharedStack } from './stack-for-file';

const REPOSITORY = 'group/hello';
const NUMBERED = Array.from({ length: 50 }, (_, i) => `line-${String(i + 1).padStart(3, '0')}`);

let stack: Stack;
const control = sharedStack((s) => (stack = s));

/**
 * The job's Dockerfile prints 50 numbered lines, which BuildKit's plain progress shows as `#N 0.123 line-001`.
 * The nonce keeps the layer cache from replaying the step silently; the step's own text (shown in
 * `#N [2/2] RUN ...`) holds no `line-NNN`.
 */
function numberedDockerfile(): string {
  return [
    'ARG BASE_IMAGE=busybox:stable',
    'FROM ${BASE_IMAGE}',
    `RUN echo "nonce ${randomUUID()}" && i=1 && while [ $i -le 50 ]; do printf 'line-%03d\\n' $i; i=$((i+1)); done`,
    '',
  ].join('\n');
}

/** The build's CloudWatch log as the fake stores it, read with the real SDK and credentials from the fake STS. */
async function storedLog(buildId: string): Promise<string[]> {
  const credentials = fromWebToken({
    roleArn: stack.roleArn,
    roleSessionName: 'faults-test',
    webIdentityToken: await stack.signToken(),
    clientConfig: { region: stack.region, endpoint: stack.fakeUrl },
  });
  const logs = new CloudWatchLogsClient({ region: stack.region, endpoint: stack.fakeUrl, credentials });
  const streamName = buildId.slice(buildId.indexOf(':') + 1);
  const lines: string[] = [];
  let token: string | undefined;
  for (;;) {
    const res = await logs.send(new GetLogEventsCommand({
      logGroupName: `/aws/codebuild/${stack.projectName}`, logStreamName: streamName, startFromHead: true,
      ...(token && { nextToken: token }),
    }));
    // The program prints a multi-line event as its lines, without the trailing newline.
    // Compared with the job log as a reader sees it: colours (BuildKit colours its warnings) stripped.
    for (const e of res.events ?? []) lines.push(...stripVTControlCharacters(e.message ?? '').replace(/\r?\n$/, '').split('\n'));
    if (!res.nextForwardToken || res.nextForwardToken === token) break;
    token = res.nextForwardToken;
  }
  logs.destroy();
  return lines;
}

/** The Dockerfile's numbered lines, out of BuildKit's `#N <seconds> <line>` progress lines. */
const numbered = (lines: string[]) => lines.flatMap((l) => /^#\d+ \d+\.\d+ (line-\d{3})$/.exec(l)?.[1] ?? []);

/** Every stored line appears in the job log as often as in the build log (once, for non-blank lines), in order. */
function expectBuildLogOnce(jobLines: string[], buildLines: string[]): void {
  const count = (lines: string[]) => {
    const counts = new Map<string, number>();
    for (const l of lines) if (l.trim() !== '') counts.set(l, (counts.get(l) ?? 0) + 1);
    return counts;
  };
  const inJob = count(jobLines);
  const wrong = [...count(buildLines)].filter(([line, n]) => inJob.get(line) !== n)
    .map(([line, n]) => `${JSON.stringify(line)}: ${inJob.get(line) ?? 0} in the job log, ${n} in the build log`);
  expect(wrong).toEqual([]);

  let next = 0;
  for (const l of jobLines) if (next < buildLines.length && l === buildLines[next]) next++;
  expect(buildLines.slice(next, next + 3), 'first build-log line missing from the job log in order').toEqual([]);
}

const cases: { name: string; faults: Fault[]; operation: string; consumed: number }[] = [
  { name: 'GetLogEvents throttled for the next 5 calls', faults: [{ kind: 'throttle', operation: 'GetLogEvents', count: 5 }], operation: 'GetLogEvents', consumed: 5 },
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
  it.each(cases.map((c, i) => ({ ...c, tag: `faults-${i + 1}` })))('succeeds with the whole build log: $name', async ({ faults, operation, consumed, tag }) => {
    const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_TAGS: JSON.stringify([tag]) });
    writeFileSync(join(job.dir, 'Dockerfile'), numberedDockerfile());
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
      expect(jobLines.filter((l) => l.endsWith(`Entering phase ${phase}`))).toHaveLength(1);
    }
    expect(jobLines.filter((l) => l.startsWith(`Pushed ${stack.registry}/${REPOSITORY}@sha256:`))).toHaveLength(1);
    const buildLines = await storedLog(buildId);
    expect(numbered(buildLines)).toEqual(NUMBERED);
    expectBuildLogOnce(jobLines, buildLines);
  });

  it('stops the build before giving up when BatchGetBuilds keeps failing', async () => {
    const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_TAGS: JSON.stringify(['faults-give-up']) });
    writeFileSync(join(job.dir, 'Dockerfile'), 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo "long step started" && sleep 300\n');
    // Every attempt of MAX_FAILED_POLLS polls fails (the SDK makes maxAttempts each); the waits after StopBuild succeed.
    await control().inject({ kind: 'status', status: 503, operation: 'BatchGetBuilds', count: POLLING_RETRY.maxAttempts * MAX_FAILED_POLLS });
    const result = await runAction(job);
    const log = visible(result.output);
    expect(result.code, log).toBe(3);
    expect(log).toContain('Cannot follow build');
    expect(log).toMatch(/AWS or the network failed \d+ polls in a row/);
    const { buildId } = { buildId: readFileSync(join(job.reportDir, 'build-id'), 'utf8').trim() };
    expect((await control().builds()).find((b) => b.id === buildId)?.buildStatus).toBe('STOPPED');
  });

  it('polls the whole log when StartLiveTail keeps failing', async () => {
    const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_TAGS: JSON.stringify(['faults-no-tail']) });
    // Long enough for the follower to see the log stream before the build ends, and so to try Live Tail.
    writeFileSync(join(job.dir, 'Dockerfile'), `${numberedDockerfile()}RUN sleep 8\n`);
    await control().inject({ kind: 'throttle', operation: 'StartLiveTail', count: POLLING_RETRY.maxAttempts });
    const result = await runAction(job);
    await control().clearFaults();
    const log = visible(result.output);
    expect(result.code, log).toBe(0);
    expect(log).toContain('Following the log by polling: StartLiveTail failed (ThrottlingException)');
    const { buildId } = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8')) as { buildId: string };
    const jobLines = log.split('\n');
    expect(numbered(jobLines)).toEqual(NUMBERED);
    expectBuildLogOnce(jobLines, await storedLog(buildId));
  });
});
