/**
 * Warm-rebuild benchmark: `npx tsx bench/warm-rebuild.ts`, or a row of `npm run bench`.
 *
 * Builds test/fixtures/warm-cache through dist/index.js on the local stack: cold (no layer cache in the registry),
 * then, after a file used by a later step changed and the engine was wiped (CodeBuild hosts start empty), warm.
 * The figure is the BUILD phase's duration as CodeBuild (the fake) reports it, warm ÷ cold, median of
 * BENCH_WARM_RUNS pairs (default 3). The expensive step sleeps EXPENSIVE_SECONDS (default 10), at least 80% of the
 * cold BUILD phase, which the row reports too.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import { emptyEngine } from '../stack/docker';
import { startStack, type Stack } from '../stack/stack';
import { makeJob, runAction } from '../test/e2e/helpers';
import { median } from './measure';
import { printAlone, type BenchRow } from './rows';

const runs = Number(process.env.BENCH_WARM_RUNS ?? 3);
const expensiveSeconds = Number(process.env.EXPENSIVE_SECONDS ?? 10);
const TARGET = 0.2;


/** Builds the fixture into `repository` and returns the BUILD phase's seconds as CodeBuild reports them. */
async function buildPhaseSeconds(stack: Stack, repository: string, message: string): Promise<number> {
  await emptyEngine(stack.dockerHost ?? '', stack.dockerConfig);
  const job = await makeJob(stack, 'test/fixtures/warm-cache', {
    CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${repository}`,
    CODEBUILD_IMAGE_BUILD_ARGS: JSON.stringify([`BASE_IMAGE=${stack.baseImage ?? ''}`, `EXPENSIVE_SECONDS=${expensiveSeconds}`]),
  });
  writeFileSync(join(job.dir, 'message.txt'), `${message}\n`);
  const result = await runAction(job);
  if (result.code !== 0) throw new Error(`build of ${repository} failed (${result.code}):\n${result.output}`);
  const { buildId } = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8')) as { buildId: string };
  const codebuild = new CodeBuildClient({
    region: stack.region,
    endpoint: stack.fakeUrl,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
  const { builds } = await codebuild.send(new BatchGetBuildsCommand({ ids: [buildId] }));
  const phase = builds?.[0]?.phases?.find((p) => p.phaseType === 'BUILD');
  if (!phase?.startTime || !phase.endTime) throw new Error(`build ${buildId} has no finished BUILD phase`);
  return (phase.endTime.getTime() - phase.startTime.getTime()) / 1000;
}


export async function measure(): Promise<BenchRow[]> {
  const stack = await startStack({ dir: join(__dirname, '..', '.stack', 'bench-warm'), phaseDelayMs: 50 });
  try {
    const ratios: number[] = [];
    const shares: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      const repository = `bench/warm-${Date.now().toString(36)}`;
      const cold = await buildPhaseSeconds(stack, repository, `cold ${i}`);
      const warm = await buildPhaseSeconds(stack, repository, `warm ${i}`);
      ratios.push(warm / cold);
      shares.push(expensiveSeconds / cold);
      console.error(`warm rebuild ${i + 1}/${runs}: BUILD cold ${cold.toFixed(1)} s, warm ${warm.toFixed(1)} s`);
    }
    const ratio = median(ratios);
    const share = median(shares);
    return [
      {
        group: 'warm rebuild',
        metric: `BUILD phase, warm ÷ cold (expensive step ${Math.round(share * 100)}% of cold; engine wiped; median of ${runs})`,
        value: `${ratio.toFixed(2)}`,
        target: `≤ ${TARGET}`,
        met: ratio <= TARGET && share >= 0.8,
      },
    ];
  } finally {
    await stack.stop();
  }
}

if (require.main === module) printAlone(measure);
