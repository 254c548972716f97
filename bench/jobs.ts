/**
 * Many jobs at once (issue 21, item 4): `BENCH_ONLY=jobs npm run bench`. Starts the local stack with dockerd and
 * runs JOBS jobs of examples/hello at once through dist/index.js, as load.test.ts does, against the account's quotas:
 * - GetLogEvents: 10 requests/s per account and Region, AWS's documented figure (CloudWatch Logs quotas);
 * - BatchGetBuilds: 5 requests/s. AWS publishes no CodeBuild API rate; peers were refused ("Rate exceeded") with
 *   30 builds polled every 5 s, 6 requests/s (aws-codebuild-run-build#28), so the account allows less than that;
 * - StartLiveTail: 15 sessions at once, which the fake always enforces (AwsLimits.liveTailSessions, from the
 *   CloudWatch Logs quotas page); the jobs beyond them follow by polling;
 * - every build spends PROVISIONING_MS in PROVISIONING, as on-demand hosts take tens of seconds.
 * Each job is checked as load.test.ts checks it (exit 0, one SUCCEEDED build, the digest the registry serves, every
 * line of its build's stored log once in its job log). The reference of the wall time: one job alone on the same
 * stack, quotas and provisioning, just before.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fakeControl } from '../stack/fake-aws/control';
import { startStack, type Stack } from '../stack/stack';
import { distIndex, type Job, makeJob, nodes, readDotenv, registryDigest, visible } from '../test/e2e/helpers';
import { linesNotOnce, storedLog } from '../test/e2e/stored-log';
import { fixed, median, progress } from './measure';
import type { BenchRow } from './rows';

const JOBS = Number(process.env.BENCH_JOBS ?? 100);
const QUOTAS = { BatchGetBuilds: 5, GetLogEvents: 10 } as const;
const PROVISIONING_MS = 20_000;
const GROUP = 'many jobs';
/** The line a job prints when it follows by polling because StartLiveTail refused it (src/follow/live-tail.ts). */
const POLLING = /Following the log by polling: StartLiveTail failed \(LimitExceededException\)/;

type Control = ReturnType<typeof fakeControl>;

interface Ran {
  job: Job;
  name: string;
  code: number | null;
  output: string;
  seconds: number;
  /** Peak RSS of the job's process in MB (GNU time's %M). */
  rssMb: number;
}

/** Runs dist/index.js as the template's job does (runAction), under GNU time for its peak RSS. */
function run(job: Job, name: string, root: string): Promise<Ran> {
  const rssFile = path.join(root, `${name}.rss`);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', rssFile, nodes.node20, distIndex], { cwd: job.dir, env: job.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const take = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const rssMb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1)) / 1024;
      resolve({ job, name, code, output, seconds, rssMb });
    });
  });
}

/** What is wrong with one job, checked as load.test.ts checks it; none when it built, pushed and showed its whole log. */
async function problems(stack: Stack, r: Ran, builds: { id: string }[]): Promise<string[]> {
  const shown = visible(r.output);
  if (r.code !== 0) return [`${r.name}: exit ${r.code}; last lines:\n${shown.split('\n').slice(-15).join('\n')}`];
  const record = JSON.parse(readFileSync(path.join(r.job.reportDir, 'build.json'), 'utf8')) as { buildId: string; status: string };
  const found: string[] = [];
  if (record.status !== 'SUCCEEDED') found.push(`${r.name}: build ${record.buildId} ${record.status}`);
  const same = builds.filter((b) => b.id === record.buildId).length;
  if (same !== 1) found.push(`${r.name}: ${same} builds with id ${record.buildId}`);
  const dotenv = readDotenv(path.join(r.job.reportDir, 'build.env'));
  const served = await registryDigest(stack.registry, `${r.name}/app`, r.name);
  if (served !== dotenv.IMAGE_DIGEST) found.push(`${r.name}: registry serves ${served}, the job reported ${dotenv.IMAGE_DIGEST}`);
  const wrong = linesNotOnce(shown.split('\n'), await storedLog(stack, record.buildId));
  if (wrong.length > 0) found.push(`${r.name}: ${wrong.length} build-log lines not shown once: ${wrong.slice(0, 5).join('; ')}`);
  return found;
}

/** Calls and refusals since `before`, by operation. */
const since = (now: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(now).map(([op, n]) => [op, n - (before[op] ?? 0)]).filter(([, n]) => n !== 0));
const refusedByOperation = (r: Record<string, Record<string, number>>) =>
  Object.fromEntries(Object.entries(r).map(([op, byCode]) => [op, Object.values(byCode).reduce((a, b) => a + b, 0)]));

interface Round {
  ran: Ran[];
  seconds: number;
  calls: Record<string, number>;
  refused: Record<string, number>;
  buildMinutes: number;
  failures: string[];
  polling: number;
}

/** Runs `count` jobs at once and checks each; the quotas stay armed while they run. */
async function round(stack: Stack, control: Control, root: string, count: number, prefix: string): Promise<Round> {
  const jobs = await Promise.all(Array.from({ length: count }, (_, i) => `${prefix}-${i}`).map(async (name) => ({
    name,
    job: await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_TAGS: JSON.stringify([name]), CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${name}/app` }),
  })));
  await control.clearFaults();
  await control.inject({ kind: 'provisioning', operation: 'StartBuild', ms: PROVISIONING_MS, count });
  for (const [operation, rps] of Object.entries(QUOTAS)) await control.inject({ kind: 'quota', operation, rps });
  const buildsBefore = (await control.builds()).length;
  const callsBefore = await control.calls();
  const refusedBefore = refusedByOperation(await control.refusals());
  const started = performance.now();
  const ran = await Promise.all(jobs.map(({ job, name }) => run(job, name, root)));
  const seconds = (performance.now() - started) / 1000;
  const calls = since(await control.calls(), callsBefore);
  const refused = since(refusedByOperation(await control.refusals()), refusedBefore);
  await control.clearFaults(); // before reading the stored logs through the same fake

  const builds = (await control.builds()).slice(buildsBefore);
  const failures = builds.length === count ? [] : [`${builds.length} builds for ${count} jobs`];
  for (const r of ran) failures.push(...(await problems(stack, r, builds)));
  const buildMinutes = builds.reduce((sum, b) => sum + ((b.endTime ?? b.startTime) - b.startTime), 0) / 60_000;
  return { ran, seconds, calls, refused, buildMinutes, failures, polling: ran.filter((r) => POLLING.test(r.output)).length };
}

export async function measure(): Promise<BenchRow[]> {
  const root = mkdtempSync(path.join(tmpdir(), 'bench-jobs-'));
  let stack: Stack | undefined;
  try {
    progress('starting the local stack (with dockerd) …');
    stack = await startStack({ dir: path.join(root, 'stack') });
    const control = fakeControl(stack.fakeUrl);
    progress('one job alone (the reference) …');
    const alone = await round(stack, control, root, 1, 'alone');
    progress(`one job alone: ${fixed(alone.seconds)} s; ${JOBS} jobs at once …`);
    const many = await round(stack, control, root, JOBS, 'many');
    progress(`${JOBS} jobs: ${fixed(many.seconds)} s, ${many.failures.length} failures, calls ${JSON.stringify(many.calls)}, refused ${JSON.stringify(many.refused)}`);
    for (const f of [...alone.failures, ...many.failures]) progress(f);

    const perJob = many.ran.map((r) => r.seconds);
    const rss = many.ran.map((r) => r.rssMb);
    const quotaText = `GetLogEvents ${QUOTAS.GetLogEvents}/s (AWS's documented quota), BatchGetBuilds ${QUOTAS.BatchGetBuilds}/s (unpublished; ` +
      `below the 6/s at which peers were refused), 15 Live Tail sessions, ${PROVISIONING_MS / 1000} s PROVISIONING`;
    const perMinute = (n: number) => fixed(n / many.buildMinutes, 1);
    const byOperation = ['BatchGetBuilds', 'GetLogEvents', 'StartLiveTail']
      .map((op) => `${op} ${perMinute(many.calls[op] ?? 0)}`).join(', ');
    const follow = ['BatchGetBuilds', 'GetLogEvents', 'StartLiveTail'].reduce((sum, op) => sum + (many.calls[op] ?? 0), 0);
    const refusals = Object.entries(many.refused).map(([op, n]) => `${op} ${n} of ${many.calls[op] ?? 0}`).join(', ') || 'none';
    const failed = many.failures.length + alone.failures.length;
    return [
      {
        group: GROUP,
        metric: `${JOBS} jobs at once (examples/hello, real dockerd builds on the machine's cores), ${quotaText}: jobs failed or with a build-log line not shown once`,
        value: `${failed} (each job: exit 0, one SUCCEEDED build, the registry's digest, every stored log line once)${failed ? `; first: ${[...alone.failures, ...many.failures][0]!.split('\n')[0]}` : ''}`,
        target: '0',
        met: failed === 0,
      },
      {
        group: GROUP,
        metric: `${JOBS} jobs at once: wall time`,
        value: `${fixed(many.seconds, 1)} s, ${fixed(many.seconds / alone.seconds)}× one job alone (${fixed(alone.seconds, 1)} s); per job median ${fixed(median(perJob), 1)} s, ` +
          `longest ${fixed(Math.max(...perJob), 1)} s; ${fixed(many.buildMinutes, 1)} build-minutes`,
        target: '—',
        met: true,
      },
      {
        group: GROUP,
        metric: `${JOBS} jobs at once: API calls per build-minute, all jobs (throttled attempts included)`,
        value: `${perMinute(follow)} following (${byOperation}); ${many.polling} of ${JOBS} jobs followed by polling after StartLiveTail's LimitExceededException; ` +
          `all calls ${JSON.stringify(many.calls)}`,
        target: '≤ 30 (the follow loop\'s budget per build)',
        met: follow / many.buildMinutes <= 30,
      },
      {
        group: GROUP,
        metric: `${JOBS} jobs at once: calls the fake refused over a quota`,
        value: refusals,
        target: 'counted',
        met: true,
      },
      {
        group: GROUP,
        metric: `${JOBS} jobs at once: peak RSS of one job (GNU time)`,
        value: `median ${fixed(median(rss), 0)} MB, largest ${fixed(Math.max(...rss), 0)} MB`,
        target: '—',
        met: true,
      },
    ];
  } finally {
    await stack?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
