/**
 * The CPU of a whole job (issue 21: about 160 runs of dist/index.js in `npm test`): `BENCH_ONLY=job-cpu npm run bench`.
 * Starts the local stack with dockerd and runs RUNS jobs of examples/hello one after another, as the end-to-end
 * tests run them (pack, upload, StartBuild, follow the build's log to its end, reports), each under GNU time for
 * the CPU-seconds of its process (user + system, every thread). The reference, alternating with the jobs: a bare
 * `node -e 0`, the least any run of the program costs. The stack's own processes are not counted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startStack, type Stack } from '../stack/stack';
import { distIndex, makeJob, nodes } from '../test/e2e/helpers';
import { fixed, median, progress, underGnuTime } from './measure';
import type { BenchRow } from './rows';

const RUNS = Number(process.env.BENCH_JOB_CPU_RUNS ?? 11);

/** CPU-seconds, page faults and the exit code of `args` run by Node 20 under GNU time. */
async function cpuOf(args: string[], cwd: string, env: NodeJS.ProcessEnv, timeFile: string): Promise<{ cpu: number; faults: number; code: number | null; output: string }> {
  const { values, code, output } = await underGnuTime('%U %S %R', [nodes.node20, ...args], { cwd, env, timeFile });
  const [user = NaN, system = NaN, faults = NaN] = values;
  return { cpu: user + system, faults, code, output };
}

export async function measure(): Promise<BenchRow[]> {
  const root = mkdtempSync(path.join(tmpdir(), 'bench-job-cpu-'));
  let stack: Stack | undefined;
  try {
    progress('starting the local stack …');
    stack = await startStack({ dir: path.join(root, 'stack') });
    const jobs: number[] = [];
    const faults: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const job = await makeJob(stack, 'examples/hello');
      const ran = await cpuOf([distIndex], job.dir, job.env, path.join(root, `job-${i}.time`));
      if (ran.code !== 0) throw new Error(`job ${i} exited ${ran.code}:\n${ran.output}`);
      jobs.push(ran.cpu);
      faults.push(ran.faults);
      bare.push((await cpuOf(['-e', '0'], root, process.env, path.join(root, `bare-${i}.time`))).cpu);
      progress(`run ${i + 1}: job ${fixed(jobs[i]!)} CPU-s (${faults[i]} page faults), bare node ${fixed(bare[i]!)} CPU-s`);
    }
    return [
      {
        group: 'job CPU',
        metric: 'a whole job of examples/hello on the local stack (Node 20): CPU-seconds of its process, against a bare `node -e 0` run alternately',
        value: `${fixed(median(jobs))} CPU-s (median of ${RUNS}; ${median(faults).toLocaleString('en')} page faults), ${fixed(median(jobs) / median(bare), 1)}× bare node (${fixed(median(bare))} CPU-s)`,
        target: 'measured: the job\'s share of `npm test` (issue 21)',
        met: true,
      },
    ];
  } finally {
    await stack?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
