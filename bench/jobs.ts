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
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fakeControl } from '../stack/fake-aws/control';
import { startStack, type Stack } from '../stack/stack';
import { distIndex, type Job, makeJob, nodes, readDotenv, registryDigest, visible } from '../test/e2e/helpers';
import { linesNotOnce, storedLog } from '../test/e2e/stored-log';
import { fixed, median, progress, underGnuTime } from './measure';
import type { BenchRow } from './rows';

const JOBS = Number(process.env.BENCH_JOBS ?? 100);
/** A folder to keep every job's log in (BENCH_JOBS_LOGS=/tmp/jobs-logs), for a look at what a job did. */
const KEEP_LOGS = process.env.BENCH_JOBS_LOGS;
const QUOTAS = { BatchGetBuilds: 5, GetLogEvents: 10 } as const;
const PROVISIONING_MS = 20_000;
const GROUP = 'many jobs';
/** The line a job prints when it follows by polling because StartLiveTail refused it (src/follow/log-sources.ts). */
const POLLING = /^Following the log by polling: StartLiveTail failed \((\w+)\)/m;
/** The line a job prints when its final read failed (src/follow/log-sources.ts drainWithin). */
const MAY_MISS = /missing here: the final read of its log failed \((\w+)\)/;
/** The info line after a caught-up session whose last second's final read failed: every line was shown. */
const UNCONFIRMED = /Could not confirm the build's last second of log lines: the final read of its log failed \((\w+)\)/;

type Control = ReturnType<typeof fakeControl>;

interface Ran {
  job: Job;
  name: string;
  code: number | null;
  output: string;
  /**
   * Epoch ms: started, and ended by GNU time's elapsed time. Each spawn blocks this process until the child runs, so
   * while the last jobs are spawned this loop cannot see the first ones end: their end is not taken from 'close'.
   */
  spawnedAt: number;
  endedAt: number;
  /** Peak RSS of the job's process in MB (GNU time's %M). */
  rssMb: number;
}

/** Runs dist/index.js as the template's job does (runAction), under GNU time for its peak RSS and elapsed time. */
async function run(job: Job, name: string, root: string): Promise<Ran> {
  const timeFile = path.join(root, `${name}.rss`);
  const { values, code, output, spawnedAt } = await underGnuTime('%M %e', [nodes.node20, distIndex], { cwd: job.dir, env: job.env, timeFile });
  const [rssKb = NaN, elapsed = NaN] = values;
  if (KEEP_LOGS) writeFileSync(path.join(KEEP_LOGS, `${name}.log`), output);
  return { job, name, code, output, spawnedAt, endedAt: spawnedAt + elapsed * 1000, rssMb: rssKb / 1024 };
}

type FakeBuild = Awaited<ReturnType<Control['builds']>>[number];

/** One job's times in seconds: spawn → StartBuild, the build (StartBuild → its end), the build's end → the job's exit. */
interface Phases {
  toStart: number;
  build: number;
  endToExit: number;
}

/**
 * What is wrong with one job, checked as load.test.ts checks it (none when it built, pushed and showed its whole
 * log), and its phases.
 */
async function check(stack: Stack, r: Ran, builds: FakeBuild[]): Promise<{ problems: string[]; phases?: Phases }> {
  const shown = visible(r.output);
  if (r.code !== 0) return { problems: [`${r.name}: exit ${r.code}; last lines:\n${shown.split('\n').slice(-15).join('\n')}`] };
  const record = JSON.parse(readFileSync(path.join(r.job.reportDir, 'build.json'), 'utf8')) as { buildId: string; status: string };
  const problems: string[] = [];
  if (record.status !== 'SUCCEEDED') problems.push(`${r.name}: build ${record.buildId} ${record.status}`);
  const same = builds.filter((b) => b.id === record.buildId);
  if (same.length !== 1) problems.push(`${r.name}: ${same.length} builds with id ${record.buildId}`);
  const dotenv = readDotenv(path.join(r.job.reportDir, 'build.env'));
  const served = await registryDigest(stack.registry, `${r.name}/app`, r.name);
  if (served !== dotenv.IMAGE_DIGEST) problems.push(`${r.name}: registry serves ${served}, the job reported ${dotenv.IMAGE_DIGEST}`);
  const wrong = linesNotOnce(shown.split('\n'), await storedLog(stack, record.buildId));
  if (wrong.length > 0) problems.push(`${r.name}: ${wrong.length} build-log lines not shown once: ${wrong.slice(0, 5).join('; ')}`);
  const b = same[0];
  const phases = b?.endTime ? { toStart: (b.startTime - r.spawnedAt) / 1000, build: (b.endTime - b.startTime) / 1000, endToExit: (r.endedAt - b.endTime) / 1000 } : undefined;
  return { problems, ...(phases && { phases }) };
}

/** Calls and refusals since `before`, by operation. */
const since = (now: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(now).map(([op, n]) => [op, n - (before[op] ?? 0)]).filter(([, n]) => n !== 0));
const refusedByOperation = (r: Record<string, Record<string, number>>) =>
  Object.fromEntries(Object.entries(r).map(([op, byCode]) => [op, Object.values(byCode).reduce((a, b) => a + b, 0)]));

interface Round {
  ran: Ran[];
  /** From the first spawn to the last job's end. */
  seconds: number;
  /** From the first spawn to the last. */
  spawning: number;
  phases: Phases[];
  calls: Record<string, number>;
  refused: Record<string, number>;
  buildMinutes: number;
  failures: string[];
  /** Jobs that followed by polling because StartLiveTail failed, by its error. */
  polling: Record<string, number>;
  /** Jobs that warned that lines may be missing (their final read failed), by its error. */
  mayMiss: Record<string, number>;
  /** Jobs that could not confirm their log's last second (an info line), by the final read's error. */
  unconfirmed: Record<string, number>;
  /** How long the fake took to answer /_fake/health, sampled every second while the jobs ran (ms). */
  fakeLatency: number[];
}

/**
 * Samples how long the fake takes to answer its health check, every second until stopped: how loaded it is. A check
 * that fails (a kept-alive connection the fake closed while this loop waited its turn) is not a sample.
 */
function sampleLatency(control: Control): { stop: () => Promise<number[]> } {
  const samples: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      if (await control.health().then(() => true, () => false)) samples.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  })();
  return { stop: async () => ((running = false), await loop, samples) };
}

/** Counts the jobs whose job log matches `pattern`, by its first group. */
function countBy(ran: Ran[], pattern: RegExp): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of ran) {
    const reason = pattern.exec(visible(r.output))?.[1];
    if (reason) counts[reason] = (counts[reason] ?? 0) + 1;
  }
  return counts;
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
  const sampler = sampleLatency(control);
  const ran = await Promise.all(jobs.map(({ job, name }) => run(job, name, root)));
  const fakeLatency = await sampler.stop();
  const calls = since(await control.calls(), callsBefore);
  const refused = since(refusedByOperation(await control.refusals()), refusedBefore);
  await control.clearFaults(); // before reading the stored logs through the same fake

  const builds = (await control.builds()).slice(buildsBefore);
  const failures = builds.length === count ? [] : [`${builds.length} builds for ${count} jobs`];
  const phases: Phases[] = [];
  for (const r of ran) {
    const checked = await check(stack, r, builds);
    failures.push(...checked.problems);
    if (checked.phases) phases.push(checked.phases);
    if (KEEP_LOGS) writeFileSync(path.join(KEEP_LOGS, `${r.name}.json`), JSON.stringify({ ...checked, spawnedAt: r.spawnedAt, endedAt: r.endedAt }, null, 1));
  }
  const first = Math.min(...ran.map((r) => r.spawnedAt));
  return {
    ran,
    seconds: (Math.max(...ran.map((r) => r.endedAt)) - first) / 1000,
    spawning: (Math.max(...ran.map((r) => r.spawnedAt)) - first) / 1000,
    phases,
    calls,
    refused,
    buildMinutes: builds.reduce((sum, b) => sum + ((b.endTime ?? b.startTime) - b.startTime), 0) / 60_000,
    failures,
    polling: countBy(ran, POLLING),
    mayMiss: countBy(ran, MAY_MISS),
    unconfirmed: countBy(ran, UNCONFIRMED),
    fakeLatency,
  };
}

/** `median m, longest x` of one phase over the jobs, in seconds. */
const spread = (xs: number[]) => xs.length === 0 ? 'no sample' : `median ${fixed(median(xs), 1)} s, longest ${fixed(Math.max(...xs), 1)} s`;

export async function measure(): Promise<BenchRow[]> {
  const root = mkdtempSync(path.join(tmpdir(), 'bench-jobs-'));
  if (KEEP_LOGS) mkdirSync(KEEP_LOGS, { recursive: true });
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

    const rss = many.ran.map((r) => r.rssMb);
    const one = alone.phases[0];
    const quotaText = `GetLogEvents ${QUOTAS.GetLogEvents}/s (AWS's documented quota), BatchGetBuilds ${QUOTAS.BatchGetBuilds}/s (unpublished; ` +
      `below the 6/s at which peers were refused), 15 Live Tail sessions, ${PROVISIONING_MS / 1000} s PROVISIONING`;
    const FOLLOWING = ['BatchGetBuilds', 'GetLogEvents', 'StartLiveTail'];
    const perMinute = (n: number) => fixed(n / many.buildMinutes, 1);
    const byOperation = FOLLOWING.map((op) => `${op} ${perMinute(many.calls[op] ?? 0)}`).join(', ');
    const follow = FOLLOWING.reduce((sum, op) => sum + (many.calls[op] ?? 0), 0);
    const refusals = Object.entries(many.refused).map(([op, n]) => `${op} ${n} of ${many.calls[op] ?? 0}`).join(', ') || 'none';
    const warned = Object.entries(many.mayMiss).map(([reason, n]) => `${n} after ${reason}`).join(', ') || 'none';
    const warnedCount = Object.values(many.mayMiss).reduce((a, b) => a + b, 0);
    const polled = Object.entries(many.polling).map(([reason, n]) => `${n} after ${reason}`).join(', ') || 'none';
    const failed = many.failures.length + alone.failures.length;
    const phase = (key: keyof Phases) => `${spread(many.phases.map((p) => p[key]))}${one ? ` (alone ${fixed(one[key], 1)} s)` : ''}`;
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
        metric: `${JOBS} jobs at once: jobs that warned that build-log lines may be missing (their final read failed)`,
        value: `${warnedCount} (${warned}); ${Object.values(many.unconfirmed).reduce((a, b) => a + b, 0)} more could not confirm their last second after a session that ran to the end (an info line); the fake answered its health check in ${spread(many.fakeLatency.map((ms) => ms / 1000))} (sampled every second)`,
        target: '0',
        met: warnedCount === 0,
      },
      {
        group: GROUP,
        metric: `${JOBS} jobs at once: wall time, first spawn → last exit`,
        value: `${fixed(many.seconds, 1)} s, ${fixed(many.seconds / alone.seconds)}× one job alone (${fixed(alone.seconds, 1)} s); spawning the ${JOBS} took ${fixed(many.spawning, 1)} s; ` +
          `per job: spawn → StartBuild ${phase('toStart')}; build ${phase('build')}; build end → exit ${phase('endToExit')}; ${fixed(many.buildMinutes, 1)} build-minutes`,
        target: '—',
        met: true,
      },
      {
        group: GROUP,
        metric: `${JOBS} jobs at once: API calls per build-minute, all jobs (throttled attempts included)`,
        value: `${perMinute(follow)} following (${byOperation}), ${fixed(follow / JOBS, 1)} per job; followed by polling when StartLiveTail failed: ${polled}; ` +
          `all calls ${JSON.stringify(many.calls)}`,
        target: '≤ 30 (the follow loop\'s budget per build)',
        met: follow / many.buildMinutes <= 30,
      },
      {
        group: GROUP,
        metric: `${JOBS} jobs at once: calls the fake refused over a quota (ThrottlingException, LimitExceededException)`,
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
