/**
 * Job start → StartBuild on the local stack (stack/stack.ts, without dockerd: the runs are killed once the
 * build is started). The job runs dist/index.js as the e2e tests do, on the *app* context:
 * - changed context (a file rewritten before each run): compared with packing alone (packContextTo, the bytes
 *   dropped as the job's upload takes them) and uploading alone (the packed archive, from a file, through
 *   lib-storage by the job's S3 endpoint: the fake's S3 front, then s3rver), measured in the same run, each once
 *   the stack is quiet (the previous run's build, which goes on after its job is killed, downloads and unpacks
 *   the context);
 * - unchanged context: the bytes the bucket grew by, and the time.
 */
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { BatchGetBuildsCommand, CodeBuildClient, ListBuildsForProjectCommand } from '@aws-sdk/client-codebuild';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { listContext } from '../src/context/listing';
import { packContext, packContextTo } from '../src/context/zip';
import { startStack, type Stack } from '../stack/stack';
import { distIndex, makeJob } from '../test/e2e/helpers';
import { memoryOutput } from '../test/helpers/output';
import { generateContext } from './contexts';
import { fixed, median, processCpuSeconds, progress, timeToOutput } from './measure';
import type { BenchRow } from './rows';

const RUNS = Number(process.env.BENCH_JOB_RUNS ?? 5);
const STARTED = /^CodeBuild build /m;

async function bucketBytes(s3: S3Client, bucket: string): Promise<number> {
  let total = 0;
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) total += o.Size ?? 0;
    token = page.NextContinuationToken;
  } while (token);
  return total;
}

/** CPU-seconds of this process (packing and uploading alone run here, worker threads included). */
const selfCpuSeconds = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until every build of `project` is over (a killed job's build goes on in the fake, which downloads and
 * unpacks the context), then until the stack's servers use under 5% of a core for half a second; throws after 60 s.
 */
async function quiet(codebuild: CodeBuildClient, project: string, servers: () => number): Promise<void> {
  const until = performance.now() + 60_000;
  for (;;) {
    const { ids = [] } = await codebuild.send(new ListBuildsForProjectCommand({ projectName: project }));
    const { builds = [] } = ids.length > 0 ? await codebuild.send(new BatchGetBuildsCommand({ ids })) : {};
    if (builds.every((b) => b.buildComplete)) break;
    if (performance.now() > until) throw new Error(`builds of ${project} still running after 60 s`);
    await sleep(200);
  }
  for (let last = servers(); performance.now() < until; ) {
    await sleep(500);
    const now = servers();
    if (now - last < 0.025) return;
    last = now;
  }
  throw new Error("the stack's servers were still busy after 60 s: a measurement now would count their work");
}

/** Seconds, and CPU-seconds of this process and of the stack's servers (`servers`) while `fn` ran. */
async function timed(servers: () => number, fn: () => Promise<unknown>): Promise<{ seconds: number; self: number; servers: number }> {
  const [self, theirs] = [selfCpuSeconds(), servers()];
  const start = performance.now();
  await fn();
  return { seconds: (performance.now() - start) / 1000, self: selfCpuSeconds() - self, servers: servers() - theirs };
}

export async function measure(): Promise<BenchRow[]> {
  const root = mkdtempSync(path.join(tmpdir(), 'bench-job-'));
  let stack: Stack | undefined;
  try {
    progress('starting the local stack (no dockerd) …');
    stack = await startStack({ dir: path.join(root, 'stack'), docker: false });
    // The job's way to S3. s3rver's own keys pass the front without an IAM decision (under a millisecond each).
    const s3 = new S3Client({ region: stack.region, endpoint: stack.fakeUrl, forcePathStyle: true, credentials: stack.s3Credentials });
    const job = await makeJob(stack, 'examples/hello');
    generateContext('app', job.dir);
    const servers = () => Object.values(stack!.pids).reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
    const codebuild = new CodeBuildClient({ region: stack.region, endpoint: stack.fakeUrl, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
    const settle = () => quiet(codebuild, job.env.CODEBUILD_IMAGE_PROJECT_NAME!, servers);
    let jobCpu = 0;
    const runJob = () => {
      // The program writes its reports into the checkout, which is the context here: a new job starts without them.
      rmSync(job.reportDir, { recursive: true, force: true });
      return timeToOutput(process.execPath, [distIndex], { cwd: job.dir, env: job.env, until: STARTED, beforeKill: (pid) => (jobCpu = processCpuSeconds(pid)) });
    };

    // Paired: each run measures packing alone, uploading alone and the job back to back, so a change in the
    // machine's load between runs moves all three; the ratio is the median of the runs' ratios.
    const packSeconds: number[] = [];
    const uploadSeconds: number[] = [];
    const changed: number[] = [];
    const longer: number[] = [];
    // CPU-seconds: packing alone is this process; uploading alone this process and the servers (the fake's S3
    // front and s3rver); the job its own process and the servers (credentials, the upload, StartBuild).
    const cpu = { pack: [] as number[], upload: [] as number[], job: [] as number[], jobServers: [] as number[] };
    const archive = path.join(root, 'app.zip');
    await packContext(await listContext(job.dir, memoryOutput()), archive);
    const dropped = { write: async () => undefined };
    for (let i = 0; i < RUNS; i++) {
      await settle();
      const pack = await timed(servers, async () => packContextTo(await listContext(job.dir, memoryOutput()), dropped));
      const params = { Bucket: stack.bucket, Key: `bench/alone-${i}.zip`, Body: createReadStream(archive), ContentType: 'application/zip', ChecksumAlgorithm: 'SHA256' as const };
      const upload = await timed(servers, () => new Upload({ client: s3, params, partSize: 8 * 1024 * 1024, queueSize: 4 }).done());
      writeFileSync(path.join(job.dir, 'bench-run.txt'), `run ${i} at ${new Date().toISOString()}\n`);
      await settle();
      const run = await timed(servers, async () => changed.push((await runJob()) / 1000));
      packSeconds.push(pack.seconds);
      uploadSeconds.push(upload.seconds);
      cpu.pack.push(pack.self + pack.servers);
      cpu.upload.push(upload.self + upload.servers);
      cpu.job.push(jobCpu + run.servers);
      cpu.jobServers.push(run.servers);
      longer.push(Math.max(pack.seconds, upload.seconds));
      progress(
        `run ${i + 1}: packing ${fixed(pack.seconds)} s (${fixed(cpu.pack[i]!)} CPU-s), uploading ${fixed(upload.seconds)} s (${fixed(cpu.upload[i]!)} CPU-s), ` +
          `job start → StartBuild ${fixed(changed[i]!)} s (${fixed(cpu.job[i]!)} CPU-s, servers ${fixed(run.servers)})`,
      );
    }
    const before = await bucketBytes(s3, stack.bucket);
    const unchanged: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await settle();
      unchanged.push((await runJob()) / 1000);
    }
    const grown = (await bucketBytes(s3, stack.bucket)) - before;
    s3.destroy();
    codebuild.destroy();

    const ratio = median(changed.map((c, i) => c / longer[i]!));
    const cores = availableParallelism();
    // The least time the CPU-seconds allow on this machine's cores: the job's own, and those of packing alone and
    // uploading alone added up (what a job doing both with this packer and this upload needs, however it overlaps them).
    const jobFloor = median(cpu.job.map((c, i) => c / cores / longer[i]!));
    const bothFloor = median(cpu.pack.map((c, i) => (c + cpu.upload[i]!) / cores / longer[i]!));
    return [
      {
        group: 'job start',
        metric: 'job start → StartBuild, changed *app* context, local stack',
        value:
          `${fixed(ratio)}× the longer of packing alone and uploading alone (median of ${RUNS} runs; medians: job ${fixed(median(changed))} s, ` +
          `packing ${fixed(median(packSeconds))} s, uploading ${fixed(median(uploadSeconds))} s)`,
        target: '≤ 1.2×',
        met: ratio <= 1.2,
      },
      {
        group: 'job start',
        metric:
          "job start → StartBuild, changed *app* context: CPU-seconds of the processes at work (the job, the stack's servers; packing and " +
          "uploading alone in the bench's own process and the servers), and the least time they allow on this machine's cores",
        value:
          `job ${fixed(median(cpu.job))} CPU-s (the stack's servers ${fixed(median(cpu.jobServers))} of them), packing alone ${fixed(median(cpu.pack))}, ` +
          `uploading alone ${fixed(median(cpu.upload))} (medians). On ${cores} cores the job's CPU-seconds take at least ${fixed(jobFloor)}× the longer of ` +
          `the two alone, and packing's and uploading's together ${fixed(bothFloor)}×: a job that packs and uploads with this packer and ` +
          `this upload cannot be under ${fixed(bothFloor)}× here, however it overlaps them (medians of the runs' ratios)`,
        target: 'measured: the floor under the row above',
        met: true,
      },
      {
        group: 'job start',
        metric: 'unchanged context: bytes uploaded',
        value: `${grown.toLocaleString('en')} bytes in ${RUNS} runs (job start → StartBuild ${fixed(median(unchanged))} s)`,
        target: '0 bytes',
        met: grown === 0,
      },
    ];
  } finally {
    await stack?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
