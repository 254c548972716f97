/**
 * skip_unchanged benchmark: `npx tsx bench/skip.ts`, or a row of `npm run bench`.
 *
 * On the local stack, one job builds examples/hello with skip_unchanged on; then BENCH_SKIP_RUNS (default 5) jobs
 * with the same inputs and new tags run. Each must start no CodeBuild build; the figure is the median time from
 * the job's start to its exit.
 */
import { join } from 'node:path';
import { fakeControl } from '../stack/fake-aws/control';
import { startStack, type Stack } from '../stack/stack';
import { makeJob, runAction } from '../test/e2e/helpers';
import { median } from './measure';
import { printAlone, type BenchRow } from './rows';

const runs = Number(process.env.BENCH_SKIP_RUNS ?? 5);
const TARGET_SECONDS = 5;

async function job(stack: Stack, repository: string, tag: string): Promise<number> {
  const j = await makeJob(stack, 'examples/hello', {
    CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${repository}`,
    CODEBUILD_IMAGE_SKIP_UNCHANGED: 'true',
    CODEBUILD_IMAGE_TAGS: JSON.stringify([tag]),
  });
  const started = performance.now();
  const result = await runAction(j);
  const seconds = (performance.now() - started) / 1000;
  if (result.code !== 0) throw new Error(`job for ${repository}:${tag} failed (${result.code}):\n${result.output}`);
  return seconds;
}

export async function measure(): Promise<BenchRow[]> {
  const stack = await startStack({ dir: join(__dirname, '..', '.stack', 'bench-skip'), phaseDelayMs: 50 });
  try {
    const repository = `bench/skip-${Date.now().toString(36)}`;
    const built = await job(stack, repository, 'first');
    const buildsBefore = (await fakeControl(stack.fakeUrl).builds()).length;
    const times: number[] = [];
    for (let i = 0; i < runs; i += 1) times.push(await job(stack, repository, `again-${i}`));
    const started = (await fakeControl(stack.fakeUrl).builds()).length - buildsBefore;
    const seconds = median(times);
    return [
      {
        group: 'job start',
        metric: `unchanged build inputs, skip_unchanged on: job start → exit (median of ${runs}; the first job, which built, took ${built.toFixed(1)} s)`,
        value: `${seconds.toFixed(2)} s, ${started} builds started`,
        target: `no CodeBuild build; ≤ ${TARGET_SECONDS} s`,
        met: started === 0 && seconds <= TARGET_SECONDS,
      },
    ];
  } finally {
    await stack.stop();
  }
}

if (require.main === module) printAlone(measure);
